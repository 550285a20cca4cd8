//! `cargo xtask bench`: measurements as ratios against a baseline run in the same invocation.
use std::process::Command;

use anyhow::Result;

use crate::{ebpf, shell};

pub fn bench() -> Result<()> {
    keepxdp_lab::require_root()?;
    ebpf::build_ebpf()?;
    shell::run(shell::cargo().args(["build", "--release", "-p", "keepxdp-tests", "--bin", "keepxdp-bench"]))?;
    let binary = shell::root().join("target/release/keepxdp-bench");
    // One CPU, away from CPU 0 where interrupts land (BENCHMARKING.md).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = if cpus > 1 { "1" } else { "0" };
    eprintln!("== guard cost per packet (BPF_PROG_TEST_RUN, pinned to CPU {cpu})");
    shell::run(Command::new("taskset").args(["-c", cpu]).arg(&binary).arg("guard"))?;
    eprintln!("== keepalived.conf with 10,000 real servers: keepxdp (release) vs keepalived -t");
    shell::run(Command::new("taskset").args(["-c", cpu]).arg(&binary).arg("config"))?;
    eprintln!("== XDP balancer: cost per packet (BPF_PROG_TEST_RUN, pinned to CPU {cpu}), then packets/s over a veth rig vs nftables DNAT (all on CPU 0, ~45 s)");
    shell::run(Command::new("taskset").args(["-c", cpu]).arg(&binary).args(["lvs", "all"]))?;
    eprintln!("== NAT state sync: the ring hook's cost per new NAT flow (sync on ÷ off), the sender's entries/s and bytes/s (pinned to CPU {cpu})");
    shell::run(Command::new("taskset").args(["-c", cpu]).arg(&binary).arg("sync"))?;
    shell::run(shell::cargo().args(["build", "--release", "-p", "keepxdp", "--bin", "keepxdp"]))?;
    // Not pinned: keepxdp and the 10,000 listeners share the machine as they would.
    eprintln!("== health checkers: keepxdp run with 10,000 TCP_CHECKs every 1 s (CPU, RSS, verdict → map latency; two runs, ~80 s)");
    shell::run(Command::new(&binary).env("KEEPXDP_BIN", shell::root().join("target/release/keepxdp")).arg("checkers"))?;
    // Not pinned: the sender, the Backup and the kernel's softirq work share the machine.
    eprintln!("== VRRP flood: invalid adverts at a keepxdp Backup, then a keepalived Backup, beside a keepalived Master (netns lab, ~3 min)");
    let flood_seconds = std::env::var("KEEPXDP_FLOOD_SECONDS").unwrap_or_else(|_| "15".into());
    shell::run(
        Command::new(&binary)
            .env("KEEPXDP_BIN", shell::root().join("target/release/keepxdp"))
            .args(["flood", &flood_seconds]),
    )?;
    eprintln!("== VRRP failover: keepxdp and keepalived, kill -9 of the Master (netns lab, ~6 min)");
    let runs = std::env::var("KEEPXDP_FAILOVER_RUNS").unwrap_or_else(|_| "10".into());
    shell::run(
        Command::new(&binary)
            .env("KEEPXDP_BIN", shell::root().join("target/release/keepxdp"))
            .args(["failover", &runs]),
    )
}
