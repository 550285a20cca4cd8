//! `keepxdp lvs --connections` (`-c`): the flow state the balancer keeps, laid out like
//! `ipvsadm -Lcn`. What is listed is what the data plane holds state for: every NAT
//! connection (its request entry in `lvs_nat`), DR/TUN flows on ring slots that changed
//! (`lvs_conntrack`), and persistence templates. A DR/TUN flow on an unchanged slot needs no
//! state (the ring alone decides), so it is not listed; nor is TCP state kept (the data plane
//! sees one direction of DR traffic, and NAT entries live until the LRU evicts them), so the
//! state column says `-`, and `NONE` for templates as ipvsadm does.
use std::{collections::BTreeMap, fmt::Write as _, net::SocketAddr};

use serde::Serialize;

use crate::bpf::{FlowKind, FlowTables, LvsTable};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRow {
    pub protocol: String,
    /// Seconds left of a persistence template; None for connections (no timeout is kept).
    pub expire_seconds: Option<u32>,
    pub state: &'static str,
    pub source: SocketAddr,
    pub virtual_address: SocketAddr,
    /// None when the backend index names no real server any more (removed since).
    pub destination: Option<SocketAddr>,
    pub kind: FlowKind,
}

pub fn protocol_name(proto: u8) -> String {
    match proto {
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        other => other.to_string(),
    }
}

/// Rows for `flows`, with real server addresses and persistence timeouts from `table`;
/// `now` is the coarse monotonic clock in seconds (the clock the data plane stamps with).
pub fn connection_rows(flows: &FlowTables, table: &LvsTable, now: u32) -> Vec<ConnectionRow> {
    let backends: BTreeMap<u32, SocketAddr> =
        table.services.iter().flat_map(|s| s.backends.iter().map(|b| (b.index, b.address))).collect();
    let persistence: BTreeMap<(SocketAddr, String), u32> = table
        .services
        .iter()
        .filter_map(|s| s.persistence_seconds.map(|p| ((s.address, s.protocol.clone()), p)))
        .collect();
    flows
        .entries
        .iter()
        .map(|entry| {
            let protocol = protocol_name(entry.protocol);
            let template = entry.kind == FlowKind::Persistence;
            let expire_seconds = template
                .then(|| persistence.get(&(entry.virtual_address, protocol.clone())))
                .flatten()
                .map(|timeout| timeout.saturating_sub(now.wrapping_sub(entry.last_seen)));
            ConnectionRow {
                protocol,
                expire_seconds,
                state: if template { "NONE" } else { "-" },
                source: entry.source,
                virtual_address: entry.virtual_address,
                destination: backends.get(&entry.backend).copied(),
                kind: entry.kind,
            }
        })
        .collect()
}

/// `mm:ss`, as ipvsadm prints expiry.
fn expire(seconds: Option<u32>) -> String {
    seconds.map_or("-".into(), |s| format!("{:02}:{:02}", s / 60, s % 60))
}

pub fn format_connections(rows: &[ConnectionRow], flows: &FlowTables) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "keepxdp connection entries");
    let _ = writeln!(out, "pro expire state       source                 virtual                destination");
    for row in rows {
        let destination = row.destination.map_or("?".into(), |d| d.to_string());
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<22} {:<22} {}",
            row.protocol,
            expire(row.expire_seconds),
            row.state,
            row.source.to_string(),
            row.virtual_address.to_string(),
            destination
        );
    }
    let _ = writeln!(
        out,
        "conntrack {}/{} entries, nat {}/{} entries ({} replies)",
        flows.conntrack_entries, flows.conntrack_capacity, flows.nat_entries, flows.nat_capacity, flows.nat_replies
    );
    out
}

/// NAT connections in the table per real server (`lvs_backends` index): the data plane's
/// closest thing to ipvsadm's ActiveConn (entries leave by LRU eviction, not by FIN).
pub fn nat_connections_per_backend(flows: &FlowTables) -> BTreeMap<u32, u64> {
    let mut counts = BTreeMap::new();
    for entry in flows.entries.iter().filter(|e| e.kind == FlowKind::Nat) {
        *counts.entry(entry.backend).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{BackendRow, FlowEntry, ServiceRow, ServiceStatsRow};

    fn table() -> LvsTable {
        let backend = |index, address: &str| BackendRow {
            index,
            address: address.parse().unwrap(),
            weight: 1,
            alive: true,
            resolved: true,
            ring_slots: 1,
            connections: 0,
            packets: 0,
            bytes: 0,
            checkers: Vec::new(),
        };
        LvsTable {
            services: vec![ServiceRow {
                protocol: "TCP".into(),
                address: "10.0.0.100:80".parse().unwrap(),
                forwarding: "Masq".into(),
                persistence_seconds: Some(300),
                master: true,
                connections: 0,
                packets: 0,
                bytes: 0,
                drops: ServiceStatsRow { no_backend: 0, unresolved: 0, not_master: 0, encap_failed: 0, sorry: 0 },
                backends: vec![backend(0, "10.1.0.11:8080"), backend(1, "10.1.0.12:8080")],
            }],
            reasons: Vec::new(),
            inserted: Default::default(),
        }
    }

    fn flow(kind: FlowKind, source: &str, backend: u32, last_seen: u32) -> FlowEntry {
        FlowEntry { kind, protocol: 6, source: source.parse().unwrap(), virtual_address: "10.0.0.100:80".parse().unwrap(), backend, last_seen }
    }

    #[test]
    fn ipvsadm_lcn_layout_golden() {
        let flows = FlowTables {
            entries: vec![
                flow(FlowKind::Nat, "10.0.0.1:40000", 1, 0),
                flow(FlowKind::Persistence, "10.0.0.1:0", 1, 1000),
                flow(FlowKind::Nat, "10.0.0.7:40001", 9, 0),
            ],
            nat_replies: 2,
            conntrack_entries: 0,
            nat_entries: 5,
            conntrack_capacity: 65536,
            nat_capacity: 262144,
        };
        let rows = connection_rows(&flows, &table(), 1061);
        assert_eq!(rows[1].expire_seconds, Some(239));
        let golden = "\
keepxdp connection entries
pro expire state       source                 virtual                destination
TCP -      -           10.0.0.1:40000         10.0.0.100:80          10.1.0.12:8080
TCP 03:59  NONE        10.0.0.1:0             10.0.0.100:80          10.1.0.12:8080
TCP -      -           10.0.0.7:40001         10.0.0.100:80          ?
conntrack 0/65536 entries, nat 5/262144 entries (2 replies)
";
        assert_eq!(format_connections(&rows, &flows), golden);
        assert_eq!(nat_connections_per_backend(&flows), BTreeMap::from([(1, 1), (9, 1)]));
    }

    #[test]
    fn an_expired_template_shows_zero() {
        let flows = FlowTables { entries: vec![flow(FlowKind::Persistence, "10.0.0.1:0", 0, 10)], ..FlowTables::default() };
        assert_eq!(connection_rows(&flows, &table(), 5000)[0].expire_seconds, Some(0));
    }
}
