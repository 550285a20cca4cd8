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

/// Where a packet's headers are, for the rewriting subprograms: passed by value so the parsed
/// `Packet` never has its address taken and can stay in registers on the fast path.
#[derive(Clone, Copy)]
pub struct Layout {
    pub ipv6: bool,
    pub proto: u8,
    pub l4: usize,
}

impl Packet {
    #[inline(always)]
    pub fn layout(&self) -> Layout {
        Layout { ipv6: self.ipv6, proto: self.flow.proto, l4: self.l4 }
    }
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

/// The value at `offset` of the frame; the caller checked that it lies inside the frame.
///
/// Packet data has no alignment guarantee. The verifier allows unaligned packet loads and
/// the JITs of x86-64 and arm64 perform them (what C programs do through `struct iphdr *`);
/// reading whole words here instead of bytes roughly halves the parse cost (a
/// `read_unaligned` would be split into byte loads by LLVM's BPF backend).
#[inline(always)]
unsafe fn load<T: Copy>(data: usize, offset: usize) -> T {
    unsafe { *((data + offset) as *const T) }
}

const ETHERTYPE_IPV4_WIRE: u16 = u16::from_ne_bytes(ETHERTYPE_IPV4);
const ETHERTYPE_IPV6_WIRE: u16 = u16::from_ne_bytes(ETHERTYPE_IPV6);
/// IPv4 flags + fragment offset, without DF: MF set or a non-zero offset means a fragment.
const IPV4_FRAGMENT_BITS: u16 = u16::from_ne_bytes([0x3f, 0xff]);

/// The frame's IP version: `Some(false)` IPv4, `Some(true)` IPv6, None anything else.
#[inline(always)]
pub fn ip_version(ctx: &XdpContext) -> Option<bool> {
    let data = ctx.data();
    if data + ETH_HDR_LEN > ctx.data_end() {
        return None;
    }
    let ethertype: u16 = unsafe { load(data, 12) };
    if ethertype == ETHERTYPE_IPV4_WIRE {
        Some(false)
    } else if ethertype == ETHERTYPE_IPV6_WIRE {
        Some(true)
    } else {
        None
    }
}

/// Parses a frame `ip_version` said is IPv6 (`V6`) or IPv4. The caller instantiates the
/// whole pipeline per family, so the IPv4 one never touches the address words it lacks.
#[inline(always)]
pub fn parse<const V6: bool>(ctx: &XdpContext) -> Parsed {
    let data = ctx.data();
    let end = ctx.data_end();
    let mut flow = FlowKey::default();
    let ipv6;
    let l4;
    if !V6 {
        if data + L4_V4 > end {
            return Parsed::Pass(LvsReason::Truncated);
        }
        let proto: u8 = unsafe { load(data, ETH_HDR_LEN + 9) };
        if !is_l4(proto) {
            return Parsed::Other;
        }
        let version_ihl: u8 = unsafe { load(data, ETH_HDR_LEN) };
        if version_ihl != 0x45 {
            return Parsed::Pass(if version_ihl > 0x45 && version_ihl >> 4 == 4 { LvsReason::IpOptions } else { LvsReason::Truncated });
        }
        let fragment: u16 = unsafe { load(data, ETH_HDR_LEN + 6) };
        if fragment & IPV4_FRAGMENT_BITS != 0 {
            return Parsed::Pass(LvsReason::Fragment);
        }
        flow.src[0] = unsafe { load(data, ETH_HDR_LEN + 12) };
        flow.dst[0] = unsafe { load(data, ETH_HDR_LEN + 16) };
        flow.proto = proto;
        flow.family = FAMILY_IPV4;
        ipv6 = false;
        l4 = L4_V4;
    } else {
        if data + L4_V6 > end {
            return Parsed::Pass(LvsReason::Truncated);
        }
        let next: u8 = unsafe { load(data, ETH_HDR_LEN + 6) };
        if !is_l4(next) {
            return if is_ipv6_extension(next) { Parsed::Pass(LvsReason::Ipv6Extension) } else { Parsed::Other };
        }
        flow.src = unsafe { load(data, ETH_HDR_LEN + 8) };
        flow.dst = unsafe { load(data, ETH_HDR_LEN + 24) };
        flow.proto = next;
        flow.family = FAMILY_IPV6;
        ipv6 = true;
        l4 = L4_V6;
    }
    let mut tcp_flags = 0;
    if flow.proto == IPPROTO_TCP {
        if data + l4 + 20 > end {
            return Parsed::Pass(LvsReason::Truncated);
        }
        tcp_flags = unsafe { load(data, l4 + 13) };
    } else if data + l4 + 8 > end {
        return Parsed::Pass(LvsReason::Truncated);
    }
    flow.src_port = unsafe { load(data, l4) };
    flow.dst_port = unsafe { load(data, l4 + 2) };
    let frame_len = (end - data) as u32;
    Parsed::Packet(Packet { flow, ipv6, tcp_flags, l4, frame_len })
}
