//! keepxdp itself as a lab process: one per namespace, each with its own pin dir and
//! control socket, so several run side by side.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Result, ensure};

use crate::{
    netns::Netns,
    process::{ChildGuard, wait_for},
};

pub struct Keepxdp {
    pub binary: PathBuf,
    /// The configuration file it runs (rewrite it and send SIGHUP to reload).
    pub config_path: PathBuf,
    pub child: ChildGuard,
    pub pin_dir: PathBuf,
    pub control_socket: PathBuf,
}

impl Keepxdp {
    /// `keepxdp run` in `netns` with `config`; returns once the control socket is up (the
    /// guard is attached and pinned by then). Its files go in `dir`.
    pub fn start(binary: &Path, netns: &Netns, dir: &Path, config: &str) -> Result<Keepxdp> {
        Self::start_with(binary, netns, dir, config, &[])
    }

    /// `start` with more `keepxdp run` options (`--keep-dataplane`, ...).
    pub fn start_with(binary: &Path, netns: &Netns, dir: &Path, config: &str, extra: &[&str]) -> Result<Keepxdp> {
        Self::start_with_env(binary, netns, dir, config, extra, &[])
    }

    /// `start_with`, with these environment variables set (NOTIFY_SOCKET, ...).
    pub fn start_with_env(binary: &Path, netns: &Netns, dir: &Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Keepxdp> {
        let config_path = dir.join(format!("keepxdp-{}.conf", netns.name));
        std::fs::write(&config_path, config)?;
        let pin_dir = dir.join(format!("pins-{}", netns.name));
        let control_socket = dir.join(format!("keepxdp-{}.sock", netns.name));
        let mut command = netns.command(binary.to_str().unwrap());
        command
            .args(["run", "-f"])
            .arg(&config_path)
            .arg("--pin-dir")
            .arg(&pin_dir)
            .arg("--control-socket")
            .arg(&control_socket)
            .args(extra)
            .envs(env.iter().copied());
        let mut child = ChildGuard::spawn("keepxdp", command, &dir.join(format!("keepxdp-{}.log", netns.name)))?;
        let socket = control_socket.clone();
        wait_for("keepxdp's control socket", Duration::from_secs(10), || {
            child.check_running()?;
            // Served, not just there: a killed keepxdp leaves its socket file behind.
            Ok(std::os::unix::net::UnixStream::connect(&socket).is_ok())
        })?;
        Ok(Keepxdp { binary: binary.to_path_buf(), config_path, child, pin_dir, control_socket })
    }

    fn command(&self, netns: &Netns, args: &[&str]) -> Result<String> {
        netns.run(self.binary.to_str().unwrap(), args)
    }

    /// `keepxdp guard-stats --json`, a separate process reading the pinned map.
    pub fn guard_stats_json(&self, netns: &Netns) -> Result<String> {
        self.command(netns, &["guard-stats", "--json", "--pin-dir", self.pin_dir.to_str().unwrap()])
    }

    /// `keepxdp guard-stats` (the table), run in `netns` so interface names resolve.
    pub fn guard_stats_table(&self, netns: &Netns) -> Result<String> {
        self.command(netns, &["guard-stats", "--pin-dir", self.pin_dir.to_str().unwrap()])
    }

    /// `keepxdp status`: the control socket's JSON.
    pub fn status_json(&self) -> Result<String> {
        crate::run(self.binary.to_str().unwrap(), &["status", "--json", "--control-socket", self.control_socket.to_str().unwrap()])
    }

    /// `keepxdp status`: the tables an operator reads.
    pub fn status_table(&self) -> Result<String> {
        crate::run(self.binary.to_str().unwrap(), &["status", "--control-socket", self.control_socket.to_str().unwrap()])
    }

    /// SIGTERM; keepxdp must exit 0 and leave no pins or socket behind.
    pub fn stop(&mut self) -> Result<()> {
        let status = self.child.stop(Duration::from_secs(5))?;
        ensure!(status.success(), "keepxdp exited with {status}; log:\n{}", self.child.log_text());
        ensure!(!self.pin_dir.exists(), "{} is still there after SIGTERM", self.pin_dir.display());
        ensure!(!self.control_socket.exists(), "the control socket is still there after SIGTERM");
        Ok(())
    }
}

impl Drop for Keepxdp {
    /// A keepxdp killed mid-way leaves its bpffs mounted on the pin dir: unmount it.
    fn drop(&mut self) {
        let _ = self.child.stop(Duration::from_secs(2));
        if self.pin_dir.exists() {
            let _ = crate::run("umount", &["-l", self.pin_dir.to_str().unwrap()]);
            let _ = std::fs::remove_dir(&self.pin_dir);
        }
    }
}
