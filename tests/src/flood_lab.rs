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
    /// Times the Backup added the VIP during the flood (`ip monitor address`). With a live
    /// Master every one is a false takeover; `timeline` tells whether the Master was.
    pub false_takeovers: usize,
    /// Both routers' adverts as the switch saw them, judged.
    pub timeline: AdvertTimeline,
    /// "Entering MASTER STATE" lines the Backup logged during the flood.
    pub master_lines: usize,
    /// Frames dropped on the Backup's namespace's raw sockets (their receive queue was full:
    /// /proc/net/raw's drops) during the flood.
    pub raw_drops: u64,
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

/// The drops column of /proc/net/raw, summed, as seen in `netns`.
fn raw_socket_drops(netns: &Netns) -> Result<u64> {
    let table = netns.run("cat", &["/proc/net/raw"])?;
    Ok(table.lines().skip(1).filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok()).sum())
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

/// The Master_Down_Interval of a priority-100 Backup (RFC 9568 §6.1: 3 × interval + skew).
pub fn master_down_interval(setting: Setting) -> f64 {
    let interval: f64 = setting.advert_int.parse().unwrap_or(1.0);
    3.0 * interval + (256.0 - 100.0) * interval / 256.0
}

/// The VRRP adverts seen on the switch, judged: each time the Backup starts advertising is a
/// takeover; it is false when the Master's last advert before it is more recent than the
/// Master_Down_Interval (the Master was alive and on time).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AdvertTimeline {
    pub master_adverts: usize,
    /// The longest silence between two of the Master's adverts, seconds.
    pub master_max_gap: f64,
    /// Takeovers while the Master advertised on time.
    pub false_takeovers: usize,
    /// Takeovers after the Master had been silent for a Master_Down_Interval or more.
    pub after_master_gap: usize,
}

/// `adverts`: (time, source) of every advert, in capture order. A Backup advert starts a
/// takeover when the Backup's previous one is more than `mdi` ago (or there is none).
pub fn judge_adverts(adverts: &[(f64, [u8; 4])], master: [u8; 4], backup: [u8; 4], mdi: f64) -> AdvertTimeline {
    let mut timeline = AdvertTimeline::default();
    let (mut last_master, mut last_backup): (Option<f64>, Option<f64>) = (None, None);
    for &(time, source) in adverts {
        if source == master {
            if let Some(previous) = last_master {
                timeline.master_max_gap = timeline.master_max_gap.max(time - previous);
            }
            timeline.master_adverts += 1;
            last_master = Some(time);
        } else if source == backup {
            if last_backup.is_none_or(|previous| time - previous > mdi) {
                match last_master {
                    Some(previous) if time - previous < mdi => timeline.false_takeovers += 1,
                    _ => timeline.after_master_gap += 1,
                }
            }
            last_backup = Some(time);
        }
    }
    timeline
}

