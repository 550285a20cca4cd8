//! keepxdp's VRRP against Debian's keepalived 2.2.7 in one VRID, real processes in two
//! namespaces on one veth: exactly one Master holds the virtual address; tshark decodes
//! keepxdp's adverts with a good checksum; kill -9 of the Master hands the address over
//! within Master_Down_Interval (+200 ms).
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    keepxdp::Keepxdp,
    process::{ChildGuard, wait_for},
    vrrp_lab::{VIP, VrrpLab, holds_vip, holds_vip6, instance_config, instance_config_v6},
};
use keepxdp_tests::keepxdp_bin;

/// The lab of `keepxdp_lab::vrrp_lab` with this file's shorthands.
struct Lab(VrrpLab);

impl std::ops::Deref for Lab {
    type Target = VrrpLab;
    fn deref(&self) -> &VrrpLab {
        &self.0
    }
}

impl Lab {
    fn new() -> Result<Lab> {
        Ok(Lab(VrrpLab::new()?))
    }

    fn keepalived(&self, version: u8, priority: u8, advert_int: &str) -> Result<ChildGuard> {
        self.keepalived_with(version, priority, advert_int, "")
    }

    fn keepalived_with(&self, version: u8, priority: u8, advert_int: &str, extra: &str) -> Result<ChildGuard> {
        self.keepalived_on_peer(&instance_config("kxpeer", version, priority, advert_int, "BACKUP", extra))
    }

    fn keepxdp(&self, version: u8, priority: u8, advert_int: &str) -> Result<Keepxdp> {
        self.keepxdp_with(version, priority, advert_int, "")
    }

    fn keepxdp_with(&self, version: u8, priority: u8, advert_int: &str, extra: &str) -> Result<Keepxdp> {
        self.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", version, priority, advert_int, "BACKUP", extra))
    }
}

fn vrrp_state(keepxdp: &Keepxdp) -> Result<String> {
    let status: serde_json::Value = serde_json::from_str(&keepxdp.status_json()?)?;
    Ok(status["vrrp"][0]["state"].as_str().unwrap_or("").to_string())
}

/// Waits until exactly one side holds the address and keepxdp reports `keepxdp_state`.
fn wait_for_one_master(lab: &Lab, keepxdp: &Keepxdp, keepxdp_state: &str, timeout: Duration) -> Result<()> {
    let expect_node = keepxdp_state == "Master";
    wait_for(&format!("keepxdp {keepxdp_state} and the VIP on exactly one side"), timeout, || {
        let node = holds_vip(&lab.node, "kxnode")?;
        let peer = holds_vip(&lab.peer, "kxpeer")?;
        Ok(node == expect_node && peer != expect_node && vrrp_state(keepxdp)? == keepxdp_state)
    })
}

/// tshark's verdict on three of keepxdp's adverts as seen by the peer.
fn tshark_checksums(lab: &Lab) -> Result<String> {
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.peer.name, "timeout", "10", "tshark", "-i", "kxpeer", "-c", "3", "-V", "-f"])
        .arg("ip proto 112 and src host 10.77.0.2")
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn failover_ms(timeout: Duration, taken_over: impl FnMut() -> Result<bool>) -> Result<u128> {
    let started = Instant::now();
    wait_for("the other side to take the VIP over", timeout, taken_over)?;
    Ok(started.elapsed().as_millis())
}

#[test]
fn lab_v2_keepxdp_master_over_keepalived_then_kill_9_hands_over() -> Result<()> {
    let lab = Lab::new()?;
    let mut peer = lab.keepalived(2, 100, "1")?;
    let mut node = lab.keepxdp(2, 150, "1")?;
    wait_for_one_master(&lab, &node, "Master", Duration::from_secs(15))
        .with_context(|| format!("keepalived log:\n{}\nkeepxdp log:\n{}", peer.log_text(), node.child.log_text()))?;

    let decoded = tshark_checksums(&lab)?;
    ensure!(decoded.matches("Virtual Router Redundancy Protocol").count() == 3, "tshark saw:\n{decoded}");
    ensure!(decoded.contains("Version 2") || decoded.contains("Version: 2"), "tshark saw:\n{decoded}");
    ensure!(decoded.matches("[Checksum Status: Good]").count() == 3, "tshark saw:\n{decoded}");

    // A crash: kill -9 (taking the link down too would put keepalived, on the other end of
    // the veth, into FAULT).
    node.child.kill9();
    let took = failover_ms(Duration::from_secs(6), || holds_vip(&lab.peer, "kxpeer"))?;
    // keepalived priority 100, v2: Master_Down_Interval = 3 s + 156/256 s = 3609 ms.
    println!("failover keepxdp -> keepalived (v2, advert_int 1): {took} ms");
    ensure!(took <= 3609 + 200 + 100, "took {took} ms");
    peer.check_running()?;
    Ok(())
}

