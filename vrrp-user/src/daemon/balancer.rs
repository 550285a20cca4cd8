//! The daemon's load-balancer side: config → plans → `LvsTables` → XDP maps; checker
//! verdicts → ring rebuilds, quorum, notify_up/notify_down and quorum_up/quorum_down
//! scripts; VRRP states → `vip_state`; neighbour resolution of backends.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::Arc,
};

use tokio::{sync::mpsc, task::JoinHandle};
use vrrp_common::lvs::BACKEND_RESOLVED;

use crate::{
    bpf::{Dataplane, LvsMaps},
    check::{self, CheckerBoard, HealthSink},
    config::{Config, model::LbKind},
    lvs::{LvsTables, QuorumChange, ServicePlan, ServiceView, plan, quorum::QuorumEvent},
    vrrp::{fsm::State, instance::InstanceStatus},
};

use super::lvs_scripts::LvsScripts;

/// From the checkers to the daemon's loop.
pub enum HealthEvent {
    /// A real server's health (and misc_dynamic weight).
    Health { service: String, real: String, up: bool, weight: Option<u32> },
    /// Time for its notify_up (`up`) / notify_down, because of `checker`: `reason`.
    Notify { service: String, real: String, up: bool, checker: String, reason: String },
}

struct ChannelSink(mpsc::UnboundedSender<HealthEvent>);

