//! The VRRP guard, loaded into the kernel and run on crafted frames with BPF_PROG_TEST_RUN.
//! Each test names the RFC rule or keepalived behaviour it checks.
use anyhow::Result;
use keepxdp::config::Family::{Ipv4, Ipv6};
use keepxdp_lab::frames::{Advert, tcp_syn};
use keepxdp_tests::{counter, guard_with, instance};
use vrrp_common::{
    guard::{FAMILY_IPV4, FAMILY_IPV6, GuardReason},
    lvs::LvsReason,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

#[test]
fn bpf_valid_v2_advert_for_a_configured_vrid_passes_unchanged_and_is_counted_accepted() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    let frame = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]).frame();
    let (verdict, out) = guard.run_guard(&frame)?;
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame, "the guard never rewrites an advert");
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::Accepted)?, 1);
    Ok(())
}

#[test]
fn bpf_valid_v3_ipv4_advert_passes() -> Result<()> {
    let mut guard = guard_with(&[instance(52, Ipv4, &[])])?;
    let (verdict, _) = guard.run_guard(&Advert::v3(52, "10.0.0.1", &["10.0.0.100", "10.0.0.101"]).frame())?;
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(counter(&guard, 52, FAMILY_IPV4, GuardReason::Accepted)?, 1);
    Ok(())
}

#[test]
fn bpf_valid_v3_ipv6_advert_passes() -> Result<()> {
    let mut guard = guard_with(&[instance(53, Ipv6, &[])])?;
    let (verdict, _) = guard.run_guard(&Advert::v3(53, "fe80::1", &["fd00::53"]).frame())?;
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(counter(&guard, 53, FAMILY_IPV6, GuardReason::Accepted)?, 1);
    Ok(())
}

#[test]
fn bpf_ttl_other_than_255_is_dropped_as_bad_ttl() -> Result<()> {
    // RFC 9568 §7.1: "MUST verify that the IPv4 TTL is 255" (hop limit for IPv6).
    let mut guard = guard_with(&[instance(51, Ipv4, &[]), instance(51, Ipv6, &[])])?;
    let mut v4 = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]);
    v4.ttl = 254;
    let mut v6 = Advert::v3(51, "fe80::1", &["fd00::1"]);
    v6.ttl = 1;
    assert_eq!(guard.run_guard(&v4.frame())?.0, XDP_DROP);
    assert_eq!(guard.run_guard(&v6.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::BadTtl)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV6, GuardReason::BadTtl)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::Accepted)?, 0);
    Ok(())
}

#[test]
fn bpf_unknown_version_and_v2_over_ipv6_are_dropped_as_bad_version() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[]), instance(51, Ipv6, &[])])?;
    let mut v4 = Advert::v3(51, "10.0.0.1", &["10.0.0.100"]);
    v4.version = 4;
    // VRRPv2 is IPv4-only (RFC 3768).
    let v2_over_v6 = Advert::v2(51, "fe80::1", &["fd00::1"]);
    assert_eq!(guard.run_guard(&v4.frame())?.0, XDP_DROP);
    assert_eq!(guard.run_guard(&v2_over_v6.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::BadVersion)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV6, GuardReason::BadVersion)?, 1);
    Ok(())
}

#[test]
fn bpf_type_other_than_advertisement_is_dropped_as_bad_type() -> Result<()> {
    // "The only packet type defined in this version of the protocol is: 1 ADVERTISEMENT".
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    let mut advert = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]);
    advert.kind = 2;
    assert_eq!(guard.run_guard(&advert.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::BadType)?, 1);
    Ok(())
}

#[test]
fn bpf_an_address_count_longer_than_the_packet_is_dropped_as_truncated() -> Result<()> {
    // RFC 9568 §7.1: "MUST verify that the received packet contains the complete VRRP
    // packet (including fixed fields, and IPvX address(es))".
    let mut guard = guard_with(&[instance(51, Ipv4, &[]), instance(51, Ipv6, &[])])?;
    let mut v4 = Advert::v3(51, "10.0.0.1", &["10.0.0.100"]);
    v4.count_override = Some(3);
    let mut v6 = Advert::v3(51, "fe80::1", &["fd00::1", "fd00::2"]);
    v6.count_override = Some(4);
    assert_eq!(guard.run_guard(&v4.frame())?.0, XDP_DROP);
    assert_eq!(guard.run_guard(&v6.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::Truncated)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV6, GuardReason::Truncated)?, 1);
    Ok(())
}

#[test]
fn bpf_a_v2_advert_without_its_auth_data_is_dropped_as_truncated() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    let mut advert = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]);
    let full = advert.frame().len();
    advert.truncate_to = Some(full - 8);
    assert_eq!(guard.run_guard(&advert.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::Truncated)?, 1);
    Ok(())
}

#[test]
fn bpf_a_frame_cut_inside_the_vrrp_header_is_counted_truncated_under_vrid_0() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    let mut advert = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]);
    advert.truncate_to = Some(14 + 20 + 3);
    assert_eq!(guard.run_guard(&advert.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 0, FAMILY_IPV4, GuardReason::Truncated)?, 1);
    Ok(())
}

#[test]
fn bpf_a_vrid_not_configured_on_the_interface_is_dropped_as_unknown_vrid() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    assert_eq!(guard.run_guard(&Advert::v2(52, "10.0.0.1", &["10.0.0.100"]).frame())?.0, XDP_DROP);
    // The VRID is configured for IPv4 only: an IPv6 advert for it is unknown too.
    assert_eq!(guard.run_guard(&Advert::v3(51, "fe80::1", &["fd00::1"]).frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 52, FAMILY_IPV4, GuardReason::UnknownVrid)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV6, GuardReason::UnknownVrid)?, 1);
    Ok(())
}

