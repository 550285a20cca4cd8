//! Decoding dump replies laid out as the kernel's ip_vs_genl_fill_service and
//! ip_vs_genl_fill_dest write them: every attribute, HASHED in the flags, STATS and
//! STATS64 nests, and attribute types this code does not know.
#![cfg(target_endian = "little")]
use crate::lvs::ipvs::attrs::svc_flags;
use crate::lvs::ipvs::{Family, FwdMethod, IpvsDest, decode_dest, decode_service};

use super::golden_service::udp_dns6;

/// One attribute, padded to 4 bytes (independent of the encoder under test).
fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(payload);
    out.resize(len.div_ceil(4) * 4, 0);
    out
}

fn nest(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    nla(kind | 0x8000, &children.concat())
}

/// IPVS_SVC_ATTR_STATS / STATS64 contents (IPVS_STATS_ATTR_*): CONNS = 1, INPKTS = 2,
/// INBYTES = 4 (u64, after a PAD = 11 attribute as nla_put_u64_64bit writes it).
fn stats(kind: u16, wide: bool) -> Vec<u8> {
    let counter = |k: u16, v: u64| if wide { nla(k, &v.to_le_bytes()) } else { nla(k, &(v as u32).to_le_bytes()) };
    nest(kind, &[counter(1, 42), counter(2, 1000), nla(11, &[]), nla(4, &123_456u64.to_le_bytes())])
}

#[rustfmt::skip]
fn dns6_dump_reply() -> Vec<u8> {
    let mut addr = vec![0x20, 0x01, 0x0d, 0xb8];
    addr.extend_from_slice(&[0; 11]);
    addr.push(0x10);
    let mut flags = (svc_flags::PERSISTENT | svc_flags::HASHED).to_le_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_le_bytes());
    nest(1, &[                                   // IPVS_CMD_ATTR_SERVICE
        nla(1, &10u16.to_le_bytes()),            // AF: AF_INET6
        nla(2, &17u16.to_le_bytes()),            // PROTOCOL: UDP
        nla(3, &addr),                           // ADDR: 2001:db8::10
        nla(4, &53u16.to_be_bytes()),            // PORT: 53 (__be16)
        nla(6, b"wlc\0"),                        // SCHED_NAME
        nla(7, &flags),                          // FLAGS: PERSISTENT | HASHED, mask ~0
        nla(8, &300u32.to_le_bytes()),           // TIMEOUT: 300
        nla(9, &128u32.to_le_bytes()),           // NETMASK: 128
        stats(10, false),                        // STATS (32-bit counters)
        stats(12, true),                         // STATS64
        nla(13, &[1, 2, 3]),                     // a type newer than this code: skipped
    ])
}

#[rustfmt::skip]
fn dr_dump_reply() -> Vec<u8> {
    let mut addr = vec![10, 0, 0, 11];
    addr.extend_from_slice(&[0; 12]);
    nest(2, &[                                   // IPVS_CMD_ATTR_DEST
        nla(1, &addr),                           // ADDR: 10.0.0.11
        nla(2, &80u16.to_be_bytes()),            // PORT: 80
        nla(3, &3u32.to_le_bytes()),             // FWD_METHOD: DROUTE
        nla(4, &2u32.to_le_bytes()),             // WEIGHT: 2
        nla(13, &[0]),                           // TUN_TYPE: ipip (sent for every dest)
        nla(14, &0u16.to_be_bytes()),            // TUN_PORT
        nla(15, &0u16.to_le_bytes()),            // TUN_FLAGS
        nla(5, &0u32.to_le_bytes()),             // U_THRESH
        nla(6, &0u32.to_le_bytes()),             // L_THRESH
        nla(7, &17u32.to_le_bytes()),            // ACTIVE_CONNS
        nla(8, &4u32.to_le_bytes()),             // INACT_CONNS
        nla(9, &0u32.to_le_bytes()),             // PERSIST_CONNS
        nla(11, &2u16.to_le_bytes()),            // ADDR_FAMILY: AF_INET
        stats(10, false),                        // STATS
        stats(12, true),                         // STATS64
        nla(16, &[9; 8]),                        // unknown
    ])
}

#[test]
fn a_service_dump_reply_with_stats_and_unknown_attributes_decodes() {
    // HASHED is the kernel's bookkeeping: the live service equals the one that was added.
    assert_eq!(decode_service(&dns6_dump_reply()).unwrap(), udp_dns6());
}

#[test]
fn a_dest_dump_reply_with_counters_and_stats_decodes() {
    let mut expected = IpvsDest::new("10.0.0.11".parse().unwrap(), 80, FwdMethod::DirectRoute);
    expected.weight = 2;
    assert_eq!(decode_dest(&dr_dump_reply(), Family::Inet6).unwrap(), expected, "ADDR_FAMILY wins over the fallback");
}

#[test]
fn a_dest_without_addr_family_takes_the_services() {
    let mut addr = vec![10, 0, 0, 12];
    addr.extend_from_slice(&[0; 12]);
    let reply = nest(2, &[
        nla(1, &addr),
        nla(2, &0u16.to_be_bytes()),
        nla(3, &0u32.to_le_bytes()),
        nla(4, &1u32.to_le_bytes()),
    ]);
    let dest = decode_dest(&reply, Family::Inet).unwrap();
    assert_eq!(dest, IpvsDest::new("10.0.0.12".parse().unwrap(), 0, FwdMethod::Masq));
}

#[test]
fn malformed_bytes_are_errors_not_panics() {
    let reply = dns6_dump_reply();
    for cut in [0, 2, 4, 7, 30, reply.len() - 1] {
        assert!(decode_service(&reply[..cut]).is_err(), "cut at {cut}");
    }
    assert!(decode_dest(&reply, Family::Inet).is_err(), "a service nest is not a dest");
    let no_af = nest(1, &[nla(2, &6u16.to_le_bytes()), nla(6, b"rr\0")]);
    assert!(decode_service(&no_af).unwrap_err().to_string().contains("IPVS_SVC_ATTR_AF is missing"));
    let short_addr = nest(1, &[nla(1, &10u16.to_le_bytes()), nla(2, &6u16.to_le_bytes()), nla(3, &[0; 4]), nla(4, &[0, 80]), nla(6, b"rr\0")]);
    assert!(decode_service(&short_addr).is_err(), "an IPv6 service needs a 16-byte address");
    let bad_proto = nest(1, &[nla(1, &2u16.to_le_bytes()), nla(2, &1u16.to_le_bytes()), nla(3, &[0; 16]), nla(4, &[0, 80]), nla(6, b"rr\0")]);
    assert!(decode_service(&bad_proto).is_err(), "ICMP is no IPVS protocol");
}
