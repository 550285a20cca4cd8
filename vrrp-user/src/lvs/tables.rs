//! The controller's picture of the balancer's maps, and the only code that decides what to
//! write to them (through the `LvsMaps` seam, faked in tests).
//!
//! Order of writes keeps every packet on a valid path: backends before the ring that names
//! them, the ring before the service entry that points at it; a backend is marked dead only
//! after the ring stopped naming it. Rings are diffed: a slot is written only when its backend
//! changes, and then it remembers the previous one (`ring_slot(new, old)`) so flows that
//! predate the change can go back there (second chance in the XDP program).
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use anyhow::{Result, bail};
use serde::Serialize;
use vrrp_common::{
    guard::{FAMILY_IPV4, FAMILY_IPV6},
    lvs::{
        BACKEND_ALIVE, BACKEND_RESOLVED, Backend, FWD_DR, FWD_NAT, FWD_TUN, LvsConfig, MAX_BACKENDS, MAX_VIPS,
        NO_BACKEND, RealServerKey, RealServerVip, SERVICE_PERSISTENT, SERVICE_PROBES, SERVICE_SLOTS, SERVICE_SOURCE_HASH,
        Service, ring_current,
        ring_slot, service_slot_hash,
    },
};

use super::{
    maglev::{self, MaglevBackend},
    plan::{BackendPlan, ServiceKey, ServicePlan, hashes_source_only},
    quorum::{self, QuorumEvent, QuorumInput},
};
use crate::{bpf::{LvsLimits, LvsMaps}, check::status::CheckerStatus, config::model::LbKind};

mod drain;
pub use drain::DrainTarget;

fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes = v6.octets(),
    }
    bytes
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { FAMILY_IPV4 } else { FAMILY_IPV6 }
}

/// A sorry server's backend entry: always alive (it only gets connections when the ring is empty).
fn sorry_backend(plan: &BackendPlan, index: u32) -> InstalledBackend {
    InstalledBackend { plan: plan.clone(), index, up: true, dynamic_weight: None, drained: false, checkers: Vec::new() }
}

#[derive(Debug, Clone, Serialize)]
pub struct InstalledBackend {
    pub plan: BackendPlan,
    pub index: u32,
    /// What its checkers say (true when it has none).
    pub up: bool,
    /// MISC_CHECK `misc_dynamic` weight, overriding the configured one.
    pub dynamic_weight: Option<u32>,
    /// `keepxdp lvs drain`: out of the ring (weight 0) with its flows kept, until `undrain`;
    /// carried through reloads while the real server stays in the file.
    pub drained: bool,
    /// Its checkers, for status only: always empty here, filled in by the daemon.
    pub checkers: Vec<CheckerStatus>,
}

impl InstalledBackend {
    /// Its weight for quorum (configured or misc_dynamic): a drain does not change quorum.
    pub fn weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.plan.weight)
    }
    /// The weight it forwards with, as ipvsadm shows it: 0 while drained.
    pub fn forwarding_weight(&self) -> u32 {
        if self.drained { 0 } else { self.weight() }
    }
    /// Takes ring slots: up with a weight, not drained.
    fn in_ring(&self) -> bool {
        self.up && self.forwarding_weight() > 0
    }
    /// May keep its flows: up, or down but inhibited (weight 0 instead of removal).
    fn alive(&self) -> bool {
        self.up || self.plan.inhibit_on_failure
    }
}

#[derive(Debug, Clone)]
struct Installed {
    plan: ServicePlan,
    slot: u32,
    index: u32,
    vip_index: u32,
    backends: Vec<InstalledBackend>,
    sorry: Option<u32>,
    /// The ring has been written once (later rebuilds diff against what the map holds; no
    /// copy is kept: 100 services of 65537 slots would be 26 MB).
    ring_written: bool,
    /// keepalived's `quorum_state_up` (see `quorum`).
    quorum_up: bool,
}

