//! The running VRRP instances, each a task with its own shutdown switch, reconciled with a
//! new configuration on reload (see `vrrp::reload`).
use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use std::sync::{Arc, Mutex};

use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
};

use tokio::task::JoinSet;

use crate::{
    config::{Config, model::Notify},
    net::{Interfaces, NetEvent, Netlink, watch_interfaces},
    track::{self, Effective, Trackers},
    vrrp::{
        host::System,
        instance::{self, Inputs, InstanceStatus, SyncLink},
        notify, reload,
        spec::InstanceSpec,
        sync::{GroupState, MemberEvent, SyncCommand},
    },
};

/// Who is in which sync group, and how to reach each instance: read by the coordinator
/// task, rewritten on reload.
#[derive(Default)]
struct SyncDirectory {
    groups: BTreeMap<String, (GroupState, Notify)>,
    group_of: BTreeMap<String, String>,
    commands: BTreeMap<String, mpsc::UnboundedSender<SyncCommand>>,
}

/// The single coordinator: applies each member's news to its group and passes the group's
/// orders on; runs the group's notify scripts when the group's state changes.
async fn coordinate(directory: Arc<Mutex<SyncDirectory>>, mut events: mpsc::UnboundedReceiver<(String, MemberEvent)>) {
    while let Some((member, event)) = events.recv().await {
        let mut directory = directory.lock().unwrap();
        let Some(group_name) = directory.group_of.get(&member).cloned() else { continue };
        let Some((group, notify)) = directory.groups.get_mut(&group_name) else { continue };
        let (commands, changed) = group.on_event(&member, event);
        if let Some(state) = changed {
            tracing::info!(group = group_name, ?state, "sync group state");
            let scripts = notify::commands(notify, "GROUP", &group_name, state, 0);
            notify::spawn_all(scripts, &group_name);
            crate::alert::group_state(&group_name, state);
        }
        for (target, command) in commands {
            if let Some(sender) = directory.commands.get(&target) {
                let _ = sender.send(command);
            }
        }
    }
}

struct Running {
    spec: InstanceSpec,
    shutdown: watch::Sender<bool>,
    status: watch::Receiver<InstanceStatus>,
    /// Written by the instance's tracking combiner.
    effective: watch::Sender<Effective>,
    /// A reload's new configuration, applied in place.
    reconfigure: mpsc::UnboundedSender<InstanceSpec>,
    task: JoinHandle<()>,
}

pub struct InstanceSet {
    netlink: Netlink,
    /// The kernel's links and addresses: instances wait for their interface in it, follow it
    /// going down, away and back, and put back addresses another tool removed.
    interfaces: watch::Receiver<Interfaces>,
    running: BTreeMap<String, Running>,
    trackers: Option<Trackers>,
    /// What the trackers were started from: unchanged on reload → they keep running (and
    /// their readings), so tracking does not flap either.
    trackers_from: String,
    combiners: JoinSet<()>,
    sync: Arc<Mutex<SyncDirectory>>,
    sync_events: mpsc::UnboundedSender<(String, MemberEvent)>,
}

/// The tracked objects' definitions, as a comparable key.
fn tracker_key(model: &Config) -> String {
    let interfaces: Vec<_> = model
        .vrrp_instances
        .iter()
        .map(|i| (&i.interface, i.tracking.track_interface.iter().map(|t| &t.name).collect::<Vec<_>>()))
        .collect();
    let scripts: Vec<_> = model.vrrp_scripts.iter().map(|s| {
        let mut s = s.clone();
        s.at.clear();
        s
    }).collect();
    let files: Vec<_> = model.vrrp_track_files.iter().map(|f| {
        let mut f = f.clone();
        f.at.clear();
        f
    }).collect();
    let processes: Vec<_> = model.vrrp_track_processes.iter().map(|p| {
        let mut p = p.clone();
        p.at.clear();
        p
    }).collect();
    format!("{interfaces:?}{scripts:?}{files:?}{processes:?}{}", model.global_defs.enable_script_security)
}

/// The instances of `model` the runtime can run; the others are logged. (An interface that
/// does not exist yet is no reason: the instance waits for it in FAULT.)
pub fn specs(model: &Config) -> Vec<InstanceSpec> {
    let mut specs = Vec::new();
    for configured in &model.vrrp_instances {
        let group = model.vrrp_sync_groups.iter().find(|g| g.group.contains(&configured.name)).map(|g| g.name.clone());
        match InstanceSpec::from_config(configured, &model.global_defs, group) {
            Ok(spec) => specs.push(spec),
            Err(error) => tracing::warn!(instance = configured.name, %error, "VRRP instance not started"),
        }
    }
    specs
}

impl InstanceSet {
    /// `vip_hook` hears of every virtual address the instances add or remove; `net_events`:
    /// the daemon's subscription to the kernel's link, address and route events (subscribed
    /// to here, before the current state is read, so nothing is missed).
    pub fn new(vip_hook: Option<Arc<dyn crate::net::VipHook>>, net_events: &broadcast::Sender<NetEvent>) -> Result<InstanceSet> {
        let sync = Arc::new(Mutex::new(SyncDirectory::default()));
        let (sync_events, events) = mpsc::unbounded_channel();
        tokio::spawn(coordinate(sync.clone(), events));
        let netlink = Netlink::connect()?.with_vip_hook(vip_hook);
        Ok(InstanceSet {
            sync,
            sync_events,
            interfaces: watch_interfaces(net_events, netlink.clone()),
            netlink,
            running: BTreeMap::new(),
            trackers: None,
            trackers_from: String::new(),
            combiners: JoinSet::new(),
        })
    }

