//! Broken configurations: each gives one exact, located diagnostic (among possibly others
//! that follow from it), and nothing panics.
use std::path::Path;

use keepxdp::config::{LoadOptions, load, load_str};

fn diagnostics(text: &str) -> Vec<String> {
    load_str(Path::new("t.conf"), text, &LoadOptions::default())
        .diagnostics
        .items
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn instance(body: &str) -> String {
    format!("vrrp_instance A {{\n interface eth0\n virtual_router_id 51\n{body}\n virtual_ipaddress {{\n  10.0.0.1\n }}\n}}\n")
}

#[track_caller]
fn assert_reports(text: &str, expected: &str) {
    let got = diagnostics(text);
    assert!(got.iter().any(|d| d == expected), "expected\n  {expected}\namong\n  {}\nfor\n{text}", got.join("\n  "));
}

#[test]
fn broken_configurations_report_the_exact_problem_and_position() {
    let cases: Vec<(String, &str)> = vec![
        // Structure
        ("vrrp_instance A {\n interface eth0\n".into(), "t.conf:1:17: error: this `{` is never closed"),
        ("}\n".into(), "t.conf:1:1: error: unexpected `}` with no open block"),
        ("global_defs {\n notify \"/bin/x\n}\n".into(), "t.conf:2:9: error: unterminated quoted string"),
        ("vrrp_instance {\n}\n".into(), "t.conf:1:1: error: `vrrp_instance` needs a name"),
        ("include\n".into(), "t.conf:1:1: error: `include` needs a file name or pattern"),
        ("interface $IFACE\n".into(), "t.conf:1:11: warning: $IFACE is not a defined parameter and is left as written (define it with `$IFACE=value` to substitute it)"),
        // Unknown keywords, with suggestions
        ("vrrp_instanse A {\n}\n".into(), "t.conf:1:1: error: unknown keyword `vrrp_instanse` in the top level; did you mean `vrrp_instance`?"),
        (instance(" priorty 100"), "t.conf:4:2: error: unknown keyword `priorty` in vrrp_instance; did you mean `priority`?"),
        ("global_defs {\n router_di R1\n}\n".into(), "t.conf:2:2: error: unknown keyword `router_di` in global_defs; did you mean `router_id`?"),
        ("global_defs {\n frobnicate_everything 1\n}\n".into(), "t.conf:2:2: error: unknown keyword `frobnicate_everything` in global_defs"),
        // Values
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 0\n}\n".into(), "t.conf:3:20: error: number 0 is outside the range [1, 255]"),
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 0\n}\n".into(), "t.conf:1:1: error: (A) has no `virtual_router_id` (1..255)"),
        ("vrrp_instance A {\n virtual_router_id 9\n}\n".into(), "t.conf:1:1: error: (A) has no `interface`"),
        (instance(" priority 256"), "t.conf:4:11: error: number 256 is outside the range [1, 255]"),
        (instance(" priority 0"), "t.conf:4:11: error: number 0 is outside the range [1, 255]"),
        (instance(" priority"), "t.conf:4:2: error: `priority` needs a value"),
        (instance(" state LEADER"), "t.conf:4:8: error: state must be MASTER or BACKUP, not `LEADER`"),
        (instance(" version 4"), "t.conf:4:10: error: number 4 is outside the range [2, 3]"),
        (instance(" advert_int soon"), "t.conf:4:13: error: `soon` is not a number"),
        (instance(" authentication {\n  auth_type XYZ\n }"), "t.conf:5:13: error: auth_type must be PASS or AH, not `XYZ`"),
        (instance(" authentication"), "t.conf:4:2: error: `authentication` needs a `{ ... }` block"),
        (instance(" unicast_src_ip 10.0.0"), "t.conf:4:17: error: `10.0.0` is not an IP address"),
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.300/24\n }\n}\n".into(), "t.conf:5:3: error: `10.0.0.300/24` is not an IP address"),
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1/33\n }\n}\n".into(), "t.conf:5:3: error: prefix length `/33` of 10.0.0.1 is not in 0..=32"),
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1 scope galaxy\n }\n}\n".into(), "t.conf:5:3: error: scope `galaxy` is not one of site, link, host, nowhere, global or a number"),
        ("global_defs {\n vrrp_mcast_group4 10.0.0.1\n}\n".into(), "t.conf:2:20: error: vrrp_mcast_group4 10.0.0.1 is not an IPv4 multicast address"),
        // keepalived's rules, with its fix-ups
        (instance(" version 3\n advert_int 50"), "t.conf:5:13: error: (A) a VRRPv3 advert_int must be at most 40.95 s; 50 is set to 40.95"),
        (instance(" advert_int 0.5"), "t.conf:4:13: error: (A) a VRRPv2 advert_int must be whole seconds; 0.5 is rounded to 1"),
        (instance(" priority 255\n nopreempt"), "t.conf:5:2: error: (A) nopreempt is incompatible with priority 255 (the address owner always preempts); nopreempt is ignored"),
        ("vrrp_instance A {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1\n  fd00::1/64\n }\n}\n".into(), "t.conf:6:3: error: (A) fd00::1 is not of the instance's address family and is ignored (use virtual_ipaddress_excluded for it)"),
        (format!("{}{}", instance(""), instance("").replace("vrrp_instance A", "vrrp_instance B")), "t.conf:9:1: error: A and B both use VRID 51 with IPv4 on interface eth0"),
        (instance(" track_script {\n  chk_nginx\n }"), "t.conf:5:3: error: (A) track_script `chk_nginx` names no vrrp_script; it is ignored"),
        (instance(" track_script {\n  chk weight 300\n }"), "t.conf:5:14: error: number 300 is outside the range [-253, 253]"),
        ("vrrp_script chk {\n interval 2\n}\n".into(), "t.conf:1:1: error: vrrp_script chk has no `script`"),
        ("vrrp_script chk {\n script /bin/true\n weight -300\n}\n".into(), "t.conf:3:9: error: number -300 is outside the range [-253, 253]"),
        ("vrrp_track_process p {\n process nginx\n param_match fuzzy\n}\n".into(), "t.conf:3:14: error: param_match must be initial, partial or exact, not `fuzzy`"),
        (format!("vrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}", instance("")), "t.conf:1:1: error: vrrp_instance B in sync group G does not exist; it is ignored"),
        (format!("vrrp_sync_group G {{\n group {{\n  A\n }}\n}}\nvrrp_sync_group H {{\n group {{\n  A\n }}\n}}\n{}", instance("")), "t.conf:6:1: error: vrrp_instance A is in sync groups G and H; an instance can be in one only"),
        ("virtual_server group WEB {\n lb_kind DR\n real_server 10.0.0.5 80 {\n }\n}\n".into(), "t.conf:1:1: error: virtual_server group WEB names no virtual_server_group; this virtual server is ignored"),
    ];
    assert!(cases.len() >= 30, "the issue asks for at least 30 broken configs");
    for (text, expected) in &cases {
        assert_reports(text, expected);
    }
}

