//! How full the flow tables are, and what their LRU evicted: the line `keepxdp lvs` ends
//! with. An LRU table never refuses an insert; when it is full it drops its least recently
//! used entry, and a NAT connection whose entries go loses its translation. keepxdp counts
//! the inserts in the data plane, so evictions are `inserted - entries` (no entry is deleted
//! otherwise).
use crate::bpf::{FlowInserts, FlowTables};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TableFill {
    pub entries: u64,
    pub capacity: u32,
    pub inserted: u64,
    pub evicted: u64,
}

impl TableFill {
    fn of(entries: u64, capacity: u32, inserted: u64) -> TableFill {
        TableFill { entries, capacity, inserted, evicted: inserted.saturating_sub(entries) }
    }
}

/// (lvs_nat, lvs_conntrack).
pub fn fill(inserted: &FlowInserts, flows: &FlowTables) -> (TableFill, TableFill) {
    (
        TableFill::of(flows.nat_entries, flows.nat_capacity, inserted.nat),
        TableFill::of(flows.conntrack_entries, flows.conntrack_capacity, inserted.conntrack),
    )
}

pub fn format_fill(inserted: &FlowInserts, flows: &FlowTables) -> String {
    let (nat, conntrack) = fill(inserted, flows);
    let part = |name: &str, t: TableFill, flag: &str| {
        let full = if t.evicted > 0 { format!(" (full: its LRU dropped state in use; raise {flag})") } else { String::new() };
        format!("{name} {}/{} entries, {} inserted, {} evicted{full}", t.entries, t.capacity, t.inserted, t.evicted)
    };
    format!("flow tables: {}; {}\n", part("lvs_nat", nat, "--nat-entries"), part("lvs_conntrack", conntrack, "--conntrack-entries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evictions_are_the_inserts_the_table_no_longer_holds() {
        let flows = FlowTables { nat_entries: 64, nat_capacity: 64, conntrack_entries: 3, conntrack_capacity: 65536, ..FlowTables::default() };
        let line = format_fill(&FlowInserts { nat: 400, conntrack: 3 }, &flows);
        assert_eq!(
            line,
            "flow tables: lvs_nat 64/64 entries, 400 inserted, 336 evicted (full: its LRU dropped state in use; raise --nat-entries); \
             lvs_conntrack 3/65536 entries, 3 inserted, 0 evicted\n"
        );
        // Adopted entries from an earlier data plane: more entries than this one inserted.
        assert_eq!(fill(&FlowInserts { nat: 2, conntrack: 0 }, &flows).0.evicted, 0);
    }
}