/// (time, IPv4 source) of the VRRP adverts (protocol 112) in a tcpdump capture.
fn adverts_in(capture: &Path) -> Result<Vec<(f64, [u8; 4])>> {
    Ok(keepxdp_lab::packets::read_pcap(capture)?
        .into_iter()
        .filter(|(_, f)| f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[23] == 112)
        .map(|(t, f)| (t, f[26..30].try_into().unwrap()))
        .collect())
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

    // Every advert on the segment, timestamped by one kernel: the Master's gaps, the Backup's
    // takeovers. (The flood goes to the Backup's MAC: br0 itself never sees it.)
    let capture = lab.dir.path().join("adverts.pcap");
    let mut tcpdump_command = lab.switch.netns.command("tcpdump");
    tcpdump_command.args(["-i", "br0", "-n", "-U", "-s", "64", "-w"]).arg(&capture).args(["ip", "proto", "112"]);
    let mut tcpdump = ChildGuard::spawn("tcpdump", tcpdump_command, &lab.dir.path().join("tcpdump.log"))?;
    wait_for("tcpdump listening", Duration::from_secs(5), || {
        tcpdump.check_running()?;
        Ok(tcpdump.log_text().contains("listening on"))
    })?;
    let monitor_log = lab.dir.path().join("monitor.log");
    let mut monitor_command = lab.node.command("ip");
    monitor_command.args(["-o", "monitor", "address", "dev", "kxnode"]);
    let monitor = ChildGuard::spawn("ip monitor", monitor_command, &monitor_log)?;
    std::thread::sleep(Duration::from_millis(300));
    let pids = netns_pids(&lab.node, monitor.pid())?;
    let log_before = running.log().len();
    let rx_before = rx_packets(&lab.node, "kxnode")?;
    let raw_before = raw_socket_drops(&lab.node)?;
    let ticks_before = cpu_ticks(&pids);
    let started = Instant::now();

    let frames = flood::invalid_mix(51, setting.version, "10.77.0.3", node_mac, VIP);
    let sent = flood::flood(&flooder, "kxflood", frames, limits)?;

    let ticks = cpu_ticks(&pids) - ticks_before;
    let window = started.elapsed();
    let received = rx_packets(&lab.node, "kxnode")? - rx_before;
    let raw_drops = raw_socket_drops(&lab.node)?.saturating_sub(raw_before);
    // A takeover at the very end shows up a moment later.
    std::thread::sleep(Duration::from_millis(300));
    running.check_running()?;
    master.check_running()?;
    ensure!(lab.peer_holds_vip()?, "the Master lost the VIP; its log:\n{}", master.log_text());
    drop(monitor);
    let _ = tcpdump.stop(Duration::from_secs(2));
    let timeline = judge_adverts(&adverts_in(&capture)?, [10, 77, 0, 1], [10, 77, 0, 2], master_down_interval(setting));
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
    Ok(FloodRun { backup, setting, sent, received, raw_drops, false_takeovers: added, timeline, master_lines, log_lines, log_sample, cpu_percent, guard })
}

/// One line of `keepxdp-bench flood`'s table.
pub fn row(run: &FloodRun) -> String {
    format!(
        "| {} | v{} advert_int {} | {:.0} | {:.0} | {} | {} | {:.0} | {:.1} | {} |",
        run.backup.name(),
        run.setting.version,
        run.setting.advert_int,
        run.sent.rate(),
        run.received_rate(),
        run.false_takeovers,
        run.timeline.false_takeovers,
        run.timeline.master_max_gap * 1000.0,
        run.cpu_percent,
        run.raw_drops
    )
}

/// The header of `row`'s table.
pub const TABLE_HEADER: &str = "| Backup (Master: keepalived 2.2.7) | setting | frames/s sent | frames/s received | VIP taken | of which the Master was on time | Master's longest advert gap, ms | Backup CPU % of a core | Backup raw-socket drops |";

/// Per reason: (sent, counted by the guard) over the run.
pub fn drops_by_reason(run: &FloodRun) -> Vec<(Broken, u64, u64)> {
    let stats = run.guard.clone().unwrap_or_default();
    Broken::ALL.iter().map(|kind| (*kind, run.sent.sent_of(*kind), guard_count(&stats, None, kind.guard_reason()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 4] = [10, 77, 0, 1];
    const B: [u8; 4] = [10, 77, 0, 2];

    #[test]
    fn a_takeover_while_the_master_advertises_is_false_and_one_after_its_silence_is_not() {
        let mdi = master_down_interval(V3_30MS);
        assert!((mdi - 0.1083).abs() < 1e-3, "{mdi}");
        let mut adverts: Vec<(f64, [u8; 4])> = (0..10).map(|i| (f64::from(i) * 0.03, M)).collect();
        // The Backup advertises 20 ms after a Master advert: false.
        adverts.push((0.29, B));
        adverts.push((0.32, B)); // the same takeover
        // The Master is silent 200 ms, then the Backup takes over: not false.
        adverts.push((0.47, M));
        adverts.push((0.67, B));
        adverts.push((0.69, M));
        let timeline = judge_adverts(&adverts, M, B, mdi);
        assert_eq!(timeline.false_takeovers, 1);
        assert_eq!(timeline.after_master_gap, 1);
        assert_eq!(timeline.master_adverts, 12);
        assert!((timeline.master_max_gap - 0.22).abs() < 1e-9, "{timeline:?}");
    }
}
