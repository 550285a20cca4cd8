//! `global_defs`.
use std::net::IpAddr;

use super::Ctx;
use crate::config::{
    keywords,
    model::{GlobalDefs, Kept, LvsSyncDaemon, SmtpServer},
    tree::Node,
};

const IMPLEMENTED: &[&str] = &[
    "router_id",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "smtp_helo_name",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
    "no_checker_emails",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_version",
    "vrrp_strict",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "enable_script_security",
    "script_user",
    "vrrp_startup_delay",
    "max_auto_priority",
    "lvs_sync_daemon",
];

pub fn global_defs(ctx: &mut Ctx, node: &Node, global: &mut GlobalDefs) {
    for child in ctx.block(node) {
        match child.keyword() {
            "router_id" => global.router_id = ctx.string(child),
            "notification_email" => {
                global.notification_email.extend(ctx.list_tokens(child).into_iter().map(|t| t.text.clone()))
            }
            "notification_email_from" => global.notification_email_from = ctx.string(child),
            "smtp_server" => global.smtp_server = smtp_server(ctx, child).or(global.smtp_server.take()),
            "smtp_connect_timeout" => global.smtp_connect_timeout = ctx.int(child, 1, 3600),
            "smtp_alert" => global.smtp_alert = super::vrrp::boolean(ctx, child).or(global.smtp_alert),
            "smtp_alert_vrrp" => global.smtp_alert_vrrp = super::vrrp::boolean(ctx, child).or(global.smtp_alert_vrrp),
            "smtp_alert_checker" => global.smtp_alert_checker = super::vrrp::boolean(ctx, child).or(global.smtp_alert_checker),
            "no_email_faults" => global.no_email_faults = ctx.flag(child),
            "no_checker_emails" => global.no_checker_emails = super::vrrp::boolean(ctx, child).unwrap_or(global.no_checker_emails),
            "smtp_helo_name" => global.smtp_helo_name = ctx.string(child),
            "vrrp_mcast_group4" => match ctx.ip(child) {
                Some(IpAddr::V4(group)) if group.is_multicast() => global.vrrp_mcast_group4 = Some(group),
                Some(other) => ctx.error(&child.args[0].pos, format!("vrrp_mcast_group4 {other} is not an IPv4 multicast address")),
                None => {}
            },
            "vrrp_mcast_group6" => match ctx.ip(child) {
                Some(IpAddr::V6(group)) if group.is_multicast() => global.vrrp_mcast_group6 = Some(group),
                Some(other) => ctx.error(&child.args[0].pos, format!("vrrp_mcast_group6 {other} is not an IPv6 multicast address")),
                None => {}
            },
            "vrrp_version" => global.vrrp_version = ctx.int(child, 2, 3),
            "vrrp_strict" => global.vrrp_strict = ctx.flag(child),
            "vrrp_garp_master_delay" => global.vrrp_garp_master_delay = ctx.int(child, 0, 1000),
            "vrrp_garp_master_repeat" => global.vrrp_garp_master_repeat = ctx.int(child, 0, 1000),
            "vrrp_garp_master_refresh" => global.vrrp_garp_master_refresh = ctx.int(child, 0, 86400),
            "vrrp_garp_master_refresh_repeat" => global.vrrp_garp_master_refresh_repeat = ctx.int(child, 0, 1000),
            "vrrp_garp_interval" => global.vrrp_garp_interval = ctx.real(child, 0.0, 1.0),
            "vrrp_gna_interval" => global.vrrp_gna_interval = ctx.real(child, 0.0, 1.0),
            "enable_script_security" => global.enable_script_security = ctx.flag(child),
            "script_user" => global.script_user = ctx.rest(child),
            "vrrp_startup_delay" => global.vrrp_startup_delay = ctx.real(child, 0.0, 3600.0),
            "max_auto_priority" => global.max_auto_priority = if child.args.is_empty() { Some(-1) } else { ctx.int(child, -1, 99) },
            "lvs_sync_daemon" => match &global.lvs_sync_daemon {
                Some(first) => ctx.error(
                    &child.name.pos,
                    format!("lvs_sync_daemon is already given at {} ({} {}); this one is ignored", first.at, first.interface, first.vrrp_instance),
                ),
                None => global.lvs_sync_daemon = lvs_sync_daemon(ctx, child),
            },
            keyword if keywords::GLOBAL_DEFS.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "global_defs");
                global.not_implemented.push(kept);
            }
            _ => ctx.unknown(child, "global_defs", &[IMPLEMENTED, keywords::GLOBAL_DEFS]),
        }
    }
}

