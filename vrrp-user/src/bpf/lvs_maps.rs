//! The balancer's maps as the controller writes them: one seam (`LvsMaps`) with the kernel
//! implementation on `Dataplane`; `lvs::` decides what to write and is tested with a fake.
use anyhow::{Context, Result, anyhow};
use aya::maps::{Array, MapData};
use vrrp_common::{
    lvs::{Backend, LvsConfig, Service, VIP_BACKUP, VIP_MASTER},
    pins::{MAP_LVS_BACKENDS, MAP_LVS_CONFIG, MAP_LVS_SERVICES, MAP_VIP_STATE},
};

use super::Dataplane;

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
}

fn array_mut<'a, V: aya::Pod>(dataplane: &'a mut Dataplane, name: &str) -> Result<Array<&'a mut MapData, V>> {
    let map = dataplane.balancer_object().map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?;
    Ok(Array::try_from(map)?)
}

impl LvsMaps for Dataplane {
    fn put_service(&mut self, slot: u32, service: &Service) -> Result<()> {
        array_mut(self, MAP_LVS_SERVICES)?
            .set(slot, *service, 0)
            .with_context(|| format!("writing slot {slot} of {MAP_LVS_SERVICES}"))
    }

    fn put_backend(&mut self, index: u32, backend: &Backend) -> Result<()> {
        array_mut(self, MAP_LVS_BACKENDS)?
            .set(index, *backend, 0)
            .with_context(|| format!("writing backend {index} of {MAP_LVS_BACKENDS}"))
    }

    fn backend(&self, index: u32) -> Result<Backend> {
        let map = self.balancer().map(MAP_LVS_BACKENDS).ok_or_else(|| anyhow!("no map {MAP_LVS_BACKENDS}"))?;
        let array: Array<&MapData, Backend> = Array::try_from(map)?;
        Ok(array.get(&index, 0)?)
    }

    fn put_ring_slot(&mut self, index: u32, value: u32) -> Result<()> {
        self.rings()?.write(index as usize, value)
    }

    fn ring_slot(&self, index: u32) -> Result<u32> {
        self.rings_ref()?.read(index as usize)
    }

    fn put_vip_state(&mut self, index: u32, master: bool) -> Result<()> {
        let value = if master { VIP_MASTER } else { VIP_BACKUP };
        array_mut(self, MAP_VIP_STATE)?
            .set(index, value, 0)
            .with_context(|| format!("writing VIP {index} of {MAP_VIP_STATE}"))
    }

    fn put_config(&mut self, config: &LvsConfig) -> Result<()> {
        array_mut(self, MAP_LVS_CONFIG)?.set(0, *config, 0).context("writing lvs_config")
    }
}
