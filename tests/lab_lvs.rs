//! The balancer end to end: a client, one LB namespace running keepxdp, three real servers,
//! real TCP. DR: everything on one switch, real servers hold the VIP on lo with arp_ignore.
//! NAT: the LB routes between the client's link and the real servers' switch.
use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::{Result, ensure};
use keepxdp_lab::{
    http,
    keepxdp::Keepxdp,
    netns::Netns,
    process::wait_for,
    require_root,
};
use keepxdp_tests::{
    keepxdp_bin,
    lvs_lab::{VIP, dr_lab, holds, lvs_table, nat_lab, requests, resolved, start},
};

fn real_servers(kind: &str, servers: &[(&str, u32)], port: u16) -> String {
    servers
        .iter()
        .map(|(ip, weight)| format!("  real_server {ip} {port} {{\n    weight {weight}\n  }}\n"))
        .collect::<Vec<_>>()
        .join("")
        .replace("KIND", kind)
}

fn config(kind: &str, servers: &[(&str, u32)], real_port: u16, gateway: &str) -> String {
    format!(
        "global_defs {{\n  router_id lb\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         {gateway}\
         virtual_server {VIP} 80 {{\n  lb_algo wrr\n  lb_kind {kind}\n  protocol TCP\n{}}}\n",
        real_servers(kind, servers, real_port)
    )
}

fn within(seen: &BTreeMap<String, u32>, name: &str, expected: f64) -> bool {
    let got = *seen.get(name).unwrap_or(&0) as f64;
    (got - expected).abs() <= expected * 0.2
}

/// Long-lived connections, then a reload that removes `removed`; the connections to the
/// other servers must keep working, and new requests avoid the removed one.
fn reload_keeps_established_connections(
    lb: &Netns,
    keepxdp: &Keepxdp,
    client: &Netns,
    new_config: &str,
    removed: &str,
) -> Result<()> {
    let path = client.path();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (reloaded_tx, reloaded_rx) = std::sync::mpsc::channel::<()>();
    let client_thread = std::thread::spawn(move || -> Result<(usize, usize)> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let target: SocketAddr = format!("{VIP}:80").parse()?;
        let mut held = Vec::new();
        for i in 0..24u16 {
            held.push(http::hold(target, 40000 + i)?);
        }
        for (_, stream) in held.iter_mut() {
            http::echo(stream, "before\n")?;
        }
        held_tx.send(())?;
        reloaded_rx.recv()?;
        let mut kept = 0;
        let mut others = 0;
        for (server, stream) in held.iter_mut() {
            if server.as_str() == "rs3" {
                continue;
            }
            others += 1;
            http::echo(stream, "after the reload\n").map_err(|e| anyhow::anyhow!("connection to {server}: {e:#}"))?;
            kept += 1;
        }
        Ok((kept, others))
    });
    held_rx.recv()?;
    std::fs::write(&keepxdp.config_path, new_config)?;
    keepxdp.child.signal(nix::sys::signal::Signal::SIGHUP)?;
    wait_for("the reload", Duration::from_secs(10), || {
        let status: serde_json::Value = serde_json::from_str(&keepxdp.status_json()?)?;
        Ok(status["reloads"] == 1)
    })?;
    reloaded_tx.send(())?;
    let (kept, others) = client_thread.join().map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    ensure!(others > 0, "no long-lived connection landed on the remaining servers");
    ensure!(kept == others, "{kept} of {others} established connections survived");
    let after = requests(client, 60, 30000)?;
    ensure!(!after.contains_key(removed), "{removed} still gets new connections: {after:?}");
    ensure!(after.values().sum::<u32>() == 60);
    let _ = lb;
    Ok(())
}

#[test]
fn lab_dr_spreads_300_requests_by_weight_and_a_reload_keeps_established_connections() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = dr_lab()?;
    let servers = [("10.0.0.11", 1), ("10.0.0.12", 1), ("10.0.0.13", 2)];
    let keepxdp = start(&lab.lb, dir.path(), &config("DR", &servers, 80, ""), &["10.0.0.11", "10.0.0.12", "10.0.0.13"])?;
    let seen = requests(&lab.client, 300, 20000).map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", lvs_table(&keepxdp, &lab.lb).unwrap_or_default(), keepxdp.child.log_text()))?;
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(seen.values().sum::<u32>() == 300, "{seen:?}");
    ensure!(within(&seen, "rs1", 75.0) && within(&seen, "rs2", 75.0) && within(&seen, "rs3", 150.0), "weights 1:1:2, got {seen:?}\n{table}");
    ensure!(table.contains("Route") && table.contains("10.0.0.13:80"), "{table}");
    let smaller = config("DR", &servers[..2], 80, "");
    reload_keeps_established_connections(&lab.lb, &keepxdp, &lab.client, &smaller, "rs3")
}

/// The classic keepalived NAT pair: the real servers' gateway is a VIP of a second instance.
const GATEWAY: &str = "vrrp_instance VI_GW {\n  interface eth1\n  state MASTER\n  priority 150\n  virtual_router_id 52\n  advert_int 1\n  virtual_ipaddress {\n    10.1.0.254/24\n  }\n}\n";

