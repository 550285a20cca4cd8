//! Watching the balancer while it carries traffic: `keepxdp lvs --rate` and `--connections`
//! against known traffic, and `keepxdp lvs` agreeing with the checkers while a real server
//! goes down. A NAT lab (every connection has state the list can show).
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use keepxdp_lab::{http, keepxdp::Keepxdp, netns::Netns, process::wait_for, require_root};
use keepxdp_tests::lvs_lab::{Nat, VIP, nat_lab, start};

const REAL_SERVERS: [&str; 3] = ["10.1.0.11", "10.1.0.12", "10.1.0.13"];

fn config() -> String {
    let real_servers: String = REAL_SERVERS
        .iter()
        .map(|ip| {
            format!(
                "  real_server {ip} 8080 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n      retry 1\n      delay_before_retry 0.3\n    }}\n  }}\n"
            )
        })
        .collect();
    format!(
        "global_defs {{\n  router_id lb\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop 0.5\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP\n{real_servers}}}\n"
    )
}

/// Requests to VIP:80 from the client until `stop` (at most `limit`, at most 20 s).
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u32>>>,
}

impl Traffic {
    fn start(client: &Netns, first_port: u16, limit: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let (path, flag) = (client.path(), stop.clone());
        let thread = std::thread::spawn(move || -> Result<u32> {
            nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let target: SocketAddr = format!("{VIP}:80").parse()?;
            let started = Instant::now();
            let mut answered = 0;
            for i in 0..limit {
                if flag.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(20) {
                    break;
                }
                // A real server being stopped refuses some: count the answers.
                if http::get(target, first_port + i).is_ok() {
                    answered += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(answered)
        });
        Traffic { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> Result<u32> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("running").join().map_err(|_| anyhow::anyhow!("traffic thread panicked"))?
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lvs(keepxdp: &Keepxdp, extra: &[&str]) -> Result<String> {
    let mut args = vec!["lvs", "--pin-dir", keepxdp.pin_dir.to_str().unwrap(), "--control-socket", keepxdp.control_socket.to_str().unwrap()];
    args.extend_from_slice(extra);
    keepxdp_lab::run(keepxdp.binary.to_str().unwrap(), &args)
}

fn lab() -> Result<(tempfile::TempDir, Nat, Keepxdp)> {
    let dir = tempfile::tempdir()?;
    let lab = nat_lab("10.1.0.1")?;
    let keepxdp = start(&lab.lb, dir.path(), &config(), &REAL_SERVERS)?;
    Ok((dir, lab, keepxdp))
}

/// (the Alive column, the checker's state) of `real`'s row in `keepxdp lvs`.
fn alive_and_checker(table: &str, real: &str) -> Option<(String, String)> {
    let mut lines = table.lines().skip_while(|l| !l.trim_start().starts_with(&format!("-> {real}:")));
    let row = lines.next()?;
    let checker = lines.next()?;
    let alive = row.split_whitespace().last()?.to_string();
    let state = checker.split(": ").nth(1)?.split(',').next()?.to_string();
    Some((alive, state))
}

#[test]
fn lab_rates_and_connections_follow_known_traffic_and_lvs_agrees_with_the_checkers() -> Result<()> {
    require_root()?;
    let (_dir, mut lab, keepxdp) = lab()?;
    let traffic = Traffic::start(&lab.client, 20000, 3000);
    wait_for("traffic through the balancer", Duration::from_secs(5), || Ok(lvs(&keepxdp, &["--json"])?.contains("\"packets\": ")))?;

    // Rates: non-zero while requests flow, for the service and for each real server.
    let rate = lvs(&keepxdp, &["--rate", "--interval", "1"])?;
    let numbers = |line: &str| -> Vec<f64> { line.split_whitespace().rev().take(3).filter_map(|n| n.parse().ok()).collect() };
    let service = rate.lines().find(|l| l.starts_with("TCP  10.0.0.100:80")).ok_or_else(|| anyhow::anyhow!("{rate}"))?;
    ensure!(numbers(service).len() == 3 && numbers(service).iter().all(|n| *n > 0.0), "CPS, InPPS, InBPS non-zero:\n{rate}");
    ensure!(rate.lines().filter(|l| l.starts_with("  -> 10.1.0.1")).count() == 3, "{rate}");

    // A held connection is in the connection list, with its real server.
    let path = lab.client.path();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let (server, mut stream) = http::hold(format!("{VIP}:80").parse()?, 45000)?;
        http::echo(&mut stream, "held\n")?;
        held_tx.send(server)?;
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
        Ok(())
    });
    let server = held_rx.recv_timeout(Duration::from_secs(10))?;
    let list = lvs(&keepxdp, &["--connections"])?;
    let index: usize = server.trim_start_matches("rs").parse()?;
    let held = list.lines().find(|l| l.contains("10.0.0.1:45000")).ok_or_else(|| anyhow::anyhow!("no held connection:\n{list}"))?;
    ensure!(held.starts_with("TCP") && held.contains("10.0.0.100:80") && held.ends_with(&format!("10.1.0.1{index}:8080")), "{held}\n{list}");
    ensure!(list.lines().filter(|l| l.starts_with("TCP")).count() > 10, "the requests' connections are listed too:\n{list}");
    let _ = done_tx.send(());
    holder.join().map_err(|_| anyhow::anyhow!("holder panicked"))??;

    // rs3 stops: at every look, the Alive column and rs3's checker say the same.
    lab.servers[2].stop();
    let started = Instant::now();
    let mut looks = 0;
    loop {
        let table = lvs(&keepxdp, &[])?;
        let (alive, checker) = alive_and_checker(&table, "10.1.0.13").ok_or_else(|| anyhow::anyhow!("no rs3 row:\n{table}"))?;
        looks += 1;
        ensure!((alive == "yes") == (checker == "up"), "look {looks}: Alive {alive} beside a checker that says {checker}:\n{table}");
        if alive == "no" {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(8), "rs3 never went down:\n{table}");
    }
    let answered = traffic.finish()?;
    ensure!(answered > 50, "{answered} requests answered");
    eprintln!("{looks} looks at keepxdp lvs until rs3 was down, {answered} requests answered");
    Ok(())
}