impl Installed {
    /// Sum of the weights of the real servers that are up (keepalived's live weight).
    fn up_weight(&self) -> u64 {
        self.backends.iter().filter(|b| b.up).map(|b| b.weight() as u64).sum()
    }
    /// Quorum is down and there is a sorry server: it alone gets new connections (the ring is
    /// empty, so the data plane sends them to `sorry_backend`).
    fn sorry_in_use(&self) -> bool {
        self.sorry.is_some() && !self.quorum_up
    }
}

/// A quorum change to act on (scripts), from `LvsTables::take_quorum_changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumChange {
    /// The virtual server's name (`ServicePlan::name`).
    pub service: String,
    pub key: ServiceKey,
    pub event: QuorumEvent,
    pub weight: u64,
    pub quorum: u32,
    pub hysteresis: u32,
}

/// What one service looks like now (`keepxdp lvs`, status).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub key: ServiceKey,
    pub name: String,
    pub index: u32,
    pub forwarding: LbKind,
    pub scheduler: String,
    pub persistence: Option<u32>,
    pub backends: Vec<InstalledBackend>,
    pub sorry_backend: Option<u32>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub up_weight: u64,
    pub quorum_up: bool,
    /// Quorum is lost and the sorry server takes the new connections.
    pub sorry_in_use: bool,
}

#[derive(Debug)]
pub struct LvsTables {
    limits: LvsLimits,
    services: BTreeMap<ServiceKey, Installed>,
    used_slots: BTreeSet<u32>,
    used_indexes: BTreeSet<u32>,
    used_backends: BTreeSet<u32>,
    /// Next backend index to try: freed indexes are reused as late as possible, so a stale
    /// conntrack entry rarely meets a new backend under an old index.
    backend_cursor: u32,
    /// VIP → (index in `vip_state`, Master?). VIPs no VRRP instance owns are always Master.
    vips: BTreeMap<IpAddr, (u32, bool)>,
    vrrp_vips: BTreeMap<IpAddr, bool>,
    config: LvsConfig,
    /// Quorum changes not yet taken by the daemon.
    quorum_changes: Vec<QuorumChange>,
    /// `lvs_nat_rs` as written (stateless reverse NAT).
    nat_rs: BTreeMap<RealServerKey, RealServerVip>,
    /// Ambiguous real servers already logged (once each).
    ambiguous_logged: BTreeSet<RealServerKey>,
}

impl LvsTables {
    pub fn new(limits: LvsLimits) -> Self {
        Self {
            limits,
            services: BTreeMap::new(),
            used_slots: BTreeSet::new(),
            used_indexes: BTreeSet::new(),
            used_backends: BTreeSet::new(),
            backend_cursor: 0,
            vips: BTreeMap::new(),
            vrrp_vips: BTreeMap::new(),
            config: LvsConfig::default(),
            quorum_changes: Vec::new(),
            nat_rs: BTreeMap::new(),
            ambiguous_logged: BTreeSet::new(),
        }
    }

    pub fn views(&self) -> Vec<ServiceView> {
        self.services
            .values()
            .map(|s| ServiceView {
                key: s.plan.key,
                name: s.plan.name.clone(),
                index: s.index,
                forwarding: s.plan.forwarding,
                scheduler: s.plan.scheduler.clone(),
                persistence: s.plan.persistence,
                backends: s.backends.clone(),
                sorry_backend: s.sorry,
                quorum: s.plan.quorum,
                hysteresis: s.plan.hysteresis,
                up_weight: s.up_weight(),
                quorum_up: s.quorum_up,
                sorry_in_use: s.sorry_in_use(),
            })
            .collect()
    }

    /// Quorum changes since the last call, in order.
    pub fn take_quorum_changes(&mut self) -> Vec<QuorumChange> {
        std::mem::take(&mut self.quorum_changes)
    }

