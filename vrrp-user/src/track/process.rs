//! vrrp_track_process by scanning /proc: how many processes match, against the quorum.
use std::{path::Path, time::Duration};

use tokio::sync::watch;

use super::priority::Reading;
use crate::config::model::TrackProcess;

/// How often /proc is scanned (keepalived reacts to the proc connector; a scan is enough
/// for an edge node's handful of tracked processes).
pub const SCAN_INTERVAL: Duration = Duration::from_millis(500);

/// Does a process with this command line match? keepalived's rules: the name is compared
/// with the process name (comm) or its argv[0] (as written or its file name); `param_match`
/// compares the remaining arguments: exact (default when parameters are given), initial
/// (they start with ours), partial (ours appear in them).
pub fn matches(track: &TrackProcess, comm: &str, argv: &[String]) -> bool {
    let Some(name) = track.process.as_deref() else { return false };
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let base = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name != comm && name != program && name != base {
        return false;
    }
    let Some(wanted) = track.parameters.as_deref() else { return true };
    let actual = argv.get(1..).unwrap_or_default().join(" ");
    match track.param_match.as_deref() {
        Some("initial") => actual.starts_with(wanted),
        Some("partial") => actual.contains(wanted),
        _ => actual == wanted,
    }
}

/// Matching processes now.
pub fn count(track: &TrackProcess) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let argv: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            matches(track, comm.trim_end(), &argv)
        })
        .count()
}

/// Up while `quorum <= count <= quorum_max`.
pub fn reading(track: &TrackProcess, count: usize) -> Reading {
    let enough = count >= track.quorum as usize;
    let not_too_many = track.quorum_max.is_none_or(|max| count <= max as usize);
    if enough && not_too_many { Reading::Up } else { Reading::Down }
}

pub async fn run(track: TrackProcess, out: watch::Sender<Reading>) {
    let mut ticker = tokio::time::interval(SCAN_INTERVAL);
    loop {
        ticker.tick().await;
        let now = reading(&track, count(&track));
        if out.send_if_modified(|old| std::mem::replace(old, now) != now) {
            tracing::info!(track_process = track.name, ?now, "tracked process changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(process: &str, parameters: Option<&str>, param_match: Option<&str>) -> TrackProcess {
        TrackProcess {
            process: Some(process.into()),
            parameters: parameters.map(String::from),
            param_match: param_match.map(String::from),
            ..TrackProcess::new("t".into(), String::new())
        }
    }

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn names_match_comm_argv0_or_its_file_name() {
        assert!(matches(&track("nginx", None, None), "nginx", &argv("nginx: master")));
        assert!(matches(&track("haproxy", None, None), "haproxy", &argv("/usr/sbin/haproxy -f x")));
        assert!(matches(&track("/usr/sbin/haproxy", None, None), "haproxy", &argv("/usr/sbin/haproxy -f x")));
        assert!(!matches(&track("nginx", None, None), "bash", &argv("bash")));
    }

    #[test]
    fn parameters_match_exactly_initially_or_partially() {
        let line = argv("/usr/sbin/haproxy -f /etc/haproxy.cfg -D");
        assert!(matches(&track("haproxy", Some("-f /etc/haproxy.cfg -D"), None), "haproxy", &line));
        assert!(!matches(&track("haproxy", Some("-f /etc/haproxy.cfg"), None), "haproxy", &line));
        assert!(matches(&track("haproxy", Some("-f /etc/haproxy.cfg"), Some("initial")), "haproxy", &line));
        assert!(matches(&track("haproxy", Some("haproxy.cfg"), Some("partial")), "haproxy", &line));
    }

    #[test]
    fn quorum_and_quorum_max_bound_the_count() {
        let mut t = track("x", None, None);
        t.quorum = 2;
        t.quorum_max = Some(3);
        assert_eq!(reading(&t, 1), Reading::Down);
        assert_eq!(reading(&t, 2), Reading::Up);
        assert_eq!(reading(&t, 4), Reading::Down);
    }

    #[test]
    fn this_test_process_is_found_in_proc() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(count(&track(me.trim_end(), None, None)) >= 1);
    }
}
