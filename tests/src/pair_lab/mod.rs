//! A two-node load-balancer lab, shared by `lab_pair`, `lab_demo` and `cargo xtask demo`:
//! a client, two keepxdp nodes as a VRRP pair (both `state BACKUP`, lb1 priority 150, lb2
//! 100, preempt), three real servers each running HTTP (:80), a line echo (:5000, the client
//! speaks first) and a push stream (:5001, the server speaks first).
//!
//! DR, one-armed: everyone on one switch (10.0.0.0/24), the real servers hold the VIP on lo
//! with arp_ignore/arp_announce. NAT, keepalived's classic shape: client and the LBs' eth0 on
//! the outer switch (10.0.0.0/24, VIP 10.0.0.100 in VI_1), the LBs' eth1 and the real servers
//! on the inner one (10.1.0.0/24, the real servers' default route via VI_2's 10.1.0.254),
//! VI_1 and VI_2 in one sync group.
pub mod config;
pub mod failover;
pub mod load;
pub mod sync;
pub mod watch;

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, bail};
use keepxdp_lab::{
    http::HttpServer,
    keepxdp::Keepxdp,
    lines::{LineServer, Mode},
    netns::{Netns, Switch},
    process::wait_for,
};

use crate::{
    AttachedXdp, attach_xdp_pass, keepxdp_bin,
    lvs_lab::{full_checksums, holds, lvs_json},
};

pub const VIP: &str = "10.0.0.100";
pub const GATEWAY_VIP: &str = "10.1.0.254";
pub const CLIENT: &str = "10.0.0.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Dr,
    Nat,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Dr => "DR",
            Variant::Nat => "NAT",
        }
    }

    /// The real servers' addresses.
    pub fn real_servers(self) -> [&'static str; 3] {
        match self {
            Variant::Dr => ["10.0.0.11", "10.0.0.12", "10.0.0.13"],
            Variant::Nat => ["10.1.0.11", "10.1.0.12", "10.1.0.13"],
        }
    }

    /// (interface, address) of every VIP a Master holds.
    pub fn vips(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Variant::Dr => vec![("eth0", VIP)],
            Variant::Nat => vec![("eth0", VIP), ("eth1", GATEWAY_VIP)],
        }
    }

    /// The LB's interfaces (all go down when the host dies).
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Variant::Dr => &["eth0"],
            Variant::Nat => &["eth0", "eth1"],
        }
    }
}

/// One real server: its namespace and what it runs.
pub struct RealServer {
    pub name: String,
    pub address: &'static str,
    pub http: HttpServer,
    pub _echo: LineServer,
    pub _stream: LineServer,
    pub netns: Netns,
}

pub struct PairLab {
    pub variant: Variant,
    /// keepxdp on lb1, lb2 (None while killed). Declared first: stopped before the
    /// namespaces go.
    pub nodes: [Option<Keepxdp>; 2],
    /// Killed keepxdps, kept until the end: dropping one unmounts the pin dir the next
    /// keepxdp on that node adopted.
    pub killed: Vec<Keepxdp>,
    pub lbs: [Netns; 2],
    pub client: Netns,
    pub real_servers: Vec<RealServer>,
    _xdp: Vec<AttachedXdp>,
    pub outer: Switch,
    pub inner: Option<Switch>,
    /// Configs, pin dirs, logs, control sockets.
    pub dir: tempfile::TempDir,
    /// Another configuration than the variant's template (`sync::node_config`): node → text.
    pub config_for: Option<fn(usize) -> String>,
}