    /// Re-evaluates a service's quorum (`init`: just installed or reconfigured), logging and
    /// queueing a change. `sorry_was_in_use`: the sorry server was in the pool before.
    fn evaluate_quorum(&mut self, installed: &mut Installed, init: bool, sorry_was_in_use: bool) {
        let plan = &installed.plan;
        let input = QuorumInput {
            weight: installed.up_weight(),
            quorum: plan.quorum,
            hysteresis: plan.hysteresis,
            init,
            has_sorry: installed.sorry.is_some(),
            sorry_in_use: sorry_was_in_use,
        };
        let (up, event) = quorum::evaluate(installed.quorum_up, input);
        installed.quorum_up = up;
        let Some(event) = event else { return };
        let sorry = installed.sorry.is_some() && !up;
        tracing::info!(
            service = %plan.key,
            weight = input.weight,
            quorum = plan.quorum,
            hysteresis = plan.hysteresis,
            sorry_server_in_use = sorry,
            "{}",
            match event {
                QuorumEvent::Gained => "quorum gained",
                QuorumEvent::Lost => "quorum lost",
                QuorumEvent::StartedDown => "starting with quorum down",
            }
        );
        self.quorum_changes.push(QuorumChange {
            service: plan.name.clone(),
            key: plan.key,
            event,
            weight: input.weight,
            quorum: plan.quorum,
            hysteresis: plan.hysteresis,
        });
    }

    /// (index, address) of every real server of every service (no view is built).
    pub fn backend_addrs(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.services.values().flat_map(|s| s.backends.iter().map(|b| (b.index, b.plan.addr)))
    }

    /// The backend index at each slot of a service's ring, as the maps hold it.
    pub fn ring(&self, key: &ServiceKey, maps: &impl LvsMaps) -> Option<Vec<u32>> {
        let installed = self.services.get(key)?;
        let base = installed.index * self.limits.maglev_size;
        (0..self.limits.maglev_size).map(|offset| maps.ring_slot(base + offset).ok().map(ring_current)).collect()
    }

    fn allocate_slot(&self, key: &ServiceKey) -> Result<u32> {
        let start = service_slot_hash(&addr_bytes(key.addr), key.port.to_be(), key.protocol.number(), key.addr.is_ipv6());
        for probe in 0..SERVICE_PROBES {
            let slot = (start + probe) & (SERVICE_SLOTS - 1);
            if !self.used_slots.contains(&slot) {
                return Ok(slot);
            }
        }
        bail!("{key}: its {SERVICE_PROBES} service table slots are taken by other services")
    }

    fn allocate_index(&self, key: &ServiceKey) -> Result<u32> {
        (0..self.limits.max_services)
            .find(|i| !self.used_indexes.contains(i))
            .ok_or_else(|| anyhow::anyhow!("{key}: more than {} services (raise --max-services)", self.limits.max_services))
    }

    fn allocate_backend(&mut self) -> Result<u32> {
        for step in 0..MAX_BACKENDS {
            let index = (self.backend_cursor + step) % MAX_BACKENDS;
            if !self.used_backends.contains(&index) {
                self.used_backends.insert(index);
                self.backend_cursor = (index + 1) % MAX_BACKENDS;
                return Ok(index);
            }
        }
        bail!("more than {MAX_BACKENDS} real servers")
    }

    fn vip_index(&mut self, addr: IpAddr) -> Result<u32> {
        if let Some((index, _)) = self.vips.get(&addr) {
            return Ok(*index);
        }
        let used: BTreeSet<u32> = self.vips.values().map(|(i, _)| *i).collect();
        let index = (0..MAX_VIPS).find(|i| !used.contains(i)).ok_or_else(|| anyhow::anyhow!("more than {MAX_VIPS} VIPs"))?;
        let master = self.vrrp_vips.get(&addr).copied().unwrap_or(true);
        self.vips.insert(addr, (index, !master));
        Ok(index)
    }

