//! Address deletions announced by the kernel (rtnetlink multicast groups): keepxdp puts back a
//! virtual address that another tool removed while the instance is Master (keepalived #836,
//! #2564: keepalived leaves the node Master without its address).
use std::net::IpAddr;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use rtnetlink::{
    constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR},
    packet_core::NetlinkPayload,
    packet_route::{RouteNetlinkMessage, address::AddressAttribute},
    sys::{AsyncSocket, SocketAddr},
};
use tokio::sync::broadcast;

/// An address removed from an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub ifindex: u32,
    pub address: IpAddr,
}

/// Subscribes to address events; deletions are broadcast to every receiver.
pub fn watch_removals() -> Result<broadcast::Sender<Removed>> {
    let (mut connection, _handle, mut messages) = rtnetlink::new_connection().context("opening rtnetlink")?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        .context("subscribing to address events")?;
    tokio::spawn(connection);
    let (sender, _) = broadcast::channel(256);
    let out = sender.clone();
    tokio::spawn(async move {
        while let Some((message, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(address)) = message.payload {
                let ifindex = address.header.index;
                for attribute in &address.attributes {
                    if let AddressAttribute::Address(ip) = attribute {
                        let _ = out.send(Removed { ifindex, address: *ip });
                    }
                }
            }
        }
    });
    Ok(sender)
}
