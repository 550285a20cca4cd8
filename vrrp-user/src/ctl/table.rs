//! `keepxdp status` for people: the status document as tables.
use std::fmt::Write as _;

use serde_json::Value;

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn status_table(document: &str) -> Result<String, serde_json::Error> {
    let status: Value = serde_json::from_str(document)?;
    let mut out = String::new();
    let now = crate::ops::log::unix_now();
    let _ = writeln!(
        out,
        "keepxdp {} pid {}, up {}, config {}, reloads {}, refused {}",
        text(&status["version"]),
        text(&status["pid"]),
        ago(now, &status["started_at"]),
        text(&status["config"]),
        text(&status["reloads"]),
        text(&status["reloads_refused"])
    );
    if let Some(reason) = status["last_reload_refusal"].as_str() {
        let _ = writeln!(out, "last reload refused: {reason}");
    }
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:>4} {:<7} {:>8}  {:<26} {:>8} {:>8} {:>9}  {}",
        "INSTANCE", "INTERFACE", "VRID", "STATE", "PRIORITY", "MASTER", "SENT", "RECEIVED", "DISCARDED", "LAST CHANGE"
    );
    for instance in status["vrrp"].as_array().into_iter().flatten() {
        let discarded: u64 = instance["discarded"].as_object().map_or(0, |d| d.values().filter_map(Value::as_u64).sum());
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>4} {:<7} {:>8}  {:<26} {:>8} {:>8} {:>9}  {}",
            text(&instance["name"]),
            text(&instance["interface"]),
            text(&instance["vrid"]),
            text(&instance["state"]),
            text(&instance["priority"]),
            text(&instance["master"]),
            text(&instance["adverts_sent"]),
            text(&instance["adverts_received"]),
            discarded,
            match instance["last_transition"] {
                Value::Null => "-".to_string(),
                ref at => format!("{} ago", ago(now, at)),
            }
        );
    }
    for tracker in status["trackers"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "tracked {} {}: {}", text(&tracker["kind"]), text(&tracker["name"]), text(&tracker["reading"]));
    }
    for attachment in status["attachments"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "guard on {} (ifindex {}, {} XDP)", text(&attachment["interface"]), text(&attachment["ifindex"]), text(&attachment["mode"]));
    }
    if status["lvs_sync"].is_object() {
        lvs_sync(&mut out, &status["lvs_sync"]);
    }
    if let Some(services) = status["lvs"].as_array().filter(|s| !s.is_empty()) {
        real_servers(&mut out, services);
    }
    Ok(out)
}

/// The sync daemon: role, what went out, what came in and what could not be installed.
fn lvs_sync(out: &mut String, sync: &Value) {
    let n = |name: &str| sync[name].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "lvs_sync_daemon {} {} id {} group {}: {}; sent {} entries in {} datagrams ({} bytes), {} dumps; received {} entries, {} dumps",
        text(&sync["interface"]),
        text(&sync["vrrp_instance"]),
        text(&sync["sync_id"]),
        text(&sync["group"]),
        if sync["master"] == true { "Master, sending" } else { "installing" },
        n("sent_entries"),
        n("sent_datagrams"),
        n("sent_bytes"),
        n("dumps_sent"),
        n("received_entries"),
        n("dumps_received"),
    );
    let _ = writeln!(
        out,
        "lvs_sync installed {} new, {} refreshed; not installed: {} table full ({} of {} lvs_nat entries), {} unknown service, {} unsupported, {} errors; {} malformed datagrams{}",
        n("installed_new"),
        n("installed_refreshed"),
        n("not_installed_table_full"),
        n("nat_entries"),
        n("nat_capacity"),
        n("not_installed_unknown_service"),
        n("not_installed_unsupported"),
        n("install_errors"),
        n("malformed"),
        sync["last_malformed"].as_str().map(|m| format!(" (last: {m})")).unwrap_or_default(),
    );
}

