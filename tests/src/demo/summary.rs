//! What the demo measured, as the table it prints and the JSON `--json` writes (the demo
//! test reads that back). Pure: every number comes from the story's measurements.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Requests in some stretch of the story: how many were sent, how many failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    pub sent: usize,
    pub failed: usize,
}

impl Requests {
    /// Counts `outcomes` (true = answered).
    pub fn of(outcomes: impl IntoIterator<Item = bool>) -> Requests {
        outcomes.into_iter().fold(Requests::default(), |r, ok| Requests { sent: r.sent + 1, failed: r.failed + usize::from(!ok) })
    }
}

/// Established connections of one kind through the failover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    pub kind: String,
    pub opened: usize,
    /// Still exchanging data after the Backup took over (before the old Master came back).
    pub through_takeover: usize,
    /// Still exchanging data after the old Master preempted, without an error, at the end.
    pub through_preempt: usize,
    /// The longest time any of them went without data (TCP's retransmission backoff across
    /// the takeover; a connection silent for `load::LOST_AFTER` counts as lost).
    pub longest_silence_ms: u64,
}

/// One real server failing and coming back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFailure {
    pub server: String,
    /// Its HTTP stopped → out of the Master's Maglev ring.
    pub removal_ms: u64,
    /// What its HTTP_GET settings allow at most.
    pub removal_bound_ms: u64,
    /// New requests started while it was still in the ring.
    pub before_removal: Requests,
    /// New requests started after it was out.
    pub after_removal: Requests,
    /// Its HTTP started again → back in both nodes' rings.
    pub return_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    pub master: String,
    pub backup: String,
    /// kill -9 of the Master's keepxdp (links down next) → every VIP on the Backup.
    pub takeover_ms: u64,
    /// Master_Down_Interval of the Backup + 200 ms (the VIPs are added after the timer fires).
    pub takeover_bound_ms: u64,
    pub connections: Vec<Connections>,
    /// New requests during the whole failover and preempt.
    pub requests: Requests,
    /// Of those, failed outside the takeover window.
    pub failed_outside_takeover: usize,
    /// The old Master back (links up, keepxdp started) → Master again with the VIPs.
    pub preempt_ms: u64,
}

/// Names and paths of the lab, for `--keep` and for the test's look at what is left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPaths {
    pub pid: u32,
    pub dir: String,
    pub namespaces: Vec<String>,
    /// (node, namespace, control socket, pin dir, config file, log).
    pub nodes: Vec<NodePaths>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePaths {
    pub name: String,
    pub namespace: String,
    pub control_socket: String,
    pub pin_dir: String,
    pub config: String,
    pub log: String,
    pub pid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub variant: String,
    /// Both nodes started → the preferred one Master with the VIPs, the other Backup.
    pub election_ms: u64,
    pub master: String,
    /// Requests sent in the spread step, and who answered them.
    pub requests: usize,
    pub answered_by: BTreeMap<String, u32>,
    pub server_failure: ServerFailure,
    pub failover: Failover,
    /// Demo start → this summary.
    pub wall_ms: u64,
    pub lab: LabPaths,
}

