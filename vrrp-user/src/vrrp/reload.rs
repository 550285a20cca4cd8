//! What a reload does to the running instances (pure): an instance whose configuration did
//! not change keeps running untouched — same state, same addresses, no advert or gratuitous
//! ARP burst — so a reload never flaps it. Changed ones restart, removed ones stop (priority
//! 0 if Master), new ones start.
use super::instance::InstanceSpec;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub keep: Vec<String>,
    pub restart: Vec<String>,
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

pub fn plan(running: &[InstanceSpec], configured: &[InstanceSpec]) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    for new in configured {
        match running.iter().find(|old| old.name == new.name) {
            Some(old) if old.same_as(new) => plan.keep.push(new.name.clone()),
            Some(_) => plan.restart.push(new.name.clone()),
            None => plan.start.push(new.name.clone()),
        }
    }
    for old in running {
        if !configured.iter().any(|new| new.name == old.name) {
            plan.stop.push(old.name.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;
    use crate::{config::model::VirtualAddress, vrrp::fsm::Version};

    fn spec(name: &str, priority: u8, at: &str) -> InstanceSpec {
        InstanceSpec {
            name: name.into(),
            interface: "eth0".into(),
            ifindex: 2,
            vrid: 51,
            version: Version::V2,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            start_as_master: false,
            auth_pass: None,
            addresses: vec![VirtualAddress {
                address: "10.0.0.1".parse().unwrap(),
                prefix_len: 24,
                brd: None,
                dev: None,
                scope: None,
                label: None,
                options: Vec::new(),
                at: at.into(),
            }],
            routes: Vec::new(),
            rules: Vec::new(),
            source: None,
            unicast_peers: Vec::new(),
            group: Ipv4Addr::new(224, 0, 0, 18).into(),
            family: crate::config::Family::Ipv4,
            v3_checksum_as_v2: false,
            garp_repeat: 5,
            garp_delay: Duration::from_secs(5),
            garp_refresh: None,
            garp_refresh_repeat: 1,
            notify: Default::default(),
            sync_group: None,
            use_vmac: None,
            vmac_xmit_base: false,
        }
    }

    #[test]
    fn an_unchanged_instance_is_kept_even_when_its_lines_moved() {
        let plan = plan(&[spec("A", 100, "k.conf:5:5")], &[spec("A", 100, "k.conf:9:5")]);
        assert_eq!(plan, ReloadPlan { keep: vec!["A".into()], ..Default::default() });
    }

    #[test]
    fn changed_instances_restart_removed_stop_and_new_start() {
        let running = [spec("A", 100, "x"), spec("B", 100, "x"), spec("C", 100, "x")];
        let configured = [spec("A", 100, "x"), spec("B", 150, "x"), spec("D", 100, "x")];
        let plan = plan(&running, &configured);
        assert_eq!(
            plan,
            ReloadPlan {
                keep: vec!["A".into()],
                restart: vec!["B".into()],
                stop: vec!["C".into()],
                start: vec!["D".into()],
            }
        );
    }
}
