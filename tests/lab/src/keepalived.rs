//! Debian's keepalived as a VRRP peer inside a lab namespace.
use std::path::Path;

use anyhow::{Context, Result};

use crate::{netns::Netns, process::ChildGuard};

/// A VRRP-only keepalived.conf: one instance per (name, interface, VRID, address, priority).
pub fn vrrp_config(instances: &[(&str, &str, u8, &str, u8)]) -> String {
    let mut config = String::from("global_defs {\n  router_id keepxdp_lab\n}\n");
    for (name, interface, vrid, address, priority) in instances {
        config.push_str(&format!(
            "vrrp_instance {name} {{\n  state MASTER\n  interface {interface}\n  virtual_router_id {vrid}\n  priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    {address}\n  }}\n}}\n"
        ));
    }
    config
}

/// Starts keepalived (VRRP only, foreground, console log) in `netns` with `config`; its
/// files (config, pid files, log) go in `dir`.
pub fn start(netns: &Netns, dir: &Path, config: &str) -> Result<ChildGuard> {
    start_logging(netns, dir, config, true)
}

/// `start`, with keepalived's detailed log (`-D`) or without it (as a packaged keepalived
/// runs: Debian's DAEMON_ARGS are empty).
pub fn start_logging(netns: &Netns, dir: &Path, config: &str, detailed: bool) -> Result<ChildGuard> {
    let config_path = dir.join(format!("keepalived-{}.conf", netns.name));
    std::fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
    let mut command = std::process::Command::new("ip");
    command
        .args(["netns", "exec", &netns.name, "keepalived", "--vrrp", "-n", "-l"])
        .args(detailed.then_some("-D"))
        .arg("-f")
        .arg(&config_path)
        .arg("-p")
        .arg(dir.join(format!("keepalived-{}.pid", netns.name)))
        .arg("-r")
        .arg(dir.join(format!("keepalived-vrrp-{}.pid", netns.name)));
    ChildGuard::spawn("keepalived", command, &dir.join(format!("keepalived-{}.log", netns.name)))
}
