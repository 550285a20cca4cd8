//! `instance::run` replayed on fakes, in holo-vrrp's style: inputs in (adverts heard, time
//! under tokio's paused clock, link and address events, tracking, sync group orders,
//! shutdown), everything the instance did out, in order (`Did`). The fake kernel behaves like
//! the real one where it matters: an address added or removed, or a vmac made, shows up in
//! the interface table the instance reads.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Result, bail};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{Inputs, InstanceStatus, SyncLink, run};
use crate::{
    config::{Family, model::VirtualAddress},
    net::{AddressTable, Interfaces, NetEvent, RouteTable, route_spec::{RouteSpec, RuleSpec}, vmac::LinkTable},
    track::Effective,
    vrrp::{
        fsm::{State, Version},
        host::{Announcer, Host},
        link::{Datagram, LinkPlace, VrrpLink},
        spec::{InstanceSpec, tests::{spec_v4, vip}},
        sync::{MemberEvent, SyncCommand},
        wire::{self, ChecksumContext, Packet, Repr},
    },
};

/// What the instance did, as its fakes saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Did {
    Opened { ifindex: u32, source: IpAddr, send_ifindex: u32 },
    Closed,
    Advert { priority: u8, to: IpAddr },
    Added { address: IpAddr, ifindex: u32 },
    Removed { address: IpAddr, ifindex: u32 },
    Garp { address: Ipv4Addr, ifindex: u32 },
    Na { address: Ipv6Addr, ifindex: u32 },
    /// The `notify` script with the state it was given.
    Notify(String),
    VmacCreated { name: String, base: u32 },
    VmacDeleted(u32),
}

type Log = Arc<Mutex<Vec<Did>>>;

fn record(log: &Log, did: Did) {
    log.lock().unwrap().push(did);
}

/// The netlink side: records, and tells the interface table what the kernel would.
#[derive(Clone)]
struct FakeKernel {
    log: Log,
    interfaces: Arc<watch::Sender<Interfaces>>,
    next_ifindex: Arc<AtomicU32>,
}

impl FakeKernel {
    fn apply(&self, event: NetEvent) {
        self.interfaces.send_if_modified(|table| table.apply(&event));
    }
}

impl AddressTable for FakeKernel {
    async fn add(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        record(&self.log, Did::Added { address: address.address, ifindex });
        if self.interfaces.borrow().by_index(ifindex).is_none() {
            bail!("no such device");
        }
        self.apply(NetEvent::Address { ifindex, address: address.address, usable: true, removed: false });
        Ok(())
    }

    async fn remove(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        record(&self.log, Did::Removed { address: address.address, ifindex });
        self.apply(NetEvent::Address { ifindex, address: address.address, usable: false, removed: true });
        Ok(())
    }

}

impl RouteTable for FakeKernel {
    async fn add_route(&self, _: u32, _: &RouteSpec) -> Result<()> {
        Ok(())
    }
    async fn remove_route(&self, _: u32, _: &RouteSpec) -> Result<()> {
        Ok(())
    }
    async fn add_rule(&self, _: &RuleSpec) -> Result<()> {
        Ok(())
    }
    async fn remove_rule(&self, _: &RuleSpec) -> Result<()> {
        Ok(())
    }
}

impl LinkTable for FakeKernel {
    async fn create_vmac(&self, name: &str, base: u32, _mac: [u8; 6]) -> Result<u32> {
        record(&self.log, Did::VmacCreated { name: name.into(), base });
        let ifindex = self.next_ifindex.fetch_add(1, Ordering::Relaxed);
        self.apply(NetEvent::Link { ifindex, name: name.into(), up: true, deleted: false });
        Ok(ifindex)
    }

    async fn delete_link(&self, index: u32) -> Result<()> {
        record(&self.log, Did::VmacDeleted(index));
        self.apply(NetEvent::Link { ifindex: index, name: String::new(), up: false, deleted: true });
        Ok(())
    }

    fn set_ipv4_conf(&self, _: &str, _: &str, _: &str) -> Result<String> {
        Ok("0".into())
    }
}

