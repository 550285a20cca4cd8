//! The running VRRP instances, each a task with its own shutdown switch, reconciled with a
//! new configuration on reload (see `vrrp::reload`).
use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    config::Config,
    net::Netlink,
    vrrp::{
        instance::{self, InstanceSpec, InstanceStatus},
        reload,
    },
};

struct Running {
    spec: InstanceSpec,
    shutdown: watch::Sender<bool>,
    status: watch::Receiver<InstanceStatus>,
    task: JoinHandle<()>,
}

pub struct InstanceSet {
    netlink: Netlink,
    running: BTreeMap<String, Running>,
}

/// The instances of `model` the runtime can run; the others are logged.
pub fn specs(model: &Config) -> Vec<InstanceSpec> {
    let mut specs = Vec::new();
    for configured in &model.vrrp_instances {
        match InstanceSpec::from_config(configured, &model.global_defs) {
            Ok(spec) => specs.push(spec),
            Err(error) => tracing::warn!(instance = configured.name, %error, "VRRP instance not started"),
        }
    }
    specs
}

impl InstanceSet {
    pub fn new() -> Result<InstanceSet> {
        Ok(InstanceSet { netlink: Netlink::connect()?, running: BTreeMap::new() })
    }

    fn start(&mut self, spec: InstanceSpec) {
        let (status_sender, status) = watch::channel(InstanceStatus::new(&spec));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let name = spec.name.clone();
        let table = self.netlink.clone();
        let task_spec = spec.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = instance::run(task_spec, table, shutdown_receiver, status_sender).await {
                tracing::error!(instance = name, error = format!("{error:#}"), "VRRP instance stopped");
            }
        });
        self.running.insert(spec.name.clone(), Running { spec, shutdown, status, task });
    }

    /// Stops one instance (priority 0 if Master, addresses released), bounded in time.
    async fn stop_one(&mut self, name: &str) {
        if let Some(running) = self.running.remove(name) {
            running.shutdown.send_replace(true);
            if tokio::time::timeout(Duration::from_secs(3), running.task).await.is_err() {
                tracing::warn!(instance = name, "did not stop within 3 s");
            }
        }
    }

    /// Brings the running set to `specs`; unchanged instances are not touched.
    pub async fn apply(&mut self, specs: Vec<InstanceSpec>) {
        let running: Vec<InstanceSpec> = self.running.values().map(|r| r.spec.clone()).collect();
        let plan = reload::plan(&running, &specs);
        for name in &plan.keep {
            tracing::info!(instance = name, "unchanged: keeps running");
        }
        for name in plan.stop.iter().chain(&plan.restart) {
            tracing::info!(instance = name, "stopping (removed or changed)");
            self.stop_one(name).await;
        }
        for spec in specs {
            if plan.start.contains(&spec.name) || plan.restart.contains(&spec.name) {
                tracing::info!(instance = spec.name, "starting");
                self.start(spec);
            }
        }
    }

    pub fn statuses(&self) -> Vec<InstanceStatus> {
        self.running.values().map(|r| r.status.borrow().clone()).collect()
    }

    pub async fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for running in self.running.values() {
            running.shutdown.send_replace(true);
        }
        for name in names {
            self.stop_one(&name).await;
        }
    }
}
