//! Bounds-checked reads from the XDP frame. Every read names its offset from the start of
//! the frame; the verifier sees the check against `data_end` before each access.
use aya_ebpf::programs::XdpContext;

pub const ETH_HDR_LEN: usize = 14;
pub const ETH_TYPE: usize = 12;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

pub const IPV4_MIN_HDR_LEN: usize = 20;
pub const IPV4_TOTAL_LEN: usize = 2;
pub const IPV4_TTL: usize = 8;
pub const IPV4_PROTOCOL: usize = 9;
pub const IPV4_SRC: usize = 12;

pub const IPV6_HDR_LEN: usize = 40;
pub const IPV6_PAYLOAD_LEN: usize = 4;
pub const IPV6_NEXT_HEADER: usize = 6;
pub const IPV6_HOP_LIMIT: usize = 7;
pub const IPV6_SRC: usize = 8;

/// True when `len` bytes starting at `offset` are inside the frame.
#[inline(always)]
pub fn has(ctx: &XdpContext, offset: usize, len: usize) -> bool {
    ctx.data() + offset + len <= ctx.data_end()
}

/// A pointer to `T` at `offset`, or None when the frame is shorter.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some(start as *const T)
}

