//! NEW_SERVICE attributes written out by hand from ip_vs.h. Each line is one `struct
//! nlattr`: u16 nla_len (header + payload, without padding), u16 nla_type, the payload,
//! then zero padding to a multiple of 4. Integers are little-endian unless ip_vs.h says
//! __be16/__be32.
#![cfg(target_endian = "little")]
use std::net::IpAddr;

use crate::lvs::ipvs::attrs::{cmd, svc_flags};
use crate::lvs::ipvs::encode::request;
use crate::lvs::ipvs::{IpvsService, Proto, ServiceKey, decode_service, encode_service_attrs};

pub(super) fn tcp_web() -> IpvsService {
    let addr: IpAddr = "10.0.0.10".parse().unwrap();
    IpvsService::new(ServiceKey::Addr { protocol: Proto::Tcp, addr, port: 80 }, "rr")
}

pub(super) fn udp_dns6() -> IpvsService {
    let addr: IpAddr = "2001:db8::10".parse().unwrap();
    let mut service = IpvsService::new(ServiceKey::Addr { protocol: Proto::Udp, addr, port: 53 }, "wlc");
    service.flags = svc_flags::PERSISTENT;
    service.timeout = 300;
    service
}

pub(super) fn fwmark7() -> IpvsService {
    IpvsService::new(ServiceKey::Fwmark { family: crate::lvs::ipvs::Family::Inet, mark: 7 }, "sh")
}

#[rustfmt::skip]
const TCP_WEB: &[u8] = &[
    84, 0,   0x01, 0x80,                    // IPVS_CMD_ATTR_SERVICE (1) | NLA_F_NESTED (0x8000), len 4 + 80
    6, 0,    1, 0,    2, 0, 0, 0,           // IPVS_SVC_ATTR_AF (1): u16 AF_INET = 2, 2 bytes padding
    6, 0,    2, 0,    6, 0, 0, 0,           // IPVS_SVC_ATTR_PROTOCOL (2): u16 IPPROTO_TCP = 6, padding
    20, 0,   3, 0,    10, 0, 0, 10,         // IPVS_SVC_ATTR_ADDR (3): nf_inet_addr, 10.0.0.10 ...
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //   ... in the first 4 of 16 bytes
    6, 0,    4, 0,    0, 80, 0, 0,          // IPVS_SVC_ATTR_PORT (4): __be16 80, padding
    7, 0,    6, 0,    b'r', b'r', 0, 0,     // IPVS_SVC_ATTR_SCHED_NAME (6): "rr\0", 1 byte padding
    12, 0,   7, 0,    0, 0, 0, 0,           // IPVS_SVC_ATTR_FLAGS (7): ip_vs_flags.flags = 0,
                      0xff, 0xff, 0xff, 0xff, //   .mask = ~0 (as keepalived sends)
    8, 0,    8, 0,    0, 0, 0, 0,           // IPVS_SVC_ATTR_TIMEOUT (8): u32 0 seconds
    8, 0,    9, 0,    0xff, 0xff, 0xff, 0xff, // IPVS_SVC_ATTR_NETMASK (9): __be32 255.255.255.255
];

#[rustfmt::skip]
const UDP_DNS6: &[u8] = &[
    84, 0,   0x01, 0x80,                    // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len 84
    6, 0,    1, 0,    10, 0, 0, 0,          // IPVS_SVC_ATTR_AF: u16 AF_INET6 = 10
    6, 0,    2, 0,    17, 0, 0, 0,          // IPVS_SVC_ATTR_PROTOCOL: u16 IPPROTO_UDP = 17
    20, 0,   3, 0,    0x20, 0x01, 0x0d, 0xb8, // IPVS_SVC_ATTR_ADDR: 2001:db8::10
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    6, 0,    4, 0,    0, 53, 0, 0,          // IPVS_SVC_ATTR_PORT: __be16 53
    8, 0,    6, 0,    b'w', b'l', b'c', 0,  // IPVS_SVC_ATTR_SCHED_NAME: "wlc\0", no padding
    12, 0,   7, 0,    1, 0, 0, 0,           // IPVS_SVC_ATTR_FLAGS: IP_VS_SVC_F_PERSISTENT = 0x1,
                      0xff, 0xff, 0xff, 0xff, //   mask ~0
    8, 0,    8, 0,    0x2c, 0x01, 0, 0,     // IPVS_SVC_ATTR_TIMEOUT: u32 300 = 0x12c
    8, 0,    9, 0,    128, 0, 0, 0,         // IPVS_SVC_ATTR_NETMASK: prefix length 128 (native order)
];

