//! Golden tests: for each block kind, a snippet and the model keepxdp must make of it
//! (keepalived's defaults applied). virtual_server and its checkers are covered next to
//! their builder (src/config/build/lvs.rs).
use std::{net::IpAddr, path::Path};

use keepxdp::config::{
    Config, Family, LoadOptions, load_str,
    model::{AuthType, InitialState},
};

fn model(text: &str) -> Config {
    let loaded = load_str(Path::new("t.conf"), text, &LoadOptions { config_id: Some("high".into()), ..Default::default() });
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}");
    loaded.config.unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn global_defs() {
    let config = model(
        "global_defs {\n  router_id LVS_1\n  notification_email {\n    a@example.com\n    b@example.com\n  }\n  notification_email_from lb@example.com\n  smtp_server 192.0.2.25 2525\n  smtp_connect_timeout 30\n  vrrp_mcast_group4 224.0.0.19\n  vrrp_mcast_group6 ff02::13\n  vrrp_version 3\n  vrrp_strict\n  vrrp_garp_master_delay 5\n  vrrp_garp_master_repeat 3\n  vrrp_garp_master_refresh 60\n  vrrp_garp_interval 0.001\n  vrrp_gna_interval 0.000001\n  enable_script_security\n  script_user nobody nogroup\n  vrrp_startup_delay 5.5\n  max_auto_priority\n}\n",
    );
    let global = &config.global_defs;
    assert_eq!(global.router_id.as_deref(), Some("LVS_1"));
    assert_eq!(global.notification_email, ["a@example.com", "b@example.com"]);
    assert_eq!(global.notification_email_from.as_deref(), Some("lb@example.com"));
    assert_eq!(global.smtp_server, Some(keepxdp::config::model::SmtpServer { host: "192.0.2.25".into(), port: 2525 }));
    assert_eq!(global.smtp_connect_timeout, Some(30));
    assert_eq!(global.vrrp_mcast_group4, Some("224.0.0.19".parse().unwrap()));
    assert_eq!(global.vrrp_mcast_group6, Some("ff02::13".parse().unwrap()));
    assert_eq!(global.vrrp_version, Some(3));
    assert!(global.vrrp_strict && global.enable_script_security);
    assert_eq!((global.vrrp_garp_master_delay, global.vrrp_garp_master_repeat, global.vrrp_garp_master_refresh), (Some(5), Some(3), Some(60)));
    assert_eq!(global.vrrp_garp_interval, Some(0.001));
    assert_eq!(global.script_user.as_deref(), Some("nobody nogroup"));
    assert_eq!(global.vrrp_startup_delay, Some(5.5));
    assert_eq!(global.max_auto_priority, Some(-1), "no value means keepalived's -1 (maximum)");
}

#[test]
fn vrrp_instance_with_defaults() {
    let config = model("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.168.200.16\n  }\n}\n");
    let instance = &config.vrrp_instances[0];
    assert_eq!(instance.name, "VI_1");
    assert_eq!(instance.state, InitialState::Backup);
    assert_eq!((instance.priority, instance.advert_int, instance.version), (100, 1.0, 2));
    assert_eq!(instance.family, Family::Ipv4);
    assert!(!instance.nopreempt && instance.accept.is_none());
    let vip = &instance.virtual_ipaddress[0];
    assert_eq!((vip.address, vip.prefix_len), (ip("192.168.200.16"), 32), "keepalived's default prefix is /32");
    assert_eq!(instance.at, "t.conf:1:1");
}

