//! `keepxdp lvs` and its ipvsadm-style views: reads the pins (and the control socket for
//! checker states) and prints.
use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;
use serde_json::Value;

use super::{agree::disagreements, connections, rates};
use crate::{
    bpf::{LvsTable, add_checkers, format_lvs, read_flows, read_lvs},
    ctl::read_status,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvsView {
    /// Counters, `ipvsadm -Ln --stats`.
    Stats,
    /// Per-second rates over an interval, `ipvsadm -Ln --rate`.
    Rate(Duration),
    /// The connection list, `ipvsadm -Lcn`.
    Connections,
}

/// Reads the status and the maps until the data plane agrees with the checkers (at most
/// ~1.5 s: the status is refreshed every 200 ms); what still disagrees is returned to print.
pub fn read_agreeing(pin_dir: &Path, control_socket: &Path) -> Result<(LvsTable, Vec<String>)> {
    let mut attempts = 0;
    loop {
        let status = read_status(control_socket).ok().and_then(|document| serde_json::from_str::<Value>(&document).ok());
        let mut table = read_lvs(pin_dir)?;
        let Some(status) = status else { return Ok((table, Vec::new())) };
        add_checkers(&mut table, &status);
        let differ = disagreements(&table, &status);
        attempts += 1;
        if differ.is_empty() || attempts == 15 {
            return Ok((table, differ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The coarse monotonic clock in seconds: what the data plane stamps flows with
/// (`bpf_ktime_get_coarse_ns`).
pub fn coarse_seconds() -> u32 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u32
}

pub fn lvs(pin_dir: &Path, control_socket: &Path, view: LvsView, json: bool) -> Result<String> {
    Ok(match view {
        LvsView::Stats => {
            let (table, differ) = read_agreeing(pin_dir, control_socket)?;
            if json {
                serde_json::to_string_pretty(&table)? + "\n"
            } else {
                let mut out = format_lvs(&table);
                if let Ok(flows) = read_flows(pin_dir) {
                    out.push_str(&super::tables::format_fill(&table.inserted, &flows));
                }
                for line in differ {
                    out.push_str(&format!("changing: {line}\n"));
                }
                out
            }
        }
        LvsView::Rate(interval) => {
            let before = read_lvs(pin_dir)?;
            let start = Instant::now();
            std::thread::sleep(interval);
            let after = read_lvs(pin_dir)?;
            let rates = rates::rates(&before, &after, start.elapsed());
            if json { serde_json::to_string_pretty(&rates)? + "\n" } else { rates::format_rates(&rates) }
        }
        LvsView::Connections => {
            let table = read_lvs(pin_dir)?;
            let flows = read_flows(pin_dir)?;
            let rows = connections::connection_rows(&flows, &table, coarse_seconds());
            if json {
                serde_json::to_string_pretty(&serde_json::json!({"connections": rows, "conntrack_entries": flows.conntrack_entries,
                    "conntrack_capacity": flows.conntrack_capacity, "nat_entries": flows.nat_entries, "nat_capacity": flows.nat_capacity,
                    "nat_replies": flows.nat_replies}))? + "\n"
            } else {
                connections::format_connections(&rows, &flows)
            }
        }
    })
}
