//! use_vmac: a macvlan interface carrying the virtual router's MAC (RFC 9568 §7.3:
//! 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6), so a failover moves the
//! MAC too and neighbours need no update. An instance holds it as a `VmacLease` while its
//! interface is usable: made with the base interface's ARP sysctls, given back with them.
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

/// Creating and deleting links, and the per-interface sysctls that go with a vmac:
/// rtnetlink and /proc, or a recording fake.
pub trait LinkTable: Send + Sync {
    fn create_vmac(&self, name: &str, base: u32, mac: [u8; 6]) -> impl Future<Output = Result<u32>> + Send;
    fn delete_link(&self, index: u32) -> impl Future<Output = Result<()>> + Send;
    /// Sets `net.ipv4.conf.INTERFACE.NAME`; returns the value it had.
    fn set_ipv4_conf(&self, interface: &str, name: &str, value: &str) -> Result<String>;
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
    fn set_ipv4_conf(&self, interface: &str, name: &str, value: &str) -> Result<String> {
        self.calls.lock().unwrap().push(format!("sysctl {interface} {name}={value}"));
        Ok("0".into())
    }
}

/// An instance's vmac, and the base interface's sysctls it changed.
#[derive(Debug)]
pub struct VmacLease {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    base: String,
    /// (sysctl, value before) to put back on release.
    saved: Vec<(&'static str, String)>,
}

impl VmacLease {
    /// Creates the vmac `name` on `base` (index `base_ifindex`) with the virtual router MAC
    /// of `vrid`.
    pub async fn take<T: LinkTable>(table: &T, name: &str, base: &str, base_ifindex: u32, vrid: u8, ipv6: bool) -> Result<VmacLease> {
        let mac = virtual_mac(vrid, ipv6);
        let ifindex = table.create_vmac(name, base_ifindex, mac).await?;
        // The base interface must neither answer ARP for addresses that live on the vmac nor
        // announce them as its own (keepalived sets the same).
        let mut saved = Vec::new();
        for (sysctl, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            match table.set_ipv4_conf(base, sysctl, value) {
                Ok(old) => saved.push((sysctl, old)),
                Err(error) => tracing::warn!(interface = base, sysctl, error = format!("{error:#}"), "setting a sysctl for the vmac"),
            }
        }
        Ok(VmacLease { name: name.to_string(), ifindex, mac, base: base.to_string(), saved })
    }

    /// Deletes the vmac and puts the base interface's sysctls back. A base interface that was
    /// deleted took its vmac and sysctls along: nothing left to undo.
    pub async fn release<T: LinkTable>(self, table: &T, base_gone: bool) {
        if base_gone {
            return;
        }
        if let Err(error) = table.delete_link(self.ifindex).await {
            tracing::warn!(vmac = self.name, error = format!("{error:#}"), "deleting the vmac");
        }
        for (sysctl, old) in &self.saved {
            let _ = table.set_ipv4_conf(&self.base, sysctl, old);
        }
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

    /// `/proc/sys/net/ipv4/conf/IF/NAME`, in the caller's network namespace.
    fn set_ipv4_conf(&self, interface: &str, name: &str, value: &str) -> Result<String> {
        let path = format!("/proc/sys/net/ipv4/conf/{interface}/{name}");
        let old = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        std::fs::write(&path, value).with_context(|| format!("writing {path}"))?;
        Ok(old.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_sets_the_base_interfaces_arp_sysctls_and_gives_them_back() {
        let table = crate::net::RecordingTable::default();
        let lease = VmacLease::take(&table, "vrrp.51", "eth0", 2, 51, false).await.unwrap();
        assert_eq!((lease.ifindex, lease.mac), (1000, [0, 0, 0x5e, 0, 1, 51]));
        lease.release(&table, false).await;
        assert_eq!(
            *table.calls.lock().unwrap(),
            [
                "create vmac vrrp.51 on 2",
                "sysctl eth0 arp_ignore=1",
                "sysctl eth0 arp_announce=2",
                "delete link 1000",
                "sysctl eth0 arp_ignore=0",
                "sysctl eth0 arp_announce=0"
            ]
        );
    }

    #[tokio::test]
    async fn a_lease_on_a_deleted_interface_has_nothing_to_undo() {
        let table = crate::net::RecordingTable::default();
        let lease = VmacLease::take(&table, "vrrp.51", "eth0", 2, 51, false).await.unwrap();
        table.calls.lock().unwrap().clear();
        lease.release(&table, true).await;
        assert!(table.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn the_virtual_router_mac_rfc9568_7_3() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(7, true), [0, 0, 0x5e, 0, 2, 7]);
        assert_eq!(vmac_name("", 51), "vrrp.51");
        assert_eq!(vmac_name("vip0", 51), "vip0");
    }
}
