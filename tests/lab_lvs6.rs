//! The balancer over IPv6, end to end, as `lab_lvs` and `lab_check` over IPv4: a VRRPv3
//! IPv6 instance holds the VIP `fd00:215::100/64` (no `preferred_lft 0`: the checkers must
//! not take the VIP as their source on their own), a TCP_CHECK per real server.
//! DR one-armed: real servers hold the VIP on lo. NAT two-armed: the LB routes between the
//! client's link and the real servers' switch; their gateway is a second instance's VIP.
//! Each: checkers up from the first round (no flip), 300 requests spread by weight, a real
//! server failing (out of the ring, no request reaches it) and coming back; DR also: a real
//! server's MAC changing is re-resolved through NDP.
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use keepxdp_lab::{keepxdp::Keepxdp, netns::Netns, process::wait_for, require_root};
use keepxdp_tests::lvs_lab::{
    Plan, V6, dr_lab_of, holds, lvs_table, nat_lab_of, requests_to, ring_slots, start_for, status_backend,
};

const WEIGHTS: [u32; 3] = [1, 1, 2];
/// rs1..rs3's checkers: delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1 (the
/// down bound is 3 s, lab_check's reasoning), polled with a 10 s allowance.
const BOUND: Duration = Duration::from_secs(10);

fn config(kind: &str, reals: &[String], port: u16, gateway: &str) -> String {
    let real_servers: String = reals
        .iter()
        .zip(WEIGHTS)
        .map(|(ip, weight)| {
            format!(
                "  real_server {ip} {port} {{\n    weight {weight}\n    TCP_CHECK {{\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }}\n  }}\n"
            )
        })
        .collect();
    let vip = V6.vip;
    format!(
        "global_defs {{\n  router_id lb6\n}}\n\
         vrrp_instance VI_6 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 61\n  version 3\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}/64\n  }}\n}}\n\
         {gateway}\
         virtual_server {vip} 80 {{\n  delay_loop 1\n  lb_algo wrr\n  lb_kind {kind}\n  protocol TCP\n{real_servers}}}\n"
    )
}

fn context(keepxdp: &Keepxdp, lb: &Netns) -> String {
    format!("{}\n{}\n{}", lvs_table(keepxdp, lb).unwrap_or_default(), keepxdp.status_table().unwrap_or_default(), keepxdp.child.log_text())
}

fn within(seen: &BTreeMap<String, u32>, name: &str, expected: f64) -> bool {
    let got = *seen.get(name).unwrap_or(&0) as f64;
    (got - expected).abs() <= expected * 0.2
}

