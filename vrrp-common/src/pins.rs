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
/// lvs-ebpf: array of `Service`, open-addressed by `lvs::service_slot_hash`.
pub const MAP_LVS_SERVICES: &str = "lvs_services";
/// lvs-ebpf: array of `Backend`.
pub const MAP_LVS_BACKENDS: &str = "lvs_backends";
/// lvs-ebpf: array of ring slots (`lvs::ring_slot`), one range per service.
pub const MAP_LVS_MAGLEV: &str = "lvs_maglev";
/// lvs-ebpf: array of u32 `VIP_MASTER`/`VIP_BACKUP`, indexed by `Service::vip_index`.
pub const MAP_VIP_STATE: &str = "vip_state";
/// lvs-ebpf: LRU `FlowKey -> Flow`.
pub const MAP_LVS_CONNTRACK: &str = "lvs_conntrack";
/// lvs-ebpf: shared LRU `FlowKey (reply) -> NatReverse`.
pub const MAP_LVS_NAT: &str = "lvs_nat";
/// lvs-ebpf: hash `RealServerKey -> RealServerVip` (stateless reverse NAT).
pub const MAP_LVS_NAT_RS: &str = "lvs_nat_rs";
/// lvs-ebpf: ring buffer of `SyncRecord` (new NAT flows for the sync daemon).
pub const MAP_LVS_SYNC_RING: &str = "lvs_sync_ring";
/// lvs-ebpf: array[1] of `LvsConfig`.
pub const MAP_LVS_CONFIG: &str = "lvs_config";
/// lvs-ebpf: per-CPU arrays of `BackendStats` / `ServiceStats`; per-CPU u64 by `LvsReason`.
pub const MAP_LVS_BACKEND_STATS: &str = "lvs_be_stats";
pub const MAP_LVS_SERVICE_STATS: &str = "lvs_svc_stats";
pub const MAP_LVS_DROPS: &str = "lvs_drops";

/// XDP programs.
pub const PROG_VRRP_GUARD: &str = "vrrp_guard";
pub const PROG_LVS_BALANCER: &str = "lvs_balancer";
/// A bare `XDP_PASS`: the baseline in benchmarks, and what lab bridge ports carry so that
/// native XDP_TX frames are delivered to them.
pub const PROG_XDP_PASS: &str = "xdp_pass";

/// Pin file names of programs (maps are pinned under their own names).
pub const PIN_PROG_VRRP_GUARD: &str = "prog_vrrp_guard";
pub const PIN_PROG_LVS_BALANCER: &str = "prog_lvs_balancer";
