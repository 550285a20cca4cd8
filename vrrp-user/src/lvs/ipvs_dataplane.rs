//! `keepxdp run --lb-backend ipvs`: the same plans and checker verdicts, programmed into the
//! kernel's IPVS over generic netlink. The decisions (what to add, edit, delete) are made
//! here against `IpvsOps`; `IpvsSocket` carries them out, a recording fake tests them.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use anyhow::Result;

use super::{
    ServicePlan, ServiceView,
    dataplane::LvsDataplane,
    ipvs::{FwdMethod, IpvsDest, IpvsService, IpvsSocket, Proto, ServiceKey as IpvsKey, Tunnel, attrs::svc_flags},
    plan::{ProtocolKey, ServiceKey},
    tables::InstalledBackend,
};
use crate::config::model::LbKind;

/// The IPVS commands keepxdp sends.
pub trait IpvsOps: Send {
    fn add_service(&mut self, service: &IpvsService) -> Result<()>;
    fn edit_service(&mut self, service: &IpvsService) -> Result<()>;
    fn del_service(&mut self, service: &IpvsService) -> Result<()>;
    fn add_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()>;
    fn edit_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()>;
    fn del_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()>;
}

impl IpvsOps for IpvsSocket {
    fn add_service(&mut self, service: &IpvsService) -> Result<()> {
        Ok(IpvsSocket::add_service(self, service)?)
    }
    fn edit_service(&mut self, service: &IpvsService) -> Result<()> {
        Ok(IpvsSocket::edit_service(self, service)?)
    }
    fn del_service(&mut self, service: &IpvsService) -> Result<()> {
        Ok(IpvsSocket::del_service(self, service)?)
    }
    fn add_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()> {
        Ok(IpvsSocket::add_dest(self, service, dest)?)
    }
    fn edit_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()> {
        Ok(IpvsSocket::edit_dest(self, service, dest)?)
    }
    fn del_dest(&mut self, service: &IpvsService, dest: &IpvsDest) -> Result<()> {
        Ok(IpvsSocket::del_dest(self, service, dest)?)
    }
}

struct Installed {
    plan: ServicePlan,
    service: IpvsService,
    backends: Vec<InstalledBackend>,
}

pub struct IpvsLvs<O> {
    ops: O,
    services: BTreeMap<ServiceKey, Installed>,
}

fn ipvs_service(plan: &ServicePlan) -> IpvsService {
    let protocol = match plan.key.protocol {
        ProtocolKey::Tcp => Proto::Tcp,
        ProtocolKey::Udp => Proto::Udp,
        ProtocolKey::Sctp => Proto::Sctp,
    };
    let mut service = IpvsService::new(IpvsKey::Addr { protocol, addr: plan.key.addr, port: plan.key.port }, &plan.scheduler);
    if let Some(timeout) = plan.persistence {
        service.flags |= svc_flags::PERSISTENT;
        service.timeout = timeout;
    }
    service
}

/// The destinations IPVS should have: up real servers with their weight; down ones with
/// `inhibit_on_failure` at weight 0; other down ones absent (keepalived's rule).
fn wanted_dests(plan: &ServicePlan, backends: &[InstalledBackend]) -> BTreeMap<(IpAddr, u16), IpvsDest> {
    let forwarding = match plan.forwarding {
        LbKind::Dr => FwdMethod::DirectRoute,
        LbKind::Nat => FwdMethod::Masq,
        LbKind::Tun => FwdMethod::Tunnel(Tunnel::default()),
    };
    let mut dests = BTreeMap::new();
    for backend in backends {
        let weight = if backend.up {
            backend.weight()
        } else if backend.plan.inhibit_on_failure {
            0
        } else {
            continue;
        };
        let mut dest = IpvsDest::new(backend.plan.addr, backend.plan.port, forwarding);
        dest.weight = weight;
        dests.insert((backend.plan.addr, backend.plan.port), dest);
    }
    dests
}

impl<O: IpvsOps> IpvsLvs<O> {
    pub fn new(ops: O) -> Self {
        Self { ops, services: BTreeMap::new() }
    }

