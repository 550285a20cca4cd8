//! What each checker last found, for `keepxdp status`: its declared state, the last probe's
//! error and latency, how often it flipped and when it last did. Checker tasks write to a
//! shared `CheckerBoard`; the daemon reads a copy of it into the status document.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// One checker of one real server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerStatus {
    /// As logs name it, e.g. `TCP_CHECK at keepalived.conf:12`.
    pub name: String,
    /// The declared state (after retries), not the last probe's.
    pub up: bool,
    /// The last failed probe's reason (kept after the checker recovers).
    pub last_error: Option<String>,
    /// How long the last probe took; None before the first.
    pub latency_ms: Option<f64>,
    /// Declared up/down changes since the checker started.
    pub flips: u64,
    /// When it last flipped, in seconds since the Unix epoch.
    pub last_flip: Option<u64>,
    /// Every probe's duration, for the metrics' histogram.
    pub latency_histogram: LatencyHistogram,
}

/// Upper bounds of the probe latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Probe durations: how many fell at or under each of `LATENCY_BUCKETS` (not cumulative;
/// longer ones only in `count`), their sum and count.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LatencyHistogram {
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

impl CheckerStatus {
    pub fn new(name: impl Into<String>, up: bool) -> CheckerStatus {
        CheckerStatus {
            name: name.into(),
            up,
            last_error: None,
            latency_ms: None,
            flips: 0,
            last_flip: None,
            latency_histogram: LatencyHistogram::default(),
        }
    }

    /// One probe: the checker's declared state after it, the probe's error (None when it
    /// succeeded), how long it took, and the time now.
    pub fn record(&mut self, up: bool, error: Option<&str>, latency: Duration, now: SystemTime) {
        if up != self.up {
            self.up = up;
            self.flips += 1;
            self.last_flip = Some(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        }
        if let Some(error) = error {
            self.last_error = Some(error.to_string());
        }
        self.latency_ms = Some(latency.as_secs_f64() * 1000.0);
        self.latency_histogram.observe(latency.as_secs_f64());
    }
}

/// (service name, real server name) → its checkers, in configuration order.
pub type CheckerKey = (String, String);

/// The shared picture of every checker; cheap to clone (one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct CheckerBoard(Arc<Mutex<BTreeMap<CheckerKey, Vec<CheckerStatus>>>>);

impl CheckerBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CheckerKey, Vec<CheckerStatus>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a checker in its starting state; returns its index among the real server's.
    pub fn register(&self, service: &str, real: &str, name: &str, up: bool) -> usize {
        let mut board = self.lock();
        let checkers = board
            .entry((service.to_string(), real.to_string()))
            .or_default();
        checkers.push(CheckerStatus::new(name, up));
        checkers.len() - 1
    }

    pub fn record(
        &self,
        service: &str,
        real: &str,
        index: usize,
        up: bool,
        error: Option<&str>,
        latency: Duration,
    ) {
        let mut board = self.lock();
        if let Some(checker) = board
            .get_mut(&(service.to_string(), real.to_string()))
            .and_then(|c| c.get_mut(index))
        {
            checker.record(up, error, latency, SystemTime::now());
        }
    }

    /// Forgets one real server's checkers (stopped, or about to restart).
    pub fn remove(&self, service: &str, real: &str) {
        self.lock().remove(&(service.to_string(), real.to_string()));
    }

    /// A copy of one real server's checkers (empty when it has none).
    pub fn checkers(&self, service: &str, real: &str) -> Vec<CheckerStatus> {
        self.lock()
            .get(&(service.to_string(), real.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> BTreeMap<CheckerKey, Vec<CheckerStatus>> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_checker_counts_flips_and_keeps_its_last_error() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut status = CheckerStatus::new("TCP_CHECK", true);
        status.record(true, None, 3 * MS, at);
        assert_eq!(
            (status.flips, status.last_flip, status.latency_ms),
            (0, None, Some(3.0))
        );
        status.record(true, Some("connection refused"), 2 * MS, at);
        assert_eq!(
            (status.up, status.flips),
            (true, 0),
            "a failed retry is not a flip"
        );
        status.record(false, Some("timed out"), 5000 * MS, at);
        assert_eq!(
            (status.up, status.flips, status.last_flip),
            (false, 1, Some(1_700_000_000))
        );
        status.record(true, None, MS, at + Duration::from_secs(60));
        assert_eq!(
            (status.up, status.flips, status.last_flip),
            (true, 2, Some(1_700_000_060))
        );
        assert_eq!(
            status.last_error.as_deref(),
            Some("timed out"),
            "kept after recovery"
        );
        assert_eq!(status.latency_ms, Some(1.0));
        let histogram = &status.latency_histogram;
        assert_eq!(histogram.buckets, [1, 1, 1, 0, 0, 0, 0, 0, 0, 1], "1, 2, 3 ms and 5 s");
        assert_eq!(histogram.count, 4);
        assert!((histogram.sum_seconds - 5.006).abs() < 1e-9);
    }

    #[test]
    fn the_board_is_shared_between_clones_and_snapshots_are_copies() {
        let board = CheckerBoard::default();
        let writer = board.clone();
        assert_eq!(
            writer.register("10.0.0.1:80", "10.0.1.1:80", "TCP_CHECK", true),
            0
        );
        assert_eq!(
            writer.register("10.0.0.1:80", "10.0.1.1:80", "HTTP_GET", false),
            1
        );
        writer.record("10.0.0.1:80", "10.0.1.1:80", 1, true, None, 7 * MS);
        writer.record("10.0.0.1:80", "nobody", 0, false, Some("ignored"), MS);
        let snapshot = board.snapshot();
        writer.record("10.0.0.1:80", "10.0.1.1:80", 0, false, Some("refused"), MS);
        let checkers = &snapshot[&("10.0.0.1:80".to_string(), "10.0.1.1:80".to_string())];
        assert_eq!(checkers.len(), 2);
        assert!(checkers[0].up, "the snapshot does not see later writes");
        assert_eq!(
            (checkers[1].up, checkers[1].flips, checkers[1].latency_ms),
            (true, 1, Some(7.0))
        );
        assert!(!board.checkers("10.0.0.1:80", "10.0.1.1:80")[0].up);
        assert!(board.checkers("10.0.0.1:80", "nobody").is_empty());
    }
}
