//! What the kernel announces about links, addresses and routes (rtnetlink multicast groups),
//! as one broadcast of `NetEvent`s: instances wait for their interface and address with it,
//! the daemon re-attaches the data plane to a re-created interface and follows route
//! changes, and a virtual address another tool removes while Master is put back.
use std::net::IpAddr;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use rtnetlink::{
    constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK},
    packet_core::NetlinkPayload,
    packet_route::{
        RouteNetlinkMessage,
        address::{AddressAttribute, AddressFlags, AddressMessage},
        link::{LinkAttribute, LinkFlags, LinkMessage},
    },
    sys::{AsyncSocket, SocketAddr},
};
use tokio::sync::broadcast;

/// One change the kernel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (`up`: administratively up with carrier, IFF_UP and
    /// IFF_RUNNING), or was deleted.
    Link { ifindex: u32, name: String, up: bool, deleted: bool },
    /// An address was added (or changed: DAD finished) or removed. `usable`: not tentative,
    /// not failed DAD.
    Address { ifindex: u32, address: IpAddr, usable: bool, removed: bool },
    /// A route was added or removed (which one does not matter to keepxdp: it looks again).
    Route,
}

impl NetEvent {
    fn of_link(message: &LinkMessage, deleted: bool) -> NetEvent {
        let name = message
            .attributes
            .iter()
            .find_map(|a| if let LinkAttribute::IfName(name) = a { Some(name.clone()) } else { None })
            .unwrap_or_default();
        let flags = message.header.flags;
        let up = flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running);
        NetEvent::Link { ifindex: message.header.index, name, up: up && !deleted, deleted }
    }

    fn of_address(message: &AddressMessage, removed: bool) -> Vec<NetEvent> {
        // The 32-bit IFA_FLAGS attribute, when present, supersedes the header's byte.
        let flags = message
            .attributes
            .iter()
            .find_map(|a| if let AddressAttribute::Flags(flags) = a { Some(*flags) } else { None })
            .unwrap_or_else(|| AddressFlags::from_bits_retain(message.header.flags.bits() as u32));
        let usable = !flags.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed);
        // IFA_ADDRESS is the interface's own address (IFA_LOCAL only differs on
        // point-to-point links, where IFA_ADDRESS is the peer's): take IFA_LOCAL when there
        // is one.
        let local = message.attributes.iter().find_map(|a| if let AddressAttribute::Local(ip) = a { Some(*ip) } else { None });
        let address = local.or_else(|| message.attributes.iter().find_map(|a| if let AddressAttribute::Address(ip) = a { Some(*ip) } else { None }));
        address
            .map(|address| NetEvent::Address { ifindex: message.header.index, address, usable: usable && !removed, removed })
            .into_iter()
            .collect()
    }

    pub(super) fn of_message(message: RouteNetlinkMessage) -> Vec<NetEvent> {
        match message {
            RouteNetlinkMessage::NewLink(link) => vec![NetEvent::of_link(&link, false)],
            RouteNetlinkMessage::DelLink(link) => vec![NetEvent::of_link(&link, true)],
            RouteNetlinkMessage::NewAddress(address) => NetEvent::of_address(&address, false),
            RouteNetlinkMessage::DelAddress(address) => NetEvent::of_address(&address, true),
            RouteNetlinkMessage::NewRoute(_) | RouteNetlinkMessage::DelRoute(_) => vec![NetEvent::Route],
            _ => Vec::new(),
        }
    }
}

/// Subscribes to link, address and route events of the current network namespace; every
/// receiver of the returned sender hears all of them. The subscription lives as long as the
/// runtime (one per daemon).
pub fn watch_events() -> Result<broadcast::Sender<NetEvent>> {
    let (mut connection, _handle, mut messages) = rtnetlink::new_connection().context("opening rtnetlink")?;
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))
        .context("subscribing to link, address and route events")?;
    tokio::spawn(connection);
    // Route dumps after a link change come in bursts of dozens: room for them.
    let (sender, _) = broadcast::channel(1024);
    let out = sender.clone();
    tokio::spawn(async move {
        while let Some((message, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(message) = message.payload {
                for event in NetEvent::of_message(message) {
                    let _ = out.send(event);
                }
            }
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::{AddressFamily, address::AddressHeaderFlags};

    use super::*;

    fn link(index: u32, name: &str, flags: LinkFlags) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = flags;
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message
    }

    #[test]
    fn a_link_is_up_when_administratively_up_and_running() {
        let up = link(3, "eth0", LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp);
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::NewLink(up.clone())),
            vec![NetEvent::Link { ifindex: 3, name: "eth0".into(), up: true, deleted: false }]
        );
        let no_carrier = link(3, "eth0", LinkFlags::Up);
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::NewLink(no_carrier)),
            vec![NetEvent::Link { ifindex: 3, name: "eth0".into(), up: false, deleted: false }]
        );
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::DelLink(up)),
            vec![NetEvent::Link { ifindex: 3, name: "eth0".into(), up: false, deleted: true }]
        );
    }

    #[test]
    fn a_tentative_address_is_not_usable_until_dad_ends() {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet6;
        message.header.index = 4;
        message.header.flags = AddressHeaderFlags::Tentative;
        let address: IpAddr = "fe80::1".parse().unwrap();
        message.attributes.push(AddressAttribute::Address(address));
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::NewAddress(message.clone())),
            vec![NetEvent::Address { ifindex: 4, address, usable: false, removed: false }]
        );
        message.attributes.push(AddressAttribute::Flags(AddressFlags::Permanent));
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::NewAddress(message.clone())),
            vec![NetEvent::Address { ifindex: 4, address, usable: true, removed: false }]
        );
        assert_eq!(
            NetEvent::of_message(RouteNetlinkMessage::DelAddress(message)),
            vec![NetEvent::Address { ifindex: 4, address, usable: false, removed: true }]
        );
    }
}