#[rustfmt::skip]
const FWMARK7: &[u8] = &[
    56, 0,   0x01, 0x80,                    // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len 4 + 52
    6, 0,    1, 0,    2, 0, 0, 0,           // IPVS_SVC_ATTR_AF: AF_INET
    8, 0,    5, 0,    7, 0, 0, 0,           // IPVS_SVC_ATTR_FWMARK (5): u32 7; no PROTOCOL/ADDR/PORT
    7, 0,    6, 0,    b's', b'h', 0, 0,     // IPVS_SVC_ATTR_SCHED_NAME: "sh\0", padding
    12, 0,   7, 0,    0, 0, 0, 0,           // IPVS_SVC_ATTR_FLAGS: 0,
                      0xff, 0xff, 0xff, 0xff, //   mask ~0
    8, 0,    8, 0,    0, 0, 0, 0,           // IPVS_SVC_ATTR_TIMEOUT: 0
    8, 0,    9, 0,    0xff, 0xff, 0xff, 0xff, // IPVS_SVC_ATTR_NETMASK: 255.255.255.255
];

#[test]
fn ipv4_tcp_rr_service_is_encoded_as_ip_vs_h_lays_it_out() {
    assert_eq!(encode_service_attrs(&tcp_web()).unwrap(), TCP_WEB);
}

#[test]
fn ipv6_udp_persistent_wlc_service_is_encoded_as_ip_vs_h_lays_it_out() {
    assert_eq!(encode_service_attrs(&udp_dns6()).unwrap(), UDP_DNS6);
}

#[test]
fn fwmark_sh_service_is_encoded_with_the_mark_instead_of_protocol_address_and_port() {
    assert_eq!(encode_service_attrs(&fwmark7()).unwrap(), FWMARK7);
}

#[test]
fn services_decode_back_to_themselves() {
    for service in [tcp_web(), udp_dns6(), fwmark7()] {
        let bytes = encode_service_attrs(&service).unwrap();
        assert_eq!(decode_service(&bytes).unwrap(), service);
    }
    let mut granular = udp_dns6();
    granular.netmask = 64;
    granular.pe_name = Some("sip".into());
    granular.flags |= svc_flags::ONEPACKET | svc_flags::SCHED2;
    assert_eq!(decode_service(&encode_service_attrs(&granular).unwrap()).unwrap(), granular);
    let mut v4_granular = tcp_web();
    v4_granular.flags = svc_flags::PERSISTENT;
    v4_granular.timeout = 60;
    v4_granular.netmask = 0xffff_ff00;
    let bytes = encode_service_attrs(&v4_granular).unwrap();
    assert_eq!(bytes[bytes.len() - 4..], [255, 255, 255, 0], "an IPv4 netmask travels in network order");
    assert_eq!(decode_service(&bytes).unwrap(), v4_granular);
}

#[test]
fn the_kernel_only_hashed_flag_is_never_sent() {
    let mut service = tcp_web();
    service.flags = svc_flags::HASHED | svc_flags::PERSISTENT;
    let bytes = encode_service_attrs(&service).unwrap();
    // FLAGS is at offset 4 + 8 + 8 + 20 + 8 + 8: header (4), then ip_vs_flags.flags.
    assert_eq!(bytes[56..64], [12, 0, 7, 0, 1, 0, 0, 0]);
}

#[test]
fn values_the_kernel_would_refuse_are_caught_before_sending() {
    let mut long = tcp_web();
    long.scheduler = "a-scheduler-name".into(); // 16 bytes: no room for the NUL
    assert!(encode_service_attrs(&long).is_err());
    let mut unmarked = fwmark7();
    unmarked.key = ServiceKey::Fwmark { family: crate::lvs::ipvs::Family::Inet, mark: 0 };
    assert!(encode_service_attrs(&unmarked).is_err());
    let mut bad_prefix = udp_dns6();
    bad_prefix.netmask = 0;
    assert!(encode_service_attrs(&bad_prefix).is_err());
}

#[test]
fn a_request_is_the_genl_header_with_version_1_then_the_attributes() {
    use neli::{Size, ToBytes};
    let message = request(cmd::NEW_SERVICE, Some(&tcp_web()), None).unwrap();
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(message.padded_size()));
    message.to_bytes(&mut cursor).unwrap();
    let bytes = cursor.into_inner();
    // struct genlmsghdr: u8 cmd IPVS_CMD_NEW_SERVICE = 1, u8 version IPVS_GENL_VERSION = 1,
    // u16 reserved 0.
    assert_eq!(bytes[..4], [1, 1, 0, 0]);
    assert_eq!(&bytes[4..], TCP_WEB);
    let flush = request(cmd::FLUSH, None, None).unwrap();
    let mut cursor = std::io::Cursor::new(Vec::new());
    flush.to_bytes(&mut cursor).unwrap();
    assert_eq!(cursor.into_inner(), [17, 1, 0, 0], "IPVS_CMD_FLUSH = 17 carries no attribute");
}
