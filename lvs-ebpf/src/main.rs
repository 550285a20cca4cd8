//! keepxdp's balancer program, tail-called by the VRRP guard for every non-VRRP frame.
//!
//! Until the balancer is built (its own issue) this is a stand-in that only counts the
//! frames it receives and passes them to the stack, so the tail call can be tested. The
//! object also carries `xdp_pass`, a bare XDP_PASS: the benchmarks' baseline, and what lab
//! veth/bridge ports carry so native XDP_TX frames are delivered to them.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS,
    macros::{map, xdp},
    maps::PerCpuArray,
    programs::XdpContext,
};

/// Frames that reached the balancer, per CPU (index 0).
#[map(name = "lvs_hits")]
static LVS_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[xdp]
pub fn lvs_balancer(_ctx: XdpContext) -> u32 {
    if let Some(hits) = LVS_HITS.get_ptr_mut(0) {
        unsafe { *hits += 1 };
    }
    XDP_PASS
}

#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
