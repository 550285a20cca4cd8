//! One running VRRP instance: feeds the state machine its inputs (adverts heard, timers, its
//! interface coming and going, tracking, sync group orders, shutdown) and carries out its
//! decisions (adverts, virtual addresses, gratuitous ARP / NA, notify, sync group news).
//! Decisions are the fsm's; the kernel is reached through the netlink tables and a `Host`
//! (sockets, scripts), so `tests` replays it on fakes under tokio's paused clock. Following
//! the interface is in `interface`, the virtual addresses' bookkeeping in `addresses`.
use std::{collections::BTreeMap, io, net::IpAddr, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::{
    sync::{mpsc, watch},
    time::{Instant, sleep_until},
};

use self::interface::{Faults, RETRY_FIRST};
use super::{
    adverts::{self, Heard},
    attachment::Attachment,
    discard::DiscardReason,
    fsm::{self, Action, Event, Machine, Params, State},
    host::Host,
    link::{Datagram, VrrpLink},
    notify,
    readiness::Ready,
    spec::InstanceSpec,
    sync::{MemberEvent, SyncCommand},
    wire,
};
use crate::{
    config::model::VirtualAddress,
    net::{AddressTable, Interfaces, RouteTable, vmac::LinkTable},
    track::Effective,
};

/// What `keepxdp status` shows of an instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    /// The interface's index while the instance runs on it.
    pub ifindex: Option<u32>,
    pub vrid: u8,
    pub state: State,
    /// Why it is in FAULT ("waiting for eth0: down", a tracked object, its sync group).
    pub fault_reason: Option<String>,
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
    /// The last state change, in seconds since the Unix epoch.
    pub last_transition: Option<f64>,
    pub became_master: u64,
    pub released_master: u64,
}

impl InstanceStatus {
    pub fn new(spec: &InstanceSpec) -> InstanceStatus {
        InstanceStatus {
            name: spec.name.clone(),
            interface: spec.interface.clone(),
            ifindex: None,
            vrid: spec.vrid,
            state: State::Initialize,
            fault_reason: None,
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
            last_transition: None,
            became_master: 0,
            released_master: 0,
        }
    }
}

/// The instance's line to its sync group's coordinator (instances outside any group have
/// one too; the coordinator ignores them).
pub struct SyncLink {
    pub commands: mpsc::UnboundedReceiver<SyncCommand>,
    pub events: mpsc::UnboundedSender<(String, MemberEvent)>,
}

/// What the instance listens to besides its socket.
pub struct Inputs {
    pub shutdown: watch::Receiver<bool>,
    pub effective: watch::Receiver<Effective>,
    /// The kernel's links and addresses (see `net::watch_interfaces`).
    pub interfaces: watch::Receiver<Interfaces>,
    pub sync: SyncLink,
    /// A reload's new configuration for this instance, when it can apply in place (see
    /// `InstanceSpec::same_identity`).
    pub reconfigure: mpsc::UnboundedReceiver<InstanceSpec>,
}

/// The netlink side of the kernel, as the instance uses it.
pub trait Tables: AddressTable + RouteTable + LinkTable {}
impl<T: AddressTable + RouteTable + LinkTable> Tables for T {}

struct Runtime<'a, T, H: Host> {
    /// Owned: a reload changes it in place (see `reconfigure`).
    spec: InstanceSpec,
    params: Params,
    table: &'a T,
    host: &'a H,
    announcer: H::Announcer,
    /// Read for lookups only; the run loop waits on its own receiver.
    interfaces: watch::Receiver<Interfaces>,
    attachment: Option<Attachment<H::Link>>,
    faults: Faults,
    /// The readiness the last failed open was tried on, the backoff, and when to try again.
    failed_on: Option<Ready>,
    retry_delay: Duration,
    retry_at: Option<Instant>,
    /// Which virtual addresses the kernel showed last, for the put-back rule.
    present: Vec<bool>,
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
    /// The fsm's clock: time since the instance started.
    epoch: Instant,
}