#[test]
fn a_missing_file_cannot_be_used_and_exits_3() {
    let loaded = load(Path::new("/nonexistent/keepalived.conf"), &LoadOptions::default());
    assert_eq!(
        loaded.diagnostics.items[0].to_string(),
        "/nonexistent/keepalived.conf: error: cannot read the configuration file: No such file or directory (os error 2)"
    );
    assert_eq!(loaded.diagnostics.exit_code(), 3);
    assert!(loaded.runnable().is_none());
}

#[test]
fn an_include_loop_is_fatal_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.conf"), "include b.conf\n").unwrap();
    std::fs::write(dir.path().join("b.conf"), "global_defs {\n}\ninclude a.conf\n").unwrap();
    let loaded = load(&dir.path().join("a.conf"), &LoadOptions::default());
    let b = dir.path().join("b.conf");
    let a = dir.path().join("a.conf");
    assert_eq!(
        loaded.diagnostics.items[0].to_string(),
        format!("{}:3:1: error: include loop: {} includes itself", b.display(), a.display())
    );
    assert_eq!(loaded.diagnostics.exit_code(), 3);
}

#[test]
fn an_include_that_matches_nothing_is_a_warning_as_keepalived_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.conf"), "include conf.d/*.conf\n").unwrap();
    let loaded = load(&dir.path().join("main.conf"), &LoadOptions::default());
    assert_eq!(loaded.diagnostics.exit_code(), 0);
    assert!(loaded.diagnostics.items[0].to_string().ends_with("1:1: warning: include `conf.d/*.conf` matches no file"));
}

#[test]
fn errors_keepalived_would_run_with_exit_4_and_warnings_alone_exit_0() {
    let with_error = load_str(Path::new("t.conf"), &instance(" priority 300"), &LoadOptions::default());
    assert_eq!(with_error.diagnostics.exit_code(), 4);
    assert!(with_error.runnable().is_some());
    let with_warning = load_str(Path::new("t.conf"), &instance(" authentication {\n  auth_pass 123456789\n }"), &LoadOptions::default());
    assert_eq!(with_warning.diagnostics.exit_code(), 0, "{:?}", with_warning.diagnostics.items);
    assert_eq!(
        with_warning.diagnostics.items[0].to_string(),
        "t.conf:5:13: warning: auth_pass is longer than 8 characters; truncated as keepalived does"
    );
}

#[test]
fn auth_type_ah_is_a_warning_saying_the_instance_runs_without_authentication() {
    let loaded = load_str(Path::new("t.conf"), &instance(" authentication {\n  auth_type AH\n }"), &LoadOptions::default());
    assert_eq!(loaded.diagnostics.exit_code(), 0, "{:?}", loaded.diagnostics.items);
    assert_eq!(
        loaded.diagnostics.items[0].to_string(),
        "t.conf:5:13: warning: auth_type AH (IPsec AH) is not implemented: this instance sends and accepts adverts without authentication"
    );
}

#[test]
fn a_keyword_keepalived_knows_but_keepxdp_does_not_implement_is_a_warning_naming_it() {
    let loaded = load_str(Path::new("t.conf"), &instance(" lvs_sync_daemon_interface eth1"), &LoadOptions::default());
    assert_eq!(loaded.diagnostics.exit_code(), 0);
    assert_eq!(
        loaded.diagnostics.items[0].to_string(),
        "t.conf:4:2: warning: `lvs_sync_daemon_interface` in vrrp_instance is recognized but not implemented by keepxdp yet; it is kept and has no effect"
    );
    let kept = &loaded.config.unwrap().vrrp_instances[0].not_implemented[0];
    assert_eq!((kept.keyword.as_str(), kept.args.as_slice()), ("lvs_sync_daemon_interface", &["eth1".to_string()][..]));
}

#[test]
fn scripts_without_enable_script_security_are_warned_about_as_keepalived_does() {
    let text = "vrrp_script chk {\n script /bin/true\n}\n";
    assert_reports(text, "t.conf:1:1: warning: scripts are configured but global_defs has no `enable_script_security`: keepalived reports a security violation; set it (and `script_user`) so scripts do not run as root unchecked");
    let secured = format!("global_defs {{\n enable_script_security\n}}\n{text}");
    assert!(diagnostics(&secured).is_empty(), "{:?}", diagnostics(&secured));
}

#[test]
fn weighted_tracking_in_a_sync_group_is_ignored_with_a_warning() {
    let text = format!(
        "global_defs {{\n enable_script_security\n}}\nvrrp_script chk {{\n script /bin/true\n weight -20\n}}\nvrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n}}\n{}{}",
        instance(" track_script {\n  chk\n }"),
        instance("").replace("vrrp_instance A", "vrrp_instance B").replace("51", "52")
    );
    assert_reports(&text, "t.conf:18:3: warning: (A) is in a sync group: the weight of tracked `chk` is ignored, as keepalived does; a failure takes the instance to FAULT");
}

#[test]
fn a_virtual_address_on_a_missing_dev_is_warned_about_at_its_line() {
    let options = LoadOptions {
        environment: keepxdp::config::Environment { interfaces: Some(["eth0".to_string()].into()) },
        ..LoadOptions::default()
    };
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1/24 dev eth0\n  10.0.9.1/24 dev eth9\n }\n}\n";
    let got: Vec<String> = load_str(Path::new("t.conf"), text, &options).diagnostics.items.iter().map(|d| d.to_string()).collect();
    assert_eq!(got, ["t.conf:6:3: warning: (A) virtual address 10.0.9.1 names dev eth9, which does not exist on this system (yet)"]);
}

#[test]
fn one_vrid_twice_on_an_interface_is_accepted_only_for_unicast_instances_with_distinct_peers() {
    let unicast = |name: &str, peer: &str| {
        format!("vrrp_instance {name} {{\n interface eth0\n virtual_router_id 70\n unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  10.0.0.1\n }}\n}}\n")
    };
    let distinct = format!("{}{}", unicast("A", "10.0.0.2"), unicast("B", "10.0.0.3"));
    assert_eq!(diagnostics(&distinct), Vec::<String>::new());
    let shared = format!("{}{}", unicast("A", "10.0.0.2"), unicast("B", "10.0.0.2"));
    assert_eq!(diagnostics(&shared), ["t.conf:11:1: error: A and B both use VRID 70 with IPv4 on interface eth0"]);
}
