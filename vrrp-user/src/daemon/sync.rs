//! The NAT state sync daemon's effects (`lvs_sync_daemon`): one task owning the balancer's
//! ring of new flows (tokio `AsyncFd`), a UDP multicast socket bound to the sync interface,
//! and handles on the flow tables. Every decision is `lvs::sync::decide`'s; this file only
//! feeds it inputs and carries its actions out.
use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, anyhow};
use serde::Serialize;
use tokio::{
    io::unix::AsyncFd,
    net::UdpSocket,
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    bpf::{Dataplane, SyncMaps, XdpSyncMaps, ring_record, sync_ring},
    config::model::LvsSyncDaemon,
    lvs::sync::{
        self, DEFAULT_GROUP, DEFAULT_PORT, DEFAULT_TTL,
        decide::{Action, Counters, Settings, Sync},
        entries::{Directory, Fill, conn_of_record, dump_conns},
        install::{Fills, install},
    },
    vrrp::{fsm::State, instance::InstanceStatus},
};

/// `keepxdp status`'s `lvs_sync`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub interface: String,
    pub vrrp_instance: String,
    pub group: String,
    pub sync_id: u8,
    pub maxlen: usize,
    #[serde(flatten)]
    pub counters: Counters,
    /// Entries in `lvs_nat` as the sync daemon counts them, and its capacity.
    pub nat_entries: u64,
    pub nat_capacity: u64,
}

enum Command {
    Directory(Directory),
    Role(watch::Receiver<InstanceStatus>),
}

/// The running sync daemon; dropping it stops the task.
pub struct SyncHandle {
    pub config: LvsSyncDaemon,
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<SyncStatus>>,
    task: JoinHandle<()>,
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SyncHandle {
    pub fn status(&self) -> SyncStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The services and real servers changed (a reload).
    pub fn set_directory(&self, directory: Directory) {
        let _ = self.commands.send(Command::Directory(directory));
    }

    /// The sync instance's status (again, after a reload replaced the instance).
    pub fn set_role(&self, role: watch::Receiver<InstanceStatus>) {
        let _ = self.commands.send(Command::Role(role));
    }
}

/// Starts the sync daemon for `config` (the instance's VRID is the default sync id).
pub fn start(
    dataplane: &Dataplane,
    config: &LvsSyncDaemon,
    vrid: u8,
    role: watch::Receiver<InstanceStatus>,
    directory: Directory,
) -> Result<SyncHandle> {
    let ifindex = nix::net::if_::if_nametoindex(config.interface.as_str())
        .map_err(|_| anyhow!("lvs_sync_daemon interface {} does not exist", config.interface))?;
    let group = SocketAddr::new(config.group.unwrap_or(DEFAULT_GROUP), config.port.unwrap_or(DEFAULT_PORT));
    let mtu = crate::net::sync_socket::interface_mtu(&config.interface).unwrap_or(1500);
    let maxlen = sync::payload_limit(mtu, group.ip(), config.maxlen);
    let sync_id = config.id.unwrap_or(vrid);
    let socket = UdpSocket::from_std(crate::net::sync_socket::group_socket(&config.interface, ifindex, group, config.ttl.unwrap_or(DEFAULT_TTL))?)?;
    // SAFETY: the RingBuf owns its descriptor, open and unchanged until the AsyncFd drops it.
    let ring = unsafe { AsyncFd::register_with_interest(sync_ring(dataplane)?, tokio::io::Interest::READABLE) }
        .map_err(|e| anyhow!("polling lvs_sync_ring: {e}"))?;
    let maps = XdpSyncMaps::of(dataplane)?;
    let limits = dataplane.limits();
    let status = Arc::new(Mutex::new(SyncStatus {
        interface: config.interface.clone(),
        vrrp_instance: config.vrrp_instance.clone(),
        group: group.to_string(),
        sync_id,
        maxlen,
        nat_capacity: limits.nat_entries as u64,
        ..SyncStatus::default()
    }));
    let (commands, inbox) = mpsc::unbounded_channel();
    let fills = Fills {
        nat: Fill { capacity: limits.nat_entries as u64, used: 0 },
        conntrack: Fill { capacity: limits.conntrack_entries as u64, used: 0 },
    };
    let task = Task {
        sync: Sync::new(Settings::new(sync_id, maxlen)),
        socket,
        group,
        ring,
        maps: Arc::new(Mutex::new(maps)),
        fills,
        directory,
        role: Some(role),
        inbox,
        status: status.clone(),
        malformed_logged_at: None,
    };
    tracing::info!(
        interface = config.interface,
        instance = config.vrrp_instance,
        %group,
        sync_id,
        maxlen,
        "lvs_sync_daemon: NAT flow state sent while Master for {}, installed otherwise",
        config.vrrp_instance
    );
    Ok(SyncHandle { config: config.clone(), commands, status, task: tokio::spawn(task.run()) })
}

struct Task {
    sync: Sync,
    socket: UdpSocket,
    group: SocketAddr,
    ring: AsyncFd<aya::maps::RingBuf<aya::maps::MapData>>,
    /// Shared with the blocking pool for the whole-table walks (`count`, dumps): the
    /// daemon's runtime is single-threaded, and walking 262,144 entries would hold up the
    /// VRRP adverts for most of a second.
    maps: Arc<Mutex<XdpSyncMaps>>,
    fills: Fills,
    directory: Directory,
    /// None after a reload closed it, until the daemon hands the new one.
    role: Option<watch::Receiver<InstanceStatus>>,
    inbox: mpsc::UnboundedReceiver<Command>,
    status: Arc<Mutex<SyncStatus>>,
    malformed_logged_at: Option<Instant>,
}

/// Datagrams sent back to back before the sender yields a millisecond (a dump of 100,000
/// entries is 2,500 datagrams: paced so the Backup's socket buffer keeps up).
const BURST: usize = 64;

impl Task {
    async fn run(mut self) {
        self.recount().await;
        let actions = self.sync.start(Instant::now());
        self.perform(actions).await;
        let initial = self.role.as_ref().map(|r| r.borrow().state == State::Master).unwrap_or(false);
        let actions = self.sync.set_master(initial, Instant::now());
        self.perform(actions).await;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buffer = vec![0u8; 65536];
        loop {
            let role_open = self.role.is_some();
            let was_master = self.sync.is_master();
            let actions = tokio::select! {
                ready = self.ring.readable_mut() => {
                    let Ok(mut guard) = ready else { return };
                    let mut conns = Vec::new();
                    let ring = guard.get_inner_mut();
                    while let Some(item) = ring.next() {
                        if let Some(record) = ring_record(&item) {
                            conns.push(conn_of_record(&record));
                        }
                    }
                    guard.clear_ready();
                    let now = Instant::now();
                    conns.into_iter().flat_map(|conn| self.sync.record(conn, now)).collect()
                }
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((length, from)) => {
                        let before = self.sync.counters.malformed;
                        let actions = self.sync.datagram(&buffer[..length], Instant::now());
                        if self.sync.counters.malformed > before {
                            self.log_malformed(from);
                        }
                        actions
                    }
                    Err(error) => {
                        tracing::warn!("lvs_sync_daemon: receiving: {error}");
                        Vec::new()
                    }
                },
                _ = tick.tick() => self.sync.tick(Instant::now()),
                changed = async { self.role.as_mut().expect("role_open").changed().await }, if role_open => match changed {
                    Ok(()) => self.role_changed(),
                    Err(_) => {
                        self.role = None;
                        Vec::new()
                    }
                },
                command = self.inbox.recv() => match command {
                    None => return,
                    Some(Command::Directory(directory)) => {
                        self.directory = directory;
                        Vec::new()
                    }
                    Some(Command::Role(role)) => {
                        self.role = Some(role);
                        self.role_changed()
                    }
                },
            };
            // The balancer wrote the table while this node was Master.
            if was_master && !self.sync.is_master() {
                self.recount().await;
            }
            self.perform(actions).await;
            self.publish();
        }
    }