/// Sockets and scripts: adverts sent are decoded back (so they are valid bytes), adverts
/// "on the wire" reach the socket that is open.
#[derive(Clone, Default)]
struct FakeHost {
    log: Log,
    wire: Arc<Mutex<Option<mpsc::UnboundedSender<Datagram>>>>,
    /// Sends fail (the link is gone) while true.
    sends_fail: Arc<AtomicBool>,
    /// This many opens fail before one succeeds.
    failing_opens: Arc<AtomicU32>,
    /// Datagrams waiting in the socket without having woken the instance (as after a stall:
    /// the kernel queued them while the process did not run).
    queued: Arc<Mutex<std::collections::VecDeque<Datagram>>>,
}

struct FakeLink {
    log: Log,
    place: LinkPlace,
    incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<Datagram>>,
    queued: Arc<Mutex<std::collections::VecDeque<Datagram>>>,
    sends_fail: Arc<AtomicBool>,
}

impl VrrpLink for FakeLink {
    async fn recv(&self, _buffer: &mut [u8]) -> std::io::Result<Result<Datagram, wire::Error>> {
        if let Some(datagram) = self.queued.lock().unwrap().pop_front() {
            return Ok(Ok(datagram));
        }
        match self.incoming.lock().await.recv().await {
            Some(datagram) => Ok(Ok(datagram)),
            None => std::future::pending().await,
        }
    }

    async fn send(&self, message: &[u8], destination: IpAddr) -> std::io::Result<()> {
        let context = ChecksumContext::new(self.place.source, destination);
        let (repr, _) = Packet::new_checked(message).and_then(|packet| Repr::parse(&packet, &context)).expect("a valid advert");
        record(&self.log, Did::Advert { priority: repr.priority, to: destination });
        if self.sends_fail.load(Ordering::Relaxed) {
            return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
        }
        Ok(())
    }
}

impl Drop for FakeLink {
    fn drop(&mut self) {
        record(&self.log, Did::Closed);
    }
}

impl Announcer for FakeHost {
    fn gratuitous_arp(&self, ifindex: u32, _mac: [u8; 6], address: Ipv4Addr) -> Result<()> {
        record(&self.log, Did::Garp { address, ifindex });
        Ok(())
    }

    fn unsolicited_na(&self, _interface: &str, ifindex: u32, _mac: [u8; 6], address: Ipv6Addr) -> Result<()> {
        record(&self.log, Did::Na { address, ifindex });
        Ok(())
    }
}

impl Host for FakeHost {
    type Link = FakeLink;
    type Announcer = FakeHost;

    fn open_link(&self, place: &LinkPlace) -> Result<FakeLink> {
        if self.failing_opens.load(Ordering::Relaxed) > 0 {
            self.failing_opens.fetch_sub(1, Ordering::Relaxed);
            bail!("Operation not permitted");
        }
        record(&self.log, Did::Opened { ifindex: place.ifindex, source: place.source, send_ifindex: place.send_ifindex });
        let (sender, incoming) = mpsc::unbounded_channel();
        *self.wire.lock().unwrap() = Some(sender);
        Ok(FakeLink { log: self.log.clone(), place: place.clone(), incoming: incoming.into(), queued: self.queued.clone(), sends_fail: self.sends_fail.clone() })
    }

    fn open_announcer(&self) -> Result<FakeHost> {
        Ok(self.clone())
    }

    fn mac_address(&self, _interface: &str) -> Result<[u8; 6]> {
        Ok([2, 0, 0, 0, 0, 2])
    }

    fn notify(&self, commands: Vec<Vec<String>>, _instance: &str) {
        for argv in commands {
            // notify INSTANCE NAME STATE PRIORITY
            record(&self.log, Did::Notify(argv[argv.len() - 2].clone()));
        }
    }
}

/// One instance under test, and its inputs.
struct Router {
    kernel: FakeKernel,
    host: FakeHost,
    shutdown: watch::Sender<bool>,
    effective: watch::Sender<Effective>,
    sync_commands: mpsc::UnboundedSender<SyncCommand>,
    sync_events: mpsc::UnboundedReceiver<(String, MemberEvent)>,
    reconfigure: mpsc::UnboundedSender<InstanceSpec>,
    status: watch::Receiver<InstanceStatus>,
    task: JoinHandle<Result<()>>,
}

const ETH0: u32 = 2;
const SOURCE: &str = "10.0.0.2";
/// v2, priority 100: 3 × 1 s + (256 − 100) / 256 s.
const MASTER_DOWN: Duration = Duration::from_micros(3_609_375);
const A_MOMENT: Duration = Duration::from_millis(1);

