//! `keepxdp lvs`: the balancer's services, backends and counters read from the pinned maps
//! (like `guard-stats`, it needs no running controller), printed like `ipvsadm -Ln --stats`.
use std::{
    fmt::Write,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

use anyhow::{Context, Result};
use aya::maps::{Array, Map, MapData, PerCpuArray};
use serde::Serialize;
use vrrp_common::{
    guard::FAMILY_IPV4,
    lvs::{
        BACKEND_ALIVE, BACKEND_RESOLVED, Backend, BackendStats, FWD_DR, FWD_MASK, FWD_NAT, FWD_TUN, LvsReason,
        SERVICE_PERSISTENT, Service, ServiceStats, VIP_MASTER, ring_current,
    },
    pins::{MAP_LVS_BACKEND_STATS, MAP_LVS_BACKENDS, MAP_LVS_DROPS, MAP_LVS_MAGLEV, MAP_LVS_SERVICE_STATS, MAP_LVS_SERVICES, MAP_VIP_STATE},
};

#[derive(Debug, Serialize)]
pub struct LvsTable {
    pub services: Vec<ServiceRow>,
    /// Frames passed before any service matched, by reason (and NAT replies translated).
    pub reasons: Vec<(String, u64)>,
    /// Entries the data plane wrote to its flow tables since it was loaded.
    #[serde(default)]
    pub inserted: FlowInserts,
}

/// Entries written to `lvs_nat` / `lvs_conntrack` (per-CPU counters summed). With a table's
/// entries, what its LRU evicted: `inserted - entries` (the counters start at zero with each
/// loaded data plane, while adopted entries carry over, hence saturating).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct FlowInserts {
    pub nat: u64,
    pub conntrack: u64,
}

#[derive(Debug, Serialize)]
pub struct ServiceRow {
    pub protocol: String,
    pub address: SocketAddr,
    pub forwarding: String,
    pub persistence_seconds: Option<u32>,
    /// This node is VRRP Master for the VIP (forwarding), or not (passing to the stack).
    pub master: bool,
    pub connections: u64,
    pub packets: u64,
    pub bytes: u64,
    pub drops: ServiceStatsRow,
    pub backends: Vec<BackendRow>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatsRow {
    pub no_backend: u64,
    pub unresolved: u64,
    pub not_master: u64,
    pub encap_failed: u64,
    pub sorry: u64,
}

#[derive(Debug, Serialize)]
pub struct BackendRow {
    pub index: u32,
    pub address: SocketAddr,
    pub weight: u32,
    pub alive: bool,
    pub resolved: bool,
    /// Ring slots this backend holds now.
    pub ring_slots: u64,
    pub connections: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Its health checkers, from the running keepxdp's status (empty when it has none or
    /// cannot be asked).
    pub checkers: Vec<serde_json::Value>,
}

/// Adds each backend's checkers from a running keepxdp's status document (`keepxdp status
/// --json`): the pins hold forwarding state, the daemon holds checker state.
pub fn add_checkers(table: &mut LvsTable, status: &serde_json::Value) {
    let Some(views) = status["lvs"].as_array() else { return };
    for view in views {
        let (Some(addr), Some(port)) = (view["key"]["addr"].as_str(), view["key"]["port"].as_u64()) else { continue };
        let Ok(addr) = addr.parse::<IpAddr>() else { continue };
        let protocol = view["key"]["protocol"].as_str().unwrap_or_default();
        let service_at = SocketAddr::new(addr, port as u16);
        for row in table.services.iter_mut().filter(|r| r.address == service_at && r.protocol == protocol) {
            for backend in view["backends"].as_array().into_iter().flatten() {
                let (Some(addr), Some(port)) = (backend["plan"]["addr"].as_str(), backend["plan"]["port"].as_u64()) else { continue };
                let Ok(addr) = addr.parse::<IpAddr>() else { continue };
                let at = SocketAddr::new(addr, port as u16);
                if let Some(target) = row.backends.iter_mut().find(|b| b.address == at) {
                    target.checkers = backend["checkers"].as_array().cloned().unwrap_or_default();
                }
            }
        }
    }
}

fn checker_line(checker: &serde_json::Value) -> String {
    let mut line = format!(
        "{}: {}",
        checker["name"].as_str().unwrap_or("checker"),
        if checker["up"] == true { "up" } else { "down" }
    );
    if let Some(latency) = checker["latency_ms"].as_f64() {
        line.push_str(&format!(", {latency:.1} ms"));
    }
    line.push_str(&format!(", flips {}", checker["flips"].as_u64().unwrap_or(0)));
    if let Some(error) = checker["last_error"].as_str() {
        line.push_str(&format!(", last error: {error}"));
    }
    line
}

fn open(dir: &Path, name: &str) -> Result<MapData> {
    let path = dir.join(name);
    MapData::from_pin(&path).with_context(|| format!("opening {} (is keepxdp running with --pin-dir {}?)", path.display(), dir.display()))
}

pub(crate) fn ip(addr: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_IPV4 {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*addr))
    }
}

