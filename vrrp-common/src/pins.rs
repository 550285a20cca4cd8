//! Names of maps and programs as the kernel and bpffs show them. Map and program names are
//! at most 15 bytes (BPF_OBJ_NAME_LEN); pins use the same names under the pin directory, so
//! `bpftool map dump pinned /sys/fs/bpf/keepxdp/guard_stats` works.

/// Where `keepxdp run` pins by default; `--pin-dir` overrides it (one per node in a lab).
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/keepxdp";

/// vrrp-ebpf: `VridKey -> VridConfig`.
pub const MAP_VRIDS: &str = "vrids";
/// vrrp-ebpf: `PeerKey -> u8` (presence is what counts).
pub const MAP_PEERS: &str = "vrrp_peers";
/// vrrp-ebpf: per-CPU `GuardStatKey -> u64`.
pub const MAP_GUARD_STATS: &str = "guard_stats";
/// vrrp-ebpf: PROG_ARRAY; slot `LVS_PROG_SLOT` holds the balancer.
pub const MAP_LVS_PROGS: &str = "lvs_progs";
pub const LVS_PROG_SLOT: u32 = 0;
/// lvs-ebpf (stand-in balancer): per-CPU array[1] of packets that reached it.
pub const MAP_LVS_HITS: &str = "lvs_hits";

/// XDP programs.
pub const PROG_VRRP_GUARD: &str = "vrrp_guard";
pub const PROG_LVS_BALANCER: &str = "lvs_balancer";
/// A bare `XDP_PASS`: the baseline in benchmarks, and what lab bridge ports carry so that
/// native XDP_TX frames are delivered to them.
pub const PROG_XDP_PASS: &str = "xdp_pass";

/// Pin file names of programs (maps are pinned under their own names).
pub const PIN_PROG_VRRP_GUARD: &str = "prog_vrrp_guard";
pub const PIN_PROG_LVS_BALANCER: &str = "prog_lvs_balancer";
