//! What an instance does to its host besides netlink, behind small traits so the runtime is
//! tested with recording fakes: open its VRRP socket (`VrrpLink`), announce its addresses
//! (`Announcer`: gratuitous ARP / unsolicited NA), read an interface's MAC, run notify
//! scripts. `System` is the real host.
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Result;

use super::{
    link::{Link, LinkPlace, VrrpLink},
    notify,
    socket::{FrameSocket, mac_address, send_unsolicited_na},
    wire::{
        arp::GratuitousArp,
        ndisc::{ALL_NODES, NeighborAdvert},
    },
};

/// Gratuitous ARP and unsolicited NA for a virtual address, from the MAC that holds it.
pub trait Announcer: Send + Sync {
    fn gratuitous_arp(&self, ifindex: u32, mac: [u8; 6], address: Ipv4Addr) -> Result<()>;
    fn unsolicited_na(&self, interface: &str, ifindex: u32, mac: [u8; 6], address: Ipv6Addr) -> Result<()>;
}

pub trait Host: Send + Sync {
    type Link: VrrpLink;
    type Announcer: Announcer;
    fn open_link(&self, place: &LinkPlace) -> Result<Self::Link>;
    fn open_announcer(&self) -> Result<Self::Announcer>;
    fn mac_address(&self, interface: &str) -> Result<[u8; 6]>;
    /// Runs the notify command lines in the background (a hanging script never holds the
    /// state machine).
    fn notify(&self, commands: Vec<Vec<String>>, instance: &str);
}

/// Raw sockets, /proc-free lookups and real scripts.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Announcer for FrameSocket {
    fn gratuitous_arp(&self, ifindex: u32, mac: [u8; 6], address: Ipv4Addr) -> Result<()> {
        Ok(self.send(ifindex, &GratuitousArp::new(mac, address).to_frame())?)
    }

    fn unsolicited_na(&self, interface: &str, ifindex: u32, mac: [u8; 6], address: Ipv6Addr) -> Result<()> {
        let message = NeighborAdvert::unsolicited(address, mac, false).to_bytes(address, ALL_NODES);
        send_unsolicited_na(interface, ifindex, address, &message)
    }
}

impl Host for System {
    type Link = Link;
    type Announcer = FrameSocket;

    fn open_link(&self, place: &LinkPlace) -> Result<Link> {
        Link::open(place)
    }

    fn open_announcer(&self) -> Result<FrameSocket> {
        FrameSocket::open()
    }

    fn mac_address(&self, interface: &str) -> Result<[u8; 6]> {
        mac_address(interface)
    }

    fn notify(&self, commands: Vec<Vec<String>>, instance: &str) {
        notify::spawn_all(commands, instance);
    }
}