    /// The commands a change needs, sent in order: additions and edits, then deletions.
    fn sync(&mut self, service: &IpvsService, old: &BTreeMap<(IpAddr, u16), IpvsDest>, new: &BTreeMap<(IpAddr, u16), IpvsDest>) -> Result<()> {
        for (key, dest) in new {
            match old.get(key) {
                None => self.ops.add_dest(service, dest)?,
                Some(previous) if previous != dest => self.ops.edit_dest(service, dest)?,
                Some(_) => {}
            }
        }
        for (key, dest) in old {
            if !new.contains_key(key) {
                self.ops.del_dest(service, dest)?;
            }
        }
        Ok(())
    }

    fn apply_one(&mut self, plan: &ServicePlan) -> Result<()> {
        let service = ipvs_service(plan);
        let (old_dests, mut backends) = match self.services.remove(&plan.key) {
            Some(installed) => {
                if installed.service != service {
                    self.ops.edit_service(&service)?;
                }
                (wanted_dests(&installed.plan, &installed.backends), installed.backends)
            }
            None => {
                self.ops.add_service(&service)?;
                (BTreeMap::new(), Vec::new())
            }
        };
        let previous: BTreeMap<(IpAddr, u16), InstalledBackend> =
            backends.drain(..).map(|b| ((b.plan.addr, b.plan.port), b)).collect();
        let backends: Vec<InstalledBackend> = plan
            .backends
            .iter()
            .map(|p| match previous.get(&(p.addr, p.port)) {
                Some(kept) => InstalledBackend { plan: p.clone(), ..kept.clone() },
                None => InstalledBackend { plan: p.clone(), index: 0, up: !p.starts_down, dynamic_weight: None, drained: false, checkers: Vec::new() },
            })
            .collect();
        let new_dests = wanted_dests(plan, &backends);
        let result = self.sync(&service, &old_dests, &new_dests);
        self.services.insert(plan.key, Installed { plan: plan.clone(), service, backends });
        result
    }
}

impl<O: IpvsOps> LvsDataplane for IpvsLvs<O> {
    fn apply(&mut self, plans: &[ServicePlan]) -> Vec<String> {
        let mut errors = Vec::new();
        let wanted: BTreeSet<ServiceKey> = plans.iter().map(|p| p.key).collect();
        let gone: Vec<ServiceKey> = self.services.keys().filter(|k| !wanted.contains(k)).copied().collect();
        for key in gone {
            let installed = self.services.remove(&key).expect("listed above");
            if let Err(error) = self.ops.del_service(&installed.service) {
                errors.push(format!("removing {key} from IPVS: {error:#}"));
            }
        }
        for plan in plans {
            if let Err(error) = self.apply_one(plan) {
                errors.push(format!("{}: {} in IPVS: {error:#}", plan.at, plan.key));
            }
        }
        errors
    }

    fn set_health(&mut self, service: &str, real: &str, up: bool, weight: Option<u32>) -> Result<bool> {
        let keys: Vec<ServiceKey> = self.services.values().filter(|s| s.plan.name == service).map(|s| s.plan.key).collect();
        let mut changed = false;
        for key in keys {
            let mut installed = self.services.remove(&key).expect("listed above");
            let before = wanted_dests(&installed.plan, &installed.backends);
            for backend in installed.backends.iter_mut().filter(|b| b.plan.name == real) {
                backend.up = up;
                if weight.is_some() {
                    backend.dynamic_weight = weight;
                }
            }
            let after = wanted_dests(&installed.plan, &installed.backends);
            let result = self.sync(&installed.service, &before, &after);
            changed |= before != after;
            self.services.insert(key, installed);
            result?;
        }
        Ok(changed)
    }

    /// IPVS forwards whatever reaches it; a Backup node does not hold the VIP, so nothing does.
    fn set_vrrp_vips(&mut self, _vips: BTreeMap<IpAddr, bool>) -> Result<()> {
        Ok(())
    }

