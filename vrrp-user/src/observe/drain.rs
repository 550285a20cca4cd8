//! `keepxdp lvs drain ... --wait`: watches a drained real server until no packet has reached
//! it for `quiet` seconds — the moment it can be stopped without cutting a connection that is
//! still in use. Packets are the measure because the data plane keeps no TCP state (DR sees
//! one direction; flow entries live until the LRU evicts them); the flow entries naming it
//! are printed beside them.
use std::{path::Path, time::{Duration, Instant}};

use anyhow::Result;

use crate::{
    bpf::{LvsTable, read_flows, read_lvs},
    ctl::{ControlReply, ControlRequest},
    lvs::DrainTarget,
};

/// The drain watch's decision, fed one reading a second.
#[derive(Debug, Clone)]
pub struct DrainWatch {
    quiet: Duration,
    last_packets: Option<u64>,
    quiet_since: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Since the watch started.
    pub at: Duration,
    /// The real server's packet counter (all matching virtual_servers).
    pub packets: u64,
    /// Flow entries (NAT, changed-slot, persistence) naming it; they stay until the LRU
    /// evicts them, so they are shown, not waited for.
    pub flow_entries: u64,
}

impl DrainWatch {
    pub fn new(quiet: Duration) -> DrainWatch {
        DrainWatch { quiet, last_packets: None, quiet_since: None }
    }

    /// The line to print and whether the real server is drained.
    pub fn feed(&mut self, reading: &Reading) -> (String, bool) {
        let moved = self.last_packets.map(|last| reading.packets.saturating_sub(last));
        self.last_packets = Some(reading.packets);
        match moved {
            Some(0) => {
                self.quiet_since.get_or_insert(reading.at);
            }
            _ => self.quiet_since = None,
        }
        let quiet_for = self.quiet_since.map(|since| reading.at.saturating_sub(since)).unwrap_or_default();
        let done = self.quiet_since.is_some() && quiet_for >= self.quiet;
        let packets = moved.map_or("-".to_string(), |p| p.to_string());
        let line = format!(
            "{:>4}s  packets {packets:>8}  flow entries {:>6}  quiet {:>3}s{}",
            reading.at.as_secs(),
            reading.flow_entries,
            quiet_for.as_secs(),
            if done { "  drained" } else { "" }
        );
        (line, done)
    }
}

/// The packet counter of `target.real` in the virtual_servers `target` names, and its backend
/// indexes.
fn packets_of(table: &LvsTable, target: &DrainTarget) -> (u64, Vec<u32>) {
    let mut packets = 0;
    let mut indexes = Vec::new();
    for service in table.services.iter().filter(|s| s.address == target.service) {
        if let Some(protocol) = target.protocol
            && !service.protocol.eq_ignore_ascii_case(&format!("{protocol:?}"))
        {
            continue;
        }
        for backend in service.backends.iter().filter(|b| b.address == target.real) {
            packets += backend.packets;
            indexes.push(backend.index);
        }
    }
    (packets, indexes)
}

/// Polls the pins every second until drained (true) or `timeout` (false), printing a line
/// per reading.
pub fn watch(pin_dir: &Path, target: DrainTarget, quiet: Duration, timeout: Duration, mut print: impl FnMut(&str)) -> Result<bool> {
    let started = Instant::now();
    let mut decision = DrainWatch::new(quiet);
    loop {
        let table = read_lvs(pin_dir)?;
        let (packets, indexes) = packets_of(&table, &target);
        let flow_entries = read_flows(pin_dir)?.entries.iter().filter(|e| indexes.contains(&e.backend)).count() as u64;
        let (line, done) = decision.feed(&Reading { at: started.elapsed(), packets, flow_entries });
        print(&line);
        if done {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `keepxdp lvs drain|undrain`: asks the running keepxdp, prints what changed, and with
/// `wait` (quiet, timeout) watches the drained real server; false when it did not drain in time.
pub fn command(
    pin_dir: &Path,
    control_socket: &Path,
    target: DrainTarget,
    drained: bool,
    wait: Option<(Duration, Duration)>,
) -> Result<bool> {
    let reply = crate::ctl::request(control_socket, &ControlRequest::Drain { target, drained })?;
    let reply: ControlReply = serde_json::from_str(reply.trim())
        .map_err(|error| anyhow::anyhow!("unexpected reply from keepxdp ({error}): {}", reply.trim()))?;
    if !reply.ok {
        anyhow::bail!("{}", reply.error.unwrap_or_default());
    }
    let verb = if drained { "drained" } else { "undrained" };
    if reply.changed.is_empty() {
        println!("{} was {verb} already", target.real);
    }
    for service in &reply.changed {
        println!("{} {verb} in {service}", target.real);
    }
    let Some((quiet, timeout)) = wait.filter(|_| drained) else { return Ok(true) };
    println!("waiting until no packet has reached {} for {}s (at most {}s)", target.real, quiet.as_secs(), timeout.as_secs());
    let done = watch(pin_dir, target, quiet, timeout, |line| println!("{line}"))?;
    if !done {
        eprintln!("{} still received packets after {}s", target.real, timeout.as_secs());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, packets: u64) -> Reading {
        Reading { at: Duration::from_secs(seconds), packets, flow_entries: 0 }
    }

    #[test]
    fn drained_after_quiet_seconds_without_packets() {
        let mut watch = DrainWatch::new(Duration::from_secs(3));
        let done: Vec<bool> = [at(0, 100), at(1, 150), at(2, 150), at(3, 150), at(4, 150), at(5, 150)]
            .iter()
            .map(|r| watch.feed(r).1)
            .collect();
        // Quiet from t=2 (no packet since t=1): drained at t=5.
        assert_eq!(done, [false, false, false, false, false, true]);
    }

    #[test]
    fn a_packet_restarts_the_quiet_time() {
        let mut watch = DrainWatch::new(Duration::from_secs(2));
        for reading in [at(0, 10), at(1, 10), at(2, 10)] {
            watch.feed(&reading);
        }
        let (line, done) = watch.feed(&at(3, 11));
        assert!(!done && line.contains("quiet   0s"), "{line}");
        assert!(!watch.feed(&at(4, 11)).1);
        assert!(watch.feed(&at(6, 11)).1);
    }
}
