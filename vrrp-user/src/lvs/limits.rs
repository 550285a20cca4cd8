//! Whether a configuration's services fit the data plane's maps, checked before anything is
//! written: at start (keepxdp refuses to run) and on reload (the reload is refused and the
//! running configuration kept). Each error names the virtual_server that does not fit.
use std::collections::BTreeSet;

use vrrp_common::lvs::{MAX_BACKENDS, MAX_VIPS};

use super::ServicePlan;
use crate::bpf::LvsLimits;

/// Errors only for what does not fit (several when several limits are exceeded).
pub fn over_limits(plans: &[ServicePlan], limits: &LvsLimits) -> Vec<String> {
    let mut errors = Vec::new();
    if plans.len() > limits.max_services as usize {
        let first = &plans[limits.max_services as usize];
        errors.push(format!(
            "virtual_server {} at {}: {} services configured, the data plane holds {} (raise --max-services)",
            first.name,
            first.at,
            plans.len(),
            limits.max_services
        ));
    }
    let mut real_servers = 0usize;
    for plan in plans {
        real_servers += plan.backends.len() + usize::from(plan.sorry.is_some());
        if real_servers > MAX_BACKENDS as usize {
            errors.push(format!(
                "virtual_server {} at {}: more than {MAX_BACKENDS} real servers in all (lvs_backends is full from this one on)",
                plan.name, plan.at
            ));
            break;
        }
    }
    let mut vips = BTreeSet::new();
    for plan in plans {
        vips.insert(plan.key.addr);
        if vips.len() > MAX_VIPS as usize {
            errors.push(format!("virtual_server {} at {}: more than {MAX_VIPS} VIPs in all (vip_state)", plan.name, plan.at));
            break;
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::model::LbKind,
        lvs::{BackendPlan, ServiceKey, plan::ProtocolKey},
    };

    fn plan(last: u8, backends: usize) -> ServicePlan {
        ServicePlan {
            key: ServiceKey { addr: format!("10.0.0.{last}").parse().unwrap(), port: 80, protocol: ProtocolKey::Tcp },
            name: format!("10.0.0.{last}:80"),
            at: format!("keepalived.conf:{last}:1"),
            forwarding: LbKind::Dr,
            scheduler: "wrr".into(),
            persistence: None,
            backends: (0..backends)
                .map(|i| BackendPlan {
                    name: format!("10.1.{}.{}:80", i / 250, i % 250),
                    addr: format!("10.1.{}.{}", i / 250, i % 250).parse().unwrap(),
                    port: 80,
                    weight: 1,
                    starts_down: false,
                    inhibit_on_failure: false,
                })
                .collect(),
            sorry: None,
            quorum: 1,
            hysteresis: 0,
        }
    }

    #[test]
    fn the_first_service_beyond_max_services_is_named() {
        let limits = LvsLimits { max_services: 2, ..LvsLimits::default() };
        assert!(over_limits(&[plan(1, 3), plan(2, 3)], &limits).is_empty());
        let errors = over_limits(&[plan(1, 3), plan(2, 3), plan(3, 3)], &limits);
        assert_eq!(
            errors,
            ["virtual_server 10.0.0.3:80 at keepalived.conf:3:1: 3 services configured, the data plane holds 2 (raise --max-services)"]
        );
    }

    #[test]
    fn more_real_servers_than_the_backend_table_holds_are_named() {
        let limits = LvsLimits { max_services: 4, maglev_size: 1_000_003, ..LvsLimits::default() };
        let errors = over_limits(&[plan(1, 40000), plan(2, 30000)], &limits);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("virtual_server 10.0.0.2:80 at keepalived.conf:2:1: more than 65535 real servers"), "{errors:?}");
    }
}
