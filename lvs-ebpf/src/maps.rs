//! Every map of the balancer, with its size and why (types and limits: vrrp_common::lvs).
//! Sizes marked "configurable" are defaults the controller overrides at load time.
use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use vrrp_common::lvs::{
    Backend, BackendStats, DEFAULT_CONNTRACK_ENTRIES, DEFAULT_MAGLEV_SIZE, DEFAULT_MAX_SERVICES,
    DEFAULT_NAT_ENTRIES, Flow, FlowKey, LVS_REASONS, LvsConfig, MAX_BACKENDS, MAX_VIPS, NAT_RS_ENTRIES, NatReverse,
    RealServerKey, RealServerVip, SERVICE_SLOTS, SYNC_RING_BYTES, Service, ServiceStats,
};

/// (VIP, port, proto) → service, open-addressed: an inlined array lookup per probe.
#[map(name = "lvs_services")]
pub static SERVICES: Array<Service> = Array::with_max_entries(SERVICE_SLOTS, 0);

/// Backend index → address, port, MACs, egress, flags.
#[map(name = "lvs_backends")]
pub static BACKENDS: Array<Backend> = Array::with_max_entries(MAX_BACKENDS, 0);

/// Every service's Maglev ring, one range per service (configurable: max services × ring).
/// Memory-mapped by the controller (BPF_F_MMAPABLE): a ring rebuild is a memory write, not
/// 65537 syscalls.
#[map(name = "lvs_maglev")]
pub static MAGLEV: Array<u32> =
    Array::with_max_entries(DEFAULT_MAX_SERVICES * DEFAULT_MAGLEV_SIZE, BPF_F_MMAPABLE);

/// VIP index → VIP_MASTER / VIP_BACKUP, written from VRRP state changes.
#[map(name = "vip_state")]
pub static VIP_STATE: Array<u32> = Array::with_max_entries(MAX_VIPS, 0);

/// Flows that must stay put: persistence, and flows on ring slots that changed.
/// Shared, not per-CPU: a per-CPU table loses a flow whose packets are handled on another CPU
/// than its SYN (veths follow the sender's CPU; NICs without symmetric RSS do it too), and
/// then the second-chance rule would send it to the slot's previous backend. Only stateful
/// packets pay for it; the fast path does not touch this map.
#[map(name = "lvs_conntrack")]
pub static CONNTRACK: LruHashMap<FlowKey, Flow> = LruHashMap::with_max_entries(DEFAULT_CONNTRACK_ENTRIES, 0);

/// NAT replies (real server → client) → what to write back. Shared (configurable): a reply
/// may arrive on another CPU than its request.
#[map(name = "lvs_nat")]
pub static NAT: LruHashMap<FlowKey, NatReverse> = LruHashMap::with_max_entries(DEFAULT_NAT_ENTRIES, 0);

/// NAT real server address:port → the one service it belongs to (written by the controller,
/// ambiguous ones left out): replies with no `lvs_nat` state are translated back from it.
#[map(name = "lvs_nat_rs")]
pub static NAT_RS: HashMap<RealServerKey, RealServerVip> = HashMap::with_max_entries(NAT_RS_ENTRIES, 0);

/// New NAT flows for the sync daemon (`SyncRecord`), written only when `LvsConfig::sync` is on.
/// Output never waits: a full ring drops the record, counted `sync_ring_full`.
#[map(name = "lvs_sync_ring")]
pub static SYNC_RING: RingBuf = RingBuf::with_byte_size(SYNC_RING_BYTES, 0);

#[map(name = "lvs_config")]
pub static CONFIG: Array<LvsConfig> = Array::with_max_entries(1, 0);

#[map(name = "lvs_be_stats")]
pub static BACKEND_STATS: PerCpuArray<BackendStats> = PerCpuArray::with_max_entries(MAX_BACKENDS, 0);

#[map(name = "lvs_svc_stats")]
pub static SERVICE_STATS: PerCpuArray<ServiceStats> = PerCpuArray::with_max_entries(DEFAULT_MAX_SERVICES, 0);

/// Per-CPU counts by `LvsReason`.
#[map(name = "lvs_drops")]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LVS_REASONS, 0);
