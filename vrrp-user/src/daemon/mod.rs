//! `keepxdp run`: read the config, load and attach the data plane, fill its maps, pin it,
//! run the VRRP instances, serve status; SIGHUP reloads (a bad file keeps the running
//! configuration; unchanged instances are not touched); SIGTERM/SIGINT take it all down
//! (Masters send priority 0 and remove their virtual addresses first).
mod attach;
mod balancer;
pub use balancer::LbBackend;
mod dumps;
mod instances;
mod lvs_scripts;
mod statics;
mod sync;

use std::{collections::BTreeMap, fs, path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::{
    bpf::{Attachment, Dataplane, GuardEntries, GuardInstance, GuardMaps, LoadOptions as DataplaneOptions, LvsLimits, ensure_bpffs, guard_entries},
    config::{self, Config, Diagnostics, LoadOptions},
    ctl::{ControlReply, ControlRequest, ControlSocket},
    net::NetEvent,
    ops::signals::Request,
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
    /// Where keepalived's signals write their dumps (keepalived.data, .stats, .json).
    pub dump_dir: PathBuf,
    /// keepalived's options (pid files, -P / -C).
    pub keepalived: crate::ops::keepalived_args::KeepalivedFlags,
    /// Where to serve Prometheus metrics (`GET /metrics`); None: not at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
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
        Some(mut model) if usable => {
            crate::ops::keepalived_args::restrict(&options.keepalived, &mut model);
            Ok(model)
        }
        _ => Err(UnusableConfig { path: options.config.clone(), diagnostics: loaded.diagnostics }.into()),
    }
}

/// The instances the guard protects (an instance whose interface does not exist yet is
/// guarded from the moment it appears).
fn guarded(model: &Config) -> Vec<GuardInstance> {
    model.vrrp_instances.iter().filter_map(GuardInstance::of).collect()
}

fn interface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
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
    version: &'static str,
    /// Seconds since the Unix epoch.
    started_at: f64,
    /// SIGHUPs whose file was refused (the running configuration kept), and why the last was.
    reloads_refused: u64,
    last_reload_refusal: Option<&'a str>,
    /// Alert mails queued, sent, failed and dropped since start.
    alerts: crate::alert::AlertCounts,
    /// The NAT state sync daemon (`lvs_sync_daemon`), when configured.
    lvs_sync: Option<sync::SyncStatus>,
}

