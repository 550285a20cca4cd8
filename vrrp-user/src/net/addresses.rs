use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope};

use crate::config::model::VirtualAddress;

/// Adding and removing a virtual address on an interface: rtnetlink in production, a
/// recording fake in tests of the logic above it.
pub trait AddressTable: Send + Sync {
    fn add(&self, ifindex: u32, address: &VirtualAddress) -> impl Future<Output = Result<()>> + Send;
    fn remove(&self, ifindex: u32, address: &VirtualAddress) -> impl Future<Output = Result<()>> + Send;
}

/// Told when a virtual address becomes local (before it is added) and stops being local
/// (after it is removed): the balancer forwards a VIP exactly while it is ours, with no
/// moment where the stack owns the VIP but XDP does not forward it (the stack would reset
/// established connections).
pub trait VipHook: Send + Sync {
    fn vip_local(&self, addr: IpAddr, local: bool);
}

/// rtnetlink on the current network namespace.
#[derive(Clone)]
pub struct Netlink {
    pub(super) handle: rtnetlink::Handle,
    vip_hook: Option<Arc<dyn VipHook>>,
}

impl Netlink {
    /// Opens the netlink socket; its connection task runs on the current tokio runtime.
    pub fn connect() -> Result<Netlink> {
        let (connection, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        tokio::spawn(connection);
        Ok(Netlink { handle, vip_hook: None })
    }

    /// Addresses added and removed through this handle are reported to `hook`.
    pub fn with_vip_hook(mut self, hook: Option<Arc<dyn VipHook>>) -> Netlink {
        self.vip_hook = hook;
        self
    }

    /// Every address of every interface: (ifindex, address).
    pub async fn local_addresses(&self) -> Result<Vec<(u32, IpAddr)>> {
        use futures_util::TryStreamExt;
        let mut found = Vec::new();
        let mut messages = self.handle.address().get().execute();
        while let Some(message) = messages.try_next().await.context("dumping addresses")? {
            for attribute in &message.attributes {
                if let AddressAttribute::Address(ip) = attribute {
                    found.push((message.header.index, *ip));
                }
            }
        }
        Ok(found)
    }

    fn message(ifindex: u32, address: &VirtualAddress) -> AddressMessage {
        let mut message = match address.address {
            IpAddr::V4(v4) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(ifindex)
                .address(v4, address.prefix_len)
                .build(),
            IpAddr::V6(v6) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(ifindex)
                .address(v6, address.prefix_len)
                .build(),
        };
        if let Some(label) = &address.label {
            message.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if let Some(brd) = address.brd.as_deref().and_then(|b| b.parse().ok()) {
            message.attributes.push(AddressAttribute::Broadcast(brd));
        }
        message.header.scope = match address.scope.as_deref() {
            Some("host") => AddressScope::Host,
            Some("link") => AddressScope::Link,
            Some("site") => AddressScope::Site,
            Some("nowhere") => AddressScope::Nowhere,
            _ => AddressScope::Universe,
        };
        if let Some(peer) = address.peer {
            // Point to point: IFA_LOCAL is the address, IFA_ADDRESS the other end.
            message.attributes.retain(|a| !matches!(a, AddressAttribute::Address(_) | AddressAttribute::Local(_)));
            message.attributes.push(AddressAttribute::Local(address.address));
            message.attributes.push(AddressAttribute::Address(peer));
        }
        let flags = Self::flags(address);
        if !flags.is_empty() {
            message.header.flags = AddressHeaderFlags::from_bits_truncate((flags.bits() & 0xff) as u8);
            message.attributes.push(AddressAttribute::Flags(flags));
        }
        if let Some(preferred) = address.preferred_lft {
            let mut cache = rtnetlink::packet_route::address::CacheInfo::default();
            cache.ifa_preferred = preferred;
            cache.ifa_valid = u32::MAX;
            message.attributes.push(AddressAttribute::CacheInfo(cache));
        }
        message
    }

    /// The IFA_F_* flags of a virtual address.
    fn flags(address: &VirtualAddress) -> rtnetlink::packet_route::address::AddressFlags {
        use rtnetlink::packet_route::address::AddressFlags;
        let mut flags = AddressFlags::empty();
        if address.address.is_ipv6() {
            // A virtual address moves between nodes: duplicate address detection would hold
            // it back for a second after every failover (keepalived adds them `nodad` too).
            flags |= AddressFlags::Nodad;
        }
        for (on, flag) in [
            (address.home, AddressFlags::Homeaddress),
            (address.mngtmpaddr, AddressFlags::Managetempaddr),
            (address.noprefixroute, AddressFlags::Noprefixroute),
            (address.autojoin, AddressFlags::Mcautojoin),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }
}

impl AddressTable for Netlink {
    async fn add(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        if let Some(hook) = &self.vip_hook {
            hook.vip_local(address.address, true);
        }
        let mut request = self.handle.address().add(ifindex, address.address, address.prefix_len);
        *request.message_mut() = Netlink::message(ifindex, address);
        // `replace`: adding an address that is already there (a restart) is not an error.
        request
            .replace()
            .execute()
            .await
            .with_context(|| format!("adding {}/{} on ifindex {ifindex}", address.address, address.prefix_len))
    }

    async fn remove(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        let message = Netlink::message(ifindex, address);
        let result = match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            // Already gone (removed by another tool, or with its deleted interface): nothing
            // to do.
            Err(rtnetlink::Error::NetlinkError(error)) if [-libc::EADDRNOTAVAIL, -libc::ENODEV].contains(&error.raw_code()) => Ok(()),
            Err(error) => Err(error).with_context(|| format!("removing {}/{} from ifindex {ifindex}", address.address, address.prefix_len)),
        };
        if result.is_ok()
            && let Some(hook) = &self.vip_hook
        {
            hook.vip_local(address.address, false);
        }
        result
    }
}

/// A fake that records calls, for tests of the logic that drives the table.
#[derive(Clone, Default)]
pub struct RecordingTable {
    pub calls: Arc<Mutex<Vec<String>>>,
}

impl AddressTable for RecordingTable {
    async fn add(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        self.calls.lock().unwrap().push(format!("add {ifindex} {}/{}", address.address, address.prefix_len));
        Ok(())
    }

    async fn remove(&self, ifindex: u32, address: &VirtualAddress) -> Result<()> {
        self.calls.lock().unwrap().push(format!("remove {ifindex} {}/{}", address.address, address.prefix_len));
        Ok(())
    }
}

#[cfg(test)]
mod message_tests {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

    use super::Netlink;
    use crate::vrrp::spec::tests::vip;

    #[test]
    fn options_become_attributes_and_flags() {
        let mut v6 = vip("fd00::1/64");
        (v6.home, v6.noprefixroute, v6.autojoin, v6.mngtmpaddr, v6.preferred_lft) = (true, true, true, true, Some(0));
        let message = Netlink::message(3, &v6);
        let flags = message.attributes.iter().find_map(|a| if let AddressAttribute::Flags(f) = a { Some(*f) } else { None }).unwrap();
        assert_eq!(flags, AddressFlags::Nodad | AddressFlags::Homeaddress | AddressFlags::Noprefixroute | AddressFlags::Mcautojoin | AddressFlags::Managetempaddr);
        let cache = message.attributes.iter().find_map(|a| if let AddressAttribute::CacheInfo(c) = a { Some(*c) } else { None }).unwrap();
        assert_eq!((cache.ifa_preferred, cache.ifa_valid), (0, u32::MAX));

        let mut v4 = vip("10.0.0.1/32");
        v4.peer = Some("10.0.0.2".parse().unwrap());
        let message = Netlink::message(3, &v4);
        assert!(message.attributes.contains(&AddressAttribute::Local("10.0.0.1".parse().unwrap())), "{message:?}");
        assert!(message.attributes.contains(&AddressAttribute::Address("10.0.0.2".parse().unwrap())), "{message:?}");
        assert!(!message.attributes.iter().any(|a| matches!(a, AddressAttribute::Flags(_) | AddressAttribute::CacheInfo(_))), "{message:?}");
    }
}
