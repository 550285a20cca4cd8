//! static_ipaddress, static_routes and static_rules: applied whatever the VRRP state (as
//! keepalived does), reconciled on reload (unchanged entries untouched), removed on stop.
use crate::{
    config::{Config, model::VirtualAddress},
    net::{
        AddressTable, Netlink, RouteTable,
        route_spec::{RouteSpec, RuleSpec},
    },
};

#[derive(Default, Clone, PartialEq)]
pub struct Statics {
    addresses: Vec<(u32, VirtualAddress)>,
    routes: Vec<(u32, RouteSpec)>,
    rules: Vec<RuleSpec>,
}

fn ifindex(name: Option<&str>) -> Option<u32> {
    nix::net::if_::if_nametoindex(name?).ok()
}

impl Statics {
    /// What `model` asks for; entries naming an interface that does not exist are skipped
    /// with a log line (addresses need `dev`).
    pub fn of(model: &Config) -> Statics {
        let mut statics = Statics::default();
        for address in &model.static_ipaddress {
            match ifindex(address.dev.as_deref()) {
                Some(index) => {
                    let mut address = address.clone();
                    address.at.clear();
                    statics.addresses.push((index, address));
                }
                None => tracing::warn!(address = %address.address, "static_ipaddress without an existing `dev`: not applied"),
            }
        }
        for entry in &model.static_routes {
            if let Ok(route) = RouteSpec::parse(&entry.words) {
                match ifindex(route.dev.as_deref()).or(route.via.map(|_| 0)) {
                    Some(index) => statics.routes.push((index, route)),
                    None => tracing::warn!(route = entry.words.join(" "), "static route without an existing `dev` or a `via`: not applied"),
                }
            }
        }
        statics.rules = model.static_rules.iter().filter_map(|e| RuleSpec::parse(&e.words).ok()).collect();
        statics
    }

    /// Moves the kernel from `old` to `self`: stale entries out, new ones in.
    pub async fn apply(&self, old: &Statics, netlink: &Netlink) {
        for rule in old.rules.iter().filter(|r| !self.rules.contains(r)) {
            log(netlink.remove_rule(rule).await);
        }
        for (index, route) in old.routes.iter().filter(|r| !self.routes.contains(r)) {
            log(netlink.remove_route(*index, route).await);
        }
        for (index, address) in old.addresses.iter().filter(|a| !self.addresses.contains(a)) {
            log(netlink.remove(*index, address).await);
        }
        for (index, address) in self.addresses.iter().filter(|a| !old.addresses.contains(a)) {
            log(netlink.add(*index, address).await);
        }
        for (index, route) in self.routes.iter().filter(|r| !old.routes.contains(r)) {
            log(netlink.add_route(*index, route).await);
        }
        for rule in self.rules.iter().filter(|r| !old.rules.contains(r)) {
            log(netlink.add_rule(rule).await);
        }
    }
}

fn log(result: anyhow::Result<()>) {
    if let Err(error) = result {
        tracing::error!(error = format!("{error:#}"), "static address, route or rule");
    }
}
