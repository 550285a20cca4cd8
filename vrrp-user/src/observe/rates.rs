//! `keepxdp lvs --rate`: connections, packets and bytes per second from two reads of the
//! counters, laid out like `ipvsadm -Ln --rate`. Only the inbound direction is counted (a DR
//! or TUN balancer never sees the replies; NAT replies are counted together, as
//! `nat_reverse`), so there are no OutPPS/OutBPS columns.
use std::{fmt::Write as _, net::SocketAddr, time::Duration};

use serde::Serialize;

use crate::bpf::LvsTable;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Rate {
    /// New connections per second.
    pub cps: f64,
    /// Packets per second (client → real server).
    pub in_pps: f64,
    /// Bytes per second (client → real server), as ipvsadm's InBPS.
    pub in_bps: f64,
}

impl Rate {
    fn between(before: (u64, u64, u64), after: (u64, u64, u64), seconds: f64) -> Rate {
        let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
        Rate { cps: per_second(before.0, after.0), in_pps: per_second(before.1, after.1), in_bps: per_second(before.2, after.2) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceRate {
    pub protocol: String,
    pub address: SocketAddr,
    pub rate: Rate,
    pub backends: Vec<(SocketAddr, Rate)>,
}

/// Rates of every service and real server in `after` (one missing from `before` counts from
/// zero) over `elapsed`.
pub fn rates(before: &LvsTable, after: &LvsTable, elapsed: Duration) -> Vec<ServiceRate> {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    after
        .services
        .iter()
        .map(|service| {
            let old = before.services.iter().find(|s| s.address == service.address && s.protocol == service.protocol);
            let totals = (service.connections, service.packets, service.bytes);
            let old_totals = old.map_or((0, 0, 0), |s| (s.connections, s.packets, s.bytes));
            let backends = service
                .backends
                .iter()
                .map(|backend| {
                    let old = old.and_then(|s| s.backends.iter().find(|b| b.address == backend.address));
                    let old_totals = old.map_or((0, 0, 0), |b| (b.connections, b.packets, b.bytes));
                    (backend.address, Rate::between(old_totals, (backend.connections, backend.packets, backend.bytes), seconds))
                })
                .collect();
            ServiceRate { protocol: service.protocol.clone(), address: service.address, rate: Rate::between(old_totals, totals, seconds), backends }
        })
        .collect()
}

/// Whole numbers, as ipvsadm prints rates.
pub fn format_rates(rates: &[ServiceRate]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "keepxdp XDP balancer (inbound only: no OutPPS/OutBPS)");
    let _ = writeln!(out, "Prot LocalAddress:Port                 CPS    InPPS    InBPS");
    let _ = writeln!(out, "  -> RemoteAddress:Port");
    let row = |out: &mut String, lead: &str, address: String, rate: &Rate| {
        let _ = writeln!(out, "{lead}{address:<32} {:>6.0} {:>8.0} {:>8.0}", rate.cps, rate.in_pps, rate.in_bps);
    };
    for service in rates {
        row(&mut out, &format!("{:<4} ", service.protocol), service.address.to_string(), &service.rate);
        for (address, rate) in &service.backends {
            row(&mut out, "  -> ", address.to_string(), rate);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{BackendRow, ServiceRow, ServiceStatsRow};

    fn table(counts: &[(u64, u64, u64)]) -> LvsTable {
        let backends: Vec<BackendRow> = counts
            .iter()
            .enumerate()
            .map(|(i, (c, p, b))| BackendRow {
                index: i as u32,
                address: format!("10.0.0.1{}:80", i + 1).parse().unwrap(),
                weight: 1,
                alive: true,
                resolved: true,
                ring_slots: 1,
                connections: *c,
                packets: *p,
                bytes: *b,
                checkers: Vec::new(),
            })
            .collect();
        LvsTable {
            services: vec![ServiceRow {
                protocol: "TCP".into(),
                address: "10.0.0.100:80".parse().unwrap(),
                forwarding: "Route".into(),
                persistence_seconds: None,
                master: true,
                connections: backends.iter().map(|b| b.connections).sum(),
                packets: backends.iter().map(|b| b.packets).sum(),
                bytes: backends.iter().map(|b| b.bytes).sum(),
                drops: ServiceStatsRow { no_backend: 0, unresolved: 0, not_master: 0, encap_failed: 0, sorry: 0 },
                backends,
            }],
            reasons: Vec::new(),
            inserted: Default::default(),
        }
    }

    #[test]
    fn rates_are_deltas_over_the_interval_golden() {
        let before = table(&[(10, 100, 10_000), (0, 0, 0)]);
        let after = table(&[(30, 500, 70_000), (4, 20, 1_200)]);
        let got = rates(&before, &after, Duration::from_secs(2));
        assert_eq!(got[0].rate, Rate { cps: 12.0, in_pps: 210.0, in_bps: 30_600.0 });
        assert_eq!(got[0].backends[1].1, Rate { cps: 2.0, in_pps: 10.0, in_bps: 600.0 });
        let golden = "\
keepxdp XDP balancer (inbound only: no OutPPS/OutBPS)
Prot LocalAddress:Port                 CPS    InPPS    InBPS
  -> RemoteAddress:Port
TCP  10.0.0.100:80                        12      210    30600
  -> 10.0.0.11:80                         10      200    30000
  -> 10.0.0.12:80                          2       10      600
";
        assert_eq!(format_rates(&got), golden);
    }

    #[test]
    fn a_counter_that_went_backwards_counts_as_zero() {
        // A restarted data plane (new maps) starts from zero again.
        let got = rates(&table(&[(50, 50, 50)]), &table(&[(1, 1, 1)]), Duration::from_secs(1));
        assert_eq!(got[0].rate, Rate::default());
    }
}
