//! Tracking: vrrp_script, track_interface, track_file and track_process readings, combined per instance
//! into an effective priority or FAULT (keepalived's rules, in `priority`). Each tracked
//! object is read by one task however many instances use it.
pub mod interface;
pub mod poll;
pub mod priority;
pub mod process;
pub mod script;

use std::collections::BTreeMap;

use futures_util::future::select_all;
use tokio::{sync::watch, task::JoinSet};

use crate::{
    config::{Config, model::TrackRef},
    net::Interfaces,
};
pub use priority::{Effective, Reading, Tracked, effective_priority};

/// The readings of every tracked object of a configuration, by kind and name.
pub struct Trackers {
    tasks: JoinSet<()>,
    scripts: BTreeMap<String, (watch::Receiver<Reading>, i32, bool)>,
    interfaces: BTreeMap<String, watch::Receiver<Reading>>,
    files: BTreeMap<String, (watch::Receiver<Reading>, i32, bool)>,
    processes: BTreeMap<String, (watch::Receiver<Reading>, i32, bool)>,
}

impl Trackers {
    /// Starts one reader per vrrp_script, vrrp_track_file, vrrp_track_process and
    /// track_interface; interfaces are read from the kernel's table (`interfaces`).
    pub fn start(model: &Config, interfaces: &watch::Receiver<Interfaces>) -> Trackers {
        let mut trackers = Trackers {
            tasks: JoinSet::new(),
            scripts: BTreeMap::new(),
            interfaces: BTreeMap::new(),
            files: BTreeMap::new(),
            processes: BTreeMap::new(),
        };
        let security = model.global_defs.enable_script_security;
        for script in &model.vrrp_scripts {
            let (sender, receiver) = watch::channel(Reading::Unknown);
            trackers.scripts.insert(script.name.clone(), (receiver, script.weight, script.weight_reverse));
            trackers.tasks.spawn(script::run(script.clone(), security, sender));
        }
        for file in &model.vrrp_track_files {
            let (sender, receiver) = watch::channel(Reading::Unknown);
            trackers.files.insert(file.name.clone(), (receiver, file.weight, file.weight_reverse));
            trackers.tasks.spawn(poll::file(file.name.clone(), file.file.clone().unwrap_or_default(), sender));
        }
        for process in &model.vrrp_track_processes {
            let (sender, receiver) = watch::channel(Reading::Unknown);
            trackers.processes.insert(process.name.clone(), (receiver, process.weight, process.weight_reverse));
            trackers.tasks.spawn(process::run(process.clone(), sender));
        }
        // An instance's own interface is followed by the instance itself (it must reopen its
        // sockets), so only track_interface lines make readers.
        let tracked = model.vrrp_instances.iter().flat_map(|i| i.tracking.track_interface.iter().map(|t| t.name.clone()));
        for interface in tracked {
            if trackers.interfaces.contains_key(&interface) {
                continue;
            }
            let (sender, receiver) = watch::channel(Reading::Unknown);
            trackers.interfaces.insert(interface.clone(), receiver);
            trackers.tasks.spawn(interface::run(interface, interfaces.clone(), sender));
        }
        trackers
    }

    /// The objects one instance tracks, with their weights: track_interface, track_script,
    /// track_process, track_file (its own interface is the instance's to follow: FAULT while
    /// missing, down or without an address, unless `dont_track_primary`).
    pub fn for_instance(&self, instance: &crate::config::model::VrrpInstance) -> Vec<(TrackedSpec, watch::Receiver<Reading>)> {
        let mut out = Vec::new();
        let by_ref = |reference: &TrackRef, default_weight: i32, default_reverse: bool| TrackedSpec {
            weight: reference.weight.unwrap_or(default_weight),
            reverse: if reference.weight.is_some() { reference.reverse } else { default_reverse || reference.reverse },
        };
        for reference in &instance.tracking.track_interface {
            if let Some(receiver) = self.interfaces.get(&reference.name) {
                out.push((by_ref(reference, 0, false), receiver.clone()));
            }
        }
        for reference in &instance.tracking.track_script {
            if let Some((receiver, weight, reverse)) = self.scripts.get(&reference.name) {
                out.push((by_ref(reference, *weight, *reverse), receiver.clone()));
            }
        }
        for reference in &instance.tracking.track_process {
            if let Some((receiver, weight, reverse)) = self.processes.get(&reference.name) {
                out.push((by_ref(reference, *weight, *reverse), receiver.clone()));
            }
        }
        for reference in &instance.tracking.track_file {
            if let Some((receiver, weight, reverse)) = self.files.get(&reference.name) {
                out.push((by_ref(reference, *weight, *reverse), receiver.clone()));
            }
        }
        out
    }

    /// Every tracked object's current reading, for `keepxdp status`.
    pub fn readings(&self) -> Vec<TrackerStatus> {
        let mut out = Vec::new();
        let mut add = |kind: &'static str, name: &String, receiver: &watch::Receiver<Reading>| {
            out.push(TrackerStatus { kind, name: name.clone(), reading: *receiver.borrow() });
        };
        for (name, (receiver, _, _)) in &self.scripts {
            add("vrrp_script", name, receiver);
        }
        for (name, receiver) in &self.interfaces {
            add("interface", name, receiver);
        }
        for (name, (receiver, _, _)) in &self.files {
            add("track_file", name, receiver);
        }
        for (name, (receiver, _, _)) in &self.processes {
            add("track_process", name, receiver);
        }
        out
    }

    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrackerStatus {
    pub kind: &'static str,
    pub name: String,
    pub reading: Reading,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedSpec {
    pub weight: i32,
    pub reverse: bool,
}

/// Publishes the instance's effective priority (or FAULT) whenever a tracked reading changes.
pub async fn combine(base: u8, mut inputs: Vec<(TrackedSpec, watch::Receiver<Reading>)>, out: watch::Sender<Effective>) {
    loop {
        let tracked: Vec<Tracked> = inputs
            .iter()
            .map(|(spec, receiver)| Tracked { weight: spec.weight, reverse: spec.reverse, reading: *receiver.borrow() })
            .collect();
        let effective = effective_priority(base, &tracked);
        out.send_if_modified(|old| std::mem::replace(old, effective) != effective);
        if inputs.is_empty() {
            return;
        }
        let changes = inputs.iter_mut().map(|(_, receiver)| Box::pin(receiver.changed()));
        let (result, _, _) = select_all(changes).await;
        if result.is_err() {
            // A reader ended (reload): the daemon restarts the combination.
            return;
        }
    }
}
