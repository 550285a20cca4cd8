//! Rules across blocks, with keepalived's meaning: references between blocks, VRIDs shared
//! on one interface, interfaces that do not exist here.
use std::collections::{BTreeMap, BTreeSet};

use super::{
    build::pos_of,
    diagnostic::Diagnostics,
    model::{Checker, Config, LbKind, Tracking, VirtualServerKey},
};

/// Options of a check that depend on the machine rather than the file.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Interface names that exist; None skips the existence check.
    pub interfaces: Option<BTreeSet<String>>,
}

pub fn validate(config: &mut Config, environment: &Environment, diagnostics: &mut Diagnostics) {
    vrids_per_interface(config, diagnostics);
    tracking_references(config, diagnostics);
    sync_groups(config, diagnostics);
    virtual_server_groups(config, diagnostics);
    direct_routing_ports(config, diagnostics);
    sync_group_weights(config, diagnostics);
    routes_and_rules(config, diagnostics);
    script_security(config, diagnostics);
    interfaces(config, environment, diagnostics);
    lvs_sync_daemon(config, environment, diagnostics);
}

/// `lvs_sync_daemon` must name a vrrp_instance (keepalived refuses to start the sync daemon
/// otherwise; so does keepxdp, with an error); its interface should exist.
fn lvs_sync_daemon(config: &mut Config, environment: &Environment, diagnostics: &mut Diagnostics) {
    let Some(sync) = &config.global_defs.lvs_sync_daemon else { return };
    let at = pos_of(&sync.at);
    if !config.vrrp_instances.iter().any(|i| i.name == sync.vrrp_instance) {
        diagnostics.error(&at, format!("lvs_sync_daemon names vrrp_instance {}, which does not exist; the sync daemon is off", sync.vrrp_instance));
        config.global_defs.lvs_sync_daemon = None;
        return;
    }
    if let Some(existing) = &environment.interfaces
        && !existing.contains(&sync.interface)
    {
        diagnostics.warning(&at, format!("lvs_sync_daemon interface {} does not exist on this system (yet)", sync.interface));
    }
    if let Some(maxlen) = sync.maxlen
        && (maxlen as usize) < crate::lvs::sync::wire::MIN_DATAGRAM
    {
        diagnostics.warning(
            &at,
            format!("lvs_sync_daemon maxlen {maxlen} cannot carry one entry; {} bytes are used", crate::lvs::sync::wire::MIN_DATAGRAM),
        );
    }
}

/// virtual_routes / virtual_rules / static_routes / static_rules: the ip-route and ip-rule
/// words keepxdp applies. A line it cannot apply is a warning naming why (never silent); it
/// is not an error because the line may be keepalived syntax keepxdp does not implement yet
/// (`via A or B` multipath alternatives).
fn routes_and_rules(config: &Config, diagnostics: &mut Diagnostics) {
    use crate::net::route_spec::{RouteSpec, RuleSpec};
    let routes = config.vrrp_instances.iter().flat_map(|i| i.virtual_routes.iter()).chain(config.static_routes.iter());
    for entry in routes {
        if let Err(message) = RouteSpec::parse(&entry.words) {
            diagnostics.warning(&pos_of(&entry.at), format!("route `{}` is not applied: {message}", entry.words.join(" ")));
        }
    }
    let rules = config.vrrp_instances.iter().flat_map(|i| i.virtual_rules.iter()).chain(config.static_rules.iter());
    for entry in rules {
        if let Err(message) = RuleSpec::parse(&entry.words) {
            diagnostics.warning(&pos_of(&entry.at), format!("rule `{}` is not applied: {message}", entry.words.join(" ")));
        }
    }
}

/// keepalived ignores weighted tracking of sync group members (a member that changed
/// priority alone would split the group), unless told otherwise.
fn sync_group_weights(config: &Config, diagnostics: &mut Diagnostics) {
    let members: BTreeSet<&str> = config.vrrp_sync_groups.iter().flat_map(|g| g.group.iter().map(String::as_str)).collect();
    let script_weights: BTreeMap<&str, i32> = config.vrrp_scripts.iter().map(|s| (s.name.as_str(), s.weight)).collect();
    for instance in config.vrrp_instances.iter().filter(|i| members.contains(i.name.as_str())) {
        let tracking = &instance.tracking;
        let weighted = tracking
            .track_script
            .iter()
            .filter(|r| r.weight.or(script_weights.get(r.name.as_str()).copied()).unwrap_or(0) != 0)
            .chain(tracking.track_interface.iter().filter(|r| r.weight.unwrap_or(0) != 0))
            .chain(tracking.track_file.iter().filter(|r| r.weight.unwrap_or(0) != 0))
            .chain(tracking.track_process.iter().filter(|r| r.weight.unwrap_or(0) != 0));
        for tracked in weighted {
            diagnostics.warning(
                &pos_of(&tracked.at),
                format!("({}) is in a sync group: the weight of tracked `{}` is ignored, as keepalived does; a failure takes the instance to FAULT", instance.name, tracked.name),
            );
        }
    }
}

