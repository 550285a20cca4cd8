//! The balancer's maps (lvs-ebpf): every key, value and limit, in one place (Katran's
//! `balancer_structs.h` + `balancer_consts.h`). The controller writes services, backends,
//! Maglev rings and VIP state; the XDP program reads them and writes conntrack and counters.
//!
//! The fast path is built from array lookups (which the verifier inlines) instead of hash
//! lookups: services sit in an open-addressed array indexed by `service_slot_hash`, a
//! service's Maglev ring is a range of one big array, backends are array slots. Only flows
//! that need state (NAT, persistence, and flows on ring slots that changed) touch a hash map.

/// Open-addressed service table: `SERVICE_SLOTS` entries, a key lives in one of the
/// `SERVICE_PROBES` slots following its hash (the controller refuses a key that finds none).
pub const SERVICE_SLOTS: u32 = 1 << SERVICE_SLOT_BITS;
pub const SERVICE_SLOT_BITS: u32 = 12;
pub const SERVICE_PROBES: u32 = 4;
/// Dense service indexes (rings and counters): the default; `--max-services` changes it.
pub const DEFAULT_MAX_SERVICES: u32 = 128;
/// Maglev ring size per service (prime); `--maglev-size` changes it.
pub const DEFAULT_MAGLEV_SIZE: u32 = 65537;
/// Backend slots; index `NO_BACKEND` means none (ring slots are u16 halves).
pub const MAX_BACKENDS: u32 = 65535;
pub const NO_BACKEND: u32 = 0xffff;
/// VIPs whose Master state gates forwarding.
pub const MAX_VIPS: u32 = 1024;
/// Conntrack entries (DR/TUN flows on changed ring slots, persistence).
pub const DEFAULT_CONNTRACK_ENTRIES: u32 = 65536;
/// Shared NAT reverse entries (replies may arrive on any CPU).
pub const DEFAULT_NAT_ENTRIES: u32 = 262144;

/// `Service::flags`: forwarding method in the low bits.
pub const FWD_MASK: u32 = 0x3;
pub const FWD_DR: u32 = 1;
pub const FWD_NAT: u32 = 2;
pub const FWD_TUN: u32 = 3;
/// Source-address affinity (`persistence_timeout`): source-only hash plus state with a timeout.
pub const SERVICE_PERSISTENT: u32 = 0x4;
/// Source-only hash without state (IPVS `sh`).
pub const SERVICE_SOURCE_HASH: u32 = 0x8;

/// `Backend::flags`.
pub const BACKEND_ALIVE: u8 = 0x1;
/// `mac`, `src_mac` and `ifindex` are known (controller's neighbour table or a FIB lookup).
pub const BACKEND_RESOLVED: u8 = 0x2;

/// `vip_state` values.
pub const VIP_BACKUP: u32 = 0;
pub const VIP_MASTER: u32 = 1;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;

/// Value of `lvs_services` (array of `SERVICE_SLOTS`). `family` 0 marks an empty slot.
/// Addresses are in network order, IPv4 in the first 4 bytes; `port` is network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Service {
    pub addr: [u8; 16],
    pub port: u16,
    pub proto: u8,
    pub family: u8,
    /// Dense index: per-service counters.
    pub index: u32,
    /// This service's ring is `lvs_maglev[ring_base .. ring_base + ring_size]`.
    pub ring_base: u32,
    pub ring_size: u32,
    /// Slot in `vip_state`.
    pub vip_index: u32,
    /// `FWD_*` | `SERVICE_PERSISTENT` | `SERVICE_SOURCE_HASH`.
    pub flags: u32,
    pub persistence_seconds: u32,
    /// Backend used when the ring is empty (`sorry_server`), or `NO_BACKEND`.
    pub sorry_backend: u32,
}

impl Service {
    /// `port`, `proto` and `family` as the one word they occupy (offset 16): the XDP program
    /// matches a service with one comparison of it plus the address.
    #[inline(always)]
    pub const fn match_word(&self) -> u32 {
        match_word(self.port, self.proto, self.family)
    }
}