    /// Writes one backend entry, keeping the MACs the data plane resolved for the same address.
    fn write_backend(maps: &mut impl LvsMaps, service: u32, backend: &InstalledBackend) -> Result<()> {
        let mut entry = Backend {
            addr: addr_bytes(backend.plan.addr),
            port: backend.plan.port.to_be(),
            family: family(backend.plan.addr),
            flags: if backend.alive() { BACKEND_ALIVE } else { 0 },
            service,
            weight: backend.forwarding_weight(),
            ..Backend::default()
        };
        if let Ok(old) = maps.backend(backend.index)
            && old.flags & BACKEND_RESOLVED != 0
            && old.addr == entry.addr
        {
            entry.flags |= BACKEND_RESOLVED;
            entry.mac = old.mac;
            entry.src_mac = old.src_mac;
            entry.ifindex = old.ifindex;
        }
        maps.put_backend(backend.index, &entry)
    }

    fn service_entry(&self, installed: &Installed) -> Service {
        let plan = &installed.plan;
        let mut flags = match plan.forwarding {
            LbKind::Dr => FWD_DR,
            LbKind::Nat => FWD_NAT,
            LbKind::Tun => FWD_TUN,
        };
        if plan.persistence.is_some() {
            flags |= SERVICE_PERSISTENT;
        } else if hashes_source_only(&plan.scheduler) {
            flags |= SERVICE_SOURCE_HASH;
        }
        Service {
            addr: addr_bytes(plan.key.addr),
            port: plan.key.port.to_be(),
            proto: plan.key.protocol.number(),
            family: family(plan.key.addr),
            index: installed.index,
            ring_base: installed.index * self.limits.maglev_size,
            ring_size: self.limits.maglev_size,
            vip_index: installed.vip_index,
            flags,
            persistence_seconds: plan.persistence.unwrap_or(0),
            sorry_backend: installed.sorry.unwrap_or(NO_BACKEND),
        }
    }

    /// Recomputes a service's ring from its backends in the ring and writes the slots whose
    /// backend changed. Returns how many slots changed.
    fn rebuild_ring(&self, installed: &mut Installed, maps: &mut impl LvsMaps) -> Result<usize> {
        let sorry_in_use = installed.sorry_in_use();
        let members: Vec<&InstalledBackend> = installed.backends.iter().filter(|b| b.in_ring() && !sorry_in_use).collect();
        let maglev_members: Vec<MaglevBackend> = members
            .iter()
            .map(|b| MaglevBackend {
                id: maglev::identity(format!("{} {}:{}", installed.plan.key, b.plan.addr, b.plan.port).as_bytes()),
                weight: b.weight(),
            })
            .collect();
        let new = maglev::populate(&maglev_members, self.limits.maglev_size);
        let base = installed.index * self.limits.maglev_size;
        let fresh = !installed.ring_written;
        let mut changed = 0;
        for (offset, member) in new.iter().enumerate() {
            let backend = if *member == maglev::EMPTY { NO_BACKEND } else { members[*member as usize].index };
            let old = if fresh { 0 } else { maps.ring_slot(base + offset as u32)? };
            let value = if fresh {
                ring_slot(backend, backend)
            } else if ring_current(old) == backend {
                continue;
            } else {
                ring_slot(backend, ring_current(old))
            };
            maps.put_ring_slot(base + offset as u32, value)?;
            changed += 1;
        }
        installed.ring_written = true;
        Ok(changed)
    }

