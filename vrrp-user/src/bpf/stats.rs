//! The guard's counters: read from the pinned per-CPU map (any process can, as bpftool
//! does), summed over CPUs, one row per (interface, family, VRID).
use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::{Context, Result};
use aya::maps::{Map, MapData, PerCpuHashMap};
use serde::Serialize;
use vrrp_common::{
    guard::{FAMILY_IPV4, GuardReason, GuardStatKey},
    pins::MAP_GUARD_STATS,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardStatRow {
    pub ifindex: u32,
    /// The name of `ifindex` in the network namespace of the reading process, if any.
    pub interface: Option<String>,
    pub family: &'static str,
    /// 0 when the packet was too short to carry one.
    pub vrid: u8,
    /// Packets per reason, by `GuardReason::name`.
    pub counts: BTreeMap<&'static str, u64>,
}

impl GuardStatRow {
    pub fn count(&self, reason: GuardReason) -> u64 {
        self.counts.get(reason.name()).copied().unwrap_or(0)
    }
}

/// Groups per-(key) totals into rows, sorted by interface, family, VRID. Every reason
/// appears in every row (0 when never seen) so tables and JSON have a fixed shape.
pub fn rows_from_counts(
    totals: impl IntoIterator<Item = (GuardStatKey, u64)>,
    interface_name: impl Fn(u32) -> Option<String>,
) -> Vec<GuardStatRow> {
    let mut rows: BTreeMap<(u32, u8, u8), GuardStatRow> = BTreeMap::new();
    for (key, total) in totals {
        let Some(reason) = GuardReason::from_u8(key.reason) else { continue };
        let row = rows.entry((key.ifindex, key.family, key.vrid)).or_insert_with(|| GuardStatRow {
            ifindex: key.ifindex,
            interface: interface_name(key.ifindex),
            family: if key.family == FAMILY_IPV4 { "ipv4" } else { "ipv6" },
            vrid: key.vrid,
            counts: GuardReason::ALL.iter().map(|r| (r.name(), 0)).collect(),
        });
        *row.counts.entry(reason.name()).or_default() += total;
    }
    rows.into_values().collect()
}

fn name_of(ifindex: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    let name = unsafe { libc::if_indextoname(ifindex, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(name) };
    Some(name.to_string_lossy().into_owned())
}

/// Totals over CPUs of every row of a `guard_stats` map.
pub fn guard_stat_totals<T: std::borrow::Borrow<MapData>>(
    stats: &PerCpuHashMap<T, GuardStatKey, u64>,
) -> Result<Vec<(GuardStatKey, u64)>> {
    let mut totals = Vec::new();
    for entry in stats.iter() {
        let (key, per_cpu) = entry.context("reading guard_stats")?;
        totals.push((key, per_cpu.iter().sum::<u64>()));
    }
    Ok(totals)
}

/// Reads `<pin_dir>/guard_stats`, as another process (bpftool, `keepxdp guard-stats`) would.
pub fn read_guard_stats(pin_dir: &Path) -> Result<Vec<GuardStatRow>> {
    let path = pin_dir.join(MAP_GUARD_STATS);
    let data = MapData::from_pin(&path).with_context(|| {
        format!("opening {} (is keepxdp running with --pin-dir {}?)", path.display(), pin_dir.display())
    })?;
    let stats: PerCpuHashMap<MapData, GuardStatKey, u64> =
        PerCpuHashMap::try_from(Map::from_map_data(data)?)?;
    Ok(rows_from_counts(guard_stat_totals(&stats)?, name_of))
}

/// A table for people: one row per (interface, family, VRID), one column per reason.
pub fn format_table(rows: &[GuardStatRow]) -> String {
    let mut out = format!("{:<8} {:<16} {:<5} {:>4}", "IFINDEX", "INTERFACE", "FAM", "VRID");
    for reason in GuardReason::ALL {
        let _ = write!(out, " {:>14}", reason.name());
    }
    out.push('\n');
    for row in rows {
        let _ = write!(
            out,
            "{:<8} {:<16} {:<5} {:>4}",
            row.ifindex,
            row.interface.as_deref().unwrap_or("-"),
            row.family,
            row.vrid
        );
        for reason in GuardReason::ALL {
            let _ = write!(out, " {:>14}", row.count(reason));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_common::guard::FAMILY_IPV6;

    #[test]
    fn counters_of_one_vrid_become_one_row_with_every_reason() {
        let rows = rows_from_counts(
            [
                (GuardStatKey::new(2, 51, FAMILY_IPV4, GuardReason::Accepted), 10),
                (GuardStatKey::new(2, 51, FAMILY_IPV4, GuardReason::BadTtl), 3),
                (GuardStatKey::new(2, 52, FAMILY_IPV4, GuardReason::UnknownVrid), 4),
                (GuardStatKey::new(2, 51, FAMILY_IPV6, GuardReason::Accepted), 1),
            ],
            |i| Some(format!("if{i}")),
        );
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].vrid, rows[0].family), (51, "ipv4"));
        assert_eq!(rows[0].count(GuardReason::Accepted), 10);
        assert_eq!(rows[0].count(GuardReason::BadTtl), 3);
        assert_eq!(rows[0].count(GuardReason::ForeignSource), 0);
        assert_eq!(rows[0].counts.len(), GuardReason::ALL.len());
        assert_eq!(rows[1].count(GuardReason::UnknownVrid), 4);
        assert_eq!(rows[2].family, "ipv6");
    }

    #[test]
    fn the_table_has_a_column_per_reason() {
        let rows = rows_from_counts(
            [(GuardStatKey::new(5, 7, FAMILY_IPV4, GuardReason::Truncated), 2)],
            |_| None,
        );
        let table = format_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("accepted") && lines[0].contains("foreign_source"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells, ["5", "-", "ipv4", "7", "0", "0", "0", "0", "2", "0", "0"]);
    }
}
