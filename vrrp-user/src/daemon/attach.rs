//! Which interfaces carry the data plane, and why (pure): every vrrp_instance's interface
//! (its adverts and VIP traffic arrive there) and every interface through which a NAT real
//! server is reached (its replies come back there, to be translated in XDP) — whether or not
//! a vrrp_instance names it. The daemon looks the NAT ones up in the FIB when plans are
//! applied and again when routes or links change, and attaches by this plan.
use std::collections::{BTreeMap, BTreeSet};

/// Why an interface carries the data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasons {
    /// vrrp_instances on it.
    pub instances: BTreeSet<String>,
    /// NAT virtual_servers whose real servers are reached through it.
    pub nat_services: BTreeSet<String>,
}

impl Reasons {
    /// For log lines: "vrrp_instance VI_1, virtual_server 10.0.0.100:80".
    pub fn describe(&self) -> String {
        let instances = self.instances.iter().map(|name| format!("vrrp_instance {name}"));
        let services = self.nat_services.iter().map(|name| format!("virtual_server {name}"));
        instances.chain(services).collect::<Vec<_>>().join(", ")
    }
}

/// Interface name → why it must carry the data plane.
pub fn wanted(
    instance_interfaces: impl IntoIterator<Item = (String, String)>,
    nat_routes: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, Reasons> {
    let mut wanted: BTreeMap<String, Reasons> = BTreeMap::new();
    for (interface, instance) in instance_interfaces {
        wanted.entry(interface).or_default().instances.insert(instance);
    }
    for (interface, service) in nat_routes {
        wanted.entry(interface).or_default().nat_services.insert(service);
    }
    wanted
}

/// What to change: attachments to drop (their interface is no longer wanted, or was
/// deleted and re-created under another index) and interfaces to attach.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub detach: Vec<String>,
    pub attach: Vec<String>,
}

/// `present`: wanted interfaces that exist now, with their index; `attached`: what is
/// attached, with the index it was attached at.
pub fn changes(present: &BTreeMap<String, u32>, attached: &[(String, u32)]) -> Changes {
    let mut changes = Changes::default();
    for (name, index) in attached {
        if present.get(name) != Some(index) {
            changes.detach.push(name.clone());
        }
    }
    for name in present.keys() {
        let still = attached.iter().any(|(n, i)| n == name && present.get(name) == Some(i));
        if !still {
            changes.attach.push(name.clone());
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nat_real_servers_interfaces_are_wanted_beside_the_instances_ones() {
        let wanted = wanted(
            [("eth0".to_string(), "VI_1".to_string())],
            [("eth1".to_string(), "10.0.0.100:80".to_string()), ("eth1".to_string(), "10.0.0.100:443".to_string())],
        );
        assert_eq!(wanted.keys().cloned().collect::<Vec<_>>(), names(&["eth0", "eth1"]));
        assert!(wanted["eth1"].instances.is_empty());
        assert_eq!(wanted["eth1"].describe(), "virtual_server 10.0.0.100:443, virtual_server 10.0.0.100:80");
        assert_eq!(wanted["eth0"].describe(), "vrrp_instance VI_1");
    }

    #[test]
    fn an_interface_re_created_under_a_new_index_is_detached_and_attached_again() {
        let present = BTreeMap::from([("eth0".to_string(), 7), ("eth1".to_string(), 3)]);
        let attached = vec![("eth0".to_string(), 2), ("eth1".to_string(), 3), ("eth2".to_string(), 4)];
        assert_eq!(changes(&present, &attached), Changes { detach: names(&["eth0", "eth2"]), attach: names(&["eth0"]) });
    }

    #[test]
    fn nothing_changes_when_every_wanted_interface_is_attached_at_its_index() {
        let present = BTreeMap::from([("eth0".to_string(), 2)]);
        assert_eq!(changes(&present, &[("eth0".to_string(), 2)]), Changes::default());
    }
}
