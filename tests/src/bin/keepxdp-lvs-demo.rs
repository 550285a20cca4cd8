//! The balancer part of `cargo xtask demo`: the DR lab of the tests (a client, keepxdp on the
//! LB, three real servers on one switch) with HTTP_GET checkers. It shows requests spread by
//! weight, `keepxdp lvs`, a real server's HTTP process stopping (out of the ring, no client
//! errors) and coming back. Lives in the tests crate because it attaches lab XDP programs with
//! the balancer object; `KEEPXDP_BIN` names the keepxdp to run.
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use std::sync::atomic::{AtomicBool, Ordering};
use keepxdp_lab::process::wait_for;
use keepxdp_tests::lvs_lab::{VIP, dr_lab, lvs_json, lvs_table, requests, start};

const REAL_SERVERS: [&str; 3] = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];

fn config() -> String {
    let mut text = format!(
        "global_defs {{\n  router_id demo_lb\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n"
    );
    for (ip, weight) in REAL_SERVERS.iter().zip([1, 1, 2]) {
        text.push_str(&format!(
            "  real_server {ip} 80 {{\n    weight {weight}\n    HTTP_GET {{\n      url {{\n        path /\n        status_code 200\n      }}\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }}\n  }}\n"
        ));
    }
    text.push_str("}\n");
    text
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Between steps: Ctrl-C ends the demo through the lab's guards (namespaces deleted,
/// processes stopped) instead of killing it where it stands.
fn step() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted: tearing the balancer lab down");
    }
    Ok(())
}

fn ring_slots(json: &serde_json::Value, real: &str) -> u64 {
    json["services"][0]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["address"].as_str().is_some_and(|a| a.starts_with(&format!("{real}:"))))
        .and_then(|b| b["ring_slots"].as_u64())
        .unwrap_or(0)
}

fn main() -> Result<()> {
    keepxdp_lab::require_root()?;
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGINT, &action)? };
    demo()
}

fn demo() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("keepxdp-lvs-demo-").tempdir()?;
    println!("\n== balancer lab: client, LB (keepxdp), real servers rs1..rs3 (HTTP, VIP {VIP} on lo) on one switch");
    let mut lab = dr_lab()?;
    let keepxdp = start(&lab.lb, dir.path(), &config(), &REAL_SERVERS)?;
    println!("keepxdp is Master for {VIP} in {}; virtual_server {VIP}:80 DR, weights 1:1:2, HTTP_GET every second", lab.lb.name);

    step()?;
    println!("\n== 300 HTTP requests from the client through the VIP (DR: replies go straight back)");
    let seen = requests(&lab.client, 300, 20000)?;
    println!("answered by: {seen:?}");
    step()?;
    println!("\n== `keepxdp lvs` (from the pinned maps; checker states from the running keepxdp)");
    print!("{}", lvs_table(&keepxdp, &lab.lb)?);

    step()?;
    println!("\n== rs2's HTTP server stops");
    lab.servers[1].stop();
    let stopped = Instant::now();
    wait_for("rs2 out of the ring", Duration::from_secs(10), || Ok(ring_slots(&lvs_json(&keepxdp, &lab.lb)?, "10.0.0.12") == 0))?;
    println!("rs2 left the Maglev ring {:.1} s later (delay_loop 1 × (retry 1 + 1) + connect_timeout 1 = 3 s at most)", stopped.elapsed().as_secs_f64());
    let seen = requests(&lab.client, 100, 30000)?;
    println!("100 more requests, no errors: {seen:?}");
    print!("{}", lvs_table(&keepxdp, &lab.lb)?);

    step()?;
    println!("\n== rs2's HTTP server starts again");
    lab.servers[1].restart()?;
    wait_for("rs2 back in the ring", Duration::from_secs(10), || Ok(ring_slots(&lvs_json(&keepxdp, &lab.lb)?, "10.0.0.12") > 0))?;
    let seen = requests(&lab.client, 100, 31000)?;
    println!("back in the ring; 100 more requests: {seen:?}");
    step()?;
    println!("\n== teardown (keepxdp stopped, namespaces deleted)");
    drop(keepxdp);
    Ok(())
}
