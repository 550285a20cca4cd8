//! Baselines and load tools for `cargo xtask bench` and the labs. None of these is loaded
//! by `keepxdp run`.
//!
//! BPF_PROG_TEST_RUN reuses one buffer for every repetition, so programs that rewrite the
//! frame (NAT) restore it from `bench_frame` first (`bench_restore_tx` measures that
//! restore), and "new flow" runs give every repetition its own source address and port.
use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS, XDP_TX},
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};

use crate::{csum, parse::ptr_at};

pub const BENCH_FRAME_LEN: usize = 64;

/// The template frame (IPv4 TCP, first 64 bytes) and how many flows the generator cycles.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BenchFrame {
    pub bytes: [u8; BENCH_FRAME_LEN],
    pub flows: u32,
}

#[map(name = "bench_frame")]
static BENCH_FRAME: Array<BenchFrame> = Array::with_max_entries(1, 0);

/// Per-CPU sequence number: each repetition's flow.
#[map(name = "bench_seq")]
static BENCH_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Frames a sink received (per CPU).
#[map(name = "bench_sink")]
static BENCH_SINK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn restore(ctx: &XdpContext) -> Option<u32> {
    let template = BENCH_FRAME.get(0)?;
    let frame = ptr_at::<[u8; BENCH_FRAME_LEN]>(ctx, 0)?;
    unsafe { *frame = template.bytes };
    Some(template.flows)
}

#[inline(always)]
fn next_seq() -> u32 {
    match BENCH_SEQ.get_ptr_mut(0) {
        Some(seq) => unsafe {
            *seq = (*seq).wrapping_add(1);
            *seq
        },
        None => 0,
    }
}

/// Gives an IPv4 TCP frame the flow `seq`: source port (and, past 65535, the source
/// address's last two bytes), fixing the IP and TCP checksums.
#[inline(always)]
fn set_flow(ctx: &XdpContext, seq: u32) -> Option<()> {
    let headers = ptr_at::<[u8; 54]>(ctx, 0)?;
    let headers = unsafe { &mut *headers };
    let old_addr = u32::from_be_bytes([headers[26], headers[27], headers[28], headers[29]]);
    let new_addr = (old_addr & 0xffff_0000) | (seq >> 16);
    let old_port = u16::from_be_bytes([headers[34], headers[35]]);
    let new_port = seq as u16;
    let ip_check = csum::replace32(u16::from_be_bytes([headers[24], headers[25]]), old_addr, new_addr);
    let mut tcp_check = u16::from_be_bytes([headers[50], headers[51]]);
    tcp_check = csum::replace32(tcp_check, old_addr, new_addr);
    tcp_check = csum::replace16(tcp_check, old_port, new_port);
    headers[24..26].copy_from_slice(&ip_check.to_be_bytes());
    headers[26..30].copy_from_slice(&new_addr.to_be_bytes());
    headers[34..36].copy_from_slice(&new_port.to_be_bytes());
    headers[50..52].copy_from_slice(&tcp_check.to_be_bytes());
    Some(())
}

/// A bare XDP_PASS: lab bridge ports carry it (native XDP_TX needs a program on the peer).
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The baseline of the forwarding benchmarks: swap MACs, send back out.
#[xdp]
pub fn xdp_tx_swap(ctx: XdpContext) -> u32 {
    swap_macs(&ctx)
}

#[inline(always)]
fn swap_macs(ctx: &XdpContext) -> u32 {
    let Some(eth) = ptr_at::<[u8; 12]>(ctx, 0) else { return XDP_PASS };
    let eth = unsafe { &mut *eth };
    let mut swapped = [0u8; 12];
    swapped[..6].copy_from_slice(&eth[6..]);
    swapped[6..].copy_from_slice(&eth[..6]);
    *eth = swapped;
    XDP_TX
}

/// Restore the template, swap MACs, XDP_TX: what the restore itself costs.
#[xdp]
pub fn bench_restore_tx(ctx: XdpContext) -> u32 {
    if restore(&ctx).is_none() {
        return XDP_PASS;
    }
    swap_macs(&ctx)
}

/// The balancer on the template frame, every repetition (NAT rewrites its input).
#[xdp]
pub fn lvs_bench_same(ctx: XdpContext) -> u32 {
    if restore(&ctx).is_none() {
        return XDP_PASS;
    }
    crate::balance(&ctx)
}

/// The balancer on a new flow every repetition: the frame's source address and port are
/// bumped in place (checksums fixed); DR leaves the rest of the frame as it was.
#[xdp]
pub fn lvs_bench_new(ctx: XdpContext) -> u32 {
    if set_flow(&ctx, next_seq()).is_none() {
        return XDP_PASS;
    }
    crate::balance(&ctx)
}

/// Load generator for live-frame runs: the template with one of `flows` source ports,
/// sent out of the interface it runs on.
/// The balancer on a new flow every repetition from the template: NAT rewrites its input,
/// so the template is restored first, then its source address and port bumped (the cost of
/// a new NAT flow: both `lvs_nat` inserts and, with `LvsConfig::sync`, the ring record).
#[xdp]
pub fn lvs_bench_new_nat(ctx: XdpContext) -> u32 {
    if restore(&ctx).is_none() || set_flow(&ctx, next_seq()).is_none() {
        return XDP_PASS;
    }
    crate::balance(&ctx)
}

#[xdp]
pub fn xdp_gen(ctx: XdpContext) -> u32 {
    let Some(flows) = restore(&ctx) else { return XDP_DROP };
    let seq = next_seq() % if flows == 0 { 1 } else { flows };
    if set_flow(&ctx, 1024 + seq).is_none() {
        return XDP_DROP;
    }
    XDP_TX
}

/// A real server's sink: count and drop.
#[xdp]
pub fn xdp_sink(_ctx: XdpContext) -> u32 {
    if let Some(count) = BENCH_SINK.get_ptr_mut(0) {
        unsafe { *count += 1 };
    }
    XDP_DROP
}