impl Summary {
    /// The table printed at the end of the demo.
    pub fn table(&self) -> String {
        let spread = self.answered_by.iter().map(|(server, n)| format!("{server} {n}")).collect::<Vec<_>>().join(", ");
        let failure = &self.server_failure;
        let failover = &self.failover;
        let mut rows: Vec<[String; 3]> = vec![
            row("election", &format!("{} Master, {} Backup", self.master, failover.backup), format!("{} ms after keepxdp started", self.election_ms)),
            row("spread", &format!("{} HTTP requests", self.requests), spread),
            row(
                "server fails",
                &format!("{}'s HTTP stops: HTTP_GET takes it out", failure.server),
                format!("{} ms (bound {} ms)", failure.removal_ms, failure.removal_bound_ms),
            ),
            row("", "requests while it was in", requests(failure.before_removal)),
            row("", "requests after it was out", requests(failure.after_removal)),
            row("", &format!("{}'s HTTP back: in the rings", failure.server), format!("{} ms", failure.return_ms)),
            row(
                "failover",
                &format!("{} kill -9 + links down: {} holds the VIPs", failover.master, failover.backup),
                format!("{} ms (bound {} ms)", failover.takeover_ms, failover.takeover_bound_ms),
            ),
        ];
        for c in &failover.connections {
            rows.push(row("", &format!("{} connections", c.kind), format!("{}/{} through takeover, {}/{} through preempt, longest silence {} ms", c.through_takeover, c.opened, c.through_preempt, c.opened, c.longest_silence_ms)));
        }
        rows.push(row(
            "",
            "new requests during failover + preempt",
            format!("{}, {} outside the takeover window", requests(failover.requests), failover.failed_outside_takeover),
        ));
        rows.push(row("preempt", &format!("{} back: Master again", failover.master), format!("{} ms after it came back", failover.preempt_ms)));
        rows.push(row("total", "wall time, set-up to this table", format!("{:.1} s", self.wall_ms as f64 / 1000.0)));

        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1) = (width(0), width(1));
        let mut text = format!("{:w0$}  {:w1$}  measured ({})\n", "step", "what", self.variant);
        text.push_str(&format!("{}\n", "-".repeat(w0 + w1 + 4 + width(2).max(10))));
        for [a, b, c] in rows {
            text.push_str(format!("{a:w0$}  {b:w1$}  {c}").trim_end());
            text.push('\n');
        }
        text
    }
}

fn row(step: &str, what: &str, measured: String) -> [String; 3] {
    [step.to_string(), what.to_string(), measured]
}

fn requests(r: Requests) -> String {
    format!("{} sent, {} failed", r.sent, r.failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Summary {
        Summary {
            variant: "DR".into(),
            election_ms: 1234,
            master: "lb1".into(),
            requests: 300,
            answered_by: [("rs1".to_string(), 98), ("rs2".to_string(), 101), ("rs3".to_string(), 101)].into(),
            server_failure: ServerFailure {
                server: "rs2".into(),
                removal_ms: 1520,
                removal_bound_ms: 3000,
                before_removal: Requests { sent: 40, failed: 12 },
                after_removal: Requests { sent: 30, failed: 0 },
                return_ms: 1100,
            },
            failover: Failover {
                master: "lb1".into(),
                backup: "lb2".into(),
                takeover_ms: 959,
                takeover_bound_ms: 1282,
                connections: vec![Connections { kind: "echo".into(), opened: 10, through_takeover: 10, through_preempt: 9, longest_silence_ms: 1783 }],
                requests: Requests { sent: 259, failed: 3 },
                failed_outside_takeover: 0,
                preempt_ms: 2244,
            },
            wall_ms: 38_250,
            lab: LabPaths::default(),
        }
    }

    #[test]
    fn the_table_shows_every_measurement() {
        let table = sample().table();
        for needle in [
            "1234 ms after keepxdp started",
            "rs1 98, rs2 101, rs3 101",
            "1520 ms (bound 3000 ms)",
            "40 sent, 12 failed",
            "30 sent, 0 failed",
            "959 ms (bound 1282 ms)",
            "10/10 through takeover, 9/10 through preempt, longest silence 1783 ms",
            "259 sent, 3 failed, 0 outside",
            "2244 ms after it came back",
            "38.2 s",
            "measured (DR)",
        ] {
            assert!(table.contains(needle), "{needle:?} missing from\n{table}");
        }
        // Aligned: every row's third column starts at the same place.
        let column = table.lines().next().unwrap().find("measured").unwrap();
        assert!(table.lines().skip(2).all(|l| l.len() > column && l.chars().nth(column - 1) == Some(' ')), "{table}");
    }

    #[test]
    fn the_json_reads_back_as_the_same_summary() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), sample());
    }

    #[test]
    fn requests_count_failures() {
        assert_eq!(Requests::of([true, false, true, false, false]), Requests { sent: 5, failed: 3 });
        assert_eq!(Requests::of([]), Requests::default());
    }
}
