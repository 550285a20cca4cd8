//! Building the XDP programs for bpfel-unknown-none.
use std::{process::Command, time::{Duration, Instant}};

use anyhow::Result;

use crate::shell;

/// Which toolchain builds `core` for the BPF target: nightly when installed, else the
/// default one with RUSTC_BOOTSTRAP=1 for `-Z build-std`. KEEPXDP_EBPF_TOOLCHAIN=nightly or
/// =default forces one.
#[derive(Debug, Clone, Copy)]
pub enum EbpfToolchain {
    Nightly,
    DefaultBootstrap,
}

impl EbpfToolchain {
    pub fn detect() -> EbpfToolchain {
        match std::env::var("KEEPXDP_EBPF_TOOLCHAIN").as_deref() {
            Ok("nightly") => return EbpfToolchain::Nightly,
            Ok("default") => return EbpfToolchain::DefaultBootstrap,
            _ => {}
        }
        let list = shell::output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
        if list.lines().any(|line| line.starts_with("nightly")) {
            EbpfToolchain::Nightly
        } else {
            EbpfToolchain::DefaultBootstrap
        }
    }

    /// `--toolchain` for rustup; None: the default toolchain.
    pub fn rustup_name(self) -> Option<&'static str> {
        match self {
            EbpfToolchain::Nightly => Some("nightly"),
            EbpfToolchain::DefaultBootstrap => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            EbpfToolchain::Nightly => "nightly",
            EbpfToolchain::DefaultBootstrap => "the default toolchain (RUSTC_BOOTSTRAP=1)",
        }
    }

    pub fn cargo(self) -> Command {
        let mut command = shell::cargo();
        match self {
            EbpfToolchain::Nightly => {
                command.arg("+nightly");
            }
            EbpfToolchain::DefaultBootstrap => {
                command.env("RUSTC_BOOTSTRAP", "1");
            }
        }
        command
    }
}

/// Builds both XDP objects into target/bpfel-unknown-none/release/; returns the time taken.
pub fn build_ebpf() -> Result<Duration> {
    let started = Instant::now();
    let toolchain = EbpfToolchain::detect();
    shell::run(
        toolchain
            .cargo()
            // BTF for the maps and programs (bpftool shows typed keys); target-only flags so
            // host build scripts are unaffected.
            .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS", "-C debuginfo=2 -C link-arg=--btf")
            .args(["build", "--release", "-p", "vrrp-ebpf", "-p", "lvs-ebpf"])
            .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"]),
    )?;
    let took = started.elapsed();
    eprintln!("build-ebpf: vrrp-ebpf and lvs-ebpf built with {} in {took:.1?}", toolchain.describe());
    Ok(took)
}

/// build-ebpf, then the release userspace binary.
pub fn build_all() -> Result<()> {
    build_ebpf()?;
    shell::run(shell::cargo().args(["build", "--release", "-p", "keepxdp", "--bin", "keepxdp"]))?;
    eprintln!("build: {}", shell::root().join("target/release/keepxdp").display());
    Ok(())
}
