//! `keepxdp ipvs import` output for a mixed table.
use crate::lvs::ipvs::attrs::svc_flags;
use crate::lvs::ipvs::{Family, FwdMethod, IpvsDest, IpvsService, Proto, ServiceKey, to_keepalived};

use super::golden_dest::{dr, gue, nat};
use super::golden_service::{fwmark7, tcp_web, udp_dns6};

fn table() -> Vec<(IpvsService, Vec<IpvsDest>)> {
    let mut sh = fwmark7();
    sh.flags = svc_flags::SCHED2 | svc_flags::ONEPACKET;
    let fwmark_dests = vec![
        IpvsDest::new("10.0.1.1".parse().unwrap(), 0, FwdMethod::DirectRoute),
        IpvsDest::new("10.0.1.2".parse().unwrap(), 0, FwdMethod::DirectRoute),
    ];
    let mut portless = IpvsService::new(
        ServiceKey::Addr { protocol: Proto::Tcp, addr: "10.0.0.20".parse().unwrap(), port: 0 },
        "lc",
    );
    portless.flags = svc_flags::PERSISTENT;
    portless.timeout = 600;
    portless.netmask = 0xffff_ff00;
    let local = IpvsDest::new("10.0.0.20".parse().unwrap(), 0, FwdMethod::Local);
    let empty6 = IpvsService::new(ServiceKey::Fwmark { family: Family::Inet6, mark: 9 }, "rr");
    vec![
        (tcp_web(), vec![dr(), nat()]),
        (udp_dns6(), vec![gue()]),
        (sh, fwmark_dests),
        (portless, vec![local]),
        (empty6, vec![]),
    ]
}

const EXPECTED: &str = "\
virtual_server 10.0.0.10 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.11 80 {
        weight 1
    }
    real_server 192.168.1.20 8080 {
        lvs_method NAT
        weight 5
        uthreshold 1000
        lthreshold 800
    }
}

virtual_server 2001:db8::10 53 {
    lb_algo wlc
    lb_kind TUN type gue port 6080 csum
    protocol UDP
    persistence_timeout 300
    real_server 2001:db8::20 80 {
        weight 3
        uthreshold 200
        lthreshold 100
    }
}

virtual_server fwmark 7 {
    lb_algo sh
    lb_kind DR
    ops
    sh-port
    real_server 10.0.1.1 {
        weight 1
    }
    real_server 10.0.1.2 {
        weight 1
    }
}

virtual_server 10.0.0.20 {
    lb_algo lc
    lb_kind NAT
    protocol TCP
    persistence_timeout 600
    persistence_granularity 255.255.255.0
    real_server 10.0.0.20 {
        ! IPVS forwards to this address locally (LOCALNODE); keepalived sets it as NAT
        weight 1
    }
}

virtual_server fwmark 9 {
    lb_algo rr
    ip_family inet6
    ! IPVS has no real servers here; keepalived ignores a virtual_server without one
}
";

#[test]
fn a_mixed_table_prints_as_keepalived_virtual_servers() {
    assert_eq!(to_keepalived(&table()), EXPECTED);
}

#[test]
fn an_empty_table_prints_nothing() {
    assert_eq!(to_keepalived(&[]), "");
}

#[test]
fn the_printed_table_reads_back_with_keepxdps_own_parser() {
    use crate::config::{LoadOptions, Severity, load_str};
    let text = to_keepalived(&table());
    let loaded = load_str(std::path::Path::new("import.conf"), &text, &LoadOptions::default());
    let errors: Vec<String> =
        loaded.diagnostics.items.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        ["import.conf:53:1: error: virtual server has no usable real servers; keepalived ignores it"],
        "only the service IPVS has no real servers for is refused, as keepalived would"
    );
    let config = loaded.config.expect("keepxdp reads what import prints");
    assert_eq!(config.virtual_servers.len(), 4);
}
