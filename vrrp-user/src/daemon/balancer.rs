//! The daemon's load-balancer side: config → plans → what forwards them (XDP or IPVS);
//! checker verdicts → ring rebuilds, quorum, notify_up/notify_down and quorum_up/quorum_down
//! scripts; VRRP-owned VIPs becoming local → `vip_state`; neighbour resolution of backends.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{Arc, Mutex, MutexGuard},
};

use anyhow::Result;
use tokio::sync::mpsc;

use super::lvs_scripts::LvsScripts;
use crate::{
    bpf::Dataplane,
    check::{self, CheckerBoard, HealthSink, Reconciled, RunningCheckers},
    config::{Config, model::{LbKind, VirtualServerKey}},
    lvs::{
        IpvsLvs, LvsDataplane, LvsTables, QuorumChange, ServicePlan, ServiceView, XdpLvs, ipvs::IpvsSocket, plan,
        quorum::QuorumEvent,
    },
    net::VipHook,
};

/// What forwards the virtual_servers (`keepxdp run --lb-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LbBackend {
    /// keepxdp's XDP balancer.
    #[default]
    Xdp,
    /// The kernel's IPVS over generic netlink (needs ip_vs).
    Ipvs,
}

/// From the checkers to the daemon's loop.
pub enum HealthEvent {
    /// A real server's health (and misc_dynamic weight); `at`: when the checker decided it.
    Health { service: String, real: String, up: bool, weight: Option<u32>, at: std::time::Instant },
    /// Time for its notify_up (`up`) / notify_down, because of `checker`: `reason`.
    Notify { service: String, real: String, up: bool, checker: String, reason: String },
}

struct ChannelSink(mpsc::UnboundedSender<HealthEvent>);

impl HealthSink for ChannelSink {
    fn set(&self, service: &str, real: &str, up: bool, weight: Option<u32>) {
        let at = std::time::Instant::now();
        let _ = self.0.send(HealthEvent::Health { service: service.into(), real: real.into(), up, weight, at });
    }
    fn notify(&self, service: &str, real: &str, up: bool, checker: &str, reason: &str) {
        let _ = self.0.send(HealthEvent::Notify {
            service: service.into(),
            real: real.into(),
            up,
            checker: checker.into(),
            reason: reason.into(),
        });
    }
}

/// Probes running at once, at most (bounded so 10,000 real servers don't open 10,000 sockets).
const MAX_CONCURRENT_PROBES: usize = 512;

type Forwarding = Arc<Mutex<Box<dyn LvsDataplane>>>;

/// The VRRP instances' address changes, straight into the forwarding: a VIP is forwarded
/// from just before it is added until just after it is removed.
struct VipGate {
    forwarding: Forwarding,
    local: Mutex<BTreeSet<IpAddr>>,
    /// Stopping with `--keep-dataplane`: the data plane keeps forwarding what it forwards.
    frozen: std::sync::atomic::AtomicBool,
}

impl VipHook for VipGate {
    fn vip_local(&self, addr: IpAddr, local: bool) {
        if self.frozen.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        {
            let mut set = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local {
                set.insert(addr);
            } else {
                set.remove(&addr);
            }
        }
        let mut forwarding = self.forwarding.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = forwarding.set_vip_local(addr, local) {
            tracing::error!(vip = %addr, "writing vip_state: {error:#}");
        }
    }
}

pub struct Balancer {
    forwarding: Forwarding,
    /// Bumped by every change of the forwarding (apply, health, MACs), recorded with the
    /// cached status document.
    generation: u64,
    views_json: std::sync::Mutex<Option<(std::time::Instant, u64, Arc<serde_json::value::RawValue>)>>,
    /// When each unresolved real server was last poked.
    poked: std::collections::HashMap<IpAddr, std::time::Instant>,
    /// When resolved real servers' MACs were last compared with the neighbour table.
    checked_neighbours: std::time::Instant,
    gate: Arc<VipGate>,
    plans: Vec<ServicePlan>,
    /// The running checkers and what each last found (for status); kept across reloads
    /// where unchanged.
    checkers: RunningCheckers,
    /// Into the daemon's loop (`health`).
    sink: Arc<dyn HealthSink>,
    scripts: LvsScripts,
    /// Verdict → maps written, for the verdicts that changed the forwarding.
    update_latency: UpdateLatency,
}