/// Runs the instance until `shutdown` turns true; then sends priority 0 if Master, removes
/// the virtual addresses and gives its interface back (vmac deleted).
pub async fn run<T: Tables, H: Host>(
    spec: InstanceSpec,
    table: T,
    host: H,
    inputs: Inputs,
    status: watch::Sender<InstanceStatus>,
) -> Result<()> {
    let Inputs { mut shutdown, mut effective, mut interfaces, sync, mut reconfigure } = inputs;
    let SyncLink { commands: mut sync_commands, events: sync_events } = sync;
    // The kernel's picture first (the subscription behind it predates its dump).
    interfaces.wait_for(|table| table.loaded).await.context("the interface table ended")?;
    let mut runtime = Runtime {
        spec: spec.clone(),
        params: Params {
            version: spec.version,
            priority: spec.priority,
            advert_interval: spec.advert_interval,
            preempt: spec.preempt,
            preempt_delay: spec.preempt_delay,
            primary_address: spec.group,
            start_as_master: spec.start_as_master,
            sync_group: spec.sync_group.is_some(),
        },
        table: &table,
        host: &host,
        announcer: host.open_announcer()?,
        interfaces: interfaces.clone(),
        attachment: None,
        faults: Faults::default(),
        failed_on: None,
        retry_delay: RETRY_FIRST,
        retry_at: None,
        present: Vec::new(),
        status: InstanceStatus::new(&spec),
        garp_again_at: None,
        refresh_at: None,
        sync_events,
        inherited: Vec::new(),
        epoch: Instant::now(),
    };
    match *effective.borrow_and_update() {
        Effective::Priority(priority) => runtime.set_priority(priority),
        Effective::Fault => runtime.faults.tracking = true,
    }
    let mut machine = runtime.follow_interface(Machine::new()).await;
    machine = runtime.start(machine).await;
    status.send_replace(runtime.status.clone());
    let mut buffer = vec![0u8; 2048];
    let (mut tracking_open, mut sync_open, mut interfaces_open, mut reconfigure_open) = (true, true, true, true);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        let deadline = machine.next_deadline().map_or(far, |at| runtime.epoch + at);
        let garp_at = runtime.garp_again_at.unwrap_or(far);
        let refresh_at = runtime.refresh_at.unwrap_or(far);
        let retry_at = runtime.retry_at.unwrap_or(far);
        tokio::select! {
            _ = shutdown.changed() => {
                runtime.stop(&machine).await;
                status.send_replace(runtime.status.clone());
                return Ok(());
            }
            _ = sleep_until(deadline) => {
                // After a stall (a loaded machine, a flood), adverts that came before the
                // deadline may still wait in the socket: judged first, or a Backup would
                // declare a Master down that advertised on time.
                machine = runtime.judge_queued(machine, &mut buffer).await;
                if machine.next_deadline().is_some_and(|at| runtime.epoch + at <= Instant::now()) {
                    machine = runtime.step(&machine, Event::Tick).await;
                }
            }
            _ = sleep_until(garp_at) => {
                runtime.garp_again_at = None;
                if machine.state == State::Master {
                    runtime.announce_times(runtime.spec.garp_repeat);
                }
            }
            _ = sleep_until(refresh_at) => {
                runtime.refresh_at = runtime.spec.garp_refresh.map(|every| Instant::now() + every);
                if machine.state == State::Master {
                    runtime.announce_times(runtime.spec.garp_refresh_repeat);
                }
            }
            _ = sleep_until(retry_at) => {
                runtime.retry_at = None;
                runtime.failed_on = None;
                machine = runtime.follow_interface(machine).await;
            }
            changed = interfaces.changed(), if interfaces_open => {
                if changed.is_err() {
                    interfaces_open = false;
                    continue;
                }
                interfaces.borrow_and_update();
                machine = runtime.follow_interface(machine).await;
            }
            changed = effective.changed(), if tracking_open => {
                if changed.is_err() {
                    tracking_open = false;
                    continue;
                }
                let before = runtime.faults.clone();
                match *effective.borrow_and_update() {
                    Effective::Fault => runtime.faults.tracking = true,
                    Effective::Priority(priority) => {
                        // Takes effect with the next advert (RFC 9568 §6.4).
                        runtime.set_priority(priority);
                        runtime.faults.tracking = false;
                    }
                }
                machine = runtime.faults_changed(machine, &before).await;
            }
            new = reconfigure.recv(), if reconfigure_open => match new {
                Some(new) => machine = runtime.reconfigure(machine, new).await,
                None => reconfigure_open = false,
            },
            command = sync_commands.recv(), if sync_open => match command {
                Some(SyncCommand::Event(event)) => machine = runtime.step(&machine, event).await,
                Some(SyncCommand::GroupFault(fault)) => {
                    let before = runtime.faults.clone();
                    runtime.faults.group = fault;
                    machine = runtime.faults_changed(machine, &before).await;
                }
                None => sync_open = false,
            },
            received = receive(&runtime.attachment, &mut buffer) => match received {
                Ok(datagram) => {
                    if let Some(event) = runtime.received(datagram) {
                        machine = runtime.step(&machine, event).await;
                    }
                }
                Err(error) => machine = runtime.socket_failed(machine, error).await,
            },
        }
        status.send_replace(runtime.status.clone());
    }
}

/// The attached socket's next datagram; never, while detached.
async fn receive<L: VrrpLink>(attachment: &Option<Attachment<L>>, buffer: &mut [u8]) -> io::Result<Result<Datagram, wire::Error>> {
    match attachment {
        Some(attachment) => attachment.link.recv(buffer).await,
        None => std::future::pending().await,
    }
}

/// At most this many queued datagrams are judged before a due timer is (a flood that reaches
/// the socket cannot hold the timers back for ever).
const QUEUED_FIRST: usize = 64;

