//! The data plane outlives keepxdp: a lone DR Master's keepxdp killed with SIGKILL under
//! load, the balancer left forwarding, then a new keepxdp adopting it in place.
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{http, keepxdp::Keepxdp, netns::Netns, process::wait_for, require_root};
use keepxdp_tests::{
    keepxdp_bin,
    lvs_lab::{VIP, dr_lab, holds, resolved},
};

/// One node, `state BACKUP` (as both nodes of a pair usually are): a restarted keepxdp is
/// Backup for a Master_Down_Interval before it is Master again.
fn config() -> String {
    let servers: String = (1..=3).map(|n| format!("  real_server 10.0.0.1{n} 80 {{\n    weight 1\n  }}\n")).collect();
    format!(
        "global_defs {{\n  router_id lb\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  state BACKUP\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n{servers}}}\n"
    )
}

/// New requests, one every 20 ms from fresh source ports, until `stop` (at most 1,500):
/// (sent, failures with their time since the start).
fn request_stream(client: &Netns, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<(u32, Vec<(Duration, String)>)>> {
    let path = client.path();
    std::thread::spawn(move || {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let target: SocketAddr = format!("{VIP}:80").parse()?;
        let started = Instant::now();
        let mut sent = 0;
        let mut failures = Vec::new();
        while !stop.load(Ordering::Relaxed) && sent < 1500 {
            if let Err(error) = http::get(target, 50000 + sent as u16) {
                failures.push((started.elapsed(), format!("{error:#}")));
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok((sent, failures))
    })
}

#[test]
fn lab_kill_9_of_a_lone_dr_master_loses_no_request_and_no_connection_and_the_next_keepxdp_adopts_the_data_plane() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = dr_lab()?;
    let binary = keepxdp_bin()?;
    let real_servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
    let mut first = Keepxdp::start(&binary, &lab.lb, dir.path(), &config())?;
    wait_for("the LB to become Master", Duration::from_secs(10), || holds(&lab.lb, "eth0", VIP))?;
    wait_for("resolved real servers", Duration::from_secs(10), || resolved(&first, &lab.lb, &real_servers))?;

    // 20 long-lived connections, echoed at every step.
    let path = lab.client.path();
    let (step_tx, step_rx) = std::sync::mpsc::channel::<&'static str>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || -> Result<usize> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let target: SocketAddr = format!("{VIP}:80").parse()?;
        let mut held = Vec::new();
        for i in 0..20u16 {
            held.push(http::hold(target, 42000 + i)?);
        }
        for step in step_rx {
            for (server, stream) in held.iter_mut() {
                http::echo(stream, &format!("{step}\n")).map_err(|e| anyhow::anyhow!("{step}: connection to {server}: {e:#}"))?;
            }
            done_tx.send(())?;
        }
        Ok(held.len())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stream = request_stream(&lab.client, stop.clone());

    let mut second = None;
    let steps = (|| -> Result<()> {
        step_tx.send("before")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_millis(500));
        first.child.kill9();
        // keepxdp is gone; its pinned link keeps the guard and the balancer running.
        std::thread::sleep(Duration::from_secs(2));
        ensure!(first.pin_dir.join("link_vrrp_guard_eth0").exists(), "the guard's link is pinned");
        ensure!(lab.lb.run("bpftool", &["net", "show"])?.contains("eth0("), "XDP still attached to eth0 after kill -9");
        step_tx.send("while keepxdp is dead")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        // The next keepxdp: Backup for a Master_Down_Interval, keeping the VIP the dead one
        // left (no other router is heard), then Master.
        let restarted = Keepxdp::start(&binary, &lab.lb, dir.path(), &config())?;
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut master = false;
        while Instant::now() < deadline && !master {
            ensure!(holds(&lab.lb, "eth0", VIP)?, "the VIP left eth0 while the new keepxdp was Backup");
            let status: serde_json::Value = serde_json::from_str(&restarted.status_json()?)?;
            master = status["vrrp"][0]["state"] == "Master";
            std::thread::sleep(Duration::from_millis(100));
        }
        ensure!(master, "the new keepxdp did not become Master:\n{}", restarted.child.log_text());
        second = Some(restarted);
        step_tx.send("after the restart")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    })();
    drop(step_tx);
    stop.store(true, Ordering::Relaxed);
    let log = second.as_ref().map(|s| s.child.log_text()).unwrap_or_default();
    let held = held.join().map_err(|_| anyhow::anyhow!("client thread panicked"))?.map_err(|e| anyhow::anyhow!("{e:#}\n{log}"))?;
    let (sent, failures) = stream.join().map_err(|_| anyhow::anyhow!("request thread panicked"))??;
    steps.with_context(|| log.clone())?;
    println!("{sent} requests through a kill -9 and a restart, {} failed; {held} connections held", failures.len());
    ensure!(held == 20);
    ensure!(sent > 200, "only {sent} requests were sent");
    ensure!(failures.is_empty(), "{} of {sent} requests failed: {failures:?}\n{log}", failures.len());
    ensure!(log.contains("replaced in place"), "the new keepxdp adopts the kept link:\n{log}");
    ensure!(log.contains("kept while Backup") || log.contains("left by a previous run"), "the VIP a crashed run left is kept:\n{log}");
    let second = second.expect("started");
    drop(second);
    Ok(())
}
