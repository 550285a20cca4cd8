//! `LvsTables` against a fake `LvsMaps`: what reaches the maps, in what order; quorum and
//! the sorry server.
use std::collections::BTreeMap;

use anyhow::Result;
use vrrp_common::lvs::{
    RealServerKey, RealServerVip,
    BACKEND_ALIVE, BACKEND_RESOLVED, Backend, LvsConfig, NO_BACKEND, Service, VIP_MASTER, ring_current,
    ring_previous,
};

use super::{
    plan::{BackendPlan, ProtocolKey, ServiceKey, ServicePlan},
    quorum::QuorumEvent,
    tables::LvsTables,
};
use crate::{
    bpf::{LvsLimits, LvsMaps},
    config::model::LbKind,
};

#[derive(Default)]
pub(super) struct FakeMaps {
    services: BTreeMap<u32, Service>,
    backends: BTreeMap<u32, Backend>,
    ring: BTreeMap<u32, u32>,
    vip_state: BTreeMap<u32, u32>,
    config: LvsConfig,
    /// (map, index) in write order.
    log: Vec<(&'static str, u32)>,
    nat_rs: BTreeMap<RealServerKey, RealServerVip>,
}

impl LvsMaps for FakeMaps {
    fn put_service(&mut self, slot: u32, service: &Service) -> Result<()> {
        self.log.push(("service", slot));
        self.services.insert(slot, *service);
        Ok(())
    }
    fn put_backend(&mut self, index: u32, backend: &Backend) -> Result<()> {
        self.log.push(("backend", index));
        self.backends.insert(index, *backend);
        Ok(())
    }
    fn backend(&self, index: u32) -> Result<Backend> {
        Ok(self.backends.get(&index).copied().unwrap_or_default())
    }
    fn put_ring_slot(&mut self, index: u32, value: u32) -> Result<()> {
        self.log.push(("ring", index));
        self.ring.insert(index, value);
        Ok(())
    }
    fn ring_slot(&self, index: u32) -> Result<u32> {
        Ok(self.ring.get(&index).copied().unwrap_or_default())
    }
    fn put_vip_state(&mut self, index: u32, master: bool) -> Result<()> {
        self.vip_state.insert(index, master as u32);
        Ok(())
    }
    fn put_config(&mut self, config: &LvsConfig) -> Result<()> {
        self.config = *config;
        Ok(())
    }
    fn put_nat_rs(&mut self, key: &RealServerKey, target: Option<&RealServerVip>) -> Result<()> {
        match target {
            Some(target) => self.nat_rs.insert(*key, *target),
            None => self.nat_rs.remove(key),
        };
        Ok(())
    }
}

const RING: u32 = 251;

fn limits() -> LvsLimits {
    LvsLimits { max_services: 4, maglev_size: RING, ..LvsLimits::default() }
}

fn backend(last: u8, weight: u32) -> BackendPlan {
    BackendPlan {
        name: format!("10.0.1.{last}:80"),
        addr: format!("10.0.1.{last}").parse().unwrap(),
        port: 80,
        weight,
        starts_down: false,
        inhibit_on_failure: false,
    }
}

fn service(kind: LbKind, backends: Vec<BackendPlan>) -> ServicePlan {
    ServicePlan {
        key: ServiceKey { addr: "10.0.0.100".parse().unwrap(), port: 80, protocol: ProtocolKey::Tcp },
        name: "10.0.0.100:80".into(),
        at: "test.conf:1:1".into(),
        forwarding: kind,
        scheduler: "wlc".into(),
        persistence: None,
        backends,
        sorry: None,
        quorum: 1,
        hysteresis: 0,
    }
}

fn holders(maps: &FakeMaps) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for value in maps.ring.values() {
        *counts.entry(ring_current(*value)).or_default() += 1;
    }
    counts
}