    fn start(&mut self, spec: InstanceSpec) {
        let (status_sender, status) = watch::channel(InstanceStatus::new(&spec));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (effective, effective_receiver) = watch::channel(Effective::Priority(spec.priority));
        let name = spec.name.clone();
        let table = self.netlink.clone();
        let task_spec = spec.clone();
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (reconfigure, reconfigure_receiver) = mpsc::unbounded_channel();
        self.sync.lock().unwrap().commands.insert(spec.name.clone(), commands);
        let inputs = Inputs {
            shutdown: shutdown_receiver,
            effective: effective_receiver,
            interfaces: self.interfaces.clone(),
            sync: SyncLink { commands: command_receiver, events: self.sync_events.clone() },
            reconfigure: reconfigure_receiver,
        };
        let task = tokio::spawn(async move {
            if let Err(error) = instance::run(task_spec, table, System, inputs, status_sender).await {
                tracing::error!(instance = name, error = format!("{error:#}"), "VRRP instance stopped");
            }
        });
        self.running.insert(spec.name.clone(), Running { spec, shutdown, status, effective, reconfigure, task });
    }

    /// (Re)starts the trackers if their definitions changed, and one combiner per instance.
    fn track(&mut self, model: &Config) {
        let key = tracker_key(model);
        if self.trackers.is_none() || key != self.trackers_from {
            if let Some(mut old) = self.trackers.take() {
                old.stop();
            }
            self.trackers = Some(Trackers::start(model, &self.interfaces));
            self.trackers_from = key;
        }
        self.combiners.abort_all();
        let trackers = self.trackers.as_ref().unwrap();
        for configured in &model.vrrp_instances {
            let Some(running) = self.running.get(&configured.name) else { continue };
            let inputs = trackers.for_instance(configured);
            let out = running.effective.clone();
            self.combiners.spawn(track::combine(running.spec.priority, inputs, out));
        }
    }

    /// Stops one instance (priority 0 if Master, addresses released), bounded in time.
    async fn stop_one(&mut self, name: &str) {
        self.sync.lock().unwrap().commands.remove(name);
        if let Some(running) = self.running.remove(name) {
            running.shutdown.send_replace(true);
            if tokio::time::timeout(Duration::from_secs(3), running.task).await.is_err() {
                tracing::warn!(instance = name, "did not stop within 3 s");
            }
        }
    }

    /// Brings the running set to `model`'s instances; unchanged instances are not touched.
    pub async fn apply(&mut self, model: &Config) {
        let specs = specs(model);
        {
            let mut directory = self.sync.lock().unwrap();
            directory.groups = model
                .vrrp_sync_groups
                .iter()
                .map(|g| (g.name.clone(), (GroupState::new(&g.name, g.group.clone()), g.notify.clone())))
                .collect();
            directory.group_of = model
                .vrrp_sync_groups
                .iter()
                .flat_map(|g| g.group.iter().map(move |member| (member.clone(), g.name.clone())))
                .collect();
        }
        let running: Vec<InstanceSpec> = self.running.values().map(|r| r.spec.clone()).collect();
        let plan = reload::plan(&running, &specs);
        for name in &plan.keep {
            tracing::info!(instance = name, "unchanged: keeps running");
        }
        for name in plan.stop.iter().chain(&plan.restart) {
            tracing::info!(instance = name, "stopping (removed or changed)");
            self.stop_one(name).await;
        }
        for spec in &specs {
            if plan.update.contains(&spec.name)
                && let Some(running) = self.running.get_mut(&spec.name)
            {
                tracing::info!(instance = spec.name, "changed: updated in place, keeps its state");
                running.spec = spec.clone();
                let _ = running.reconfigure.send(spec.clone());
            }
        }
        for spec in specs {
            if plan.start.contains(&spec.name) || plan.restart.contains(&spec.name) {
                tracing::info!(instance = spec.name, "starting");
                self.start(spec);
            }
        }
        self.track(model);
    }

    pub fn trackers(&self) -> Vec<track::TrackerStatus> {
        self.trackers.as_ref().map(Trackers::readings).unwrap_or_default()
    }

    /// Each instance's definition and state, for the dumps keepalived's signals ask for.
    pub fn specs_and_statuses(&self) -> Vec<(InstanceSpec, InstanceStatus)> {
        self.running.values().map(|r| (r.spec.clone(), r.status.borrow().clone())).collect()
    }

    /// The status of instance `name` as it changes (closed when a reload replaces it).
    pub fn status_watch(&self, name: &str) -> Option<watch::Receiver<InstanceStatus>> {
        self.running.get(name).map(|r| r.status.clone())
    }

    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.running.values().map(|r| r.status.borrow().clone()).collect()
    }

    pub async fn stop_all(&mut self) {
        self.combiners.abort_all();
        if let Some(mut trackers) = self.trackers.take() {
            trackers.stop();
        }
        let names: Vec<String> = self.running.keys().cloned().collect();
        for running in self.running.values() {
            running.shutdown.send_replace(true);
        }
        for name in names {
            self.stop_one(&name).await;
        }
    }
}
