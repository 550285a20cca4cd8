//! The pair lab's keepalived.conf, one per node, from the templates beside this file.
use std::time::Duration;

use super::Variant;

pub const DR_TEMPLATE: &str = include_str!("dr.conf");
pub const NAT_TEMPLATE: &str = include_str!("nat.conf");

/// The service ports: HTTP, the line echo, the push stream (real servers listen on the same).
pub const HTTP_PORT: u16 = 80;
pub const ECHO_PORT: u16 = 5000;
pub const STREAM_PORT: u16 = 5001;

/// VRRPv3 advertisement interval of both nodes: failover time scales with it.
pub const ADVERT_INT: Duration = Duration::from_millis(300);

/// The two nodes: (router_id, priority). The first is the preferred Master.
pub const NODES: [(&str, u8); 2] = [("lb1", 150), ("lb2", 100)];

/// RFC 9568 Master_Down_Interval of a Backup of `priority` (v3: 3 × Master_Adver_Interval +
/// Skew_Time, Skew_Time = (256 − priority) × Master_Adver_Interval / 256).
pub fn master_down_interval(priority: u8) -> Duration {
    ADVERT_INT * 3 + ADVERT_INT * (256 - u32::from(priority)) / 256
}

/// The keepalived.conf of node `node` (0 or 1) for `variant`, real servers at `real_servers`.
pub fn node_config(variant: Variant, node: usize, real_servers: &[&str]) -> String {
    let (name, priority) = NODES[node];
    let template = match variant {
        Variant::Dr => DR_TEMPLATE,
        Variant::Nat => NAT_TEMPLATE,
    };
    let blocks = |port: u16, checker: &str| -> String {
        real_servers
            .iter()
            .map(|ip| format!("  real_server {ip} {port} {{\n    weight 1\n{checker}  }}\n"))
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    let http_get = "    HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }\n";
    template
        .replace("@NODE@", name)
        .replace("@PRIORITY@", &priority.to_string())
        .replace("@ADVERT_INT@", &format!("{:.2}", ADVERT_INT.as_secs_f64()))
        .replace("@HTTP_SERVERS@", &blocks(HTTP_PORT, http_get))
        .replace("@ECHO_SERVERS@", &blocks(ECHO_PORT, ""))
        .replace("@STREAM_SERVERS@", &blocks(STREAM_PORT, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_and_the_nodes_differ_only_in_name_and_priority() {
        for variant in [Variant::Dr, Variant::Nat] {
            let (a, b) = (node_config(variant, 0, &["10.0.0.11"]), node_config(variant, 1, &["10.0.0.11"]));
            assert!(!a.contains('@') && !b.contains('@'), "{a}");
            assert!(a.contains("priority 150") && b.contains("priority 100"));
            assert_eq!(a.replace("lb1", "lb2").replace("priority 150", "priority 100"), b);
            assert_eq!(a.matches("real_server 10.0.0.11").count(), 3);
            assert!(a.contains("advert_int 0.30"));
        }
    }

    #[test]
    fn master_down_interval_of_the_backup() {
        assert_eq!(master_down_interval(100).as_millis(), 1082);
    }
}
