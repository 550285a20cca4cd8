//! `keepxdp run`: read the config, load and attach the data plane, fill its maps, pin it,
//! run the VRRP instances, serve status, and on SIGTERM/SIGINT take it all down again
//! (Masters send priority 0 and remove their virtual addresses first).
use std::{collections::BTreeSet, fs, path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::watch,
    task::JoinSet,
};

use crate::{
    bpf::{Attachment, Dataplane, GuardInstance, GuardMaps, ensure_bpffs, guard_entries},
    config::{self, Config, Diagnostics, LoadOptions},
    ctl::ControlSocket,
    net::Netlink,
    vrrp::instance::{self, InstanceSpec, InstanceStatus},
};

pub struct RunOptions {
    pub config: PathBuf,
    pub config_id: Option<String>,
    pub pin_dir: PathBuf,
    pub control_socket: PathBuf,
}

/// The configuration could not be used: its diagnostics say why.
#[derive(Debug, thiserror::Error)]
#[error("{} cannot be used ({} error(s))", .path.display(), .diagnostics.errors().count())]
pub struct UnusableConfig {
    pub path: PathBuf,
    pub diagnostics: Diagnostics,
}

/// Reads and validates the file, logging every diagnostic; a fatal one stops keepxdp.
fn read_config(options: &RunOptions) -> Result<(Config, Vec<GuardInstance>)> {
    let load_options = LoadOptions {
        config_id: options.config_id.clone(),
        environment: config::Environment { interfaces: config::system_interfaces() },
    };
    let loaded = config::load(&options.config, &load_options);
    for diagnostic in &loaded.diagnostics.items {
        match diagnostic.severity {
            config::Severity::Error => tracing::error!("{diagnostic}"),
            config::Severity::Warning => tracing::warn!("{diagnostic}"),
        }
    }
    let Some(model) = loaded.runnable().cloned() else {
        return Err(UnusableConfig { path: options.config.clone(), diagnostics: loaded.diagnostics }.into());
    };
    let mut instances = Vec::new();
    for instance in model.vrrp_instances.iter().filter_map(GuardInstance::of) {
        // keepalived keeps such an instance in FAULT until the interface appears; the guard
        // has nothing to attach to, so it is left out (the check already warned).
        if nix::net::if_::if_nametoindex(instance.interface.as_str()).is_err() {
            tracing::warn!(instance = instance.name, interface = instance.interface, "interface does not exist; instance not guarded");
            continue;
        }
        instances.push(instance);
    }
    Ok((model, instances))
}

#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    config: &'a std::path::Path,
    pin_dir: &'a std::path::Path,
    instances: &'a [GuardInstance],
    attachments: &'a [Attachment],
    vrrp: Vec<InstanceStatus>,
}

/// The VRRP instances, each a task, stopped together.
struct Instances {
    tasks: JoinSet<()>,
    shutdown: watch::Sender<bool>,
    statuses: Vec<watch::Receiver<InstanceStatus>>,
}

fn start_instances(model: &Config) -> Result<Instances> {
    let netlink = Netlink::connect()?;
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut statuses = Vec::new();
    for configured in &model.vrrp_instances {
        let spec = match InstanceSpec::from_config(configured, &model.global_defs) {
            Ok(spec) => spec,
            Err(error) => {
                tracing::warn!(instance = configured.name, %error, "VRRP instance not started");
                continue;
            }
        };
        let (status, receiver) = watch::channel(InstanceStatus::new(&spec));
        statuses.push(receiver);
        let name = spec.name.clone();
        let table = netlink.clone();
        let shutdown = shutdown_receiver.clone();
        tasks.spawn(async move {
            if let Err(error) = instance::run(spec, table, shutdown, status).await {
                tracing::error!(instance = name, error = format!("{error:#}"), "VRRP instance stopped");
            }
        });
    }
    Ok(Instances { tasks, shutdown, statuses })
}

impl Instances {
    /// Shutdown: Masters send priority 0 and release their addresses; bounded in time.
    async fn stop(mut self) {
        self.shutdown.send_replace(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(3), all).await.is_err() {
            tracing::warn!("VRRP instances did not stop within 3 s");
        }
    }
}

pub async fn run(options: RunOptions) -> Result<()> {
    let (model, instances) = read_config(&options)?;
    if instances.is_empty() {
        tracing::warn!(config = %options.config.display(), "no vrrp_instance in the configuration");
    }
    let bpffs = ensure_bpffs(&options.pin_dir)?;
    let mut dataplane = Dataplane::load()?;
    let entries = guard_entries(&instances, |name| {
        nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name} does not exist"))
    })?;
    dataplane.put_all(&entries)?;
    let interfaces: BTreeSet<&str> = instances.iter().map(|i| i.interface.as_str()).collect();
    for interface in interfaces {
        dataplane.attach(interface)?;
    }
    dataplane.pin(&options.pin_dir)?;

    let vrrp = start_instances(&model)?;
    let status = |dataplane: &Dataplane, vrrp: &Instances| {
        serde_json::to_string(&Status {
            pid: std::process::id(),
            config: &options.config,
            pin_dir: &options.pin_dir,
            instances: &instances,
            attachments: dataplane.attachments(),
            vrrp: vrrp.statuses.iter().map(|s| s.borrow().clone()).collect(),
        })
    };
    let control = ControlSocket::bind(&options.control_socket, status(&dataplane, &vrrp)?)?;
    tracing::info!(
        instances = instances.len(),
        pin_dir = %options.pin_dir.display(),
        control_socket = %options.control_socket.display(),
        "keepxdp ready"
    );

    let mut signals = Signals::new()?;
    let mut refresh = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = signals.stop() => break,
            _ = refresh.tick() => control.set_status(status(&dataplane, &vrrp)?),
        }
    }

    vrrp.stop().await;
    control.close();
    dataplane.detach_all();
    dataplane.unpin();
    drop(dataplane);
    // Unmount what we mounted on the pin dir, then remove the directory if it is empty
    // (a shared parent such as /sys/fs/bpf stays).
    bpffs.release();
    let _ = fs::remove_dir(&options.pin_dir);
    tracing::info!("keepxdp stopped");
    Ok(())
}

struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Returns on SIGTERM or SIGINT.
    async fn stop(&mut self) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => { tracing::info!("SIGTERM: stopping"); return; }
                _ = self.interrupt.recv() => { tracing::info!("SIGINT: stopping"); return; }
                _ = self.hangup.recv() => {
                    tracing::warn!("SIGHUP: reload is not implemented in this version; the running configuration is unchanged");
                }
            }
        }
    }
}
