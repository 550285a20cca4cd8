//! The kernel's neighbour table and interface MACs, for the balancer's backends: the MAC to
//! send a real server's frames to, out of which interface, from which MAC.
use std::{collections::BTreeMap, net::IpAddr};

use anyhow::Result;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::{
    link::LinkAttribute,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState},
};

use super::Netlink;

/// A resolved neighbour: its MAC, the interface it is on, and our MAC there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: [u8; 6],
    pub ifindex: u32,
    pub our_mac: [u8; 6],
}

fn mac(bytes: &[u8]) -> Option<[u8; 6]> {
    bytes.try_into().ok()
}

impl Netlink {
    /// Every neighbour with a usable MAC (not incomplete or failed).
    pub async fn neighbours(&self) -> Result<BTreeMap<IpAddr, Neighbour>> {
        let mut link_macs = BTreeMap::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await? {
            for attribute in &link.attributes {
                if let LinkAttribute::Address(bytes) = attribute
                    && let Some(m) = mac(bytes)
                {
                    link_macs.insert(link.header.index, m);
                }
            }
        }
        let mut found = BTreeMap::new();
        let mut neighbours = self.handle.neighbours().get().execute();
        while let Some(message) = neighbours.try_next().await? {
            if matches!(message.header.state, NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None) {
                continue;
            }
            let mut addr = None;
            let mut lladdr = None;
            for attribute in &message.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => addr = Some(IpAddr::V4(*v4)),
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => addr = Some(IpAddr::V6(*v6)),
                    NeighbourAttribute::LinkLayerAddress(bytes) => lladdr = mac(bytes),
                    _ => {}
                }
            }
            let ifindex = message.header.ifindex;
            if let (Some(addr), Some(mac), Some(our_mac)) = (addr, lladdr, link_macs.get(&ifindex)) {
                found.insert(addr, Neighbour { mac, ifindex, our_mac: *our_mac });
            }
        }
        Ok(found)
    }
}