    /// Makes the maps carry exactly `plans`. Services that fail (table full...) are reported
    /// and skipped; the others are applied.
    pub fn apply(&mut self, plans: &[ServicePlan], maps: &mut impl LvsMaps) -> Vec<String> {
        let mut errors = Vec::new();
        let wanted: BTreeSet<ServiceKey> = plans.iter().map(|p| p.key).collect();
        let gone: Vec<ServiceKey> = self.services.keys().filter(|k| !wanted.contains(k)).copied().collect();
        for key in gone {
            if let Err(error) = self.remove(&key, maps) {
                errors.push(format!("removing {key}: {error:#}"));
            }
        }
        for plan in plans {
            let result = if self.services.contains_key(&plan.key) { self.update(plan, maps) } else { self.install(plan, maps) };
            if let Err(error) = result {
                errors.push(format!("{}: {}: {error:#}", plan.at, plan.key));
            }
        }
        if let Err(error) = self.write_nat_rs(maps) {
            errors.push(format!("writing lvs_nat_rs: {error:#}"));
        }
        self.config.nat_services = self.services.values().filter(|s| s.plan.forwarding == LbKind::Nat).count() as u32;
        if let Err(error) = maps.put_config(&self.config) {
            errors.push(format!("writing lvs_config: {error:#}"));
        }
        if let Err(error) = self.write_vip_states(maps) {
            errors.push(format!("writing vip_state: {error:#}"));
        }
        errors
    }

    /// Brings `lvs_nat_rs` to the installed NAT services' unambiguous real servers (new and
    /// changed entries first, then the ones no longer wanted). Each ambiguous real server is
    /// logged once.
    fn write_nat_rs(&mut self, maps: &mut impl LvsMaps) -> Result<()> {
        let inputs: Vec<super::reverse::ReverseInput> = self
            .services
            .values()
            .map(|s| super::reverse::ReverseInput {
                key: s.plan.key,
                name: &s.plan.name,
                forwarding: s.plan.forwarding,
                index: s.index,
                vip_index: s.vip_index,
                real_servers: s.plan.backends.iter().chain(&s.plan.sorry).map(|b| (b.addr, b.port)).collect(),
            })
            .collect();
        let (wanted, ambiguous) = super::reverse::reverse_entries(&inputs);
        for shared in ambiguous {
            if self.ambiguous_logged.insert(shared.key) {
                tracing::warn!(
                    real_server = %std::net::SocketAddr::from(shared.real_server),
                    services = ?shared.services,
                    "this NAT real server belongs to several virtual_servers: its replies are translated only with flow state (no stateless reverse translation)"
                );
            }
        }
        for (key, target) in &wanted {
            if self.nat_rs.get(key) != Some(target) {
                maps.put_nat_rs(key, Some(target))?;
                self.nat_rs.insert(*key, *target);
            }
        }
        let gone: Vec<RealServerKey> = self.nat_rs.keys().filter(|k| !wanted.contains_key(k)).copied().collect();
        for key in gone {
            maps.put_nat_rs(&key, None)?;
            self.nat_rs.remove(&key);
        }
        Ok(())
    }

    /// `lvs_sync_daemon` configured: the balancer reports new NAT flows in `lvs_sync_ring`
    /// (written with the next `apply`).
    pub fn set_sync(&mut self, on: bool) {
        self.config.sync = on as u32;
    }

    /// TUN's outer source addresses.
    pub fn set_tunnel_sources(&mut self, v4: Option<std::net::Ipv4Addr>, v6: Option<std::net::Ipv6Addr>) {
        if let Some(v4) = v4 {
            self.config.tun_src4 = v4.octets();
        }
        if let Some(v6) = v6 {
            self.config.tun_src6 = v6.octets();
        }
    }