/// The `Service::match_word` of a packet's (port, proto, family).
#[inline(always)]
pub const fn match_word(port: u16, proto: u8, family: u8) -> u32 {
    u32::from_ne_bytes([port.to_ne_bytes()[0], port.to_ne_bytes()[1], proto, family])
}

/// Value of `lvs_backends` (array of `MAX_BACKENDS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backend {
    pub addr: [u8; 16],
    /// Network order; NAT rewrites the destination port to it.
    pub port: u16,
    pub family: u8,
    /// `BACKEND_*`.
    pub flags: u8,
    /// Dense index of the owning service: a conntrack entry naming a backend of another
    /// service (a reused slot) is not trusted.
    pub service: u32,
    /// Configured weight (the ring carries the shares; this is for operators and `keepxdp lvs`).
    pub weight: u32,
    /// Egress interface toward the backend (0: the ingress interface).
    pub ifindex: u32,
    /// Next hop's MAC.
    pub mac: [u8; 6],
    /// Our MAC on `ifindex`.
    pub src_mac: [u8; 6],
}

/// A Maglev ring slot: `current | previous << 16`. `previous == current` means the slot has
/// never changed: flows on it need no state. After a change `previous` is the backend the
/// slot had before, so a mid-flow packet with no conntrack entry goes back there (second
/// chance) while new connections (TCP SYN) take `current`.
#[inline(always)]
pub const fn ring_slot(current: u32, previous: u32) -> u32 {
    (current & 0xffff) | (previous << 16)
}
#[inline(always)]
pub const fn ring_current(slot: u32) -> u32 {
    slot & 0xffff
}
#[inline(always)]
pub const fn ring_previous(slot: u32) -> u32 {
    slot >> 16
}

/// Key of `lvs_conntrack` and `lvs_nat` (both shared LRU hashes): a flow as seen on the
/// wire. Persistence entries have `src_port` 0 and `flags` `FLOW_PERSISTENCE`. Addresses are
/// words holding the wire bytes (`addr_words`): the XDP program loads them whole.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowKey {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub family: u8,
    pub flags: u16,
}
pub const FLOW_PERSISTENCE: u16 = 1;
pub const FLOW_NAT_FORWARD: u16 = 2;

/// Value of `lvs_conntrack`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flow {
    pub backend: u32,
    /// Coarse seconds (boot clock) of the last packet: persistence timeouts.
    pub last_seen: u32,
}

/// Value of `lvs_nat`. Keyed by the reply's 5-tuple (real server → client): what to write
/// back, and where the client's frames came from (so replies need no FIB lookup). Keyed by
/// the request's 5-tuple with `FLOW_NAT_FORWARD`: the flow's backend. Both directions live in
/// one shared LRU so an active flow keeps both entries recent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatReverse {
    pub vip: [u8; 16],
    pub vip_port: u16,
    pub family: u8,
    /// `NAT_ROUTE_BY_FIB` (reply entries installed by the sync daemon).
    pub flags: u8,
    /// The client side's interface; 0 (or `NAT_ROUTE_BY_FIB`): the reply is routed by
    /// `bpf_fib_lookup` (an entry another node made names its interfaces and MACs, not ours).
    pub ifindex: u32,
    /// Coarse seconds of the last packet (forward entries of persistent services).
    pub last_seen: u32,
    /// The client side's next hop (the frame's source MAC).
    pub client_mac: [u8; 6],
    /// Our MAC on that side (the frame's destination MAC).
    pub our_mac: [u8; 6],
    pub service: u32,
    pub backend: u32,
}

/// `NatReverse::flags`: route the reply by a FIB lookup instead of `ifindex` and the MACs.
pub const NAT_ROUTE_BY_FIB: u8 = 1;

/// Key of `lvs_nat_rs` (stateless reverse translation): a NAT real server as its replies
/// show it on the wire (address words as `FlowKey`, port in network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct RealServerKey {
    pub addr: [u32; 4],
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

