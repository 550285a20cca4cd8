//! What the VRRP runtime needs of a vrrp_instance, resolved from the configuration
//! (keepalived's defaults applied), and how two of them compare on reload.
use std::{net::IpAddr, time::Duration};

use anyhow::{Context, Result, bail};

use super::{
    fsm::Version,
    socket::{VRRP_GROUP_V4, VRRP_GROUP_V6},
};
use crate::{
    config::model::{GlobalDefs, VirtualAddress, VrrpInstance},
    net::route_spec::{RouteSpec, RuleSpec},
};

/// keepalived's defaults for the gratuitous ARP bursts on becoming Master.
const GARP_REPEAT_DEFAULT: u32 = 5;
const GARP_DELAY_DEFAULT: Duration = Duration::from_secs(5);

/// What the runtime needs of a vrrp_instance, resolved.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub name: String,
    /// Resolved to an index at run time, whenever it appears (it may not exist yet).
    pub interface: String,
    /// False with `dont_track_primary`: the interface going down is no FAULT.
    pub track_primary: bool,
    pub vrid: u8,
    pub version: Version,
    pub priority: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub start_as_master: bool,
    /// v2 `auth_type PASS` password.
    pub auth_pass: Option<Vec<u8>>,
    pub addresses: Vec<VirtualAddress>,
    /// virtual_routes and virtual_rules (lines that do not parse were reported by the check).
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<RuleSpec>,
    /// `unicast_src_ip` / `mcast_src_ip`; None: the interface's first IPv4 address, or its
    /// link-local IPv6 address.
    pub source: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// 224.0.0.18 / ff02::12, or global_defs' vrrp_mcast_group4/6.
    pub group: IpAddr,
    pub family: crate::config::Family,
    pub v3_checksum_as_v2: bool,
    pub garp_repeat: u32,
    pub garp_delay: Duration,
    /// `garp_master_refresh`: re-announce this often while Master (None: never).
    pub garp_refresh: Option<Duration>,
    pub garp_refresh_repeat: u32,
    pub notify: crate::config::model::Notify,
    /// The vrrp_sync_group this instance is in.
    pub sync_group: Option<String>,
    /// `use_vmac [NAME]`: Some("") for keepalived's default name `vrrp.VRID`.
    pub use_vmac: Option<String>,
    /// `vmac_xmit_base`: adverts leave from the base interface, not the vmac.
    pub vmac_xmit_base: bool,
}

impl InstanceSpec {
    /// The runtime's view of an instance; an error says why one cannot run.
    pub fn from_config(instance: &VrrpInstance, global: &GlobalDefs, sync_group: Option<String>) -> Result<InstanceSpec> {
        let interface = instance.interface.clone().context("no interface")?;
        let family = instance.family;
        let same_family = |address: &&IpAddr| crate::config::Family::of(address) == family;
        let group = match family {
            crate::config::Family::Ipv4 => IpAddr::V4(global.vrrp_mcast_group4.unwrap_or(VRRP_GROUP_V4)),
            crate::config::Family::Ipv6 => IpAddr::V6(global.vrrp_mcast_group6.unwrap_or(VRRP_GROUP_V6)),
        };
        if family == crate::config::Family::Ipv6 && instance.version != 3 {
            bail!("an IPv6 instance needs VRRP version 3");
        }
        let auth_pass = instance
            .authentication
            .as_ref()
            .filter(|a| a.auth_type == Some(crate::config::model::AuthType::Pass))
            .and_then(|a| a.auth_pass.as_ref())
            .map(|p| p.as_bytes().to_vec());
        Ok(InstanceSpec {
            name: instance.name.clone(),
            interface,
            track_primary: !instance.dont_track_primary,
            vrid: instance.virtual_router_id.context("no virtual_router_id")?,
            version: if instance.version == 3 { Version::V3 } else { Version::V2 },
            priority: instance.priority,
            advert_interval: Duration::from_secs_f64(instance.advert_int),
            preempt: !instance.nopreempt,
            preempt_delay: Duration::from_secs_f64(instance.preempt_delay.unwrap_or(0.0)),
            start_as_master: instance.state == crate::config::model::InitialState::Master,
            auth_pass,
            addresses: instance.virtual_ipaddress.clone(),
            routes: instance.virtual_routes.iter().filter_map(|r| RouteSpec::parse(&r.words).ok()).collect(),
            rules: instance.virtual_rules.iter().filter_map(|r| RuleSpec::parse(&r.words).ok()).collect(),
            source: instance.unicast_src_ip.or(instance.mcast_src_ip).filter(|a| same_family(&a)),
            unicast_peers: instance.unicast_peer.iter().filter(same_family).copied().collect(),
            group,
            family,
            v3_checksum_as_v2: instance.v3_checksum_as_v2,
            garp_repeat: instance.garp_master_repeat.or(global.vrrp_garp_master_repeat).unwrap_or(GARP_REPEAT_DEFAULT),
            garp_delay: instance
                .garp_master_delay
                .or(global.vrrp_garp_master_delay)
                .map_or(GARP_DELAY_DEFAULT, |s| Duration::from_secs(s.into())),
            garp_refresh: instance
                .garp_master_refresh
                .or(global.vrrp_garp_master_refresh)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s.into())),
            garp_refresh_repeat: instance.garp_master_refresh_repeat.or(global.vrrp_garp_master_refresh_repeat).unwrap_or(1),
            notify: instance.notify.clone(),
            sync_group,
            use_vmac: instance.use_vmac.clone(),
            vmac_xmit_base: instance.vmac_xmit_base,
        })
    }
}

