//! A reload's new configuration applied to a running instance in place (same identity, see
//! `InstanceSpec::same_identity`): it keeps its state. The new priority, advert_int and
//! preempt settings take effect with the next advert and timer (RFC 9568 §6.4 lets a
//! priority change at any time); a Master puts on the virtual addresses, routes and rules the
//! new configuration adds (announcing only those) and takes off those it drops; nothing is
//! re-announced for addresses it keeps.
use super::{Runtime, Tables};
use crate::{
    config::model::VirtualAddress,
    vrrp::{
        fsm::{Machine, State},
        host::Host,
        spec::InstanceSpec,
    },
};

/// Two addresses are the same one when everything but where they were written matches.
fn same_address(a: &VirtualAddress, b: &VirtualAddress) -> bool {
    VirtualAddress { at: String::new(), ..a.clone() } == VirtualAddress { at: String::new(), ..b.clone() }
}

fn missing_from<'a>(these: &'a [VirtualAddress], those: &[VirtualAddress]) -> Vec<&'a VirtualAddress> {
    these.iter().filter(|a| !those.iter().any(|b| same_address(a, b))).collect()
}

impl<T: Tables, H: Host> Runtime<'_, T, H> {
    pub(super) async fn reconfigure(&mut self, machine: Machine, new: InstanceSpec) -> Machine {
        let old = std::mem::replace(&mut self.spec, new);
        self.params.advert_interval = self.spec.advert_interval;
        self.params.preempt = self.spec.preempt;
        self.params.preempt_delay = self.spec.preempt_delay;
        self.params.start_as_master = self.spec.start_as_master;
        // The effective priority follows from the tracking combiner, restarted on the new base.
        self.status.base_priority = self.spec.priority;
        let added: Vec<VirtualAddress> = missing_from(&self.spec.addresses, &old.addresses).into_iter().cloned().collect();
        let removed: Vec<VirtualAddress> = missing_from(&old.addresses, &self.spec.addresses).into_iter().cloned().collect();
        tracing::info!(
            instance = self.spec.name,
            state = ?machine.state,
            priority = self.spec.priority,
            addresses_added = added.len(),
            addresses_removed = removed.len(),
            "configuration changed: applied in place, state kept"
        );
        if machine.state == State::Master {
            self.move_routes(&old).await;
            for address in &removed {
                let Some(place) = self.placement(address) else { continue };
                if let Err(error) = self.table.remove(place.ifindex, address).await {
                    tracing::error!(instance = self.spec.name, %error, "removing a virtual address failed");
                }
            }
            for address in &added {
                let Some(place) = self.placement(address) else { continue };
                match self.table.add(place.ifindex, address).await {
                    Ok(()) => {
                        for _ in 0..self.spec.garp_repeat.max(1) {
                            self.announce_address(address, &place);
                        }
                    }
                    Err(error) => tracing::error!(instance = self.spec.name, %error, "adding a virtual address failed"),
                }
            }
            if self.refresh_at.is_none() || old.garp_refresh != self.spec.garp_refresh {
                self.refresh_at = self.spec.garp_refresh.map(|every| tokio::time::Instant::now() + every);
            }
        }
        self.present = self.seen_addresses();
        machine
    }

    /// A Master's virtual_routes and virtual_rules: those the new configuration drops go,
    /// those it adds come (kept ones are not touched).
    async fn move_routes(&mut self, old: &InstanceSpec) {
        if old.routes == self.spec.routes && old.rules == self.spec.rules {
            return;
        }
        let new = std::mem::replace(&mut self.spec, old.clone());
        let (kept_routes, kept_rules) = (new.routes.clone(), new.rules.clone());
        self.spec.routes.retain(|r| !kept_routes.contains(r));
        self.spec.rules.retain(|r| !kept_rules.contains(r));
        self.apply_routes(false).await;
        self.spec = new;
        let full = (self.spec.routes.clone(), self.spec.rules.clone());
        self.spec.routes.retain(|r| !old.routes.contains(r));
        self.spec.rules.retain(|r| !old.rules.contains(r));
        self.apply_routes(true).await;
        (self.spec.routes, self.spec.rules) = full;
    }
}
