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
use keepxdp_tests::lvs_lab::{Nat, VIP, nat_lab, start_with};

/// Where keepxdp serves metrics, inside the LB namespace.
const METRICS: &str = "127.0.0.1:19650";

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
    let keepxdp = start_with(&lab.lb, dir.path(), &config(), &REAL_SERVERS, &["--metrics-listen", METRICS])?;
    Ok((dir, lab, keepxdp))
}

/// `GET /metrics` from inside `netns`: the body.
fn scrape(netns: &Netns) -> Result<String> {
    use std::io::{Read, Write};
    let path = netns.path();
    std::thread::spawn(move || -> Result<String> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let mut stream = std::net::TcpStream::connect(METRICS)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: lab\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        ensure!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("scrape thread panicked"))?
}

/// `promtool check metrics` (Debian's prometheus package): the exposition lints clean.
fn promtool(body: &str) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("promtool (cargo xtask setup installs it): {e}"))?;
    child.stdin.take().expect("piped").write_all(body.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The value of the series `name{...}` whose labels include every one of `labels`.
fn series(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A tmux server of this test's own (`tmux -L kx<pid>-top`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Result<Tmux> {
        let tmux = Tmux { socket: format!("kx{}-top", std::process::id()) };
        tmux.run(&["new-session", "-d", "-s", "top", "-x", &width.to_string(), "-y", &height.to_string(), command])?;
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        keepxdp_lab::run("tmux", &all)
    }

    fn screen(&self) -> Result<String> {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The PKT/s column of `real`'s row on `keepxdp top`'s screen (k/M suffixes read back).
fn top_packets_per_second(screen: &str, real: &str) -> Option<f64> {
    let row = screen.lines().find(|l| l.contains(&format!("-> {real}:")))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    let cell = cells.get(cells.len().checked_sub(2)?)?;
    let (digits, scale) = match cell.chars().last()? {
        'k' => (&cell[..cell.len() - 1], 1e3),
        'M' => (&cell[..cell.len() - 1], 1e6),
        _ => (&cell[..], 1.0),
    };
    digits.parse::<f64>().ok().map(|n| n * scale)
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

    // Metrics: scraped while traffic flows, linted, with keepalived's and node_exporter's names.
    let body = scrape(&lab.lb)?;
    promtool(&body)?;
    let vi = ["iname=\"VI_1\"", "intf=\"eth0\"", "vrid=\"51\""];
    ensure!(series(&body, "keepalived_vrrp_state", &vi) == Some(2.0), "VI_1 is Master:\n{body}");
    ensure!(series(&body, "keepalived_advertisements_sent_total", &vi).is_some_and(|n| n > 0.0), "{body}");
    for rs in REAL_SERVERS {
        let labels = ["local_address=\"10.0.0.100\"", "local_port=\"80\"", "proto=\"TCP\"", "remote_port=\"8080\""];
        let remote = format!("remote_address=\"{rs}\"");
        let labels: Vec<&str> = labels.iter().copied().chain([remote.as_str()]).collect();
        ensure!(series(&body, "keepalived_lvs_rs_in_packets_total", &labels).is_some_and(|n| n > 0.0), "{rs} forwarded packets:\n{body}");
        ensure!(series(&body, "node_ipvs_backend_weight", &labels) == Some(1.0), "{body}");
        ensure!(series(&body, "keepxdp_checker_probe_duration_seconds_count", &labels).is_some(), "{body}");
    }
    // Each checker's first probe comes within its warmup: then each histogram counts.
    wait_for("every checker's probes in the histograms", Duration::from_secs(5), || {
        let body = scrape(&lab.lb)?;
        Ok(body.lines().filter(|l| l.starts_with("keepxdp_checker_probe_duration_seconds_count{") && !l.ends_with(" 0")).count() == 3)
    })?;
    // (A lone Master receives no adverts: the guard's counters are covered by unit tests.)
    ensure!(series(&body, "keepxdp_lvs_nat_entries", &[]).is_some_and(|n| n > 0.0), "{body}");
    let first = series(&body, "keepalived_lvs_vip_in_packets_total", &["local_address=\"10.0.0.100\""]).unwrap_or(0.0);
    std::thread::sleep(Duration::from_millis(300));
    let again = series(&scrape(&lab.lb)?, "keepalived_lvs_vip_in_packets_total", &["local_address=\"10.0.0.100\""]).unwrap_or(0.0);
    ensure!(again > first, "the counter grows with the traffic: {first} then {again}");

    // keepxdp top under tmux: instance names and non-zero rates while traffic flows; q quits.
    let command = format!(
        "{} top --pin-dir {} --control-socket {}",
        keepxdp.binary.display(),
        keepxdp.pin_dir.display(),
        keepxdp.control_socket.display()
    );
    let tmux = Tmux::start(110, 30, &command)?;
    let mut shown = String::new();
    wait_for("keepxdp top showing rates", Duration::from_secs(5), || {
        shown = tmux.screen()?;
        Ok(shown.contains("VI_1") && REAL_SERVERS.iter().all(|rs| top_packets_per_second(&shown, rs).is_some_and(|n| n > 0.0)))
    })
    .map_err(|e| anyhow::anyhow!("{e:#}\n{shown}"))?;
    ensure!(shown.contains("Master") && shown.contains("TCP 10.0.0.100:80"), "{shown}");
    eprintln!("keepxdp top under traffic:\n{shown}");
    tmux.run(&["send-keys", "-t", "top", "q"])?;
    wait_for("keepxdp top to quit on q", Duration::from_secs(3), || Ok(tmux.run(&["has-session", "-t", "top"]).is_err()))?;
    drop(tmux);

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

/// `keepxdp lvs drain`: the drained real server gets no new connection, the one it holds keeps
/// working, `--wait` returns once it is quiet, `undrain` puts it back.
#[test]
fn lab_drain_keeps_established_connections_and_is_watched_to_empty() -> Result<()> {
    require_root()?;
    let (_dir, lab, keepxdp) = lab()?;
    let path = lab.client.path();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (talk_tx, talk_rx) = std::sync::mpsc::channel::<bool>();
    let (said_tx, said_rx) = std::sync::mpsc::channel::<Result<()>>();
    // The held connection: echoes whenever asked (true), closes on false.
    let holder = std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let (server, mut stream) = http::hold(format!("{VIP}:80").parse()?, 46000)?;
        held_tx.send(server)?;
        while let Ok(true) = talk_rx.recv_timeout(Duration::from_secs(30)) {
            said_tx.send(http::echo(&mut stream, "still here\n"))?;
        }
        Ok(())
    });
    let server = held_rx.recv_timeout(Duration::from_secs(10))?;
    let index: usize = server.trim_start_matches("rs").parse()?;
    let real = format!("10.1.0.1{index}:8080");
    let talk = || -> Result<()> {
        talk_tx.send(true)?;
        said_rx.recv_timeout(Duration::from_secs(5))?
    };
    talk()?;

    let out = lvs(&keepxdp, &["drain", "10.0.0.100:80", &real])?;
    ensure!(out.contains(&format!("{real} drained in")), "{out}");
    let spread = keepxdp_tests::lvs_lab::requests(&lab.client, 60, 30000)?;
    ensure!(!spread.contains_key(&server) && spread.values().sum::<u32>() == 60, "no new connection to {server}: {spread:?}");
    talk()?;
    let json: serde_json::Value = serde_json::from_str(&lvs(&keepxdp, &["--json"])?)?;
    let row = json["services"][0]["backends"].as_array().and_then(|b| b.iter().find(|b| b["address"] == real.as_str())).cloned();
    ensure!(row.as_ref().is_some_and(|r| r["weight"] == 0 && r["alive"] == true), "drained: weight 0, alive: {row:?}");

    // --wait: the held connection keeps talking for ~3 s, then closes; the watch ends after.
    let waiting = {
        let (binary, pins, socket, real) =
            (keepxdp.binary.clone(), keepxdp.pin_dir.clone(), keepxdp.control_socket.clone(), real.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let out = keepxdp_lab::run(
                binary.to_str().unwrap(),
                &["lvs", "drain", "10.0.0.100:80", &real, "--wait", "--quiet", "2", "--timeout", "20", "--pin-dir", pins.to_str().unwrap(), "--control-socket", socket.to_str().unwrap()],
            );
            (out, started.elapsed())
        })
    };
    let talking = Instant::now();
    while talking.elapsed() < Duration::from_secs(3) {
        talk()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed_after = talking.elapsed();
    talk_tx.send(false)?;
    holder.join().map_err(|_| anyhow::anyhow!("holder panicked"))??;
    let (out, took) = waiting.join().map_err(|_| anyhow::anyhow!("waiter panicked"))?;
    let out = out?;
    ensure!(out.contains("was drained already") && out.contains("drained\n"), "{out}");
    ensure!(took >= closed_after + Duration::from_secs(1), "the watch waited for the held connection ({took:?}, closed after {closed_after:?}):\n{out}");
    eprintln!("drain watched to empty in {took:?} (held connection closed after {closed_after:?}):\n{out}");

    let out = lvs(&keepxdp, &["undrain", "10.0.0.100:80", &real])?;
    ensure!(out.contains(&format!("{real} undrained in")), "{out}");
    let spread = keepxdp_tests::lvs_lab::requests(&lab.client, 60, 31000)?;
    ensure!(spread.contains_key(&server), "undrained: {server} gets connections again: {spread:?}");
    let error = lvs(&keepxdp, &["drain", "10.0.0.100:80", "10.1.0.99:8080"]).err().map(|e| format!("{e:#}")).unwrap_or_default();
    ensure!(error.contains("no virtual_server at 10.0.0.100:80 has the real server 10.1.0.99:8080"), "{error}");
    Ok(())
}
