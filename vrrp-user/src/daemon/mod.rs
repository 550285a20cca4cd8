//! `keepxdp run`: read the config, load and attach the data plane, fill its maps, pin it,
//! run the VRRP instances, serve status; SIGHUP reloads (a bad file keeps the running
//! configuration; unchanged instances are not touched); SIGTERM/SIGINT take it all down
//! (Masters send priority 0 and remove their virtual addresses first).
mod balancer;
pub use balancer::LbBackend;
mod instances;
mod lvs_scripts;
mod statics;

use std::{collections::BTreeSet, fs, path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{
    bpf::{Attachment, Dataplane, GuardEntries, GuardInstance, GuardMaps, LoadOptions as DataplaneOptions, LvsLimits, ensure_bpffs, guard_entries},
    config::{self, Config, Diagnostics, LoadOptions},
    ctl::ControlSocket,
    vrrp::instance::InstanceStatus,
};
use instances::InstanceSet;

pub struct RunOptions {
    pub config: PathBuf,
    pub config_id: Option<String>,
    pub pin_dir: PathBuf,
    pub control_socket: PathBuf,
    /// On SIGTERM, leave the XDP programs attached and pinned (the VRRP side still stops:
    /// priority 0, addresses removed).
    pub keep_dataplane: bool,
    /// Sizes of the balancer's maps.
    pub limits: LvsLimits,
    /// What forwards the virtual_servers.
    pub lb_backend: LbBackend,
}

/// The configuration could not be used: its diagnostics say why.
#[derive(Debug, thiserror::Error)]
#[error("{} cannot be used ({} error(s))", .path.display(), .diagnostics.errors().count())]
pub struct UnusableConfig {
    pub path: PathBuf,
    pub diagnostics: Diagnostics,
}

/// Reads and validates the file, logging every diagnostic. At startup a fatal problem stops
/// keepxdp; on reload (`strict`) any error keeps the running configuration.
fn read_config(options: &RunOptions, strict: bool) -> Result<Config> {
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
    let usable = if strict { !loaded.diagnostics.has_errors() } else { !loaded.diagnostics.fatal };
    match loaded.config {
        Some(model) if usable => Ok(model),
        _ => Err(UnusableConfig { path: options.config.clone(), diagnostics: loaded.diagnostics }.into()),
    }
}

/// The instances the guard protects: those whose interface exists.
fn guarded(model: &Config) -> Vec<GuardInstance> {
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
    instances
}

fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name} does not exist"))
}

#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    config: &'a std::path::Path,
    pin_dir: &'a std::path::Path,
    instances: &'a [GuardInstance],
    attachments: &'a [Attachment],
    vrrp: Vec<InstanceStatus>,
    trackers: Vec<crate::track::TrackerStatus>,
    lvs: &'a serde_json::value::RawValue,
    /// Checker verdict → balancer maps written, in µs (a debug measurement; see
    /// `balancer::UpdateLatency`).
    lvs_update_latency_us: balancer::UpdateLatencySummary,
    reloads: u64,
}

/// Everything `run` keeps between signals.
struct Daemon {
    options: RunOptions,
    dataplane: Dataplane,
    guarded: Vec<GuardInstance>,
    entries: GuardEntries,
    vrrp: InstanceSet,
    statics: statics::Statics,
    netlink: crate::net::Netlink,
    /// The kernel's link, address and route events (one subscription for the whole daemon).
    net_events: tokio::sync::broadcast::Sender<crate::net::NetEvent>,
    balancer: balancer::Balancer,
    reloads: u64,
}

impl Daemon {
    fn status(&self) -> Result<String> {
        let lvs = self.balancer.views_json()?;
        Ok(serde_json::to_string(&Status {
            pid: std::process::id(),
            config: &self.options.config,
            pin_dir: &self.options.pin_dir,
            instances: &self.guarded,
            attachments: self.dataplane.attachments(),
            vrrp: self.vrrp.statuses(),
            trackers: self.vrrp.trackers(),
            lvs: &lvs,
            lvs_update_latency_us: self.balancer.update_latency(),
            reloads: self.reloads,
        })?)
    }

    /// Points the guard at `guarded`: maps first (new rows before stale ones go), then
    /// attachments (new interfaces attached, unused ones detached).
    fn apply_guard(&mut self, guarded: Vec<GuardInstance>) -> Result<()> {
        let entries = guard_entries(&guarded, ifindex)?;
        self.dataplane.replace(&self.entries, &entries)?;
        let wanted: BTreeSet<String> = guarded.iter().map(|i| i.interface.clone()).collect();
        let attached: BTreeSet<String> = self.dataplane.attachments().iter().map(|a| a.interface.clone()).collect();
        for interface in wanted.difference(&attached) {
            self.dataplane.attach_in(interface, &self.options.pin_dir)?;
        }
        for interface in attached.difference(&wanted) {
            self.dataplane.detach(interface);
        }
        self.entries = entries;
        self.guarded = guarded;
        Ok(())
    }