#[test]
fn lab_v3_keepalived_master_over_keepxdp_then_kill_9_hands_over_fast() -> Result<()> {
    let lab = Lab::new()?;
    let mut peer = lab.keepalived(3, 150, "0.1")?;
    peer.check_running()?;
    // Let keepalived become Master before keepxdp starts listening.
    wait_for("keepalived to take the VIP", Duration::from_secs(10), || holds_vip(&lab.peer, "kxpeer"))?;
    let node = lab.keepxdp(3, 100, "0.1")?;
    wait_for_one_master(&lab, &node, "Backup", Duration::from_secs(10))
        .with_context(|| format!("keepxdp log:\n{}", node.child.log_text()))?;
    // Stays Backup for a while (no flapping).
    std::thread::sleep(Duration::from_secs(1));
    ensure!(
        vrrp_state(&node)? == "Backup" && !holds_vip(&lab.node, "kxnode")?,
        "keepxdp flapped: {}\nlog:\n{}",
        node.status_json()?,
        node.child.log_text()
    );

    // A crash of the peer host: keepalived and its VRRP child, at once.
    lab.peer.kill_all()?;
    let _ = peer.stop(Duration::from_millis(100));
    let took = failover_ms(Duration::from_secs(3), || holds_vip(&lab.node, "kxnode"))?;
    // keepxdp priority 100, v3 0.1 s: Master_Down_Interval = 300 ms + 156/256 * 100 ms = 361 ms.
    println!("failover keepalived -> keepxdp (v3, advert_int 0.1): {took} ms");
    ensure!(took <= 361 + 200 + 100, "took {took} ms");
    // The status document is refreshed every 200 ms.
    wait_for("keepxdp to report Master", Duration::from_secs(1), || Ok(vrrp_state(&node)? == "Master"))?;
    let decoded = tshark_checksums(&lab)?;
    ensure!(decoded.matches("[Checksum Status: Good]").count() == 3, "tshark saw:\n{decoded}");
    ensure!(decoded.contains("Version 3") || decoded.contains("Version: 3"), "tshark saw:\n{decoded}");
    Ok(())
}

fn status(keepxdp: &Keepxdp) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&keepxdp.status_json()?)?)
}

#[test]
fn lab_sighup_keeps_an_unchanged_master_untouched_and_a_bad_file_changes_nothing() -> Result<()> {
    let lab = Lab::new()?;
    let one = |priority: u8| {
        format!("vrrp_instance VI_51 {{\n  state MASTER\n  interface kxnode\n  virtual_router_id 51\n  priority {priority}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n")
    };
    let mut node = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &one(150))?;
    wait_for("keepxdp Master with the VIP", Duration::from_secs(5), || holds_vip(&lab.node, "kxnode"))?;
    let monitor_log = lab.dir.path().join("ip-monitor.log");
    let mut monitor_command = lab.node.command("ip");
    monitor_command.args(["monitor", "address"]);
    let mut monitor = ChildGuard::spawn("ip monitor", monitor_command, &monitor_log)?;
    std::thread::sleep(Duration::from_millis(300));

    // Same instance (moved down by a comment and a new instance before it) + a new one.
    let second = "vrrp_instance VI_52 {\n  state MASTER\n  interface kxnode\n  virtual_router_id 52\n  virtual_ipaddress {\n    10.77.0.200/24\n  }\n}\n";
    std::fs::write(&node.config_path, format!("! reloaded\n{second}{}", one(150)))?;
    node.child.signal(nix::sys::signal::Signal::SIGHUP)?;
    wait_for("the reload to start VI_52", Duration::from_secs(5), || {
        let status = status(&node)?;
        Ok(status["reloads"] == 1 && status["vrrp"].as_array().is_some_and(|v| v.len() == 2))
    })?;
    wait_for("VI_52's address", Duration::from_secs(5), || {
        Ok(lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxnode"])?.contains(" 10.77.0.200/"))
    })?;

    // A broken file: refused, nothing changes.
    std::fs::write(&node.config_path, "vrrp_instance VI_51 {\n  interface kxnode\n")?;
    node.child.signal(nix::sys::signal::Signal::SIGHUP)?;
    std::thread::sleep(Duration::from_millis(700));
    let after = status(&node)?;
    ensure!(after["reloads"] == 1, "a bad file must not count as a reload: {after}");
    ensure!(node.child.log_text().contains("reload refused"), "log:\n{}", node.child.log_text());
    let states: Vec<&str> = after["vrrp"].as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap()).collect();
    ensure!(states == ["Master", "Master"], "{after}");

    monitor.stop(Duration::from_secs(1)).ok();
    let seen = std::fs::read_to_string(&monitor_log)?;
    ensure!(seen.contains("10.77.0.200/24"), "ip monitor saw nothing (not even VI_52's address):\n{seen}");
    ensure!(
        !seen.lines().any(|line| line.starts_with("Deleted") && line.contains(VIP)),
        "VI_51's address was removed during the reload:\n{seen}"
    );
    // SIGTERM: the Master releases its addresses.
    node.stop()?;
    ensure!(!holds_vip(&lab.node, "kxnode")?, "the VIP is still there after SIGTERM");
    Ok(())
}