/// Every checker has probed and passed with no flip: up from the first round (a checker that
/// sourced its SYN from the VIP would time out and go down).
fn checkers_up_from_the_first_round(keepxdp: &Keepxdp, lb: &Netns, reals: &[String]) -> Result<()> {
    wait_for("each TCP_CHECK to pass once", BOUND, || {
        for real in reals {
            let checker = &status_backend(keepxdp, real)?["checkers"][0];
            if !(checker["up"] == true && checker["latency_ms"].is_number()) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    // Two more rounds: still no flip.
    std::thread::sleep(Duration::from_secs(2));
    for real in reals {
        let backend = status_backend(keepxdp, real)?;
        ensure!(backend["up"] == true && backend["checkers"][0]["flips"] == 0, "{real} flipped: {backend}\n{}", context(keepxdp, lb));
        ensure!(ring_slots(keepxdp, lb, real)? > 0, "{real} has no ring slots\n{}", context(keepxdp, lb));
    }
    Ok(())
}

/// 300 requests from fixed source ports, spread 1:1:2.
fn spread_by_weight(keepxdp: &Keepxdp, lab_client: &Netns, lb: &Netns) -> Result<()> {
    let seen = requests_to(lab_client, V6.vip, 300, 20000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    eprintln!("300 requests over IPv6: {seen:?}");
    ensure!(seen.values().sum::<u32>() == 300, "{seen:?}");
    ensure!(within(&seen, "rs1", 75.0) && within(&seen, "rs2", 75.0) && within(&seen, "rs3", 150.0), "weights 1:1:2, got {seen:?}\n{}", context(keepxdp, lb));
    Ok(())
}

/// rs2's server stops: out of the ring, 100 requests none to rs2; it starts again: back in
/// the ring, and it gets requests.
fn fails_and_comes_back(
    keepxdp: &Keepxdp,
    lab_client: &Netns,
    lb: &Netns,
    server: &mut keepxdp_lab::http::HttpServer,
    rs2: &str,
) -> Result<()> {
    let stopped = Instant::now();
    server.stop();
    wait_for("rs2 out of the ring", BOUND, || Ok(ring_slots(keepxdp, lb, rs2)? == 0)).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    eprintln!("rs2 out of the ring {:.2} s after its server stopped", stopped.elapsed().as_secs_f64());
    let during = requests_to(lab_client, V6.vip, 100, 21000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    ensure!(during.values().sum::<u32>() == 100 && !during.contains_key("rs2"), "{during:?}");
    let checker = &status_backend(keepxdp, rs2)?["checkers"][0];
    ensure!(checker["up"] == false && checker["flips"] == 1, "{checker}");
    let restarted = Instant::now();
    server.restart()?;
    wait_for("rs2 back in the ring", BOUND, || Ok(ring_slots(keepxdp, lb, rs2)? > 0)).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    eprintln!("rs2 back in the ring {:.2} s after its server started", restarted.elapsed().as_secs_f64());
    let after = requests_to(lab_client, V6.vip, 60, 22000).map_err(|e| anyhow::anyhow!("{e:#}\n{}", context(keepxdp, lb)))?;
    ensure!(after.values().sum::<u32>() == 60 && after.get("rs2").copied().unwrap_or(0) > 0, "rs2 is back but gets no requests: {after:?}");
    Ok(())
}

fn addresses(reals: &[String]) -> Vec<&str> {
    reals.iter().map(String::as_str).collect()
}

#[test]
fn lab_ipv6_dr_one_armed_checkers_up_at_once_spread_by_weight_failover_of_a_real_server_and_ndp_re_resolution() -> Result<()> {
    require_root()?;
    let plan: &Plan = &V6;
    let dir = tempfile::tempdir()?;
    let mut lab = dr_lab_of(plan)?;
    let reals = plan.real_servers(false);
    let keepxdp = start_for(&lab.lb, dir.path(), &config("DR", &reals, 80, ""), plan.vip, &addresses(&reals), &[])?;
    checkers_up_from_the_first_round(&keepxdp, &lab.lb, &reals)?;
    spread_by_weight(&keepxdp, &lab.client, &lab.lb)?;
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(table.contains("Route") && table.contains(&reals[2]), "{table}");
    fails_and_comes_back(&keepxdp, &lab.client, &lab.lb, &mut lab.servers[1], &reals[1])?;

    // rs1 gets a new MAC and says so (an unsolicited NA, ndisc_notify): the LB's neighbour
    // table learns it, keepxdp's recheck (every 10 s) writes it to the data plane, and
    // requests reach rs1 again.
    let rs1 = &lab.rs[0];
    rs1.run("sysctl", &["-qw", "net.ipv6.conf.eth0.ndisc_notify=1"])?;
    let changed = Instant::now();
    rs1.ip(&["link", "set", "dev", "eth0", "address", "02:00:00:00:61:01"])?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match requests_to(&lab.client, plan.vip, 30, 23000) {
            Ok(seen) if seen.get("rs1").copied().unwrap_or(0) > 0 && seen.values().sum::<u32>() == 30 => break,
            Ok(seen) => bail!("rs1 answered none of 30 requests after its MAC changed: {seen:?}"),
            Err(_) if changed.elapsed() < Duration::from_secs(25) => std::thread::sleep(Duration::from_millis(500)),
            Err(e) => bail!("requests still fail {:?} after rs1's MAC changed: {e:#}\n{}", changed.elapsed(), context(&keepxdp, &lab.lb)),
        }
    }
    eprintln!("rs1 reached again {:.2} s after its MAC changed ({attempts} rounds of 30 requests)", changed.elapsed().as_secs_f64());
    ensure!(keepxdp.child.log_text().contains("real server's MAC changed"), "{}", keepxdp.child.log_text());
    Ok(())
}

/// The real servers' gateway: a second IPv6 instance's VIP on the inner link.
const GATEWAY: &str = "vrrp_instance VI_GW6 {\n  interface eth1\n  state MASTER\n  priority 150\n  virtual_router_id 62\n  version 3\n  advert_int 1\n  virtual_ipaddress {\n    fd00:216::254/64\n  }\n}\n";

#[test]
fn lab_ipv6_nat_two_armed_checkers_up_at_once_spread_by_weight_translates_replies_and_failover_of_a_real_server() -> Result<()> {
    require_root()?;
    let plan: &Plan = &V6;
    let dir = tempfile::tempdir()?;
    let mut lab = nat_lab_of(plan, "fd00:216::254")?;
    let reals = plan.real_servers(true);
    let keepxdp = start_for(&lab.lb, dir.path(), &config("NAT", &reals, 8080, GATEWAY), plan.vip, &addresses(&reals), &[])?;
    wait_for("the gateway VIP", BOUND, || holds(&lab.lb, "eth1", "fd00:216::254"))?;
    checkers_up_from_the_first_round(&keepxdp, &lab.lb, &reals)?;
    spread_by_weight(&keepxdp, &lab.client, &lab.lb)?;
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(table.contains("Masq") && table.contains("nat_reverse"), "replies are translated in XDP:\n{table}");
    fails_and_comes_back(&keepxdp, &lab.client, &lab.lb, &mut lab.servers[1], &reals[1])
}