/// Value of `lvs_nat_rs`: the one NAT service that real server address:port belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RealServerVip {
    pub vip: [u8; 16],
    pub vip_port: u16,
    pub family: u8,
    pub _pad: u8,
    pub service: u32,
    /// Slot in `vip_state`: translated only while this node is Master for the VIP.
    pub vip_index: u32,
}

/// Entries of `lvs_nat_rs`: one per real server address:port.
pub const NAT_RS_ENTRIES: u32 = MAX_BACKENDS;

/// A new NAT flow, as the balancer reports it to the sync daemon (`lvs_sync_ring`): the
/// request as the client sent it (`src`/`dst` words as in `FlowKey`, ports in network
/// order) and the real server it was given (address bytes, port in network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyncRecord {
    pub client: [u32; 4],
    pub vip: [u32; 4],
    pub backend: [u8; 16],
    pub client_port: u16,
    pub vip_port: u16,
    pub backend_port: u16,
    pub proto: u8,
    pub family: u8,
}

/// Bytes of `lvs_sync_ring` (a power of two, a multiple of the page size): 16,384 records
/// of 56 bytes plus the ring's 8-byte headers.
pub const SYNC_RING_BYTES: u32 = 1 << 20;

/// Value of `lvs_config[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LvsConfig {
    /// Non-zero when some service is NAT: frames that match no service are looked up in
    /// `lvs_nat` (replies to reverse-translate).
    pub nat_services: u32,
    /// Outer source addresses of TUN (IPIP / IPv6-in-IPv6) packets.
    pub tun_src4: [u8; 4],
    pub tun_src6: [u8; 16],
    /// Non-zero when `lvs_sync_daemon` is configured: new NAT flows are reported in
    /// `lvs_sync_ring`.
    pub sync: u32,
}

/// Per-backend per-CPU counters (`lvs_backend_stats[backend]`). A service's packets and
/// bytes are the sums over its backends.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BackendStats {
    pub packets: u64,
    pub bytes: u64,
    /// TCP SYNs and conntrack inserts.
    pub new_flows: u64,
}

/// Per-service per-CPU counters (`lvs_service_stats[index]`): the packets it did not forward.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServiceStats {
    /// Ring empty and no sorry server: dropped.
    pub no_backend: u64,
    /// Backend's MAC unknown and the FIB had no neighbour: passed to the stack to resolve it.
    pub unresolved: u64,
    /// This node is not Master for the VIP: passed.
    pub not_master: u64,
    /// L4 header truncated: dropped.
    pub malformed: u64,
    /// Frame did not fit the TUN encapsulation (adjust_head failed): dropped.
    pub encap_failed: u64,
    /// Forwarded to the sorry server.
    pub sorry: u64,
}

/// Index of `lvs_drops` (per-CPU u64): frames the balancer handed to the stack or dropped
/// before any service matched.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LvsReason {
    /// IPv4 header with options: passed to the stack.
    IpOptions = 0,
    /// IPv4 fragment: passed.
    Fragment = 1,
    /// Ethernet/IP header shorter than it says: passed (the stack drops it).
    Truncated = 2,
    /// IPv6 with an extension header before L4: passed.
    Ipv6Extension = 3,
    /// A NAT reply translated back to the VIP.
    NatReverse = 4,
    /// A NAT reply with no state translated back by its real server's one service
    /// (`lvs_nat_rs`) and routed by the FIB.
    NatStateless = 5,
    /// A reply to route by the FIB (stateless, or a synced entry) that the FIB said is for
    /// this host, or could not route: passed unchanged.
    NatFibPassed = 6,
    /// A new NAT flow the sync ring had no room for: not synced.
    SyncRingFull = 7,
    /// Entries written to `lvs_nat` (a connection's forward and reply entries, templates).
    /// Not frames: with the map's fill, what the LRU evicted (`inserted - entries`).
    NatInserted = 8,
    /// Entries written to `lvs_conntrack` (changed-slot flows, templates).
    ConntrackInserted = 9,
}
pub const LVS_REASONS: u32 = 10;