#[test]
fn lab_nat_spreads_300_requests_by_weight_translates_replies_and_a_reload_keeps_established_connections() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = nat_lab("10.1.0.254")?;
    let servers = [("10.1.0.11", 1), ("10.1.0.12", 1), ("10.1.0.13", 2)];
    let keepxdp = start(&lab.lb, dir.path(), &config("NAT", &servers, 8080, GATEWAY), &["10.1.0.11", "10.1.0.12", "10.1.0.13"])?;
    wait_for("the gateway VIP", Duration::from_secs(10), || holds(&lab.lb, "eth1", "10.1.0.254"))?;
    let seen = requests(&lab.client, 300, 20000).map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", lvs_table(&keepxdp, &lab.lb).unwrap_or_default(), keepxdp.child.log_text()))?;
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(seen.values().sum::<u32>() == 300, "{seen:?}");
    ensure!(within(&seen, "rs1", 75.0) && within(&seen, "rs2", 75.0) && within(&seen, "rs3", 150.0), "weights 1:1:2, got {seen:?}\n{table}");
    ensure!(table.contains("Masq") && table.contains("nat_reverse"), "replies are translated in XDP:\n{table}");
    let smaller = config("NAT", &servers[..2], 8080, GATEWAY);
    reload_keeps_established_connections(&lab.lb, &keepxdp, &lab.client, &smaller, "rs3")
}

#[test]
fn lab_dr_established_connections_keep_flowing_while_keepxdp_restarts_over_a_kept_data_plane() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = dr_lab()?;
    let servers = [("10.0.0.11", 1), ("10.0.0.12", 1), ("10.0.0.13", 1)];
    let text = config("DR", &servers, 80, "");
    let real_servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
    let binary = keepxdp_bin()?;
    let mut first = Keepxdp::start_with(&binary, &lab.lb, dir.path(), &text, &["--keep-dataplane"])?;
    wait_for("the LB to become Master", Duration::from_secs(10), || holds(&lab.lb, "eth0", VIP))?;
    wait_for("resolved real servers", Duration::from_secs(10), || resolved(&first, &lab.lb, &real_servers))?;

    let path = lab.client.path();
    let (step_tx, step_rx) = std::sync::mpsc::channel::<&'static str>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || -> Result<usize> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let target: SocketAddr = format!("{VIP}:80").parse()?;
        let mut held = Vec::new();
        for i in 0..12u16 {
            held.push(http::hold(target, 41000 + i)?);
        }
        for step in step_rx {
            for (server, stream) in held.iter_mut() {
                http::echo(stream, &format!("{step}\n")).map_err(|e| anyhow::anyhow!("{step}: connection to {server}: {e:#}"))?;
            }
            done_tx.send(())?;
        }
        Ok(held.len())
    });
    let mut second = None;
    let steps = (|| -> Result<()> {
        step_tx.send("before")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        first.child.stop(Duration::from_secs(5))?;
        step_tx.send("while keepxdp is stopped")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        let started = Keepxdp::start(&binary, &lab.lb, dir.path(), &text)?;
        wait_for("Master again", Duration::from_secs(10), || holds(&lab.lb, "eth0", VIP))?;
        second = Some(started);
        step_tx.send("after the restart")?;
        done_rx.recv_timeout(Duration::from_secs(10))?;
        Ok(())
    })();
    drop(step_tx);
    let held = client.join().map_err(|_| anyhow::anyhow!("client thread panicked"))?;
    let log = second.as_ref().map(|s| s.child.log_text()).unwrap_or_default();
    let held = held.map_err(|e| anyhow::anyhow!("{e:#}\n{log}"))?;
    steps?;
    let second = second.expect("started");
    ensure!(held == 12);
    ensure!(second.child.log_text().contains("replaced in place"), "{}", second.child.log_text());
    Ok(())
}

/// A valid keepalived NAT setup with no vrrp_instance on the real servers' side: clients on
/// eth0, real servers on eth1 with the LB's own eth1 address as their gateway. Their replies
/// arrive on eth1, which keepxdp finds from the FIB and attaches to.
#[test]
fn lab_nat_two_armed_without_an_instance_on_the_real_servers_side_serves_http() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = nat_lab("10.1.0.1")?;
    let servers = [("10.1.0.11", 1), ("10.1.0.12", 1), ("10.1.0.13", 1)];
    let keepxdp = start(&lab.lb, dir.path(), &config("NAT", &servers, 8080, ""), &["10.1.0.11", "10.1.0.12", "10.1.0.13"])?;
    let seen = requests(&lab.client, 90, 20000)
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", lvs_table(&keepxdp, &lab.lb).unwrap_or_default(), keepxdp.child.log_text()))?;
    ensure!(seen.values().sum::<u32>() == 90 && seen.len() == 3, "{seen:?}");
    let status: serde_json::Value = serde_json::from_str(&keepxdp.status_json()?)?;
    let attached: Vec<&str> = status["attachments"].as_array().into_iter().flatten().filter_map(|a| a["interface"].as_str()).collect();
    ensure!(attached.contains(&"eth0") && attached.contains(&"eth1"), "attachments: {attached:?}");
    ensure!(
        keepxdp.child.log_text().contains("for the replies of virtual_server"),
        "keepxdp says why eth1 carries the data plane:\n{}",
        keepxdp.child.log_text()
    );
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(table.contains("nat_reverse"), "replies are translated in XDP:\n{table}");
    Ok(())
}
