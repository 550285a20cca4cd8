//! Rules across blocks, with keepalived's meaning: references between blocks, VRIDs shared
//! on one interface, interfaces that do not exist here.
use std::collections::{BTreeMap, BTreeSet};

use super::{
    build::pos_of,
    diagnostic::Diagnostics,
    model::{Config, Tracking, VirtualServerKey},
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
    interfaces(config, environment, diagnostics);
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

fn vrids_per_interface(config: &mut Config, diagnostics: &mut Diagnostics) {
    let mut seen: BTreeMap<(String, u8, bool), String> = BTreeMap::new();
    for instance in &config.vrrp_instances {
        let (Some(interface), Some(vrid)) = (&instance.interface, instance.virtual_router_id) else {
            continue;
        };
        let ipv6 = instance.family == super::model::Family::Ipv6;
        let key = (interface.clone(), vrid, ipv6);
        match seen.get(&key) {
            Some(first) => diagnostics.error(
                &pos_of(&instance.at),
                format!(
                    "{first} and {} both use VRID {vrid} with {} on interface {interface}",
                    instance.name,
                    if ipv6 { "IPv6" } else { "IPv4" }
                ),
            ),
            None => {
                seen.insert(key, instance.name.clone());
            }
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
        if let Some(interface) = &instance.interface {
            if !existing.contains(interface) {
                diagnostics.warning(
                    &pos_of(&instance.at),
                    format!("({}) interface {interface} does not exist on this system (yet)", instance.name),
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
