//! The kernel side of the data plane: loading, attaching and pinning the XDP programs
//! (aya), writing the guard's maps, and reading its counters. All BPF map effects of the
//! controller go through `GuardMaps`; `guard_entries` (pure) decides what to write.
mod bpffs;
mod dataplane;
mod guard_maps;
mod links;
mod lvs_flows;
mod lvs_maps;
mod lvs_stats;
mod lvs_sync_maps;
mod ring_memory;
mod objects;
mod stats;

pub use bpffs::{BpffsMount, ensure_bpffs};
pub use dataplane::{AttachMode, Attachment, Dataplane, LoadOptions, LvsLimits};
pub use lvs_flows::{FlowEntry, FlowKind, FlowTables, classify, read_flows};
pub use lvs_maps::{LvsMaps, XdpMaps};
pub use lvs_sync_maps::{SyncMaps, Written, XdpSyncMaps, ring_record, sync_ring};
pub use lvs_stats::{BackendRow, FlowInserts, LvsTable, ServiceRow, ServiceStatsRow, add_checkers, format_lvs, read_lvs};
pub use guard_maps::{GuardEntries, GuardInstance, GuardMaps, guard_entries};
pub use objects::{LVS_EBPF, VRRP_EBPF};
pub use stats::{GuardStatRow, format_table, guard_stat_totals, read_guard_stats, rows_from_counts};