    fn role_changed(&mut self) -> Vec<Action> {
        let master = self.role.as_ref().map(|r| r.borrow().state == State::Master).unwrap_or(false);
        let was = self.sync.is_master();
        let actions = self.sync.set_master(master, Instant::now());
        if was != master {
            tracing::info!(master, "lvs_sync_daemon: {}", if master { "Master: sending new flows" } else { "not Master: installing what the Master sends; asking it for its table" });
        }
        actions
    }

    /// A whole-table walk off the runtime's thread.
    async fn walk<T: Send + 'static>(&self, walk: impl FnOnce(&XdpSyncMaps) -> Result<T> + Send + 'static) -> Result<T> {
        let maps = self.maps.clone();
        tokio::task::spawn_blocking(move || walk(&maps.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(|e| anyhow!("the table walk panicked: {e}"))?
    }

    async fn recount(&mut self) {
        match self.walk(|maps| maps.count()).await {
            Ok((nat, conntrack)) => {
                self.fills.nat.used = nat;
                self.fills.conntrack.used = conntrack;
            }
            Err(error) => tracing::warn!("lvs_sync_daemon: counting the flow tables: {error:#}"),
        }
    }

    fn log_malformed(&mut self, from: SocketAddr) {
        // Every one is counted; one log line a second at most.
        if self.malformed_logged_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            self.malformed_logged_at = Some(Instant::now());
            tracing::warn!(
                %from,
                malformed = self.sync.counters.malformed,
                "lvs_sync_daemon: malformed datagram dropped: {}",
                self.sync.counters.last_malformed.as_deref().unwrap_or("?")
            );
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        let mut sent = 0;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(datagram) => {
                    if let Err(error) = self.socket.send_to(&datagram, self.group).await {
                        self.sync.send_failed();
                        tracing::debug!("lvs_sync_daemon: sending: {error}");
                    }
                    sent += 1;
                    if sent % BURST == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                Action::Install(conns) => {
                    let (outcome, error) = {
                        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
                        install(&conns, &self.directory, &mut self.fills, &mut *maps)
                    };
                    if let Some(error) = error {
                        tracing::warn!("lvs_sync_daemon: installing synced flows: {error:#}");
                    }
                    if outcome.table_full > 0 && self.sync.counters.not_installed_table_full == 0 {
                        tracing::warn!(capacity = self.fills.nat.capacity, "lvs_sync_daemon: the flow table is full: synced flows are not installed (counted not_installed_table_full; raise --nat-entries)");
                    }
                    self.sync.installed(outcome);
                }
                Action::Dump => match self.walk(|maps| maps.read_all()).await {
                    Ok((nat, conntrack)) => {
                        let conns = dump_conns(nat, conntrack, &self.directory);
                        tracing::info!(entries = conns.len(), "lvs_sync_daemon: a Backup asked: sending the flow table");
                        queue.extend(self.sync.dump(&conns));
                    }
                    Err(error) => tracing::warn!("lvs_sync_daemon: reading the flow tables for a dump: {error:#}"),
                },
            }
        }
    }

    fn publish(&self) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.counters = self.sync.counters.clone();
        status.nat_entries = self.fills.nat.used;
    }
}