/// keepalived refuses to run scripts as root without `enable_script_security` (`-t` reports
/// a security violation); keepxdp warns at the first script.
fn script_security(config: &Config, diagnostics: &mut Diagnostics) {
    if config.global_defs.enable_script_security {
        return;
    }
    let vrrp_scripts = config.vrrp_scripts.iter().filter(|s| s.script.is_some()).map(|s| s.at.as_str());
    let notifies = config.vrrp_instances.iter().filter(|i| i.notify != Default::default()).map(|i| i.at.as_str());
    let group_notifies = config.vrrp_sync_groups.iter().filter(|g| g.notify != Default::default()).map(|g| g.at.as_str());
    let checks = config.virtual_servers.iter().flat_map(|v| {
        let quorum = (v.quorum_up.is_some() || v.quorum_down.is_some()).then_some(v.at.as_str());
        let reals = v.real_servers.iter().flat_map(|r| {
            let notify = (r.notify_up.is_some() || r.notify_down.is_some()).then_some(r.at.as_str());
            let misc = r.checkers.iter().filter_map(|c| match c {
                Checker::MiscCheck(misc) => Some(misc.at.as_str()),
                _ => None,
            });
            notify.into_iter().chain(misc)
        });
        quorum.into_iter().chain(reals)
    });
    if let Some(first) = vrrp_scripts.chain(notifies).chain(group_notifies).chain(checks).next() {
        diagnostics.warning(
            &pos_of(first),
            "scripts are configured but global_defs has no `enable_script_security`: keepalived reports a security violation; set it (and `script_user`) so scripts do not run as root unchecked",
        );
    }
}

/// DR and TUN forward the packet unchanged, so a real server listens on the virtual port:
/// keepalived resets a different real-server port, with a warning. So does keepxdp.
fn direct_routing_ports(config: &mut Config, diagnostics: &mut Diagnostics) {
    for server in &mut config.virtual_servers {
        let VirtualServerKey::Address { port: Some(virtual_port), ip } = server.key else { continue };
        let service_kind = server.lb_kind.kind;
        for real in &mut server.real_servers {
            let kind = real.lvs_method.map_or(service_kind, |m| m.kind);
            let Some(real_port) = real.port else { continue };
            if kind != LbKind::Nat && real_port != virtual_port {
                let method = if kind == LbKind::Dr { "DR" } else { "TUN" };
                diagnostics.warning(
                    &pos_of(&real.at),
                    format!(
                        "real_server {} port {real_port} differs from virtual server {ip} port {virtual_port}; {method} cannot change ports, so it is reset to {virtual_port} as keepalived does",
                        real.ip
                    ),
                );
                real.port = Some(virtual_port);
            }
        }
    }
}

/// `virtual_server group NAME` must name a virtual_server_group; keepalived drops it otherwise.
fn virtual_server_groups(config: &mut Config, diagnostics: &mut Diagnostics) {
    let groups: BTreeSet<String> = config.virtual_server_groups.iter().map(|g| g.name.clone()).collect();
    config.virtual_servers.retain(|server| match &server.key {
        VirtualServerKey::Group { name } if !groups.contains(name) => {
            diagnostics.error(
                &pos_of(&server.at),
                format!("virtual_server group {name} names no virtual_server_group; this virtual server is ignored"),
            );
            false
        }
        _ => true,
    });
}

/// One VRID per interface and family, as keepalived requires; except unicast instances
/// whose `unicast_peer` lists share no address (keepalived 2.2.7 accepts them: each
/// instance's socket takes only its own peers' adverts).
fn vrids_per_interface(config: &mut Config, diagnostics: &mut Diagnostics) {
    let mut seen: BTreeMap<(String, u8, bool), Vec<(String, Vec<std::net::IpAddr>)>> = BTreeMap::new();
    for instance in &config.vrrp_instances {
        let (Some(interface), Some(vrid)) = (&instance.interface, instance.virtual_router_id) else {
            continue;
        };
        let ipv6 = instance.family == super::model::Family::Ipv6;
        let key = (interface.clone(), vrid, ipv6);
        let peers = &instance.unicast_peer;
        let clash = seen.get(&key).and_then(|others| {
            others
                .iter()
                .find(|(_, theirs)| peers.is_empty() || theirs.is_empty() || theirs.iter().any(|p| peers.contains(p)))
                .map(|(name, _)| name.clone())
        });
        match clash {
            Some(first) => diagnostics.error(
                &pos_of(&instance.at),
                format!(
                    "{first} and {} both use VRID {vrid} with {} on interface {interface}",
                    instance.name,
                    if ipv6 { "IPv6" } else { "IPv4" }
                ),
            ),
            None => seen.entry(key).or_default().push((instance.name.clone(), peers.clone())),
        }
    }
    for instance in &config.vrrp_instances {
        if instance.interface.is_none() {
            diagnostics.error(&pos_of(&instance.at), format!("({}) has no `interface`", instance.name));
        }
        if instance.virtual_router_id.is_none() {
            diagnostics.error(&pos_of(&instance.at), format!("({}) has no `virtual_router_id` (1..255)", instance.name));
        }
    }
    // keepalived drops an instance it cannot run; so does keepxdp.
    config.vrrp_instances.retain(|i| i.interface.is_some() && i.virtual_router_id.is_some());
}

