//! What the balancer should forward, from the configuration's virtual_servers: one
//! `ServicePlan` per (VIP, port, protocol). Pure; what XDP cannot do is left out with a
//! warning naming the config line, so `keepxdp check` and the log say it.
use std::net::IpAddr;

use serde::Serialize;

use crate::config::{
    Config,
    model::{GroupEntry, LbKind, Protocol, VirtualServer, VirtualServerKey},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    pub addr: IpAddr,
    pub port: u16,
    pub protocol: ProtocolKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ProtocolKey {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl ProtocolKey {
    pub fn number(self) -> u8 {
        match self {
            ProtocolKey::Tcp => 6,
            ProtocolKey::Udp => 17,
            ProtocolKey::Sctp => 132,
        }
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.protocol, std::net::SocketAddr::new(self.addr, self.port))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendPlan {
    /// As checkers and status name it (`10.0.0.1:80`, the configured port).
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    /// Ring share; 0 keeps the backend (established flows) but gives it no new ones.
    pub weight: u32,
    /// Starts down until its checkers say otherwise (`alpha`).
    pub starts_down: bool,
    pub inhibit_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePlan {
    pub key: ServiceKey,
    /// The virtual_server's name as checkers and status use it (`10.0.0.10:80`, `group web`).
    pub name: String,
    pub at: String,
    pub forwarding: LbKind,
    pub scheduler: String,
    /// Source-address affinity in seconds (`persistence_timeout`).
    pub persistence: Option<u32>,
    pub backends: Vec<BackendPlan>,
    pub sorry: Option<BackendPlan>,
    pub quorum: u32,
    pub hysteresis: u32,
}

/// Addresses a group range expands to at most (a /16 of VIPs is not an XDP service table).
const MAX_RANGE: u128 = 256;

fn protocol_key(protocol: Protocol) -> ProtocolKey {
    match protocol {
        Protocol::Tcp => ProtocolKey::Tcp,
        Protocol::Udp => ProtocolKey::Udp,
        Protocol::Sctp => ProtocolKey::Sctp,
    }
}

fn range(first: IpAddr, last: IpAddr) -> Option<Vec<IpAddr>> {
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let (a, b) = (u32::from(a) as u128, u32::from(b) as u128);
            (b >= a && b - a < MAX_RANGE)
                .then(|| (a..=b).map(|x| IpAddr::V4((x as u32).into())).collect())
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let (a, b) = (u128::from(a), u128::from(b));
            (b >= a && b - a < MAX_RANGE).then(|| (a..=b).map(|x| IpAddr::V6(x.into())).collect())
        }
        _ => None,
    }
}

/// The (address, port) pairs a virtual_server stands for; warnings for what XDP cannot match.
fn addresses(config: &Config, vs: &VirtualServer, warnings: &mut Vec<String>) -> Vec<(IpAddr, Option<u16>)> {
    match &vs.key {
        VirtualServerKey::Address { ip, port } => vec![(*ip, *port)],
        VirtualServerKey::Fwmark { mark } => {
            warnings.push(format!(
                "{}: virtual_server fwmark {mark} is not forwarded in XDP (XDP runs before netfilter marks packets); it needs the IPVS backend",
                vs.at
            ));
            Vec::new()
        }
        VirtualServerKey::Group { name } => {
            let Some(group) = config.virtual_server_groups.iter().find(|g| &g.name == name) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for entry in &group.entries {
                match entry {
                    GroupEntry::Address { ip, port, .. } => out.push((*ip, *port)),
                    GroupEntry::Range { first, last, port, at } => match range(*first, *last) {
                        Some(ips) => out.extend(ips.into_iter().map(|ip| (ip, *port))),
                        None => warnings.push(format!("{at}: address range larger than {MAX_RANGE} addresses is not forwarded in XDP")),
                    },
                    GroupEntry::Fwmark { mark, at, .. } => warnings.push(format!(
                        "{at}: fwmark {mark} in a virtual_server_group is not forwarded in XDP (XDP runs before netfilter marks packets)"
                    )),
                }
            }
            out
        }
    }
}

/// What keepxdp does differently from IPVS for `vs` (docs/schedulers.md): schedulers whose
/// meaning Maglev changes (`wlc`, keepalived's default, is not warned about: it would be on
/// nearly every file), and `persistence_granularity`.
fn treated_differently(vs: &VirtualServer) -> Vec<String> {
    let mut warnings = Vec::new();
    let why = match vs.lb_algo.as_str() {
        "lc" | "sed" | "nq" | "ovf" => Some("without active-connection counts: a slow server is not avoided until its checker fails"),
        "lblc" | "lblcr" | "dh" => Some("without destination-locality caching"),
        "fo" => Some("spreading by weight, not everything to the highest weight"),
        _ => None,
    };
    if let Some(why) = why {
        warnings.push(format!("{}: lb_algo {} is scheduled as weighted Maglev on the 5-tuple, {why} (docs/schedulers.md)", vs.at, vs.lb_algo));
    }
    if let Some(granularity) = &vs.persistence_granularity {
        warnings.push(format!(
            "{}: persistence_granularity {granularity} is not applied: persistence is by the exact client address (docs/schedulers.md)",
            vs.at
        ));
    }
    warnings
}

/// Every service the balancer should carry, and a warning for each thing left out.
pub fn plan(config: &Config) -> (Vec<ServicePlan>, Vec<String>) {
    let mut plans: Vec<ServicePlan> = Vec::new();
    let mut warnings = Vec::new();
    for vs in &config.virtual_servers {
        let protocol = protocol_key(vs.protocol);
        if vs.lb_kind.kind == LbKind::Nat && protocol == ProtocolKey::Sctp {
            warnings.push(format!("{}: NAT of SCTP is not done in XDP (its CRC32c covers the ports); service skipped", vs.at));
            continue;
        }
        warnings.extend(treated_differently(vs));
        let name = crate::check::scheduler::service_name(&vs.key);
        for (addr, port) in addresses(config, vs, &mut warnings) {
            let Some(port) = port else {
                warnings.push(format!("{}: a port-0 (all ports) virtual_server is not forwarded in XDP", vs.at));
                continue;
            };
            let mut backends = Vec::new();
            for real in &vs.real_servers {
                if real.ip.is_ipv4() != addr.is_ipv4() {
                    warnings.push(format!("{}: real_server {} is not of the virtual server's address family; skipped", real.at, real.ip));
                    continue;
                }
                if let Some(method) = real.lvs_method
                    && method.kind != vs.lb_kind.kind
                {
                    warnings.push(format!(
                        "{}: per-real-server lvs_method {:?} is not supported in XDP; the virtual server's {:?} is used",
                        real.at, method.kind, vs.lb_kind.kind
                    ));
                }
                let real_port = match vs.lb_kind.kind {
                    LbKind::Nat => real.port.unwrap_or(port),
                    // DR and TUN cannot change the port (the config check already warned).
                    LbKind::Dr | LbKind::Tun => port,
                };
                backends.push(BackendPlan {
                    name: crate::check::scheduler::real_name(real),
                    addr: real.ip,
                    port: real_port,
                    weight: real.weight.clamp(0, u32::MAX as i64) as u32,
                    starts_down: real.alpha.unwrap_or(vs.alpha),
                    inhibit_on_failure: real.inhibit_on_failure.unwrap_or(vs.inhibit_on_failure),
                });
            }
            let sorry = vs.sorry_server.as_ref().filter(|s| s.ip.is_ipv4() == addr.is_ipv4()).map(|s| BackendPlan {
                name: format!("sorry {}", s.ip),
                addr: s.ip,
                port: if vs.lb_kind.kind == LbKind::Nat { s.port.unwrap_or(port) } else { port },
                weight: 1,
                starts_down: false,
                inhibit_on_failure: false,
            });
            let key = ServiceKey { addr, port, protocol };
            if plans.iter().any(|p| p.key == key) {
                warnings.push(format!("{}: {key} is already defined by an earlier virtual_server; this one is ignored", vs.at));
                continue;
            }
            plans.push(ServicePlan {
                key,
                name: name.clone(),
                at: vs.at.clone(),
                forwarding: vs.lb_kind.kind,
                scheduler: vs.lb_algo.clone(),
                persistence: vs.persistence_timeout,
                backends,
                sorry,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
            });
        }
    }
    (plans, warnings)
}

/// Schedulers that hash the source address only (IPVS `sh`): the same client always lands on
/// the same backend while the ring is unchanged, with no per-flow state.
pub fn hashes_source_only(scheduler: &str) -> bool {
    scheduler == "sh"
}
