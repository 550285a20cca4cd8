//! One running VRRP instance (IPv4, multicast or unicast): its socket, its timers and the
//! effects of the state machine's actions (adverts, virtual addresses, gratuitous ARP).
//! Decisions are the fsm's; this file only carries them out.
use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::Duration,
};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::{
    sync::{broadcast, mpsc, watch},
    time::{Instant, sleep_until},
};

pub use super::spec::InstanceSpec;
use super::{
    discard::{self, DiscardReason},
    fsm::{self, Action, Event, Machine, Params, State, Version},
    notify,
    sync::{MemberEvent, SyncCommand},
    link::{Datagram, Link},
    socket::{FrameSocket, mac_address, send_unsolicited_na},
    wire::{
        self, ChecksumContext,
        arp::GratuitousArp,
        ndisc::{ALL_NODES, NeighborAdvert},
    },
};
use crate::{
    config::model::VirtualAddress,
    net::{
        AddressTable, Removed, RouteTable,
        vmac::{LinkTable, set_ipv4_conf, virtual_mac, vmac_name},
    },
    track::Effective,
};

/// What `keepxdp status` shows of an instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: State,
    /// Configured priority, and the effective one after tracking.
    pub base_priority: u8,
    pub priority: u8,
    pub master: Option<IpAddr>,
    /// As of the last event: ms until the Master_Down_Timer fires (Backup) or the next advert
    /// is due (Master).
    pub master_down_timer_ms: Option<u64>,
    pub advert_timer_ms: Option<u64>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub discarded: BTreeMap<DiscardReason, u64>,
    pub malformed: u64,
    /// Virtual addresses another tool removed while Master, and keepxdp put back.
    pub addresses_put_back: u64,
}

impl InstanceStatus {
    pub fn new(spec: &InstanceSpec) -> InstanceStatus {
        InstanceStatus {
            name: spec.name.clone(),
            interface: spec.interface.clone(),
            vrid: spec.vrid,
            state: State::Initialize,
            base_priority: spec.priority,
            priority: spec.priority,
            master_down_timer_ms: None,
            advert_timer_ms: None,
            master: None,
            adverts_sent: 0,
            adverts_received: 0,
            discarded: BTreeMap::new(),
            malformed: 0,
            addresses_put_back: 0,
        }
    }
}

struct Runtime<'a, T: AddressTable + RouteTable + LinkTable> {
    spec: &'a InstanceSpec,
    params: Params,
    table: &'a T,
    link: Link,
    frames: FrameSocket,
    mac: [u8; 6],
    /// Where the virtual addresses live: the instance's interface, or its vmac.
    address_ifindex: u32,
    source: IpAddr,
    status: InstanceStatus,
    /// The second gratuitous ARP burst (garp_master_delay after becoming Master).
    garp_again_at: Option<Instant>,
    /// The next garp_master_refresh.
    refresh_at: Option<Instant>,
    sync_events: mpsc::UnboundedSender<(String, MemberEvent)>,
    /// Addresses found on the interface at startup while Backup (a crashed keepxdp's):
    /// released when an advert from another router arrives or the instance leaves Backup for
    /// anything but Master; owned (cleared from here) when it becomes Master.
    inherited: Vec<VirtualAddress>,
}

/// The instance's line to its sync group's coordinator (instances outside any group have
/// one too; the coordinator ignores them).
pub struct SyncLink {
    pub commands: mpsc::UnboundedReceiver<SyncCommand>,
    pub events: mpsc::UnboundedSender<(String, MemberEvent)>,
}

