//! `global_defs`.
use std::net::IpAddr;

use super::Ctx;
use crate::config::{keywords, model::GlobalDefs, tree::Node};

const IMPLEMENTED: &[&str] = &[
    "router_id",
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_connect_timeout",
    "smtp_helo_name",
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
            "smtp_server" => global.smtp_server = ctx.rest(child),
            "smtp_connect_timeout" => global.smtp_connect_timeout = ctx.int(child, 1, 3600),
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
