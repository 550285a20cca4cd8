//! The balancer labs' shared pieces (`lab_lvs`, `lab_check`): the DR lab (a client, one LB
//! namespace, three real servers holding the VIP on lo, all on one switch), fixed-source-port
//! HTTP clients, and waiting for keepxdp to be Master with its real servers resolved.
//! Here rather than in keepxdp-lab because the lab needs `attach_xdp_pass` (aya and keepxdp's
//! BPF object).
use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use anyhow::Result;
use keepxdp_lab::{
    http::{self, HttpServer},
    keepxdp::Keepxdp,
    netns::{Netns, Switch, veth_pair},
    process::wait_for,
};

use crate::{AttachedXdp, attach_xdp_pass, keepxdp_bin};

pub const VIP: &str = "10.0.0.100";

/// `count` GETs to VIP:80 from fixed source ports `first_port..`; every one must succeed.
/// Who answered, how often.
pub fn requests(client: &Netns, count: u16, first_port: u16) -> Result<BTreeMap<String, u32>> {
    let path = client.path();
    std::thread::spawn(move || -> Result<BTreeMap<String, u32>> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let target: SocketAddr = format!("{VIP}:80").parse()?;
        let mut seen = BTreeMap::new();
        for i in 0..count {
            let name = http::get(target, first_port + i).map_err(|e| anyhow::anyhow!("request {i}: {e:#}"))?;
            *seen.entry(name).or_insert(0) += 1;
        }
        Ok(seen)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("client thread panicked"))?
}

/// `keepxdp lvs` (the table), run in `lb`.
pub fn lvs_table(keepxdp: &Keepxdp, lb: &Netns) -> Result<String> {
    lb.run(
        keepxdp.binary.to_str().unwrap(),
        &["lvs", "--pin-dir", keepxdp.pin_dir.to_str().unwrap(), "--control-socket", keepxdp.control_socket.to_str().unwrap()],
    )
}

/// `keepxdp lvs --json`, parsed.
pub fn lvs_json(keepxdp: &Keepxdp, lb: &Netns) -> Result<serde_json::Value> {
    let json = lb.run(keepxdp.binary.to_str().unwrap(), &["lvs", "--json", "--pin-dir", keepxdp.pin_dir.to_str().unwrap()])?;
    Ok(serde_json::from_str(&json)?)
}

pub struct Dr {
    pub _xdp: Vec<AttachedXdp>,
    /// rs1..rs3's HTTP servers, answering with their names.
    pub servers: Vec<HttpServer>,
    pub client: Netns,
    pub lb: Netns,
    pub rs: Vec<Netns>,
    pub _switch: Switch,
}

/// client 10.0.0.1, LB 10.0.0.2, rs1..rs3 10.0.0.11..13 (VIP on lo, arp_ignore), one switch.
pub fn dr_lab() -> Result<Dr> {
    let mut switch = Switch::new()?;
    let client = Netns::new("cl")?;
    let lb = Netns::new("lb")?;
    switch.plug(&client, "eth0", "10.0.0.1/24")?;
    full_checksums(&client, "eth0")?;
    let lb_port = switch.plug(&lb, "eth0", "10.0.0.2/24")?;
    // The LB sends with native XDP_TX: its switch port must carry an XDP program.
    let mut xdp = vec![attach_xdp_pass(&switch.netns, &lb_port)?];
    let mut rs = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=3 {
        let host = Netns::new(&format!("rs{n}"))?;
        switch.plug(&host, "eth0", &format!("10.0.0.1{n}/24"))?;
        host.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            for scope in ["all", "eth0"] {
                host.run("sysctl", &["-qw", &format!("net.ipv4.conf.{scope}.{key}={value}")])?;
            }
        }
        servers.push(HttpServer::start(&host, "0.0.0.0:80".parse()?, &format!("rs{n}"))?);
        rs.push(host);
    }
    xdp.shrink_to_fit();
    Ok(Dr { _xdp: xdp, servers, client, lb, rs, _switch: switch })
}