/// A debug measurement for status (`lvs_update_latency_us`, read by `keepxdp-bench
/// checkers`): how long from a checker's verdict (`HealthSink::set`, in the checker's task)
/// until the forwarding is written (ring rebuilt, maps updated), including the wait in the
/// daemon's event queue. Only verdicts that changed something count. Percentiles are over the
/// last `UpdateLatency::KEPT` of them; `count` and `max` over all since start. `write_*`: the
/// same verdicts, the forwarding update alone (without the wait in the queue).
#[derive(Debug, Default)]
struct UpdateLatency {
    count: u64,
    max_us: u64,
    recent: std::collections::VecDeque<u64>,
    write_max_us: u64,
    write_recent: std::collections::VecDeque<u64>,
}

/// `lvs_update_latency_us` in status.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct UpdateLatencySummary {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub write_p50: u64,
    pub write_p99: u64,
    pub write_max: u64,
}

impl UpdateLatency {
    const KEPT: usize = 4096;

    fn record(&mut self, took: std::time::Duration, write: std::time::Duration) {
        let us = |d: std::time::Duration| d.as_micros().min(u64::MAX as u128) as u64;
        self.count += 1;
        self.max_us = self.max_us.max(us(took));
        self.write_max_us = self.write_max_us.max(us(write));
        if self.recent.len() == Self::KEPT {
            self.recent.pop_front();
            self.write_recent.pop_front();
        }
        self.recent.push_back(us(took));
        self.write_recent.push_back(us(write));
    }

    fn summary(&self) -> UpdateLatencySummary {
        // Nearest rank: the smallest value with at least p% of the samples at or below it.
        let ranks = |samples: &std::collections::VecDeque<u64>| {
            let mut sorted: Vec<u64> = samples.iter().copied().collect();
            sorted.sort_unstable();
            let rank = |p: f64| sorted.get(((p * sorted.len() as f64).ceil() as usize).max(1) - 1).copied().unwrap_or(0);
            (rank(0.50), rank(0.99))
        };
        let (p50, p99) = ranks(&self.recent);
        let (write_p50, write_p99) = ranks(&self.write_recent);
        UpdateLatencySummary { count: self.count, p50, p99, max: self.max_us, write_p50, write_p99, write_max: self.write_max_us }
    }
}

impl Balancer {
    pub fn new(dataplane: &Dataplane, backend: LbBackend) -> Result<(Self, mpsc::UnboundedReceiver<HealthEvent>)> {
        let (health, events) = mpsc::unbounded_channel();
        let forwarding: Box<dyn LvsDataplane> = match backend {
            LbBackend::Xdp => Box::new(XdpLvs::new(LvsTables::new(dataplane.limits()), dataplane.lvs_maps_handle()?)),
            LbBackend::Ipvs => Box::new(IpvsLvs::new(IpvsSocket::connect()?)),
        };
        let forwarding = Arc::new(Mutex::new(forwarding));
        let gate = Arc::new(VipGate { forwarding: forwarding.clone(), local: Mutex::new(BTreeSet::new()), frozen: Default::default() });
        let balancer = Self {
            forwarding,
            generation: 0,
            views_json: std::sync::Mutex::new(None),
            poked: Default::default(),
            checked_neighbours: std::time::Instant::now(),
            gate,
            plans: Vec::new(),
            checkers: RunningCheckers::new(MAX_CONCURRENT_PROBES, CheckerBoard::default()),
            sink: Arc::new(ChannelSink(health)),
            scripts: LvsScripts::default(),
            update_latency: UpdateLatency::default(),
        };
        Ok((balancer, events))
    }

