//! The balancer's maps as the controller writes them: one seam (`LvsMaps`); the kernel
//! implementation is `XdpMaps`, an owned handle on the maps (its own descriptors and ring
//! mapping), so the controller can hold it apart from the `Dataplane` that loaded them.
//! `lvs::` decides what to write and is tested with a fake.
use std::os::fd::AsFd;

use anyhow::{Context, Result, anyhow};
use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData},
};
use vrrp_common::{
    lvs::{Backend, LvsConfig, RealServerKey, RealServerVip, Service, VIP_BACKUP, VIP_MASTER},
    pins::{MAP_LVS_BACKENDS, MAP_LVS_CONFIG, MAP_LVS_MAGLEV, MAP_LVS_NAT_RS, MAP_LVS_SERVICES, MAP_VIP_STATE},
};

use super::{Dataplane, ring_memory::RingMemory};

/// Every write the controller makes to the balancer's maps.
pub trait LvsMaps {
    /// Writes (or, with `Service::default()`, empties) one slot of `lvs_services`.
    fn put_service(&mut self, slot: u32, service: &Service) -> Result<()>;
    fn put_backend(&mut self, index: u32, backend: &Backend) -> Result<()>;
    /// The backend entry as the data plane has it (its FIB lookups fill MACs in).
    fn backend(&self, index: u32) -> Result<Backend>;
    /// One ring slot (absolute index in `lvs_maglev`).
    fn put_ring_slot(&mut self, index: u32, value: u32) -> Result<()>;
    fn ring_slot(&self, index: u32) -> Result<u32>;
    fn put_vip_state(&mut self, index: u32, master: bool) -> Result<()>;
    fn put_config(&mut self, config: &LvsConfig) -> Result<()>;
    /// Writes (`Some`) or removes one entry of `lvs_nat_rs` (stateless reverse NAT).
    fn put_nat_rs(&mut self, key: &RealServerKey, target: Option<&RealServerVip>) -> Result<()>;
}

/// The balancer's maps, owned.
pub struct XdpMaps {
    services: Array<MapData, Service>,
    backends: Array<MapData, Backend>,
    vip_state: Array<MapData, u32>,
    config: Array<MapData, LvsConfig>,
    nat_rs: HashMap<MapData, RealServerKey, RealServerVip>,
    rings: RingMemory,
}

/// A new descriptor of the object's array map `name`.
fn array<V: aya::Pod>(object: &Ebpf, name: &str) -> Result<Array<MapData, V>> {
    let data = match object.map(name) {
        Some(Map::Array(data)) => data,
        _ => return Err(anyhow!("the balancer object has no array {name}")),
    };
    let fd = data.fd().as_fd().try_clone_to_owned().with_context(|| format!("duplicating {name}"))?;
    Ok(Array::try_from(Map::Array(MapData::from_fd(fd)?))?)
}

impl XdpMaps {
    /// Handles on the maps of a loaded balancer object whose rings hold `ring_slots` slots.
    pub fn of(object: &Ebpf, ring_slots: u32) -> Result<XdpMaps> {
        let rings = match object.map(MAP_LVS_MAGLEV) {
            Some(Map::Array(data)) => RingMemory::map(data.fd(), ring_slots as usize)?,
            _ => return Err(anyhow!("the balancer object has no array {MAP_LVS_MAGLEV}")),
        };
        Ok(XdpMaps {
            services: array(object, MAP_LVS_SERVICES)?,
            backends: array(object, MAP_LVS_BACKENDS)?,
            vip_state: array(object, MAP_VIP_STATE)?,
            config: array(object, MAP_LVS_CONFIG)?,
            nat_rs: {
                let data = match object.map(MAP_LVS_NAT_RS) {
                    Some(Map::HashMap(data)) => data,
                    _ => return Err(anyhow!("the balancer object has no hash {MAP_LVS_NAT_RS}")),
                };
                let fd = data.fd().as_fd().try_clone_to_owned().context("duplicating lvs_nat_rs")?;
                HashMap::try_from(Map::HashMap(MapData::from_fd(fd)?))?
            },
            rings,
        })
    }
}

impl LvsMaps for XdpMaps {
    fn put_service(&mut self, slot: u32, service: &Service) -> Result<()> {
        self.services.set(slot, *service, 0).with_context(|| format!("writing slot {slot} of {MAP_LVS_SERVICES}"))
    }

    fn put_backend(&mut self, index: u32, backend: &Backend) -> Result<()> {
        self.backends.set(index, *backend, 0).with_context(|| format!("writing backend {index} of {MAP_LVS_BACKENDS}"))
    }

    fn backend(&self, index: u32) -> Result<Backend> {
        Ok(self.backends.get(&index, 0)?)
    }

    fn put_ring_slot(&mut self, index: u32, value: u32) -> Result<()> {
        self.rings.write(index as usize, value)
    }

    fn ring_slot(&self, index: u32) -> Result<u32> {
        self.rings.read(index as usize)
    }

    fn put_vip_state(&mut self, index: u32, master: bool) -> Result<()> {
        let value = if master { VIP_MASTER } else { VIP_BACKUP };
        self.vip_state.set(index, value, 0).with_context(|| format!("writing VIP {index} of {MAP_VIP_STATE}"))
    }

    fn put_config(&mut self, config: &LvsConfig) -> Result<()> {
        self.config.set(0, *config, 0).context("writing lvs_config")
    }

    fn put_nat_rs(&mut self, key: &RealServerKey, target: Option<&RealServerVip>) -> Result<()> {
        match target {
            Some(target) => self.nat_rs.insert(key, target, 0).context("writing lvs_nat_rs"),
            None => match self.nat_rs.remove(key) {
                Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                other => other.context("removing from lvs_nat_rs"),
            },
        }
    }
}

/// Tests and benchmarks write through the `Dataplane` that loaded the maps.
impl LvsMaps for Dataplane {
    fn put_service(&mut self, slot: u32, service: &Service) -> Result<()> {
        self.lvs_maps_mut()?.put_service(slot, service)
    }
    fn put_backend(&mut self, index: u32, backend: &Backend) -> Result<()> {
        self.lvs_maps_mut()?.put_backend(index, backend)
    }
    fn backend(&self, index: u32) -> Result<Backend> {
        self.lvs_maps()?.backend(index)
    }
    fn put_ring_slot(&mut self, index: u32, value: u32) -> Result<()> {
        self.lvs_maps_mut()?.put_ring_slot(index, value)
    }
    fn ring_slot(&self, index: u32) -> Result<u32> {
        self.lvs_maps()?.ring_slot(index)
    }
    fn put_vip_state(&mut self, index: u32, master: bool) -> Result<()> {
        self.lvs_maps_mut()?.put_vip_state(index, master)
    }
    fn put_config(&mut self, config: &LvsConfig) -> Result<()> {
        self.lvs_maps_mut()?.put_config(config)
    }
    fn put_nat_rs(&mut self, key: &RealServerKey, target: Option<&RealServerVip>) -> Result<()> {
        self.lvs_maps_mut()?.put_nat_rs(key, target)
    }
}