/// `3d4h`, `2h5m`, `4m10s`, `12s`: from `at` (seconds since the epoch) to `now`.
fn ago(now: f64, at: &Value) -> String {
    let Some(at) = at.as_f64() else { return "-".into() };
    let seconds = (now - at).max(0.0) as u64;
    let (d, h, m, s) = (seconds / 86400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`.
fn service_label(service: &Value) -> String {
    let key = &service["key"];
    let addr = text(&key["addr"]);
    let addr = if addr.contains(':') { format!("[{addr}]") } else { addr };
    format!("{} {addr}:{}", text(&key["protocol"]), text(&key["port"]))
}

fn up_down(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "up",
        Some(false) => "down",
        None => "-",
    }
}

const REAL_SERVER_ROW: usize = 22 + 1 + 22 + 1 + 5 + 1 + 6 + 2;

/// One line per virtual server (its quorum), then the "Real servers" table: one row per real
/// server, its checkers on that row and the ones below.
fn real_servers(out: &mut String, services: &[Value]) {
    let _ = writeln!(out, "Virtual servers");
    for service in services {
        let _ = writeln!(
            out,
            "{} ({}): quorum {}, up weight {} (quorum {}, hysteresis {}){}",
            service_label(service),
            text(&service["name"]),
            up_down(&service["quorum_up"]),
            text(&service["up_weight"]),
            text(&service["quorum"]),
            text(&service["hysteresis"]),
            if service["sorry_in_use"].as_bool() == Some(true) { ", sorry server in use" } else { "" }
        );
    }
    let _ = writeln!(out, "Real servers");
    let _ = writeln!(
        out,
        "{:<22} {:<22} {:<5} {:>6}  {:<30} {:<5} {:>9} {:>5}  LAST ERROR",
        "SERVICE", "REAL SERVER", "STATE", "WEIGHT", "CHECKER", "STATE", "LATENCY", "FLIPS"
    );
    for service in services {
        let label = service_label(service);
        for backend in service["backends"].as_array().into_iter().flatten() {
            let weight = match &backend["dynamic_weight"] {
                Value::Null => text(&backend["plan"]["weight"]),
                dynamic => text(dynamic),
            };
            let row = format!(
                "{:<22} {:<22} {:<5} {:>6}  ",
                label,
                text(&backend["plan"]["name"]),
                up_down(&backend["up"]),
                weight
            );
            let checkers = backend["checkers"].as_array().map(Vec::as_slice).unwrap_or_default();
            if checkers.is_empty() {
                let _ = writeln!(out, "{row}-");
            }
            for (i, checker) in checkers.iter().enumerate() {
                let lead = if i == 0 { row.clone() } else { " ".repeat(REAL_SERVER_ROW) };
                let latency = checker["latency_ms"].as_f64().map_or("-".to_string(), |ms| format!("{ms:.1}ms"));
                let _ = writeln!(
                    out,
                    "{lead}{:<30} {:<5} {:>9} {:>5}  {}",
                    text(&checker["name"]),
                    up_down(&checker["up"]),
                    latency,
                    text(&checker["flips"]),
                    text(&checker["last_error"])
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_and_attachments_become_rows() {
        let document = r#"{"pid":7,"config":"/etc/k.conf","reloads":1,
            "vrrp":[{"name":"VI_1","interface":"eth0","vrid":51,"state":"Master","priority":150,"master":"10.0.0.2",
                     "adverts_sent":9,"adverts_received":3,"discarded":{"bad_ttl":2,"auth_mismatch":1}}],
            "attachments":[{"interface":"eth0","ifindex":2,"mode":"native"}]}"#;
        let table = status_table(document).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "keepxdp - pid 7, up -, config /etc/k.conf, reloads 1, refused -");
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["VI_1", "eth0", "51", "Master", "150", "10.0.0.2", "9", "3", "3", "-"]);
        assert_eq!(lines[3], "guard on eth0 (ifindex 2, native XDP)");
        assert!(!table.contains("Real servers"), "no lvs section without services");
    }

    #[test]
    fn the_sync_daemon_gets_two_lines() {
        let document = r#"{"pid":7,"config":"k.conf","reloads":0,"vrrp":[],
            "lvs_sync":{"interface":"eth1","vrrp_instance":"VI_2","sync_id":52,"group":"224.0.0.81:8848","master":false,
                        "sent_entries":0,"received_entries":120,"dumps_received":1,"installed_new":100,"installed_refreshed":5,
                        "not_installed_table_full":15,"nat_entries":200,"nat_capacity":200,"malformed":2,"last_malformed":"unknown version 9"}}"#;
        let table = status_table(document).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[2], "lvs_sync_daemon eth1 VI_2 id 52 group 224.0.0.81:8848: installing; sent 0 entries in 0 datagrams (0 bytes), 0 dumps; received 120 entries, 1 dumps");
        assert_eq!(lines[3], "lvs_sync installed 100 new, 5 refreshed; not installed: 15 table full (200 of 200 lvs_nat entries), 0 unknown service, 0 unsupported, 0 errors; 2 malformed datagrams (last: unknown version 9)");
    }

    #[test]
    fn version_uptime_refusals_and_last_change() {
        let now = crate::ops::log::unix_now();
        let document = format!(
            r#"{{"version":"0.1.0","pid":7,"config":"k.conf","reloads":2,"reloads_refused":1,"started_at":{},
               "last_reload_refusal":"k.conf cannot be used (1 error(s))",
               "vrrp":[{{"name":"VI_1","state":"Backup","last_transition":{}}}]}}"#,
            now - 3725.0,
            now - 12.0
        );
        let table = status_table(&document).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "keepxdp 0.1.0 pid 7, up 1h2m, config k.conf, reloads 2, refused 1");
        assert_eq!(lines[1], "last reload refused: k.conf cannot be used (1 error(s))");
        assert!(lines[3].ends_with("12s ago") || lines[3].ends_with("13s ago"), "{}", lines[3]);
    }

    #[test]
    fn real_servers_and_their_checkers_golden() {
        let document = r#"{"pid":7,"config":"/etc/k.conf","reloads":0,"vrrp":[],"lvs":[
            {"key":{"addr":"10.0.0.100","port":80,"protocol":"TCP"},"name":"10.0.0.100:80","quorum":2,"hysteresis":0,
             "up_weight":1,"quorum_up":false,"sorry_in_use":true,"backends":[
               {"plan":{"name":"10.0.1.1:80","weight":1},"up":true,"dynamic_weight":null,"checkers":[
                  {"name":"TCP_CHECK at k.conf:5","up":true,"last_error":null,"latency_ms":0.42,"flips":0,"last_flip":null},
                  {"name":"HTTP_GET at k.conf:8","up":true,"last_error":"status 503","latency_ms":12.0,"flips":2,"last_flip":1700000000}]},
               {"plan":{"name":"10.0.1.2:80","weight":3},"up":false,"dynamic_weight":5,"checkers":[
                  {"name":"MISC_CHECK at k.conf:12","up":false,"last_error":"exited with status 1","latency_ms":3.25,"flips":1,"last_flip":1700000000}]},
               {"plan":{"name":"10.0.1.3:80","weight":1},"up":true,"dynamic_weight":null,"checkers":[]}]},
            {"key":{"addr":"2001:db8::1","port":53,"protocol":"UDP"},"name":"[2001:db8::1]:53","quorum":1,"hysteresis":1,
             "up_weight":0,"quorum_up":true,"sorry_in_use":false,"backends":[]}]}"#;
        let table = status_table(document).unwrap();
        let lvs = &table[table.find("Virtual servers").unwrap()..];
        let golden = "\
Virtual servers
TCP 10.0.0.100:80 (10.0.0.100:80): quorum down, up weight 1 (quorum 2, hysteresis 0), sorry server in use
UDP [2001:db8::1]:53 ([2001:db8::1]:53): quorum up, up weight 0 (quorum 1, hysteresis 1)
Real servers
SERVICE                REAL SERVER            STATE WEIGHT  CHECKER                        STATE   LATENCY FLIPS  LAST ERROR
TCP 10.0.0.100:80      10.0.1.1:80            up         1  TCP_CHECK at k.conf:5          up        0.4ms     0  -
                                                            HTTP_GET at k.conf:8           up       12.0ms     2  status 503
TCP 10.0.0.100:80      10.0.1.2:80            down       5  MISC_CHECK at k.conf:12        down      3.2ms     1  exited with status 1
TCP 10.0.0.100:80      10.0.1.3:80            up         1  -
";
        assert_eq!(lvs, golden, "\n{lvs}");
    }
}