#[test]
fn a_new_service_is_written_backends_first_then_its_ring_then_the_service_entry() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let errors = tables.apply(&[service(LbKind::Dr, vec![backend(1, 1), backend(2, 1), backend(3, 1)])], &mut maps);
    assert!(errors.is_empty(), "{errors:?}");
    let kinds: Vec<&str> = maps.log.iter().map(|(k, _)| *k).collect();
    let first_ring = kinds.iter().position(|k| *k == "ring").unwrap();
    assert!(kinds[..first_ring].iter().all(|k| *k == "backend"));
    assert_eq!(kinds.last(), Some(&"service"));
    assert_eq!(maps.ring.len(), RING as usize, "a fresh ring writes every slot");
    assert!(maps.ring.values().all(|v| ring_current(*v) == ring_previous(*v)), "fresh slots are stable");
    assert_eq!(holders(&maps).len(), 3);
    let entry = maps.services.values().next().unwrap();
    assert_eq!(entry.ring_size, RING);
    assert_eq!(u16::from_be(entry.port), 80);
    // A VIP no vrrp_instance owns is always forwarded.
    assert_eq!(maps.vip_state.values().copied().collect::<Vec<_>>(), vec![VIP_MASTER]);
}

#[test]
fn removing_a_backend_rewrites_only_the_slots_that_change_and_remembers_the_previous_backend() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    tables.apply(&[service(LbKind::Dr, vec![backend(1, 1), backend(2, 1), backend(3, 1)])], &mut maps);
    let before = maps.ring.clone();
    let gone = maps.backends.iter().find(|(_, b)| b.addr[3] == 3).map(|(i, _)| *i).unwrap();
    maps.log.clear();
    tables.apply(&[service(LbKind::Dr, vec![backend(1, 1), backend(2, 1)])], &mut maps);
    let rewritten = maps.log.iter().filter(|(k, _)| *k == "ring").count();
    let held_by_gone = before.values().filter(|v| ring_current(**v) == gone).count();
    assert!(rewritten >= held_by_gone && rewritten < held_by_gone * 3 / 2 + 5, "{rewritten} vs {held_by_gone}");
    for (slot, value) in &maps.ring {
        if before[slot] != *value {
            assert_eq!(ring_previous(*value), ring_current(before[slot]), "a changed slot remembers its previous backend");
        }
    }
    assert!(!holders(&maps).contains_key(&gone));
    assert_eq!(maps.backends[&gone].flags & BACKEND_ALIVE, 0, "the removed backend is dead");
    let last_ring = maps.log.iter().rposition(|(k, _)| *k == "ring").unwrap();
    let dead_at = maps.log.iter().rposition(|(k, i)| *k == "backend" && *i == gone).unwrap();
    assert!(dead_at > last_ring, "marked dead only after the ring stopped naming it");
}

#[test]
fn a_down_real_server_leaves_the_ring_and_inhibit_on_failure_keeps_its_flows_alive() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let mut inhibited = backend(2, 1);
    inhibited.inhibit_on_failure = true;
    tables.apply(&[service(LbKind::Nat, vec![backend(1, 1), inhibited])], &mut maps);
    let index_of = |maps: &FakeMaps, last: u8| maps.backends.iter().find(|(_, b)| b.addr[3] == last).map(|(i, _)| *i).unwrap();
    let (one, two) = (index_of(&maps, 1), index_of(&maps, 2));
    assert!(tables.set_health("10.0.0.100:80", "10.0.1.1:80", false, None, &mut maps).unwrap());
    assert_eq!(holders(&maps).keys().copied().collect::<Vec<_>>(), vec![two]);
    assert_eq!(maps.backends[&one].flags & BACKEND_ALIVE, 0);
    assert!(tables.set_health("10.0.0.100:80", "10.0.1.2:80", false, None, &mut maps).unwrap());
    assert_eq!(holders(&maps).keys().copied().collect::<Vec<_>>(), vec![NO_BACKEND], "nobody up: empty ring");
    assert_ne!(maps.backends[&two].flags & BACKEND_ALIVE, 0, "inhibited: weight 0, established flows stay");
    assert!(!tables.set_health("10.0.0.100:80", "10.0.1.2:80", false, None, &mut maps).unwrap(), "no change, no rebuild");
    assert!(tables.set_health("10.0.0.100:80", "10.0.1.1:80", true, None, &mut maps).unwrap());
    assert_eq!(holders(&maps).keys().copied().collect::<Vec<_>>(), vec![one]);
    assert_eq!(maps.config.nat_services, 1);
}