    fn install(&mut self, plan: &ServicePlan, maps: &mut impl LvsMaps) -> Result<()> {
        let slot = self.allocate_slot(&plan.key)?;
        let index = self.allocate_index(&plan.key)?;
        let vip_index = self.vip_index(plan.key.addr)?;
        let mut backends = Vec::new();
        for backend_plan in &plan.backends {
            let backend = InstalledBackend {
                plan: backend_plan.clone(),
                index: self.allocate_backend()?,
                up: !backend_plan.starts_down,
                dynamic_weight: None,
                drained: false,
                checkers: Vec::new(),
            };
            Self::write_backend(maps, index, &backend)?;
            backends.push(backend);
        }
        let sorry = self.install_sorry(plan, index, maps)?;
        let mut installed = Installed { plan: plan.clone(), slot, index, vip_index, backends, sorry, ring_written: false, quorum_up: false };
        self.evaluate_quorum(&mut installed, true, false);
        self.rebuild_ring(&mut installed, maps)?;
        maps.put_service(slot, &self.service_entry(&installed))?;
        self.used_slots.insert(slot);
        self.used_indexes.insert(index);
        tracing::info!(service = %plan.key, backends = installed.backends.len(), "service installed");
        self.services.insert(plan.key, installed);
        Ok(())
    }

    /// Allocates and writes a plan's sorry server; its backend index.
    fn install_sorry(&mut self, plan: &ServicePlan, service: u32, maps: &mut impl LvsMaps) -> Result<Option<u32>> {
        let Some(sorry_plan) = &plan.sorry else { return Ok(None) };
        let backend = sorry_backend(sorry_plan, self.allocate_backend()?);
        Self::write_backend(maps, service, &backend)?;
        Ok(Some(backend.index))
    }

    fn update(&mut self, plan: &ServicePlan, maps: &mut impl LvsMaps) -> Result<()> {
        let mut installed = self.services.remove(&plan.key).expect("checked by the caller");
        let mut old: BTreeMap<(IpAddr, u16), InstalledBackend> =
            installed.backends.drain(..).map(|b| ((b.plan.addr, b.plan.port), b)).collect();
        let mut result = Ok(());
        for backend_plan in &plan.backends {
            let backend = match old.remove(&(backend_plan.addr, backend_plan.port)) {
                Some(mut kept) => {
                    kept.plan = backend_plan.clone();
                    kept
                }
                None => match self.allocate_backend() {
                    Ok(index) => InstalledBackend {
                        plan: backend_plan.clone(),
                        index,
                        up: !backend_plan.starts_down,
                        dynamic_weight: None,
                        drained: false,
                        checkers: Vec::new(),
                    },
                    Err(error) => {
                        result = Err(error);
                        continue;
                    }
                },
            };
            Self::write_backend(maps, installed.index, &backend)?;
            installed.backends.push(backend);
        }
        // A changed sorry server is a new one: keepalived puts it in afresh.
        let same_sorry = installed.plan.sorry.as_ref().map(|s| (s.addr, s.port)) == plan.sorry.as_ref().map(|s| (s.addr, s.port));
        let sorry_was_in_use = installed.sorry_in_use() && same_sorry;
        let old_sorry = match (same_sorry, installed.sorry) {
            (true, _) | (false, None) => None,
            (false, Some(old)) => installed.plan.sorry.clone().map(|p| sorry_backend(&p, old)),
        };
        if !same_sorry {
            installed.sorry = self.install_sorry(plan, installed.index, maps)?;
        }
        installed.plan = plan.clone();
        self.evaluate_quorum(&mut installed, true, sorry_was_in_use);
        let changed = self.rebuild_ring(&mut installed, maps)?;
        // Removed real servers: dead only now that the ring no longer names them.
        for gone in old.values() {
            // An empty entry: not alive (its flows move), and gone from `keepxdp lvs`.
            maps.put_backend(gone.index, &Backend::default())?;
            self.used_backends.remove(&gone.index);
        }
        maps.put_service(installed.slot, &self.service_entry(&installed))?;
        if let Some(mut dead) = old_sorry {
            dead.up = false;
            Self::write_backend(maps, installed.index, &dead)?;
            self.used_backends.remove(&dead.index);
        }
        if changed > 0 || !old.is_empty() {
            tracing::info!(service = %plan.key, removed = old.len(), ring_slots_changed = changed, "service updated");
        }
        self.services.insert(plan.key, installed);
        result
    }