fn forwarding(flags: u32) -> &'static str {
    match flags & FWD_MASK {
        FWD_DR => "Route",
        FWD_NAT => "Masq",
        FWD_TUN => "Tunnel",
        _ => "?",
    }
}

pub fn read_lvs(dir: &Path) -> Result<LvsTable> {
    let services: Array<MapData, Service> = Array::try_from(Map::Array(open(dir, MAP_LVS_SERVICES)?))?;
    let backends: Array<MapData, Backend> = Array::try_from(Map::Array(open(dir, MAP_LVS_BACKENDS)?))?;
    let rings: Array<MapData, u32> = Array::try_from(Map::Array(open(dir, MAP_LVS_MAGLEV)?))?;
    let vip_state: Array<MapData, u32> = Array::try_from(Map::Array(open(dir, MAP_VIP_STATE)?))?;
    let backend_stats: PerCpuArray<MapData, BackendStats> =
        PerCpuArray::try_from(Map::PerCpuArray(open(dir, MAP_LVS_BACKEND_STATS)?))?;
    let service_stats: PerCpuArray<MapData, ServiceStats> =
        PerCpuArray::try_from(Map::PerCpuArray(open(dir, MAP_LVS_SERVICE_STATS)?))?;
    let drops: PerCpuArray<MapData, u64> = PerCpuArray::try_from(Map::PerCpuArray(open(dir, MAP_LVS_DROPS)?))?;

    let all_backends: Vec<(u32, Backend)> = backends
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.ok().map(|b| (i as u32, b)))
        .filter(|(_, b)| b.family != 0)
        .collect();
    let mut rows = Vec::new();
    for service in services.iter().filter_map(Result::ok).filter(|s| s.family != 0) {
        let mut holders = std::collections::BTreeMap::<u32, u64>::new();
        for offset in 0..service.ring_size {
            let slot = rings.get(&(service.ring_base + offset), 0)?;
            *holders.entry(ring_current(slot)).or_default() += 1;
        }
        let mut backend_rows = Vec::new();
        // Every real server of the service, up or down (removed ones have empty entries).
        for (index, backend) in all_backends.iter().filter(|(_, b)| b.service == service.index) {
            let stats = backend_stats.get(index, 0)?;
            backend_rows.push(BackendRow {
                index: *index,
                address: SocketAddr::new(ip(&backend.addr, backend.family), u16::from_be(backend.port)),
                weight: backend.weight,
                alive: backend.flags & BACKEND_ALIVE != 0,
                resolved: backend.flags & BACKEND_RESOLVED != 0,
                ring_slots: holders.get(index).copied().unwrap_or(0),
                connections: stats.iter().map(|s| s.new_flows).sum(),
                packets: stats.iter().map(|s| s.packets).sum(),
                bytes: stats.iter().map(|s| s.bytes).sum(),
                checkers: Vec::new(),
            });
        }
        let stats = service_stats.get(&service.index, 0)?;
        let sum = |f: fn(&ServiceStats) -> u64| stats.iter().map(f).sum::<u64>();
        rows.push(ServiceRow {
            protocol: match service.proto {
                6 => "TCP".into(),
                17 => "UDP".into(),
                132 => "SCTP".into(),
                other => other.to_string(),
            },
            address: SocketAddr::new(ip(&service.addr, service.family), u16::from_be(service.port)),
            forwarding: forwarding(service.flags).into(),
            persistence_seconds: (service.flags & SERVICE_PERSISTENT != 0).then_some(service.persistence_seconds),
            master: vip_state.get(&service.vip_index, 0).map(|s| s == VIP_MASTER).unwrap_or(false),
            connections: backend_rows.iter().map(|b| b.connections).sum(),
            packets: backend_rows.iter().map(|b| b.packets).sum(),
            bytes: backend_rows.iter().map(|b| b.bytes).sum(),
            drops: ServiceStatsRow {
                no_backend: sum(|s| s.no_backend),
                unresolved: sum(|s| s.unresolved),
                not_master: sum(|s| s.not_master),
                encap_failed: sum(|s| s.encap_failed),
                sorry: sum(|s| s.sorry),
            },
            backends: backend_rows,
        });
    }
    rows.sort_by_key(|r| (r.address, r.protocol.clone()));
    let mut reasons = Vec::new();
    let mut inserted = FlowInserts::default();
    for reason in LvsReason::ALL {
        // An older data plane's map has fewer reasons: the rest read as zero.
        let count: u64 = drops.get(&(reason as u32), 0).map(|per_cpu| per_cpu.iter().sum()).unwrap_or(0);
        match reason {
            LvsReason::NatInserted => inserted.nat = count,
            LvsReason::ConntrackInserted => inserted.conntrack = count,
            _ => reasons.push((reason.name().to_string(), count)),
        }
    }
    Ok(LvsTable { services: rows, reasons, inserted })
}

