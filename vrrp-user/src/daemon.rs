//! `keepxdp run`: read the config, load and attach the data plane, fill its maps, pin it,
//! serve status, and on SIGTERM/SIGINT take it all down again.
use std::{collections::BTreeSet, fs, path::PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    bpf::{Attachment, Dataplane, GuardMaps, ensure_bpffs, guard_entries},
    config::{InstanceSpec, read_instances},
    ctl::ControlSocket,
};

pub struct RunOptions {
    pub config: PathBuf,
    pub pin_dir: PathBuf,
    pub control_socket: PathBuf,
}

#[derive(Serialize)]
struct Status<'a> {
    pid: u32,
    config: &'a std::path::Path,
    pin_dir: &'a std::path::Path,
    instances: &'a [InstanceSpec],
    attachments: &'a [Attachment],
}

pub async fn run(options: RunOptions) -> Result<()> {
    let instances = read_instances(&options.config)?;
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