    /// `--keep-dataplane` stop: VRRP still releases the VIPs, but the data plane left running
    /// keeps forwarding them (flows keep flowing until the next keepxdp, or the peer that
    /// takes over, has them).
    pub fn freeze_vip_state(&self) {
        self.gate.frozen.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Addresses already on this node's interfaces at startup: a VRRP-owned VIP among them is
    /// forwarded from the first map write on (a keepxdp that crashed as Master left it there,
    /// and its data plane was forwarding it: the stack must not get its flows, it would reset
    /// them). The instance keeps or releases it (see `vrrp::instance`), and the hook follows.
    pub fn adopt_local_addresses(&self, present: impl IntoIterator<Item = IpAddr>) {
        self.gate.local.lock().unwrap_or_else(|e| e.into_inner()).extend(present);
    }

    /// What the VRRP instances' netlink reports VIP changes to.
    pub fn vip_hook(&self) -> Arc<dyn VipHook> {
        self.gate.clone()
    }

    fn forwarding(&self) -> MutexGuard<'_, Box<dyn LvsDataplane>> {
        self.forwarding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `views()` as JSON, cached (see `generation`).
    pub fn views_json(&self) -> Result<Arc<serde_json::value::RawValue>> {
        let mut cache = self.views_json.lock().unwrap_or_else(|e| e.into_inner());
        // After a health change at the next refresh (150 ms at the least: 10,000 real servers
        // take ~20 ms to serialize, a flapping pool must not stall the event loop), so the
        // checkers' view and the data plane agree for `keepxdp lvs` within one refresh;
        // unchanged, the checkers' details (latency, last error) are at most a second old.
        let fresh_for = if cache.as_ref().is_some_and(|(_, generation, _)| *generation == self.generation) { 1000 } else { 150 };
        if let Some((at, _, json)) = cache.as_ref()
            && at.elapsed() < std::time::Duration::from_millis(fresh_for)
        {
            return Ok(json.clone());
        }
        let json: Arc<serde_json::value::RawValue> = serde_json::value::to_raw_value(&self.views())?.into();
        *cache = Some((std::time::Instant::now(), self.generation, json.clone()));
        Ok(json)
    }

    /// The services, each backend with its checkers' state.
    pub fn views(&self) -> Vec<ServiceView> {
        let mut views = self.forwarding().views();
        for view in &mut views {
            for backend in &mut view.backends {
                backend.checkers = self.checkers.board().checkers(&view.name, &backend.plan.name);
            }
        }
        views
    }

    /// (virtual_server, real server address) of every NAT service (sorry servers included):
    /// their replies must come back through an interface that carries the data plane.
    pub fn nat_real_servers(&self) -> Vec<(String, IpAddr)> {
        self.plans
            .iter()
            .filter(|plan| plan.forwarding == LbKind::Nat)
            .flat_map(|plan| plan.backends.iter().chain(&plan.sorry).map(|backend| (plan.name.clone(), backend.addr)))
            .collect()
    }

    /// Verdict → maps written latency (see `UpdateLatency`).
    pub fn update_latency(&self) -> UpdateLatencySummary {
        self.update_latency.summary()
    }

    /// Brings the forwarding to `model`'s virtual_servers and the checkers to its checkers:
    /// a real server whose checkers did not change keeps them running with their state (as
    /// keepalived carries checkers over a reload); changed and new ones start from their
    /// configured state (`alpha` down, else up).
    pub fn apply(&mut self, model: &Config) {
        self.generation += 1;
        let (plans, warnings) = plan(model);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        // VIPs a vrrp_instance owns are forwarded only while they are local (see VipGate).
        let vrrp_vips: BTreeMap<IpAddr, bool> = {
            let local = self.gate.local.lock().unwrap_or_else(|e| e.into_inner());
            model
                .vrrp_instances
                .iter()
                .flat_map(|i| i.virtual_ipaddress.iter().map(|a| a.address))
                .map(|vip| (vip, local.contains(&vip)))
                .collect()
        };
        let (v4, v6) = tunnel_sources(&plans);
        self.scripts = LvsScripts::of(model);
        {
            let mut forwarding = self.forwarding();
            forwarding.set_tunnel_sources(v4, v6);
            forwarding.set_sync(model.global_defs.lvs_sync_daemon.is_some());
            if let Err(error) = forwarding.set_vrrp_vips(vrrp_vips) {
                tracing::error!("writing vip_state: {error:#}");
            }
            for error in forwarding.apply(&plans) {
                tracing::error!("balancer: {error}");
            }
        }
        self.quorum_scripts();
        self.plans = plans;
        check::source::set_vips(node_vips(model));
        let tasks = check::tasks_from_config(&model.virtual_servers, model.global_defs.enable_script_security);
        let count = tasks.len();
        let done = self.checkers.reconcile(tasks, &self.sink);
        if count > 0 || done != Reconciled::default() {
            tracing::info!(
                checkers = count,
                kept = done.kept,
                restarted = done.restarted,
                started = done.started,
                stopped = done.stopped,
                "health checkers by real server: unchanged ones keep running with their state"
            );
        }
    }

    pub fn health(&mut self, event: HealthEvent) {
        self.generation += 1;
        match event {
            HealthEvent::Health { service, real, up, weight, at } => {
                let writing = std::time::Instant::now();
                let result = self.forwarding().set_health(&service, &real, up, weight);
                match result {
                    Ok(true) => {
                        self.update_latency.record(at.elapsed(), writing.elapsed());
                        tracing::debug!(service, real, up, ?weight, "balancer updated")
                    }
                    Ok(false) => {}
                    Err(error) => tracing::error!(service, real, "health update: {error:#}"),
                }
                self.quorum_scripts();
            }
            HealthEvent::Notify { service, real, up, checker, reason } => {
                let script = self.scripts.real_server(&service, &real, up);
                tracing::info!(service, real, checker, reason, script, "real server {}", if up { "up" } else { "down" });
                if let Some(script) = script {
                    let what = format!("{} of {real} ({service})", if up { "notify_up" } else { "notify_down" });
                    self.scripts.spawn(script, what);
                }
            }
        }
    }

    /// `keepxdp lvs drain` / `undrain` from the control socket; the virtual_servers changed.
    pub fn set_drained(&mut self, target: crate::lvs::DrainTarget, drained: bool) -> Result<Vec<String>> {
        self.generation += 1;
        self.forwarding().set_drained(target, drained)
    }

    /// quorum_up / quorum_down for the quorum changes the forwarding made (once per virtual
    /// server: a group's addresses share one quorum).
    fn quorum_scripts(&mut self) {
        let changes = self.forwarding().take_quorum_changes();
        for change in once_per_service(changes) {
            let up = change.event.up();
            if let Some(script) = self.scripts.quorum(&change.service, up) {
                tracing::info!(service = change.service, script, event = ?change.event, "running {}", if up { "quorum_up" } else { "quorum_down" });
                let what = format!("{} of {}", if up { "quorum_up" } else { "quorum_down" }, change.service);
                self.scripts.spawn(script, what);
            }
        }
    }

    /// Backends whose MAC the data plane does not know yet: from the kernel's neighbour
    /// table when it has them; otherwise one empty UDP datagram to the discard port makes the
    /// kernel resolve the neighbour (until then their packets go to the stack, counted
    /// `unresolved`; the XDP program's own FIB lookup also fills them in where forwarding is on).
    pub async fn resolve_backends(&mut self, netlink: &crate::net::Netlink) {
        let mut unresolved = self.forwarding().unresolved();
        // Every 10 s the resolved ones too: a real server's address may have moved to
        // another host (its MAC changed); DR would keep sending to the old MAC.
        let recheck = self.checked_neighbours.elapsed() >= std::time::Duration::from_secs(10);
        if unresolved.is_empty() && !recheck {
            return;
        }
        let neighbours = match netlink.neighbours().await {
            Ok(neighbours) => neighbours,
            Err(error) => {
                tracing::warn!("reading the neighbour table: {error:#}");
                Default::default()
            }
        };
        if recheck {
            self.checked_neighbours = std::time::Instant::now();
            for addr in self.forwarding().changed_neighbours(&neighbours) {
                tracing::info!(real = %addr, "real server's MAC changed in the neighbour table");
                unresolved.push(addr);
            }
        }
        for addr in unresolved {
            match neighbours.get(&addr) {
                Some(neighbour) => match {
                    self.generation += 1;
                    self.poked.remove(&addr);
                    self.forwarding().resolved(addr, *neighbour)
                } {
                    Ok(()) => tracing::info!(real = %addr, ifindex = neighbour.ifindex, "real server's MAC resolved"),
                    Err(error) => tracing::warn!(real = %addr, "writing its MAC: {error:#}"),
                },
                None => {
                    // At most every 5 s per real server: one that never answers ARP (wrong
                    // subnet, down) is not flooded.
                    let due = self.poked.get(&addr).is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(5));
                    if due {
                        poke(addr);
                        self.poked.insert(addr, std::time::Instant::now());
                    }
                }
            }
        }
    }
}

