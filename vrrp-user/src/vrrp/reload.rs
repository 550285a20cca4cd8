//! What a reload does to the running instances (pure): an instance whose configuration did
//! not change keeps running untouched — same state, same addresses, no advert or gratuitous
//! ARP burst — so a reload never flaps it. One changed in what it advertises or holds
//! (priority, advert_int, addresses...) is updated in place: it keeps its state. One whose
//! identity changed (`InstanceSpec::same_identity`) restarts; removed ones stop (priority 0 if
//! Master), new ones start.
use super::spec::InstanceSpec;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub keep: Vec<String>,
    pub update: Vec<String>,
    pub restart: Vec<String>,
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

pub fn plan(running: &[InstanceSpec], configured: &[InstanceSpec]) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    for new in configured {
        match running.iter().find(|old| old.name == new.name) {
            Some(old) if old.same_as(new) => plan.keep.push(new.name.clone()),
            Some(old) if old.same_identity(new) => plan.update.push(new.name.clone()),
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
    use super::*;
    use crate::vrrp::spec::tests::{spec_v4, vip};

    fn spec(name: &str, priority: u8, at: &str) -> InstanceSpec {
        let mut address = vip("10.0.0.1/24");
        address.at = at.into();
        InstanceSpec { name: name.into(), priority, addresses: vec![address], ..spec_v4() }
    }

    #[test]
    fn an_unchanged_instance_is_kept_even_when_its_lines_moved() {
        let plan = plan(&[spec("A", 100, "k.conf:5:5")], &[spec("A", 100, "k.conf:9:5")]);
        assert_eq!(plan, ReloadPlan { keep: vec!["A".into()], ..Default::default() });
    }

    #[test]
    fn a_new_priority_or_address_updates_in_place_a_new_vrid_restarts_removed_stop_and_new_start() {
        let running = [spec("A", 100, "x"), spec("B", 100, "x"), spec("C", 100, "x"), spec("E", 100, "x"), spec("F", 100, "x")];
        let mut more_addresses = spec("E", 100, "x");
        more_addresses.addresses.push(vip("10.0.0.2/24"));
        let mut new_vrid = spec("F", 100, "x");
        new_vrid.vrid = 52;
        let configured = [spec("A", 100, "x"), spec("B", 150, "x"), spec("D", 100, "x"), more_addresses, new_vrid];
        let plan = plan(&running, &configured);
        assert_eq!(
            plan,
            ReloadPlan {
                keep: vec!["A".into()],
                update: vec!["B".into(), "E".into()],
                restart: vec!["F".into()],
                stop: vec!["C".into()],
                start: vec!["D".into()],
            }
        );
    }
}
