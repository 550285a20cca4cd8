//! `global_defs`.
use std::net::IpAddr;

use super::Ctx;
use crate::config::{
    keywords,
    model::{GlobalDefs, SmtpServer},
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