#[test]
fn a_rewritten_backend_keeps_the_mac_the_data_plane_resolved() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    tables.apply(&[service(LbKind::Dr, vec![backend(1, 1)])], &mut maps);
    let (index, entry) = maps.backends.iter_mut().next().unwrap();
    let index = *index;
    entry.flags |= BACKEND_RESOLVED;
    entry.mac = [2, 0, 0, 0, 0, 9];
    tables.apply(&[service(LbKind::Dr, vec![backend(1, 5)])], &mut maps);
    assert_eq!(maps.backends[&index].mac, [2, 0, 0, 0, 0, 9]);
    assert_eq!(maps.backends[&index].weight, 5);
}

#[test]
fn a_vip_owned_by_a_backup_instance_is_not_forwarded_until_it_is_master() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let vip = "10.0.0.100".parse().unwrap();
    tables.set_vrrp_vips(BTreeMap::from([(vip, false)]), &mut maps).unwrap();
    tables.apply(&[service(LbKind::Dr, vec![backend(1, 1)])], &mut maps);
    assert_eq!(maps.vip_state.values().copied().collect::<Vec<_>>(), vec![0]);
    tables.set_vrrp_vips(BTreeMap::from([(vip, true)]), &mut maps).unwrap();
    assert_eq!(maps.vip_state.values().copied().collect::<Vec<_>>(), vec![VIP_MASTER]);
}

#[test]
fn more_services_than_the_limit_are_refused_with_a_reason_and_the_rest_applied() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let plans: Vec<ServicePlan> = (0..5)
        .map(|i| {
            let mut plan = service(LbKind::Dr, vec![backend(1, 1)]);
            plan.key.port = 80 + i;
            plan
        })
        .collect();
    let errors = tables.apply(&plans, &mut maps);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("--max-services"), "{}", errors[0]);
    assert_eq!(maps.services.len(), 4);
}

fn with_sorry(mut plan: ServicePlan, quorum: u32) -> ServicePlan {
    let mut sorry = backend(9, 1);
    sorry.name = "sorry 10.0.1.9".into();
    plan.sorry = Some(sorry);
    plan.quorum = quorum;
    plan
}

fn events(tables: &mut LvsTables) -> Vec<QuorumEvent> {
    tables.take_quorum_changes().into_iter().map(|c| c.event).collect()
}

#[test]
fn losing_quorum_with_a_sorry_server_empties_the_ring_and_regaining_it_refills_it() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    tables.apply(&[with_sorry(service(LbKind::Nat, vec![backend(1, 1), backend(2, 1)]), 2)], &mut maps);
    assert_eq!(events(&mut tables), [QuorumEvent::Gained], "keepalived runs quorum_up when it starts with quorum");
    assert_eq!(holders(&maps).len(), 2);
    let sorry = maps.services.values().next().unwrap().sorry_backend;
    assert_ne!(sorry, NO_BACKEND);

    tables.set_health("10.0.0.100:80", "10.0.1.1:80", false, None, &mut maps).unwrap();
    assert_eq!(events(&mut tables), [QuorumEvent::Lost]);
    assert_eq!(holders(&maps).keys().copied().collect::<Vec<_>>(), vec![NO_BACKEND], "the sorry server takes it all");
    let two = maps.backends.iter().find(|(_, b)| b.addr[3] == 2).map(|(i, _)| *i).unwrap();
    assert_ne!(maps.backends[&two].flags & BACKEND_ALIVE, 0, "the server still up keeps its established flows");
    let view = &tables.views()[0];
    assert!(!view.quorum_up && view.sorry_in_use && view.up_weight == 1);

    tables.set_health("10.0.0.100:80", "10.0.1.1:80", true, None, &mut maps).unwrap();
    assert_eq!(events(&mut tables), [QuorumEvent::Gained]);
    assert_eq!(holders(&maps).len(), 2);
    assert!(!tables.views()[0].sorry_in_use);
}

