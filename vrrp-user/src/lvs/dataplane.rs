//! What forwards the services: keepxdp's XDP balancer (`XdpLvs`, the default) or the
//! kernel's IPVS (`IpvsLvs`, `keepxdp run --lb-backend ipvs`). The daemon talks to either
//! through `LvsDataplane`.
use std::{collections::BTreeMap, net::IpAddr};

use anyhow::Result;
use vrrp_common::lvs::{BACKEND_RESOLVED, Backend};

use super::{LvsTables, ServicePlan, ServiceView};
use crate::{bpf::LvsMaps, net::Neighbour};

pub trait LvsDataplane: Send {
    /// Makes the forwarding carry exactly `plans`; errors of single services are returned,
    /// the others are applied.
    fn apply(&mut self, plans: &[ServicePlan]) -> Vec<String>;
    /// A checker verdict; true when something changed.
    fn set_health(&mut self, service: &str, real: &str, up: bool, weight: Option<u32>) -> Result<bool>;
    /// VRRP's view of the VIPs (VIP → this node is Master).
    fn set_vrrp_vips(&mut self, vips: BTreeMap<IpAddr, bool>) -> Result<()>;
    /// A VRRP-owned VIP became local or stopped being local.
    fn set_vip_local(&mut self, _addr: IpAddr, _local: bool) -> Result<()> {
        Ok(())
    }
    fn views(&self) -> Vec<ServiceView>;
    /// `keepxdp lvs drain` / `undrain`: the virtual_servers changed.
    fn set_drained(&mut self, _target: super::tables::DrainTarget, _drained: bool) -> Result<Vec<String>> {
        anyhow::bail!("drain is implemented for the XDP balancer only (--lb-backend xdp)")
    }
    /// TUN's outer source addresses (XDP only).
    fn set_tunnel_sources(&mut self, _v4: Option<std::net::Ipv4Addr>, _v6: Option<std::net::Ipv6Addr>) {}
    /// New NAT flows reported to the sync daemon (XDP only; applied with the next `apply`).
    fn set_sync(&mut self, _on: bool) {}
    /// Quorum gains and losses since the last call (quorum_up / quorum_down scripts).
    fn take_quorum_changes(&mut self) -> Vec<super::QuorumChange> {
        Vec::new()
    }
    /// Real servers whose MAC the data plane still needs (XDP only).
    fn unresolved(&self) -> Vec<IpAddr> {
        Vec::new()
    }
    /// Real servers whose MAC (or egress) in the kernel's neighbour table is no longer the one
    /// written to the data plane (XDP only): a real server's address moved to another host.
    fn changed_neighbours(&self, _neighbours: &std::collections::BTreeMap<IpAddr, Neighbour>) -> Vec<IpAddr> {
        Vec::new()
    }
    /// The kernel's neighbour entry for a real server (XDP only).
    fn resolved(&mut self, _addr: IpAddr, _neighbour: Neighbour) -> Result<()> {
        Ok(())
    }
}

/// The XDP balancer: `LvsTables` writing through `LvsMaps`.
pub struct XdpLvs<M> {
    pub tables: LvsTables,
    pub maps: M,
    /// Backend entries keepxdp has written MACs into, with the neighbour written (so the
    /// once-a-second resolution pass reads no map entries: 10,000 real servers would be
    /// 10,000 syscalls a second, and a changed neighbour is noticed).
    resolved: std::collections::BTreeMap<u32, Neighbour>,
}

impl<M: LvsMaps> XdpLvs<M> {
    pub fn new(tables: LvsTables, maps: M) -> Self {
        Self { tables, maps, resolved: Default::default() }
    }

    /// (index, address) of every backend that may need a MAC. Loopback real servers never
    /// get one (and are no forwarding target): they are left out.
    fn backends(&self) -> Vec<(u32, IpAddr)> {
        self.tables.backend_addrs().filter(|(_, addr)| !addr.is_loopback()).collect()
    }
}

impl<M: LvsMaps + Send> LvsDataplane for XdpLvs<M> {
    fn apply(&mut self, plans: &[ServicePlan]) -> Vec<String> {
        let errors = self.tables.apply(plans, &mut self.maps);
        // New backends (and indexes given to other real servers) need their MAC again; a
        // rewritten entry of the same real server keeps the MAC it had.
        let live: std::collections::BTreeSet<u32> = self.backends().into_iter().map(|(index, _)| index).collect();
        self.resolved.retain(|index, _| live.contains(index));
        errors
    }

    fn set_health(&mut self, service: &str, real: &str, up: bool, weight: Option<u32>) -> Result<bool> {
        self.tables.set_health(service, real, up, weight, &mut self.maps)
    }

    fn set_vrrp_vips(&mut self, vips: BTreeMap<IpAddr, bool>) -> Result<()> {
        self.tables.set_vrrp_vips(vips, &mut self.maps)
    }

    fn set_drained(&mut self, target: super::tables::DrainTarget, drained: bool) -> Result<Vec<String>> {
        self.tables.set_drained(target, drained, &mut self.maps)
    }

    fn set_vip_local(&mut self, addr: IpAddr, local: bool) -> Result<()> {
        self.tables.set_vip_local(addr, local, &mut self.maps)
    }

    fn views(&self) -> Vec<ServiceView> {
        self.tables.views()
    }

    fn set_tunnel_sources(&mut self, v4: Option<std::net::Ipv4Addr>, v6: Option<std::net::Ipv6Addr>) {
        self.tables.set_tunnel_sources(v4, v6);
    }

    fn take_quorum_changes(&mut self) -> Vec<super::QuorumChange> {
        self.tables.take_quorum_changes()
    }

    fn set_sync(&mut self, on: bool) {
        self.tables.set_sync(on);
    }

    fn unresolved(&self) -> Vec<IpAddr> {
        let addrs: std::collections::BTreeSet<IpAddr> =
            self.backends().into_iter().filter(|(index, _)| !self.resolved.contains_key(index)).map(|(_, addr)| addr).collect();
        addrs.into_iter().collect()
    }

    fn changed_neighbours(&self, neighbours: &std::collections::BTreeMap<IpAddr, Neighbour>) -> Vec<IpAddr> {
        let changed: std::collections::BTreeSet<IpAddr> = self
            .backends()
            .into_iter()
            .filter_map(|(index, addr)| {
                let written = self.resolved.get(&index)?;
                let now = neighbours.get(&addr)?;
                (now != written).then_some(addr)
            })
            .collect();
        changed.into_iter().collect()
    }

    fn resolved(&mut self, addr: IpAddr, neighbour: Neighbour) -> Result<()> {
        let pending: Vec<u32> = self
            .backends()
            .into_iter()
            .filter(|(index, a)| *a == addr && self.resolved.get(index) != Some(&neighbour))
            .map(|(i, _)| i)
            .collect();
        for index in pending {
            let mut entry: Backend = self.maps.backend(index)?;
            if entry.family == 0 {
                continue;
            }
            entry.mac = neighbour.mac;
            entry.src_mac = neighbour.our_mac;
            entry.ifindex = neighbour.ifindex;
            entry.flags |= BACKEND_RESOLVED;
            self.maps.put_backend(index, &entry)?;
            self.resolved.insert(index, neighbour);
        }
        Ok(())
    }
}
