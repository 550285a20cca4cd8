//! keepxdp's balancer program, tail-called by the VRRP guard for every non-VRRP frame.
//!
//! Parse (Ethernet, IPv4/IPv6, TCP/UDP/SCTP ports) → service lookup → this node Master for
//! the VIP? → backend choice (Maglev ring, state only where a flow must stay put) → DR / NAT /
//! TUN rewrite → XDP_TX or redirect. Frames for no service go to the stack (NAT replies are
//! translated back first). Counters are the observability: the fast path logs nothing.
//!
//! The object also carries the baselines and load tools of `cargo xtask bench` (`bench.rs`)
//! and `xdp_pass`, what lab bridge ports carry so native XDP_TX frames are delivered to them.
#![no_std]
#![no_main]

mod bench;
mod choose;
mod csum;
mod forward;
mod maps;
mod parse;

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    macros::xdp,
    programs::XdpContext,
};
use vrrp_common::lvs::{
    BACKEND_RESOLVED, FWD_DR, FWD_MASK, FWD_NAT, FWD_TUN, FlowKey, LvsReason, NAT_ROUTE_BY_FIB, NO_BACKEND, NatReverse,
    RealServerKey, SyncRecord, VIP_MASTER,
};

use crate::{
    choose::{choose, find_service, nat_reply_key},
    maps::{BACKEND_STATS, BACKENDS, CONFIG, DROPS, NAT, NAT_RS, SERVICE_STATS, SYNC_RING, VIP_STATE},
    parse::{Packet, Parsed, parse},
};

#[inline(always)]
fn count(reason: LvsReason) {
    if let Some(counter) = DROPS.get_ptr_mut(reason as u32) {
        unsafe { *counter += 1 };
    }
}

/// Bumps one field of a service's per-CPU counters.
macro_rules! service_stat {
    ($index:expr, $field:ident) => {
        if let Some(stats) = SERVICE_STATS.get_ptr_mut($index) {
            unsafe { (*stats).$field += 1 };
        }
    };
}

#[xdp]
pub fn lvs_balancer(ctx: XdpContext) -> u32 {
    balance(&ctx)
}

#[inline(always)]
pub fn balance(ctx: &XdpContext) -> u32 {
    match parse::ip_version(ctx) {
        Some(false) => balance_ip::<false>(ctx),
        Some(true) => balance_ip::<true>(ctx),
        None => XDP_PASS,
    }
}

/// The pipeline for one IP version (see `parse::parse`).
#[inline(always)]
fn balance_ip<const V6: bool>(ctx: &XdpContext) -> u32 {
    let packet = match parse::<V6>(ctx) {
        Parsed::Packet(packet) => packet,
        Parsed::Other => return XDP_PASS,
        Parsed::Pass(reason) => {
            count(reason);
            return XDP_PASS;
        }
    };
    let Some(service) = find_service(&packet) else { return reply_or_pass(ctx, &packet) };
    match VIP_STATE.get(service.vip_index) {
        Some(state) if *state == VIP_MASTER => {}
        _ => {
            service_stat!(service.index, not_master);
            return XDP_PASS;
        }
    }
    let mut choice = choose(&packet, service);
    // NAT writes the reply entry of new flows; a sorry-server flow is never one (choose()
    // keeps no state for an empty ring), so without this its replies went to the client
    // untranslated, from the sorry server's own address. It is written on every packet:
    // there is no state telling the first one, and the sorry path is the degraded one.
    let mut sorry = false;
    if choice.backend == NO_BACKEND {
        if service.sorry_backend == NO_BACKEND {
            service_stat!(service.index, no_backend);
            return XDP_DROP;
        }
        service_stat!(service.index, sorry);
        choice.backend = service.sorry_backend;
        sorry = true;
    }
    let Some(backend) = BACKENDS.get_ptr_mut(choice.backend) else { return XDP_PASS };
    let backend = unsafe { &mut *backend };
    if backend.flags & BACKEND_RESOLVED == 0 && !forward::resolve(ctx, backend, packet.ipv6) {
        // The kernel resolves the neighbour when it handles a packet for it; meanwhile the
        // stack gets this one.
        service_stat!(service.index, unresolved);
        return XDP_PASS;
    }
    let kind = service.flags & FWD_MASK;
    let verdict = if kind == FWD_DR {
        Some(forward::direct_route(ctx, backend))
    } else if kind == FWD_NAT {
        if choice.new_flow || sorry {
            remember_client(ctx, packet.flow, backend, service.index, choice.backend);
        }
        if choice.new_flow {
            report_flow(packet.flow, backend);
        }
        forward::nat_forward(ctx, packet.layout(), backend)
    } else if kind == FWD_TUN {
        forward::tunnel(ctx, packet.layout(), backend)
    } else {
        None
    };
    let Some(verdict) = verdict else {
        service_stat!(service.index, encap_failed);
        return XDP_DROP;
    };
    if let Some(stats) = BACKEND_STATS.get_ptr_mut(choice.backend) {
        let stats = unsafe { &mut *stats };
        stats.packets += 1;
        stats.bytes += packet.frame_len as u64;
        stats.new_flows += choice.new_flow as u64;
    }
    verdict
}