#[test]
fn bpf_a_unicast_instance_accepts_only_its_peers() -> Result<()> {
    let mut guard = guard_with(&[instance(60, Ipv4, &["10.0.0.2"]), instance(61, Ipv6, &["fd00::2"])])?;
    assert_eq!(guard.run_guard(&Advert::v2(60, "10.0.0.2", &["10.0.0.100"]).frame())?.0, XDP_PASS);
    assert_eq!(guard.run_guard(&Advert::v2(60, "10.0.0.9", &["10.0.0.100"]).frame())?.0, XDP_DROP);
    assert_eq!(guard.run_guard(&Advert::v3(61, "fd00::2", &["fd00::100"]).frame())?.0, XDP_PASS);
    assert_eq!(guard.run_guard(&Advert::v3(61, "fd00::3", &["fd00::100"]).frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 60, FAMILY_IPV4, GuardReason::Accepted)?, 1);
    assert_eq!(counter(&guard, 60, FAMILY_IPV4, GuardReason::ForeignSource)?, 1);
    assert_eq!(counter(&guard, 61, FAMILY_IPV6, GuardReason::Accepted)?, 1);
    assert_eq!(counter(&guard, 61, FAMILY_IPV6, GuardReason::ForeignSource)?, 1);
    Ok(())
}

#[test]
fn bpf_a_unicast_peers_advert_may_arrive_routed_but_a_multicast_one_may_not() -> Result<()> {
    // keepalived sends IPv6 unicast adverts with the default hop limit; their source is
    // what is checked.
    let mut guard = guard_with(&[instance(61, Ipv6, &["fd00::2"]), instance(51, Ipv4, &[])])?;
    let mut unicast = Advert::v3(61, "fd00::2", &["fd00::100"]);
    unicast.ttl = 64;
    assert_eq!(guard.run_guard(&unicast.frame())?.0, XDP_PASS);
    let mut stranger = unicast.clone();
    stranger.source = "fd00::3".parse().unwrap();
    assert_eq!(guard.run_guard(&stranger.frame())?.0, XDP_DROP);
    let mut multicast = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]);
    multicast.ttl = 64;
    assert_eq!(guard.run_guard(&multicast.frame())?.0, XDP_DROP);
    assert_eq!(counter(&guard, 61, FAMILY_IPV6, GuardReason::Accepted)?, 1);
    assert_eq!(counter(&guard, 61, FAMILY_IPV6, GuardReason::ForeignSource)?, 1);
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::BadTtl)?, 1);
    Ok(())
}

#[test]
fn bpf_a_multicast_instance_accepts_any_source() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    assert_eq!(guard.run_guard(&Advert::v2(51, "192.0.2.77", &["10.0.0.100"]).frame())?.0, XDP_PASS);
    Ok(())
}

#[test]
fn bpf_non_vrrp_traffic_is_tail_called_into_the_balancer() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    // A fragment: the balancer passes it to the stack and counts it, which shows it ran.
    let mut frame = tcp_syn([10, 0, 0, 100]);
    frame[14 + 6] = 0x20;
    let (verdict, out) = guard.run_guard(&frame)?;
    assert_eq!(verdict, XDP_PASS, "the balancer passes fragments");
    assert_eq!(out, frame);
    assert_eq!(guard.balancer_reason_count(LvsReason::Fragment)?, 1, "the frame reached the balancer");
    assert!(guard.guard_stat_totals()?.is_empty(), "non-VRRP frames are not guard decisions");
    Ok(())
}

#[test]
fn bpf_non_vrrp_traffic_passes_to_the_stack_when_the_balancer_slot_is_empty() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[])])?;
    guard.unchain_balancer()?;
    let mut frame = tcp_syn([10, 0, 0, 100]);
    frame[14 + 6] = 0x20;
    let (verdict, out) = guard.run_guard(&frame)?;
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame);
    assert_eq!(guard.balancer_reason_count(LvsReason::Fragment)?, 0);
    // A non-IP frame (ARP) goes the same way.
    let mut arp = frame.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(guard.run_guard(&arp)?.0, XDP_PASS);
    Ok(())
}

#[test]
fn bpf_counters_add_up_per_vrid_and_reason() -> Result<()> {
    let mut guard = guard_with(&[instance(51, Ipv4, &[]), instance(52, Ipv4, &[])])?;
    let mut bad_ttl = Advert::v2(52, "10.0.0.1", &["10.0.0.100"]);
    bad_ttl.ttl = 64;
    for _ in 0..5 {
        guard.run_guard(&Advert::v2(51, "10.0.0.1", &["10.0.0.100"]).frame())?;
    }
    for _ in 0..3 {
        guard.run_guard(&bad_ttl.frame())?;
        guard.run_guard(&Advert::v2(99, "10.0.0.1", &["10.0.0.100"]).frame())?;
    }
    assert_eq!(counter(&guard, 51, FAMILY_IPV4, GuardReason::Accepted)?, 5);
    assert_eq!(counter(&guard, 52, FAMILY_IPV4, GuardReason::BadTtl)?, 3);
    assert_eq!(counter(&guard, 52, FAMILY_IPV4, GuardReason::Accepted)?, 0);
    assert_eq!(counter(&guard, 99, FAMILY_IPV4, GuardReason::UnknownVrid)?, 3);
    assert_eq!(guard.guard_stat_totals()?.len(), 3, "one row per (VRID, reason) seen");
    Ok(())
}