impl LvsReason {
    pub const ALL: [LvsReason; 10] = [
        LvsReason::IpOptions,
        LvsReason::Fragment,
        LvsReason::Truncated,
        LvsReason::Ipv6Extension,
        LvsReason::NatReverse,
        LvsReason::NatStateless,
        LvsReason::NatFibPassed,
        LvsReason::SyncRingFull,
        LvsReason::NatInserted,
        LvsReason::ConntrackInserted,
    ];
    /// The reasons that count frames before any service (not table inserts).
    pub const fn counts_frames(self) -> bool {
        !matches!(self, LvsReason::NatInserted | LvsReason::ConntrackInserted)
    }
    pub const fn name(self) -> &'static str {
        match self {
            LvsReason::IpOptions => "ip_options",
            LvsReason::Fragment => "fragment",
            LvsReason::Truncated => "truncated",
            LvsReason::Ipv6Extension => "ipv6_extension",
            LvsReason::NatReverse => "nat_reverse",
            LvsReason::NatStateless => "nat_stateless",
            LvsReason::NatFibPassed => "nat_fib_passed",
            LvsReason::SyncRingFull => "sync_ring_full",
            LvsReason::NatInserted => "nat_inserted",
            LvsReason::ConntrackInserted => "conntrack_inserted",
        }
    }
}

/// murmur3's finalizer: every input bit reaches every output bit (ring slots and service
/// slots are taken from the hash's value range).
#[inline(always)]
pub const fn hash_finish(hash: u32) -> u32 {
    let mut h = hash;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Maps a hash onto `0..size` by multiplication (Lemire's reduction) instead of a division.
#[inline(always)]
pub const fn reduce(hash: u32, size: u32) -> u32 {
    ((hash as u64 * size as u64) >> 32) as u32
}

/// An address's wire bytes as four words (IPv4: one word, then zeros), the form the XDP
/// program reads from packets and hashes.
#[inline(always)]
pub const fn addr_words(addr: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([addr[0], addr[1], addr[2], addr[3]]),
        u32::from_ne_bytes([addr[4], addr[5], addr[6], addr[7]]),
        u32::from_ne_bytes([addr[8], addr[9], addr[10], addr[11]]),
        u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]),
    ]
}

/// Where a service key starts probing in `lvs_services`. Both sides use this function;
/// `port` is the wire-order value (`u16::from_ne_bytes` of the header bytes, `port.to_be()`).
///
/// The per-packet hashes are built from independent multiplies summed, then mixed: on the
/// CPU the multiplies run side by side instead of as one dependent chain (a chain of eight
/// multiplies was ~10 ns of the ~15 ns the fast path cost).
#[inline(always)]
pub const fn service_slot_hash_words(addr: &[u32; 4], port: u16, proto: u8, ipv6: bool) -> u32 {
    let mut h = addr[0].wrapping_mul(0x9e37_79b1) ^ ((port as u32) << 8 | proto as u32).wrapping_mul(0x85eb_ca6b);
    if ipv6 {
        h ^= addr[1].wrapping_mul(0xc2b2_ae35) ^ addr[2].wrapping_mul(0x27d4_eb2f) ^ addr[3].wrapping_mul(0x1656_67b1);
    }
    // Multiplicative hashing: the top bits of a product are the well-mixed ones.
    (h ^ (h >> 15)).wrapping_mul(0x2c1b_3c6d) >> (32 - SERVICE_SLOT_BITS)
}

/// `service_slot_hash_words` of an address's bytes (the controller's form).
#[inline(always)]
pub const fn service_slot_hash(addr: &[u8; 16], port: u16, proto: u8, ipv6: bool) -> u32 {
    service_slot_hash_words(&addr_words(addr), port, proto, ipv6)
}

