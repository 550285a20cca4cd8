//! A configuration that does not fit the data plane's maps: refused at start with the
//! virtual_server named (nothing loaded), and on reload with the running configuration kept
//! and still forwarding.
use std::time::Duration;

use anyhow::{Result, ensure};
use keepxdp_lab::{process::wait_for, require_root};
use keepxdp_tests::{
    keepxdp_bin,
    lvs_lab::{VIP, lvs_table, nat_lab, requests, start_with},
};

const REAL_SERVERS: [&str; 3] = ["10.1.0.11", "10.1.0.12", "10.1.0.13"];

/// The VRRP instance owning the VIP, and a NAT virtual_server on each of `ports`.
fn config(ports: &[u16]) -> String {
    let real_servers: String = REAL_SERVERS.iter().map(|ip| format!("  real_server {ip} 8080 {{\n    weight 1\n  }}\n")).collect();
    let services: String = ports
        .iter()
        .map(|port| format!("virtual_server {VIP} {port} {{\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP\n{real_servers}}}\n"))
        .collect();
    format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  state MASTER\n  priority 150\n  virtual_router_id 51\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n{services}"
    )
}

#[test]
fn lab_more_services_than_the_maps_hold_are_refused_at_start_and_on_reload() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let lab = nat_lab("10.1.0.1")?;

    // At start: refused before anything is loaded, naming the first service that does not fit.
    let path = dir.path().join("three.conf");
    std::fs::write(&path, config(&[80, 81, 82]))?;
    let pins = dir.path().join("pins-refused");
    let output = lab
        .lb
        .command(keepxdp_bin()?.to_str().unwrap())
        .args(["run", "--max-services", "2", "-f", path.to_str().unwrap(), "--pin-dir", pins.to_str().unwrap()])
        .args(["--control-socket", dir.path().join("refused.sock").to_str().unwrap()])
        .output()?;
    let said = String::from_utf8_lossy(&output.stderr);
    ensure!(!output.status.success(), "keepxdp ran with 3 services in 2 slots:\n{said}");
    ensure!(
        said.contains(&format!("virtual_server {VIP}:82 at {}:", path.display())) && said.contains("3 services configured, the data plane holds 2 (raise --max-services)"),
        "{said}"
    );
    ensure!(!pins.exists() || std::fs::read_dir(&pins)?.next().is_none(), "nothing was pinned");

    // On reload: refused, counted with its reason, the two running services keep forwarding.
    let keepxdp = start_with(&lab.lb, dir.path(), &config(&[80, 81]), &REAL_SERVERS, &["--max-services", "2"])?;
    std::fs::write(&keepxdp.config_path, config(&[80, 81, 82]))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keepxdp.child.pid() as i32), nix::sys::signal::Signal::SIGHUP)?;
    let mut status = serde_json::Value::Null;
    wait_for("the refused reload in status", Duration::from_secs(5), || {
        status = serde_json::from_str(&keepxdp.status_json()?)?;
        Ok(status["reloads_refused"] == 1)
    })?;
    let reason = status["last_reload_refusal"].as_str().unwrap_or_default().to_string();
    ensure!(reason.contains(&format!("virtual_server {VIP}:82")) && reason.contains("raise --max-services"), "{reason}");
    let table = lvs_table(&keepxdp, &lab.lb)?;
    ensure!(table.contains(&format!("{VIP}:80")) && table.contains(&format!("{VIP}:81")) && !table.contains(&format!("{VIP}:82")), "{table}");
    let spread = requests(&lab.client, 30, 32000)?;
    ensure!(spread.values().sum::<u32>() == 30, "the running configuration still forwards: {spread:?}");
    Ok(())
}
