//! Two hosts on one veth for VRRP: `peer` (10.77.0.1, kxpeer) and `node` (10.77.0.2,
//! kxnode), with one VRID-51 instance sharing 10.77.0.100/24, run by keepalived or keepxdp.
use std::path::Path;

use anyhow::Result;

use crate::{
    keepalived,
    keepxdp::Keepxdp,
    netns::{Netns, veth_pair},
    process::ChildGuard,
    require_root,
};

pub const VIP: &str = "10.77.0.100";

pub struct VrrpLab {
    pub dir: tempfile::TempDir,
    pub peer: Netns,
    pub node: Netns,
}

/// One VRID-51 instance as keepalived.conf text (keepalived and keepxdp read the same).
/// `extra`: more lines for the instance (unicast settings, tracking...).
pub fn instance_config(interface: &str, version: u8, priority: u8, advert_int: &str, state: &str, extra: &str) -> String {
    format!(
        "global_defs {{\n  router_id lab_{interface}\n}}\nvrrp_instance VI_51 {{\n  state {state}\n  interface {interface}\n  virtual_router_id 51\n  version {version}\n  priority {priority}\n  advert_int {advert_int}\n{extra}  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

impl VrrpLab {
    pub fn new() -> Result<VrrpLab> {
        require_root()?;
        let lab = VrrpLab { dir: tempfile::tempdir()?, peer: Netns::new("k")?, node: Netns::new("x")? };
        veth_pair(&lab.peer, "kxpeer", "10.77.0.1/24", &lab.node, "kxnode", "10.77.0.2/24")?;
        Ok(lab)
    }

    /// Adds fd00:77::1/64 and ::2/64 (no DAD) and waits until both link-local addresses are
    /// usable (VRRPv3 over IPv6 sends from them, RFC 9568 §5.1.2.1).
    pub fn with_ipv6(self) -> Result<VrrpLab> {
        for (netns, device, address) in [(&self.peer, "kxpeer", "fd00:77::1/64"), (&self.node, "kxnode", "fd00:77::2/64")] {
            netns.ip(&["-6", "addr", "add", address, "dev", device, "nodad"])?;
            crate::process::wait_for(&format!("a usable link-local address on {device}"), std::time::Duration::from_secs(5), || {
                let shown = netns.ip(&["-6", "addr", "show", "dev", device, "scope", "link"])?;
                Ok(shown.contains("fe80::") && !shown.contains("tentative"))
            })?;
        }
        Ok(self)
    }

    pub fn keepalived_on_peer(&self, config: &str) -> Result<ChildGuard> {
        keepalived::start(&self.peer, self.dir.path(), config)
    }

    pub fn keepalived_on_node(&self, config: &str) -> Result<ChildGuard> {
        keepalived::start(&self.node, self.dir.path(), config)
    }

    pub fn keepxdp_on_node(&self, binary: &Path, config: &str) -> Result<Keepxdp> {
        Keepxdp::start(binary, &self.node, self.dir.path(), config)
    }

    pub fn peer_holds_vip(&self) -> Result<bool> {
        holds_vip(&self.peer, "kxpeer")
    }

    pub fn node_holds_vip(&self) -> Result<bool> {
        holds_vip(&self.node, "kxnode")
    }
}

pub const VIP6: &str = "fd00:77::100";

pub fn holds_vip6(netns: &Netns, device: &str) -> Result<bool> {
    Ok(netns.ip(&["-o", "-6", "addr", "show", "dev", device])?.contains(&format!(" {VIP6}/")))
}

/// The IPv6 flavour of `instance_config`: version 3, VIP fd00:77::100/64.
pub fn instance_config_v6(interface: &str, priority: u8, advert_int: &str, state: &str) -> String {
    instance_config(interface, 3, priority, advert_int, state, "").replace(&format!("{VIP}/24"), &format!("{VIP6}/64"))
}

pub fn holds_vip(netns: &Netns, device: &str) -> Result<bool> {
    Ok(netns.ip(&["-o", "-4", "addr", "show", "dev", device])?.contains(&format!(" {VIP}/")))
}

/// The two hosts of `VrrpLab` behind a switch (a bridge in its own namespace) instead of on
/// one veth, so the node's link can go down or away while the peer keeps its carrier (on a
/// veth pair the peer would lose it too, and keepalived would go to FAULT).
pub struct SwitchedVrrpLab {
    pub dir: tempfile::TempDir,
    pub switch: crate::netns::Switch,
    pub peer: Netns,
    pub node: Netns,
}

impl SwitchedVrrpLab {
    pub fn new() -> Result<SwitchedVrrpLab> {
        require_root()?;
        let mut switch = crate::netns::Switch::new()?;
        let (peer, node) = (Netns::new("k")?, Netns::new("x")?);
        switch.plug(&peer, "kxpeer", "10.77.0.1/24")?;
        switch.plug(&node, "kxnode", "10.77.0.2/24")?;
        Ok(SwitchedVrrpLab { dir: tempfile::tempdir()?, switch, peer, node })
    }

    /// `VrrpLab::with_ipv6` for this lab.
    pub fn with_ipv6(self) -> Result<SwitchedVrrpLab> {
        for (netns, device, address) in [(&self.peer, "kxpeer", "fd00:77::1/64"), (&self.node, "kxnode", "fd00:77::2/64")] {
            netns.ip(&["-6", "addr", "add", address, "dev", device, "nodad"])?;
            wait_for_link_local(netns, device, std::time::Duration::from_secs(5))?;
        }
        Ok(self)
    }

    /// The node's link up or down (`ip link set kxnode up|down` in the node).
    pub fn node_link(&self, up: bool) -> Result<()> {
        self.node.ip(&["link", "set", "kxnode", if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// After `ip link del kxnode`: a new veth of the same name and address, plugged in again.
    pub fn replug_node(&mut self) -> Result<()> {
        self.switch.plug(&self.node, "kxnode", "10.77.0.2/24")?;
        Ok(())
    }

    pub fn keepalived_on_peer(&self, config: &str) -> Result<ChildGuard> {
        keepalived::start(&self.peer, self.dir.path(), config)
    }

    pub fn keepxdp_on_node(&self, binary: &Path, config: &str) -> Result<Keepxdp> {
        Keepxdp::start(binary, &self.node, self.dir.path(), config)
    }

    pub fn peer_holds_vip(&self) -> Result<bool> {
        holds_vip(&self.peer, "kxpeer")
    }

    pub fn node_holds_vip(&self) -> Result<bool> {
        holds_vip(&self.node, "kxnode")
    }
}

/// Waits until `device` has a link-local IPv6 address that finished DAD.
pub fn wait_for_link_local(netns: &Netns, device: &str, timeout: std::time::Duration) -> Result<()> {
    crate::process::wait_for(&format!("a usable link-local address on {device}"), timeout, || {
        let shown = netns.ip(&["-6", "addr", "show", "dev", device, "scope", "link"])?;
        Ok(shown.contains("fe80::") && !shown.contains("tentative"))
    })
}
