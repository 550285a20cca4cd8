//! use_vmac: a macvlan interface carrying the virtual router's MAC (RFC 9568 §7.3:
//! 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6), so a failover moves the
//! MAC too and neighbours need no update.
use anyhow::{Context, Result};
use futures_util::TryStreamExt;
use rtnetlink::{LinkMacVlan, packet_route::link::MacVlanMode};

use super::Netlink;

/// The virtual router MAC of `vrid`.
pub fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// keepalived's default name: `vrrp.{VRID}`.
pub fn vmac_name(configured: &str, vrid: u8) -> String {
    if configured.is_empty() { format!("vrrp.{vrid}") } else { configured.to_string() }
}

/// Creating and deleting links: rtnetlink, or a recording fake.
pub trait LinkTable: Send + Sync {
    fn create_vmac(&self, name: &str, base: u32, mac: [u8; 6]) -> impl Future<Output = Result<u32>> + Send;
    fn delete_link(&self, index: u32) -> impl Future<Output = Result<()>> + Send;
}

impl LinkTable for super::RecordingTable {
    async fn create_vmac(&self, name: &str, base: u32, _mac: [u8; 6]) -> Result<u32> {
        self.calls.lock().unwrap().push(format!("create vmac {name} on {base}"));
        Ok(1000)
    }
    async fn delete_link(&self, index: u32) -> Result<()> {
        self.calls.lock().unwrap().push(format!("delete link {index}"));
        Ok(())
    }
}

impl LinkTable for Netlink {
    /// Creates (or re-creates, after a crash) the macvlan `name` on `base`, up; returns its
    /// index.
    async fn create_vmac(&self, name: &str, base: u32, mac: [u8; 6]) -> Result<u32> {
        if let Ok(stale) = nix::net::if_::if_nametoindex(name) {
            self.delete_link(stale).await?;
        }
        let message = LinkMacVlan::new(name, base, MacVlanMode::Private).address(mac.to_vec()).up().build();
        self.handle.link().add(message).execute().await.with_context(|| format!("creating the vmac {name}"))?;
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        let link = links.try_next().await?.with_context(|| format!("{name} vanished after creation"))?;
        Ok(link.header.index)
    }

    async fn delete_link(&self, index: u32) -> Result<()> {
        self.handle.link().del(index).execute().await.with_context(|| format!("deleting link {index}"))
    }
}

/// An IPv4 sysctl of one interface (`/proc/sys/net/ipv4/conf/IF/NAME`, the caller's netns).
pub fn set_ipv4_conf(interface: &str, name: &str, value: &str) -> Result<String> {
    let path = format!("/proc/sys/net/ipv4/conf/{interface}/{name}");
    let old = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    std::fs::write(&path, value).with_context(|| format!("writing {path}"))?;
    Ok(old.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_router_mac_rfc9568_7_3() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(7, true), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(vmac_name("", 51), "vrrp.51");
        assert_eq!(vmac_name("vip0", 51), "vip0");
    }
}