fn link(ifindex: u32, name: &str, up: bool) -> NetEvent {
    NetEvent::Link { ifindex, name: name.into(), up, deleted: false }
}

fn deleted(ifindex: u32, name: &str) -> NetEvent {
    NetEvent::Link { ifindex, name: name.into(), up: false, deleted: true }
}

fn address(ifindex: u32, address: &str, usable: bool) -> NetEvent {
    NetEvent::Address { ifindex, address: address.parse().unwrap(), usable, removed: false }
}

fn removed(ifindex: u32, address: &str) -> NetEvent {
    NetEvent::Address { ifindex, address: address.parse().unwrap(), usable: false, removed: true }
}

/// eth0 up with its address.
fn eth0_up() -> Vec<NetEvent> {
    vec![link(ETH0, "eth0", true), address(ETH0, SOURCE, true)]
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vip4() -> IpAddr {
    ip("10.0.0.100")
}

fn group() -> IpAddr {
    ip("224.0.0.18")
}

/// VI_1 (priority 100 unless changed) with a `notify` script, so each state shows.
fn spec(priority: u8) -> InstanceSpec {
    let mut spec = InstanceSpec { priority, ..spec_v4() };
    spec.notify.notify = Some("notify".into());
    spec
}

fn advert_from(source: &str, priority: u8, version: wire::Version) -> Datagram {
    let repr = Repr { version, vrid: 51, priority, addresses: vec![vip4()] };
    Datagram { source: ip(source), destination: group(), ttl: 255, repr }
}

impl Router {
    /// Starts the instance on a kernel whose interface table the `events` made.
    async fn start(spec: InstanceSpec, events: &[NetEvent]) -> Router {
        let log = Log::default();
        let (interfaces, receiver) = watch::channel(Interfaces::of(events));
        let kernel = FakeKernel { log: log.clone(), interfaces: Arc::new(interfaces), next_ifindex: Arc::new(AtomicU32::new(100)) };
        let host = FakeHost { log, ..FakeHost::default() };
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (effective, effective_receiver) = watch::channel(Effective::Priority(spec.priority));
        let (sync_commands, commands) = mpsc::unbounded_channel();
        let (events_sender, sync_events) = mpsc::unbounded_channel();
        let (status_sender, status) = watch::channel(InstanceStatus::new(&spec));
        let (reconfigure, reconfigure_receiver) = mpsc::unbounded_channel();
        let inputs = Inputs {
            shutdown: shutdown_receiver,
            effective: effective_receiver,
            interfaces: receiver,
            sync: SyncLink { commands, events: events_sender },
            reconfigure: reconfigure_receiver,
        };
        let task = tokio::spawn(run(spec, kernel.clone(), host.clone(), inputs, status_sender));
        let router = Router { kernel, host, shutdown, effective, sync_commands, sync_events, reconfigure, status, task };
        router.settle().await;
        router
    }

    /// Lets the instance handle what it was given (1 ms of the paused clock).
    async fn settle(&self) {
        tokio::time::sleep(A_MOMENT).await;
    }

    async fn wait(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// What it did since the last look.
    fn did(&self) -> Vec<Did> {
        std::mem::take(&mut *self.host.log.lock().unwrap())
    }

    fn state(&self) -> State {
        self.status.borrow().state
    }

    fn fault_reason(&self) -> Option<String> {
        self.status.borrow().fault_reason.clone()
    }

    /// The kernel announces `events`.
    async fn kernel_says(&self, events: &[NetEvent]) {
        for event in events {
            self.kernel.apply(event.clone());
        }
        self.settle().await;
    }

    /// An advert from another router reaches the open socket (lost while none is open).
    async fn hears(&self, source: &str, priority: u8) {
        self.queue(source, priority, wire::Version::V2 { adver_int: 1, auth: wire::Auth::none() });
        self.settle().await;
    }

    /// An advert sent to the open socket (it wakes the instance).
    fn queue(&self, source: &str, priority: u8, version: wire::Version) {
        if let Some(wire) = &*self.host.wire.lock().unwrap() {
            let _ = wire.send(advert_from(source, priority, version));
        }
    }

    /// An advert that waits in the socket without waking the instance: it finds it when it
    /// next reads, woken by something else (its timer).
    fn queue_unwoken(&self, source: &str, priority: u8, version: wire::Version) {
        self.host.queued.lock().unwrap().push_back(advert_from(source, priority, version));
    }

    /// Becomes Master alone: Master_Down_Interval after starting Backup.
    async fn becomes_master(&self) {
        self.wait(MASTER_DOWN).await;
        assert_eq!(self.state(), State::Master);
        self.did();
    }

    /// A reload that changed this instance in place (the daemon also restarts the tracking
    /// combiner on the new base priority: `tracking`).
    async fn reloaded(&self, spec: InstanceSpec) {
        self.reconfigure.send(spec).unwrap();
        self.settle().await;
    }

    async fn tracking(&self, effective: Effective) {
        self.effective.send_replace(effective);
        self.settle().await;
    }

    async fn shut_down(self) -> Vec<Did> {
        self.shutdown.send_replace(true);
        let log = self.host.log.clone();
        self.task.await.unwrap().unwrap();
        std::mem::take(&mut *log.lock().unwrap())
    }
}

fn becoming_master(ifindex: u32) -> Vec<Did> {
    vec![
        Did::Advert { priority: 100, to: group() },
        Did::Added { address: vip4(), ifindex },
        Did::Garp { address: Ipv4Addr::new(10, 0, 0, 100), ifindex },
        Did::Notify("MASTER".into()),
    ]
}

#[tokio::test(start_paused = true)]
async fn an_instance_on_a_usable_interface_starts_backup_and_is_master_after_master_down_interval_rfc9568_6_4() {
    let router = Router::start(spec(100), &eth0_up()).await;
    assert_eq!(router.did(), [Did::Opened { ifindex: ETH0, source: ip(SOURCE), send_ifindex: ETH0 }, Did::Notify("BACKUP".into())]);
    assert_eq!(router.status.borrow().ifindex, Some(ETH0));
    router.wait(MASTER_DOWN - 2 * A_MOMENT).await;
    assert_eq!(router.state(), State::Backup);
    router.wait(2 * A_MOMENT).await;
    assert_eq!(router.did(), becoming_master(ETH0));
}

#[tokio::test(start_paused = true)]
async fn an_instance_started_before_its_interface_exists_waits_in_fault_and_becomes_backup_when_it_appears() {
    let router = Router::start(spec(100), &[]).await;
    assert_eq!(router.did(), [Did::Notify("FAULT".into())], "no socket without an interface");
    assert_eq!(router.state(), State::Fault);
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: missing"));
    router.wait(Duration::from_secs(60)).await;
    assert_eq!(router.did(), [], "waiting does nothing: no polling, no retries");

    // The interface is created (down), gets its address, comes up.
    router.kernel_says(&[link(5, "eth0", false)]).await;
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: down"));
    router.kernel_says(&[address(5, SOURCE, true)]).await;
    assert_eq!(router.state(), State::Fault);
    router.kernel_says(&[link(5, "eth0", true)]).await;
    assert_eq!(router.did(), [Did::Opened { ifindex: 5, source: ip(SOURCE), send_ifindex: 5 }, Did::Notify("BACKUP".into())]);
    assert_eq!((router.state(), router.fault_reason()), (State::Backup, None));
    router.becomes_master().await;
}

#[tokio::test(start_paused = true)]
async fn an_ipv4_instance_on_an_interface_without_an_address_waits_for_one() {
    let router = Router::start(spec(100), &[link(ETH0, "eth0", true)]).await;
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: no usable address"));
    router.kernel_says(&[address(ETH0, SOURCE, true)]).await;
    assert_eq!(router.state(), State::Backup);
}

#[tokio::test(start_paused = true)]
async fn an_ipv6_instance_waits_for_a_link_local_address_that_finished_dad_rfc9568_5_1_2_1() {
    let mut spec = spec(100);
    spec.family = Family::Ipv6;
    spec.version = Version::V3;
    spec.group = ip("ff02::12");
    spec.addresses = vec![vip("fd00::100/64")];
    let router = Router::start(spec, &[link(ETH0, "eth0", true), address(ETH0, "fd00::2", true)]).await;
    assert_eq!(router.did(), [Did::Notify("FAULT".into())]);
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: no usable address"));
    router.kernel_says(&[address(ETH0, "fe80::2", false)]).await;
    assert_eq!(router.state(), State::Fault, "still tentative");
    router.kernel_says(&[address(ETH0, "fe80::2", true)]).await;
    assert_eq!(router.did(), [Did::Opened { ifindex: ETH0, source: ip("fe80::2"), send_ifindex: ETH0 }, Did::Notify("BACKUP".into())]);
    // v3, priority 100, 1 s: Master_Down_Interval is the same as v2's here.
    router.wait(MASTER_DOWN).await;
    assert_eq!(
        router.did(),
        [
            Did::Advert { priority: 100, to: ip("ff02::12") },
            Did::Added { address: ip("fd00::100"), ifindex: ETH0 },
            Did::Na { address: "fd00::100".parse().unwrap(), ifindex: ETH0 },
            Did::Notify("MASTER".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_master_whose_link_goes_down_sends_priority_0_and_releases_its_addresses() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    assert_eq!(
        router.did(),
        [
            Did::Advert { priority: 0, to: group() },
            Did::Removed { address: vip4(), ifindex: ETH0 },
            Did::Notify("FAULT".into()),
            Did::Closed
        ]
    );
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: down"));
    assert_eq!(router.status.borrow().ifindex, None);

    // Back up: Backup first, then the election (alone: Master after Master_Down_Interval).
    router.kernel_says(&[link(ETH0, "eth0", true)]).await;
    assert_eq!(router.did(), [Did::Opened { ifindex: ETH0, source: ip(SOURCE), send_ifindex: ETH0 }, Did::Notify("BACKUP".into())]);
    router.wait(MASTER_DOWN).await;
    assert_eq!(router.did(), becoming_master(ETH0));
}

#[tokio::test(start_paused = true)]
async fn a_master_whose_link_fails_sending_still_goes_to_fault_ignoring_the_error() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.host.sends_fail.store(true, Ordering::Relaxed);
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    assert_eq!(router.did()[..2], [Did::Advert { priority: 0, to: group() }, Did::Removed { address: vip4(), ifindex: ETH0 }]);
    assert_eq!(router.state(), State::Fault);
}

#[tokio::test(start_paused = true)]
async fn a_backup_whose_link_flaps_goes_to_fault_and_back_and_follows_the_master_again() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.hears("10.0.0.1", 200).await;
    router.did();
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    assert_eq!(router.did(), [Did::Notify("FAULT".into()), Did::Closed], "a Backup has nothing to send or release");
    router.kernel_says(&[link(ETH0, "eth0", true)]).await;
    assert_eq!(router.state(), State::Backup);
    // The Master keeps advertising: no takeover.
    for _ in 0..10 {
        router.wait(Duration::from_secs(1)).await;
        router.hears("10.0.0.1", 200).await;
    }
    assert_eq!(router.state(), State::Backup);
    assert_eq!(router.status.borrow().master, Some(ip("10.0.0.1")));
}

#[tokio::test(start_paused = true)]
async fn after_a_flap_a_higher_priority_backup_with_preempt_takes_mastership_back_rfc9568_6_4_2() {
    let router = Router::start(spec(150), &eth0_up()).await;
    router.wait(Duration::from_secs(4)).await;
    assert_eq!(router.state(), State::Master);
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    router.kernel_says(&[link(ETH0, "eth0", true)]).await;
    assert_eq!(router.state(), State::Backup);
    router.did();
    // The peer (priority 100) took over meanwhile; its adverts are lower: discarded, and
    // our Master_Down_Timer runs out (150: 3 s + 106/256 s).
    for _ in 0..3 {
        router.hears("10.0.0.1", 100).await;
        router.wait(Duration::from_secs(1)).await;
    }
    router.hears("10.0.0.1", 100).await;
    router.wait(Duration::from_millis(500)).await;
    assert_eq!(router.state(), State::Master);
    assert!(router.did().contains(&Did::Advert { priority: 150, to: group() }));
}

#[tokio::test(start_paused = true)]
async fn an_interface_deleted_and_re_created_is_reopened_on_its_new_index() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.host.sends_fail.store(true, Ordering::Relaxed);
    router.kernel_says(&[deleted(ETH0, "eth0")]).await;
    assert_eq!(
        router.did(),
        [
            Did::Advert { priority: 0, to: group() },
            Did::Removed { address: vip4(), ifindex: ETH0 },
            Did::Notify("FAULT".into()),
            Did::Closed
        ]
    );
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: missing"));
    router.host.sends_fail.store(false, Ordering::Relaxed);
    router.kernel_says(&[link(9, "eth0", true), address(9, SOURCE, true)]).await;
    assert_eq!(router.did(), [Did::Opened { ifindex: 9, source: ip(SOURCE), send_ifindex: 9 }, Did::Notify("BACKUP".into())]);
    assert_eq!(router.status.borrow().ifindex, Some(9));
    router.wait(MASTER_DOWN).await;
    assert_eq!(router.did(), becoming_master(9));
}

#[tokio::test(start_paused = true)]
async fn with_use_vmac_the_vmac_is_made_on_the_interface_and_again_on_its_re_creation() {
    let spec = InstanceSpec { use_vmac: Some(String::new()), ..spec(100) };
    let router = Router::start(spec, &eth0_up()).await;
    assert_eq!(
        router.did(),
        [
            Did::VmacCreated { name: "vrrp.51".into(), base: ETH0 },
            Did::Opened { ifindex: ETH0, source: ip(SOURCE), send_ifindex: 100 },
            Did::Notify("BACKUP".into())
        ]
    );
    router.wait(MASTER_DOWN).await;
    assert!(router.did().contains(&Did::Added { address: vip4(), ifindex: 100 }), "the addresses go on the vmac");
    // Deleted: the kernel took the vmac along; nothing to delete.
    router.kernel_says(&[deleted(100, "vrrp.51"), deleted(ETH0, "eth0")]).await;
    assert!(!router.did().iter().any(|d| matches!(d, Did::VmacDeleted(_))));
    router.kernel_says(&[link(9, "eth0", true), address(9, SOURCE, true)]).await;
    assert_eq!(router.did()[..2], [Did::VmacCreated { name: "vrrp.51".into(), base: 9 }, Did::Opened { ifindex: 9, source: ip(SOURCE), send_ifindex: 101 }]);
    // A link going down keeps the vmac; a stop gives it back.
    let did = router.shut_down().await;
    assert!(did.contains(&Did::VmacDeleted(101)), "{did:?}");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_backup_keeps_the_addresses_a_crashed_run_left_until_another_router_is_heard() {
    let mut events = eth0_up();
    events.push(address(ETH0, "10.0.0.100", true));
    let router = Router::start(spec(100), &events).await;
    assert_eq!(router.state(), State::Backup);
    router.wait(Duration::from_secs(2)).await;
    assert!(!router.did().iter().any(|d| matches!(d, Did::Removed { .. })), "kept while nobody else is heard");
    router.hears("10.0.0.1", 200).await;
    assert_eq!(router.did(), [Did::Removed { address: vip4(), ifindex: ETH0 }]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_backup_that_becomes_master_owns_the_addresses_a_crashed_run_left() {
    let mut events = eth0_up();
    events.push(address(ETH0, "10.0.0.100", true));
    let router = Router::start(spec(100), &events).await;
    router.wait(MASTER_DOWN).await;
    let did = router.did();
    assert!(!did.iter().any(|d| matches!(d, Did::Removed { .. })), "never removed on the way: {did:?}");
    assert_eq!(router.state(), State::Master);
    // Owned now: an advert from a lower priority leaves them in place.
    router.hears("10.0.0.1", 50).await;
    assert!(!router.did().iter().any(|d| matches!(d, Did::Removed { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_restarted_backup_whose_link_goes_down_releases_the_addresses_a_crashed_run_left() {
    let mut events = eth0_up();
    events.push(address(ETH0, "10.0.0.100", true));
    let router = Router::start(spec(100), &events).await;
    router.did();
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    assert_eq!(router.did(), [Did::Notify("FAULT".into()), Did::Removed { address: vip4(), ifindex: ETH0 }, Did::Closed]);
}

#[tokio::test(start_paused = true)]
async fn an_instance_starting_in_fault_removes_the_addresses_a_previous_run_left() {
    let router = Router::start(spec(100), &[link(ETH0, "eth0", false), address(ETH0, SOURCE, true), address(ETH0, "10.0.0.100", true)]).await;
    assert_eq!(router.did(), [Did::Notify("FAULT".into()), Did::Removed { address: vip4(), ifindex: ETH0 }]);
}

#[tokio::test(start_paused = true)]
async fn a_virtual_address_removed_by_another_tool_while_master_is_put_back_and_announced() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.kernel_says(&[removed(ETH0, "10.0.0.100")]).await;
    assert_eq!(
        router.did(),
        [Did::Added { address: vip4(), ifindex: ETH0 }, Did::Garp { address: Ipv4Addr::new(10, 0, 0, 100), ifindex: ETH0 }]
    );
    assert_eq!(router.status.borrow().addresses_put_back, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_tracked_object_faults_the_master_and_recovery_waits_as_backup() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.tracking(Effective::Fault).await;
    assert_eq!(
        router.did(),
        [Did::Advert { priority: 0, to: group() }, Did::Removed { address: vip4(), ifindex: ETH0 }, Did::Notify("FAULT".into())],
        "the socket stays open: the interface is fine"
    );
    assert_eq!(router.fault_reason().as_deref(), Some("a tracked object failed"));
    // The link flaps meanwhile: still FAULT, for both reasons, until both clear.
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    assert_eq!(router.fault_reason().as_deref(), Some("waiting for eth0: down; a tracked object failed"));
    router.tracking(Effective::Priority(100)).await;
    assert_eq!(router.state(), State::Fault);
    router.kernel_says(&[link(ETH0, "eth0", true)]).await;
    assert_eq!(router.state(), State::Backup);
}

#[tokio::test(start_paused = true)]
async fn dont_track_primary_keeps_a_master_running_while_its_link_is_down() {
    let spec = InstanceSpec { track_primary: false, ..spec(100) };
    let router = Router::start(spec, &eth0_up()).await;
    router.becomes_master().await;
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    router.wait(Duration::from_secs(2)).await;
    assert_eq!(router.state(), State::Master);
    assert_eq!(router.did(), [Did::Advert { priority: 100, to: group() }, Did::Advert { priority: 100, to: group() }]);
}

#[tokio::test(start_paused = true)]
async fn a_sync_group_member_whose_link_goes_down_tells_its_group_and_follows_a_group_fault() {
    let mut router = Router::start(spec(100), &eth0_up()).await;
    router.kernel_says(&[link(ETH0, "eth0", false)]).await;
    router.kernel_says(&[link(ETH0, "eth0", true)]).await;
    let mut told = Vec::new();
    while let Ok((_, event)) = router.sync_events.try_recv() {
        told.push(event);
    }
    let faults: Vec<&MemberEvent> = told.iter().filter(|e| matches!(e, MemberEvent::OwnFault(_))).collect();
    assert_eq!(faults, [&MemberEvent::OwnFault(true), &MemberEvent::OwnFault(false)]);
    // Another member faults: so does this one, though its own link is fine.
    router.sync_commands.send(SyncCommand::GroupFault(true)).unwrap();
    router.settle().await;
    assert_eq!(router.state(), State::Fault);
    assert_eq!(router.fault_reason().as_deref(), Some("a member of its sync group is in FAULT"));
    router.sync_commands.send(SyncCommand::GroupFault(false)).unwrap();
    router.settle().await;
    assert_eq!(router.state(), State::Backup);
}

#[tokio::test(start_paused = true)]
async fn a_socket_that_will_not_open_is_retried_with_a_backoff() {
    let router = Router::start(spec(100), &[]).await;
    router.host.failing_opens.store(2, Ordering::Relaxed);
    router.kernel_says(&eth0_up()).await;
    assert_eq!(router.state(), State::Fault);
    assert!(router.fault_reason().unwrap().starts_with("opening the VRRP socket on eth0"), "{:?}", router.fault_reason());
    router.wait(Duration::from_secs(1)).await;
    assert_eq!(router.state(), State::Fault, "the second try fails too");
    router.wait(Duration::from_millis(1500)).await;
    assert_eq!(router.state(), State::Fault, "the third waits 2 s");
    router.wait(Duration::from_millis(600)).await;
    assert_eq!(router.state(), State::Backup);
}

#[tokio::test(start_paused = true)]
async fn shutdown_of_a_master_sends_priority_0_releases_and_closes_rfc9568_6_4_3() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    assert_eq!(
        router.shut_down().await,
        [
            Did::Advert { priority: 0, to: group() },
            Did::Removed { address: vip4(), ifindex: ETH0 },
            Did::Notify("STOP".into()),
            Did::Closed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_instance_stops_cleanly() {
    let router = Router::start(spec(100), &[]).await;
    router.did();
    assert_eq!(router.shut_down().await, [Did::Notify("STOP".into())]);
}

#[tokio::test(start_paused = true)]
async fn a_masters_priority_changed_by_a_reload_is_advertised_and_it_stays_master_as_keepalived_does() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.becomes_master().await;
    router.reloaded(spec(90)).await;
    router.tracking(Effective::Priority(90)).await;
    assert_eq!(router.did(), [], "nothing at once: no priority 0, no release, no gratuitous ARP");
    assert_eq!((router.state(), router.status.borrow().base_priority, router.status.borrow().priority), (State::Master, 90, 90));
    router.wait(Duration::from_secs(1)).await;
    assert_eq!(router.did(), [Did::Advert { priority: 90, to: group() }], "the next advert carries the new priority");
    // A Backup with a higher priority now preempts it, as the protocol says.
    router.hears("10.0.0.3", 95).await;
    assert_eq!(router.state(), State::Backup);
}

#[tokio::test(start_paused = true)]
async fn a_reload_adding_and_removing_addresses_of_a_master_touches_only_those_and_announces_only_the_new_one() {
    let mut first = spec(100);
    first.addresses.push(vip("10.0.0.101/24"));
    let router = Router::start(first, &eth0_up()).await;
    router.becomes_master().await;
    let mut second = spec(100);
    second.addresses.push(vip("10.0.0.102/24"));
    router.reloaded(second).await;
    assert_eq!(
        router.did(),
        [
            Did::Removed { address: ip("10.0.0.101"), ifindex: ETH0 },
            Did::Added { address: ip("10.0.0.102"), ifindex: ETH0 },
            Did::Garp { address: Ipv4Addr::new(10, 0, 0, 102), ifindex: ETH0 },
        ],
        "10.0.0.100, kept, is neither removed nor announced"
    );
    assert_eq!(router.state(), State::Master);
    let stopped = router.shut_down().await;
    assert!(stopped.contains(&Did::Removed { address: ip("10.0.0.102"), ifindex: ETH0 }), "the new address is owned: {stopped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reload_changing_a_backups_addresses_adds_nothing_until_it_is_master() {
    let router = Router::start(spec(100), &eth0_up()).await;
    router.did();
    let mut second = spec(100);
    second.addresses.push(vip("10.0.0.102/24"));
    router.reloaded(second).await;
    assert_eq!(router.did(), []);
    router.wait(MASTER_DOWN).await;
    let did = router.did();
    assert!(did.contains(&Did::Added { address: ip("10.0.0.102"), ifindex: ETH0 }), "claimed with the others on becoming Master: {did:?}");
}

/// A Backup whose process was not scheduled for longer than Master_Down_Interval (a loaded
/// machine, a flood) wakes with the Master's advert queued and its timer expired: the advert
/// is judged first, and it never becomes Master. (Real time: the test blocks the runtime's
/// only thread. Were the two taken in random order, 8 rounds would pass 1 time in 256.)
#[tokio::test]
async fn a_backup_waking_from_a_stall_judges_the_queued_advert_before_its_expired_timer() {
    let mut spec = spec(100);
    spec.version = Version::V3;
    spec.advert_interval = Duration::from_millis(100);
    let router = Router::start(spec, &eth0_up()).await;
    let v3 = || wire::Version::V3 { max_adver_int: wire::Centiseconds::new(10).unwrap() };
    let received = || router.status.borrow().adverts_received;
    for round in 0..8u64 {
        router.queue("10.0.0.1", 150, v3());
        router.settle().await;
        // The Master's next advert arrives on time, but the Backup runs only 500 ms later
        // (Master_Down_Interval ~361 ms).
        tokio::time::sleep(Duration::from_millis(50)).await;
        router.queue_unwoken("10.0.0.1", 150, v3());
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..100 {
            if received() == 2 * round + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(received(), 2 * round + 2, "round {round}: the queued advert was read");
        assert_eq!(router.status.borrow().became_master, 0, "round {round}: took over from a Master that advertised on time");
    }
}
