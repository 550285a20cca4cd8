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
        if address.address.is_ipv6() {
            // A virtual address moves between nodes: duplicate address detection would hold
            // it back for a second after every failover (keepalived adds them `nodad` too).
            message.header.flags = AddressHeaderFlags::Nodad;
            message.attributes.push(AddressAttribute::Flags(rtnetlink::packet_route::address::AddressFlags::Nodad));
        }
        message
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