/// NAT: the reply entry for a new connection (written before the frame is rewritten).
#[inline(never)]
fn remember_client(ctx: &XdpContext, flow: FlowKey, backend: &vrrp_common::lvs::Backend, service: u32, index: u32) {
    let Some((client_mac, our_mac)) = forward::client_side(ctx) else { return };
    let key = nat_reply_key(&flow, &backend.addr, backend.port);
    let entry = NatReverse {
        vip: vip_bytes(&flow.dst),
        vip_port: flow.dst_port,
        family: flow.family,
        flags: 0,
        ifindex: ctx.ingress_ifindex() as u32,
        last_seen: 0,
        client_mac,
        our_mac,
        service,
        backend: index,
    };
    if NAT.insert(&key, &entry, 0).is_ok() {
        count(LvsReason::NatInserted);
    }
}

/// A new NAT flow for the sync daemon, when it runs (`LvsConfig::sync`).
// A BPF subprogram: only new NAT flows pay for it.
#[inline(never)]
fn report_flow(flow: FlowKey, backend: &vrrp_common::lvs::Backend) {
    match CONFIG.get(0) {
        Some(config) if config.sync != 0 => {}
        _ => return,
    }
    let record = SyncRecord {
        client: flow.src,
        vip: flow.dst,
        backend: backend.addr,
        client_port: flow.src_port,
        vip_port: flow.dst_port,
        backend_port: backend.port,
        proto: flow.proto,
        family: flow.family,
    };
    if SYNC_RING.output::<SyncRecord>(&record, 0).is_err() {
        count(LvsReason::SyncRingFull);
    }
}

/// Words back to the byte form map values use.
#[inline(always)]
fn vip_bytes(words: &[u32; 4]) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&words[0].to_ne_bytes());
    bytes[4..8].copy_from_slice(&words[1].to_ne_bytes());
    bytes[8..12].copy_from_slice(&words[2].to_ne_bytes());
    bytes[12..].copy_from_slice(&words[3].to_ne_bytes());
    bytes
}

/// Not a service: a NAT reply to translate back, or traffic for the stack.
#[inline(always)]
fn reply_or_pass(ctx: &XdpContext, packet: &Packet) -> u32 {
    match CONFIG.get(0) {
        Some(config) if config.nat_services != 0 => {}
        _ => return XDP_PASS,
    }
    let key = packet.flow;
    let (mut entry, reason) = match unsafe { NAT.get(&key) } {
        Some(entry) => (*entry, LvsReason::NatReverse),
        None => {
            // No state: a real server address:port that belongs to one NAT service alone maps
            // back to that service's VIP:port (a flow another node started, a reply after a
            // failover), routed by the FIB.
            let rs = RealServerKey { addr: key.src, port: key.src_port, proto: key.proto, family: key.family };
            let Some(target) = (unsafe { NAT_RS.get(&rs) }) else { return XDP_PASS };
            match VIP_STATE.get(target.vip_index) {
                Some(state) if *state == VIP_MASTER => {}
                _ => return XDP_PASS,
            }
            let entry = NatReverse {
                vip: target.vip,
                vip_port: target.vip_port,
                family: target.family,
                flags: NAT_ROUTE_BY_FIB,
                ifindex: 0,
                last_seen: 0,
                client_mac: [0; 6],
                our_mac: [0; 6],
                service: target.service,
                backend: NO_BACKEND,
            };
            (entry, LvsReason::NatStateless)
        }
    };
    // Entries that name no interface of ours (stateless ones, those the sync daemon
    // installed from another node) are routed by the FIB; a reply it would not forward (to
    // this host, no route) goes to the stack unchanged.
    if (entry.flags & NAT_ROUTE_BY_FIB != 0 || entry.ifindex == 0) && !forward::route_reply(ctx, packet.layout(), &mut entry) {
        count(LvsReason::NatFibPassed);
        return XDP_PASS;
    }
    count(reason);
    forward::nat_reverse(ctx, packet.layout(), &entry).unwrap_or(XDP_DROP)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
