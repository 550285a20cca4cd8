//! What a scrape shows: the daemon's status document (VRRP instances, checkers) and the
//! pinned maps (guard counters, balancer counters, flow tables), as metric families.
use prometheus::{Encoder, TextEncoder, proto::MetricFamily};
use serde_json::Value;

use super::families::Families;
use crate::{
    bpf::{FlowTables, GuardStatRow, LvsTable},
    check::status::LATENCY_BUCKETS,
    observe::connections::nat_connections_per_backend,
};

/// One scrape's inputs, each read once.
pub struct Snapshot {
    /// The control socket's status document.
    pub status: Value,
    /// The balancer's maps, with checkers added (None: no XDP balancer pins to read).
    pub lvs: Option<LvsTable>,
    pub guard: Vec<GuardStatRow>,
    pub flows: Option<FlowTables>,
}

/// keepalived's numbering (vrrp.h VRRP_STATE_*), as its exporters report it.
fn state_number(state: &str) -> f64 {
    match state {
        "Initialize" => 0.0,
        "Backup" => 1.0,
        "Master" => 2.0,
        "Fault" => 3.0,
        _ => 98.0,
    }
}

/// VRRP discard reasons with a keepalived exporter counter of their own.
const KEEPALIVED_DISCARDS: [(&str, &str, &str); 4] = [
    ("bad_ttl", "keepalived_ip_ttl_errors_total", "Adverts received with a TTL / hop limit other than 255."),
    ("interval_mismatch", "keepalived_advertisements_interval_errors_total", "Adverts received with another advert interval."),
    ("address_mismatch", "keepalived_address_list_errors_total", "Adverts received with another address list."),
    ("auth_mismatch", "keepalived_authentication_mismatch_total", "Adverts received with another authentication."),
];

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

fn vrrp(out: &mut Families, status: &Value) {
    for instance in status["vrrp"].as_array().into_iter().flatten() {
        let labels = [("iname", text(&instance["name"])), ("intf", text(&instance["interface"])), ("vrid", text(&instance["vrid"]))];
        out.gauge("keepalived_vrrp_state", "VRRP state: 0 init, 1 backup, 2 master, 3 fault, 98 stopped.", &labels, state_number(instance["state"].as_str().unwrap_or_default()));
        out.gauge("keepalived_vrrp_base_priority", "Configured priority.", &labels, number(&instance["base_priority"]));
        out.gauge("keepalived_vrrp_effective_priority", "Priority after tracking.", &labels, number(&instance["priority"]));
        out.counter("keepalived_advertisements_sent_total", "Adverts sent.", &labels, number(&instance["adverts_sent"]));
        out.counter("keepalived_advertisements_received_total", "Adverts received (accepted by the guard).", &labels, number(&instance["adverts_received"]));
        out.counter("keepalived_become_master_total", "Transitions to MASTER.", &labels, number(&instance["became_master"]));
        out.counter("keepalived_release_master_total", "Transitions out of MASTER.", &labels, number(&instance["released_master"]));
        out.counter("keepalived_packet_length_errors_total", "Adverts too short or malformed.", &labels, number(&instance["malformed"]));
        let discarded = &instance["discarded"];
        for (reason, name, help) in KEEPALIVED_DISCARDS {
            out.counter(name, help, &labels, number(&discarded[reason]));
        }
        for (reason, count) in discarded.as_object().into_iter().flatten() {
            let mut labels = labels.to_vec();
            labels.push(("reason", reason.clone()));
            out.counter("keepxdp_vrrp_discarded_total", "Adverts the instance discarded, by reason.", &labels, number(count));
        }
    }
}

fn guard(out: &mut Families, rows: &[GuardStatRow]) {
    for row in rows {
        for (reason, count) in &row.counts {
            let labels = [
                ("intf", row.interface.clone().unwrap_or_else(|| row.ifindex.to_string())),
                ("family", row.family.to_string()),
                ("vrid", row.vrid.to_string()),
                ("reason", reason.to_string()),
            ];
            out.counter("keepxdp_guard_packets_total", "VRRP packets the XDP guard saw, by verdict.", &labels, *count as f64);
        }
    }
}

