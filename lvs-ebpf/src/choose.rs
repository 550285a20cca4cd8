//! Which service a packet belongs to, and which backend serves its flow.
//!
//! Fast path (DR/TUN, no persistence, ring slot never changed): the ring slot alone decides,
//! no hash map is touched. Everything else keeps state: NAT in the shared `lvs_nat` map (its
//! replies need it anyway), persistence and flows on changed slots in the per-CPU
//! `lvs_conntrack`. A mid-flow TCP packet with no state on a changed slot goes to the slot's
//! previous backend (it started before the change); SYNs and UDP take the current one.
use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use vrrp_common::lvs::{
    BACKEND_ALIVE, LvsReason, FLOW_NAT_FORWARD, FLOW_PERSISTENCE, FWD_MASK, FWD_NAT, Flow, FlowKey,
    IPPROTO_TCP, NO_BACKEND, NatReverse, SERVICE_PERSISTENT, SERVICE_SOURCE_HASH, SERVICE_PROBES, SERVICE_SLOTS, Service,
    flow_hash, match_word, reduce, ring_current, ring_previous, service_slot_hash_words,
};

use crate::{
    maps::{BACKENDS, CONNTRACK, MAGLEV, NAT, SERVICES},
    parse::{Packet, TCP_ACK, TCP_SYN},
};

/// An address field of a map value as words. The map types are `repr(C)` with 4-byte
/// alignment and their addresses at offsets that are multiples of 4, so this is an aligned read.
#[inline(always)]
pub fn words(addr: &[u8; 16]) -> &[u32; 4] {
    unsafe { &*(addr.as_ptr() as *const [u32; 4]) }
}

#[inline(always)]
fn addr_eq(a: &[u32; 4], b: &[u32; 4], ipv6: bool) -> bool {
    if a[0] != b[0] {
        return false;
    }
    !ipv6 || (a[1] == b[1] && a[2] == b[2] && a[3] == b[3])
}

/// The service (VIP, port, proto) of this packet, probing the open-addressed table.
#[inline(always)]
pub fn find_service(packet: &Packet) -> Option<&'static Service> {
    let flow = &packet.flow;
    let start = service_slot_hash_words(&flow.dst, flow.dst_port, flow.proto, packet.ipv6);
    let wanted = match_word(flow.dst_port, flow.proto, flow.family);
    let mut probe = 0;
    while probe < SERVICE_PROBES {
        let slot = (start + probe) & (SERVICE_SLOTS - 1);
        let service = SERVICES.get(slot)?;
        if service.match_word() == wanted && addr_eq(words(&service.addr), &flow.dst, packet.ipv6)
        {
            return Some(service);
        }
        probe += 1;
    }
    None
}

/// A backend a stored flow may still use: alive and still this service's.
#[inline(always)]
fn usable(backend: u32, service: u32) -> bool {
    match BACKENDS.get(backend) {
        Some(entry) => entry.flags & BACKEND_ALIVE != 0 && entry.service == service,
        None => false,
    }
}

pub struct Choice {
    pub backend: u32,
    /// A new connection (TCP SYN, or state created): counted, and NAT writes its reply entry.
    pub new_flow: bool,
}

#[inline(always)]
fn now_seconds() -> u32 {
    (unsafe { bpf_ktime_get_coarse_ns() } / 1_000_000_000) as u32
}

#[inline(always)]
pub fn choose(packet: &Packet, service: &Service) -> Choice {
    let persistent = service.flags & SERVICE_PERSISTENT != 0;
    let nat = service.flags & FWD_MASK == FWD_NAT;
    let syn = packet.flow.proto == IPPROTO_TCP && packet.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    let none = Choice { backend: NO_BACKEND, new_flow: false };
    if service.ring_size == 0 {
        return none;
    }
    let source_only = service.flags & (SERVICE_PERSISTENT | SERVICE_SOURCE_HASH) != 0;
    let hash = flow_hash(&packet.flow, packet.ipv6, source_only);
    let Some(slot) = MAGLEV.get(service.ring_base + reduce(hash, service.ring_size)) else { return none };
    let current = ring_current(*slot);
    let previous = ring_previous(*slot);
    if !persistent && !nat && current == previous {
        return Choice { backend: current, new_flow: syn };
    }

    let now = if persistent { now_seconds() } else { 0 };
    let fresh = |last_seen: u32| !persistent || now.wrapping_sub(last_seen) <= service.persistence_seconds;
    // Persistence: one entry per (client address, service), whatever the source port.
    let mut sticky_key = packet.flow;
    sticky_key.src_port = 0;
    sticky_key.flags = FLOW_PERSISTENCE | if nat { FLOW_NAT_FORWARD } else { 0 };

    if nat {
        // Every NAT connection has its own forward entry (its reply entry is written with it).
        let mut key = packet.flow;
        key.flags = FLOW_NAT_FORWARD;
        if let Some(entry) = unsafe { NAT.get(&key) } {
            if usable(entry.backend, service.index) {
                return Choice { backend: entry.backend, new_flow: false };
            }
        }
        let mut backend = NO_BACKEND;
        if persistent {
            if let Some(entry) = NAT.get_ptr_mut(&sticky_key) {
                let entry = unsafe { &mut *entry };
                if usable(entry.backend, service.index) && fresh(entry.last_seen) {
                    entry.last_seen = now;
                    backend = entry.backend;
                }
            }
        }
        if backend == NO_BACKEND {
            backend = pick(packet, service, current, previous, syn, persistent);
            if backend == NO_BACKEND {
                return none;
            }
            if persistent {
                let sticky = NatReverse { backend, last_seen: now, service: service.index, ..NatReverse::default() };
                if NAT.insert(&sticky_key, &sticky, 0).is_ok() {
                    crate::count(LvsReason::NatInserted);
                }
            }
        }
        let entry = NatReverse { backend, service: service.index, ..NatReverse::default() };
        if NAT.insert(&key, &entry, 0).is_ok() {
            crate::count(LvsReason::NatInserted);
        }
        return Choice { backend, new_flow: true };
    }

    let key = if persistent { sticky_key } else { packet.flow };
    if let Some(entry) = CONNTRACK.get_ptr_mut(&key) {
        let entry = unsafe { &mut *entry };
        if usable(entry.backend, service.index) && fresh(entry.last_seen) {
            entry.last_seen = now;
            return Choice { backend: entry.backend, new_flow: syn };
        }
    }
    let backend = pick(packet, service, current, previous, syn, persistent);
    if backend == NO_BACKEND {
        return none;
    }
    if CONNTRACK.insert(&key, &Flow { backend, last_seen: now }, 0).is_ok() {
        crate::count(LvsReason::ConntrackInserted);
    }
    Choice { backend, new_flow: true }
}

/// A flow with no state: the slot's current backend, or its previous one for a mid-flow TCP
/// packet on a slot that changed (the connection predates the change).
#[inline(always)]
fn pick(packet: &Packet, service: &Service, current: u32, previous: u32, syn: bool, persistent: bool) -> u32 {
    let second_chance = !persistent
        && current != previous
        && packet.flow.proto == IPPROTO_TCP
        && !syn
        && usable(previous, service.index);
    if second_chance { previous } else { current }
}

/// The reply key of a NAT flow: real server → client.
#[inline(always)]
pub fn nat_reply_key(flow: &FlowKey, backend_addr: &[u8; 16], backend_port: u16) -> FlowKey {
    FlowKey {
        src: *words(backend_addr),
        dst: flow.src,
        src_port: backend_port,
        dst_port: flow.src_port,
        proto: flow.proto,
        family: flow.family,
        flags: 0,
    }
}
