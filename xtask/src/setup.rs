//! `cargo xtask setup`: installs what is missing, and only that. Idempotent; says what it did.
use std::{process::Command, time::Instant};

use anyhow::{Result, bail};

use crate::{ebpf::EbpfToolchain, shell};

/// Debian packages: the LLVM 22 that bpf-linker links against (it matches rustc's LLVM 22;
/// bookworm has it in bookworm-security), bpftool, and the lab's real peers and tools.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "bpftool",
    "iproute2",
    "util-linux",
    "keepalived",
    "tshark",
    "tcpdump",
    "nftables",
    "curl",
    "iputils-ping",
    // Balancer labs turn veth checksum offload off (XDP forwards frames whose checksum the
    // sender's veth never filled in).
    "ethtool",
    // `systemd-analyze verify` on contrib/keepxdp.service (systemd need not be PID 1).
    "systemd",
    // `promtool check metrics` lints the Prometheus exposition in lab_observe (~7 s to install).
    "prometheus",
    // lab_observe drives `keepxdp top` in a terminal (send-keys, capture-pane).
    "tmux",
];

pub const BPF_LINKER_VERSION: &str = "0.13.0";
/// `cargo xtask deb` packages with cargo-deb (its systemd maintainer scripts, conffiles,
/// compressed man pages, $auto dependencies).
pub const CARGO_DEB_VERSION: &str = "3.8.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn setup() -> Result<()> {
    let started = Instant::now();
    let mut did = Vec::new();
    apt(&mut did)?;
    let toolchain = EbpfToolchain::detect();
    rust_src(toolchain, &mut did)?;
    bpf_linker(&mut did)?;
    cargo_deb(&mut did)?;
    if did.is_empty() {
        eprintln!(
            "setup: nothing to install (apt packages, rust-src for {}, bpf-linker {BPF_LINKER_VERSION}, cargo-deb {CARGO_DEB_VERSION} present)",
            toolchain.describe()
        );
    } else {
        eprintln!("setup: {} in {:.0?}", did.join("; "), started.elapsed());
    }
    Ok(())
}

fn apt_installed(package: &str) -> bool {
    shell::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.contains("install ok installed"))
}

fn apt(did: &mut Vec<String>) -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES.iter().copied().filter(|p| !apt_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("these Debian packages are missing and installing them needs root: {}", missing.join(" "));
    }
    shell::run(Command::new("apt-get").args(["update", "-q"]))?;
    shell::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )?;
    did.push(format!("installed {}", missing.join(" ")));
    Ok(())
}

fn rust_src(toolchain: EbpfToolchain, did: &mut Vec<String>) -> Result<()> {
    let rustup = |args: &[&str]| {
        let mut command = Command::new("rustup");
        command.env_remove("RUSTUP_TOOLCHAIN").current_dir(shell::root()).args(args);
        if let Some(name) = toolchain.rustup_name() {
            command.args(["--toolchain", name]);
        }
        command
    };
    let installed = shell::output(&mut rustup(&["component", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|line| line.starts_with("rust-src")) {
        return Ok(());
    }
    shell::run(&mut rustup(&["component", "add", "rust-src"]))?;
    did.push(format!("added rust-src to {}", toolchain.describe()));
    Ok(())
}

fn bpf_linker(did: &mut Vec<String>) -> Result<()> {
    let version = shell::output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(BPF_LINKER_VERSION) {
        return Ok(());
    }
    // bpf-linker's build script finds LLVM through LLVM_PREFIX or the first llvm-config on
    // PATH (Debian's /usr/bin/llvm-config is LLVM 14): point both at LLVM 22.
    let path = format!("{LLVM_PREFIX}/bin:{}", std::env::var("PATH").unwrap_or_default());
    shell::run(
        shell::cargo()
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX)
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .env("PATH", path)
            .args(["install", "--locked", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
            .args(["--no-default-features", "--features", "llvm-22"]),
    )?;
    did.push(format!("built bpf-linker {BPF_LINKER_VERSION} against LLVM 22"));
    Ok(())
}

fn cargo_deb(did: &mut Vec<String>) -> Result<()> {
    let version = shell::output(shell::cargo().args(["deb", "--version"])).unwrap_or_default();
    if version.split_whitespace().any(|word| word.trim_start_matches('v') == CARGO_DEB_VERSION) {
        return Ok(());
    }
    shell::run(shell::cargo().args(["install", "--locked", &format!("cargo-deb@{CARGO_DEB_VERSION}")]))?;
    did.push(format!("installed cargo-deb {CARGO_DEB_VERSION}"));
    Ok(())
}