fn lvs(out: &mut Families, table: &LvsTable, flows: Option<&FlowTables>) {
    let active = flows.map(nat_connections_per_backend).unwrap_or_default();
    for service in &table.services {
        let proto = service.protocol.clone();
        let vip = [("local_address", service.address.ip().to_string()), ("local_port", service.address.port().to_string()), ("proto", proto.clone())];
        out.counter("keepalived_lvs_vip_conn_total", "New connections to the virtual server.", &vip, service.connections as f64);
        out.counter("keepalived_lvs_vip_in_packets_total", "Packets to the virtual server.", &vip, service.packets as f64);
        out.counter("keepalived_lvs_vip_in_bytes_total", "Bytes to the virtual server.", &vip, service.bytes as f64);
        out.gauge("keepxdp_lvs_vip_master", "1 while this node forwards the virtual server (VRRP Master for its VIP).", &vip, service.master as u8 as f64);
        let d = &service.drops;
        for (reason, count) in [("no_backend", d.no_backend), ("unresolved", d.unresolved), ("not_master", d.not_master), ("encap_failed", d.encap_failed), ("sorry", d.sorry)] {
            let mut labels = vip.to_vec();
            labels.push(("reason", reason.to_string()));
            out.counter("keepxdp_lvs_vip_not_forwarded_total", "Packets to the virtual server not forwarded to a real server (or sent to the sorry server), by reason.", &labels, count as f64);
        }
        for backend in &service.backends {
            let labels = [
                ("local_address", service.address.ip().to_string()),
                ("local_port", service.address.port().to_string()),
                ("remote_address", backend.address.ip().to_string()),
                ("remote_port", backend.address.port().to_string()),
                ("proto", proto.clone()),
                ("local_mark", String::new()),
            ];
            out.counter("keepalived_lvs_rs_conn_total", "New connections to the real server.", &labels, backend.connections as f64);
            out.counter("keepalived_lvs_rs_in_packets_total", "Packets forwarded to the real server.", &labels, backend.packets as f64);
            out.counter("keepalived_lvs_rs_in_bytes_total", "Bytes forwarded to the real server.", &labels, backend.bytes as f64);
            out.gauge("node_ipvs_backend_weight", "The real server's weight.", &labels, backend.weight as f64);
            out.gauge("keepxdp_lvs_rs_up", "1 while the data plane may send the real server flows.", &labels, backend.alive as u8 as f64);
            if service.forwarding == "Masq" {
                out.gauge("node_ipvs_backend_connections_active", "NAT connections in the flow table (DR/TUN keep no per-connection state).", &labels, active.get(&backend.index).copied().unwrap_or(0) as f64);
            }
            for checker in &backend.checkers {
                let mut labels = labels.to_vec();
                labels.push(("checker", text(&checker["name"])));
                out.gauge("keepxdp_checker_up", "1 while the checker declares its real server up.", &labels, (checker["up"] == true) as u8 as f64);
                out.counter("keepxdp_checker_flips_total", "Up/down changes the checker declared.", &labels, number(&checker["flips"]));
                let histogram = &checker["latency_histogram"];
                let counts: Vec<u64> = histogram["buckets"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
                if counts.len() == LATENCY_BUCKETS.len() {
                    out.histogram(
                        "keepxdp_checker_probe_duration_seconds",
                        "How long the checker's probes took.",
                        &labels,
                        &LATENCY_BUCKETS,
                        &counts,
                        number(&histogram["sum_seconds"]),
                        histogram["count"].as_u64().unwrap_or(0),
                    );
                }
            }
        }
    }
    out.counter("keepxdp_lvs_nat_inserted_total", "Entries the data plane wrote to lvs_nat (minus the entries: what its LRU evicted).", &[], table.inserted.nat as f64);
    out.counter("keepxdp_lvs_conntrack_inserted_total", "Entries the data plane wrote to lvs_conntrack.", &[], table.inserted.conntrack as f64);
    for (reason, count) in &table.reasons {
        out.counter("keepxdp_lvs_unmatched_total", "Frames the balancer saw before any service matched, by what it did.", &[("reason", reason.clone())], *count as f64);
    }
}

fn flows(out: &mut Families, flows: &FlowTables) {
    out.gauge("keepxdp_lvs_conntrack_entries", "Entries in lvs_conntrack (persistence, flows on changed ring slots).", &[], flows.conntrack_entries as f64);
    out.gauge("keepxdp_lvs_conntrack_capacity", "lvs_conntrack's size (--conntrack-entries).", &[], flows.conntrack_capacity as f64);
    out.gauge("keepxdp_lvs_nat_entries", "Entries in lvs_nat (two per NAT connection).", &[], flows.nat_entries as f64);
    out.gauge("keepxdp_lvs_nat_capacity", "lvs_nat's size (--nat-entries).", &[], flows.nat_capacity as f64);
}

/// The NAT state sync daemon (`lvs_sync` in the status document), when configured.
fn sync(out: &mut Families, status: &Value) {
    let sync = &status["lvs_sync"];
    if !sync.is_object() {
        return;
    }
    let labels = [("intf", text(&sync["interface"])), ("iname", text(&sync["vrrp_instance"])), ("syncid", text(&sync["sync_id"]))];
    out.gauge("keepxdp_lvs_sync_master", "1 while this node is Master for the sync instance (sending).", &labels, (sync["master"] == true) as u8 as f64);
    out.counter("keepxdp_lvs_sync_sent_entries_total", "Flow entries sent to the sync group (new flows and dumps).", &labels, number(&sync["sent_entries"]));
    out.counter("keepxdp_lvs_sync_sent_bytes_total", "UDP payload bytes sent to the sync group.", &labels, number(&sync["sent_bytes"]));
    out.counter("keepxdp_lvs_sync_received_entries_total", "Flow entries received from the sync group.", &labels, number(&sync["received_entries"]));
    out.counter("keepxdp_lvs_sync_installed_total", "Synced flows written into the flow tables (new ones).", &labels, number(&sync["installed_new"]));
    for (reason, field) in [
        ("table_full", "not_installed_table_full"),
        ("unknown_service", "not_installed_unknown_service"),
        ("unsupported", "not_installed_unsupported"),
        ("error", "install_errors"),
    ] {
        let mut labels = labels.to_vec();
        labels.push(("reason", reason.to_string()));
        out.counter("keepxdp_lvs_sync_not_installed_total", "Synced flows this node could not install, by why.", &labels, number(&sync[field]));
    }
    out.counter("keepxdp_lvs_sync_malformed_total", "Sync datagrams dropped as malformed.", &labels, number(&sync["malformed"]));
}

pub fn families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    let mut out = Families::default();
    out.gauge("keepalived_up", "1: keepxdp answers.", &[], 1.0);
    vrrp(&mut out, &snapshot.status);
    sync(&mut out, &snapshot.status);
    guard(&mut out, &snapshot.guard);
    if let Some(table) = &snapshot.lvs {
        lvs(&mut out, table, snapshot.flows.as_ref());
    }
    if let Some(tables) = &snapshot.flows {
        flows(&mut out, tables);
    }
    out.into_vec()
}

