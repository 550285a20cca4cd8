//! `--keep`: the lab stays up after the story (its servers are threads of the demo process,
//! so the process stays too, waiting for Ctrl-C or SIGTERM), with a state file naming what
//! it made, so `--down` from another shell can end it — or clean up after it when it was
//! killed outright — by pid and by name, touching nothing else.
use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::summary::LabPaths;
use crate::pair_lab::{CLIENT, VIP};

/// Where a kept lab is recorded (one at a time).
pub const STATE_FILE: &str = "/run/keepxdp-demo.json";

/// Records the kept lab; refuses when another kept lab is still up.
pub fn record(lab: &LabPaths) -> Result<()> {
    if let Some(other) = read()?
        && demo_alive(&other)
    {
        bail!("a kept demo lab is already up (pid {}): end it first with `cargo xtask demo --down`", other.pid);
    }
    std::fs::write(STATE_FILE, serde_json::to_string_pretty(lab)?).with_context(|| format!("writing {STATE_FILE}"))
}

/// Removes the record if it is this process's.
pub fn forget() {
    if read().ok().flatten().is_some_and(|lab| lab.pid == std::process::id()) {
        let _ = std::fs::remove_file(STATE_FILE);
    }
}

fn read() -> Result<Option<LabPaths>> {
    match std::fs::read_to_string(STATE_FILE) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("reading {STATE_FILE}"))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {STATE_FILE}")),
    }
}

/// The command line of `pid`, arguments joined by spaces (None when it is gone).
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Is the demo process that recorded `lab` still running (and still that process)?
fn demo_alive(lab: &LabPaths) -> bool {
    cmdline(lab.pid).is_some_and(|c| c.contains("keepxdp-demo"))
}

