//! Rewriting the frame toward the chosen backend: DR (MACs), NAT (destination address and
//! port, checksums; replies back to the VIP), TUN (IPIP / IPv6-in-IPv6 encapsulation).
use aya_ebpf::{
    bindings::{
        bpf_fib_lookup,
        xdp_action::{XDP_PASS, XDP_TX},
    },
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_xdp_adjust_head},
    programs::XdpContext,
};
use vrrp_common::lvs::{BACKEND_RESOLVED, Backend, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, NatReverse};

/// `bpf_fib_lookup`'s success (`BPF_FIB_LKUP_RET_SUCCESS`); anything else (local destination,
/// no route, neighbour unknown, forwarding off) means the stack must have the frame.
const FIB_SUCCESS: i64 = 0;

use crate::{
    csum,
    maps::CONFIG,
    parse::{ETH_HDR_LEN, IPV4_HDR_LEN, IPV6_HDR_LEN, Layout, ptr_at},
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const TUN_TTL: u8 = 64;

#[inline(always)]
fn word(addr: &[u8; 16], at: usize) -> u32 {
    u32::from_ne_bytes([addr[at], addr[at + 1], addr[at + 2], addr[at + 3]])
}

/// Fills the backend's MACs and egress from the kernel's FIB and neighbour table (cached in
/// the map entry for the next packet). False when the neighbour is not resolved yet.
// A BPF subprogram: off the fast path, and its stack frame apart from the caller's.
#[inline(never)]
pub fn resolve(ctx: &XdpContext, backend: &mut Backend, ipv6: bool) -> bool {
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.ifindex = ctx.ingress_ifindex() as u32;
    if ipv6 {
        params.family = AF_INET6;
        params.__bindgen_anon_4.ipv6_dst =
            [word(&backend.addr, 0), word(&backend.addr, 4), word(&backend.addr, 8), word(&backend.addr, 12)];
    } else {
        params.family = AF_INET;
        params.__bindgen_anon_4.ipv4_dst = word(&backend.addr, 0);
    }
    let rc = unsafe {
        fib_lookup(ctx.ctx as *mut _, &mut params, core::mem::size_of::<bpf_fib_lookup>() as i32, 0)
    };
    if rc != 0 {
        return false;
    }
    backend.mac = params.dmac;
    backend.src_mac = params.smac;
    backend.ifindex = params.ifindex;
    backend.flags |= BACKEND_RESOLVED;
    true
}

/// Sends the frame out toward `ifindex`: back out the ingress interface (XDP_TX) or redirected.
#[inline(always)]
pub fn transmit(ctx: &XdpContext, ifindex: u32) -> u32 {
    if ifindex == 0 || ifindex == ctx.ingress_ifindex() as u32 {
        XDP_TX
    } else {
        unsafe { bpf_redirect(ifindex, 0) as u32 }
    }
}

/// Writes both MACs as six 16-bit words (map values keep MACs 2-byte aligned; packet
/// stores need no alignment, see `parse::load`).
#[inline(always)]
fn set_macs(ctx: &XdpContext, destination: &[u8; 6], source: &[u8; 6]) -> bool {
    let Some(eth) = ptr_at::<[u16; 6]>(ctx, 0) else { return false };
    let destination = unsafe { &*(destination.as_ptr() as *const [u16; 3]) };
    let source = unsafe { &*(source.as_ptr() as *const [u16; 3]) };
    let eth = unsafe { &mut *eth };
    eth[0] = destination[0];
    eth[1] = destination[1];
    eth[2] = destination[2];
    eth[3] = source[0];
    eth[4] = source[1];
    eth[5] = source[2];
    true
}

/// DR: only the MACs change; the real server holds the VIP itself.
#[inline(always)]
pub fn direct_route(ctx: &XdpContext, backend: &Backend) -> u32 {
    if !set_macs(ctx, &backend.mac, &backend.src_mac) {
        return XDP_PASS;
    }
    transmit(ctx, backend.ifindex)
}

/// Offset of the L4 checksum, or None when the protocol has none to fix (SCTP's CRC covers
/// no pseudo-header; the controller does not allow NAT for it) or IPv4 UDP sent none.
#[inline(always)]
fn l4_checksum_offset(ctx: &XdpContext, packet: Layout) -> Option<usize> {
    match packet.proto {
        IPPROTO_TCP => Some(packet.l4 + 16),
        IPPROTO_UDP => {
            let at = packet.l4 + 6;
            let check = ptr_at::<[u8; 2]>(ctx, at)?;
            if !packet.ipv6 && unsafe { *check } == [0, 0] { None } else { Some(at) }
        }
        _ => None,
    }
}

/// Rewrites one address + port pair (destination for requests, source for replies) and every
/// checksum covering them. `addr_at` / `port_at` are frame offsets.
#[inline(always)]
fn rewrite_endpoint(
    ctx: &XdpContext,
    packet: Layout,
    addr_at: usize,
    port_at: usize,
    addr: &[u8; 16],
    port: u16,
) -> bool {
    let checksum_at = l4_checksum_offset(ctx, packet);
    let Some(port_ptr) = ptr_at::<[u8; 2]>(ctx, port_at) else { return false };
    let port_ptr = unsafe { &mut *port_ptr };
    let old_port = u16::from_be_bytes(*port_ptr);
    let new_port = u16::from_be_bytes(port.to_ne_bytes());
    let mut l4_check = 0u16;
    if let Some(at) = checksum_at {
        let Some(check) = ptr_at::<[u8; 2]>(ctx, at) else { return false };
        l4_check = u16::from_be_bytes(unsafe { *check });
        l4_check = csum::replace16(l4_check, old_port, new_port);
    }
    *port_ptr = new_port.to_be_bytes();
    if packet.ipv6 {
        let Some(field) = ptr_at::<[u8; 16]>(ctx, addr_at) else { return false };
        let field = unsafe { &mut *field };
        l4_check = csum::replace128(l4_check, field, addr);
        *field = *addr;
    } else {
        let Some(field) = ptr_at::<[u8; 4]>(ctx, addr_at) else { return false };
        let field = unsafe { &mut *field };
        let old = u32::from_be_bytes(*field);
        let new = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
        l4_check = csum::replace32(l4_check, old, new);
        let Some(ip_check) = ptr_at::<[u8; 2]>(ctx, ETH_HDR_LEN + 10) else { return false };
        let ip_check = unsafe { &mut *ip_check };
        *ip_check = csum::replace32(u16::from_be_bytes(*ip_check), old, new).to_be_bytes();
        *field = [addr[0], addr[1], addr[2], addr[3]];
    }
    if let Some(at) = checksum_at {
        // UDP: a computed 0 is sent as all ones (RFC 768).
        if packet.proto == IPPROTO_UDP && l4_check == 0 {
            l4_check = 0xffff;
        }
        let Some(check) = ptr_at::<[u8; 2]>(ctx, at) else { return false };
        unsafe { *check = l4_check.to_be_bytes() };
    }
    true
}

#[inline(always)]
fn dst_addr_offset(ipv6: bool) -> usize {
    if ipv6 { ETH_HDR_LEN + 24 } else { ETH_HDR_LEN + 16 }
}

#[inline(always)]
fn src_addr_offset(ipv6: bool) -> usize {
    if ipv6 { ETH_HDR_LEN + 8 } else { ETH_HDR_LEN + 12 }
}

/// NAT, request direction: destination becomes the real server's address and port.
// A BPF subprogram: off the fast path, and its stack frame apart from the caller's.
#[inline(never)]
pub fn nat_forward(ctx: &XdpContext, packet: Layout, backend: &Backend) -> Option<u32> {
    if !rewrite_endpoint(ctx, packet, dst_addr_offset(packet.ipv6), packet.l4 + 2, &backend.addr, backend.port) {
        return None;
    }
    if !set_macs(ctx, &backend.mac, &backend.src_mac) {
        return None;
    }
    Some(transmit(ctx, backend.ifindex))
}

/// NAT, reply direction: the source goes back to VIP:port, and the frame goes back the way
/// the client's came.
// A BPF subprogram: off the fast path, and its stack frame apart from the caller's.
#[inline(never)]
pub fn nat_reverse(ctx: &XdpContext, packet: Layout, entry: &NatReverse) -> Option<u32> {
    if !rewrite_endpoint(ctx, packet, src_addr_offset(packet.ipv6), packet.l4, &entry.vip, entry.vip_port) {
        return None;
    }
    if !set_macs(ctx, &entry.client_mac, &entry.our_mac) {
        return None;
    }
    Some(transmit(ctx, entry.ifindex))
}

/// Fills a reply entry's client side (egress, next hop's MAC, our MAC) from the kernel's FIB:
/// where a reply to this frame's destination (the client) goes once its source is the
/// entry's VIP. False when the destination is this host, or the FIB cannot route it (no
/// route, neighbour unresolved, forwarding off): the frame is left unchanged.
// A BPF subprogram: its lookup parameters stay off the caller's stack.
#[inline(never)]
pub fn route_reply(ctx: &XdpContext, packet: Layout, entry: &mut NatReverse) -> bool {
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.ifindex = ctx.ingress_ifindex() as u32;
    params.l4_protocol = packet.proto;
    let vip = &entry.vip;
    if packet.ipv6 {
        let Some(dst) = ptr_at::<[u32; 4]>(ctx, dst_addr_offset(true)) else { return false };
        params.family = AF_INET6;
        params.__bindgen_anon_4.ipv6_dst = unsafe { *dst };
        params.__bindgen_anon_3.ipv6_src = [word(vip, 0), word(vip, 4), word(vip, 8), word(vip, 12)];
    } else {
        let Some(dst) = ptr_at::<u32>(ctx, dst_addr_offset(false)) else { return false };
        params.family = AF_INET;
        params.__bindgen_anon_4.ipv4_dst = unsafe { *dst };
        params.__bindgen_anon_3.ipv4_src = word(vip, 0);
    }
    let rc = unsafe {
        fib_lookup(ctx.ctx as *mut _, &mut params, core::mem::size_of::<bpf_fib_lookup>() as i32, 0)
    };
    if rc != FIB_SUCCESS {
        return false;
    }
    entry.client_mac = params.dmac;
    entry.our_mac = params.smac;
    entry.ifindex = params.ifindex;
    true
}

/// What NAT's reply entry remembers about the client's side of this frame.
#[inline(always)]
pub fn client_side(ctx: &XdpContext) -> Option<([u8; 6], [u8; 6])> {
    let eth = ptr_at::<[u8; 12]>(ctx, 0)?;
    let eth = unsafe { *eth };
    let mut client = [0u8; 6];
    let mut ours = [0u8; 6];
    client.copy_from_slice(&eth[6..]);
    ours.copy_from_slice(&eth[..6]);
    Some((client, ours))
}

/// TUN: the whole IP packet goes inside a new IP header toward the real server (IPIP for
/// IPv4, IPv6-in-IPv6 for IPv6), from the configured tunnel source address.
// A BPF subprogram: off the fast path, and its stack frame apart from the caller's.
#[inline(never)]
pub fn tunnel(ctx: &XdpContext, packet: Layout, backend: &Backend) -> Option<u32> {
    let config = CONFIG.get(0)?;
    if packet.ipv6 {
        let inner = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, ETH_HDR_LEN)?;
        let inner = unsafe { *inner };
        let inner_len = u16::from_be_bytes([inner[4], inner[5]]) as u32 + IPV6_HDR_LEN as u32;
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(IPV6_HDR_LEN as i32)) } != 0 {
            return None;
        }
        let eth = ptr_at::<[u8; ETH_HDR_LEN + IPV6_HDR_LEN]>(ctx, 0)?;
        let out = unsafe { &mut *eth };
        out[..6].copy_from_slice(&backend.mac);
        out[6..12].copy_from_slice(&backend.src_mac);
        out[12] = 0x86;
        out[13] = 0xdd;
        // Version 6, the inner traffic class and flow label.
        out[14..18].copy_from_slice(&inner[..4]);
        out[18..20].copy_from_slice(&(inner_len as u16).to_be_bytes());
        out[20] = IPPROTO_IPV6;
        out[21] = TUN_TTL;
        out[22..38].copy_from_slice(&config.tun_src6);
        out[38..54].copy_from_slice(&backend.addr);
    } else {
        let inner = ptr_at::<[u8; IPV4_HDR_LEN]>(ctx, ETH_HDR_LEN)?;
        let inner = unsafe { *inner };
        let inner_len = u16::from_be_bytes([inner[2], inner[3]]);
        if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(IPV4_HDR_LEN as i32)) } != 0 {
            return None;
        }
        let mut outer = [0u8; IPV4_HDR_LEN];
        outer[0] = 0x45;
        outer[1] = inner[1];
        outer[2..4].copy_from_slice(&inner_len.wrapping_add(IPV4_HDR_LEN as u16).to_be_bytes());
        outer[8] = TUN_TTL;
        outer[9] = IPPROTO_IPIP;
        outer[12..16].copy_from_slice(&config.tun_src4);
        outer[16..20].copy_from_slice(&backend.addr[..4]);
        let check = csum::ipv4_header(&outer);
        outer[10..12].copy_from_slice(&check.to_be_bytes());
        let eth = ptr_at::<[u8; ETH_HDR_LEN + IPV4_HDR_LEN]>(ctx, 0)?;
        let out = unsafe { &mut *eth };
        out[..6].copy_from_slice(&backend.mac);
        out[6..12].copy_from_slice(&backend.src_mac);
        out[12] = 0x08;
        out[13] = 0x00;
        out[14..34].copy_from_slice(&outer);
    }
    Some(transmit(ctx, backend.ifindex))
}
