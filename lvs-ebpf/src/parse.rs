//! Frame parsing: Ethernet, IPv4 (no options, no fragments), IPv6 (no extension headers),
//! then the ports of TCP/UDP/SCTP. Offsets are constants (14, 34, 54), so every access is
//! checked against `data_end` once, as a whole header copied out.
use aya_ebpf::programs::XdpContext;
use vrrp_common::{
    guard::{FAMILY_IPV4, FAMILY_IPV6},
    lvs::{FlowKey, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, LvsReason},
};

pub const ETH_HDR_LEN: usize = 14;
pub const IPV4_HDR_LEN: usize = 20;
pub const IPV6_HDR_LEN: usize = 40;
pub const L4_V4: usize = ETH_HDR_LEN + IPV4_HDR_LEN;
pub const L4_V6: usize = ETH_HDR_LEN + IPV6_HDR_LEN;
pub const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
pub const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
/// TCP flag bits (byte 13 of the TCP header).
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// A parsed L4 packet: its flow as the wire shows it.
pub struct Packet {
    pub flow: FlowKey,
    pub ipv6: bool,
    /// TCP flags (0 for UDP/SCTP).
    pub tcp_flags: u8,
    pub l4: usize,
    pub frame_len: u32,
}

pub enum Parsed {
    Packet(Packet),
    /// Not for the balancer (ARP, ICMP, other protocols): to the stack, uncounted.
    Other,
    /// To the stack, counted under this reason.
    Pass(LvsReason),
}

/// `T` at `offset`, or None when the frame is shorter.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some(start as *mut T)
}

#[inline(always)]
fn is_l4(proto: u8) -> bool {
    proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP
}

/// IPv6 extension headers that may precede L4 (RFC 8200 §4): the balancer does not walk them.
#[inline(always)]
fn is_ipv6_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140)
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Parsed {
    let Some(eth) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else { return Parsed::Other };
    let eth = unsafe { *eth };
    let ethertype = [eth[12], eth[13]];
    let mut flow = FlowKey::default();
    let ipv6;
    let l4;
    if ethertype == ETHERTYPE_IPV4 {
        let Some(ip) = ptr_at::<[u8; IPV4_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
            return Parsed::Pass(LvsReason::Truncated);
        };
        let ip = unsafe { *ip };
        if !is_l4(ip[9]) {
            return Parsed::Other;
        }
        if ip[0] != 0x45 {
            return Parsed::Pass(if ip[0] > 0x45 && ip[0] >> 4 == 4 { LvsReason::IpOptions } else { LvsReason::Truncated });
        }
        if (ip[6] & 0x3f) != 0 || ip[7] != 0 {
            return Parsed::Pass(LvsReason::Fragment);
        }
        flow.src[0] = ip[12];
        flow.src[1] = ip[13];
        flow.src[2] = ip[14];
        flow.src[3] = ip[15];
        flow.dst[0] = ip[16];
        flow.dst[1] = ip[17];
        flow.dst[2] = ip[18];
        flow.dst[3] = ip[19];
        flow.proto = ip[9];
        flow.family = FAMILY_IPV4;
        ipv6 = false;
        l4 = L4_V4;
    } else if ethertype == ETHERTYPE_IPV6 {
        let Some(ip) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
            return Parsed::Pass(LvsReason::Truncated);
        };
        let ip = unsafe { &*ip };
        let next = ip[6];
        if !is_l4(next) {
            return if is_ipv6_extension(next) { Parsed::Pass(LvsReason::Ipv6Extension) } else { Parsed::Other };
        }
        flow.src.copy_from_slice(&ip[8..24]);
        flow.dst.copy_from_slice(&ip[24..40]);
        flow.proto = next;
        flow.family = FAMILY_IPV6;
        ipv6 = true;
        l4 = L4_V6;
    } else {
        return Parsed::Other;
    }
    let mut tcp_flags = 0;
    if flow.proto == IPPROTO_TCP {
        let Some(tcp) = ptr_at::<[u8; 20]>(ctx, l4) else { return Parsed::Pass(LvsReason::Truncated) };
        let tcp = unsafe { *tcp };
        flow.src_port = u16::from_ne_bytes([tcp[0], tcp[1]]);
        flow.dst_port = u16::from_ne_bytes([tcp[2], tcp[3]]);
        tcp_flags = tcp[13];
    } else {
        let Some(ports) = ptr_at::<[u8; 8]>(ctx, l4) else { return Parsed::Pass(LvsReason::Truncated) };
        let ports = unsafe { *ports };
        flow.src_port = u16::from_ne_bytes([ports[0], ports[1]]);
        flow.dst_port = u16::from_ne_bytes([ports[2], ports[3]]);
    }
    let frame_len = (ctx.data_end() - ctx.data()) as u32;
    Parsed::Packet(Packet { flow, ipv6, tcp_flags, l4, frame_len })
}