/// `--down`: asks the kept lab's demo process to tear it down (SIGTERM) and waits; when that
/// process is gone (killed outright) or does not finish, removes what the record names:
/// its keepxdp processes (by pid, checked against their config path), pin dirs, namespaces
/// and directory. Returns what it did.
pub fn down() -> Result<String> {
    let Some(lab) = read()? else {
        return Ok(format!("no kept demo lab ({STATE_FILE} does not exist)"));
    };
    if demo_alive(&lab) {
        kill(Pid::from_raw(lab.pid as i32), Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while demo_alive(&lab) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !demo_alive(&lab) {
            let _ = std::fs::remove_file(STATE_FILE);
            return Ok(format!("the demo (pid {}) tore its lab down", lab.pid));
        }
    }
    let mut did = Vec::new();
    if demo_alive(&lab) {
        kill(Pid::from_raw(lab.pid as i32), Signal::SIGKILL)?;
        did.push(format!("killed the demo (pid {}), which did not end within 30 s of SIGTERM", lab.pid));
    }
    for node in &lab.nodes {
        if cmdline(node.pid).is_some_and(|c| c.contains(&node.config)) {
            let _ = kill(Pid::from_raw(node.pid as i32), Signal::SIGKILL);
            did.push(format!("killed keepxdp on {} (pid {})", node.name, node.pid));
        }
        if Path::new(&node.pin_dir).exists() {
            let _ = keepxdp_lab::run("umount", &["-l", &node.pin_dir]);
            let _ = std::fs::remove_dir(&node.pin_dir);
        }
    }
    for namespace in &lab.namespaces {
        if Path::new(&format!("/run/netns/{namespace}")).exists() {
            keepxdp_lab::run("ip", &["netns", "delete", namespace])?;
            did.push(format!("deleted namespace {namespace}"));
        }
    }
    if Path::new(&lab.dir).exists() {
        std::fs::remove_dir_all(&lab.dir).with_context(|| format!("removing {}", lab.dir))?;
        did.push(format!("removed {}", lab.dir));
    }
    std::fs::remove_file(STATE_FILE)?;
    Ok(format!("the demo (pid {}) was gone; cleaned up after it: {}", lab.pid, if did.is_empty() { "nothing left".into() } else { did.join("; ") }))
}

/// The commands to explore a kept lab, with its real names and paths.
pub fn explore(lab: &LabPaths, keepxdp: &Path, http_port: u16) -> String {
    let kx = keepxdp.display();
    let client = lab.namespaces.iter().find(|n| n.ends_with("cl")).cloned().unwrap_or_default();
    let mut text = format!(
        "The lab stays up while this process (pid {pid}) runs. From another shell:\n\
         \x20 ip netns list | grep kx{pid}-                     # its namespaces (cl = client {CLIENT}, lb1/lb2, rs1..rs3, sw = switches)\n\
         \x20 ip netns exec {client} curl -s http://{VIP}:{http_port}/      # HTTP through the VIP: the real server answers with its name\n\
         \x20 nsenter --net=/run/netns/{client} -- curl -s http://{VIP}:{http_port}/\n",
        pid = lab.pid,
    );
    for node in &lab.nodes {
        let ns = &node.namespace;
        text.push_str(&format!(
            "  # {name}: keepxdp pid {pid}, config {config}, log {log}\n\
             \x20 {kx} status --control-socket {socket}\n\
             \x20 nsenter --net=/run/netns/{ns} -- {kx} lvs --pin-dir {pins} --control-socket {socket}\n\
             \x20 nsenter --net=/run/netns/{ns} -- {kx} guard-stats --pin-dir {pins}\n\
             \x20 ls {pins}; bpftool map dump pinned {pins}/guard_stats; bpftool map dump pinned {pins}/lvs_be_stats\n\
             \x20 nsenter --net=/run/netns/{ns} -- bpftool net show   # the guard on eth0, native XDP\n\
             \x20 ip netns exec {ns} ip -br addr                 # its addresses (the Master holds the VIPs)\n",
            name = node.name,
            pid = node.pid,
            config = node.config,
            log = node.log,
            socket = node.control_socket,
            pins = node.pin_dir,
        ));
    }
    text.push_str(&format!(
        "  (the pin dirs are bpffs mounts of their own: use nsenter --net, which keeps this mount namespace, rather than ip netns exec for keepxdp lvs/guard-stats; the maps' layouts: README, \"Looking at the maps with bpftool\")\n\
         Tear it down: Ctrl-C here, or `cargo xtask demo --down` from another shell (it reads {STATE_FILE}).\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::summary::NodePaths;

    #[test]
    fn the_commands_name_the_labs_own_namespaces_sockets_and_pins() {
        let lab = LabPaths {
            pid: 4242,
            dir: "/tmp/keepxdp-pair-x".into(),
            namespaces: vec!["kx4242-0sw".into(), "kx4242-1cl".into(), "kx4242-2lb1".into()],
            nodes: vec![NodePaths {
                name: "lb1".into(),
                namespace: "kx4242-2lb1".into(),
                control_socket: "/tmp/keepxdp-pair-x/lb1.sock".into(),
                pin_dir: "/tmp/keepxdp-pair-x/pins-lb1".into(),
                config: "/tmp/keepxdp-pair-x/lb1.conf".into(),
                log: "/tmp/keepxdp-pair-x/lb1.log".into(),
                pid: 4300,
            }],
        };
        let text = explore(&lab, Path::new("/usr/bin/keepxdp"), 80);
        for needle in [
            "ip netns exec kx4242-1cl curl -s http://10.0.0.100:80/",
            "/usr/bin/keepxdp status --control-socket /tmp/keepxdp-pair-x/lb1.sock",
            "nsenter --net=/run/netns/kx4242-2lb1 -- /usr/bin/keepxdp lvs --pin-dir /tmp/keepxdp-pair-x/pins-lb1",
            "bpftool map dump pinned /tmp/keepxdp-pair-x/pins-lb1/guard_stats",
            "grep kx4242-",
            "cargo xtask demo --down",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
