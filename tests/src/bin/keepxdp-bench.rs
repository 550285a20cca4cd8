//! `cargo xtask bench` runs this: the VRRP guard's per-packet cost, measured with
//! BPF_PROG_TEST_RUN beside a bare XDP_PASS program in the same run (ratios, not absolute
//! numbers, are what carry from run to run on a shared VM).
use std::time::Duration;

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use keepxdp::{bpf::Dataplane, config::Family};
use keepxdp_lab::frames::{Advert, tcp_syn};
use keepxdp_tests::{guard_with, instance};
use vrrp_common::pins::{PROG_VRRP_GUARD, PROG_XDP_PASS};

const RUNS: usize = 5;

fn main() -> Result<()> {
    let repeat: u32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000_000);
    let mut dataplane = guard_with(&[instance(51, Family::Ipv4, &[])])?;
    let pass: &mut Xdp = dataplane
        .balancer_object()
        .program_mut(PROG_XDP_PASS)
        .context("no xdp_pass program")?
        .try_into()?;
    pass.load()?;

    let tcp = tcp_syn([10, 0, 0, 100]);
    let advert = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]).frame();
    let unknown = Advert::v2(99, "10.0.0.1", &["10.0.0.100"]).frame();

    let mut rows = Vec::new();
    let baseline = median_ns(program(&mut dataplane, true)?, &tcp, repeat)?;
    rows.push(("bare XDP_PASS (baseline), 64-byte TCP frame", baseline));
    rows.push(("guard, TCP frame, tail call into the balancer stand-in", median_ns(program(&mut dataplane, false)?, &tcp, repeat)?));
    rows.push(("guard, valid VRRPv2 advert: vrids lookup + counter, XDP_PASS", median_ns(program(&mut dataplane, false)?, &advert, repeat)?));
    rows.push(("guard, unknown VRID: vrids miss + counter, XDP_DROP", median_ns(program(&mut dataplane, false)?, &unknown, repeat)?));
    dataplane.unchain_balancer()?;
    rows.push(("guard, TCP frame, empty balancer slot (XDP_PASS)", median_ns(program(&mut dataplane, false)?, &tcp, repeat)?));

    println!("| case | ns/packet | ÷ bare XDP_PASS |");
    println!("|---|---|---|");
    for (case, ns) in rows {
        println!("| {case} | {ns:.1} | {:.2} |", ns / baseline);
    }
    println!("\nBPF_PROG_TEST_RUN, repeat {repeat}, median of {RUNS} runs, one process pinned to one CPU.");
    Ok(())
}

fn program(dataplane: &mut Dataplane, baseline: bool) -> Result<&mut Xdp> {
    let (object, name) = if baseline {
        (dataplane.balancer_object(), PROG_XDP_PASS)
    } else {
        (dataplane.guard_object(), PROG_VRRP_GUARD)
    };
    Ok(object.program_mut(name).context("program missing")?.try_into()?)
}

/// Median over RUNS of the kernel's average ns per repetition.
fn median_ns(program: &mut Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let result = program.test_run(TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() })?;
            Ok(result.duration)
        })
        .collect::<Result<_>>()?;
    samples.sort();
    Ok(samples[RUNS / 2].as_nanos() as f64)
}
