//! `cargo xtask test`: unit tests, then BPF tests, then lab tests. The privileged tests
//! fail (never skip) when they cannot run, so CI=true needs no special handling here.
use anyhow::Result;

use crate::{deb, ebpf, shell};

pub fn test() -> Result<()> {
    ebpf::build_ebpf()?;

    eprintln!("== unit tests (no root)");
    shell::run(shell::cargo().args([
        "test", "-p", "vrrp-common", "-p", "keepxdp", "-p", "keepxdp-lab", "-p", "xtask",
    ]))?;

    eprintln!("== BPF tests: the XDP programs loaded and run on crafted frames (BPF_PROG_TEST_RUN); the tests crate's own unit tests");
    shell::run(shell::cargo().args(["test", "-p", "keepxdp-tests", "--lib", "--test", "bpf_guard", "--test", "bpf_lvs"]))?;

    eprintln!("== the package (release build, cargo-deb), for the `deb` suite");
    let package = deb::deb()?;

    eprintln!("== lab tests: network namespaces, keepalived, keepxdp, real packets");
    shell::run(shell::cargo().args(["build", "-p", "keepxdp", "--bin", "keepxdp"]))?;
    let binary = shell::root().join("target/debug/keepxdp");
    shell::run(
        shell::cargo()
            .env("KEEPXDP_BIN", &binary)
            .env("KEEPXDP_DEB", &package)
            .args(["test", "-p", "keepxdp-tests"])
            .args(LAB_TESTS.iter().flat_map(|name| ["--test", name]))
            .args(["--", "--test-threads=1"]),
    )?;
    eprintln!("== all tests passed");
    Ok(())
}

/// The lab suites, run one test at a time (they share the machine's CPUs and timing matters).
const LAB_TESTS: &[&str] = &[
    "lab_guard",
    "lab_config_interop",
    "lab_vrrp",
    "lab_lvs",
    "lab_lvs6",
    "lab_check",
    "lab_link",
    "lab_crash",
    "lab_ops",
    "lab_reload",
    "lab_pair",
    "lab_observe",
    "lab_demo",
    "lab_alerts",
    // dpkg -i of target/debian/keepxdp_*.deb, checks from the installed paths, dpkg --purge.
    "deb",
    "lab_limits",
    "lab_flood",
    "lab_sync",
];
