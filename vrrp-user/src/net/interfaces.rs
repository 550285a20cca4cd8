//! The kernel's links and their addresses as one table, kept from `NetEvent`s after one dump:
//! what a VRRP instance waits for (its interface present, up, with an address to send from)
//! and what track_interface reads. Published through a `watch`, so a reader always sees the
//! latest picture and never falls behind a burst of events.
use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use anyhow::{Context, Result};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::RouteNetlinkMessage;
use tokio::sync::{broadcast, watch};

use super::{Netlink, NetEvent};

/// One link as the kernel last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    pub ifindex: u32,
    /// Empty until a link event named it (an address event came first).
    pub name: String,
    /// Administratively up with carrier.
    pub up: bool,
    /// (address, usable: not tentative) in the order the kernel announced them, so its
    /// primary IPv4 address comes first.
    pub addresses: Vec<(IpAddr, bool)>,
}

impl LinkFacts {
    pub fn usable(&self, address: IpAddr) -> bool {
        self.addresses.iter().any(|(a, usable)| *a == address && *usable)
    }

    pub fn has(&self, address: IpAddr) -> bool {
        self.addresses.iter().any(|(a, _)| *a == address)
    }
}

/// Every link of the namespace, by index. `loaded` stays false until the first dump is in:
/// before that, a missing interface means nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interfaces {
    pub loaded: bool,
    links: BTreeMap<u32, LinkFacts>,
}

impl Interfaces {
    /// The table after the events, marked loaded (what tests start from).
    pub fn of(events: &[NetEvent]) -> Interfaces {
        let mut table = Interfaces { loaded: true, ..Interfaces::default() };
        for event in events {
            table.apply(event);
        }
        table
    }

    pub fn by_name(&self, name: &str) -> Option<&LinkFacts> {
        self.links.values().find(|link| link.name == name)
    }

    pub fn by_index(&self, ifindex: u32) -> Option<&LinkFacts> {
        self.links.get(&ifindex)
    }

    /// Applies one event; true when the table changed.
    pub fn apply(&mut self, event: &NetEvent) -> bool {
        match event {
            NetEvent::Link { ifindex, deleted: true, .. } => self.links.remove(ifindex).is_some(),
            NetEvent::Link { ifindex, name, up, .. } => {
                let link = self.entry(*ifindex);
                let before = (link.name.clone(), link.up);
                if !name.is_empty() {
                    link.name = name.clone();
                }
                link.up = *up;
                before != (link.name.clone(), link.up)
            }
            NetEvent::Address { ifindex, address, removed: true, .. } => {
                let Some(link) = self.links.get_mut(ifindex) else { return false };
                let before = link.addresses.len();
                link.addresses.retain(|(a, _)| a != address);
                before != link.addresses.len()
            }
            NetEvent::Address { ifindex, address, usable, .. } => {
                let link = self.entry(*ifindex);
                match link.addresses.iter_mut().find(|(a, _)| a == address) {
                    Some((_, known)) if *known == *usable => false,
                    Some((_, known)) => {
                        *known = *usable;
                        true
                    }
                    None => {
                        link.addresses.push((*address, *usable));
                        true
                    }
                }
            }
            NetEvent::Route => false,
        }
    }

    fn entry(&mut self, ifindex: u32) -> &mut LinkFacts {
        self.links.entry(ifindex).or_insert_with(|| LinkFacts { ifindex, name: String::new(), up: false, addresses: Vec::new() })
    }
}

impl Netlink {
    /// Every link, then every address, as the events the kernel would have sent for them.
    pub async fn dump_interfaces(&self) -> Result<Vec<NetEvent>> {
        let mut events = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await.context("dumping links")? {
            events.extend(NetEvent::of_message(RouteNetlinkMessage::NewLink(link)));
        }
        let mut addresses = self.handle.address().get().execute();
        while let Some(address) = addresses.try_next().await.context("dumping addresses")? {
            events.extend(NetEvent::of_message(RouteNetlinkMessage::NewAddress(address)));
        }
        Ok(events)
    }
}

/// The table, kept current: subscribes to `events` first, then dumps, then applies what came
/// meanwhile and after (a batch at a time, published once). Lost events (the broadcast
/// lagged) mean a fresh dump.
pub fn watch_interfaces(events: &broadcast::Sender<NetEvent>, netlink: Netlink) -> watch::Receiver<Interfaces> {
    let mut receiver = events.subscribe();
    let (sender, table) = watch::channel(Interfaces::default());
    tokio::spawn(async move {
        loop {
            let fresh = match netlink.dump_interfaces().await {
                Ok(dumped) => Interfaces::of(&dumped),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "reading the interfaces; trying again in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            sender.send_if_modified(|table| std::mem::replace(table, fresh) != *table);
            loop {
                let mut batch = match receiver.recv().await {
                    Ok(event) => vec![event],
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "link and address events were lost; reading the interfaces again");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                while let Ok(event) = receiver.try_recv() {
                    batch.push(event);
                }
                sender.send_if_modified(|table| batch.iter().fold(false, |changed, event| table.apply(event) | changed));
            }
        }
    });
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ifindex: u32, name: &str, up: bool) -> NetEvent {
        NetEvent::Link { ifindex, name: name.into(), up, deleted: false }
    }

    fn address(ifindex: u32, address: &str, usable: bool) -> NetEvent {
        NetEvent::Address { ifindex, address: address.parse().unwrap(), usable, removed: false }
    }

    #[test]
    fn addresses_keep_the_order_the_kernel_announced_and_dad_updates_them_in_place() {
        let mut table = Interfaces::of(&[link(2, "eth0", true), address(2, "10.0.0.2", true), address(2, "fe80::1", false)]);
        assert!(table.apply(&address(2, "10.0.0.9", true)));
        assert!(table.apply(&address(2, "fe80::1", true)), "DAD finished");
        assert!(!table.apply(&address(2, "fe80::1", true)), "nothing new");
        let eth0 = table.by_name("eth0").unwrap();
        let order: Vec<String> = eth0.addresses.iter().map(|(a, _)| a.to_string()).collect();
        assert_eq!(order, ["10.0.0.2", "fe80::1", "10.0.0.9"]);
        assert!(eth0.usable("fe80::1".parse().unwrap()));
    }

    #[test]
    fn a_deleted_link_goes_with_its_addresses_and_a_new_one_by_the_same_name_is_found() {
        let mut table = Interfaces::of(&[link(2, "eth0", true), address(2, "10.0.0.2", true)]);
        assert!(table.apply(&NetEvent::Link { ifindex: 2, name: "eth0".into(), up: false, deleted: true }));
        assert!(table.by_name("eth0").is_none() && table.by_index(2).is_none());
        table.apply(&link(7, "eth0", false));
        let eth0 = table.by_name("eth0").unwrap();
        assert_eq!((eth0.ifindex, eth0.up, eth0.addresses.len()), (7, false, 0));
    }

    #[test]
    fn a_removed_address_is_gone_and_routes_change_nothing() {
        let mut table = Interfaces::of(&[link(2, "eth0", true), address(2, "10.0.0.2", true)]);
        assert!(!table.apply(&NetEvent::Route));
        let removed = NetEvent::Address { ifindex: 2, address: "10.0.0.2".parse().unwrap(), usable: false, removed: true };
        assert!(table.apply(&removed));
        assert!(!table.by_name("eth0").unwrap().has("10.0.0.2".parse().unwrap()));
        assert!(!table.apply(&removed));
    }
}
