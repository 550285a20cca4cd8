//! Shared by keepxdp's privileged tests, its benchmark binary and its demo (`keepxdp-demo`).
pub mod demo;
pub mod flood_lab;
pub mod lvs_lab;
pub mod pair_lab;
pub mod smtp_sink;

use anyhow::Result;
use keepxdp::bpf::{Dataplane, GuardInstance, GuardMaps, guard_entries};
use vrrp_common::guard::{GuardReason, GuardStatKey};

/// Loopback's index: what BPF_PROG_TEST_RUN reports as the ingress interface when no
/// context is given.
pub const TEST_RUN_IFINDEX: u32 = 1;

/// The real data plane, loaded, with `instances` configured as if on loopback.
pub fn guard_with(instances: &[GuardInstance]) -> Result<Dataplane> {
    keepxdp_lab::require_root()?;
    let mut dataplane = Dataplane::load()?;
    let entries = guard_entries(instances, |_| Ok(TEST_RUN_IFINDEX))?;
    dataplane.put_all(&entries)?;
    Ok(dataplane)
}

/// The guard's counter for one row (0 when the row does not exist).
pub fn counter(dataplane: &Dataplane, vrid: u8, family: u8, reason: GuardReason) -> Result<u64> {
    let key = GuardStatKey::new(TEST_RUN_IFINDEX, vrid, family, reason);
    Ok(dataplane
        .guard_stat_totals()?
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, total)| total)
        .sum())
}

/// What the guard needs of a vrrp_instance on loopback.
pub fn instance(vrid: u8, family: keepxdp::config::Family, peers: &[&str]) -> GuardInstance {
    GuardInstance {
        name: format!("VI_{vrid}"),
        interface: "lo".into(),
        vrid,
        family,
        unicast_peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
    }
}

/// The keepxdp binary under test: `cargo xtask test` builds it and sets KEEPXDP_BIN.
pub fn keepxdp_bin() -> Result<std::path::PathBuf> {
    let path = std::env::var_os("KEEPXDP_BIN").map(std::path::PathBuf::from).ok_or_else(|| {
        anyhow::anyhow!("KEEPXDP_BIN is not set: run the lab tests with `cargo xtask test`, which builds keepxdp and sets it")
    })?;
    anyhow::ensure!(path.is_file(), "KEEPXDP_BIN={} does not exist", path.display());
    Ok(path)
}

/// An XDP program attached to a lab interface, detached when dropped.
pub struct AttachedXdp {
    _object: aya::Ebpf,
}

/// Attaches the bare `xdp_pass` to `device` in `netns` (native mode). Lab veths that receive
/// frames a peer sends with native XDP_TX / redirect need one, or the frames are dropped.
pub fn attach_xdp_pass(netns: &keepxdp_lab::netns::Netns, device: &str) -> Result<AttachedXdp> {
    let path = netns.path();
    let device = device.to_string();
    std::thread::spawn(move || -> Result<AttachedXdp> {
        let file = std::fs::File::open(&path)?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let mut object = aya::Ebpf::load(keepxdp::bpf::LVS_EBPF)?;
        let program: &mut aya::programs::Xdp =
            object.program_mut(vrrp_common::pins::PROG_XDP_PASS).ok_or_else(|| anyhow::anyhow!("no xdp_pass"))?.try_into()?;
        program.load()?;
        let ifindex = nix::net::if_::if_nametoindex(device.as_str())?;
        program.attach_to_if_index(ifindex, aya::programs::XdpMode::Driver)?;
        Ok(AttachedXdp { _object: object })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("attach thread panicked"))?
}