#[test]
fn vrrp_instance_with_everything_implemented() {
    let config = model(concat!(
        "vrrp_script chk { \n script \"/usr/bin/pgrep nginx\"\n}\n",
        "vrrp_track_file tf {\n file /run/tf\n}\n",
        "vrrp_instance VI_9 {\n",
        "  state MASTER\n  interface eth1\n  virtual_router_id 9\n  priority 150\n  advert_int 0.5\n  version 3\n",
        "  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n",
        "  virtual_ipaddress {\n    10.0.0.10/24 brd 10.0.0.255 dev eth1 scope global label eth1:vip\n    10.0.0.11/24 dev eth2 no_track\n  }\n",
        "  virtual_ipaddress_excluded {\n    fd00::10/64\n  }\n",
        "  virtual_routes {\n    10.1.0.0/16 via 10.0.0.1 dev eth1\n  }\n",
        "  virtual_rules {\n    from 10.0.0.10 table 100\n  }\n",
        "  nopreempt\n  preempt_delay 30\n",
        "  unicast_src_ip 10.0.0.2\n  unicast_peer {\n    10.0.0.3\n    10.0.0.4 min_ttl 255\n  }\n",
        "  use_vmac vrrp.9\n  vmac_xmit_base\n  no_accept\n",
        "  track_interface {\n    eth2 weight -20\n    eth3\n  }\n",
        "  track_script {\n    chk weight 10 reverse\n  }\n",
        "  track_file {\n    tf weight 5\n  }\n",
        "  notify /etc/keepalived/notify.sh\n  notify_master \"/bin/echo master\"\n",
        "  smtp_alert\n  garp_master_delay 2\n  garp_master_repeat 4\n  garp_master_refresh 30\n  garp_master_refresh_repeat 2\n",
        "  dont_track_primary\n  v3_checksum_as_v2\n  strict_mode off\n",
        "}\n",
    ));
    let instance = &config.vrrp_instances[0];
    assert_eq!(instance.state, InitialState::Master);
    assert_eq!((instance.priority, instance.advert_int, instance.version), (150, 0.5, 3));
    let auth = instance.authentication.as_ref().unwrap();
    assert_eq!((auth.auth_type, auth.auth_pass.as_deref()), (Some(AuthType::Pass), Some("secret")));
    let vip = &instance.virtual_ipaddress[0];
    assert_eq!((vip.address, vip.prefix_len), (ip("10.0.0.10"), 24));
    assert_eq!(
        (vip.brd.as_deref(), vip.dev.as_deref(), vip.scope.as_deref(), vip.label.as_deref()),
        (Some("10.0.0.255"), Some("eth1"), Some("global"), Some("eth1:vip"))
    );
    assert!(instance.virtual_ipaddress[1].no_track && instance.virtual_ipaddress[1].options.is_empty());
    assert_eq!(instance.virtual_ipaddress_excluded[0].address, ip("fd00::10"));
    assert_eq!(instance.virtual_routes[0].words, ["10.1.0.0/16", "via", "10.0.0.1", "dev", "eth1"]);
    assert_eq!(instance.virtual_rules[0].words, ["from", "10.0.0.10", "table", "100"]);
    assert!(instance.nopreempt);
    assert_eq!(instance.preempt_delay, Some(30.0));
    assert_eq!(instance.unicast_src_ip, Some(ip("10.0.0.2")));
    assert_eq!(instance.unicast_peer, [ip("10.0.0.3"), ip("10.0.0.4")]);
    assert_eq!(instance.use_vmac.as_deref(), Some("vrrp.9"));
    assert!(instance.vmac_xmit_base);
    assert_eq!(instance.accept, Some(false));
    let interfaces = &instance.tracking.track_interface;
    assert_eq!((interfaces[0].name.as_str(), interfaces[0].weight, interfaces[1].weight), ("eth2", Some(-20), None));
    let script = &instance.tracking.track_script[0];
    assert_eq!((script.name.as_str(), script.weight, script.reverse), ("chk", Some(10), true));
    assert_eq!(instance.tracking.track_file[0].weight, Some(5));
    assert_eq!(instance.notify.notify.as_deref(), Some("/etc/keepalived/notify.sh"));
    assert_eq!(instance.notify.notify_master.as_deref(), Some("/bin/echo master"));
    assert_eq!(instance.smtp_alert, Some(true));
    assert_eq!(
        (instance.garp_master_delay, instance.garp_master_repeat, instance.garp_master_refresh, instance.garp_master_refresh_repeat),
        (Some(2), Some(4), Some(30), Some(2))
    );
    assert!(instance.dont_track_primary && instance.v3_checksum_as_v2);
    assert_eq!(instance.strict_mode, Some(false));
}

#[test]
fn an_ipv6_instance_runs_vrrp_version_3() {
    let config = model("vrrp_instance V6 {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  fd00::7/64\n }\n}\n");
    let instance = &config.vrrp_instances[0];
    assert_eq!((instance.family, instance.version), (Family::Ipv6, 3));
    assert_eq!(instance.virtual_ipaddress[0].prefix_len, 64);
}

