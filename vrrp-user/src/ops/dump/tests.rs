use std::path::Path;

use super::*;
use crate::config::{self, LoadOptions};

const CONFIG: &str = "vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    10.9.9.100/24
  }
}
";

fn instances() -> Vec<(InstanceSpec, InstanceStatus)> {
    let loaded = config::load_str(Path::new("k.conf"), CONFIG, &LoadOptions::default());
    let model = loaded.config.unwrap();
    let spec = InstanceSpec::from_config(&model.vrrp_instances[0], &model.global_defs, None).unwrap();
    let mut status = InstanceStatus::new(&spec);
    status.state = State::Master;
    status.adverts_sent = 3;
    status.became_master = 1;
    status.last_transition = Some(1796188062.071541);
    *status.discarded.entry(DiscardReason::BadTtl).or_default() += 2;
    vec![(spec, status)]
}

fn input(instances: &[(InstanceSpec, InstanceStatus)]) -> DumpInput<'_> {
    DumpInput { pid: 7, config: Path::new("/etc/keepalived/keepalived.conf"), started_at: 1796188000.0, instances, services: &[] }
}

#[test]
fn the_data_dump_has_keepalived_lines_exporters_parse() {
    let instances = instances();
    let text = data_text(&input(&instances));
    for line in [
        "------< VRRP Topology >------",
        " VRRP Instance = VI_1",
        "   State = MASTER",
        "   Wantstate = MASTER",
        "   Interface = eth0",
        "   Virtual Router ID = 51",
        "   Priority = 150",
        "   Advert interval = 1 sec",
        "     10.9.9.100/24 dev eth0 scope global set",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
    }
    assert!(text.contains("   Last transition = 1796188062.071541 ("), "{text}");
}

#[test]
fn the_stats_dump_is_keepalived_layout() {
    let instances = instances();
    let text = stats_text(&input(&instances));
    let head: Vec<&str> = text.lines().take(9).collect();
    assert_eq!(
        head,
        ["VRRP Instance: VI_1", "  Advertisements:", "    Received: 0", "    Sent: 3", "  Became master: 1", "  Released master: 0", "  Packet Errors:", "    Length: 0", "    TTL: 2"]
    );
}

/// The keys keepalived 2.2.7 wrote for a plain IPv4 instance (captured from its JSON dump).
const KEEPALIVED_DATA_KEYS: &str = "iname dont_track_primary skip_check_adv_addr strict_mode vmac_ifname ifp_ifname master_priority last_transition garp_delay garp_refresh garp_rep garp_refresh_rep garp_lower_prio_delay garp_lower_prio_rep lower_prio_no_advert higher_prio_send_advert vrid base_priority effective_priority vipset promote_secondaries adver_int master_adver_int accept nopreempt preempt_delay state wantstate version smtp_alert notify_deleted vips auth_type";
const KEEPALIVED_STATS_KEYS: &str = "advert_rcvd advert_sent become_master release_master packet_len_err advert_interval_err ip_ttl_err invalid_type_rcvd addr_list_err invalid_authtype authtype_mismatch auth_failure pri_zero_rcvd pri_zero_sent";

#[test]
fn the_json_dump_has_keepalived_keys() {
    let instances = instances();
    let dumped: serde_json::Value = serde_json::from_str(&json(&input(&instances))).unwrap();
    let keys = |object: &serde_json::Value| object.as_object().unwrap().keys().cloned().collect::<Vec<_>>().join(" ");
    let mut expected_data: Vec<&str> = KEEPALIVED_DATA_KEYS.split(' ').collect();
    expected_data.sort();
    let mut expected_stats: Vec<&str> = KEEPALIVED_STATS_KEYS.split(' ').collect();
    expected_stats.sort();
    assert_eq!(keys(&dumped[0]["data"]), expected_data.join(" "));
    assert_eq!(keys(&dumped[0]["stats"]), expected_stats.join(" "));
    assert_eq!(dumped[0]["data"]["iname"], "VI_1");
    assert_eq!(dumped[0]["data"]["state"], 2);
    assert_eq!(dumped[0]["data"]["vips"][0], "10.9.9.100/24 dev eth0 scope global set");
    assert_eq!(dumped[0]["stats"]["ip_ttl_err"], 2);
}
