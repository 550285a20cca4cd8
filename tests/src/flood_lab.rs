//! The VRRP flood lab: a keepalived 2.2.7 Master (priority 150) and a Backup (priority 100,
//! keepxdp or keepalived) in VRID 51 on a switch, and a third host flooding the Backup with
//! invalid adverts (`keepxdp_lab::flood`). Counted: false takeovers (the Backup adding the VIP
//! while the Master lives: `ip monitor address` in the Backup's namespace), the Backup's CPU
//! (utime + stime of its processes over the flood), the rates sent and received, and for
//! keepxdp the guard's drops by reason. Used by `lab_flood` (bounded rate) and
//! `keepxdp-bench flood` (full rate).
use std::{path::Path, time::{Duration, Instant}};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    flood::{self, Broken, FloodLimits, FloodReport},
    keepalived,
    keepxdp::Keepxdp,
    netns::Netns,
    process::{ChildGuard, wait_for},
    vrrp_lab::{SwitchedVrrpLab, VIP, instance_config},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backup {
    Keepxdp,
    Keepalived,
}

impl Backup {
    pub fn name(self) -> &'static str {
        match self {
            Backup::Keepxdp => "keepxdp",
            Backup::Keepalived => "keepalived 2.2.7",
        }
    }
}

/// The VRRP version and advert_int of both nodes.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub version: u8,
    pub advert_int: &'static str,
}

pub const V2_1S: Setting = Setting { version: 2, advert_int: "1" };
pub const V3_30MS: Setting = Setting { version: 3, advert_int: "0.03" };

#[derive(Debug)]
pub struct FloodRun {
    pub backup: Backup,
    pub setting: Setting,
    pub sent: FloodReport,
    /// Frames the Backup's interface received during the flood (its rx counter).
    pub received: u64,
    /// Times the Backup added the VIP while the Master was alive.
    pub false_takeovers: usize,
    /// "Entering MASTER STATE" lines the Backup logged during the flood.
    pub master_lines: usize,
    /// Lines the Backup logged during the flood, and the first few of them.
    pub log_lines: usize,
    pub log_sample: Vec<String>,
    /// The Backup's processes' CPU over the flood, % of one core.
    pub cpu_percent: f64,
    /// keepxdp only: the guard's counters (`guard-stats --json`) after the flood.
    pub guard: Option<serde_json::Value>,
}

impl FloodRun {
    pub fn received_rate(&self) -> f64 {
        self.received as f64 / self.sent.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The guard's count for `reason` on `vrid` (IPv4), or over every VRID with `None`.
pub fn guard_count(stats: &serde_json::Value, vrid: Option<u64>, reason: &str) -> u64 {
    stats
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["family"] == "ipv4" && vrid.is_none_or(|v| row["vrid"] == v))
        .map(|row| row["counts"][reason].as_u64().unwrap_or(0))
        .sum()
}

/// CPU ticks (utime + stime) of `pids`, from /proc/PID/stat.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn netns_pids(netns: &Netns, except: u32) -> Result<Vec<u32>> {
    Ok(keepxdp_lab::run("ip", &["netns", "pids", &netns.name])?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p != except)
        .collect())
}

fn rx_packets(netns: &Netns, device: &str) -> Result<u64> {
    let json: serde_json::Value = serde_json::from_str(&netns.ip(&["-s", "-j", "link", "show", "dev", device])?)?;
    json[0]["stats64"]["rx"]["packets"].as_u64().context("no rx packets in ip -s -j link")
}

/// `device`'s MAC address in `netns`.
pub fn mac_of(netns: &Netns, device: &str) -> Result<[u8; 6]> {
    let json: serde_json::Value = serde_json::from_str(&netns.ip(&["-j", "link", "show", "dev", device])?)?;
    let text = json[0]["address"].as_str().context("no MAC")?;
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16)?;
    }
    Ok(mac)
}

/// The Backup, running.
enum Running {
    Keepxdp(Keepxdp),
    Keepalived(ChildGuard),
}

impl Running {
    fn log(&self) -> String {
        match self {
            Running::Keepxdp(k) => k.child.log_text(),
            Running::Keepalived(c) => c.log_text(),
        }
    }

    fn check_running(&mut self) -> Result<()> {
        match self {
            Running::Keepxdp(k) => k.child.check_running(),
            Running::Keepalived(c) => c.check_running(),
        }
    }
}