/// The hash that picks a flow's ring slot: the 5-tuple, or the source address alone for
/// persistent services.
#[inline(always)]
pub const fn flow_hash(key: &FlowKey, ipv6: bool, source_only: bool) -> u32 {
    let (src, dst) = (&key.src, &key.dst);
    let mut h = src[0].wrapping_mul(0x9e37_79b1);
    if ipv6 {
        h = h
            .wrapping_add(src[1].wrapping_mul(0x85eb_ca6b))
            .wrapping_add(src[2].wrapping_mul(0xc2b2_ae35))
            .wrapping_add(src[3].wrapping_mul(0x27d4_eb2f));
    }
    if !source_only {
        let ports = (key.src_port as u32) << 16 | key.dst_port as u32;
        h = h
            .wrapping_add(dst[0].wrapping_mul(0x1656_67b1))
            .wrapping_add(ports.wrapping_mul(0xd3a2_646c | 1))
            .wrapping_add(key.proto as u32);
        if ipv6 {
            h = h
                .wrapping_add(dst[1].wrapping_mul(0xfd70_46c5))
                .wrapping_add(dst[2].wrapping_mul(0xb55a_4f09))
                .wrapping_add(dst[3].wrapping_mul(0x2545_f491));
        }
    }
    hash_finish(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn map_types_have_the_sizes_both_sides_assume() {
        assert_eq!(size_of::<Service>(), 48);
        assert_eq!(size_of::<Backend>(), 44);
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(size_of::<Flow>(), 8);
        assert_eq!(size_of::<NatReverse>(), 48);
        assert_eq!(size_of::<LvsConfig>(), 28);
        assert_eq!(size_of::<RealServerKey>(), 20);
        assert_eq!(size_of::<RealServerVip>(), 28);
        assert_eq!(size_of::<SyncRecord>(), 56);
        assert_eq!(size_of::<BackendStats>(), 24);
        assert_eq!(size_of::<ServiceStats>(), 48);
    }

    #[test]
    fn a_services_match_word_is_the_word_its_port_proto_and_family_occupy() {
        let service = Service { port: 80u16.to_be(), proto: IPPROTO_TCP, family: 4, ..Service::default() };
        let bytes: [u8; 48] = unsafe { core::mem::transmute(service) };
        assert_eq!(service.match_word(), u32::from_ne_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]));
    }

    #[test]
    fn a_ring_slot_keeps_both_halves() {
        let slot = ring_slot(7, 65534);
        assert_eq!(ring_current(slot), 7);
        assert_eq!(ring_previous(slot), 65534);
        assert_eq!(ring_previous(ring_slot(NO_BACKEND, NO_BACKEND)), NO_BACKEND);
    }

    #[test]
    fn flow_hashes_spread_source_ports_evenly_over_a_ring() {
        // 30,000 flows from one client to one VIP:80 (only the source port differs) over a
        // 3-way split of a 65537 ring: each third gets its share within 3%.
        let mut key = FlowKey { proto: IPPROTO_TCP, family: 4, dst_port: 80u16.to_be(), ..FlowKey::default() };
        key.src[0] = u32::from_ne_bytes([10, 0, 0, 1]);
        key.dst[0] = u32::from_ne_bytes([10, 0, 0, 100]);
        let mut thirds = [0u32; 3];
        for port in 20000..50000u16 {
            key.src_port = port.to_be();
            let slot = reduce(flow_hash(&key, false, false), 65537);
            thirds[(slot * 3 / 65537) as usize] += 1;
        }
        for third in thirds {
            assert!((9700..=10300).contains(&third), "{thirds:?}");
        }
    }

    #[test]
    fn service_slots_stay_inside_the_table() {
        let mut addr = [0u8; 16];
        for i in 0..1000u32 {
            addr[..4].copy_from_slice(&i.to_be_bytes());
            assert!(service_slot_hash(&addr, 80, IPPROTO_TCP, false) < SERVICE_SLOTS);
        }
    }
}