/// `smtp_server ADDRESS|NAME [PORT]`, keepalived's default port 25.
fn smtp_server(ctx: &mut Ctx, node: &Node) -> Option<SmtpServer> {
    let Some(host) = node.args.first() else {
        ctx.error(&node.name.pos, "`smtp_server` needs an address or a host name");
        return None;
    };
    if host.text.parse::<IpAddr>().is_err() && !is_host_name(&host.text) {
        ctx.error(&host.pos, format!("smtp_server `{}` is neither an IP address nor a host name", host.text));
        return None;
    }
    let port = match node.args.get(1) {
        Some(token) => ctx.int_token(token, 1, 65535)?,
        None => 25,
    };
    if let Some(extra) = node.args.get(2) {
        ctx.warning(&extra.pos, format!("`smtp_server` takes an address and a port; `{}` ignored", extra.text));
    }
    Some(SmtpServer { host: host.text.clone(), port })
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`,
/// as keepalived 2.2.7 reads it: a bare number after the instance is the old spelling of
/// `id` (warned about); a bad option value is an error and that option keeps its default.
fn lvs_sync_daemon(ctx: &mut Ctx, node: &Node) -> Option<LvsSyncDaemon> {
    let (Some(interface), Some(instance)) = (node.args.first(), node.args.get(1)) else {
        ctx.error(&node.name.pos, "lvs_sync_daemon needs an interface and a vrrp_instance: `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`");
        return None;
    };
    let mut sync = LvsSyncDaemon {
        interface: interface.text.clone(),
        vrrp_instance: instance.text.clone(),
        id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
        at: Kept::of(node).at,
    };
    let mut rest = &node.args[2..];
    if let Some(first) = rest.first()
        && first.text.starts_with(|c: char| c.is_ascii_digit())
    {
        ctx.warning(&first.pos, "write `id` before the lvs_sync_daemon sync id (`id N`), as keepalived asks");
        sync.id = ctx.int_token(first, 0, 255);
        rest = &rest[1..];
    }
    let mut index = 0;
    while index < rest.len() {
        let option = &rest[index];
        let Some(value) = rest.get(index + 1) else {
            ctx.error(&option.pos, format!("lvs_sync_daemon `{}` needs a value", option.text));
            break;
        };
        match option.text.as_str() {
            "id" => sync.id = ctx.int_token(value, 0, 255),
            // IPVS's bound: the largest UDP payload of an IPv4 datagram.
            "maxlen" => sync.maxlen = ctx.int_token(value, 1, 65535 - 20 - 8),
            "port" => sync.port = ctx.int_token(value, 1, 65535),
            "ttl" => sync.ttl = ctx.int_token(value, 1, 255),
            "group" => match ctx.ip_token(value) {
                Some(group) if group.is_multicast() => sync.group = Some(group),
                Some(other) => ctx.error(&value.pos, format!("lvs_sync_daemon group {other} is not a multicast address; the default group is used")),
                None => {}
            },
            other => {
                ctx.error(&option.pos, format!("unknown lvs_sync_daemon option `{other}` (id, maxlen, port, ttl, group)"));
                index += 1;
                continue;
            }
        }
        index += 2;
    }
    Some(sync)
}

#[cfg(test)]
mod tests {
    fn read(text: &str) -> (Option<crate::config::model::LvsSyncDaemon>, Vec<String>) {
        let loaded = crate::config::load_str(std::path::Path::new("k.conf"), text, &crate::config::LoadOptions::default());
        let messages = loaded.diagnostics.items.iter().map(|d| d.to_string()).collect();
        (loaded.config.and_then(|c| c.global_defs.lvs_sync_daemon), messages)
    }

    const INSTANCE: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n 10.0.0.100\n }\n}\n";

    #[test]
    fn every_option_is_read() {
        let (sync, messages) = read(&format!("global_defs {{\n  lvs_sync_daemon eth1 VI_1 id 7 maxlen 1200 port 9000 ttl 2 group 239.1.2.3\n}}\n{INSTANCE}"));
        let sync = sync.unwrap();
        assert_eq!((sync.interface.as_str(), sync.vrrp_instance.as_str()), ("eth1", "VI_1"));
        assert_eq!((sync.id, sync.maxlen, sync.port, sync.ttl), (Some(7), Some(1200), Some(9000), Some(2)));
        assert_eq!(sync.group, Some("239.1.2.3".parse().unwrap()));
        assert!(sync.at.ends_with("k.conf:2:3"), "{}", sync.at);
        assert!(messages.iter().all(|m| !m.contains("lvs_sync_daemon")), "{messages:?}");
    }

    #[test]
    fn bad_values_are_located_errors_and_keep_the_default() {
        let (sync, messages) = read(&format!("global_defs {{\n  lvs_sync_daemon eth1 VI_1 ttl 0 group 10.0.0.1 colour red port\n}}\n{INSTANCE}"));
        let sync = sync.unwrap();
        assert_eq!((sync.ttl, sync.group, sync.port), (None, None, None));
        let joined = messages.join("\n");
        assert!(joined.contains("k.conf:2:33: error: number 0 is outside the range [1, 255]"), "{joined}");
        assert!(joined.contains("k.conf:2:41: error: lvs_sync_daemon group 10.0.0.1 is not a multicast address"), "{joined}");
        assert!(joined.contains("k.conf:2:50: error: unknown lvs_sync_daemon option `colour`"), "{joined}");
        assert!(joined.contains("k.conf:2:61: error: lvs_sync_daemon `port` needs a value"), "{joined}");
    }

    #[test]
    fn the_old_bare_sync_id_is_accepted_with_a_warning_and_a_second_line_is_refused() {
        let (sync, messages) = read(&format!("global_defs {{\n  lvs_sync_daemon eth1 VI_1 5\n  lvs_sync_daemon eth2 VI_1\n}}\n{INSTANCE}"));
        let sync = sync.unwrap();
        assert_eq!((sync.interface.as_str(), sync.id), ("eth1", Some(5)));
        let joined = messages.join("\n");
        assert!(joined.contains("k.conf:2:29: warning: write `id` before"), "{joined}");
        assert!(joined.contains("k.conf:3:3: error: lvs_sync_daemon is already given at"), "{joined}");
    }

    #[test]
    fn an_instance_that_does_not_exist_is_an_error() {
        let (_, messages) = read(&format!("global_defs {{\n  lvs_sync_daemon eth1 VI_9\n}}\n{INSTANCE}"));
        let joined = messages.join("\n");
        assert!(joined.contains("k.conf:2:3: error: lvs_sync_daemon names vrrp_instance VI_9, which does not exist"), "{joined}");
    }

    #[test]
    fn a_missing_instance_is_an_error() {
        let (sync, messages) = read("global_defs {\n  lvs_sync_daemon eth1\n}\n");
        assert!(sync.is_none());
        assert!(messages.join("\n").contains("k.conf:2:3: error: lvs_sync_daemon needs an interface and a vrrp_instance"), "{messages:?}");
    }
}
