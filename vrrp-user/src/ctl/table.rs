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
    let _ = writeln!(out, "keepxdp pid {}, config {}, reloads {}", text(&status["pid"]), text(&status["config"]), text(&status["reloads"]));
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:>4} {:<7} {:>8}  {:<26} {:>8} {:>8} {:>9}",
        "INSTANCE", "INTERFACE", "VRID", "STATE", "PRIORITY", "MASTER", "SENT", "RECEIVED", "DISCARDED"
    );
    for instance in status["vrrp"].as_array().into_iter().flatten() {
        let discarded: u64 = instance["discarded"].as_object().map_or(0, |d| d.values().filter_map(Value::as_u64).sum());
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>4} {:<7} {:>8}  {:<26} {:>8} {:>8} {:>9}",
            text(&instance["name"]),
            text(&instance["interface"]),
            text(&instance["vrid"]),
            text(&instance["state"]),
            text(&instance["priority"]),
            text(&instance["master"]),
            text(&instance["adverts_sent"]),
            text(&instance["adverts_received"]),
            discarded
        );
    }
    for tracker in status["trackers"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "tracked {} {}: {}", text(&tracker["kind"]), text(&tracker["name"]), text(&tracker["reading"]));
    }
    for attachment in status["attachments"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "guard on {} (ifindex {}, {} XDP)", text(&attachment["interface"]), text(&attachment["ifindex"]), text(&attachment["mode"]));
    }
    Ok(out)
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
        assert_eq!(lines[0], "keepxdp pid 7, config /etc/k.conf, reloads 1");
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["VI_1", "eth0", "51", "Master", "150", "10.0.0.2", "9", "3", "3"]);
        assert_eq!(lines[3], "guard on eth0 (ifindex 2, native XDP)");
    }
}
