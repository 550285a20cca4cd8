//! The daemon's load-balancer side: config → plans → `LvsTables` → XDP maps; checker
//! verdicts → ring rebuilds; VRRP states → `vip_state`; neighbour resolution of backends.
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::Arc,
};

use anyhow::Result;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    bpf::Dataplane,
    check::{self, HealthSink},
    config::{Config, model::LbKind},
    lvs::{IpvsLvs, LvsDataplane, LvsTables, ServicePlan, ServiceView, XdpLvs, ipvs::IpvsSocket, plan},
    vrrp::{fsm::State, instance::InstanceStatus},
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

/// A checker verdict on its way to the daemon's loop.
pub struct HealthEvent {
    pub service: String,
    pub real: String,
    pub up: bool,
    pub weight: Option<u32>,
}

struct ChannelSink(mpsc::UnboundedSender<HealthEvent>);

impl HealthSink for ChannelSink {
    fn set(&self, service: &str, real: &str, up: bool, weight: Option<u32>) {
        let _ = self.0.send(HealthEvent { service: service.into(), real: real.into(), up, weight });
    }
}

/// Probes running at once, at most (bounded so 10,000 real servers don't open 10,000 sockets).
const MAX_CONCURRENT_PROBES: usize = 512;

pub struct Balancer {
    forwarding: Box<dyn LvsDataplane>,
    plans: Vec<ServicePlan>,
    /// VIP → the vrrp_instance that owns it.
    vip_owners: BTreeMap<IpAddr, String>,
    checkers: Vec<JoinHandle<()>>,
    health: mpsc::UnboundedSender<HealthEvent>,
}

impl Balancer {
    pub fn new(dataplane: &Dataplane, backend: LbBackend) -> Result<(Self, mpsc::UnboundedReceiver<HealthEvent>)> {
        let (health, events) = mpsc::unbounded_channel();
        let forwarding: Box<dyn LvsDataplane> = match backend {
            LbBackend::Xdp => Box::new(XdpLvs { tables: LvsTables::new(dataplane.limits()), maps: dataplane.lvs_maps_handle()? }),
            LbBackend::Ipvs => Box::new(IpvsLvs::new(IpvsSocket::connect()?)),
        };
        let balancer = Self {
            forwarding,
            plans: Vec::new(),
            vip_owners: BTreeMap::new(),
            checkers: Vec::new(),
            health,
        };
        Ok((balancer, events))
    }

    pub fn views(&self) -> Vec<ServiceView> {
        self.forwarding.views()
    }

    /// Brings the maps to `model`'s virtual_servers and restarts the checkers. Checkers start
    /// from the configured state (`alpha` down, else up), as keepalived does on reload.
    pub fn apply(&mut self, model: &Config) {
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
        self.forwarding.set_tunnel_sources(v4, v6);
        for error in self.forwarding.apply(&plans) {
            tracing::error!("balancer: {error}");
        }
        self.plans = plans;
        for handle in self.checkers.drain(..) {
            handle.abort();
        }
        let tasks = check::tasks_from_config(&model.virtual_servers, model.global_defs.enable_script_security);
        if !tasks.is_empty() {
            tracing::info!(checkers = tasks.len(), "health checkers starting");
        }
        self.checkers = check::spawn(tasks, Arc::new(ChannelSink(self.health.clone())), MAX_CONCURRENT_PROBES);
    }

    pub fn health(&mut self, event: HealthEvent) {
        match self.forwarding.set_health(&event.service, &event.real, event.up, event.weight) {
            Ok(true) => tracing::info!(
                service = event.service,
                real = event.real,
                "real server {} in the balancer",
                if event.up { "up" } else { "down" }
            ),
            Ok(false) => {}
            Err(error) => tracing::error!(service = event.service, real = event.real, "health update: {error:#}"),
        }
    }

    /// VRRP states → `vip_state`: a VIP whose instance is not Master is not forwarded here.
    pub fn vrrp_states(&mut self, statuses: &[InstanceStatus]) {
        let master: BTreeMap<&str, bool> = statuses.iter().map(|s| (s.name.as_str(), s.state == State::Master)).collect();
        let vips = self
            .vip_owners
            .iter()
            .map(|(vip, owner)| (*vip, master.get(owner.as_str()).copied().unwrap_or(false)))
            .collect();
        if let Err(error) = self.forwarding.set_vrrp_vips(vips) {
            tracing::error!("writing vip_state: {error:#}");
        }
    }

    /// Backends whose MAC the data plane does not know yet: from the kernel's neighbour
    /// table when it has them; otherwise one empty UDP datagram to the discard port makes the
    /// kernel resolve the neighbour (until then their packets go to the stack, counted
    /// `unresolved`; the XDP program's own FIB lookup also fills them in where forwarding is on).
    pub async fn resolve_backends(&mut self, netlink: &crate::net::Netlink) {
        let unresolved = self.forwarding.unresolved();
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
        for addr in unresolved {
            match neighbours.get(&addr) {
                Some(neighbour) => match self.forwarding.resolved(addr, *neighbour) {
                    Ok(()) => tracing::info!(real = %addr, ifindex = neighbour.ifindex, "real server's MAC resolved"),
                    Err(error) => tracing::warn!(real = %addr, "writing its MAC: {error:#}"),
                },
                None => poke(addr),
            }
        }
    }
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