fn tracking_references(config: &Config, diagnostics: &mut Diagnostics) {
    let scripts: BTreeSet<&str> = config.vrrp_scripts.iter().map(|s| s.name.as_str()).collect();
    let processes: BTreeSet<&str> = config.vrrp_track_processes.iter().map(|p| p.name.as_str()).collect();
    let files: BTreeSet<&str> = config.vrrp_track_files.iter().map(|f| f.name.as_str()).collect();
    let owners = config
        .vrrp_instances
        .iter()
        .map(|i| (&i.name, &i.tracking))
        .chain(config.vrrp_sync_groups.iter().map(|g| (&g.name, &g.tracking)));
    for (owner, tracking) in owners {
        check_refs(owner, tracking, "track_script", "vrrp_script", &scripts, diagnostics);
        check_refs(owner, tracking, "track_process", "vrrp_track_process", &processes, diagnostics);
        check_refs(owner, tracking, "track_file", "vrrp_track_file", &files, diagnostics);
    }
}

fn check_refs(
    owner: &str,
    tracking: &Tracking,
    keyword: &str,
    defined_by: &str,
    defined: &BTreeSet<&str>,
    diagnostics: &mut Diagnostics,
) {
    let refs = match keyword {
        "track_script" => &tracking.track_script,
        "track_process" => &tracking.track_process,
        _ => &tracking.track_file,
    };
    for reference in refs {
        if !defined.contains(reference.name.as_str()) {
            diagnostics.error(
                &pos_of(&reference.at),
                format!("({owner}) {keyword} `{}` names no {defined_by}; it is ignored", reference.name),
            );
        }
    }
}

fn sync_groups(config: &Config, diagnostics: &mut Diagnostics) {
    let instances: BTreeSet<&str> = config.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for group in &config.vrrp_sync_groups {
        for member in &group.group {
            if !instances.contains(member.as_str()) {
                diagnostics.error(
                    &pos_of(&group.at),
                    format!("vrrp_instance {member} in sync group {} does not exist; it is ignored", group.name),
                );
            } else if let Some(other) = member_of.insert(member, &group.name) {
                diagnostics.error(
                    &pos_of(&group.at),
                    format!("vrrp_instance {member} is in sync groups {other} and {}; an instance can be in one only", group.name),
                );
            }
        }
        let existing = group.group.iter().filter(|m| instances.contains(m.as_str())).count();
        if existing == 1 {
            diagnostics.warning(&pos_of(&group.at), format!("sync group {} has only 1 instance; this probably isn't what you want", group.name));
        }
    }
}

fn interfaces(config: &Config, environment: &Environment, diagnostics: &mut Diagnostics) {
    let Some(existing) = &environment.interfaces else { return };
    for instance in &config.vrrp_instances {
        if let Some(interface) = &instance.interface
            && !existing.contains(interface) {
                diagnostics.warning(
                    &pos_of(&instance.at),
                    format!("({}) interface {interface} does not exist on this system (yet)", instance.name),
                );
            }
        // keepalived: "Non-existent interface specified in configuration".
        for address in instance.virtual_ipaddress.iter().chain(&instance.virtual_ipaddress_excluded) {
            if let Some(dev) = &address.dev
                && !existing.contains(dev)
            {
                diagnostics.warning(
                    &pos_of(&address.at),
                    format!("({}) virtual address {} names dev {dev}, which does not exist on this system (yet)", instance.name, address.address),
                );
            }
        }
        for tracked in &instance.tracking.track_interface {
            if !existing.contains(&tracked.name) {
                diagnostics.warning(&pos_of(&tracked.at), format!("({}) track_interface {} does not exist on this system (yet)", instance.name, tracked.name));
            }
        }
    }
}

/// The interfaces of the network namespace this process runs in.
pub fn system_interfaces() -> Option<BTreeSet<String>> {
    let interfaces = nix::net::if_::if_nameindex().ok()?;
    Some(interfaces.iter().map(|i| i.name().to_string_lossy().into_owned()).collect())
}