impl InstanceSpec {
    /// Same runtime behaviour: every field but where the addresses were written.
    pub fn same_as(&self, other: &InstanceSpec) -> bool {
        let strip = |spec: &InstanceSpec| {
            let mut copy = spec.clone();
            for address in &mut copy.addresses {
                address.at.clear();
            }
            format!("{copy:?}")
        };
        strip(self) == strip(other)
    }

    /// The same instance on the wire and in the kernel: interface, VRID, family, version,
    /// multicast group or unicast peers, source, vmac, sync group. A reload that changes
    /// anything else (priority, advert_int, preempt, authentication, virtual addresses,
    /// routes and rules, garp settings, notify scripts) applies in place, as keepalived does:
    /// a Master stays Master and advertises the new values. Any of these changing makes a
    /// new instance (the old one stops, priority 0 if Master).
    pub fn same_identity(&self, other: &InstanceSpec) -> bool {
        (
            &self.interface,
            self.track_primary,
            self.vrid,
            self.version,
            self.family,
            self.group,
            self.source,
            &self.unicast_peers,
            &self.use_vmac,
            self.vmac_xmit_base,
            &self.sync_group,
            self.v3_checksum_as_v2,
        ) == (
            &other.interface,
            other.track_primary,
            other.vrid,
            other.version,
            other.family,
            other.group,
            other.source,
            &other.unicast_peers,
            &other.use_vmac,
            other.vmac_xmit_base,
            &other.sync_group,
            other.v3_checksum_as_v2,
        )
    }
}


#[cfg(test)]
pub mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;

    /// `ADDRESS/PREFIX` as a virtual_ipaddress line would give it.
    pub fn vip(address: &str) -> VirtualAddress {
        let (address, prefix) = address.split_once('/').unwrap_or((address, "32"));
        VirtualAddress {
            address: address.parse().unwrap(),
            prefix_len: prefix.parse().unwrap(),
            brd: None,
            dev: None,
            scope: None,
            label: None,
            peer: None,
            preferred_lft: None,
            home: false,
            mngtmpaddr: false,
            noprefixroute: false,
            autojoin: false,
            no_track: false,
            options: Vec::new(),
            at: String::new(),
        }
    }

    /// VI_1 on eth0: VRID 51, v2, priority 100, advert_int 1, VIP 10.0.0.100/24.
    pub fn spec_v4() -> InstanceSpec {
        InstanceSpec {
            name: "VI_1".into(),
            interface: "eth0".into(),
            track_primary: true,
            vrid: 51,
            version: Version::V2,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            start_as_master: false,
            auth_pass: None,
            addresses: vec![vip("10.0.0.100/24")],
            routes: Vec::new(),
            rules: Vec::new(),
            source: None,
            unicast_peers: Vec::new(),
            group: Ipv4Addr::new(224, 0, 0, 18).into(),
            family: crate::config::Family::Ipv4,
            v3_checksum_as_v2: false,
            garp_repeat: 1,
            garp_delay: Duration::from_secs(5),
            garp_refresh: None,
            garp_refresh_repeat: 1,
            notify: Default::default(),
            sync_group: None,
            use_vmac: None,
            vmac_xmit_base: false,
        }
    }
}
