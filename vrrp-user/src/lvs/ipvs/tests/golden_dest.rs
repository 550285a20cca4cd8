//! NEW_DEST attributes written out by hand from ip_vs.h (same layout notes as
//! golden_service.rs: nla_len, nla_type, payload, padding to 4).
#![cfg(target_endian = "little")]
use std::net::IpAddr;

use crate::lvs::ipvs::attrs::{cmd, tun_flags};
use crate::lvs::ipvs::encode::request;
use crate::lvs::ipvs::{Family, FwdMethod, IpvsDest, Tunnel, TunnelType, decode_dest, encode_dest_attrs};

use super::golden_service::tcp_web;

pub(super) fn dr() -> IpvsDest {
    IpvsDest::new("10.0.0.11".parse().unwrap(), 80, FwdMethod::DirectRoute)
}

pub(super) fn nat() -> IpvsDest {
    IpvsDest {
        addr: "192.168.1.20".parse().unwrap(),
        port: 8080,
        forwarding: FwdMethod::Masq,
        weight: 5,
        upper_threshold: 1000,
        lower_threshold: 800,
    }
}

pub(super) fn gue() -> IpvsDest {
    let tunnel = Tunnel { kind: TunnelType::Gue, port: 6080, flags: tun_flags::CSUM };
    let addr: IpAddr = "2001:db8::20".parse().unwrap();
    IpvsDest { addr, port: 80, forwarding: FwdMethod::Tunnel(tunnel), weight: 3, upper_threshold: 200, lower_threshold: 100 }
}

#[rustfmt::skip]
const DR: &[u8] = &[
    72, 0,   0x02, 0x80,                    // IPVS_CMD_ATTR_DEST (2) | NLA_F_NESTED, len 4 + 68
    6, 0,    11, 0,   2, 0, 0, 0,           // IPVS_DEST_ATTR_ADDR_FAMILY (11): u16 AF_INET, padding
    20, 0,   1, 0,    10, 0, 0, 11,         // IPVS_DEST_ATTR_ADDR (1): 10.0.0.11 in 16 bytes
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    6, 0,    2, 0,    0, 80, 0, 0,          // IPVS_DEST_ATTR_PORT (2): __be16 80
    8, 0,    3, 0,    3, 0, 0, 0,           // IPVS_DEST_ATTR_FWD_METHOD (3): IP_VS_CONN_F_DROUTE = 3
    8, 0,    4, 0,    1, 0, 0, 0,           // IPVS_DEST_ATTR_WEIGHT (4): 1
    8, 0,    5, 0,    0, 0, 0, 0,           // IPVS_DEST_ATTR_U_THRESH (5): 0 (none)
    8, 0,    6, 0,    0, 0, 0, 0,           // IPVS_DEST_ATTR_L_THRESH (6): 0
];

#[rustfmt::skip]
const NAT: &[u8] = &[
    72, 0,   0x02, 0x80,                    // IPVS_CMD_ATTR_DEST | NLA_F_NESTED, len 72
    6, 0,    11, 0,   2, 0, 0, 0,           // IPVS_DEST_ATTR_ADDR_FAMILY: AF_INET
    20, 0,   1, 0,    192, 168, 1, 20,      // IPVS_DEST_ATTR_ADDR: 192.168.1.20
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    6, 0,    2, 0,    0x1f, 0x90, 0, 0,     // IPVS_DEST_ATTR_PORT: __be16 8080 = 0x1f90
    8, 0,    3, 0,    0, 0, 0, 0,           // IPVS_DEST_ATTR_FWD_METHOD: IP_VS_CONN_F_MASQ = 0
    8, 0,    4, 0,    5, 0, 0, 0,           // IPVS_DEST_ATTR_WEIGHT: 5
    8, 0,    5, 0,    0xe8, 0x03, 0, 0,     // IPVS_DEST_ATTR_U_THRESH: 1000 = 0x3e8
    8, 0,    6, 0,    0x20, 0x03, 0, 0,     // IPVS_DEST_ATTR_L_THRESH: 800 = 0x320
];

