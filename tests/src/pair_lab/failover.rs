//! The failover story both `lab_pair` and the demo tell: under load, the Master dies (kill -9
//! of its keepxdp, its links down), the Backup takes over; then the old Master comes back and
//! preempts. Measured here, judged by the caller.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{
    PairLab,
    load::{Connection, Kind, Load, Report, Request},
    watch::VipWatch,
};

pub struct Failover {
    pub killed: Instant,
    /// When the Backup held every VIP.
    pub took_over: Instant,
    /// When the old Master came back (links up, keepxdp starting).
    pub revived: Instant,
    /// When it was Master again with the VIPs, and the other held none.
    pub preempted: Instant,
    pub load: Report,
}

impl Failover {
    pub fn takeover(&self) -> Duration {
        self.took_over - self.killed
    }

    pub fn preempt(&self) -> Duration {
        self.preempted - self.revived
    }

    /// Does `[start, end]` overlap the takeover window (kill .. VIPs on the Backup)?
    pub fn in_takeover(&self, start: Instant, end: Instant) -> bool {
        start <= self.took_over && end >= self.killed
    }

    /// Requests that failed outside the takeover window.
    pub fn failed_outside(&self) -> Vec<&Request> {
        self.load.failed_requests().into_iter().filter(|r| !self.in_takeover(r.started, r.ended)).collect()
    }

    /// Stalls longer than `limit` beyond what the takeover window explains: a gap outside
    /// the window, or one across it lasting longer than the window + `limit`.
    pub fn stalls(&self, connection: &Connection, limit: Duration) -> Vec<(Duration, Duration)> {
        connection
            .gaps_over(limit)
            .into_iter()
            .filter(|(start, length)| !self.in_takeover(*start, *start + *length) || *length > self.takeover() + limit)
            .map(|(start, length)| (start.saturating_duration_since(self.killed), length))
            .collect()
    }

    /// (opened, surviving) for `kind`.
    pub fn survival(&self, kind: Kind) -> (usize, usize) {
        self.load.survival(kind)
    }
}

/// Steps of the story, for a caller that prints progress.
pub trait Progress {
    fn step(&mut self, text: &str) -> Result<()>;
}

impl Progress for () {
    fn step(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
}

/// Node `master` is Master with traffic flowing: opens `per_kind` connections of each kind
/// and a request stream, kills the Master's host, waits for the other node to take over,
/// lets `settle` pass, revives the old Master, waits for it to preempt, lets `settle` pass
/// again, and stops the load.
pub fn run(lab: &mut PairLab, master: usize, per_kind: usize, settle: Duration, progress: &mut dyn Progress) -> Result<Failover> {
    run_holding(lab, master, per_kind, settle, settle, progress)
}

/// `run`, with the Backup serving alone for `hold` once it is Master, before the old Master
/// comes back (the demo holds longer than a connection may stay silent, so every surviving
/// connection is seen talking through the Backup).
pub fn run_holding(lab: &mut PairLab, master: usize, per_kind: usize, settle: Duration, hold: Duration, progress: &mut dyn Progress) -> Result<Failover> {
    let backup = 1 - master;
    let load = Load::start(&lab.client, per_kind, Some(2000))?;
    progress.step(&format!("{per_kind} echo + {per_kind} stream connections open, new HTTP requests every 25 ms"))?;
    std::thread::sleep(settle);
    let watch = VipWatch::start(&lab.lbs[backup], &lab.variant.vips())?;
    let killed = Instant::now();
    lab.kill_host(master)?;
    progress.step(&format!("lb{}: keepxdp killed (kill -9), links down", master + 1))?;
    let took_over = watch.wait(Duration::from_secs(10))?.with_context(|| format!("lb{} never held the VIPs\n{}", backup + 1, lab.logs()))?;
    progress.step(&format!("lb{} holds the VIPs {} ms after the kill", backup + 1, (took_over - killed).as_millis()))?;
    lab.wait_for_master(backup, Duration::from_secs(5))?;
    std::thread::sleep(hold);
    let revived = Instant::now();
    lab.revive_host(master)?;
    progress.step(&format!("lb{}: links up, keepxdp started again", master + 1))?;
    lab.wait_for_master(master, Duration::from_secs(10))?;
    let preempted = Instant::now();
    progress.step(&format!("lb{} preempted {} ms after it came back", master + 1, (preempted - revived).as_millis()))?;
    std::thread::sleep(settle);
    let load = load.stop()?;
    Ok(Failover { killed, took_over, revived, preempted, load })
}
