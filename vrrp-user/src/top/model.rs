//! What `keepxdp top` shows, from two samples a second apart (pure: the reads are in `mod.rs`).
use std::time::Duration;

use serde_json::Value;

use crate::{
    bpf::{GuardStatRow, LvsTable},
    observe::rates::{Rate, rates},
};

/// One read of everything `top` shows.
pub struct Sample {
    /// The status document (None: the daemon did not answer).
    pub status: Option<Value>,
    /// The balancer's maps (None: no XDP balancer pins).
    pub lvs: Option<LvsTable>,
    pub guard: Vec<GuardStatRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    pub name: String,
    pub interface: String,
    pub vrid: String,
    pub state: String,
    pub priority: String,
    pub master: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    /// `TCP 10.0.0.100:80` for a service, `  -> 10.0.0.11:80` for its real servers.
    pub label: String,
    pub up: String,
    pub weight: String,
    pub rate: Rate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    pub instances: Vec<InstanceRow>,
    pub servers: Vec<ServerRow>,
    /// Guard packets per second not accepted (every reason but `accepted`).
    pub guard_drops_per_second: f64,
    pub note: Option<String>,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn guard_drops(rows: &[GuardStatRow]) -> u64 {
    rows.iter().flat_map(|r| r.counts.iter()).filter(|(reason, _)| **reason != "accepted").map(|(_, n)| *n).sum()
}

pub fn screen(before: &Sample, after: &Sample, elapsed: Duration) -> Screen {
    let instances = after
        .status
        .as_ref()
        .and_then(|s| s["vrrp"].as_array())
        .into_iter()
        .flatten()
        .map(|i| InstanceRow {
            name: text(&i["name"]),
            interface: text(&i["interface"]),
            vrid: text(&i["vrid"]),
            state: text(&i["state"]),
            priority: format!("{}/{}", text(&i["priority"]), text(&i["base_priority"])),
            master: text(&i["master"]),
        })
        .collect();
    let mut servers = Vec::new();
    if let (Some(old), Some(new)) = (&before.lvs, &after.lvs) {
        for (service, rate) in new.services.iter().zip(rates(old, new, elapsed)) {
            servers.push(ServerRow {
                label: format!("{} {}", service.protocol, service.address),
                up: if service.master { "master".into() } else { "backup".into() },
                weight: "-".into(),
                rate: rate.rate,
            });
            for (backend, (_, rate)) in service.backends.iter().zip(rate.backends) {
                servers.push(ServerRow {
                    label: format!("  -> {}", backend.address),
                    up: if backend.alive { "up".into() } else { "down".into() },
                    weight: backend.weight.to_string(),
                    rate,
                });
            }
        }
    }
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let guard_drops_per_second = guard_drops(&after.guard).saturating_sub(guard_drops(&before.guard)) as f64 / seconds;
    let note = match (&after.status, &after.lvs) {
        (None, _) => Some("the control socket does not answer: no VRRP instances shown".into()),
        (_, None) => Some("no balancer pins: no services shown".into()),
        _ => None,
    };
    Screen { instances, servers, guard_drops_per_second, note }
}