/// Everything `run` keeps between signals.
struct Daemon {
    options: RunOptions,
    dataplane: Dataplane,
    guarded: Vec<GuardInstance>,
    /// (interface, virtual_server) for every NAT virtual_server's real servers' route.
    nat_routes: Vec<(String, String)>,
    entries: GuardEntries,
    /// Wanted interfaces already reported missing (said once, not at every event).
    missing_logged: std::collections::BTreeSet<String>,
    vrrp: InstanceSet,
    statics: statics::Statics,
    netlink: crate::net::Netlink,
    /// The kernel's link, address and route events (one subscription for the whole daemon).
    net_events: tokio::sync::broadcast::Sender<crate::net::NetEvent>,
    balancer: balancer::Balancer,
    /// `lvs_sync_daemon`.
    sync: Option<sync::SyncHandle>,
    reloads: u64,
    reloads_refused: u64,
    last_reload_refusal: Option<String>,
    /// Seconds since the Unix epoch.
    started_at: f64,
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
            version: env!("CARGO_PKG_VERSION"),
            started_at: self.started_at,
            reloads_refused: self.reloads_refused,
            last_reload_refusal: self.last_reload_refusal.as_deref(),
            alerts: crate::alert::counts(),
            lvs_sync: self.sync.as_ref().map(sync::SyncHandle::status),
        })?)
    }

    /// Starts, keeps (with the new services and instance) or stops the sync daemon for
    /// `model`'s `lvs_sync_daemon`. A sync daemon that cannot start is logged; the rest runs.
    fn apply_sync(&mut self, model: &Config) {
        let wanted = model.global_defs.lvs_sync_daemon.clone();
        if wanted.is_some() && self.options.lb_backend != LbBackend::Xdp {
            tracing::warn!("lvs_sync_daemon is for keepxdp's XDP balancer; with --lb-backend ipvs it is not started");
            self.sync = None;
            return;
        }
        let Some(config) = wanted else {
            self.sync = None;
            return;
        };
        let directory = crate::lvs::sync::entries::Directory::of(&self.balancer.views());
        let Some(role) = self.vrrp.status_watch(&config.vrrp_instance) else {
            tracing::error!(instance = config.vrrp_instance, "lvs_sync_daemon: vrrp_instance {} is not running; the sync daemon is off", config.vrrp_instance);
            self.sync = None;
            return;
        };
        let same = |a: &crate::config::model::LvsSyncDaemon, b: &crate::config::model::LvsSyncDaemon| {
            crate::config::model::LvsSyncDaemon { at: String::new(), ..a.clone() } == crate::config::model::LvsSyncDaemon { at: String::new(), ..b.clone() }
        };
        let vrid = model.vrrp_instances.iter().find(|i| i.name == config.vrrp_instance).and_then(|i| i.virtual_router_id).unwrap_or(0);
        match &self.sync {
            Some(running) if same(&running.config, &config) && running.config.id.is_some() == config.id.is_some() => {
                running.set_directory(directory);
                running.set_role(role);
            }
            _ => {
                self.sync = None;
                match sync::start(&self.dataplane, &config, vrid, role, directory) {
                    Ok(handle) => self.sync = Some(handle),
                    Err(error) => tracing::error!(at = config.at, "lvs_sync_daemon cannot start: {error:#}"),
                }
            }
        }
    }

    /// The interfaces NAT real servers are reached through, from the FIB (their replies come
    /// back there and are translated in XDP).
    async fn find_nat_routes(&mut self) {
        let mut routes = Vec::new();
        let mut looked_up: BTreeMap<std::net::IpAddr, Option<String>> = BTreeMap::new();
        for (service, address) in self.balancer.nat_real_servers() {
            if !looked_up.contains_key(&address) {
                let interface = match self.netlink.route_interface(address).await {
                    Ok(Some(index)) => nix::net::if_::if_indextoname(index).ok().map(|n| n.to_string_lossy().into_owned()),
                    Ok(None) => None,
                    Err(error) => {
                        tracing::warn!(real_server = %address, "{error:#}");
                        None
                    }
                };
                if interface.is_none() {
                    tracing::warn!(real_server = %address, virtual_server = service, "no route to a NAT real server: its replies cannot be translated until there is one");
                }
                looked_up.insert(address, interface);
            }
            if let Some(Some(interface)) = looked_up.get(&address) {
                routes.push((interface.clone(), service));
            }
        }
        routes.sort();
        routes.dedup();
        self.nat_routes = routes;
    }

    /// Brings the guard's maps and the attachments to `guarded` and `nat_routes`: maps first
    /// (new rows before stale ones go), then attachments (new interfaces attached, unused or
    /// re-created ones detached). `strict` (startup): an instance's interface that exists but
    /// cannot be attached is an error; otherwise failures are logged, naming the interface
    /// and what needs it.
    fn apply_dataplane(&mut self, strict: bool) -> Result<()> {
        let present_instances: Vec<GuardInstance> =
            self.guarded.iter().filter(|instance| interface_exists(&instance.interface)).cloned().collect();
        let entries = guard_entries(&present_instances, ifindex)?;
        self.dataplane.replace(&self.entries, &entries)?;
        self.entries = entries;
        let wanted = attach::wanted(
            self.guarded.iter().map(|i| (i.interface.clone(), i.name.clone())),
            self.nat_routes.iter().cloned(),
        );
        let present: BTreeMap<String, u32> =
            wanted.keys().filter_map(|name| nix::net::if_::if_nametoindex(name.as_str()).ok().map(|index| (name.clone(), index))).collect();
        let attached: Vec<(String, u32)> = self.dataplane.attachments().iter().map(|a| (a.interface.clone(), a.ifindex)).collect();
        let changes = attach::changes(&present, &attached);
        for name in &changes.detach {
            self.dataplane.detach(name);
        }
        for name in &changes.attach {
            let reasons = &wanted[name];
            match self.dataplane.attach(name, &self.options.pin_dir) {
                Ok(_) if reasons.instances.is_empty() => {
                    tracing::info!(interface = name, "data plane attached to {name} for the replies of {}", reasons.describe())
                }
                Ok(_) => {}
                Err(error) if strict && !reasons.instances.is_empty() => return Err(error),
                Err(error) => tracing::error!(interface = name, "cannot attach the data plane to {name}, needed by {}: {error:#}", reasons.describe()),
            }
        }
        for (name, reasons) in &wanted {
            if !present.contains_key(name) && !self.missing_logged.contains(name) {
                tracing::warn!(interface = name, "interface {name} does not exist (yet), needed by {}: the data plane attaches when it appears", reasons.describe());
            }
        }
        self.missing_logged = wanted.keys().filter(|name| !present.contains_key(*name)).cloned().collect();
        Ok(())
    }

    /// A link or route changed: look the NAT routes up again and re-apply the attachments.
    async fn net_changed(&mut self) {
        self.find_nat_routes().await;
        if let Err(error) = self.apply_dataplane(false) {
            tracing::error!("updating the data plane's attachments: {error:#}");
        }
    }

    /// SIGHUP: the new file is read and validated first; with any error the running
    /// configuration stays as it is.
    async fn reload(&mut self) {
        let model = match read_config(&self.options, true).and_then(|model| fits(&self.options, &model).map(|()| model)) {
            Ok(model) => model,
            Err(error) => {
                tracing::error!("reload refused, the running configuration is unchanged: {error:#}");
                self.reloads_refused += 1;
                self.last_reload_refusal = Some(format!("{error:#}"));
                return;
            }
        };
        crate::alert::start(alert_plan(&model));
        self.balancer.apply(&model);
        self.balancer.resolve_backends(&self.netlink).await;
        self.guarded = guarded(&model);
        self.find_nat_routes().await;
        if let Err(error) = self.apply_dataplane(false) {
            tracing::error!("reload: updating the VRRP guard failed: {error:#}");
        }
        let statics = statics::Statics::of(&model);
        statics.apply(&self.statics, &self.netlink).await;
        self.statics = statics;
        self.vrrp.apply(&model).await;
        self.apply_sync(&model);
        self.reloads += 1;
        tracing::info!(reloads = self.reloads, "configuration reloaded");
    }
}