/// veths hand frames on with the TCP/UDP checksum left for "hardware" to fill in
/// (CHECKSUM_PARTIAL); a frame the balancer forwards in XDP leaves that state behind, so lab
/// hosts compute checksums in software, as frames from a real NIC arrive.
pub fn full_checksums(netns: &Netns, device: &str) -> Result<()> {
    netns.run("ethtool", &["-K", device, "tx", "off"])?;
    Ok(())
}

pub fn holds(netns: &Netns, device: &str, addr: &str) -> Result<bool> {
    Ok(netns.ip(&["-o", "-4", "addr", "show", "dev", device])?.contains(&format!(" {addr}/")))
}

/// The real servers keepxdp has MACs for (from `keepxdp lvs --json`).
pub fn resolved(keepxdp: &Keepxdp, lb: &Netns, real_servers: &[&str]) -> Result<bool> {
    let table = lvs_json(keepxdp, lb)?;
    let resolved: Vec<String> = table["services"][0]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["resolved"] == true)
        .filter_map(|b| b["address"].as_str().map(|a| a.split(':').next().unwrap_or_default().to_string()))
        .collect();
    Ok(real_servers.iter().all(|rs| resolved.iter().any(|r| r == rs)))
}

/// keepxdp up, Master for the VIP (so the balancer forwards it), and the real servers'
/// MACs known: until a neighbour is resolved the balancer hands its packets to the stack
/// (counted `unresolved`) while keepxdp has the kernel resolve it.
pub fn start(lb: &Netns, dir: &Path, config: &str, real_servers: &[&str]) -> Result<Keepxdp> {
    start_with(lb, dir, config, real_servers, &[])
}

/// `start` with more `keepxdp run` options.
pub fn start_with(lb: &Netns, dir: &Path, config: &str, real_servers: &[&str], extra: &[&str]) -> Result<Keepxdp> {
    let keepxdp = Keepxdp::start_with(&keepxdp_bin()?, lb, dir, config, extra)?;
    wait_for("the LB to become Master", Duration::from_secs(10), || holds(lb, "eth0", VIP))?;
    wait_for("the balancer to forward the VIP", Duration::from_secs(5), || Ok(lvs_table(&keepxdp, lb)?.contains(" master")))?;
    wait_for("the real servers' MACs", Duration::from_secs(10), || resolved(&keepxdp, lb, real_servers))?;
    Ok(keepxdp)
}

/// client 10.0.0.1 —eth0— LB 10.0.0.2 / 10.1.0.1 —eth1, switch— rs1..rs3 10.1.0.11..13
/// (HTTP on 8080 answering with their names).
pub struct Nat {
    pub _xdp: Vec<AttachedXdp>,
    pub servers: Vec<HttpServer>,
    pub client: Netns,
    pub lb: Netns,
    pub rs: Vec<Netns>,
    pub _switch: Switch,
}

/// `gateway`: the real servers' default route (VI_GW's VIP, or the LB's own eth1 address).
pub fn nat_lab(gateway: &str) -> Result<Nat> {
    let mut switch = Switch::new()?;
    let client = Netns::new("cl")?;
    let lb = Netns::new("lb")?;
    veth_pair(&client, "eth0", "10.0.0.1/24", &lb, "eth0", "10.0.0.2/24")?;
    full_checksums(&client, "eth0")?;
    lb.run("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"])?;
    let lb_port = switch.plug(&lb, "eth1", "10.1.0.1/24")?;
    // Frames the LB redirects or sends back with native XDP need a program on the receiver.
    let xdp = vec![attach_xdp_pass(&switch.netns, &lb_port)?, attach_xdp_pass(&client, "eth0")?];
    let mut rs = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=3 {
        let host = Netns::new(&format!("rs{n}"))?;
        switch.plug(&host, "eth0", &format!("10.1.0.1{n}/24"))?;
        full_checksums(&host, "eth0")?;
        host.ip(&["route", "add", "default", "via", gateway])?;
        servers.push(HttpServer::start(&host, "0.0.0.0:8080".parse()?, &format!("rs{n}"))?);
        rs.push(host);
    }
    Ok(Nat { _xdp: xdp, servers, client, lb, rs, _switch: switch })
}