impl HealthSink for ChannelSink {
    fn set(&self, service: &str, real: &str, up: bool, weight: Option<u32>) {
        let _ = self.0.send(HealthEvent::Health { service: service.into(), real: real.into(), up, weight });
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

pub struct Balancer {
    tables: LvsTables,
    plans: Vec<ServicePlan>,
    /// VIP → the vrrp_instance that owns it.
    vip_owners: BTreeMap<IpAddr, String>,
    checkers: Vec<JoinHandle<()>>,
    health: mpsc::UnboundedSender<HealthEvent>,
    /// What each checker last found (for status).
    board: CheckerBoard,
    scripts: LvsScripts,
}

impl Balancer {
    pub fn new(dataplane: &Dataplane) -> (Self, mpsc::UnboundedReceiver<HealthEvent>) {
        let (health, events) = mpsc::unbounded_channel();
        let balancer = Self {
            tables: LvsTables::new(dataplane.limits()),
            plans: Vec::new(),
            vip_owners: BTreeMap::new(),
            checkers: Vec::new(),
            health,
            board: CheckerBoard::default(),
            scripts: LvsScripts::default(),
        };
        (balancer, events)
    }

    /// The services, each backend with its checkers' state.
    pub fn views(&self) -> Vec<ServiceView> {
        let mut views = self.tables.views();
        for view in &mut views {
            for backend in &mut view.backends {
                backend.checkers = self.board.checkers(&view.name, &backend.plan.name);
            }
        }
        views
    }

    /// Brings the maps to `model`'s virtual_servers and restarts the checkers. Checkers start
    /// from the configured state (`alpha` down, else up), as keepalived does on reload.
    pub fn apply(&mut self, model: &Config, dataplane: &mut Dataplane) {
        let (plans, warnings) = plan(model);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        self.vip_owners = model
            .vrrp_instances
            .iter()
            .flat_map(|i| i.virtual_ipaddress.iter().map(move |a| (a.address, i.name.clone())))
            .collect();
        let (v4, v6) = tunnel_sources(&plans);
        self.tables.set_tunnel_sources(v4, v6);
        self.scripts = LvsScripts::of(model);
        for error in self.tables.apply(&plans, dataplane) {
            tracing::error!("balancer: {error}");
        }
        self.quorum_scripts();
        self.plans = plans;
        for handle in self.checkers.drain(..) {
            handle.abort();
        }
        let tasks = check::tasks_from_config(&model.virtual_servers, model.global_defs.enable_script_security);
        if !tasks.is_empty() {
            tracing::info!(checkers = tasks.len(), "health checkers starting");
        }
        // Checkers restart from their configured state: so does their status.
        self.board = CheckerBoard::default();
        self.checkers =
            check::spawn(tasks, Arc::new(ChannelSink(self.health.clone())), MAX_CONCURRENT_PROBES, &self.board);
    }

    pub fn health(&mut self, event: HealthEvent, dataplane: &mut Dataplane) {
        match event {
            HealthEvent::Health { service, real, up, weight } => {
                match self.tables.set_health(&service, &real, up, weight, dataplane) {
                    Ok(true) => tracing::debug!(service, real, up, ?weight, "balancer updated"),
                    Ok(false) => {}
                    Err(error) => tracing::error!(service, real, "health update: {error:#}"),
                }
                self.quorum_scripts();
            }
            HealthEvent::Notify { service, real, up, checker, reason } => {
                let script = self.scripts.real_server(&service, &real, up);
                tracing::info!(
                    service,
                    real,
                    checker,
                    reason,
                    script,
                    "real server {}",
                    if up { "up" } else { "down" }
                );
                if let Some(script) = script {
                    let what = format!("{} of {real} ({service})", if up { "notify_up" } else { "notify_down" });
                    self.scripts.spawn(script, what);
                }
            }
        }
    }

    /// quorum_up / quorum_down for the quorum changes the tables made (once per virtual
    /// server: a group's addresses share one quorum).
    fn quorum_scripts(&mut self) {
        for change in once_per_service(self.tables.take_quorum_changes()) {
            let up = change.event.up();
            if let Some(script) = self.scripts.quorum(&change.service, up) {
                tracing::info!(service = change.service, script, event = ?change.event, "running {}", if up { "quorum_up" } else { "quorum_down" });
                let what = format!("{} of {}", if up { "quorum_up" } else { "quorum_down" }, change.service);
                self.scripts.spawn(script, what);
            }
        }
    }

    /// VRRP states → `vip_state`: a VIP whose instance is not Master is not forwarded here.
    pub fn vrrp_states(&mut self, statuses: &[InstanceStatus], dataplane: &mut Dataplane) {
        let master: BTreeMap<&str, bool> = statuses.iter().map(|s| (s.name.as_str(), s.state == State::Master)).collect();
        let vips = self
            .vip_owners
            .iter()
            .map(|(vip, owner)| (*vip, master.get(owner.as_str()).copied().unwrap_or(false)))
            .collect();
        if let Err(error) = self.tables.set_vrrp_vips(vips, dataplane) {
            tracing::error!("writing vip_state: {error:#}");
        }
    }

    /// Backends whose MAC the data plane does not know yet: from the kernel's neighbour
    /// table when it has them; otherwise one empty UDP datagram to the discard port makes the
    /// kernel resolve the neighbour (until then their packets go to the stack, counted
    /// `unresolved`; the XDP program's own FIB lookup also fills them in where forwarding is on).
    pub async fn resolve_backends(&self, netlink: &crate::net::Netlink, dataplane: &mut Dataplane) {
        let mut unresolved = Vec::new();
        for view in self.tables.views() {
            for backend in &view.backends {
                if let Ok(entry) = dataplane.backend(backend.index)
                    && entry.family != 0
                    && entry.flags & BACKEND_RESOLVED == 0
                {
                    unresolved.push((backend.index, backend.plan.addr, entry));
                }
            }
        }
        if unresolved.is_empty() {
            return;
        }
        let neighbours = match netlink.neighbours().await {
            Ok(neighbours) => neighbours,
            Err(error) => {
                tracing::warn!("reading the neighbour table: {error:#}");
                Default::default()
            }
        };
        for (index, addr, mut entry) in unresolved {
            match neighbours.get(&addr) {
                Some(neighbour) => {
                    entry.mac = neighbour.mac;
                    entry.src_mac = neighbour.our_mac;
                    entry.ifindex = neighbour.ifindex;
                    entry.flags |= BACKEND_RESOLVED;
                    match dataplane.put_backend(index, &entry) {
                        Ok(()) => tracing::info!(real = %addr, ifindex = neighbour.ifindex, "real server's MAC resolved"),
                        Err(error) => tracing::warn!(real = %addr, "writing its MAC: {error:#}"),
                    }
                }
                None => poke(addr),
            }
        }
    }
}

/// The first change of each (virtual server, event): a group's addresses change together.
fn once_per_service(changes: Vec<QuorumChange>) -> Vec<QuorumChange> {
    let mut seen: BTreeSet<(String, bool)> = BTreeSet::new();
    changes
        .into_iter()
        .filter(|c| seen.insert((c.service.clone(), c.event == QuorumEvent::Gained)))
        .collect()
}

fn poke(addr: IpAddr) {
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    if let Ok(socket) = UdpSocket::bind(bind)
        && socket.connect(SocketAddr::new(addr, 9)).is_ok()
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