#[test]
fn losing_quorum_without_a_sorry_server_keeps_the_servers_that_are_up() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let mut plan = service(LbKind::Dr, vec![backend(1, 1), backend(2, 1)]);
    plan.quorum = 2;
    plan.hysteresis = 1;
    tables.apply(&[plan], &mut maps);
    assert!(events(&mut tables).is_empty(), "weight 2 < quorum + hysteresis: starts down, silently without a sorry server");
    tables.set_health("10.0.0.100:80", "10.0.1.1:80", false, None, &mut maps).unwrap();
    assert!(events(&mut tables).is_empty(), "already down");
    assert_eq!(holders(&maps).len(), 1, "the server that is up keeps serving");
    tables.set_health("10.0.0.100:80", "10.0.1.1:80", true, Some(2), &mut maps).unwrap();
    assert_eq!(events(&mut tables), [QuorumEvent::Gained], "a misc_dynamic weight counts: 2 + 1 >= 2 + 1");
    tables.set_health("10.0.0.100:80", "10.0.1.2:80", false, None, &mut maps).unwrap();
    assert!(events(&mut tables).is_empty(), "hysteresis: weight 2 is not below 2 - 1");
    tables.set_health("10.0.0.100:80", "10.0.1.1:80", false, None, &mut maps).unwrap();
    assert_eq!(events(&mut tables), [QuorumEvent::Lost]);
}

#[test]
fn a_service_starting_short_of_quorum_with_a_sorry_server_starts_down_and_reloads_quietly() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let mut alpha = backend(1, 1);
    alpha.starts_down = true;
    let plan = with_sorry(service(LbKind::Nat, vec![alpha]), 1);
    tables.apply(std::slice::from_ref(&plan), &mut maps);
    let changes = tables.take_quorum_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].event, changes[0].service.as_str(), changes[0].weight), (QuorumEvent::StartedDown, "10.0.0.100:80", 0));
    assert_eq!(holders(&maps).keys().copied().collect::<Vec<_>>(), vec![NO_BACKEND]);
    tables.apply(std::slice::from_ref(&plan), &mut maps);
    assert!(events(&mut tables).is_empty(), "the same sorry server is already in use");
    let mut other = plan.clone();
    other.sorry.as_mut().unwrap().addr = "10.0.1.8".parse().unwrap();
    let before = maps.services.values().next().unwrap().sorry_backend;
    tables.apply(&[other], &mut maps);
    assert_eq!(events(&mut tables), [QuorumEvent::StartedDown], "a new sorry server goes in afresh");
    let after = maps.services.values().next().unwrap().sorry_backend;
    assert_ne!(after, before);
    assert_eq!(maps.backends[&after].addr[3], 8);
    assert_eq!(maps.backends[&before].flags & BACKEND_ALIVE, 0, "the old sorry server is dead");
}

#[test]
fn a_real_server_whose_mac_changes_in_the_neighbour_table_gets_the_new_mac() {
    use crate::{lvs::dataplane::{LvsDataplane, XdpLvs}, net::Neighbour};
    let mut xdp = XdpLvs::new(LvsTables::new(limits()), FakeMaps::default());
    assert!(xdp.apply(&[service(LbKind::Dr, vec![backend(1, 1)])]).is_empty());
    let addr = "10.0.1.1".parse().unwrap();
    assert_eq!(xdp.unresolved(), vec![addr]);
    let old = Neighbour { mac: [2, 0, 0, 0, 0, 1], ifindex: 2, our_mac: [2, 0, 0, 0, 0, 9] };
    xdp.resolved(addr, old).unwrap();
    assert!(xdp.unresolved().is_empty());
    let mut table = BTreeMap::from([(addr, old)]);
    assert!(xdp.changed_neighbours(&table).is_empty(), "same neighbour: nothing to do");
    let moved = Neighbour { mac: [2, 0, 0, 0, 0, 7], ..old };
    table.insert(addr, moved);
    assert_eq!(xdp.changed_neighbours(&table), vec![addr]);
    xdp.resolved(addr, moved).unwrap();
    let entry = xdp.maps.backends.values().next().unwrap();
    assert_eq!(entry.mac, [2, 0, 0, 0, 0, 7]);
    assert_ne!(entry.flags & BACKEND_RESOLVED, 0);
}

