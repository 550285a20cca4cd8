//! The balancer labs' shared pieces (`lab_lvs`, `lab_check`): the DR lab (a client, one LB
//! namespace, three real servers holding the VIP on lo, all on one switch), fixed-source-port
//! HTTP clients, and waiting for keepxdp to be Master with its real servers resolved.
//! Here rather than in keepxdp-lab because the lab needs `attach_xdp_pass` (aya and keepxdp's
//! BPF object).
use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use anyhow::{Context, Result};
use keepxdp_lab::{
    http::{self, HttpServer},
    keepxdp::Keepxdp,
    netns::{Netns, Switch, veth_pair},
    process::wait_for,
};

use crate::{AttachedXdp, attach_xdp_pass, keepxdp_bin};

pub const VIP: &str = "10.0.0.100";

/// One family's lab addresses: the DR lab's one subnet (client .1, LB .2, rs1..rs3 .11..13,
/// VIP .100) and the NAT lab's inner subnet (LB .1, rs1..rs3 .11..13).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub vip: &'static str,
    /// Both subnets' prefix length.
    pub len: u8,
    /// The outer subnet's hosts are `{outer}{n}`, the inner's `{inner}{n}`.
    pub outer: &'static str,
    pub inner: &'static str,
    /// The real servers' HTTP listen address (any address of the family).
    pub any: &'static str,
}

pub const V4: Plan = Plan { vip: VIP, len: 24, outer: "10.0.0.", inner: "10.1.0.", any: "0.0.0.0" };
pub const V6: Plan = Plan { vip: "fd00:215::100", len: 64, outer: "fd00:215::", inner: "fd00:216::", any: "::" };

impl Plan {
    /// Host `n` of the outer subnet, without prefix (`10.0.0.2`, `fd00:215::2`).
    pub fn outer(&self, n: u32) -> String {
        format!("{}{n}", self.outer)
    }
    pub fn inner(&self, n: u32) -> String {
        format!("{}{n}", self.inner)
    }
    fn cidr(&self, address: String) -> String {
        format!("{address}/{}", self.len)
    }
    /// The three real servers' addresses (DR: outer, NAT: inner).
    pub fn real_servers(&self, nat: bool) -> Vec<String> {
        (11..=13).map(|n| if nat { self.inner(n) } else { self.outer(n) }).collect()
    }
    pub fn listen(&self, port: u16) -> Result<SocketAddr> {
        Ok(SocketAddr::new(self.any.parse()?, port))
    }
}

/// The IP of a `keepxdp lvs`/`status` address (`10.0.0.11:80`, `[fd00::11]:80`).
pub fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host).trim_start_matches('[').trim_end_matches(']')
}

/// `count` GETs to VIP:80 from fixed source ports `first_port..`; every one must succeed.
/// Who answered, how often.
pub fn requests(client: &Netns, count: u16, first_port: u16) -> Result<BTreeMap<String, u32>> {
    requests_to(client, VIP, count, first_port)
}

