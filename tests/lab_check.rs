//! Health checkers end to end: the DR lab of `lab_lvs` (client, LB running keepxdp, three real
//! servers with the VIP on lo), each real server with an HTTP_GET checker. Stopping rs2's
//! HTTP server takes it out of the Maglev ring within keepalived's retry bound, with no
//! client errors after that; starting it again brings it back.
use std::{
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use keepxdp_lab::{keepxdp::Keepxdp, netns::Netns, process::wait_for, require_root};
use keepxdp_tests::lvs_lab::{VIP, dr_lab, lvs_table, requests, ring_slots, start, status_backend};

/// The checkers' timing (seconds), as the configuration below writes it.
const DELAY_LOOP: f64 = 1.0;
const CONNECT_TIMEOUT: f64 = 1.0;
const RETRY: f64 = 1.0;
const DELAY_BEFORE_RETRY: f64 = 1.0;
/// What polling adds on top of keepxdp's own delay: one `keepxdp lvs --json` run (it reads
/// the 65537-slot ring slot by slot; ~100 ms in a debug build) plus the 100 ms poll interval,
/// rounded up generously for a loaded 2-vCPU VM.
const POLL_ALLOWANCE: f64 = 0.5;

/// Down bound, from keepalived's retry rules (vrrp-user/src/check/retry.rs): the last
/// successful probe can come just before the server stops, so the first failing probe is at
/// most `delay_loop` later; a failure is retried `retry` times, `delay_before_retry` apart,
/// and the checker is declared down on the (retry + 1)-th failure in a row, at once. Each
/// probe ends within `connect_timeout` (a stopped server refuses at once, so the retry + 1
/// probes together take far less than one connect_timeout). The verdict is written to the
/// ring in the same step. With delay_before_retry = delay_loop this is the issue's
/// delay_loop × (retry + 1) + connect_timeout = 3 s.
fn down_bound() -> Duration {
    Duration::from_secs_f64(DELAY_LOOP + RETRY * DELAY_BEFORE_RETRY + CONNECT_TIMEOUT + POLL_ALLOWANCE)
}

/// Up bound: a down checker keeps probing (a failure is retried after delay_before_retry,
/// the last retry's failure waits delay_loop), so the next probe after the server is back
/// starts within max(delay_loop, delay_before_retry), ends within connect_timeout, and a
/// down checker comes up on its first success (no rise count in keepalived).
fn up_bound() -> Duration {
    Duration::from_secs_f64(DELAY_LOOP.max(DELAY_BEFORE_RETRY) + CONNECT_TIMEOUT + POLL_ALLOWANCE)
}

const RS2: &str = "10.0.0.12";

fn config() -> String {
    let real_servers: String = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
        .iter()
        .map(|ip| {
            format!(
                "  real_server {ip} 80 {{\n    weight 1\n    HTTP_GET {{\n      url {{\n        path /\n        status_code 200\n      }}\n      \
                 connect_timeout {CONNECT_TIMEOUT}\n      retry {RETRY}\n      delay_before_retry {DELAY_BEFORE_RETRY}\n    }}\n  }}\n"
            )
        })
        .collect();
    format!(
        "global_defs {{\n  router_id lb\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop {DELAY_LOOP}\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n{real_servers}}}\n"
    )
}

/// Polls every 100 ms until `done`, for at most 10 s: how long it took.
fn time_until(what: &str, since: Instant, mut done: impl FnMut() -> Result<bool>) -> Result<Duration> {
    while since.elapsed() < Duration::from_secs(10) {
        if done()? {
            return Ok(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what}: not within 10 s")
}

/// A connect to `addr` from inside `netns` (what a client or the checker would get).
fn connect_from(netns: &Netns, addr: &str) -> Result<std::io::Result<TcpStream>> {
    let path = netns.path();
    let addr: SocketAddr = addr.parse()?;
    std::thread::spawn(move || -> Result<std::io::Result<TcpStream>> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(TcpStream::connect_timeout(&addr, Duration::from_secs(1)))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("connect thread panicked"))?
}

#[test]
fn lab_http_get_takes_a_stopped_real_server_out_of_the_ring_within_the_retry_bound_and_brings_it_back() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let mut lab = dr_lab()?;
    let reals = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
    let keepxdp = start(&lab.lb, dir.path(), &config(), &reals)?;
    let context = |keepxdp: &Keepxdp, lb: &Netns| {
        format!("{}\n{}\n{}", lvs_table(keepxdp, lb).unwrap_or_default(), keepxdp.status_table().unwrap_or_default(), keepxdp.child.log_text())
    };
    // Every checker has probed (and passed) at least once; every server in the ring.
    wait_for("each HTTP_GET to pass once", Duration::from_secs(10), || {
        for real in reals {
            let backend = status_backend(&keepxdp, real)?;
            let checker = &backend["checkers"][0];
            if !(checker["up"] == true && checker["latency_ms"].is_number()) {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    for real in reals {
        ensure!(ring_slots(&keepxdp, &lab.lb, real)? > 0, "{real} has no ring slots\n{}", context(&keepxdp, &lab.lb));
    }
    let before = requests(&lab.client, 60, 20000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(&keepxdp, &lab.lb)))?;
    ensure!(before.len() == 3 && before.values().sum::<u32>() == 60, "all three answer: {before:?}");

    // Stop rs2's HTTP server: its listener is closed, new connections are refused.
    let stopped = Instant::now();
    lab.servers[1].stop();
    match connect_from(&lab.rs[1], &format!("{RS2}:80"))? {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => bail!("a connection to the stopped server must be refused, got {other:?}"),
    }
    let out_after = time_until("rs2 out of the ring", stopped, || Ok(ring_slots(&keepxdp, &lab.lb, RS2)? == 0))
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(&keepxdp, &lab.lb)))?;
    eprintln!("rs2 out of the Maglev ring {:.2} s after its server stopped (bound {:.1} s)", out_after.as_secs_f64(), down_bound().as_secs_f64());
    ensure!(out_after <= down_bound(), "rs2 left the ring after {out_after:?}, bound {:?}\n{}", down_bound(), context(&keepxdp, &lab.lb));

    // Status: rs2 down, its HTTP_GET down with the reason, one flip.
    wait_for("status to show rs2 down", Duration::from_secs(2), || Ok(status_backend(&keepxdp, RS2)?["up"] == false))?;
    let backend = status_backend(&keepxdp, RS2)?;
    let checker = &backend["checkers"][0];
    ensure!(checker["name"].as_str().is_some_and(|n| n.starts_with("HTTP_GET")), "{backend}");
    ensure!(checker["up"] == false && checker["flips"] == 1, "{backend}");
    let error = checker["last_error"].as_str().unwrap_or_default();
    ensure!(error.contains("refused"), "last_error should say the connection was refused: {backend}");
    for real in ["10.0.0.11", "10.0.0.13"] {
        let other = status_backend(&keepxdp, real)?;
        ensure!(other["up"] == true && other["checkers"][0]["flips"] == 0, "{other}");
    }
    // `keepxdp lvs` shows the same beside the forwarding counters.
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(
        table.lines().any(|l| l.contains("HTTP_GET") && l.contains(": down") && l.contains("flips 1") && l.contains("refused")),
        "keepxdp lvs should show rs2's checker down:\n{table}"
    );

    // 200 requests after that point: none fails, none reaches rs2.
    let during = requests(&lab.client, 200, 21000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(&keepxdp, &lab.lb)))?;
    ensure!(during.values().sum::<u32>() == 200, "{during:?}");
    ensure!(!during.contains_key("rs2"), "rs2 is stopped but answered: {during:?}");
    ensure!(during.contains_key("rs1") && during.contains_key("rs3"), "{during:?}");

    // Start it again: back in the ring, and it gets requests.
    let restarted = Instant::now();
    lab.servers[1].restart()?;
    let back_after = time_until("rs2 back in the ring", restarted, || Ok(ring_slots(&keepxdp, &lab.lb, RS2)? > 0))
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(&keepxdp, &lab.lb)))?;
    eprintln!("rs2 back in the Maglev ring {:.2} s after its server started (bound {:.1} s)", back_after.as_secs_f64(), up_bound().as_secs_f64());
    ensure!(back_after <= up_bound(), "rs2 came back after {back_after:?}, bound {:?}\n{}", up_bound(), context(&keepxdp, &lab.lb));
    wait_for("status to show rs2 up", Duration::from_secs(2), || Ok(status_backend(&keepxdp, RS2)?["up"] == true))?;
    let backend = status_backend(&keepxdp, RS2)?;
    ensure!(backend["checkers"][0]["up"] == true && backend["checkers"][0]["flips"] == 2, "{backend}");
    let after = requests(&lab.client, 60, 22000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(&keepxdp, &lab.lb)))?;
    ensure!(after.values().sum::<u32>() == 60, "{after:?}");
    ensure!(after.get("rs2").copied().unwrap_or(0) > 0, "rs2 is back but gets no requests: {after:?}");
    Ok(())
}