fn once_per_service(changes: Vec<QuorumChange>) -> Vec<QuorumChange> {
    let mut seen: BTreeSet<(String, bool)> = BTreeSet::new();
    changes
        .into_iter()
        .filter(|c| seen.insert((c.service.clone(), c.event == QuorumEvent::Gained)))
        .collect()
}

/// From a source that is not a VIP (`check::source`), as the checkers: an IPv6 neighbour
/// solicitation takes the triggering packet's source, and a DR real server holding the VIP on
/// lo would deliver its advertisement to itself.
fn poke(addr: IpAddr) {
    let target = SocketAddr::new(addr, 9);
    let unspecified: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let bind = check::source::source_for(target, |_| Ok(())).map_or(unspecified, |ip| SocketAddr::new(ip, 0));
    if let Ok(socket) = UdpSocket::bind(bind)
        && socket.connect(target).is_ok()
    {
        let _ = socket.send(&[]);
    }
}
/// TUN's outer source: the address the kernel would use toward the first TUN backend of each
/// family (a connected UDP socket sends nothing; it only asks the routing table).
fn tunnel_sources(plans: &[ServicePlan]) -> (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>) {
    let mut v4 = None;
    let mut v6 = None;
    for backend in plans.iter().filter(|p| p.forwarding == LbKind::Tun).flat_map(|p| &p.backends) {
        let bind: SocketAddr = if backend.addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
        let Ok(socket) = UdpSocket::bind(bind) else { continue };
        if socket.connect(SocketAddr::new(backend.addr, 9)).is_err() {
            continue;
        }
        match socket.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(a)) if v4.is_none() => v4 = Some(a),
            Ok(IpAddr::V6(a)) if v6.is_none() => v6 = Some(a),
            _ => {}
        }
    }
    (v4, v6)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn update_latency_percentiles_are_nearest_rank_over_the_kept_samples() {
        let mut latency = UpdateLatency::default();
        assert_eq!(latency.summary(), UpdateLatencySummary::default());
        for us in 1..=100 {
            latency.record(Duration::from_micros(us), Duration::from_micros(us / 2));
        }
        assert_eq!(
            latency.summary(),
            UpdateLatencySummary { count: 100, p50: 50, p99: 99, max: 100, write_p50: 25, write_p99: 49, write_max: 50 }
        );
        for _ in 0..UpdateLatency::KEPT {
            latency.record(Duration::from_micros(7), Duration::from_micros(3));
        }
        let summary = latency.summary();
        assert_eq!(
            (summary.count, summary.p50, summary.p99, summary.max, summary.write_p99, summary.write_max),
            (100 + UpdateLatency::KEPT as u64, 7, 7, 100, 3, 50)
        );
    }
}

/// Every address this node may hold as a VIP: `virtual_ipaddress`, `virtual_ipaddress_excluded`
/// and the `virtual_server` addresses. Checkers never take one as their source unless
/// `bindto` says so (`check::source`).
fn node_vips(model: &Config) -> Vec<IpAddr> {
    let instances = model
        .vrrp_instances
        .iter()
        .flat_map(|i| i.virtual_ipaddress.iter().chain(&i.virtual_ipaddress_excluded))
        .map(|a| a.address);
    let services = model.virtual_servers.iter().filter_map(|vs| match vs.key {
        VirtualServerKey::Address { ip, .. } => Some(ip),
        _ => None,
    });
    let mut vips: Vec<IpAddr> = instances.chain(services).collect();
    vips.sort();
    vips.dedup();
    vips
}