/// `requests` to `vip`:80.
pub fn requests_to(client: &Netns, vip: &str, count: u16, first_port: u16) -> Result<BTreeMap<String, u32>> {
    let path = client.path();
    let target = SocketAddr::new(vip.parse()?, 80);
    std::thread::spawn(move || -> Result<BTreeMap<String, u32>> {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
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

/// `real`'s ring slots in `keepxdp lvs --json` (0 when it is not listed: a backend that is
/// down and not inhibited is no longer alive, and the table lists only live ones).
pub fn ring_slots(keepxdp: &Keepxdp, lb: &Netns, real: &str) -> Result<u64> {
    let table = lvs_json(keepxdp, lb)?;
    Ok(table["services"][0]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["address"].as_str().is_some_and(|a| host_of(a) == real))
        .and_then(|b| b["ring_slots"].as_u64())
        .unwrap_or(0))
}

/// `real`'s backend in `keepxdp status --json` (`lvs[0].backends[]`, with `up` and `checkers`).
pub fn status_backend(keepxdp: &Keepxdp, real: &str) -> Result<serde_json::Value> {
    let status: serde_json::Value = serde_json::from_str(&keepxdp.status_json()?)?;
    status["lvs"][0]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["plan"]["name"].as_str().is_some_and(|n| host_of(n) == real))
        .cloned()
        .with_context(|| format!("{real} is not in status: {status}"))
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
    dr_lab_of(&V4)
}

/// `dr_lab` in `plan`'s family. IPv6 needs no arp_ignore: Linux answers a neighbour
/// solicitation only for addresses of the interface it came in on, not lo's.
pub fn dr_lab_of(plan: &Plan) -> Result<Dr> {
    let mut switch = Switch::new()?;
    let client = Netns::new("cl")?;
    let lb = Netns::new("lb")?;
    switch.plug(&client, "eth0", &plan.cidr(plan.outer(1)))?;
    full_checksums(&client, "eth0")?;
    let lb_port = switch.plug(&lb, "eth0", &plan.cidr(plan.outer(2)))?;
    // The LB sends with native XDP_TX: its switch port must carry an XDP program.
    let mut xdp = vec![attach_xdp_pass(&switch.netns, &lb_port)?];
    let mut rs = Vec::new();
    let mut servers = Vec::new();
    let host_len = if plan.vip.contains(':') { 128 } else { 32 };
    for n in 1..=3 {
        let host = Netns::new(&format!("rs{n}"))?;
        switch.plug(&host, "eth0", &plan.cidr(plan.outer(10 + n)))?;
        keepxdp_lab::netns::add_address(&host, "lo", &format!("{}/{host_len}", plan.vip))?;
        if host_len == 32 {
            for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                for scope in ["all", "eth0"] {
                    host.run("sysctl", &["-qw", &format!("net.ipv4.conf.{scope}.{key}={value}")])?;
                }
            }
        }
        servers.push(HttpServer::start(&host, plan.listen(80)?, &format!("rs{n}"))?);
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
    Ok(netns.ip(&["-o", "addr", "show", "dev", device])?.contains(&format!(" {addr}/")))
}

/// The real servers keepxdp has MACs for (from `keepxdp lvs --json`).
pub fn resolved(keepxdp: &Keepxdp, lb: &Netns, real_servers: &[&str]) -> Result<bool> {
    let table = lvs_json(keepxdp, lb)?;
    let resolved: Vec<String> = table["services"][0]["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["resolved"] == true)
        .filter_map(|b| b["address"].as_str().map(|a| host_of(a).to_string()))
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
    start_for(lb, dir, config, VIP, real_servers, extra)
}

/// `start_with` for a VIP of either family.
pub fn start_for(lb: &Netns, dir: &Path, config: &str, vip: &str, real_servers: &[&str], extra: &[&str]) -> Result<Keepxdp> {
    let keepxdp = Keepxdp::start_with(&keepxdp_bin()?, lb, dir, config, extra)?;
    wait_for("the LB to become Master", Duration::from_secs(10), || holds(lb, "eth0", vip))?;
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
    nat_lab_of(&V4, gateway)
}

/// `nat_lab` in `plan`'s family: client outer .1, LB outer .2 and inner .1, rs inner .11..13.
pub fn nat_lab_of(plan: &Plan, gateway: &str) -> Result<Nat> {
    let mut switch = Switch::new()?;
    let client = Netns::new("cl")?;
    let lb = Netns::new("lb")?;
    veth_pair(&client, "eth0", &plan.cidr(plan.outer(1)), &lb, "eth0", &plan.cidr(plan.outer(2)))?;
    full_checksums(&client, "eth0")?;
    let v6 = plan.vip.contains(':');
    let forwarding = if v6 { "net.ipv6.conf.all.forwarding=1" } else { "net.ipv4.conf.all.forwarding=1" };
    lb.run("sysctl", &["-qw", forwarding])?;
    let lb_port = switch.plug(&lb, "eth1", &plan.cidr(plan.inner(1)))?;
    // Frames the LB redirects or sends back with native XDP need a program on the receiver.
    let xdp = vec![attach_xdp_pass(&switch.netns, &lb_port)?, attach_xdp_pass(&client, "eth0")?];
    let mut rs = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=3 {
        let host = Netns::new(&format!("rs{n}"))?;
        switch.plug(&host, "eth0", &plan.cidr(plan.inner(10 + n)))?;
        full_checksums(&host, "eth0")?;
        host.ip(&[if v6 { "-6" } else { "-4" }, "route", "add", "default", "via", gateway])?;
        servers.push(HttpServer::start(&host, plan.listen(8080)?, &format!("rs{n}"))?);
        rs.push(host);
    }
    Ok(Nat { _xdp: xdp, servers, client, lb, rs, _switch: switch })
}
