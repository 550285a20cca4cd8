//! `keepxdp lvs drain VIP:PORT RS:PORT`: a real server out of the ring (weight 0, as
//! `ipvsadm -e -w 0` does) while the flows it carries keep reaching it: it stays alive in
//! `lvs_backends`, so connection state (NAT, changed-slot flows) keeps pointing at it, and the
//! slots it gave up keep it as their previous owner for packets of flows already running.
use std::net::SocketAddr;

use anyhow::{Result, bail};

use super::LvsTables;
use crate::{bpf::LvsMaps, lvs::plan::ProtocolKey};

/// Which real server of which virtual_server(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainTarget {
    pub service: SocketAddr,
    /// None: every protocol with a virtual_server at `service`.
    pub protocol: Option<ProtocolKey>,
    pub real: SocketAddr,
}

impl LvsTables {
    /// Drains (`drained`) or undrains the real server in each matching virtual_server;
    /// returns the virtual_servers changed (already in that state: not listed). An error when
    /// nothing matches.
    pub fn set_drained(&mut self, target: DrainTarget, drained: bool, maps: &mut impl LvsMaps) -> Result<Vec<String>> {
        let keys: Vec<_> = self
            .services
            .values()
            .filter(|s| {
                s.plan.key.addr == target.service.ip()
                    && s.plan.key.port == target.service.port()
                    && target.protocol.is_none_or(|p| p == s.plan.key.protocol)
                    && s.backends.iter().any(|b| b.plan.addr == target.real.ip() && b.plan.port == target.real.port())
            })
            .map(|s| s.plan.key)
            .collect();
        if keys.is_empty() {
            bail!("no virtual_server at {} has the real server {}", target.service, target.real);
        }
        let mut changed = Vec::new();
        for key in keys {
            let mut installed = self.services.remove(&key).expect("listed above");
            let backend = installed
                .backends
                .iter_mut()
                .find(|b| b.plan.addr == target.real.ip() && b.plan.port == target.real.port())
                .expect("filtered above");
            if backend.drained == drained {
                self.services.insert(key, installed);
                continue;
            }
            backend.drained = drained;
            let backend = backend.clone();
            // Weight first when it comes back (alive before the ring names it), after the
            // ring when it goes (the ring stops naming it, then its weight shows 0).
            let result = (|| {
                if !drained {
                    Self::write_backend(maps, installed.index, &backend)?;
                }
                let slots = self.rebuild_ring(&mut installed, maps)?;
                if drained {
                    Self::write_backend(maps, installed.index, &backend)?;
                }
                tracing::info!(service = %key, real = %target.real, drained, ring_slots_changed = slots, "real server {}", if drained { "drained" } else { "undrained" });
                Ok::<_, anyhow::Error>(())
            })();
            self.services.insert(key, installed);
            result?;
            changed.push(key.to_string());
        }
        Ok(changed)
    }
}
