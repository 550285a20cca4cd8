//! An instance's virtual addresses on the kernel: where each goes, what the kernel shows of
//! them (the put-back rule, a crashed run's leftovers), routes and rules with them, and their
//! announcements (gratuitous ARP / unsolicited NA).
use std::net::IpAddr;

use super::{Runtime, Tables};
use crate::{
    config::model::VirtualAddress,
    net::{Interfaces, vmac::vmac_name},
    vrrp::{
        fsm::{Machine, State},
        host::{Announcer, Host},
    },
};

/// Where a virtual address goes, and the MAC its announcements carry.
pub(super) struct Placement {
    pub(super) interface: String,
    pub(super) ifindex: u32,
    pub(super) mac: [u8; 6],
}

impl<T: Tables, H: Host> Runtime<'_, T, H> {
    /// Addresses a crashed keepxdp left behind, found at startup in Backup: its data plane is
    /// still forwarding them (it outlives the process), and this node was their Master a
    /// moment ago. They stay until another router is heard (it has them, or will) or this
    /// one becomes Master again, so a restart of a lone Master loses no connection.
    pub(super) fn adopt_inherited(&mut self) {
        self.inherited = self.spec.addresses.iter().zip(self.seen_addresses()).filter(|(_, seen)| *seen).map(|(a, _)| a.clone()).collect();
        if !self.inherited.is_empty() {
            tracing::info!(
                instance = self.spec.name,
                addresses = self.inherited.len(),
                "virtual addresses left by a previous run kept while Backup, until another router is heard or this one is Master"
            );
        }
    }

    /// The addresses a previous run left: another router is alive (or this instance stops).
    pub(super) async fn release_inherited(&mut self) {
        for address in std::mem::take(&mut self.inherited) {
            let Some(place) = self.placement(&address) else { continue };
            tracing::info!(instance = self.spec.name, address = %address.address, "releasing a virtual address a previous run left");
            if let Err(error) = self.table.remove(place.ifindex, &address).await {
                tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
            }
        }
    }

    /// Starting in FAULT: the addresses a previous run left go.
    pub(super) async fn remove_leftovers(&mut self) {
        for (address, seen) in self.spec.addresses.iter().zip(self.seen_addresses()) {
            let Some(place) = self.placement(address).filter(|_| seen) else { continue };
            tracing::info!(instance = self.spec.name, address = %address.address, "removing a virtual address a previous run left (in FAULT)");
            if let Err(error) = self.table.remove(place.ifindex, address).await {
                tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
            }
        }
    }

    /// Where an address lives: its own `dev` when it names another interface (keepalived's
    /// `192.168.200.17 dev eth1`), else the instance's interface or its vmac. The interface
    /// and its index, from the kernel's table (or the attachment).
    fn home(&self, address: &VirtualAddress, interfaces: &Interfaces) -> Option<(String, u32)> {
        if let Some(dev) = address.dev.as_deref().filter(|dev| *dev != self.spec.interface)
            && let Some(link) = interfaces.by_name(dev)
        {
            return Some((dev.to_string(), link.ifindex));
        }
        if let Some(attachment) = &self.attachment {
            return Some((attachment.address_interface.clone(), attachment.address_ifindex));
        }
        let interface = match &self.spec.use_vmac {
            Some(configured) => vmac_name(configured, self.spec.vrid),
            None => self.spec.interface.clone(),
        };
        let ifindex = interfaces.by_name(&interface)?.ifindex;
        Some((interface, ifindex))
    }

    /// `home`, with the MAC announcements carry (an own `dev`'s, else the instance's).
    pub(super) fn placement(&self, address: &VirtualAddress) -> Option<Placement> {
        let (interface, ifindex) = self.home(address, &self.interfaces.borrow())?;
        let base_mac = self.attachment.as_ref().map_or([0; 6], |a| a.mac);
        let own_dev = address.dev.as_deref() == Some(interface.as_str()) && interface != self.spec.interface;
        let mac = if own_dev { self.host.mac_address(&interface).unwrap_or(base_mac) } else { base_mac };
        Some(Placement { interface, ifindex, mac })
    }

    /// For each virtual address: is it on its interface now, as the kernel told?
    pub(super) fn seen_addresses(&self) -> Vec<bool> {
        let interfaces = self.interfaces.borrow();
        self.spec
            .addresses
            .iter()
            .map(|address| {
                self.home(address, &interfaces)
                    .and_then(|(_, ifindex)| interfaces.by_index(ifindex))
                    .is_some_and(|link| link.has(address.address))
            })
            .collect()
    }

    /// Another tool removed one of our addresses while we are Master: add it back and
    /// announce it (keepalived leaves the node Master without it, #836, #2564).
    pub(super) async fn put_back_removed(&mut self, machine: &Machine) {
        let seen = self.seen_addresses();
        let before = std::mem::replace(&mut self.present, seen.clone());
        if machine.state != State::Master || self.attachment.is_none() {
            return;
        }
        for ((address, was), now) in self.spec.addresses.iter().zip(before).zip(seen) {
            // `no_track`: keepalived neither reacts to nor reinstates it until next Master.
            if !was || now || address.no_track {
                continue;
            }
            let Some(place) = self.placement(address) else { continue };
            tracing::warn!(instance = self.spec.name, address = %address.address, "virtual address removed by another tool while Master; putting it back");
            match self.table.add(place.ifindex, address).await {
                Ok(()) => {
                    self.status.addresses_put_back += 1;
                    self.announce_address(address, &place);
                }
                Err(error) => tracing::error!(instance = self.spec.name, %error, "putting the virtual address back failed"),
            }
        }
    }

    /// virtual_routes and virtual_rules follow the addresses: in after them, out before.
    pub(super) async fn apply_routes(&self, add: bool) {
        let base = self.attachment.as_ref().map_or(0, |a| a.ready.ifindex);
        for route in &self.spec.routes {
            let ifindex = route.dev.as_deref().and_then(|dev| self.interfaces.borrow().by_name(dev).map(|l| l.ifindex)).unwrap_or(base);
            let result = if add { self.table.add_route(ifindex, route).await } else { self.table.remove_route(ifindex, route).await };
            if let Err(error) = result {
                tracing::error!(instance = self.spec.name, error = format!("{error:#}"), "virtual route");
            }
        }
        for rule in &self.spec.rules {
            let result = if add { self.table.add_rule(rule).await } else { self.table.remove_rule(rule).await };
            if let Err(error) = result {
                tracing::error!(instance = self.spec.name, error = format!("{error:#}"), "virtual rule");
            }
        }
    }

    /// Gratuitous ARP (IPv4) or unsolicited NA (IPv6) for every virtual address, `times`
    /// times.
    pub(super) fn announce_times(&self, times: u32) {
        for _ in 0..times.max(1) {
            for address in &self.spec.addresses {
                if let Some(place) = self.placement(address) {
                    self.announce_address(address, &place);
                }
            }
        }
    }

    pub(super) fn announce_address(&self, address: &VirtualAddress, place: &Placement) {
        let sent = match address.address {
            IpAddr::V4(v4) => self.announcer.gratuitous_arp(place.ifindex, place.mac, v4),
            IpAddr::V6(v6) => self.announcer.unsolicited_na(&place.interface, place.ifindex, place.mac, v6),
        };
        if let Err(error) = sent {
            tracing::warn!(instance = self.spec.name, %error, "announcing a virtual address failed");
        }
    }

}