impl PairLab {
    /// The namespaces, links and servers; no keepxdp yet (`start_node`).
    pub fn new(variant: Variant) -> Result<PairLab> {
        keepxdp_lab::require_root()?;
        let dir = tempfile::Builder::new().prefix("keepxdp-pair-").tempdir()?;
        let mut outer = Switch::new()?;
        let mut inner = match variant {
            Variant::Dr => None,
            Variant::Nat => Some(Switch::new()?),
        };
        let client = Netns::new("cl")?;
        outer.plug(&client, "eth0", &format!("{CLIENT}/24"))?;
        full_checksums(&client, "eth0")?;
        let lbs = [Netns::new("lb1")?, Netns::new("lb2")?];
        let mut xdp = Vec::new();
        for (n, lb) in lbs.iter().enumerate() {
            // The LBs send with native XDP_TX / redirect: the receiving switch ports need an
            // XDP program.
            let port = outer.plug(lb, "eth0", &format!("10.0.0.{}/24", n + 2))?;
            xdp.push(attach_xdp_pass(&outer.netns, &port)?);
            if let Some(inner) = inner.as_mut() {
                let port = inner.plug(lb, "eth1", &format!("10.1.0.{}/24", n + 2))?;
                xdp.push(attach_xdp_pass(&inner.netns, &port)?);
                lb.run("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"])?;
            }
        }
        let mut real_servers = Vec::new();
        for (n, address) in variant.real_servers().into_iter().enumerate() {
            let name = format!("rs{}", n + 1);
            let host = Netns::new(&name)?;
            match inner.as_mut() {
                None => {
                    outer.plug(&host, "eth0", &format!("{address}/24"))?;
                    host.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
                    for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
                        for scope in ["all", "eth0"] {
                            host.run("sysctl", &["-qw", &format!("net.ipv4.conf.{scope}.{key}={value}")])?;
                        }
                    }
                }
                Some(inner) => {
                    inner.plug(&host, "eth0", &format!("{address}/24"))?;
                    host.ip(&["route", "add", "default", "via", GATEWAY_VIP])?;
                }
            }
            full_checksums(&host, "eth0")?;
            let any = |port: u16| format!("0.0.0.0:{port}").parse().expect("address");
            real_servers.push(RealServer {
                http: HttpServer::start(&host, any(config::HTTP_PORT), &name)?,
                _echo: LineServer::start(&host, any(config::ECHO_PORT), &name, Mode::Echo)?,
                _stream: LineServer::start(&host, any(config::STREAM_PORT), &name, Mode::Push)?,
                name,
                address,
                netns: host,
            });
        }
        Ok(PairLab { variant, nodes: [None, None], killed: Vec::new(), lbs, client, real_servers, _xdp: xdp, outer, inner, dir, config_for: None })
    }

    /// The keepalived.conf node `node` runs.
    pub fn config(&self, node: usize) -> String {
        if let Some(config_for) = self.config_for {
            return config_for(node);
        }
        config::node_config(self.variant, node, &self.variant.real_servers())
    }

    /// Starts keepxdp on node `node` (returns once its control socket is served).
    pub fn start_node(&mut self, node: usize) -> Result<()> {
        self.start_node_with(&keepxdp_bin()?, node)
    }

    pub fn start_node_with(&mut self, binary: &Path, node: usize) -> Result<()> {
        let keepxdp = Keepxdp::start(binary, &self.lbs[node], self.dir.path(), &self.config(node))?;
        self.nodes[node] = Some(keepxdp);
        Ok(())
    }

    pub fn node(&self, node: usize) -> Result<&Keepxdp> {
        self.nodes[node].as_ref().with_context(|| format!("keepxdp on lb{} is not running", node + 1))
    }

    /// Does node `node` hold every VIP of the variant?
    pub fn holds_vips(&self, node: usize) -> Result<bool> {
        for (device, vip) in self.variant.vips() {
            if !holds(&self.lbs[node], device, vip)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Does node `node` hold none of them?
    pub fn holds_no_vip(&self, node: usize) -> Result<bool> {
        for (device, vip) in self.variant.vips() {
            if holds(&self.lbs[node], device, vip)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The VRRP states keepxdp on `node` reports, one per instance.
    pub fn states(&self, node: usize) -> Result<Vec<String>> {
        let status: serde_json::Value = serde_json::from_str(&self.node(node)?.status_json()?)?;
        Ok(status["vrrp"].as_array().into_iter().flatten().map(|i| i["state"].as_str().unwrap_or("?").to_string()).collect())
    }

    pub fn is_master(&self, node: usize) -> Result<bool> {
        let states = self.states(node)?;
        Ok(!states.is_empty() && states.iter().all(|s| s == "Master"))
    }

    /// Node `node` is Master (every instance), holds the VIPs, the other (when its keepxdp
    /// runs: a killed one leaves its VIPs behind) holds none, and every service's real
    /// servers are resolved on `node`.
    pub fn wait_for_master(&self, node: usize, timeout: Duration) -> Result<()> {
        let what = format!("lb{} to be Master with the VIPs", node + 1);
        let other = 1 - node;
        wait_for(&what, timeout, || {
            Ok(self.is_master(node)? && self.holds_vips(node)? && (self.nodes[other].is_none() || self.holds_no_vip(other)?))
        })
            .with_context(|| self.logs())?;
        self.wait_for_resolved(node, timeout)
    }

    /// Every service's real servers have a MAC on `node` (until then the balancer hands
    /// their packets to the stack).
    pub fn wait_for_resolved(&self, node: usize, timeout: Duration) -> Result<()> {
        let keepxdp = self.node(node)?;
        wait_for("the real servers' MACs", timeout, || {
            let table = lvs_json(keepxdp, &self.lbs[node])?;
            let services = table["services"].as_array().cloned().unwrap_or_default();
            Ok(services.len() >= 3
                && services.iter().all(|s| {
                    let backends = s["backends"].as_array().cloned().unwrap_or_default();
                    backends.len() == 3 && backends.iter().all(|b| b["resolved"] == true)
                }))
        })
        .with_context(|| self.logs())
    }

    /// A dead host: `kill -9` of keepxdp on `node`, then its links down. The data plane it
    /// left stays attached (pinned links) but no frame reaches it any more.
    pub fn kill_host(&mut self, node: usize) -> Result<()> {
        let Some(mut keepxdp) = self.nodes[node].take() else { bail!("keepxdp on lb{} is not running", node + 1) };
        keepxdp.child.kill9();
        // The next keepxdp on this node logs to the same file: keep this one's.
        let kept = keepxdp.child.log.with_extension(format!("killed{}.log", self.killed.len()));
        if std::fs::rename(&keepxdp.child.log, &kept).is_ok() {
            keepxdp.child.log = kept;
        }
        self.killed.push(keepxdp);
        self.links(node, false)
    }

    /// The dead host back: links up, keepxdp started again (it adopts the data plane the
    /// killed one left, and preempts if its priority is higher).
    pub fn revive_host(&mut self, node: usize) -> Result<()> {
        self.links(node, true)?;
        self.start_node(node)
    }

    pub fn links(&self, node: usize, up: bool) -> Result<()> {
        for device in self.variant.interfaces() {
            self.lbs[node].ip(&["link", "set", device, if up { "up" } else { "down" }])?;
        }
        Ok(())
    }

    /// Both nodes' keepxdp logs (for failure messages).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for keepxdp in self.nodes.iter().flatten().chain(&self.killed) {
            text.push_str(&format!("--- {}\n{}", keepxdp.child.log.display(), keepxdp.child.log_text()));
        }
        text
    }
}