/// `ipvsadm -Ln --stats` layout, plus keepxdp's columns (Master, ring share, drops).
pub fn format_lvs(table: &LvsTable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "keepxdp XDP balancer");
    let _ = writeln!(out, "Prot LocalAddress:Port                 Conns   InPkts  InBytes  Forward State");
    let _ = writeln!(out, "  -> RemoteAddress:Port               Conns   InPkts  InBytes  Weight  Slots  Alive");
    for service in &table.services {
        let persistence = service.persistence_seconds.map(|s| format!(" persistent {s}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<4} {:<32} {:>6} {:>8} {:>8}  {:<7} {}{}",
            service.protocol,
            service.address.to_string(),
            service.connections,
            service.packets,
            service.bytes,
            service.forwarding,
            if service.master { "master" } else { "backup (passing)" },
            persistence
        );
        for backend in &service.backends {
            let _ = writeln!(
                out,
                "  -> {:<32} {:>6} {:>8} {:>8}  {:>6} {:>6}  {}",
                backend.address.to_string(),
                backend.connections,
                backend.packets,
                backend.bytes,
                backend.weight,
                backend.ring_slots,
                if backend.alive { "yes" } else { "no" }
            );
            for checker in &backend.checkers {
                let _ = writeln!(out, "       {}", checker_line(checker));
            }
        }
        let d = &service.drops;
        if d.no_backend + d.unresolved + d.not_master + d.encap_failed + d.sorry > 0 {
            let _ = writeln!(
                out,
                "     dropped no_backend {}, passed unresolved {}, passed not_master {}, encap_failed {}, sorry {}",
                d.no_backend, d.unresolved, d.not_master, d.encap_failed, d.sorry
            );
        }
    }
    let reasons: Vec<String> = table.reasons.iter().filter(|(_, n)| *n > 0).map(|(r, n)| format!("{r} {n}")).collect();
    if !reasons.is_empty() {
        let _ = writeln!(out, "before any service: {}", reasons.join(", "));
    }
    out
}
