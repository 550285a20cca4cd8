//! The NAT pair with keepalived's IPVS sync daemon line (`lvs_sync_daemon eth0 VI_1`) and a
//! fourth NAT service, VIP:5002, on the push stream's real servers (:5001): each real server
//! address:port then belongs to two NAT services, stateless reverse translation leaves them
//! out, and a stream connection's replies after a failover are translated only if the new
//! Master has the flow's state — synced.
use super::{Variant, config};

/// The second NAT service on the stream's real servers.
pub const SHARED_PORT: u16 = 5002;

/// Node `node`'s keepalived.conf: the NAT template, plus the sync daemon and the service
/// sharing the stream's real servers.
pub fn node_config(node: usize) -> String {
    unsynced_node_config(node).replacen("global_defs {\n", "global_defs {\n  lvs_sync_daemon eth0 VI_1\n", 1)
}

/// The same without `lvs_sync_daemon`: the control case, where the streams' replies meet a
/// new Master with no state.
pub fn unsynced_node_config(node: usize) -> String {
    let reals = Variant::Nat.real_servers();
    let base = config::node_config(Variant::Nat, node, &reals);
    let shared: String = reals.iter().map(|ip| format!("  real_server {ip} {} {{\n    weight 1\n  }}\n", config::STREAM_PORT)).collect();
    format!(
        "{base}\n! The stream's real servers again, behind another port: shared by two NAT services.\nvirtual_server {} {SHARED_PORT} {{\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP\n{shared}}}\n",
        super::VIP
    )
}

/// The sync daemon's counters in a `keepxdp status --json` document.
pub fn counter(status: &serde_json::Value, name: &str) -> u64 {
    status["lvs_sync"][name].as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_config_names_the_daemon_and_shares_the_stream_real_servers() {
        let text = node_config(1);
        assert!(text.contains("global_defs {\n  lvs_sync_daemon eth0 VI_1\n  router_id lb2"), "{text}");
        assert_eq!(text.matches("real_server 10.1.0.11 5001").count(), 2);
        assert!(text.contains("virtual_server 10.0.0.100 5002"));
        assert_eq!(unsynced_node_config(1), text.replace("  lvs_sync_daemon eth0 VI_1\n", ""));
    }
}