#[test]
fn global_vrrp_version_is_the_instances_default() {
    let config = model("global_defs {\n vrrp_version 3\n}\nvrrp_instance A {\n interface e\n virtual_router_id 1\n advert_int 0.25\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    assert_eq!((config.vrrp_instances[0].version, config.vrrp_instances[0].advert_int), (3, 0.25));
}

#[test]
fn vrrp_sync_group() {
    let config = model(concat!(
        "vrrp_sync_group VG_1 {\n  group {\n    A\n    B\n  }\n  notify_master /bin/m\n  notify_backup /bin/b\n  notify_fault \"/bin/f x\"\n  smtp_alert\n",
        "  track_interface {\n    eth9\n  }\n}\n",
        "vrrp_instance A {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
        "vrrp_instance B {\n interface e\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n",
    ));
    let group = &config.vrrp_sync_groups[0];
    assert_eq!(group.name, "VG_1");
    assert_eq!(group.group, ["A", "B"]);
    assert_eq!(group.notify.notify_fault.as_deref(), Some("/bin/f x"));
    assert_eq!(group.smtp_alert, Some(true));
    assert_eq!(group.tracking.track_interface[0].name, "eth9");
}

#[test]
fn vrrp_script() {
    let config = model("vrrp_script chk_haproxy {\n  script \"killall -0 haproxy\"\n  interval 2\n  timeout 3\n  weight -20\n  rise 2\n  fall 3\n  user nobody\n  init_fail\n}\n");
    let script = &config.vrrp_scripts[0];
    assert_eq!(script.script.as_deref(), Some("killall -0 haproxy"));
    assert_eq!((script.interval, script.timeout, script.weight), (2.0, Some(3.0), -20));
    assert_eq!((script.rise, script.fall), (2, 3));
    assert_eq!(script.user.as_deref(), Some("nobody"));
    assert!(script.init_fail);
    let defaults = model("vrrp_script c {\n script /bin/true\n}\n").vrrp_scripts[0].clone();
    assert_eq!((defaults.interval, defaults.weight, defaults.rise, defaults.fall), (1.0, 0, 1, 1));
}

#[test]
fn vrrp_track_process_and_file() {
    let config = model(concat!(
        "vrrp_track_process nginx {\n  process nginx -g daemon\n  param_match initial\n  weight 10 reverse\n  quorum 2\n  quorum_max 4\n  delay 1.5\n}\n",
        "vrrp_track_file maint {\n  file /run/keepalived/maint\n  weight -2\n  init_file 0 overwrite\n}\n",
    ));
    let process = &config.vrrp_track_processes[0];
    assert_eq!((process.process.as_deref(), process.parameters.as_deref()), (Some("nginx"), Some("-g daemon")));
    assert_eq!(process.param_match.as_deref(), Some("initial"));
    assert_eq!((process.weight, process.weight_reverse, process.quorum, process.quorum_max), (10, true, 2, Some(4)));
    assert_eq!(process.delay, Some(1.5));
    let file = &config.vrrp_track_files[0];
    assert_eq!((file.file.as_deref(), file.weight), (Some("/run/keepalived/maint"), -2));
    assert_eq!(file.init_file.as_deref(), Some("0 overwrite"));
}

#[test]
fn static_ipaddress_routes_and_rules() {
    let config = model("static_ipaddress {\n  192.168.1.98/24 dev eth0 scope global\n}\nstatic_routes {\n  192.168.2.0/24 via 192.168.1.100 dev eth0\n}\nstatic_rules {\n  from 192.168.2.0/24 table 1\n}\n");
    assert_eq!(config.static_ipaddress[0].address, ip("192.168.1.98"));
    assert_eq!(config.static_ipaddress[0].dev.as_deref(), Some("eth0"));
    assert_eq!(config.static_routes[0].words[0], "192.168.2.0/24");
    assert_eq!(config.static_rules[0].words, ["from", "192.168.2.0/24", "table", "1"]);
}

#[test]
fn includes_conditionals_and_parameters_resolve_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(dir.path().join("conf.d/a.conf"), "vrrp_instance A {\n interface $IF\n virtual_router_id 1\n@high priority 200\n@^high priority 50\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n").unwrap();
    std::fs::write(dir.path().join("conf.d/b.conf"), "vrrp_instance B {\n interface ${IF}\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n").unwrap();
    let main = dir.path().join("keepalived.conf");
    std::fs::write(&main, "$IF=eth7\ninclude conf.d/*.conf\n").unwrap();
    for (id, priority) in [("high", 200), ("low", 50)] {
        let loaded = keepxdp::config::load(&main, &LoadOptions { config_id: Some(id.into()), ..Default::default() });
        assert!(!loaded.diagnostics.has_errors(), "{:?}", loaded.diagnostics.items);
        let config = loaded.config.unwrap();
        assert_eq!(config.vrrp_instances.len(), 2);
        assert_eq!(config.vrrp_instances[0].interface.as_deref(), Some("eth7"));
        assert_eq!(config.vrrp_instances[1].interface.as_deref(), Some("eth7"));
        assert_eq!(config.vrrp_instances[0].priority, priority, "config id {id}");
        assert!(config.vrrp_instances[0].at.ends_with("conf.d/a.conf:1:1"), "{}", config.vrrp_instances[0].at);
    }
}

#[test]
fn a_direct_routing_real_server_gets_the_virtual_port_as_in_keepalived() {
    let loaded = load_str(
        Path::new("t.conf"),
        "virtual_server 10.0.0.1 80 {\n  lb_kind DR\n  protocol TCP\n  real_server 10.0.0.5 8080 {\n    TCP_CHECK {\n    }\n  }\n}\n",
        &LoadOptions::default(),
    );
    assert_eq!(
        loaded.diagnostics.items.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        ["t.conf:4:3: warning: real_server 10.0.0.5 port 8080 differs from virtual server 10.0.0.1 port 80; DR cannot change ports, so it is reset to 80 as keepalived does"]
    );
    assert_eq!(loaded.config.unwrap().virtual_servers[0].real_servers[0].port, Some(80));
}