    fn views(&self) -> Vec<ServiceView> {
        self.services
            .values()
            .map(|s| ServiceView {
                key: s.plan.key,
                name: s.plan.name.clone(),
                index: 0,
                forwarding: s.plan.forwarding,
                scheduler: s.plan.scheduler.clone(),
                persistence: s.plan.persistence,
                backends: s.backends.clone(),
                sorry_backend: None,
                quorum: s.plan.quorum,
                hysteresis: s.plan.hysteresis,
                up_weight: s.backends.iter().filter(|b| b.up).map(|b| b.weight() as u64).sum(),
                // Quorum (and with it the sorry server) is followed by the XDP tables only.
                quorum_up: true,
                sorry_in_use: false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::plan::BackendPlan;

    #[derive(Default)]
    struct Recorder(Vec<String>);

    fn dest_text(dest: &IpvsDest) -> String {
        format!("{}:{} w{}", dest.addr, dest.port, dest.weight)
    }

    impl IpvsOps for Recorder {
        fn add_service(&mut self, s: &IpvsService) -> Result<()> {
            self.0.push(format!("add service {} {}", s.scheduler, s.timeout));
            Ok(())
        }
        fn edit_service(&mut self, s: &IpvsService) -> Result<()> {
            self.0.push(format!("edit service {} {}", s.scheduler, s.timeout));
            Ok(())
        }
        fn del_service(&mut self, s: &IpvsService) -> Result<()> {
            self.0.push(format!("del service {}", s.scheduler));
            Ok(())
        }
        fn add_dest(&mut self, _: &IpvsService, d: &IpvsDest) -> Result<()> {
            self.0.push(format!("add dest {}", dest_text(d)));
            Ok(())
        }
        fn edit_dest(&mut self, _: &IpvsService, d: &IpvsDest) -> Result<()> {
            self.0.push(format!("edit dest {}", dest_text(d)));
            Ok(())
        }
        fn del_dest(&mut self, _: &IpvsService, d: &IpvsDest) -> Result<()> {
            self.0.push(format!("del dest {}", dest_text(d)));
            Ok(())
        }
    }

    fn backend(last: u8, inhibit: bool) -> BackendPlan {
        BackendPlan {
            name: format!("10.0.1.{last}:80"),
            addr: format!("10.0.1.{last}").parse().unwrap(),
            port: 80,
            weight: 2,
            starts_down: false,
            inhibit_on_failure: inhibit,
        }
    }

    fn plan(backends: Vec<BackendPlan>, persistence: Option<u32>) -> ServicePlan {
        ServicePlan {
            key: ServiceKey { addr: "10.0.0.100".parse().unwrap(), port: 80, protocol: ProtocolKey::Tcp },
            name: "10.0.0.100:80".into(),
            at: "t.conf:1:1".into(),
            forwarding: LbKind::Dr,
            scheduler: "wlc".into(),
            persistence,
            backends,
            sorry: None,
            quorum: 1,
            hysteresis: 0,
        }
    }

    #[test]
    fn a_new_service_is_added_then_its_real_servers() {
        let mut ipvs = IpvsLvs::new(Recorder::default());
        assert!(ipvs.apply(&[plan(vec![backend(1, false), backend(2, false)], None)]).is_empty());
        assert_eq!(ipvs.ops.0, ["add service wlc 0", "add dest 10.0.1.1:80 w2", "add dest 10.0.1.2:80 w2"]);
    }

    #[test]
    fn a_reload_sends_only_the_differences() {
        let mut ipvs = IpvsLvs::new(Recorder::default());
        ipvs.apply(&[plan(vec![backend(1, false), backend(2, false)], None)]);
        ipvs.ops.0.clear();
        ipvs.apply(&[plan(vec![backend(1, false), backend(3, false)], Some(300))]);
        assert_eq!(ipvs.ops.0, ["edit service wlc 300", "add dest 10.0.1.3:80 w2", "del dest 10.0.1.2:80 w2"]);
        ipvs.ops.0.clear();
        ipvs.apply(&[]);
        assert_eq!(ipvs.ops.0, ["del service wlc"]);
    }

    #[test]
    fn a_failed_real_server_is_removed_or_with_inhibit_on_failure_set_to_weight_0() {
        let mut ipvs = IpvsLvs::new(Recorder::default());
        ipvs.apply(&[plan(vec![backend(1, false), backend(2, true)], None)]);
        ipvs.ops.0.clear();
        assert!(ipvs.set_health("10.0.0.100:80", "10.0.1.1:80", false, None).unwrap());
        assert!(ipvs.set_health("10.0.0.100:80", "10.0.1.2:80", false, None).unwrap());
        assert!(!ipvs.set_health("10.0.0.100:80", "10.0.1.2:80", false, None).unwrap());
        assert!(ipvs.set_health("10.0.0.100:80", "10.0.1.1:80", true, Some(5)).unwrap());
        assert_eq!(ipvs.ops.0, ["del dest 10.0.1.1:80 w2", "edit dest 10.0.1.2:80 w0", "add dest 10.0.1.1:80 w5"]);
    }
}
