//! `keepxdp run`: read the config, load and attach the data plane, fill its maps, pin it,
//! serve status, and on SIGTERM/SIGINT take it all down again.
use std::{collections::BTreeSet, fs, path::PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    bpf::{Attachment, Dataplane, GuardInstance, GuardMaps, ensure_bpffs, guard_entries},
    config::{self, Diagnostics, LoadOptions},
    ctl::ControlSocket,
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
fn read_config(options: &RunOptions) -> Result<Vec<GuardInstance>> {
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
    let Some(model) = loaded.runnable() else {
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
    Ok(instances)
}

#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    config: &'a std::path::Path,
    pin_dir: &'a std::path::Path,
    instances: &'a [GuardInstance],
    attachments: &'a [Attachment],
}

pub async fn run(options: RunOptions) -> Result<()> {
    let instances = read_config(&options)?;
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

    let status = serde_json::to_string(&Status {
        pid: std::process::id(),
        config: &options.config,
        pin_dir: &options.pin_dir,
        instances: &instances,
        attachments: dataplane.attachments(),
    })?;
    let control = ControlSocket::bind(&options.control_socket, status)?;
    tracing::info!(
        instances = instances.len(),
        pin_dir = %options.pin_dir.display(),
        control_socket = %options.control_socket.display(),
        "keepxdp ready"
    );

    wait_for_stop().await?;

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

async fn wait_for_stop() -> Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); return Ok(()); }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); return Ok(()); }
            _ = hangup.recv() => {
                tracing::warn!("SIGHUP: reload is not implemented in this version; the running configuration is unchanged");
            }
        }
    }
}
