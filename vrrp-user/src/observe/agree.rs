//! `keepxdp lvs` reads forwarding state from the pinned maps and checker state from the
//! daemon's status document: two reads at two moments. A checker that just declared its real
//! server down is on the status a moment before (or, with the status refreshed every 200 ms,
//! after) the data plane stops naming it. This finds the rows where the two disagree, so the
//! command reads again until they agree instead of printing `Alive no` beside a checker that
//! says `up`.
use serde_json::Value;

use crate::bpf::LvsTable;

/// Real servers whose data plane `Alive` flag is not what their checkers say (alive when
/// every checker is up, or when `inhibit_on_failure` keeps a down one at weight 0).
pub fn disagreements(table: &LvsTable, status: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for service in &table.services {
        for backend in service.backends.iter().filter(|b| !b.checkers.is_empty()) {
            let checkers_up = backend.checkers.iter().all(|c| c["up"] == true);
            let inhibit = inhibit_on_failure(status, &service.address, &backend.address);
            let expected = checkers_up || inhibit;
            if backend.alive != expected {
                out.push(format!(
                    "{} {} -> {}: checkers say {}, data plane {}",
                    service.protocol,
                    service.address,
                    backend.address,
                    if checkers_up { "up" } else { "down" },
                    if backend.alive { "alive" } else { "not alive" }
                ));
            }
        }
    }
    out
}

fn inhibit_on_failure(status: &Value, service: &std::net::SocketAddr, backend: &std::net::SocketAddr) -> bool {
    let same = |addr: &Value, port: &Value, at: &std::net::SocketAddr| {
        addr.as_str().and_then(|a| a.parse::<std::net::IpAddr>().ok()) == Some(at.ip()) && port.as_u64() == Some(at.port() as u64)
    };
    status["lvs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|view| same(&view["key"]["addr"], &view["key"]["port"], service))
        .flat_map(|view| view["backends"].as_array().into_iter().flatten())
        .filter(|b| same(&b["plan"]["addr"], &b["plan"]["port"], backend))
        .any(|b| b["plan"]["inhibit_on_failure"] == true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{BackendRow, ServiceRow, ServiceStatsRow, add_checkers};

    fn table(alive: bool) -> LvsTable {
        LvsTable {
            services: vec![ServiceRow {
                protocol: "TCP".into(),
                address: "10.0.0.100:80".parse().unwrap(),
                forwarding: "Route".into(),
                persistence_seconds: None,
                master: true,
                connections: 0,
                packets: 0,
                bytes: 0,
                drops: ServiceStatsRow { no_backend: 0, unresolved: 0, not_master: 0, encap_failed: 0, sorry: 0 },
                backends: vec![BackendRow {
                    index: 0,
                    address: "10.0.0.11:80".parse().unwrap(),
                    weight: 1,
                    alive,
                    resolved: true,
                    ring_slots: 0,
                    connections: 0,
                    packets: 0,
                    bytes: 0,
                    checkers: Vec::new(),
                }],
            }],
            reasons: Vec::new(),
            inserted: Default::default(),
        }
    }

    fn status(checker_up: bool, inhibit: bool) -> Value {
        serde_json::json!({"lvs": [{"key": {"addr": "10.0.0.100", "port": 80, "protocol": "TCP"}, "backends": [
            {"plan": {"addr": "10.0.0.11", "port": 80, "inhibit_on_failure": inhibit}, "up": checker_up,
             "checkers": [{"name": "TCP_CHECK", "up": checker_up, "flips": 0, "last_error": "Connection refused"}]}]}]})
    }

    #[test]
    fn a_dead_real_server_beside_an_up_checker_is_a_disagreement() {
        // What the issue saw: the map already says not alive, the status is a moment behind.
        let mut stale = table(false);
        add_checkers(&mut stale, &status(true, false));
        assert_eq!(disagreements(&stale, &status(true, false)), ["TCP 10.0.0.100:80 -> 10.0.0.11:80: checkers say up, data plane not alive"]);
        let mut fresh = table(false);
        add_checkers(&mut fresh, &status(false, false));
        assert!(disagreements(&fresh, &status(false, false)).is_empty());
    }

    #[test]
    fn inhibit_on_failure_keeps_a_down_server_alive_and_that_agrees() {
        let mut inhibited = table(true);
        add_checkers(&mut inhibited, &status(false, true));
        assert!(disagreements(&inhibited, &status(false, true)).is_empty());
    }
}