/// Runs the instance until `shutdown` turns true; then sends priority 0 if Master and
/// removes the virtual addresses.
pub async fn run<T: AddressTable + RouteTable + LinkTable>(
    spec: InstanceSpec,
    table: T,
    mut shutdown: watch::Receiver<bool>,
    status: watch::Sender<InstanceStatus>,
    mut effective: watch::Receiver<Effective>,
    mut removals: broadcast::Receiver<Removed>,
    sync: SyncLink,
) -> Result<()> {
    let SyncLink { commands: mut sync_commands, events: sync_events } = sync;
    // use_vmac: the addresses (and, unless vmac_xmit_base, the adverts) go on a macvlan
    // with the virtual router MAC.
    let vmac = match &spec.use_vmac {
        Some(configured) => {
            let name = vmac_name(configured, spec.vrid);
            let mac = virtual_mac(spec.vrid, spec.family == crate::config::Family::Ipv6);
            let index = table.create_vmac(&name, spec.ifindex, mac).await?;
            // The base interface must neither answer ARP for addresses that live on the vmac
            // nor announce them as its own (keepalived sets the same).
            let old_arp = (
                set_ipv4_conf(&spec.interface, "arp_ignore", "1").ok(),
                set_ipv4_conf(&spec.interface, "arp_announce", "2").ok(),
            );
            tracing::info!(instance = spec.name, vmac = name, "virtual MAC interface created");
            Some((name, index, mac, old_arp))
        }
        None => None,
    };
    // IPv6 adverts must leave from a link-local address; the fresh vmac's is still in DAD,
    // so they go from the base interface (as with vmac_xmit_base).
    let send_interface = match &vmac {
        Some((name, ..)) if !spec.vmac_xmit_base && spec.family == crate::config::Family::Ipv4 => name.clone(),
        _ => spec.interface.clone(),
    };
    let (source, link) = Link::open(&spec, &send_interface)?;
    let params = Params {
        version: spec.version,
        priority: spec.priority,
        advert_interval: spec.advert_interval,
        preempt: spec.preempt,
        preempt_delay: spec.preempt_delay,
        primary_address: source,
        start_as_master: spec.start_as_master,
        sync_group: spec.sync_group.is_some(),
    };
    let mut runtime = Runtime {
        spec: &spec,
        params,
        table: &table,
        link,
        frames: FrameSocket::open(vmac.as_ref().map_or(spec.ifindex, |v| v.1))?,
        mac: match &vmac {
            Some((_, _, mac, _)) => *mac,
            None => mac_address(&spec.interface)?,
        },
        address_ifindex: vmac.as_ref().map_or(spec.ifindex, |v| v.1),
        source,
        status: InstanceStatus::new(&spec),
        garp_again_at: None,
        refresh_at: None,
        sync_events,
        inherited: Vec::new(),
    };
    let start = Instant::now();
    let mut machine = Machine::new();
    // FAULT when this instance's own tracking says so, or another member of its sync group's.
    let mut own_fault = false;
    let mut group_fault = false;
    let mut tracking_open = true;
    let mut sync_open = true;
    let mut removals_open = true;
    if let Effective::Priority(priority) = *effective.borrow_and_update() {
        runtime.set_priority(priority);
    }
    machine = runtime.step(&machine, Event::Startup, start.elapsed()).await;
    if machine.state == State::Backup {
        // Addresses a crashed keepxdp left behind: its data plane is still forwarding them
        // (it outlives the process), and this node was their Master a moment ago. They stay
        // until another router is heard (it has them, or will) or this one becomes Master
        // again, so a restart of a lone Master loses no connection (see `Runtime::inherited`).
        for address in &spec.addresses {
            let (_, index, _) = runtime.placement(address);
            if table.present(index, address).await.unwrap_or(false) {
                runtime.inherited.push(address.clone());
            }
        }
        if !runtime.inherited.is_empty() {
            tracing::info!(
                instance = spec.name,
                addresses = runtime.inherited.len(),
                "virtual addresses left by a previous run kept while Backup, until another router is heard or this one is Master"
            );
        }
    }
    status.send_replace(runtime.status.clone());
    let mut buffer = vec![0u8; 2048];
    let far = Duration::from_secs(3600);
    loop {
        let deadline = start + machine.next_deadline().unwrap_or(start.elapsed() + far);
        let garp_at = runtime.garp_again_at.unwrap_or(Instant::now() + far);
        tokio::select! {
            _ = shutdown.changed() => {
                runtime.step(&machine, Event::Shutdown, start.elapsed()).await;
                status.send_replace(runtime.status.clone());
                if let Some((name, index, _, (old_ignore, old_announce))) = vmac {
                    if let Err(error) = table.delete_link(index).await {
                        tracing::warn!(instance = spec.name, vmac = name, error = format!("{error:#}"), "deleting the vmac");
                    }
                    if let Some(old) = old_ignore {
                        let _ = set_ipv4_conf(&spec.interface, "arp_ignore", &old);
                    }
                    if let Some(old) = old_announce {
                        let _ = set_ipv4_conf(&spec.interface, "arp_announce", &old);
                    }
                }
                return Ok(());
            }
            _ = sleep_until(deadline) => {
                machine = runtime.step(&machine, Event::Tick, start.elapsed()).await;
            }
            _ = sleep_until(garp_at) => {
                runtime.garp_again_at = None;
                if machine.state == State::Master {
                    runtime.announce();
                }
            }
            _ = sleep_until(runtime.refresh_at.unwrap_or(Instant::now() + far)) => {
                runtime.refresh_at = spec.garp_refresh.map(|every| Instant::now() + every);
                if machine.state == State::Master {
                    runtime.announce_times(spec.garp_refresh_repeat);
                }
            }
            changed = effective.changed(), if tracking_open => {
                if changed.is_err() {
                    tracking_open = false;
                    continue;
                }
                let now = *effective.borrow_and_update();
                let was = own_fault || group_fault;
                let previous_own = own_fault;
                match now {
                    Effective::Fault => own_fault = true,
                    Effective::Priority(priority) => {
                        // Takes effect with the next advert (RFC 9568 §6.4).
                        runtime.set_priority(priority);
                        own_fault = false;
                    }
                }
                if own_fault != previous_own {
                    runtime.tell_group(MemberEvent::OwnFault(own_fault));
                }
                machine = runtime.fault_changed(&machine, was, own_fault || group_fault, start.elapsed()).await;
            }
            command = sync_commands.recv(), if sync_open => match command {
                Some(SyncCommand::Event(event)) => machine = runtime.step(&machine, event, start.elapsed()).await,
                Some(SyncCommand::GroupFault(fault)) => {
                    let was = own_fault || group_fault;
                    group_fault = fault;
                    machine = runtime.fault_changed(&machine, was, own_fault || group_fault, start.elapsed()).await;
                }
                None => sync_open = false,
            },
            removed = removals.recv(), if removals_open => match removed {
                Ok(removed) if machine.state == State::Master => runtime.put_back(removed).await,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => removals_open = false,
            },
            received = runtime.link.recv(&mut buffer) => {
                let datagram = received.context("receiving VRRP")?;
                if let Some(event) = runtime.received(datagram) {
                    machine = runtime.step(&machine, event, start.elapsed()).await;
                }
            }
        }
        status.send_replace(runtime.status.clone());
    }
}