/// One run: lab up, Master settled, Backup settled, flood within `limits`, counts, teardown.
pub fn run(binary: &Path, backup: Backup, setting: Setting, limits: FloodLimits) -> Result<FloodRun> {
    let mut lab = SwitchedVrrpLab::new()?;
    let flooder = Netns::new("f")?;
    lab.switch.plug(&flooder, "kxflood", "10.77.0.3/24")?;
    // The flood goes to the Backup's MAC only (a static entry on its port): it measures the
    // Backup, the Master is not slowed down by it.
    let node_mac = mac_of(&lab.node, "kxnode")?;
    let mac_text: Vec<String> = node_mac.iter().map(|b| format!("{b:02x}")).collect();
    lab.switch.netns.run("bridge", &["fdb", "replace", &mac_text.join(":"), "dev", "port2", "master", "static"])?;

    let master_config = instance_config("kxpeer", setting.version, 150, setting.advert_int, "MASTER", "");
    let mut master = keepalived::start_logging(&lab.peer, lab.dir.path(), &master_config, false)?;
    wait_for("the keepalived Master to hold the VIP", Duration::from_secs(10), || {
        master.check_running()?;
        lab.peer_holds_vip()
    })?;
    let backup_config = instance_config("kxnode", setting.version, 100, setting.advert_int, "BACKUP", "");
    let mut running = match backup {
        Backup::Keepxdp => Running::Keepxdp(lab.keepxdp_on_node(binary, &backup_config)?),
        Backup::Keepalived => Running::Keepalived(keepalived::start_logging(&lab.node, lab.dir.path(), &backup_config, false)?),
    };
    // Settled: the Backup heard the Master for a while and never took the VIP.
    std::thread::sleep(Duration::from_secs(2));
    running.check_running()?;
    ensure!(lab.peer_holds_vip()? && !lab.node_holds_vip()?, "not settled before the flood; Backup log:\n{}", running.log());

    let monitor_log = lab.dir.path().join("monitor.log");
    let mut monitor_command = lab.node.command("ip");
    monitor_command.args(["-o", "monitor", "address", "dev", "kxnode"]);
    let monitor = ChildGuard::spawn("ip monitor", monitor_command, &monitor_log)?;
    std::thread::sleep(Duration::from_millis(300));
    let pids = netns_pids(&lab.node, monitor.pid())?;
    let log_before = running.log().len();
    let rx_before = rx_packets(&lab.node, "kxnode")?;
    let ticks_before = cpu_ticks(&pids);
    let started = Instant::now();

    let frames = flood::invalid_mix(51, setting.version, "10.77.0.3", node_mac, VIP);
    let sent = flood::flood(&flooder, "kxflood", frames, limits)?;

    let ticks = cpu_ticks(&pids) - ticks_before;
    let window = started.elapsed();
    let received = rx_packets(&lab.node, "kxnode")? - rx_before;
    // A takeover at the very end shows up a moment later.
    std::thread::sleep(Duration::from_millis(300));
    running.check_running()?;
    master.check_running()?;
    ensure!(lab.peer_holds_vip()?, "the Master lost the VIP; its log:\n{}", master.log_text());
    drop(monitor);
    let added = std::fs::read_to_string(&monitor_log)?
        .lines()
        .filter(|l| !l.starts_with("Deleted") && l.contains(&format!(" {VIP}/")))
        .count();
    let log = running.log();
    let during = &log[log_before.min(log.len())..];
    let master_lines = during.matches("Entering MASTER STATE").count();
    let log_lines = during.lines().count();
    let log_sample = during.lines().take(6).map(String::from).collect();
    let guard = match &running {
        Running::Keepxdp(keepxdp) => Some(serde_json::from_str(&keepxdp.guard_stats_json(&lab.node)?)?),
        Running::Keepalived(_) => None,
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as f64;
    let cpu_percent = ticks as f64 / hz / window.as_secs_f64() * 100.0;
    if let Running::Keepxdp(mut keepxdp) = running {
        keepxdp.stop()?;
    }
    Ok(FloodRun { backup, setting, sent, received, false_takeovers: added, master_lines, log_lines, log_sample, cpu_percent, guard })
}

/// One line of `keepxdp-bench flood`'s table.
pub fn row(run: &FloodRun) -> String {
    format!(
        "| {} | v{} advert_int {} | {:.0} | {:.0} | {} | {:.1} |",
        run.backup.name(),
        run.setting.version,
        run.setting.advert_int,
        run.sent.rate(),
        run.received_rate(),
        run.false_takeovers,
        run.cpu_percent
    )
}

/// Per reason: (sent, counted by the guard) over the run.
pub fn drops_by_reason(run: &FloodRun) -> Vec<(Broken, u64, u64)> {
    let stats = run.guard.clone().unwrap_or_default();
    Broken::ALL.iter().map(|kind| (*kind, run.sent.sent_of(*kind), guard_count(&stats, None, kind.guard_reason()))).collect()
}