#[test]
fn lab_a_failing_tracked_script_takes_the_master_to_fault_and_notify_scripts_see_each_state() -> Result<()> {
    let lab = Lab::new()?;
    let dir = lab.dir.path().display().to_string();
    let config = format!(
        "vrrp_script chk {{\n  script \"/bin/sh -c 'test ! -e {dir}/down'\"\n  interval 0.2\n  rise 1\n  fall 1\n}}\n\
         vrrp_instance VI_51 {{\n  state MASTER\n  interface kxnode\n  virtual_router_id 51\n  priority 150\n\
           track_script {{\n    chk\n  }}\n  notify \"/bin/sh -c 'echo $2 >> {dir}/states'\"\n\
           virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    let node = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config)?;
    let states = || std::fs::read_to_string(lab.dir.path().join("states")).unwrap_or_default();
    wait_for("Master with the VIP, notified", Duration::from_secs(5), || Ok(holds_vip(&lab.node, "kxnode")? && states().contains("MASTER")))
        .with_context(|| node.child.log_text())?;

    std::fs::write(lab.dir.path().join("down"), "")?;
    wait_for("FAULT without the VIP, notified", Duration::from_secs(5), || {
        Ok(!holds_vip(&lab.node, "kxnode")? && vrrp_state(&node)? == "Fault" && states().contains("FAULT"))
    })
    .with_context(|| format!("states: {}\nlog:\n{}", states(), node.child.log_text()))?;
    let seen = status(&node)?;
    let script = seen["trackers"].as_array().unwrap().iter().find(|t| t["name"] == "chk").cloned().unwrap_or_default();
    ensure!(script["kind"] == "vrrp_script" && script["reading"] == "Down", "status: {seen}");
    ensure!(seen["vrrp"][0]["base_priority"] == 150, "status: {seen}");

    std::fs::remove_file(lab.dir.path().join("down"))?;
    // Recovery goes through BACKUP and, with nobody else advertising, MASTER again after
    // Master_Down_Interval (3 s + skew).
    wait_for("Master again", Duration::from_secs(8), || Ok(holds_vip(&lab.node, "kxnode")? && vrrp_state(&node)? == "Master"))?;
    wait_for("the notify of each state", Duration::from_secs(2), || Ok(states().lines().collect::<Vec<_>>() == ["MASTER", "FAULT", "BACKUP", "MASTER"]))
        .with_context(|| format!("states: {:?}\nlog:\n{}", states(), node.child.log_text()))?;
    Ok(())
}

#[test]
fn lab_a_virtual_address_removed_by_another_tool_while_master_is_put_back() -> Result<()> {
    let lab = Lab::new()?;
    let config = format!(
        "vrrp_instance VI_51 {{\n  state MASTER\n  interface kxnode\n  virtual_router_id 51\n  priority 150\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    let node = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config)?;
    wait_for("Master with the VIP", Duration::from_secs(5), || holds_vip(&lab.node, "kxnode"))?;
    // keepalived #836 / #2564: someone runs `ip addr del` (or `ip addr flush`) on the VIP.
    lab.node.ip(&["addr", "del", &format!("{VIP}/24"), "dev", "kxnode"])?;
    let removed_at = Instant::now();
    wait_for("the VIP to be put back", Duration::from_secs(2), || holds_vip(&lab.node, "kxnode"))
        .with_context(|| node.child.log_text())?;
    println!("virtual address put back after {} ms", removed_at.elapsed().as_millis());
    ensure!(node.child.log_text().contains("removed by another tool while Master; putting it back"));
    wait_for("the put-back counted in the status", Duration::from_secs(1), || {
        Ok(status(&node)?["vrrp"][0]["addresses_put_back"] == 1)
    })?;
    Ok(())
}

#[test]
fn lab_v2_unicast_keepxdp_and_keepalived_elect_one_master_and_fail_over() -> Result<()> {
    let lab = Lab::new()?;
    let mut peer = lab.keepalived_with(2, 100, "1", "  unicast_src_ip 10.77.0.1\n  unicast_peer {\n    10.77.0.2\n  }\n")?;
    let mut node = lab.keepxdp_with(2, 150, "1", "  unicast_src_ip 10.77.0.2\n  unicast_peer {\n    10.77.0.1\n  }\n")?;
    wait_for_one_master(&lab, &node, "Master", Duration::from_secs(15))
        .with_context(|| format!("keepalived log:\n{}\nkeepxdp log:\n{}", peer.log_text(), node.child.log_text()))?;
    // Stays that way: keepalived accepts keepxdp's unicast adverts.
    std::thread::sleep(Duration::from_secs(2));
    ensure!(!holds_vip(&lab.peer, "kxpeer")? && holds_vip(&lab.node, "kxnode")?, "keepalived log:\n{}", peer.log_text());
    let decoded = tshark_checksums(&lab)?;
    ensure!(decoded.matches("[Checksum Status: Good]").count() == 3, "tshark saw:\n{decoded}");
    ensure!(decoded.contains("Destination Address: 10.77.0.1"), "unicast to the peer:\n{decoded}");
    node.child.kill9();
    let took = failover_ms(Duration::from_secs(6), || holds_vip(&lab.peer, "kxpeer"))?;
    println!("failover keepxdp -> keepalived (v2 unicast, advert_int 1): {took} ms");
    ensure!(took <= 3609 + 200 + 100, "took {took} ms");
    peer.check_running()?;
    Ok(())
}

#[test]
fn lab_a_sync_group_waits_for_all_its_masters_to_go_silent_and_faults_together() -> Result<()> {
    let lab = Lab::new()?;
    let dir = lab.dir.path().display().to_string();
    // keepalived is Master of VRID 51 only; keepxdp's group holds VRIDs 51 and 52.
    let _peer = lab.keepalived_on_peer(&instance_config("kxpeer", 2, 150, "1", "MASTER", ""))?;
    wait_for("keepalived Master of VRID 51", Duration::from_secs(5), || lab.peer_holds_vip())?;
    let config = format!(
        "vrrp_script chk {{\n  script \"/bin/sh -c 'test ! -e {dir}/down'\"\n  interval 0.2\n}}\n\
         vrrp_sync_group G {{\n  group {{\n    VI_51\n    VI_52\n  }}\n  notify \"/bin/sh -c 'echo $2 >> {dir}/group'\"\n}}\n\
         vrrp_instance VI_51 {{\n  interface kxnode\n  virtual_router_id 51\n  priority 100\n  track_script {{\n    chk\n  }}\n\
           virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         vrrp_instance VI_52 {{\n  interface kxnode\n  virtual_router_id 52\n  priority 100\n  virtual_ipaddress {{\n    10.77.0.200/24\n  }}\n}}\n"
    );
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &config)?;
    let addresses = || lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxnode"]);
    // VRID 52 has no other router, but its group partner still hears a Master: it waits.
    std::thread::sleep(Duration::from_secs(5));
    let held = addresses()?;
    ensure!(!held.contains(VIP) && !held.contains("10.77.0.200"), "the group went Master early:\n{held}\n{}", node.child.log_text());

    lab.peer.kill_all()?;
    wait_for("both members Master together", Duration::from_secs(6), || {
        let held = addresses()?;
        Ok(held.contains(&format!(" {VIP}/")) && held.contains(" 10.77.0.200/"))
    })
    .with_context(|| node.child.log_text())?;

    // VI_51's script fails: the whole group goes to FAULT.
    std::fs::write(lab.dir.path().join("down"), "")?;
    wait_for("the group in FAULT without its addresses", Duration::from_secs(5), || {
        let held = addresses()?;
        Ok(!held.contains(VIP) && !held.contains("10.77.0.200"))
    })
    .with_context(|| node.child.log_text())?;
    wait_for("both members reported in FAULT", Duration::from_secs(1), || {
        let states: Vec<String> = status(&node)?["vrrp"].as_array().unwrap().iter().map(|v| v["state"].to_string()).collect();
        Ok(states == ["\"Fault\"", "\"Fault\""])
    })?;
    let group_log = std::fs::read_to_string(lab.dir.path().join("group")).unwrap_or_default();
    ensure!(group_log.lines().collect::<Vec<_>>().ends_with(&["MASTER", "FAULT"]), "group notify saw {group_log:?}");
    Ok(())
}

#[test]
fn lab_v3_ipv6_keepxdp_master_over_keepalived_announces_with_na_and_hands_over() -> Result<()> {
    let lab = Lab(VrrpLab::new()?.with_ipv6()?);
    let peer = lab.keepalived_on_peer(&instance_config_v6("kxpeer", 100, "1", "BACKUP"))?;
    // `preferred_lft 0` (issue 15): the VIP is added deprecated, so the node's own
    // connections never take it as their source address.
    let node_config = instance_config_v6("kxnode", 150, "1", "BACKUP").replace("::100/64", "::100/64 preferred_lft 0");
    ensure!(node_config.contains("preferred_lft 0"), "{node_config}");
    let mut node = lab.keepxdp_on_node(&keepxdp_bin()?, &node_config)?;
    wait_for("keepxdp Master of the IPv6 VIP, keepalived Backup", Duration::from_secs(15), || {
        Ok(holds_vip6(&lab.node, "kxnode")? && !holds_vip6(&lab.peer, "kxpeer")? && vrrp_state(&node)? == "Master")
    })
    .with_context(|| format!("keepalived log:\n{}\nkeepxdp log:\n{}", peer.log_text(), node.child.log_text()))?;
    let shown = lab.node.ip(&["-o", "-6", "addr", "show", "dev", "kxnode"])?;
    let vip_line = shown.lines().find(|l| l.contains("fd00:77::100/")).unwrap_or_default();
    ensure!(vip_line.contains("deprecated") && vip_line.contains("preferred_lft 0sec"), "VIP not deprecated:\n{shown}");
    // keepxdp's adverts, and its unsolicited NAs (the second burst, garp_master_delay after
    // becoming Master), as the peer sees them.
    let capture = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.peer.name, "timeout", "8", "tshark", "-i", "kxpeer", "-c", "6", "-V", "-f"])
        .arg("ip6 proto 112 or (icmp6 and ip6[40] == 136)")
        .output()?;
    let decoded = String::from_utf8_lossy(&capture.stdout);
    ensure!(decoded.contains("Virtual Router Redundancy Protocol"), "tshark saw:\n{decoded}");
    ensure!(!decoded.contains("[Checksum Status: Bad]"), "tshark saw:\n{decoded}");
    ensure!(decoded.contains("[Checksum Status: Good]"), "tshark saw:\n{decoded}");
    ensure!(decoded.contains("Neighbor Advertisement"), "no unsolicited NA seen:\n{decoded}");
    ensure!(decoded.contains("Target Address: fd00:77::100"), "tshark saw:\n{decoded}");
    node.child.kill9();
    let took = failover_ms(Duration::from_secs(6), || holds_vip6(&lab.peer, "kxpeer"))?;
    println!("failover keepxdp -> keepalived (v3/IPv6, advert_int 1): {took} ms");
    ensure!(took <= 3609 + 200 + 100, "took {took} ms");
    Ok(())
}