    fn remove(&mut self, key: &ServiceKey, maps: &mut impl LvsMaps) -> Result<()> {
        let Some(installed) = self.services.remove(key) else { return Ok(()) };
        maps.put_service(installed.slot, &Service::default())?;
        for backend in &installed.backends {
            maps.put_backend(backend.index, &Backend::default())?;
            self.used_backends.remove(&backend.index);
        }
        if let Some(sorry) = installed.sorry {
            self.used_backends.remove(&sorry);
        }
        self.used_slots.remove(&installed.slot);
        self.used_indexes.remove(&installed.index);
        if !self.services.values().any(|s| s.plan.key.addr == key.addr) {
            self.vips.remove(&key.addr);
        }
        tracing::info!(service = %key, "service removed");
        Ok(())
    }

    /// A checker verdict for real server `real` of every service named `service`. Returns
    /// true when something changed (the ring was rebuilt).
    pub fn set_health(
        &mut self,
        service: &str,
        real: &str,
        up: bool,
        weight: Option<u32>,
        maps: &mut impl LvsMaps,
    ) -> Result<bool> {
        let keys: Vec<ServiceKey> = self.services.values().filter(|s| s.plan.name == service).map(|s| s.plan.key).collect();
        let mut any = false;
        for key in keys {
            let mut installed = self.services.remove(&key).expect("listed above");
            let mut changed = false;
            for backend in installed.backends.iter_mut().filter(|b| b.plan.name == real) {
                if backend.up != up || (weight.is_some() && backend.dynamic_weight != weight) {
                    backend.up = up;
                    if weight.is_some() {
                        backend.dynamic_weight = weight;
                    }
                    changed = true;
                }
            }
            let result = if changed {
                // Alive before the ring names it; dead only after the ring stopped naming it.
                let coming_up: Vec<InstalledBackend> = installed.backends.iter().filter(|b| b.plan.name == real && b.alive()).cloned().collect();
                for backend in &coming_up {
                    Self::write_backend(maps, installed.index, backend)?;
                }
                let sorry_was_in_use = installed.sorry_in_use();
                self.evaluate_quorum(&mut installed, false, sorry_was_in_use);
                let slots = self.rebuild_ring(&mut installed, maps);
                for backend in installed.backends.iter().filter(|b| b.plan.name == real && !b.alive()) {
                    Self::write_backend(maps, installed.index, backend)?;
                }
                tracing::info!(service = %key, real, up, ?weight, ring_slots_changed = slots.as_ref().ok(), "real server health changed");
                slots.map(|_| ())
            } else {
                Ok(())
            };
            self.services.insert(key, installed);
            result?;
            any |= changed;
        }
        Ok(any)
    }

    /// One VIP became local (about to be added) or stopped being local (just removed).
    pub fn set_vip_local(&mut self, addr: IpAddr, local: bool, maps: &mut impl LvsMaps) -> Result<()> {
        if let Some(master) = self.vrrp_vips.get_mut(&addr) {
            *master = local;
            self.write_vip_states(maps)?;
        }
        Ok(())
    }

    /// VRRP's view: for each VIP an instance owns, whether that instance is Master.
    pub fn set_vrrp_vips(&mut self, vrrp_vips: BTreeMap<IpAddr, bool>, maps: &mut impl LvsMaps) -> Result<()> {
        self.vrrp_vips = vrrp_vips;
        self.write_vip_states(maps)
    }

    fn write_vip_states(&mut self, maps: &mut impl LvsMaps) -> Result<()> {
        for (addr, (index, written)) in self.vips.iter_mut() {
            let master = self.vrrp_vips.get(addr).copied().unwrap_or(true);
            if *written != master {
                maps.put_vip_state(*index, master)?;
                *written = master;
                tracing::info!(vip = %addr, master, "balancer forwarding for this VIP {}", if master { "on" } else { "off" });
            }
        }
        Ok(())
    }
}
