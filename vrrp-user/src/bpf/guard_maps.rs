//! What the VRRP guard's maps hold for a set of instances (pure), and the seam that writes it.
use std::net::IpAddr;

use anyhow::Result;
use vrrp_common::guard::{
    FAMILY_IPV4, FAMILY_IPV6, PeerKey, VRID_FLAG_UNICAST, VridConfig, VridKey,
};

use crate::config::{Family, model::VrrpInstance};

/// What the guard needs of one vrrp_instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuardInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub family: Family,
    /// Empty means multicast; otherwise adverts are accepted only from these sources.
    pub unicast_peers: Vec<IpAddr>,
}

impl GuardInstance {
    /// None for an instance validation left without interface or VRID (never runs).
    pub fn of(instance: &VrrpInstance) -> Option<GuardInstance> {
        Some(GuardInstance {
            name: instance.name.clone(),
            interface: instance.interface.clone()?,
            vrid: instance.virtual_router_id?,
            family: instance.family,
            unicast_peers: instance.unicast_peer.clone(),
        })
    }
}

/// Rows for `vrids` and `vrrp_peers`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GuardEntries {
    pub vrids: Vec<(VridKey, VridConfig)>,
    pub peers: Vec<PeerKey>,
}

/// The guard's maps as the controller writes them (real: aya maps; tests: a fake).
pub trait GuardMaps {
    fn put_vrid(&mut self, key: VridKey, config: VridConfig) -> Result<()>;
    fn put_peer(&mut self, key: PeerKey) -> Result<()>;
    fn remove_vrid(&mut self, key: VridKey) -> Result<()>;
    fn remove_peer(&mut self, key: PeerKey) -> Result<()>;

    /// Moves the maps from `old` to `new` rows: new rows are written before stale ones go,
    /// so an instance present in both is never unguarded in between.
    fn replace(&mut self, old: &GuardEntries, new: &GuardEntries) -> Result<()> {
        self.put_all(new)?;
        for (key, _) in old.vrids.iter().filter(|(key, _)| !new.vrids.iter().any(|(k, _)| k == key)) {
            self.remove_vrid(*key)?;
        }
        for key in old.peers.iter().filter(|key| !new.peers.contains(key)) {
            self.remove_peer(*key)?;
        }
        Ok(())
    }

    fn put_all(&mut self, entries: &GuardEntries) -> Result<()> {
        for (key, config) in &entries.vrids {
            self.put_vrid(*key, *config)?;
        }
        for key in &entries.peers {
            self.put_peer(*key)?;
        }
        Ok(())
    }
}

pub fn family_tag(family: Family) -> u8 {
    match family {
        Family::Ipv4 => FAMILY_IPV4,
        Family::Ipv6 => FAMILY_IPV6,
    }
}

pub fn address_bytes(address: &IpAddr) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    match address {
        IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes = v6.octets(),
    }
    bytes
}

/// The rows for `instances`, each on the interface index `ifindex_of` gives its interface.
pub fn guard_entries(
    instances: &[GuardInstance],
    mut ifindex_of: impl FnMut(&str) -> Result<u32>,
) -> Result<GuardEntries> {
    let mut entries = GuardEntries::default();
    for instance in instances {
        let ifindex = ifindex_of(&instance.interface)?;
        let family = family_tag(instance.family);
        let flags = if instance.unicast_peers.is_empty() { 0 } else { VRID_FLAG_UNICAST };
        entries.vrids.push((VridKey::new(ifindex, instance.vrid, family), VridConfig { flags }));
        for peer in &instance.unicast_peers {
            entries.peers.push(PeerKey::new(ifindex, instance.vrid, family, address_bytes(peer)));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(interface: &str, vrid: u8, family: Family, peers: &[&str]) -> GuardInstance {
        GuardInstance {
            name: format!("VI_{vrid}"),
            interface: interface.into(),
            vrid,
            family,
            unicast_peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_multicast_instance_is_one_vrid_row_without_the_unicast_flag() {
        let entries =
            guard_entries(&[spec("eth0", 51, Family::Ipv4, &[])], |_| Ok(7)).unwrap();
        assert_eq!(entries.vrids, vec![(VridKey::new(7, 51, FAMILY_IPV4), VridConfig { flags: 0 })]);
        assert!(entries.peers.is_empty());
    }

    #[test]
    fn a_unicast_instance_flags_its_vrid_and_lists_each_peer() {
        let entries = guard_entries(
            &[spec("eth1", 9, Family::Ipv6, &["fd00::2", "fd00::3"])],
            |name| Ok(if name == "eth1" { 3 } else { 0 }),
        )
        .unwrap();
        assert_eq!(entries.vrids[0].1.flags, VRID_FLAG_UNICAST);
        assert_eq!(entries.peers.len(), 2);
        assert_eq!(entries.peers[1].addr[15], 3);
        assert_eq!((entries.peers[1].ifindex, entries.peers[1].family), (3, FAMILY_IPV6));
    }

    #[test]
    fn ipv4_peers_use_the_first_four_bytes() {
        assert_eq!(address_bytes(&"10.1.2.3".parse().unwrap())[..5], [10, 1, 2, 3, 0]);
    }

    #[test]
    fn an_unknown_interface_fails_with_the_resolvers_error() {
        let result = guard_entries(&[spec("nope", 1, Family::Ipv4, &[])], |name| {
            anyhow::bail!("interface {name} does not exist")
        });
        assert_eq!(result.unwrap_err().to_string(), "interface nope does not exist");
    }

    #[derive(Default)]
    struct FakeMaps {
        vrids: Vec<VridKey>,
        peers: Vec<PeerKey>,
    }

    impl GuardMaps for FakeMaps {
        fn put_vrid(&mut self, key: VridKey, _config: VridConfig) -> Result<()> {
            if !self.vrids.contains(&key) {
                self.vrids.push(key);
            }
            Ok(())
        }
        fn put_peer(&mut self, key: PeerKey) -> Result<()> {
            if !self.peers.contains(&key) {
                self.peers.push(key);
            }
            Ok(())
        }
        fn remove_vrid(&mut self, key: VridKey) -> Result<()> {
            self.vrids.retain(|k| *k != key);
            Ok(())
        }
        fn remove_peer(&mut self, key: PeerKey) -> Result<()> {
            self.peers.retain(|k| *k != key);
            Ok(())
        }
    }

    #[test]
    fn replace_writes_new_rows_and_removes_only_stale_ones() {
        let old = guard_entries(&[spec("a", 1, Family::Ipv4, &["10.0.0.2"]), spec("a", 2, Family::Ipv4, &[])], |_| Ok(2)).unwrap();
        let new = guard_entries(&[spec("a", 2, Family::Ipv4, &[]), spec("a", 3, Family::Ipv4, &[])], |_| Ok(2)).unwrap();
        let mut maps = FakeMaps::default();
        maps.put_all(&old).unwrap();
        maps.replace(&old, &new).unwrap();
        let vrids: Vec<u8> = maps.vrids.iter().map(|k| k.vrid).collect();
        assert_eq!(vrids, [2, 3]);
        assert!(maps.peers.is_empty());
    }

    #[test]
    fn put_all_writes_every_row_through_the_seam() {
        let entries = guard_entries(
            &[spec("a", 1, Family::Ipv4, &["10.0.0.2"]), spec("a", 2, Family::Ipv4, &[])],
            |_| Ok(2),
        )
        .unwrap();
        let mut maps = FakeMaps::default();
        maps.put_all(&entries).unwrap();
        assert_eq!(maps.vrids.len(), 2);
        assert_eq!(maps.peers.len(), 1);
    }
}