#[test]
fn lab_three_keepxdp_nodes_heal_a_partition_to_one_master_answering_from_one_mac() -> Result<()> {
    use keepxdp_lab::netns::{Netns, Switch};
    keepxdp_lab::require_root()?;
    let dir = tempfile::tempdir()?;
    let mut switch = Switch::new()?;
    let client = Netns::new("c")?;
    switch.plug(&client, "kxclient", "10.77.0.50/24")?;
    let mut nodes = Vec::new();
    let mut ports = Vec::new();
    for (index, priority) in [(1, 150), (2, 100), (3, 50)] {
        let host = Netns::new(&format!("n{index}"))?;
        let device = format!("kxn{index}");
        ports.push(switch.plug(&host, &device, &format!("10.77.0.{index}/24"))?);
        let config = instance_config(&device, 2, priority, "1", "BACKUP", "");
        let keepxdp = Keepxdp::start(&keepxdp_bin()?, &host, dir.path(), &config)?;
        nodes.push((host, device, keepxdp));
    }
    let holders = |nodes: &[(Netns, String, Keepxdp)]| -> Result<Vec<usize>> {
        let mut holders = Vec::new();
        for (index, (host, device, _)) in nodes.iter().enumerate() {
            if holds_vip(host, device)? {
                holders.push(index + 1);
            }
        }
        Ok(holders)
    };
    wait_for("node 1 the only Master", Duration::from_secs(10), || Ok(holders(&nodes)? == [1]))?;

    // Partition node 1: it stays Master on its side, node 2 takes over on the other.
    switch.isolate(&ports[0])?;
    wait_for("split brain: nodes 1 and 2 both Master", Duration::from_secs(6), || Ok(holders(&nodes)? == [1, 2]))?;

    // Heal: node 2 hears the higher priority and yields; node 1 re-announces the address.
    switch.reconnect(&ports[0])?;
    wait_for("one Master again", Duration::from_secs(5), || Ok(holders(&nodes)? == [1]))
        .with_context(|| nodes[1].2.child.log_text())?;
    client.run("ping", &["-c", "1", "-W", "2", VIP])?;
    let neighbour = client.ip(&["neigh", "show", VIP])?;
    let node1_mac = nodes[0].0.ip(&["link", "show", "dev", "kxn1"])?;
    let node1_mac = node1_mac.split("link/ether ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or_default().to_string();
    ensure!(!node1_mac.is_empty() && neighbour.contains(&node1_mac), "the client reaches {VIP} at {neighbour}, node 1 is {node1_mac}");
    Ok(())
}

#[test]
fn lab_a_restarted_higher_priority_keepxdp_preempts_back_and_with_nopreempt_does_not() -> Result<()> {
    let lab = Lab::new()?;
    let _peer = lab.keepalived(2, 100, "1")?;
    let mut node = lab.keepxdp(2, 150, "1")?;
    wait_for_one_master(&lab, &node, "Master", Duration::from_secs(15))?;
    node.child.kill9();
    wait_for("keepalived to take over", Duration::from_secs(6), || lab.peer_holds_vip())?;
    drop(node);

    // Restarted with the higher priority: it preempts (and clears the address the crash left).
    let mut node = lab.keepxdp(2, 150, "1")?;
    wait_for_one_master(&lab, &node, "Master", Duration::from_secs(8)).with_context(|| node.child.log_text())?;
    node.child.kill9();
    wait_for("keepalived to take over again", Duration::from_secs(6), || lab.peer_holds_vip())?;
    drop(node);

    // With nopreempt it stays Backup behind the lower-priority Master.
    let node = lab.keepxdp_with(2, 150, "1", "  nopreempt\n")?;
    std::thread::sleep(Duration::from_secs(5));
    ensure!(vrrp_state(&node)? == "Backup", "{}", node.status_json()?);
    ensure!(lab.peer_holds_vip()? && !lab.node_holds_vip()?, "the crash's stale address must be gone too");
    Ok(())
}

#[test]
fn lab_garp_master_refresh_re_announces_the_address_while_master() -> Result<()> {
    let lab = Lab::new()?;
    let config = instance_config("kxnode", 2, 150, "1", "MASTER", "  garp_master_repeat 1\n  garp_master_refresh 1\n");
    let _node = lab.keepxdp_on_node(&keepxdp_bin()?, &config)?;
    wait_for("Master with the VIP", Duration::from_secs(5), || lab.node_holds_vip())?;
    // Past the start-up bursts (immediate and garp_master_delay's default 5 s later would
    // add one): count for 3.5 s from 0.5 s in.
    std::thread::sleep(Duration::from_millis(500));
    let capture = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.peer.name, "tshark", "-i", "kxpeer", "-a", "duration:3.5", "-f", "arp"])
        .output()?;
    let seen = String::from_utf8_lossy(&capture.stdout);
    let announcements = seen.matches(&format!("Gratuitous ARP for {VIP}")).count();
    ensure!((3..=5).contains(&announcements), "{announcements} announcements in 3.5 s:\n{seen}");
    Ok(())
}