/// The text exposition format (version 0.0.4).
pub fn encode(snapshot: &Snapshot) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec fails only on a malformed family, which `Families` never builds.
    let _ = TextEncoder::new().encode(&families(snapshot), &mut buffer);
    String::from_utf8(buffer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{BackendRow, ServiceRow, ServiceStatsRow};

    fn snapshot() -> Snapshot {
        let status = serde_json::json!({"vrrp": [{"name": "VI_1", "interface": "eth0", "vrid": 51, "state": "Master", "base_priority": 100,
            "priority": 150, "adverts_sent": 9, "adverts_received": 3, "became_master": 1, "released_master": 0, "malformed": 0,
            "discarded": {"bad_ttl": 2, "auth_mismatch": 1}}],
            "lvs_sync": {"interface": "eth1", "vrrp_instance": "VI_2", "sync_id": 52, "master": false, "sent_entries": 0, "sent_bytes": 0,
                "received_entries": 120, "installed_new": 100, "not_installed_table_full": 15, "malformed": 2}});
        let checker = serde_json::json!({"name": "TCP_CHECK at k.conf:5", "up": true, "flips": 2,
            "latency_histogram": {"buckets": [1, 2, 0, 0, 0, 0, 0, 0, 0, 0], "sum_seconds": 0.004, "count": 3}});
        let table = LvsTable {
            services: vec![ServiceRow {
                protocol: "TCP".into(),
                address: "10.0.0.100:80".parse().unwrap(),
                forwarding: "Masq".into(),
                persistence_seconds: None,
                master: true,
                connections: 5,
                packets: 50,
                bytes: 5000,
                drops: ServiceStatsRow { no_backend: 0, unresolved: 1, not_master: 0, encap_failed: 0, sorry: 0 },
                backends: vec![BackendRow {
                    index: 0,
                    address: "10.1.0.11:8080".parse().unwrap(),
                    weight: 3,
                    alive: true,
                    resolved: true,
                    ring_slots: 7,
                    connections: 5,
                    packets: 50,
                    bytes: 5000,
                    checkers: vec![checker],
                }],
            }],
            reasons: vec![("nat_reverse".into(), 40)],
            inserted: Default::default(),
        };
        let guard = crate::bpf::rows_from_counts(
            [(vrrp_common::guard::GuardStatKey::new(2, 51, vrrp_common::guard::FAMILY_IPV4, vrrp_common::guard::GuardReason::BadTtl), 4)],
            |_| Some("eth0".into()),
        );
        Snapshot { status, lvs: Some(table), guard, flows: Some(FlowTables { nat_entries: 4, nat_capacity: 262144, ..FlowTables::default() }) }
    }

    #[test]
    fn keepalived_and_node_exporter_names_and_labels() {
        let text = encode(&snapshot());
        let rs = r#"local_address="10.0.0.100",local_port="80",remote_address="10.1.0.11",remote_port="8080",proto="TCP",local_mark="""#;
        for line in [
            "# TYPE keepalived_vrrp_state gauge",
            r#"keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="51"} 2"#,
            r#"keepalived_vrrp_effective_priority{iname="VI_1",intf="eth0",vrid="51"} 150"#,
            "# TYPE keepalived_advertisements_received_total counter",
            r#"keepalived_advertisements_received_total{iname="VI_1",intf="eth0",vrid="51"} 3"#,
            r#"keepalived_ip_ttl_errors_total{iname="VI_1",intf="eth0",vrid="51"} 2"#,
            r#"keepxdp_vrrp_discarded_total{iname="VI_1",intf="eth0",vrid="51",reason="auth_mismatch"} 1"#,
            r#"keepalived_lvs_vip_in_packets_total{local_address="10.0.0.100",local_port="80",proto="TCP"} 50"#,
            &format!("keepalived_lvs_rs_in_bytes_total{{{rs}}} 5000"),
            &format!("node_ipvs_backend_weight{{{rs}}} 3"),
            &format!("node_ipvs_backend_connections_active{{{rs}}} 0"),
            &format!(r#"keepxdp_checker_probe_duration_seconds_bucket{{{rs},checker="TCP_CHECK at k.conf:5",le="0.0025"}} 3"#),
            &format!(r#"keepxdp_checker_probe_duration_seconds_count{{{rs},checker="TCP_CHECK at k.conf:5"}} 3"#),
            r#"keepxdp_lvs_unmatched_total{reason="nat_reverse"} 40"#,
            "keepxdp_lvs_nat_entries 4",
            r#"keepxdp_lvs_sync_master{intf="eth1",iname="VI_2",syncid="52"} 0"#,
            r#"keepxdp_lvs_sync_installed_total{intf="eth1",iname="VI_2",syncid="52"} 100"#,
            r#"keepxdp_lvs_sync_not_installed_total{intf="eth1",iname="VI_2",syncid="52",reason="table_full"} 15"#,
            r#"keepxdp_lvs_sync_malformed_total{intf="eth1",iname="VI_2",syncid="52"} 2"#,
            r#"keepxdp_guard_packets_total{intf="eth0",family="ipv4",vrid="51",reason="bad_ttl"} 4"#,
            r#"keepxdp_guard_packets_total{intf="eth0",family="ipv4",vrid="51",reason="accepted"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(text.matches("# TYPE keepalived_vrrp_state").count(), 1, "one family per name");
    }
}
