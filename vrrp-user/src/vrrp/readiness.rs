//! Whether an instance's interface can carry it (pure): it exists, is up (unless
//! `dont_track_primary`), and has an address to send adverts from — the configured
//! `mcast_src_ip` / `unicast_src_ip`, else for IPv4 its primary address and for IPv6 a
//! link-local address that finished DAD (RFC 9568 §5.1.2.1). Until then the instance waits
//! in FAULT, as keepalived's does.
use std::{fmt, net::IpAddr};

use super::spec::InstanceSpec;
use crate::{
    config::Family,
    net::{Interfaces, LinkFacts},
};

/// The interface is usable: its index, and the address adverts go from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub ifindex: u32,
    pub source: IpAddr,
}

/// Why not (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    Missing,
    Down,
    NoAddress,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Waiting::Missing => "missing",
            Waiting::Down => "down",
            Waiting::NoAddress => "no usable address",
        })
    }
}

fn link_local(address: &IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

fn present<'a>(spec: &InstanceSpec, interfaces: &'a Interfaces) -> Result<&'a LinkFacts, Waiting> {
    let link = interfaces.by_name(&spec.interface).ok_or(Waiting::Missing)?;
    if spec.track_primary && !link.up {
        return Err(Waiting::Down);
    }
    Ok(link)
}

/// Where the instance can run now, or why it cannot.
pub fn readiness(spec: &InstanceSpec, interfaces: &Interfaces) -> Result<Ready, Waiting> {
    let link = present(spec, interfaces)?;
    let source = match spec.source {
        Some(source) => Some(source).filter(|source| link.usable(*source)),
        None => link
            .addresses
            .iter()
            .filter(|(address, usable)| *usable && !spec.addresses.iter().any(|vip| vip.address == *address))
            .map(|(address, _)| *address)
            .find(|address| match spec.family {
                Family::Ipv4 => address.is_ipv4(),
                Family::Ipv6 => link_local(address),
            }),
    };
    let source = source.ok_or(Waiting::NoAddress)?;
    Ok(Ready { ifindex: link.ifindex, source })
}

/// Whether the interface the instance runs on is still usable as it was opened: the same
/// link, up, its source address still there (another address appearing changes nothing).
pub fn still_ready(spec: &InstanceSpec, interfaces: &Interfaces, opened: &Ready) -> Result<(), Waiting> {
    let link = present(spec, interfaces)?;
    if link.ifindex != opened.ifindex {
        // Deleted and made again under the same name.
        return Err(Waiting::Missing);
    }
    if !link.usable(opened.source) {
        return Err(Waiting::NoAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{net::NetEvent, vrrp::spec::tests::spec_v4};

    fn link(ifindex: u32, up: bool) -> NetEvent {
        NetEvent::Link { ifindex, name: "eth0".into(), up, deleted: false }
    }

    fn address(ifindex: u32, address: &str, usable: bool) -> NetEvent {
        NetEvent::Address { ifindex, address: address.parse().unwrap(), usable, removed: false }
    }

    fn ipv6(spec: &mut InstanceSpec) {
        spec.family = Family::Ipv6;
        spec.addresses = vec![crate::vrrp::spec::tests::vip("fd00::100/64")];
    }

    #[test]
    fn an_ipv4_instance_runs_from_the_interfaces_primary_address_once_it_is_up() {
        let spec = spec_v4();
        assert_eq!(readiness(&spec, &Interfaces::of(&[])), Err(Waiting::Missing));
        assert_eq!(readiness(&spec, &Interfaces::of(&[link(2, false), address(2, "10.0.0.2", true)])), Err(Waiting::Down));
        assert_eq!(readiness(&spec, &Interfaces::of(&[link(2, true)])), Err(Waiting::NoAddress));
        let up = Interfaces::of(&[link(2, true), address(2, "10.0.0.2", true), address(2, "10.0.0.3", true)]);
        assert_eq!(readiness(&spec, &up), Ok(Ready { ifindex: 2, source: "10.0.0.2".parse().unwrap() }));
    }

    #[test]
    fn a_virtual_address_left_on_the_interface_is_never_the_source() {
        let spec = spec_v4();
        let table = Interfaces::of(&[link(2, true), address(2, "10.0.0.100", true), address(2, "10.0.0.2", true)]);
        assert_eq!(readiness(&spec, &table).unwrap().source, "10.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn an_ipv6_instance_waits_for_a_link_local_address_that_finished_dad_rfc9568_5_1_2_1() {
        let mut spec = spec_v4();
        ipv6(&mut spec);
        let tentative = Interfaces::of(&[link(2, true), address(2, "fd00::2", true), address(2, "fe80::2", false)]);
        assert_eq!(readiness(&spec, &tentative), Err(Waiting::NoAddress));
        let usable = Interfaces::of(&[link(2, true), address(2, "fd00::2", true), address(2, "fe80::2", true)]);
        assert_eq!(readiness(&spec, &usable).unwrap().source, "fe80::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_configured_source_must_be_on_the_interface() {
        let spec = InstanceSpec { source: Some("10.0.0.3".parse().unwrap()), ..spec_v4() };
        let without = Interfaces::of(&[link(2, true), address(2, "10.0.0.2", true)]);
        assert_eq!(readiness(&spec, &without), Err(Waiting::NoAddress));
        let with = Interfaces::of(&[link(2, true), address(2, "10.0.0.2", true), address(2, "10.0.0.3", true)]);
        assert_eq!(readiness(&spec, &with).unwrap().source, "10.0.0.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn dont_track_primary_runs_on_a_down_interface() {
        let spec = InstanceSpec { track_primary: false, ..spec_v4() };
        let down = Interfaces::of(&[link(2, false), address(2, "10.0.0.2", true)]);
        assert!(readiness(&spec, &down).is_ok());
    }

    #[test]
    fn an_opened_instance_stays_until_its_link_goes_down_is_replaced_or_loses_its_source() {
        let spec = spec_v4();
        let opened = Ready { ifindex: 2, source: "10.0.0.2".parse().unwrap() };
        let mut table = Interfaces::of(&[link(2, true), address(2, "10.0.0.2", true)]);
        assert_eq!(still_ready(&spec, &table, &opened), Ok(()));
        table.apply(&address(2, "10.0.0.1", true));
        assert_eq!(still_ready(&spec, &table, &opened), Ok(()), "another address changes nothing");
        table.apply(&link(2, false));
        assert_eq!(still_ready(&spec, &table, &opened), Err(Waiting::Down));
        let replaced = Interfaces::of(&[link(9, true), address(9, "10.0.0.2", true)]);
        assert_eq!(still_ready(&spec, &replaced, &opened), Err(Waiting::Missing));
        let lost = Interfaces::of(&[link(2, true), address(2, "10.0.0.5", true)]);
        assert_eq!(still_ready(&spec, &lost, &opened), Err(Waiting::NoAddress));
    }
}
