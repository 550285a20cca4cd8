//! keepxdp's XDP entry program: the VRRP guard.
//!
//! Every frame on a VRRP interface comes here first (an interface has one XDP program).
//! VRRP adverts (IP protocol 112) are judged against the configured instances and counted;
//! only valid ones go on to the stack, where the controller's raw socket reads them.
//! Everything else is handed to the balancer by a tail call; with no balancer loaded the
//! frame goes to the stack untouched. The non-VRRP path does no map lookup.
#![no_std]
#![no_main]

mod frame;
mod judge;

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    macros::{map, xdp},
    maps::{HashMap, PerCpuHashMap, ProgramArray},
    programs::XdpContext,
};
use vrrp_common::{
    guard::{
        GuardStatKey, MAX_GUARD_STAT_ROWS, MAX_PEERS, MAX_VRIDS, PeerKey, VridConfig, VridKey,
    },
    pins::LVS_PROG_SLOT,
};

use crate::judge::Verdict;

/// Configured instances, written by the controller.
#[map(name = "vrids")]
static VRIDS: HashMap<VridKey, VridConfig> = HashMap::with_max_entries(MAX_VRIDS, 0);

/// Allowed unicast sources of instances flagged `VRID_FLAG_UNICAST`.
#[map(name = "vrrp_peers")]
static PEERS: HashMap<PeerKey, u8> = HashMap::with_max_entries(MAX_PEERS, 0);

/// Decision counters; per-CPU because the bpf target has no atomic fetch_add.
#[map(name = "guard_stats")]
static GUARD_STATS: PerCpuHashMap<GuardStatKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_GUARD_STAT_ROWS, 0);

/// Slot `LVS_PROG_SLOT` holds the balancer (lvs-ebpf) once the controller loads it.
#[map(name = "lvs_progs")]
static LVS_PROGS: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[xdp]
pub fn vrrp_guard(ctx: XdpContext) -> u32 {
    match judge::judge(&ctx) {
        Verdict::Accept => XDP_PASS,
        Verdict::Drop => XDP_DROP,
        Verdict::NotVrrp => {
            // Returns only when the slot is empty (no balancer): then the stack decides.
            unsafe { LVS_PROGS.tail_call(&ctx, LVS_PROG_SLOT) };
            XDP_PASS
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