#[rustfmt::skip]
const GUE: &[u8] = &[
    96, 0,   0x02, 0x80,                    // IPVS_CMD_ATTR_DEST | NLA_F_NESTED, len 4 + 92
    6, 0,    11, 0,   10, 0, 0, 0,          // IPVS_DEST_ATTR_ADDR_FAMILY: AF_INET6
    20, 0,   1, 0,    0x20, 0x01, 0x0d, 0xb8, // IPVS_DEST_ATTR_ADDR: 2001:db8::20
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
    6, 0,    2, 0,    0, 80, 0, 0,          // IPVS_DEST_ATTR_PORT: __be16 80
    8, 0,    3, 0,    2, 0, 0, 0,           // IPVS_DEST_ATTR_FWD_METHOD: IP_VS_CONN_F_TUNNEL = 2
    8, 0,    4, 0,    3, 0, 0, 0,           // IPVS_DEST_ATTR_WEIGHT: 3
    5, 0,    13, 0,   1, 0, 0, 0,           // IPVS_DEST_ATTR_TUN_TYPE (13): u8 GUE = 1, 3 bytes padding
    6, 0,    14, 0,   0x17, 0xc0, 0, 0,     // IPVS_DEST_ATTR_TUN_PORT (14): __be16 6080 = 0x17c0
    6, 0,    15, 0,   1, 0, 0, 0,           // IPVS_DEST_ATTR_TUN_FLAGS (15): u16 ENCAP_FLAG_CSUM = 1
    8, 0,    5, 0,    200, 0, 0, 0,         // IPVS_DEST_ATTR_U_THRESH: 200
    8, 0,    6, 0,    100, 0, 0, 0,         // IPVS_DEST_ATTR_L_THRESH: 100
];

#[test]
fn direct_routing_dest_is_encoded_as_ip_vs_h_lays_it_out() {
    assert_eq!(encode_dest_attrs(&dr()).unwrap(), DR);
}

#[test]
fn nat_dest_with_thresholds_is_encoded_as_ip_vs_h_lays_it_out() {
    assert_eq!(encode_dest_attrs(&nat()).unwrap(), NAT);
}

#[test]
fn gue_tunnel_dest_carries_type_port_and_flags() {
    assert_eq!(encode_dest_attrs(&gue()).unwrap(), GUE);
}

#[test]
fn dests_decode_back_to_themselves() {
    let ipip = IpvsDest::new("10.0.0.12".parse().unwrap(), 0, FwdMethod::Tunnel(Tunnel::default()));
    let gre = IpvsDest::new(
        "10.0.0.13".parse().unwrap(),
        443,
        FwdMethod::Tunnel(Tunnel { kind: TunnelType::Gre, port: 0, flags: tun_flags::REMCSUM }),
    );
    let local = IpvsDest::new("127.0.0.1".parse().unwrap(), 80, FwdMethod::Local);
    for dest in [dr(), nat(), gue(), ipip, gre, local] {
        let bytes = encode_dest_attrs(&dest).unwrap();
        assert_eq!(decode_dest(&bytes, Family::Inet).unwrap(), dest);
    }
}

#[test]
fn values_the_kernel_would_refuse_are_caught_before_sending() {
    let mut heavy = dr();
    heavy.weight = i32::MAX as u32 + 1;
    assert!(encode_dest_attrs(&heavy).is_err());
    let portless = IpvsDest::new("10.0.0.12".parse().unwrap(), 80, FwdMethod::Tunnel(Tunnel { kind: TunnelType::Gue, port: 0, flags: 0 }));
    assert!(encode_dest_attrs(&portless).is_err());
}

#[test]
fn a_new_dest_request_names_the_service_then_the_dest() {
    use neli::ToBytes;
    let message = request(cmd::NEW_DEST, Some(&tcp_web()), Some(&dr())).unwrap();
    let mut cursor = std::io::Cursor::new(Vec::new());
    message.to_bytes(&mut cursor).unwrap();
    let bytes = cursor.into_inner();
    assert_eq!(bytes[..4], [5, 1, 0, 0], "IPVS_CMD_NEW_DEST = 5, version 1");
    assert_eq!(bytes[4..6], [84, 0], "the IPVS_CMD_ATTR_SERVICE nest comes first");
    assert_eq!(&bytes[4 + 84..], DR);
}
