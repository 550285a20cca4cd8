//! The balancer's flow state read from the pinned `lvs_conntrack` and `lvs_nat` maps (any
//! process can, as bpftool does): what `keepxdp lvs --connections` lists and the metrics count.
use std::{net::SocketAddr, path::Path};

use anyhow::{Context, Result};
use aya::maps::{HashMap, Map, MapData};
use serde::Serialize;
use vrrp_common::{
    lvs::{FLOW_NAT_FORWARD, FLOW_PERSISTENCE, Flow, FlowKey, NatReverse},
    pins::{MAP_LVS_CONNTRACK, MAP_LVS_NAT},
};

use super::lvs_stats::ip;

/// Which map an entry is in and what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// `lvs_conntrack`, one flow (DR/TUN on a ring slot that changed).
    Conntrack,
    /// `lvs_nat`, a NAT connection's request direction.
    Nat,
    /// A persistence template (client address → real server, any source port).
    Persistence,
}

/// One connection or persistence template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowEntry {
    pub kind: FlowKind,
    pub protocol: u8,
    pub source: SocketAddr,
    pub virtual_address: SocketAddr,
    /// Index into `lvs_backends`.
    pub backend: u32,
    /// Coarse monotonic seconds of the last packet (persistence templates; 0 otherwise).
    pub last_seen: u32,
}

/// Every entry of both maps, plus how many NAT reply entries there are (they mirror the
/// request entries and are not listed).
#[derive(Debug, Default, Serialize)]
pub struct FlowTables {
    pub entries: Vec<FlowEntry>,
    pub nat_replies: u64,
    pub conntrack_entries: u64,
    pub nat_entries: u64,
    pub conntrack_capacity: u32,
    pub nat_capacity: u32,
}

fn bytes(words: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    out
}

/// A map key as the wire showed it: (source, destination).
pub fn endpoints(key: &FlowKey) -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::new(ip(&bytes(&key.src), key.family), u16::from_be(key.src_port)),
        SocketAddr::new(ip(&bytes(&key.dst), key.family), u16::from_be(key.dst_port)),
    )
}

fn entry(key: &FlowKey, kind: FlowKind, backend: u32, last_seen: u32) -> FlowEntry {
    let (source, virtual_address) = endpoints(key);
    FlowEntry { kind, protocol: key.proto, source, virtual_address, backend, last_seen }
}

/// Sorts the raw entries of both maps into `FlowTables` (pure: the map reads are below).
pub fn classify(conntrack: impl IntoIterator<Item = (FlowKey, Flow)>, nat: impl IntoIterator<Item = (FlowKey, NatReverse)>) -> FlowTables {
    let mut tables = FlowTables::default();
    for (key, flow) in conntrack {
        tables.conntrack_entries += 1;
        let kind = if key.flags & FLOW_PERSISTENCE != 0 { FlowKind::Persistence } else { FlowKind::Conntrack };
        tables.entries.push(entry(&key, kind, flow.backend, flow.last_seen));
    }
    for (key, value) in nat {
        tables.nat_entries += 1;
        if key.flags & FLOW_NAT_FORWARD == 0 {
            tables.nat_replies += 1;
            continue;
        }
        let kind = if key.flags & FLOW_PERSISTENCE != 0 { FlowKind::Persistence } else { FlowKind::Nat };
        tables.entries.push(entry(&key, kind, value.backend, value.last_seen));
    }
    tables.entries.sort_by_key(|e| (e.virtual_address, e.source, e.kind as u8));
    tables
}

/// The pinned map and its capacity (max_entries).
fn open(dir: &Path, name: &str) -> Result<(Map, u32)> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {} (is keepxdp running with --pin-dir {}?)", path.display(), dir.display()))?;
    let capacity = data.info()?.max_entries();
    Ok((Map::from_map_data(data)?, capacity))
}

/// Reads `<pin_dir>/lvs_conntrack` and `<pin_dir>/lvs_nat`.
pub fn read_flows(dir: &Path) -> Result<FlowTables> {
    let (conntrack_map, conntrack_capacity) = open(dir, MAP_LVS_CONNTRACK)?;
    let (nat_map, nat_capacity) = open(dir, MAP_LVS_NAT)?;
    let conntrack: HashMap<MapData, FlowKey, Flow> = HashMap::try_from(conntrack_map)?;
    let nat: HashMap<MapData, FlowKey, NatReverse> = HashMap::try_from(nat_map)?;
    // Entries can be evicted while the keys are walked: a vanished one is skipped.
    let mut tables = classify(conntrack.iter().filter_map(Result::ok), nat.iter().filter_map(Result::ok));
    tables.conntrack_capacity = conntrack_capacity;
    tables.nat_capacity = nat_capacity;
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_common::{guard::FAMILY_IPV4, lvs::addr_words};

    fn key(src: [u8; 4], sport: u16, flags: u16) -> FlowKey {
        let mut s = [0u8; 16];
        s[..4].copy_from_slice(&src);
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&[10, 0, 0, 100]);
        FlowKey { src: addr_words(&s), dst: addr_words(&d), src_port: sport.to_be(), dst_port: 80u16.to_be(), proto: 6, family: FAMILY_IPV4, flags }
    }

    #[test]
    fn forward_entries_and_templates_are_listed_and_replies_counted() {
        let tables = classify(
            [(key([10, 0, 0, 1], 40000, 0), Flow { backend: 2, last_seen: 0 }), (key([10, 0, 0, 9], 0, FLOW_PERSISTENCE), Flow { backend: 1, last_seen: 77 })],
            [
                (key([10, 0, 0, 5], 41000, FLOW_NAT_FORWARD), NatReverse { backend: 3, ..NatReverse::default() }),
                (key([10, 1, 0, 11], 8080, 0), NatReverse { backend: 3, ..NatReverse::default() }),
            ],
        );
        assert_eq!((tables.conntrack_entries, tables.nat_entries, tables.nat_replies), (2, 2, 1));
        let listed: Vec<(FlowKind, String, u32)> = tables.entries.iter().map(|e| (e.kind, e.source.to_string(), e.backend)).collect();
        assert_eq!(
            listed,
            [(FlowKind::Conntrack, "10.0.0.1:40000".into(), 2), (FlowKind::Nat, "10.0.0.5:41000".into(), 3), (FlowKind::Persistence, "10.0.0.9:0".into(), 1)]
        );
        assert_eq!(tables.entries[0].virtual_address.to_string(), "10.0.0.100:80");
        assert_eq!(tables.entries[2].last_seen, 77);
    }
}