    /// SIGHUP: the new file is read and validated first; with any error the running
    /// configuration stays as it is.
    async fn reload(&mut self) {
        let model = match read_config(&self.options, true) {
            Ok(model) => model,
            Err(error) => {
                tracing::error!("reload refused, the running configuration is unchanged: {error:#}");
                return;
            }
        };
        self.balancer.apply(&model);
        self.balancer.resolve_backends(&self.netlink).await;
        if let Err(error) = self.apply_guard(guarded(&model)) {
            tracing::error!("reload: updating the VRRP guard failed: {error:#}");
        }
        let statics = statics::Statics::of(&model);
        statics.apply(&self.statics, &self.netlink).await;
        self.statics = statics;
        self.vrrp.apply(&model).await;
        self.reloads += 1;
        tracing::info!(reloads = self.reloads, "configuration reloaded");
    }
}

pub async fn run(options: RunOptions) -> Result<()> {
    let model = read_config(&options, false)?;
    if model.vrrp_instances.is_empty() {
        tracing::warn!(config = %options.config.display(), "no vrrp_instance in the configuration");
    }
    let bpffs = ensure_bpffs(&options.pin_dir)?;
    let dataplane = Dataplane::load_with(&DataplaneOptions {
        limits: options.limits,
        state_pin_dir: Some(options.pin_dir.clone()),
    })?;
    let (balancer, mut health_events) = balancer::Balancer::new(&dataplane, options.lb_backend)?;
    let vip_hook = balancer.vip_hook();
    let net_events = crate::net::watch_events()?;
    let mut daemon = Daemon {
        dataplane,
        balancer,
        guarded: Vec::new(),
        entries: GuardEntries::default(),
        vrrp: InstanceSet::new(Some(vip_hook), &net_events)?,
        net_events,
        statics: statics::Statics::default(),
        netlink: crate::net::Netlink::connect()?,
        reloads: 0,
        options,
    };
    let statics = statics::Statics::of(&model);
    statics.apply(&daemon.statics, &daemon.netlink).await;
    daemon.statics = statics;
    // The balancer's maps are complete (real servers' MACs included, or a restart over a kept
    // data plane would hand established flows to the stack, which resets them) before the
    // guard starts handing it frames.
    match daemon.netlink.local_addresses().await {
        Ok(present) => daemon.balancer.adopt_local_addresses(present.into_iter().map(|(_, address)| address)),
        Err(error) => tracing::warn!("reading the interfaces' addresses: {error:#}"),
    }
    daemon.balancer.apply(&model);
    daemon.balancer.resolve_backends(&daemon.netlink).await;
    daemon.apply_guard(guarded(&model))?;
    daemon.dataplane.pin(&daemon.options.pin_dir)?;
    daemon.vrrp.apply(&model).await;
    // Everything running now holds what it needs; the model of a large configuration is
    // tens of MB (10,000 real servers: ~15 MB), a reload reads a new one.
    drop(model);
    let control = ControlSocket::bind(&daemon.options.control_socket, daemon.status()?)?;
    tracing::info!(
        instances = daemon.guarded.len(),
        pin_dir = %daemon.options.pin_dir.display(),
        control_socket = %daemon.options.control_socket.display(),
        "keepxdp ready"
    );

    let mut signals = Signals::new()?;
    let mut refresh = tokio::time::interval(Duration::from_millis(200));
    let mut neighbours = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            Some(event) = health_events.recv() => daemon.balancer.health(event),
            _ = neighbours.tick() => daemon.balancer.resolve_backends(&daemon.netlink).await,
            signal = signals.next() => match signal {
                Received::Stop => break,
                Received::Reload => {
                    daemon.reload().await;
                    control.set_status(daemon.status()?);
                }
            },
            _ = refresh.tick() => control.set_status(daemon.status()?),
        }
    }

    if daemon.options.keep_dataplane {
        daemon.balancer.freeze_vip_state();
    }
    daemon.vrrp.stop_all().await;
    statics::Statics::default().apply(&daemon.statics, &daemon.netlink).await;
    control.close();
    let pin_dir = daemon.options.pin_dir.clone();
    if daemon.options.keep_dataplane {
        daemon.dataplane.keep_attached(&pin_dir)?;
        drop(daemon);
        tracing::info!(pin_dir = %pin_dir.display(), "keepxdp stopped; the data plane keeps running");
        return Ok(());
    }
    daemon.dataplane.detach_all();
    daemon.dataplane.unpin();
    drop(daemon);
    // Unmount what we mounted on the pin dir, then remove the directory if it is empty
    // (a shared parent such as /sys/fs/bpf stays).
    bpffs.release();
    let _ = fs::remove_dir(&pin_dir);
    tracing::info!("keepxdp stopped");
    Ok(())
}

enum Received {
    Stop,
    Reload,
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

    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => { tracing::info!("SIGTERM: stopping"); Received::Stop }
            _ = self.interrupt.recv() => { tracing::info!("SIGINT: stopping"); Received::Stop }
            _ = self.hangup.recv() => { tracing::info!("SIGHUP: reloading"); Received::Reload }
        }
    }
}