impl<T: Tables, H: Host> Runtime<'_, T, H> {
    /// Judges the datagrams already waiting in the socket, without waiting for more.
    async fn judge_queued(&mut self, mut machine: Machine, buffer: &mut [u8]) -> Machine {
        for _ in 0..QUEUED_FIRST {
            // A zero timeout polls the receive once: Ok when a datagram is there already.
            match tokio::time::timeout(Duration::ZERO, receive(&self.attachment, buffer)).await {
                Ok(Ok(datagram)) => {
                    if let Some(event) = self.received(datagram) {
                        machine = self.step(&machine, event).await;
                    }
                }
                Ok(Err(error)) => return self.socket_failed(machine, error).await,
                Err(_) => break,
            }
        }
        machine
    }

    fn tell_group(&self, event: MemberEvent) {
        let _ = self.sync_events.send((self.spec.name.clone(), event));
    }

    fn set_priority(&mut self, priority: u8) {
        if priority != self.params.priority {
            tracing::info!(instance = self.spec.name, from = self.params.priority, to = priority, "effective priority changed");
        }
        self.params.priority = priority;
        self.status.priority = priority;
    }

    /// The first step: Startup, or FAULT while something is missing. A Backup keeps the
    /// addresses a crashed run left (see `inherited`); an instance waiting in FAULT drops
    /// them (it must not answer for them).
    async fn start(&mut self, machine: Machine) -> Machine {
        if self.faults.any() {
            let machine = self.step(&machine, Event::Fault).await;
            self.remove_leftovers().await;
            return machine;
        }
        let machine = self.step(&machine, Event::Startup).await;
        if machine.state == State::Backup {
            self.adopt_inherited();
        }
        machine
    }

    async fn stop(&mut self, machine: &Machine) {
        self.step(machine, Event::Shutdown).await;
        self.detach().await;
    }

    async fn step(&mut self, machine: &Machine, event: Event) -> Machine {
        let now = self.epoch.elapsed();
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
                    // Priority 0 on a link going down is tried and may fail.
                    if self.faults.any() {
                        tracing::debug!(instance = self.spec.name, %error, "sending an advert failed");
                    } else {
                        tracing::warn!(instance = self.spec.name, %error, "sending an advert failed");
                    }
                }
            }
            Action::ClaimAddresses => {
                for address in &self.spec.addresses {
                    let Some(place) = self.placement(address) else { continue };
                    if let Err(error) = self.table.add(place.ifindex, address).await {
                        tracing::error!(instance = self.spec.name, %error, "adding a virtual address failed");
                    }
                }
                self.apply_routes(true).await;
                self.announce_times(self.spec.garp_repeat);
                self.garp_again_at = Some(Instant::now() + self.spec.garp_delay);
                self.refresh_at = self.spec.garp_refresh.map(|every| Instant::now() + every);
            }
            Action::Reannounce => self.announce_times(self.spec.garp_repeat),
            Action::ReleaseAddresses => {
                self.garp_again_at = None;
                self.refresh_at = None;
                self.apply_routes(false).await;
                for address in &self.spec.addresses {
                    let Some(place) = self.placement(address) else { continue };
                    if let Err(error) = self.table.remove(place.ifindex, address).await {
                        tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
                    }
                }
            }
            Action::WantMaster(wants) => self.tell_group(MemberEvent::WantMaster(wants)),
            Action::Transition { from, to } => {
                let reason = if to == State::Fault { self.faults.reason() } else { None };
                tracing::info!(instance = self.spec.name, ?from, ?to, priority = self.params.priority, reason, "{}", crate::ops::log::entering(&self.spec.name, to));
                self.status.last_transition = Some(crate::ops::log::unix_now());
                self.status.became_master += u64::from(to == State::Master);
                self.status.released_master += u64::from(from == State::Master);
                let commands = notify::commands(&self.spec.notify, "INSTANCE", &self.spec.name, to, self.params.priority);
                self.host.notify(commands, &self.spec.name);
                crate::alert::instance_state(&self.spec.name, to);
                self.tell_group(MemberEvent::Transition { from, to });
            }
        }
    }

    async fn send_advert(&mut self, priority: u8) -> Result<()> {
        let Some(attachment) = &self.attachment else { return Ok(()) };
        for (destination, message) in adverts::outgoing(&self.spec, attachment.ready.source, priority)? {
            attachment.link.send(&message, destination).await?;
            self.status.adverts_sent += 1;
        }
        Ok(())
    }

    /// A datagram from the socket, counted: the fsm's event when it is an advert for us.
    fn received(&mut self, datagram: std::result::Result<Datagram, wire::Error>) -> Option<Event> {
        let source = self.attachment.as_ref()?.ready.source;
        match adverts::judge(&self.spec, source, &datagram) {
            Heard::Advert(advert) => {
                self.status.adverts_received += 1;
                Some(Event::Advert(advert))
            }
            Heard::OtherVrid => None,
            Heard::Malformed => {
                self.status.malformed += 1;
                None
            }
            Heard::Discarded(reason) => {
                self.status.adverts_received += 1;
                *self.status.discarded.entry(reason).or_default() += 1;
                tracing::debug!(instance = self.spec.name, ?reason, "advert discarded");
                None
            }
        }
    }
}

mod addresses;
mod interface;
mod reconfigure;
#[cfg(test)]
mod tests;
