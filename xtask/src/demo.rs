//! `cargo xtask demo`: a two-namespace lab. keepalived advertises in `peer`; keepxdp's guard
//! runs in `node` on the embedded default configuration; a forger on the segment sends
//! broken adverts; the guard's counters are printed; the lab is torn down (also on Ctrl-C).
use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use keepxdp_lab::{
    frames::Advert,
    keepalived,
    keepxdp::Keepxdp,
    netns::{Netns, send_frames, veth_pair},
    require_root,
};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::{ebpf, shell};

/// The node's configuration: an ordinary keepalived.conf.
const NODE_CONFIG: &str = include_str!("../demo/keepxdp.conf");

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Sleeps, but returns an error as soon as Ctrl-C is pressed (the lab's guards then clean up).
fn pause(duration: Duration) -> Result<()> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted: tearing the lab down");
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn demo() -> Result<()> {
    require_root()?;
    ebpf::build_all()?;
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::empty(), SigSet::empty());
    unsafe { sigaction(Signal::SIGINT, &action)? };
    match lab() {
        // The lab's guards (processes, namespaces, mounts) have been dropped by now.
        Err(_) if INTERRUPTED.load(Ordering::Relaxed) => {
            println!("\ninterrupted: lab torn down (processes stopped, namespaces deleted)");
            Ok(())
        }
        result => result,
    }
}

fn lab() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("keepxdp-demo-").tempdir()?;
    println!("\n== lab: namespaces `peer` (keepalived) and `node` (keepxdp), one veth between them");
    let peer = Netns::new("peer")?;
    let node = Netns::new("node")?;
    veth_pair(&peer, "kxpeer", "10.77.0.1/24", &node, "kxnode", "10.77.0.2/24")?;

    let binary = shell::root().join("target/release/keepxdp");
    let mut keepxdp = Keepxdp::start(&binary, &node, dir.path(), NODE_CONFIG)?;
    println!("keepxdp is running in {} (pid {}), guard attached to kxnode, maps pinned in {}", node.name, keepxdp.child.pid(), keepxdp.pin_dir.display());

    let config = keepalived::vrrp_config(&[
        ("VI_51", "kxpeer", 51, "10.77.0.100/24", 100),
        ("VI_52", "kxpeer", 52, "10.77.0.200/24", 100),
    ]);
    let mut peer_keepalived = keepalived::start(&peer, dir.path(), &config)?;
    println!("{} is advertising VRID 51 and VRID 52 from {} (pid {})", keepalived_version(), peer.name, peer_keepalived.pid());
    println!("letting adverts flow for 5 s...");
    pause(Duration::from_secs(5))?;
    peer_keepalived.check_running()?;

    println!("\n== a forger on the segment sends broken adverts");
    let forged = forged_adverts();
    for (what, _) in &forged {
        println!("  {what}");
    }
    send_frames(&peer, "kxpeer", forged.into_iter().flat_map(|(_, frames)| frames).collect())?;
    pause(Duration::from_millis(500))?;

    println!("\n== the guard's counters (`keepxdp guard-stats --pin-dir {}`)", keepxdp.pin_dir.display());
    print!("{}", keepxdp.guard_stats_table(&node)?);
    println!(
        "(bpftool sees the same map: bpftool map dump pinned {}/guard_stats)",
        keepxdp.pin_dir.display()
    );

    println!("\n== keepxdp's VRRP instances (`keepxdp status`)");
    print!("{}", keepxdp.status_table()?);
    println!("(VI_51 follows keepalived, priority 100 > 50; VI_60's peer 10.77.0.9 is silent but for one lower-priority advert, so keepxdp is its Master)");

    println!("\n== teardown");
    peer_keepalived.stop(Duration::from_secs(5))?;
    keepxdp.stop()?;
    println!("keepxdp stopped on SIGTERM: guard detached, pins removed; namespaces deleted");
    drop((peer_keepalived, node, peer));
    balancer_demo()
}

/// The balancer part: the tests' DR lab (it attaches lab XDP programs with the balancer
/// object, so it is a binary of the tests crate, not part of xtask).
fn balancer_demo() -> Result<()> {
    pause(Duration::from_millis(10))?;
    shell::run(shell::cargo().args(["build", "--release", "-p", "keepxdp-tests", "--bin", "keepxdp-lvs-demo"]))?;
    let status = std::process::Command::new(shell::root().join("target/release/keepxdp-lvs-demo"))
        .env("KEEPXDP_BIN", shell::root().join("target/release/keepxdp"))
        .status()?;
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted: tearing the lab down");
    }
    if !status.success() {
        bail!("the balancer demo failed ({status})");
    }
    Ok(())
}

fn keepalived_version() -> String {
    // keepalived prints its version on stderr.
    std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            text.lines().find(|line| !line.trim().is_empty()).map(|line| line.trim().to_string())
        })
        .unwrap_or_else(|| "keepalived".into())
}

/// (what it is, frames): one kind of broken advert per guard reason, and one good unicast one.
fn forged_adverts() -> Vec<(String, Vec<Vec<u8>>)> {
    let good = Advert::v2(51, "10.77.0.1", &["10.77.0.100"]);
    let mut bad_ttl = good.clone();
    bad_ttl.ttl = 64;
    let mut bad_version = good.clone();
    bad_version.version = 4;
    let mut bad_type = good.clone();
    bad_type.kind = 2;
    let mut truncated = good.clone();
    truncated.count_override = Some(6);
    let unknown = Advert::v2(99, "10.77.0.1", &["10.77.0.100"]);
    let foreign = Advert::v2(60, "10.77.0.1", &["10.77.0.160"]);
    // Lower than keepxdp's 50, so VI_60 stays Master (a higher one would take over: VRRP
    // trusts its peers; the guard only makes sure adverts come from them).
    let mut from_peer = Advert::v2(60, "10.77.0.9", &["10.77.0.160"]);
    from_peer.priority = 10;
    let times = |advert: &Advert, n: usize| vec![advert.frame(); n];
    vec![
        ("3 × VRID 51 with TTL 64 (routed from afar)           -> bad_ttl".into(), times(&bad_ttl, 3)),
        ("2 × VRID 51 claiming VRRP version 4                  -> bad_version".into(), times(&bad_version, 2)),
        ("2 × VRID 51 with packet type 2                       -> bad_type".into(), times(&bad_type, 2)),
        ("2 × VRID 51 claiming 6 addresses but carrying 1      -> truncated".into(), times(&truncated, 2)),
        ("4 × VRID 99, not configured on kxnode                -> unknown_vrid".into(), times(&unknown, 4)),
        ("2 × unicast VRID 60 from 10.77.0.1, not its peer     -> foreign_source".into(), times(&foreign, 2)),
        ("1 × unicast VRID 60 from its peer 10.77.0.9 (prio 10) -> accepted".into(), times(&from_peer, 1)),
    ]
}