#[test]
fn lab_virtual_routes_and_rules_follow_mastership() -> Result<()> {
    let lab = Lab::new()?;
    let extra = "  virtual_routes {\n    10.99.0.0/16 via 10.77.0.1 dev kxnode\n    blackhole 192.0.2.0/24\n    10.98.0.0/16 via 10.77.0.1 table 100\n  }\n  virtual_rules {\n    from 10.77.0.100 table 100 priority 1000\n  }\n";
    let mut node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", 2, 150, "1", "MASTER", extra))?;
    let routes = || -> Result<(String, String, String)> {
        Ok((lab.node.ip(&["route", "show"])?, lab.node.ip(&["route", "show", "table", "100"])?, lab.node.ip(&["rule", "show"])?))
    };
    wait_for("routes and rules while Master", Duration::from_secs(5), || {
        let (main, table, rules) = routes()?;
        Ok(main.contains("10.99.0.0/16 via 10.77.0.1 dev kxnode")
            && main.contains("blackhole 192.0.2.0/24")
            && table.contains("10.98.0.0/16 via 10.77.0.1")
            && rules.contains("1000:\tfrom 10.77.0.100 lookup 100"))
    })
    .with_context(|| format!("{:?}\n{}", routes(), node.child.log_text()))?;
    node.stop()?;
    let (main, table, rules) = routes()?;
    ensure!(!main.contains("10.99.0.0") && !main.contains("192.0.2.0") && !table.contains("10.98.0.0") && !rules.contains("10.77.0.100"), "left behind:\n{main}\n{table}\n{rules}");
    Ok(())
}

