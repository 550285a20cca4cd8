//! keepxdp's VRRP instances and their interface's life: started while the link is down (as
//! at boot) or before the interface exists, they wait in FAULT and join the election when
//! it comes up; a link flap takes a
//! Master to FAULT (keepalived takes over) and back (it takes back with preempt), with the
//! XDP guard still attached; an interface deleted and made again is followed to its new
//! index. The hosts sit behind a switch so the node's link can fail alone. Every wait is
//! bounded; VRRPv3 at 0.1 s keeps each election well under a second.
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    keepxdp::Keepxdp,
    process::wait_for,
    vrrp_lab::{SwitchedVrrpLab, VrrpLab, holds_vip6, instance_config, instance_config_v6},
};
use keepxdp_tests::keepxdp_bin;

fn status(keepxdp: &Keepxdp) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&keepxdp.status_json()?)?)
}

fn vrrp_state(keepxdp: &Keepxdp) -> Result<String> {
    Ok(status(keepxdp)?["vrrp"][0]["state"].as_str().unwrap_or("").to_string())
}

/// keepxdp reports FAULT, waiting for kxnode for `why` ("down", "missing").
fn wait_for_fault(keepxdp: &Keepxdp, why: &str, timeout: Duration) -> Result<()> {
    let expected = format!("waiting for kxnode: {why}");
    wait_for(&format!("keepxdp in FAULT, {expected}"), timeout, || {
        let seen = status(keepxdp)?;
        Ok(seen["vrrp"][0]["state"] == "Fault" && seen["vrrp"][0]["fault_reason"].as_str().is_some_and(|r| r.contains(&expected)))
    })
    .with_context(|| format!("status: {:?}\nlog:\n{}", keepxdp.status_json(), keepxdp.child.log_text()))
}

/// `bpftool net show` in the node: the XDP program attached to kxnode (`driver id N`), if any.
fn xdp_on_node(lab: &SwitchedVrrpLab) -> Result<Option<String>> {
    let shown = lab.node.run("bpftool", &["net", "show"])?;
    Ok(shown.lines().find(|line| line.starts_with("kxnode(")).and_then(|line| line.split_once(") ")).map(|(_, attached)| attached.trim().to_string()))
}

fn notify_line(dir: &std::path::Path) -> String {
    format!("  notify \"/bin/sh -c 'echo $2 >> {}/states'\"\n", dir.display())
}

fn states(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("states")).unwrap_or_default().lines().map(String::from).collect()
}

#[test]
fn lab_boot_ipv4_started_with_the_link_down_waits_in_fault_and_is_master_alone_once_it_is_up() -> Result<()> {
    let lab = VrrpLab::new()?;
    lab.node.ip(&["link", "set", "kxnode", "down"])?;
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", 3, 100, "0.1", "BACKUP", ""))?;
    wait_for_fault(&node, "down", Duration::from_secs(2))?;
    std::thread::sleep(Duration::from_secs(1));
    ensure!(vrrp_state(&node)? == "Fault" && !lab.node_holds_vip()?, "{}", node.status_json()?);

    lab.node.ip(&["link", "set", "kxnode", "up"])?;
    wait_for("keepxdp Master with the VIP", Duration::from_secs(5), || Ok(vrrp_state(&node)? == "Master" && lab.node_holds_vip()?))
        .with_context(|| node.child.log_text())?;
    let seen = status(&node)?;
    ensure!(seen["vrrp"][0]["fault_reason"].is_null() && seen["vrrp"][0]["ifindex"].is_u64(), "{seen}");
    Ok(())
}

#[test]
fn lab_boot_ipv6_started_with_the_link_down_is_backup_beside_a_higher_priority_keepalived_then_master_when_it_dies() -> Result<()> {
    let lab = SwitchedVrrpLab::new()?.with_ipv6()?;
    let _peer = lab.keepalived_on_peer(&instance_config_v6("kxpeer", 150, "0.1", "MASTER"))?;
    wait_for("keepalived Master of the IPv6 VIP", Duration::from_secs(8), || holds_vip6(&lab.peer, "kxpeer"))?;
    // Down, the node loses its link-local address too: IPv6 has nothing to send from.
    lab.node_link(false)?;
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config_v6("kxnode", 100, "0.1", "BACKUP"))?;
    wait_for_fault(&node, "down", Duration::from_secs(2))?;
    std::thread::sleep(Duration::from_secs(1));

    lab.node_link(true)?;
    // Up: FAULT until the new link-local address finishes DAD, then Backup behind keepalived.
    wait_for("keepxdp Backup", Duration::from_secs(8), || Ok(vrrp_state(&node)? == "Backup"))
        .with_context(|| format!("{:?}\n{}", node.status_json(), node.child.log_text()))?;
    std::thread::sleep(Duration::from_secs(1));
    ensure!(
        vrrp_state(&node)? == "Backup" && !holds_vip6(&lab.node, "kxnode")? && holds_vip6(&lab.peer, "kxpeer")?,
        "keepxdp must follow keepalived's adverts: {}\n{}",
        node.status_json()?,
        node.child.log_text()
    );
    ensure!(!node.child.log_text().contains("no IPv6 link-local address"), "{}", node.child.log_text());

    lab.peer.kill_all()?;
    wait_for("keepxdp Master of the IPv6 VIP", Duration::from_secs(3), || Ok(vrrp_state(&node)? == "Master" && holds_vip6(&lab.node, "kxnode")?))
        .with_context(|| node.child.log_text())?;
    Ok(())
}