/// The virtual_servers fit the XDP data plane's maps (IPVS has no such limits).
fn fits(options: &RunOptions, model: &Config) -> Result<()> {
    if options.lb_backend != balancer::LbBackend::Xdp {
        return Ok(());
    }
    let errors = crate::lvs::limits::over_limits(&crate::lvs::plan(model).0, &options.limits);
    if errors.is_empty() {
        return Ok(());
    }
    anyhow::bail!("the virtual_servers do not fit the data plane's maps:\n  {}", errors.join("\n  "))
}

pub async fn run(options: RunOptions) -> Result<()> {
    let model = read_config(&options, false)?;
    fits(&options, &model)?;
    // Before anything is loaded: a second keepxdp would take over the first one's links.
    crate::ctl::ensure_not_served(&options.control_socket)?;
    let _pid_files = crate::ops::pidfile::PidFiles::claim(&options.keepalived.pid_files())?;
    for note in options.keepalived.notes() {
        tracing::info!("{note}");
    }
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
        sync: None,
        guarded: guarded(&model),
        nat_routes: Vec::new(),
        missing_logged: Default::default(),
        entries: GuardEntries::default(),
        vrrp: InstanceSet::new(Some(vip_hook), &net_events)?,
        net_events,
        statics: statics::Statics::default(),
        netlink: crate::net::Netlink::connect()?,
        reloads: 0,
        reloads_refused: 0,
        last_reload_refusal: None,
        started_at: crate::ops::log::unix_now(),
        options,
    };
    let statics = statics::Statics::of(&model);
    statics.apply(&daemon.statics, &daemon.netlink).await;
    daemon.statics = statics;
    // Before the checkers and instances start: their first changes are mailed too.
    crate::alert::start(alert_plan(&model));
    // The balancer's maps are complete (real servers' MACs included, or a restart over a kept
    // data plane would hand established flows to the stack, which resets them) before the
    // guard starts handing it frames.
    match daemon.netlink.local_addresses().await {
        Ok(present) => daemon.balancer.adopt_local_addresses(present.into_iter().map(|(_, address)| address)),
        Err(error) => tracing::warn!("reading the interfaces' addresses: {error:#}"),
    }
    daemon.balancer.apply(&model);
    daemon.balancer.resolve_backends(&daemon.netlink).await;
    daemon.find_nat_routes().await;
    // Pins are staged, the links attached (or a previous keepxdp's adopted in place), then
    // the pins take their names: at every moment some guard runs with a full prog array.
    let pin_dir = daemon.options.pin_dir.clone();
    daemon.dataplane.stage_pins(&pin_dir)?;
    daemon.apply_dataplane(true)?;
    daemon.dataplane.release_unused_links(&pin_dir);
    daemon.dataplane.commit_pins()?;
    daemon.vrrp.apply(&model).await;
    daemon.apply_sync(&model);
    // Everything running now holds what it needs; the model of a large configuration is
    // tens of MB (10,000 real servers: ~15 MB), a reload reads a new one.
    drop(model);
    let mut control = ControlSocket::bind(&daemon.options.control_socket, daemon.status()?)?;
    let mut commands = control.take_commands();
    let _metrics = match daemon.options.metrics_listen {
        Some(addr) => Some(crate::metrics::serve(addr, control.subscribe(), daemon.options.pin_dir.clone()).await?),
        None => None,
    };
    tracing::info!(
        instances = daemon.guarded.len(),
        pin_dir = %daemon.options.pin_dir.display(),
        control_socket = %daemon.options.control_socket.display(),
        "keepxdp ready"
    );
    let systemd = crate::ops::systemd::Systemd::from_env();
    systemd.ready(&format!("{} VRRP instance(s), data plane attached", daemon.guarded.len()));
    let mut watchdog = tokio::time::interval(systemd.watchdog_every().unwrap_or(Duration::from_secs(3600)));

    let mut signals = crate::ops::signals::Signals::new()?;
    let mut net = daemon.net_events.subscribe();
    // Links and routes change in bursts: the attachments are looked at once the burst is over.
    let mut net_changed_at: Option<tokio::time::Instant> = None;
    let mut refresh = tokio::time::interval(Duration::from_millis(200));
    let mut neighbours = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            Some(event) = health_events.recv() => daemon.balancer.health(event),
            _ = neighbours.tick() => daemon.balancer.resolve_backends(&daemon.netlink).await,
            request = signals.next() => match request {
                Request::Stop => break,
                Request::Reload => {
                    systemd.reloading();
                    daemon.reload().await;
                    control.set_status(daemon.status()?);
                    systemd.ready("configuration reloaded");
                }
                request => daemon.dump(request),
            },
            Some(command) = commands.recv() => {
                let reply = match command.request {
                    ControlRequest::Drain { target, drained } => ControlReply::from_result(daemon.balancer.set_drained(target, drained)),
                    ControlRequest::Status => ControlReply::from_result(Ok(Vec::new())),
                };
                let _ = command.reply.send(reply);
                control.set_status(daemon.status()?);
            }
            _ = refresh.tick() => control.set_status(daemon.status()?),
            _ = watchdog.tick() => systemd.watchdog(),
            event = net.recv() => match event {
                Ok(NetEvent::Link { .. } | NetEvent::Route) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    net_changed_at.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_millis(100));
                }
                Ok(NetEvent::Address { .. }) => {}
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("the rtnetlink event subscription ended"),
            },
            _ = tokio::time::sleep_until(net_changed_at.unwrap_or_else(far_future)), if net_changed_at.is_some() => {
                net_changed_at = None;
                daemon.net_changed().await;
            }
        }
    }

    systemd.stopping();
    if daemon.options.keep_dataplane {
        daemon.balancer.freeze_vip_state();
    }
    daemon.vrrp.stop_all().await;
    // The instances' Stopping mails, within the unit's stop timeout.
    crate::alert::drain(Duration::from_secs(5)).await;
    statics::Statics::default().apply(&daemon.statics, &daemon.netlink).await;
    control.close();
    let pin_dir = daemon.options.pin_dir.clone();
    if daemon.options.keep_dataplane {
        // The links, maps and programs are pinned already (since they were made).
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

/// Who gets alert mails, with this host's name and the running user's as keepalived's defaults.
fn alert_plan(model: &Config) -> crate::alert::plan::AlertPlan {
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map_or_else(|| "root".to_string(), |u| u.name);
    crate::alert::plan::AlertPlan::of(model, &host, &user)
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}