impl<T: AddressTable + RouteTable + LinkTable> Runtime<'_, T> {
    fn tell_group(&self, event: MemberEvent) {
        let _ = self.sync_events.send((self.spec.name.clone(), event));
    }

    /// Enters or leaves FAULT when the combined fault (own or group) changed.
    async fn fault_changed(&mut self, machine: &Machine, was: bool, now: bool, at: Duration) -> Machine {
        match (was, now) {
            (false, true) => {
                tracing::warn!(instance = self.spec.name, "a tracked object (or a sync group member) failed: FAULT");
                self.step(machine, Event::Fault, at).await
            }
            (true, false) => {
                tracing::info!(instance = self.spec.name, priority = self.params.priority, "tracked objects recovered");
                self.step(machine, Event::FaultCleared, at).await
            }
            _ => machine.clone(),
        }
    }

    fn set_priority(&mut self, priority: u8) {
        if priority != self.params.priority {
            tracing::info!(instance = self.spec.name, from = self.params.priority, to = priority, "effective priority changed");
        }
        self.params.priority = priority;
        self.status.priority = priority;
    }

    async fn step(&mut self, machine: &Machine, event: Event, now: Duration) -> Machine {
        let (next, actions) = fsm::step(&self.params, machine, event, now);
        for action in actions {
            self.execute(action).await;
        }
        if !self.inherited.is_empty() {
            if next.state == State::Master {
                self.inherited.clear();
            } else if matches!(event, Event::Advert(_)) || next.state != State::Backup {
                self.release_inherited().await;
            }
        }
        self.status.state = next.state;
        self.status.master = next.master_address;
        let remaining = |deadline: Option<Duration>| deadline.map(|at| at.saturating_sub(now).as_millis() as u64);
        self.status.master_down_timer_ms = remaining(next.master_down_at);
        self.status.advert_timer_ms = remaining(next.advert_at);
        next
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::SendAdvert { priority } => {
                if let Err(error) = self.send_advert(priority).await {
                    tracing::warn!(instance = self.spec.name, %error, "sending an advert failed");
                }
            }
            Action::ClaimAddresses => {
                for address in &self.spec.addresses {
                    if let Err(error) = self.table.add(self.placement(address).1, address).await {
                        tracing::error!(instance = self.spec.name, %error, "adding a virtual address failed");
                    }
                }
                self.apply_routes(true).await;
                self.announce();
                self.garp_again_at = Some(Instant::now() + self.spec.garp_delay);
                self.refresh_at = self.spec.garp_refresh.map(|every| Instant::now() + every);
            }
            Action::Reannounce => self.announce(),
            Action::ReleaseAddresses => {
                self.garp_again_at = None;
                self.refresh_at = None;
                self.apply_routes(false).await;
                for address in &self.spec.addresses {
                    if let Err(error) = self.table.remove(self.placement(address).1, address).await {
                        tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
                    }
                }
            }
            Action::WantMaster(wants) => self.tell_group(MemberEvent::WantMaster(wants)),
            Action::Transition { from, to } => {
                tracing::info!(instance = self.spec.name, ?from, ?to, priority = self.params.priority, "VRRP state change");
                let commands = notify::commands(&self.spec.notify, "INSTANCE", &self.spec.name, to, self.params.priority);
                notify::spawn_all(commands, &self.spec.name);
                self.tell_group(MemberEvent::Transition { from, to });
            }
        }
    }

    /// The addresses a previous run left: another router is alive (or this instance stops).
    async fn release_inherited(&mut self) {
        for address in std::mem::take(&mut self.inherited) {
            let (_, index, _) = self.placement(&address);
            tracing::info!(instance = self.spec.name, address = %address.address, "releasing a virtual address a previous run left");
            if let Err(error) = self.table.remove(index, &address).await {
                tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
            }
        }
    }

    /// One advert per destination: the group, or each unicast peer (the v3 pseudo-header
    /// checksum covers the destination, so each is built for its own).
    async fn send_advert(&mut self, priority: u8) -> Result<()> {
        let destinations: Vec<IpAddr> =
            if self.spec.unicast_peers.is_empty() { vec![self.spec.group] } else { self.spec.unicast_peers.clone() };
        let version = match self.spec.version {
            Version::V2 => wire::Version::V2 {
                adver_int: self.spec.advert_interval.as_secs().clamp(1, 255) as u8,
                auth: match &self.spec.auth_pass {
                    Some(pass) => wire::Auth::simple_text(pass)?,
                    None => wire::Auth::none(),
                },
            },
            Version::V3 => wire::Version::V3 {
                max_adver_int: wire::Centiseconds::from_duration(self.spec.advert_interval)
                    .context("advert_int out of the 12-bit centisecond range")?,
            },
        };
        let repr = wire::Repr {
            version,
            vrid: self.spec.vrid,
            priority,
            addresses: self.spec.addresses.iter().map(|a| a.address).collect(),
        };
        for destination in destinations {
            let context = ChecksumContext::new(self.source, destination).with_v3_ipv4_as_v2(self.spec.v3_checksum_as_v2);
            let message = repr.to_bytes(&context)?;
            self.link.send(&message, destination).await?;
            self.status.adverts_sent += 1;
        }
        Ok(())
    }

    /// Another tool removed one of our addresses while we are Master: add it back and
    /// announce it (keepalived leaves the node Master without it).
    async fn put_back(&mut self, removed: Removed) {
        let spec = self.spec;
        let Some(address) = spec.addresses.iter().find(|a| a.address == removed.address && self.placement(a).1 == removed.ifindex) else {
            return;
        };
        tracing::warn!(instance = spec.name, address = %removed.address, "virtual address removed by another tool while Master; putting it back");
        match self.table.add(removed.ifindex, address).await {
            Ok(()) => {
                self.status.addresses_put_back += 1;
                self.announce();
            }
            Err(error) => tracing::error!(instance = self.spec.name, %error, "putting the virtual address back failed"),
        }
    }

    /// virtual_routes and virtual_rules follow the addresses: in after them, out before.
    async fn apply_routes(&self, add: bool) {
        for route in &self.spec.routes {
            let ifindex = route
                .dev
                .as_deref()
                .and_then(|dev| nix::net::if_::if_nametoindex(dev).ok())
                .unwrap_or(self.spec.ifindex);
            let result = if add { self.table.add_route(ifindex, route).await } else { self.table.remove_route(ifindex, route).await };
            if let Err(error) = result {
                tracing::error!(instance = self.spec.name, error = format!("{error:#}"), "virtual route");
            }
        }
        for rule in &self.spec.rules {
            let result = if add { self.table.add_rule(rule).await } else { self.table.remove_rule(rule).await };
            if let Err(error) = result {
                tracing::error!(instance = self.spec.name, error = format!("{error:#}"), "virtual rule");
            }
        }
    }

    /// Gratuitous ARP (IPv4) or unsolicited NA (IPv6) for every virtual address,
    /// `garp_repeat` times.
    fn announce(&self) {
        self.announce_times(self.spec.garp_repeat);
    }

    /// Where an address lives: its own `dev` when it names another interface (keepalived's
    /// `192.168.200.17 dev eth1`), else the instance's interface or its vmac. Returns the
    /// interface, its index and the MAC announcements carry.
    fn placement(&self, address: &VirtualAddress) -> (String, u32, [u8; 6]) {
        if let Some(dev) = address.dev.as_deref().filter(|dev| *dev != self.spec.interface)
            && let Ok(index) = nix::net::if_::if_nametoindex(dev) {
                return (dev.to_string(), index, mac_address(dev).unwrap_or(self.mac));
            }
        let interface = match &self.spec.use_vmac {
            Some(configured) => vmac_name(configured, self.spec.vrid),
            None => self.spec.interface.clone(),
        };
        (interface, self.address_ifindex, self.mac)
    }

    fn announce_times(&self, times: u32) {
        for _ in 0..times.max(1) {
            for address in &self.spec.addresses {
                let (interface, index, mac) = self.placement(address);
                let sent = match address.address {
                    IpAddr::V4(v4) => {
                        let frame = GratuitousArp::new(mac, v4).to_frame();
                        if index == self.address_ifindex {
                            self.frames.send(&frame).map_err(anyhow::Error::from)
                        } else {
                            FrameSocket::open(index).and_then(|socket| Ok(socket.send(&frame)?))
                        }
                    }
                    IpAddr::V6(v6) => {
                        let message = NeighborAdvert::unsolicited(v6, mac, false).to_bytes(v6, ALL_NODES);
                        send_unsolicited_na(&interface, index, v6, &message)
                    }
                };
                if let Err(error) = sent {
                    tracing::warn!(instance = self.spec.name, %error, "announcing a virtual address failed");
                }
            }
        }
    }

    /// A datagram from the socket: None when it is not for this instance or is refused
    /// (counted).
    fn received(&mut self, datagram: std::result::Result<Datagram, wire::Error>) -> Option<Event> {
        let advert = match datagram {
            Ok(advert) => advert,
            Err(_) => {
                self.status.malformed += 1;
                return None;
            }
        };
        if advert.repr.vrid != self.spec.vrid {
            return None;
        }
        self.status.adverts_received += 1;
        let (version, auth_pass) = match &advert.repr.version {
            wire::Version::V2 { auth, .. } => (Version::V2, auth.password().map(<[u8]>::to_vec)),
            wire::Version::V3 { .. } => (Version::V3, None),
        };
        let addresses = advert.repr.addresses.clone();
        let ours: Vec<IpAddr> = self.spec.addresses.iter().map(|a| a.address).collect();
        let peers = self.spec.unicast_peers.clone();
        let expect = discard::Expect {
            version: self.spec.version,
            advert_interval: self.spec.advert_interval,
            auth_pass: self.spec.auth_pass.as_deref(),
            addresses: &ours,
            primary_address: self.source,
            unicast_peers: &peers,
        };
        let received = discard::Received {
            source: advert.source,
            ttl: advert.ttl,
            version,
            priority: advert.repr.priority,
            interval: advert.repr.advert_interval(),
            auth_pass: auth_pass.as_deref(),
            addresses: &addresses,
        };
        match discard::check(&expect, &received) {
            Ok(heard) => Some(Event::Advert(heard)),
            Err(reason) => {
                *self.status.discarded.entry(reason).or_default() += 1;
                tracing::debug!(instance = self.spec.name, ?reason, source = %advert.source, "advert discarded");
                None
            }
        }
    }
}
