//! `keepxdp ipvs import`: a live IPVS table as keepalived.conf `virtual_server` blocks, so
//! a table built by hand with ipvsadm can move into a config file. Pure.
//!
//! IPVS keeps the forwarding method per destination while keepalived sets it per virtual
//! server: the first real server's method becomes `lb_kind`, and a real server whose
//! method differs gets its own `lvs_method`. Health checks do not exist in IPVS, so the
//! real servers come out without checkers (keepalived then treats them as always up).
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use super::attrs::{svc_flags, tun_flags};
use super::types::{Family, FwdMethod, IpvsDest, IpvsService, ServiceKey, TunnelType};

/// keepalived.conf text for `table`, one block per service, separated by blank lines.
pub fn to_keepalived(table: &[(IpvsService, Vec<IpvsDest>)]) -> String {
    let blocks: Vec<String> = table.iter().map(|(service, dests)| virtual_server(service, dests)).collect();
    blocks.join("\n")
}

fn virtual_server(service: &IpvsService, dests: &[IpvsDest]) -> String {
    let mut out = String::new();
    let kind = dests.first().map(|d| method(&d.forwarding).0);
    let _ = writeln!(out, "virtual_server {} {{", key(&service.key));
    let _ = writeln!(out, "    lb_algo {}", service.scheduler);
    if let Some(kind) = &kind {
        let _ = writeln!(out, "    lb_kind {kind}");
    }
    match service.key {
        ServiceKey::Addr { protocol, .. } => {
            let _ = writeln!(out, "    protocol {}", protocol.name());
        }
        // keepalived takes the family of a fwmark service from its real servers, or this.
        ServiceKey::Fwmark { family: Family::Inet6, .. } => out.push_str("    ip_family inet6\n"),
        ServiceKey::Fwmark { .. } => {}
    }
    if service.is_persistent() {
        let _ = writeln!(out, "    persistence_timeout {}", service.timeout);
        let family = service.family();
        if service.netmask != IpvsService::default_netmask(family) {
            let granularity = match family {
                Family::Inet => Ipv4Addr::from(service.netmask).to_string(),
                Family::Inet6 => service.netmask.to_string(),
            };
            let _ = writeln!(out, "    persistence_granularity {granularity}");
        }
    }
    if let Some(pe) = &service.pe_name {
        let _ = writeln!(out, "    persistence_engine {pe}");
    }
    for flag in flag_keywords(service) {
        let _ = writeln!(out, "    {flag}");
    }
    if dests.is_empty() {
        out.push_str("    ! IPVS has no real servers here; keepalived ignores a virtual_server without one\n");
    }
    for dest in dests {
        real_server(&mut out, dest, kind.as_deref());
    }
    out.push_str("}\n");
    out
}

fn real_server(out: &mut String, dest: &IpvsDest, service_kind: Option<&str>) {
    let _ = writeln!(out, "    real_server {} {{", address(&dest.addr, dest.port));
    let (kind, note) = method(&dest.forwarding);
    if let Some(note) = note {
        let _ = writeln!(out, "        ! {note}");
    }
    if service_kind != Some(kind.as_str()) {
        let _ = writeln!(out, "        lvs_method {kind}");
    }
    let _ = writeln!(out, "        weight {}", dest.weight);
    if dest.upper_threshold != 0 {
        let _ = writeln!(out, "        uthreshold {}", dest.upper_threshold);
    }
    if dest.lower_threshold != 0 {
        let _ = writeln!(out, "        lthreshold {}", dest.lower_threshold);
    }
    out.push_str("    }\n");
}

fn key(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { addr, port, .. } => address(addr, *port),
        ServiceKey::Fwmark { mark, .. } => format!("fwmark {mark}"),
    }
}

/// keepalived writes addresses bare (IPv6 without brackets) and leaves out a 0 port.
fn address(addr: &IpAddr, port: u16) -> String {
    if port == 0 { addr.to_string() } else { format!("{addr} {port}") }
}

/// The `lb_kind` / `lvs_method` words for a forwarding method, and a comment when IPVS
/// holds something keepalived cannot say.
fn method(forwarding: &FwdMethod) -> (String, Option<&'static str>) {
    match forwarding {
        FwdMethod::Masq => ("NAT".into(), None),
        FwdMethod::DirectRoute => ("DR".into(), None),
        FwdMethod::Tunnel(tunnel) => {
            let mut words = String::from("TUN");
            match tunnel.kind {
                TunnelType::Ipip => {}
                TunnelType::Gue => {
                    let _ = write!(words, " type gue port {}", tunnel.port);
                }
                TunnelType::Gre => words.push_str(" type gre"),
            }
            if tunnel.flags & tun_flags::REMCSUM != 0 {
                words.push_str(" remcsum");
            } else if tunnel.flags & tun_flags::CSUM != 0 {
                words.push_str(" csum");
            }
            (words, None)
        }
        FwdMethod::Local => ("NAT".into(), Some("IPVS forwards to this address locally (LOCALNODE); keepalived sets it as NAT")),
        FwdMethod::Bypass => ("NAT".into(), Some("IPVS has this as cache bypass (BYPASS), which keepalived cannot set; NAT instead")),
    }
}

/// keepalived's words for the one-packet and scheduler flags.
fn flag_keywords(service: &IpvsService) -> Vec<String> {
    let mut words = Vec::new();
    if service.flags & svc_flags::ONEPACKET != 0 {
        words.push("ops".to_string());
    }
    let named = matches!(service.scheduler.as_str(), "sh" | "mh");
    for (n, flag) in [(1, svc_flags::SCHED1), (2, svc_flags::SCHED2), (3, svc_flags::SCHED3)] {
        if service.flags & flag == 0 {
            continue;
        }
        words.push(match (named, n) {
            (true, 1) => format!("{}-fallback", service.scheduler),
            (true, 2) => format!("{}-port", service.scheduler),
            _ => format!("flag-{n}"),
        });
    }
    words
}