#[test]
fn nat_real_servers_are_written_to_the_stateless_reverse_map_and_removed_with_their_service() {
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    assert!(tables.apply(&[service(LbKind::Nat, vec![backend(1, 1), backend(2, 1)])], &mut maps).is_empty());
    assert_eq!(maps.nat_rs.len(), 2);
    let key = crate::lvs::reverse::real_server_key("10.0.1.1".parse().unwrap(), 80, 6);
    assert_eq!(u16::from_be(maps.nat_rs[&key].vip_port), 80);
    // One real server removed: its entry goes.
    assert!(tables.apply(&[service(LbKind::Nat, vec![backend(2, 1)])], &mut maps).is_empty());
    assert_eq!(maps.nat_rs.len(), 1);
    assert!(!maps.nat_rs.contains_key(&key));
    // DR has no reverse translation.
    assert!(tables.apply(&[service(LbKind::Dr, vec![backend(2, 1)])], &mut maps).is_empty());
    assert!(maps.nat_rs.is_empty());
}

#[test]
fn a_drained_real_server_leaves_the_ring_alive_with_weight_0_through_a_reload_until_undrained() {
    use super::DrainTarget;
    let mut maps = FakeMaps::default();
    let mut tables = LvsTables::new(limits());
    let plan = service(LbKind::Nat, vec![backend(1, 1), backend(2, 1), backend(3, 1)]);
    tables.apply(std::slice::from_ref(&plan), &mut maps);
    let two = maps.backends.iter().find(|(_, b)| b.addr[3] == 2).map(|(i, _)| *i).unwrap();
    let before = maps.ring.clone();
    let target = DrainTarget { service: "10.0.0.100:80".parse().unwrap(), protocol: None, real: "10.0.1.2:80".parse().unwrap() };

    let changed = tables.set_drained(target, true, &mut maps).unwrap();
    assert_eq!(changed.len(), 1);
    assert!(!holders(&maps).contains_key(&two), "out of the ring");
    assert_ne!(maps.backends[&two].flags & BACKEND_ALIVE, 0, "alive: its flows keep reaching it");
    assert_eq!(maps.backends[&two].weight, 0, "weight 0, as ipvsadm -w 0 shows");
    for (slot, value) in &maps.ring {
        if ring_current(before[slot]) == two {
            assert_eq!(ring_previous(*value), two, "a slot it gave up remembers it for running flows");
        }
    }
    let view = tables.views().remove(0);
    assert_eq!(view.up_weight, 3, "a drain leaves quorum alone");
    assert!(tables.set_drained(target, true, &mut maps).unwrap().is_empty(), "drained already: nothing changes");

    tables.apply(std::slice::from_ref(&plan), &mut maps);
    assert!(!holders(&maps).contains_key(&two), "a reload keeps the drain");

    assert_eq!(tables.set_drained(target, false, &mut maps).unwrap().len(), 1);
    assert!(holders(&maps).contains_key(&two), "undrained: back in the ring");
    assert_eq!(maps.backends[&two].weight, 1);

    let elsewhere = DrainTarget { real: "10.0.1.9:80".parse().unwrap(), ..target };
    let error = tables.set_drained(elsewhere, true, &mut maps).unwrap_err().to_string();
    assert!(error.contains("no virtual_server at 10.0.0.100:80 has the real server 10.0.1.9:80"), "{error}");
}