#[test]
fn lab_a_clients_ping_to_the_vip_resumes_after_keepxdp_takes_over() -> Result<()> {
    use keepxdp_lab::netns::{Netns, Switch};
    keepxdp_lab::require_root()?;
    let dir = tempfile::tempdir()?;
    let mut switch = Switch::new()?;
    let client = Netns::new("c")?;
    switch.plug(&client, "kxclient", "10.77.0.50/24")?;
    let peer = Netns::new("k")?;
    let peer_port = switch.plug(&peer, "kxpeer", "10.77.0.1/24")?;
    let node = Netns::new("x")?;
    switch.plug(&node, "kxnode", "10.77.0.2/24")?;
    let _keepalived = keepxdp_lab::keepalived::start(&peer, dir.path(), &instance_config("kxpeer", 2, 150, "1", "MASTER", ""))?;
    wait_for("keepalived Master", Duration::from_secs(5), || holds_vip(&peer, "kxpeer"))?;
    let keepxdp = Keepxdp::start(&keepxdp_bin()?, &node, dir.path(), &instance_config("kxnode", 2, 100, "1", "BACKUP", ""))?;
    wait_for("keepxdp Backup", Duration::from_secs(5), || Ok(vrrp_state(&keepxdp)? == "Backup"))?;

    // 200 pings, 50 ms apart (10 s), timestamps on.
    let mut ping_command = client.command("ping");
    ping_command.args(["-D", "-n", "-i", "0.05", "-c", "200", "-W", "1", VIP]);
    let mut ping = keepxdp_lab::process::ChildGuard::spawn("ping", ping_command, &dir.path().join("ping.log"))?;
    std::thread::sleep(Duration::from_secs(1));
    // The Master host dies: its processes and its link.
    peer.kill_all()?;
    switch.isolate(&peer_port)?;
    let killed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    wait_for("ping to finish", Duration::from_secs(15), || Ok(ping.log_text().contains("packets transmitted")))?;
    let _ = ping.stop(Duration::from_secs(1));
    let log = ping.log_text();
    let replies: Vec<f64> = log
        .lines()
        .filter(|line| line.contains("bytes from"))
        .filter_map(|line| line.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let resumed = replies.iter().find(|t| **t > killed_at).copied().context(format!("no reply after the failover:\n{log}"))?;
    let gap_ms = (resumed - killed_at) * 1000.0;
    println!("client ping resumed {gap_ms:.0} ms after the Master host died (keepxdp priority 100: Master_Down_Interval 3609 ms)");
    ensure!(gap_ms <= 3609.0 + 300.0, "ping resumed after {gap_ms:.0} ms");
    ensure!(holds_vip(&node, "kxnode")?);
    Ok(())
}

#[test]
fn lab_static_addresses_and_routes_are_applied_at_start_and_removed_at_stop() -> Result<()> {
    let lab = Lab::new()?;
    let config = "static_ipaddress {\n  10.77.0.77/24 dev kxnode\n}\nstatic_routes {\n  10.55.0.0/16 via 10.77.0.1\n}\n";
    let mut node = lab.keepxdp_on_node(&keepxdp_bin()?, config)?;
    let state = || -> Result<(String, String)> { Ok((lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxnode"])?, lab.node.ip(&["route", "show"])?)) };
    wait_for("the static address and route", Duration::from_secs(3), || {
        let (addresses, routes) = state()?;
        Ok(addresses.contains(" 10.77.0.77/24") && routes.contains("10.55.0.0/16 via 10.77.0.1 dev kxnode"))
    })
    .with_context(|| format!("{:?}\n{}", state(), node.child.log_text()))?;
    node.stop()?;
    let (addresses, routes) = state()?;
    ensure!(!addresses.contains("10.77.0.77") && !routes.contains("10.55.0.0"), "left behind:\n{addresses}\n{routes}");
    Ok(())
}

#[test]
fn lab_v2_keepalived_master_over_keepxdp_then_kill_9_hands_over() -> Result<()> {
    let lab = Lab::new()?;
    let _peer = lab.keepalived_on_peer(&instance_config("kxpeer", 2, 150, "1", "MASTER", ""))?;
    wait_for("keepalived to take the VIP", Duration::from_secs(5), || lab.peer_holds_vip())?;
    let node = lab.keepxdp(2, 100, "1")?;
    wait_for_one_master(&lab, &node, "Backup", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(vrrp_state(&node)? == "Backup" && !lab.node_holds_vip()?, "keepxdp flapped: {}", node.status_json()?);
    lab.peer.kill_all()?;
    let took = failover_ms(Duration::from_secs(6), || lab.node_holds_vip())?;
    println!("failover keepalived -> keepxdp (v2, advert_int 1): {took} ms");
    ensure!(took <= 3609 + 200 + 100, "took {took} ms");
    Ok(())
}

#[test]
fn lab_v3_ipv6_unicast_keepalived_master_over_keepxdp_then_kill_9_hands_over() -> Result<()> {
    let lab = Lab(VrrpLab::new()?.with_ipv6()?);
    let unicast = |own: &str, peer: &str| format!("  unicast_src_ip {own}\n  unicast_peer {{\n    {peer}\n  }}\n");
    let peer_config = instance_config_v6("kxpeer", 150, "1", "MASTER")
        .replace("  virtual_ipaddress", &format!("{}  virtual_ipaddress", unicast("fd00:77::1", "fd00:77::2")));
    let _peer = lab.keepalived_on_peer(&peer_config)?;
    wait_for("keepalived to take the IPv6 VIP", Duration::from_secs(8), || holds_vip6(&lab.peer, "kxpeer"))?;
    let node_config = instance_config_v6("kxnode", 100, "1", "BACKUP")
        .replace("  virtual_ipaddress", &format!("{}  virtual_ipaddress", unicast("fd00:77::2", "fd00:77::1")));
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &node_config)?;
    wait_for("keepxdp Backup", Duration::from_secs(8), || Ok(vrrp_state(&node)? == "Backup"))?;
    std::thread::sleep(Duration::from_secs(4));
    let guard = node.guard_stats_json(&lab.node).unwrap_or_default();
    ensure!(
        vrrp_state(&node)? == "Backup" && !holds_vip6(&lab.node, "kxnode")?,
        "keepxdp did not follow keepalived's unicast adverts: {}\nguard: {guard}\n{}",
        node.status_json()?,
        node.child.log_text()
    );
    lab.peer.kill_all()?;
    let took = failover_ms(Duration::from_secs(6), || holds_vip6(&lab.node, "kxnode"))?;
    println!("failover keepalived -> keepxdp (v3/IPv6 unicast, advert_int 1): {took} ms");
    ensure!(took <= 3609 + 200 + 100, "took {took} ms");
    Ok(())
}

#[test]
fn lab_keep_dataplane_leaves_the_guard_running_and_the_next_keepxdp_replaces_it() -> Result<()> {
    let lab = Lab::new()?;
    let config = instance_config("kxnode", 2, 150, "1", "MASTER", "");
    let mut first = Keepxdp::start_with(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config, &["--keep-dataplane"])?;
    wait_for("Master", Duration::from_secs(5), || lab.node_holds_vip())?;
    let status = first.child.stop(Duration::from_secs(5))?;
    ensure!(status.success(), "{}", first.child.log_text());
    ensure!(!lab.node_holds_vip()?, "VRRP still stops cleanly: the address goes");
    ensure!(lab.node.ip(&["link", "show", "dev", "kxnode"])?.contains("xdp"), "the guard must stay attached");
    ensure!(first.pin_dir.join("link_vrrp_guard_kxnode").exists() && first.pin_dir.join("guard_stats").exists());
    // Its counters stay readable, as bpftool would.
    first.guard_stats_json(&lab.node)?;

    let mut second = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config)?;
    wait_for("Master again", Duration::from_secs(5), || lab.node_holds_vip())?;
    // Swapped into the kept link in one step (BPF_LINK_UPDATE): no moment without a guard.
    ensure!(second.child.log_text().contains("VRRP guard replaced in place (kept link adopted)"), "{}", second.child.log_text());
    second.stop()?;
    ensure!(!lab.node.ip(&["link", "show", "dev", "kxnode"])?.contains("xdp"), "a normal stop detaches");
    drop(first);
    Ok(())
}

#[test]
fn lab_use_vmac_puts_the_address_and_the_adverts_on_the_virtual_router_mac() -> Result<()> {
    let lab = Lab::new()?;
    let _peer = lab.keepalived(2, 100, "1")?;
    let mut node = lab.keepxdp_with(2, 150, "1", "  use_vmac\n")?;
    let vmac = || lab.node.ip(&["-o", "-4", "addr", "show", "dev", "vrrp.51"]);
    wait_for("the VIP on vrrp.51", Duration::from_secs(10), || Ok(vmac().map(|a| a.contains(&format!(" {VIP}/"))).unwrap_or(false)))
        .with_context(|| node.child.log_text())?;
    ensure!(lab.node.ip(&["link", "show", "dev", "vrrp.51"])?.contains("00:00:5e:00:01:33"), "VRID 51 = 0x33");
    ensure!(!lab.peer_holds_vip()?, "keepalived follows keepxdp's adverts from the vmac");
    let capture = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.peer.name, "timeout", "5", "tshark", "-i", "kxpeer", "-c", "2", "-V", "-f"])
        .arg("ip proto 112 and src host 10.77.0.2")
        .output()?;
    let decoded = String::from_utf8_lossy(&capture.stdout);
    ensure!(decoded.contains("Src: 00:00:5e:00:01:33") || decoded.contains("Src: IETF-VRRP-VRID_33"), "adverts must come from the virtual MAC:\n{decoded}");
    // The peer resolves the VIP to the virtual MAC.
    lab.peer.ip(&["neigh", "flush", "to", VIP])?;
    lab.peer.run("ping", &["-c", "1", "-W", "2", VIP])?;
    let neighbour = lab.peer.ip(&["neigh", "show", VIP])?;
    let arp_ignore = lab.node.run("cat", &["/proc/sys/net/ipv4/conf/kxnode/arp_ignore"])?;
    ensure!(neighbour.contains("00:00:5e:00:01:33"), "peer's neighbour entry: {neighbour}; node arp_ignore {arp_ignore}; node links {}", lab.node.ip(&["link"])?);
    node.stop()?;
    ensure!(lab.node.ip(&["link", "show", "dev", "vrrp.51"]).is_err(), "the vmac is deleted on stop");
    Ok(())
}

/// One cell of the interop matrix: returns the failover time in ms.
fn interop_case(ipv6: bool, version: u8, unicast: bool, keepxdp_master: bool) -> Result<u128> {
    let lab = if ipv6 { Lab(VrrpLab::new()?.with_ipv6()?) } else { Lab::new()? };
    let advert_int = if version == 3 { "0.5" } else { "1" };
    let (peer_address, node_address) = if ipv6 { ("fd00:77::1", "fd00:77::2") } else { ("10.77.0.1", "10.77.0.2") };
    let unicast_lines = |own: &str, other: &str| {
        if unicast { format!("  unicast_src_ip {own}\n  unicast_peer {{\n    {other}\n  }}\n") } else { String::new() }
    };
    let config = |interface: &str, priority: u8, state: &str, own: &str, other: &str| {
        let base = if ipv6 { instance_config_v6(interface, priority, advert_int, state) } else { instance_config(interface, version, priority, advert_int, state, "") };
        base.replace("  virtual_ipaddress", &format!("{}  virtual_ipaddress", unicast_lines(own, other)))
    };
    let holds = |on_node: bool| if ipv6 {
        if on_node { holds_vip6(&lab.node, "kxnode") } else { holds_vip6(&lab.peer, "kxpeer") }
    } else if on_node { lab.node_holds_vip() } else { lab.peer_holds_vip() };
    let (node_priority, peer_priority) = if keepxdp_master { (150, 100) } else { (100, 150) };
    let (node_state, peer_state) = if keepxdp_master { ("MASTER", "BACKUP") } else { ("BACKUP", "MASTER") };
    let node_config = config("kxnode", node_priority, node_state, node_address, peer_address);
    let peer_config = config("kxpeer", peer_priority, peer_state, peer_address, node_address);
    // The Master first, then the Backup.
    let (_peer, _node);
    if keepxdp_master {
        _node = Some(lab.keepxdp_on_node(&keepxdp_bin()?, &node_config)?);
        wait_for("the Master (keepxdp) to hold the VIP", Duration::from_secs(8), || holds(true))?;
        _peer = Some(lab.keepalived_on_peer(&peer_config)?);
    } else {
        _peer = Some(lab.keepalived_on_peer(&peer_config)?);
        wait_for("the Master (keepalived) to hold the VIP", Duration::from_secs(8), || holds(false))?;
        _node = Some(lab.keepxdp_on_node(&keepxdp_bin()?, &node_config)?);
    }
    // Exactly one holder, and it stays that way.
    std::thread::sleep(Duration::from_secs(3));
    ensure!(holds(keepxdp_master)? && !holds(!keepxdp_master)?, "not exactly one Master");
    if keepxdp_master { lab.node.kill_all()? } else { lab.peer.kill_all()? }
    let took = failover_ms(Duration::from_secs(6), || holds(!keepxdp_master))?;
    // The Backup (priority 100): Master_Down_Interval = 3 × interval + 156/256 × (1 s for v2,
    // the interval for v3).
    let interval_ms: u128 = if version == 3 { 500 } else { 1000 };
    let skew_ms = if version == 3 { interval_ms * 156 / 256 } else { 609 };
    ensure!(took <= 3 * interval_ms + skew_ms + 200, "took {took} ms");
    Ok(took)
}

#[test]
fn lab_interop_matrix_v2_v3_ipv6_multicast_unicast_both_orders() -> Result<()> {
    keepxdp_lab::require_root()?;
    let mut failures = Vec::new();
    println!("| family | version | mode | Master | failover ms |");
    for (ipv6, version) in [(false, 2), (false, 3), (true, 3)] {
        for unicast in [false, true] {
            for keepxdp_master in [true, false] {
                let name = format!(
                    "| {} | v{version} | {} | {} |",
                    if ipv6 { "IPv6" } else { "IPv4" },
                    if unicast { "unicast" } else { "multicast" },
                    if keepxdp_master { "keepxdp" } else { "keepalived" }
                );
                match interop_case(ipv6, version, unicast, keepxdp_master) {
                    Ok(took) => println!("{name} {took} |"),
                    Err(error) => {
                        println!("{name} FAILED |");
                        failures.push(format!("{name}: {error:#}"));
                    }
                }
            }
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn lab_a_virtual_address_with_its_own_dev_goes_on_that_interface() -> Result<()> {
    let lab = Lab::new()?;
    lab.node.ip(&["link", "add", "dev", "kxother", "type", "veth", "peer", "name", "kxotherp"])?;
    lab.node.ip(&["link", "set", "kxother", "up"])?;
    lab.node.ip(&["link", "set", "kxotherp", "up"])?;
    let config = instance_config("kxnode", 2, 150, "1", "MASTER", "").replace(
        &format!("    {VIP}/24\n"),
        &format!("    {VIP}/24\n    10.88.0.5/24 dev kxother\n"),
    );
    let mut node = lab.keepxdp_on_node(&keepxdp_bin()?, &config)?;
    wait_for("both addresses, each on its interface", Duration::from_secs(5), || {
        Ok(lab.node_holds_vip()? && lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxother"])?.contains(" 10.88.0.5/24"))
    })
    .with_context(|| node.child.log_text())?;
    ensure!(!lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxnode"])?.contains("10.88.0.5"));
    node.stop()?;
    ensure!(!lab.node.ip(&["-o", "-4", "addr", "show", "dev", "kxother"])?.contains("10.88.0.5"), "released on stop");
    Ok(())
}

#[test]
fn lab_malformed_adverts_that_pass_the_guard_are_counted_and_never_crash_the_daemon() -> Result<()> {
    use keepxdp_lab::{frames::Advert, netns::send_frames};
    let lab = Lab::new()?;
    // A real Master keeps keepxdp Backup for the whole test.
    let _peer = lab.keepalived_on_peer(&instance_config("kxpeer", 2, 150, "1", "MASTER", ""))?;
    wait_for("keepalived Master", Duration::from_secs(5), || lab.peer_holds_vip())?;
    let node = lab.keepxdp(2, 100, "1")?;
    wait_for("keepxdp Backup", Duration::from_secs(5), || Ok(vrrp_state(&node)? == "Backup"))?;
    // Well-formed for the guard (TTL, version, type, VRID, length), broken for the daemon:
    // a bad checksum, and 300 frames of random bytes after a valid header.
    let mut frames = Vec::new();
    let good = Advert::v2(51, "10.77.0.1", &[VIP]).frame();
    let mut bad_checksum = good.clone();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0xff;
    frames.push(bad_checksum);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        let mut frame = good.clone();
        for byte in frame.iter_mut().skip(14 + 20 + 4) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = seed as u8;
        }
        frames.push(frame);
    }
    send_frames(&lab.peer, "kxpeer", frames)?;
    wait_for("the malformed adverts counted", Duration::from_secs(3), || {
        let seen = status(&node)?;
        Ok(seen["vrrp"][0]["malformed"].as_u64().unwrap_or(0) >= 1)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let seen = status(&node)?;
    ensure!(vrrp_state(&node)? == "Backup", "garbage must not make it Master or flap it: {seen}");
    let mut node = node;
    node.child.check_running()?;
    Ok(())
}