#[test]
fn lab_boot_an_instance_whose_interface_does_not_exist_yet_waits_in_fault_and_runs_once_it_is_created() -> Result<()> {
    let mut lab = SwitchedVrrpLab::new()?;
    lab.node.ip(&["link", "del", "kxnode"])?;
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", 3, 100, "0.1", "BACKUP", ""))?;
    wait_for_fault(&node, "missing", Duration::from_secs(2))?;
    lab.replug_node()?;
    wait_for("keepxdp Master with the VIP", Duration::from_secs(5), || Ok(vrrp_state(&node)? == "Master" && lab.node_holds_vip()?))
        .with_context(|| node.child.log_text())?;
    Ok(())
}

#[test]
fn lab_a_master_whose_link_flaps_hands_over_to_keepalived_and_takes_back_with_preempt() -> Result<()> {
    let lab = SwitchedVrrpLab::new()?;
    let dir = lab.dir.path().to_path_buf();
    let _peer = lab.keepalived_on_peer(&instance_config("kxpeer", 3, 100, "0.1", "BACKUP", ""))?;
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", 3, 150, "0.1", "BACKUP", &notify_line(&dir)))?;
    wait_for("keepxdp the only Master", Duration::from_secs(5), || {
        Ok(vrrp_state(&node)? == "Master" && lab.node_holds_vip()? && !lab.peer_holds_vip()?)
    })
    .with_context(|| node.child.log_text())?;
    let guard = xdp_on_node(&lab)?.with_context(|| format!("no XDP on kxnode: {:?}", lab.node.run("bpftool", &["net", "show"])))?;
    let program = status(&node)?["attachments"].clone();
    ensure!(program.as_array().is_some_and(|a| a.iter().any(|a| a["interface"] == "kxnode")), "status attachments: {program}");

    // Link down: FAULT, priority 0 tried, the VIP released (it would stay on a down link).
    lab.node_link(false)?;
    wait_for_fault(&node, "down", Duration::from_secs(2))?;
    wait_for("the VIP gone from the node and on keepalived", Duration::from_secs(2), || {
        Ok(!lab.node_holds_vip()? && lab.peer_holds_vip()?)
    })?;
    ensure!(xdp_on_node(&lab)?.as_ref() == Some(&guard), "the guard ({guard}) must stay attached over link down: {:?}", xdp_on_node(&lab));

    // Link up: Backup, then the election: 150 preempts keepalived's 100.
    lab.node_link(true)?;
    wait_for("keepxdp Master again, keepalived Backup", Duration::from_secs(5), || {
        Ok(vrrp_state(&node)? == "Master" && lab.node_holds_vip()? && !lab.peer_holds_vip()?)
    })
    .with_context(|| node.child.log_text())?;
    ensure!(xdp_on_node(&lab)?.as_ref() == Some(&guard), "the guard ({guard}) must stay attached over link up: {:?}", xdp_on_node(&lab));
    let attachments = status(&node)?["attachments"].clone();
    ensure!(attachments == program, "status attachments changed: {program} -> {attachments}");
    wait_for("notify for each state", Duration::from_secs(1), || Ok(states(&dir) == ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]))
        .with_context(|| format!("states: {:?}", states(&dir)))?;
    Ok(())
}

#[test]
fn lab_an_interface_deleted_and_re_created_comes_back_to_its_election_and_gets_the_guard_again() -> Result<()> {
    let mut lab = SwitchedVrrpLab::new()?;
    let _peer = lab.keepalived_on_peer(&instance_config("kxpeer", 3, 100, "0.1", "BACKUP", ""))?;
    let node = lab.keepxdp_on_node(&keepxdp_bin()?, &instance_config("kxnode", 3, 150, "0.1", "BACKUP", ""))?;
    wait_for("keepxdp the only Master", Duration::from_secs(5), || Ok(vrrp_state(&node)? == "Master" && !lab.peer_holds_vip()?))
        .with_context(|| node.child.log_text())?;
    let first_index = status(&node)?["vrrp"][0]["ifindex"].as_u64().context("no ifindex in the status")?;

    lab.node.ip(&["link", "del", "kxnode"])?;
    wait_for_fault(&node, "missing", Duration::from_secs(2))?;
    wait_for("keepalived to take the VIP", Duration::from_secs(2), || lab.peer_holds_vip())?;

    lab.replug_node()?;
    wait_for("keepxdp Master on the new interface, keepalived Backup", Duration::from_secs(5), || {
        Ok(vrrp_state(&node)? == "Master" && lab.node_holds_vip()? && !lab.peer_holds_vip()?)
    })
    .with_context(|| node.child.log_text())?;
    let second_index = status(&node)?["vrrp"][0]["ifindex"].as_u64().context("no ifindex in the status")?;
    ensure!(second_index != first_index, "the re-created interface has a new index ({first_index} both times)");
    // The data plane follows: the guard is attached to the new interface, its link pinned.
    wait_for("the guard on the re-created interface", Duration::from_secs(3), || {
        let attachments = status(&node)?["attachments"].clone();
        Ok(attachments.as_array().is_some_and(|list| {
            list.iter().any(|a| a["interface"] == "kxnode" && a["ifindex"].as_u64() == Some(second_index))
        }) && xdp_on_node(&lab)?.is_some())
    })
    .with_context(|| format!("status: {:?}\nlog:\n{}", node.status_json(), node.child.log_text()))?;
    ensure!(node.pin_dir.join("link_vrrp_guard_kxnode").exists(), "the new link is pinned");
    let mut node = node;
    node.child.check_running()?;
    Ok(())
}
