//! What a reload does to the running instances (pure): an instance whose configuration did
//! not change keeps running untouched — same state, same addresses, no advert or gratuitous
//! ARP burst — so a reload never flaps it. Changed ones restart, removed ones stop (priority
//! 0 if Master), new ones start.
use super::spec::InstanceSpec;

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
