//! Lab building blocks for keepxdp's privileged tests, benchmarks and demo: network
//! namespaces that are removed on drop, veth links between them, child processes that are
//! killed on drop, crafted VRRP and TCP/UDP frames (with checksum checks and pcap output), and Debian's keepalived as a peer.
//!
//! Everything a lab creates is named with the creating process's pid, and torn down by that
//! name: nothing outside the lab is touched.
pub mod checksum;
pub mod flood;
pub mod frames;
pub mod http;
pub mod keepalived;
pub mod keepxdp;
pub mod lines;
pub mod netns;
pub mod packets;
pub mod process;
pub mod vrrp_lab;

use anyhow::{Result, bail};

/// Privileged tests fail (never skip) without root: under CI a skip would hide them.
pub fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("this test loads XDP programs and creates network namespaces: it must run as root");
    }
    Ok(())
}

/// Runs a command, failing with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = std::process::Command::new(program).args(args).output()?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
