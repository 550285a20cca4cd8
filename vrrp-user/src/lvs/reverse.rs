//! Stateless reverse translation (`lvs_nat_rs`): which NAT real server address:port maps
//! back to which VIP:port with no per-flow state. Pure: `LvsTables` writes the result.
//!
//! A reply meets a node with no `lvs_nat` entry when the flow was started through another
//! node (a VRRP failover, a server that speaks first). If its source (real server
//! address:port, protocol) belongs to exactly one NAT virtual_server, the VIP:port it must
//! come from is known without state. A real server address:port shared by two NAT services
//! is ambiguous and left out (only synced state can translate its replies).
use std::{collections::BTreeMap, net::IpAddr};

use vrrp_common::lvs::{RealServerKey, RealServerVip, addr_words};

use super::plan::ServiceKey;
use crate::config::model::LbKind;

/// One installed service as the reverse map needs it.
pub struct ReverseInput<'a> {
    pub key: ServiceKey,
    pub name: &'a str,
    pub forwarding: LbKind,
    pub index: u32,
    pub vip_index: u32,
    /// Real servers (and the sorry server) as (address, port).
    pub real_servers: Vec<(IpAddr, u16)>,
}

/// A real server address:port that more than one NAT service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous {
    pub key: RealServerKey,
    pub real_server: (IpAddr, u16),
    pub services: Vec<String>,
}

pub fn bytes(addr: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { vrrp_common::guard::FAMILY_IPV4 } else { vrrp_common::guard::FAMILY_IPV6 }
}

/// The `lvs_nat_rs` key of a real server address:port for `protocol` (its replies' source).
pub fn real_server_key(addr: IpAddr, port: u16, protocol: u8) -> RealServerKey {
    RealServerKey { addr: addr_words(&bytes(addr)), port: port.to_be(), proto: protocol, family: family(addr) }
}

/// The entries of `lvs_nat_rs`, and the real servers left out because several NAT services
/// share them. Services of other forwarding methods, port 0 (all ports) services and real
/// servers of another address family than their VIP are not NAT-translatable this way.
pub fn reverse_entries(services: &[ReverseInput]) -> (BTreeMap<RealServerKey, RealServerVip>, Vec<Ambiguous>) {
    let mut owners: BTreeMap<RealServerKey, (Vec<&ReverseInput>, (IpAddr, u16))> = BTreeMap::new();
    for service in services.iter().filter(|s| s.forwarding == LbKind::Nat && s.key.port != 0) {
        for &(addr, port) in &service.real_servers {
            if port == 0 || addr.is_ipv4() != service.key.addr.is_ipv4() {
                continue;
            }
            let key = real_server_key(addr, port, service.key.protocol.number());
            let entry = owners.entry(key).or_insert_with(|| (Vec::new(), (addr, port)));
            if !entry.0.iter().any(|s| s.key == service.key) {
                entry.0.push(service);
            }
        }
    }
    let mut entries = BTreeMap::new();
    let mut ambiguous = Vec::new();
    for (key, (owners, real_server)) in owners {
        if let [only] = owners[..] {
            entries.insert(
                key,
                RealServerVip {
                    vip: bytes(only.key.addr),
                    vip_port: only.key.port.to_be(),
                    family: family(only.key.addr),
                    _pad: 0,
                    service: only.index,
                    vip_index: only.vip_index,
                },
            );
        } else {
            ambiguous.push(Ambiguous { key, real_server, services: owners.iter().map(|s| s.name.to_string()).collect() });
        }
    }
    (entries, ambiguous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::plan::ProtocolKey;

    fn nat(vip: &str, port: u16, index: u32, reals: &[(&str, u16)]) -> ReverseInput<'static> {
        ReverseInput {
            key: ServiceKey { addr: vip.parse().unwrap(), port, protocol: ProtocolKey::Tcp },
            name: "vs",
            forwarding: LbKind::Nat,
            index,
            vip_index: index + 10,
            real_servers: reals.iter().map(|(a, p)| (a.parse().unwrap(), *p)).collect(),
        }
    }

    #[test]
    fn a_real_server_of_one_nat_service_maps_back_to_its_vip_and_port() {
        let (entries, ambiguous) = reverse_entries(&[nat("10.0.0.100", 80, 3, &[("192.168.1.11", 8080), ("192.168.1.12", 8080)])]);
        assert!(ambiguous.is_empty());
        assert_eq!(entries.len(), 2);
        let target = entries[&real_server_key("192.168.1.11".parse().unwrap(), 8080, 6)];
        assert_eq!(target.vip[..4], [10, 0, 0, 100]);
        assert_eq!(u16::from_be(target.vip_port), 80);
        assert_eq!((target.service, target.vip_index, target.family), (3, 13, 4));
    }

    #[test]
    fn a_real_server_address_and_port_shared_by_two_nat_services_is_left_out_and_reported() {
        let (entries, ambiguous) = reverse_entries(&[
            nat("10.0.0.100", 80, 0, &[("192.168.1.11", 8080), ("192.168.1.12", 8080)]),
            nat("10.0.0.101", 80, 1, &[("192.168.1.11", 8080)]),
        ]);
        assert_eq!(entries.len(), 1, "only .12 is unambiguous");
        assert!(entries.contains_key(&real_server_key("192.168.1.12".parse().unwrap(), 8080, 6)));
        assert_eq!(ambiguous.len(), 1);
        assert_eq!(ambiguous[0].real_server, ("192.168.1.11".parse().unwrap(), 8080));
        assert_eq!(ambiguous[0].services.len(), 2);
    }

    #[test]
    fn the_same_address_on_another_port_or_protocol_is_another_real_server() {
        let mut udp = nat("10.0.0.100", 53, 1, &[("192.168.1.11", 8080)]);
        udp.key.protocol = ProtocolKey::Udp;
        let (entries, ambiguous) =
            reverse_entries(&[nat("10.0.0.100", 80, 0, &[("192.168.1.11", 8080), ("192.168.1.11", 8081)]), udp]);
        assert!(ambiguous.is_empty());
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn dr_services_port_0_services_and_ipv6_real_servers_of_ipv4_vips_are_not_mapped() {
        let mut dr = nat("10.0.0.100", 80, 0, &[("192.168.1.11", 80)]);
        dr.forwarding = LbKind::Dr;
        let all_ports = nat("10.0.0.101", 0, 1, &[("192.168.1.12", 0)]);
        let mixed = nat("10.0.0.102", 80, 2, &[("fd00::12", 80)]);
        let (entries, ambiguous) = reverse_entries(&[dr, all_ports, mixed]);
        assert!(entries.is_empty() && ambiguous.is_empty());
    }

    #[test]
    fn ipv6_real_servers_map_back_to_ipv6_vips() {
        let (entries, _) = reverse_entries(&[nat("fd00::100", 443, 0, &[("fd00:1::11", 8443)])]);
        let target = entries[&real_server_key("fd00:1::11".parse().unwrap(), 8443, 6)];
        assert_eq!(target.vip, bytes("fd00::100".parse().unwrap()));
        assert_eq!(target.family, 6);
    }
}
