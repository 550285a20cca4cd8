//! virtual_server_group, virtual_server, real_server and the health checkers.
//!
//! Ranges, defaults and what keepalived drops were checked against keepalived 2.2.7 itself
//! (`keepalived -t -f FILE`): a bad value is reported and skipped, the rest still builds; a
//! virtual server keepalived would ignore (bad address, no real servers) is reported and
//! not built.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Ctx;
use crate::config::{
    diagnostic::Pos,
    keywords,
    lexer::Token,
    model::{
        Checker, CheckerCommon, DnsCheck, DnsType, Family, Forwarding, GroupEntry, HttpCheck, HttpProtocol, Kept, LbKind,
        MiscCheck, PlainCheck, Protocol, RealServer, SmtpCheck, SmtpHost, SorryServer, TunnelChecksum, TunnelOptions,
        TunnelType, UdpCheck, Url, VirtualServer, VirtualServerGroup, VirtualServerKey,
    },
    tree::Node,
};

/// The schedulers keepalived 2.2.7 accepts for `lb_algo` (it rejects any other name).
const SCHEDULERS: &[&str] = &["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];
/// Used when a virtual server sets none.
const DEFAULT_SCHEDULER: &str = "wlc";

/// keepalived reads timers in microseconds: the smallest non-zero one, and its largest.
const TIMER_MIN: f64 = 0.000_001;
const TIMER_MAX: f64 = 18_446_744_073_709.55;
/// connect_timeout is kept in a 32-bit count of microseconds.
const CONNECT_TIMEOUT_MAX: f64 = 4_294.967_295;
const DEFAULT_DELAY_LOOP: f64 = 60.0;
const DEFAULT_CONNECT_TIMEOUT: f64 = 5.0;
/// IPVS's default persistence (6 minutes) and keepalived's ceiling (31 days).
const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;
const MAX_PERSISTENCE_TIMEOUT: i64 = 2_678_400;
/// Real server weights: keepalived 2.2.7 takes 0..=INT32_MAX (older releases 1..=65535).
const MAX_WEIGHT: i64 = i32::MAX as i64;
const U32_MAX: i64 = u32::MAX as i64;
const HTTP_STATUS_MIN: u16 = 100;
const HTTP_STATUS_MAX: u16 = 599;
/// misc_timeout is whole seconds, stored in microseconds in 32 bits.
const MAX_MISC_TIMEOUT: i64 = 4_294;
/// IFNAMSIZ - 1.
const MAX_INTERFACE_NAME: usize = 15;

const VIRTUAL_SERVER_KEYWORDS: &[&str] = &[
    "delay_loop",
    "lb_algo",
    "lvs_sched",
    "lb_kind",
    "lvs_method",
    "persistence_timeout",
    "persistence_granularity",
    "protocol",
    "sorry_server",
    "sorry_server_inhibit",
    "sorry_server_lvs_method",
    "alpha",
    "omega",
    "quorum",
    "hysteresis",
    "quorum_up",
    "quorum_down",
    "inhibit_on_failure",
    "ha_suspend",
    "smtp_alert",
    "virtualhost",
    "retry",
    "delay_before_retry",
    "connect_timeout",
    "warmup",
    "real_server",
];

const REAL_SERVER_KEYWORDS: &[&str] = &[
    "weight",
    "lvs_method",
    "inhibit_on_failure",
    "alpha",
    "notify_up",
    "notify_down",
    "uthreshold",
    "lthreshold",
    "smtp_alert",
    "virtualhost",
    "connect_timeout",
    "retry",
    "delay_before_retry",
    "warmup",
    "delay_loop",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "DNS_CHECK",
    "SMTP_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

/// Checker options about the connection; MISC_CHECK has none of them.
const CONNECTION_KEYWORDS: &[&str] = &["connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark"];
const SCHEDULE_KEYWORDS: &[&str] = &["retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures"];
const HTTP_KEYWORDS: &[&str] = &["url", "nb_get_retry", "virtualhost", "http_protocol", "enable_sni", "fast_recovery"];
const URL_KEYWORDS: &[&str] = &["path", "digest", "status_code", "virtualhost"];
const MISC_KEYWORDS: &[&str] = &["misc_path", "misc_timeout", "misc_dynamic", "user"];
const DNS_KEYWORDS: &[&str] = &["type", "name"];
const SMTP_KEYWORDS: &[&str] = &["helo_name", "host"];
const UDP_KEYWORDS: &[&str] = &["payload", "require_reply", "min_reply_length", "max_reply_length"];

// ---------------------------------------------------------------------------------------
// virtual_server_group

pub fn virtual_server_group(ctx: &mut Ctx, node: &Node) -> Option<VirtualServerGroup> {
    let name = ctx.name(node)?;
    if let Some(extra) = node.args.get(1) {
        ctx.warning(&extra.pos, format!("`virtual_server_group` takes one name; `{}` and what follows are ignored", extra.text));
    }
    let entries: Vec<GroupEntry> = ctx.block(node).iter().filter_map(|line| group_entry(ctx, line)).collect();
    if entries.is_empty() {
        ctx.error(&node.name.pos, format!("virtual_server_group `{name}` has no usable entries; keepalived removes it"));
        return None;
    }
    let has = |family: Family| {
        entries.iter().any(|entry| match entry {
            GroupEntry::Address { ip, .. } | GroupEntry::Range { first: ip, .. } => Family::of(ip) == family,
            GroupEntry::Fwmark { .. } => false,
        })
    };
    let fwmark_without_family = entries.iter().any(|entry| matches!(entry, GroupEntry::Fwmark { family: None, .. }));
    if has(Family::Ipv4) && has(Family::Ipv6) && fwmark_without_family {
        ctx.error(
            &node.name.pos,
            format!("virtual_server_group `{name}` mixes IPv4 and IPv6 addresses with a fwmark that has no `inet`/`inet6`; keepalived removes it"),
        );
        return None;
    }
    Some(VirtualServerGroup { name, at: node.name.pos.to_string(), entries, not_implemented: Vec::new() })
}

/// One group line: `fwmark N [inet|inet6]` or `ADDRESS|RANGE [PORT]`.
fn group_entry(ctx: &mut Ctx, line: &Node) -> Option<GroupEntry> {
    let words: Vec<&Token> = line.words().collect();
    let at = line.name.pos.to_string();
    if line.keyword() == "fwmark" {
        let Some(value) = words.get(1) else {
            ctx.error(&line.name.pos, "`fwmark` needs a number");
            return None;
        };
        let mark = ctx.int_token(value, 0, U32_MAX)?;
        let family = match words.get(2).map(|t| (t, t.text.as_str())) {
            None => None,
            Some((_, "inet")) => Some(Family::Ipv4),
            Some((_, "inet6")) => Some(Family::Ipv6),
            Some((token, other)) => {
                ctx.error(&token.pos, format!("unknown address family `{other}` for `fwmark`; expected inet or inet6"));
                return None;
            }
        };
        warn_extra(ctx, &words, 3, "a group fwmark");
        return Some(GroupEntry::Fwmark { mark, family, at });
    }
    let port = match words.get(1) {
        Some(token) => port_token(ctx, token)?,
        None => None,
    };
    warn_extra(ctx, &words, 2, "a group address");
    let token = words[0];
    let text = token.text.as_str();
    if let Some((address, length)) = text.split_once('/') {
        let (first, last) = prefix_range(ctx, token, address, length)?;
        Some(GroupEntry::Range { first, last, port, at })
    } else if let Some((start, end)) = text.split_once('-') {
        let first = ip_text(ctx, token, start)?;
        let last = range_end(ctx, token, first, end)?;
        Some(GroupEntry::Range { first, last, port, at })
    } else {
        let ip = ctx.ip_token(token)?;
        Some(GroupEntry::Address { ip, port, at })
    }
}

/// `ADDRESS/LEN`: the whole prefix; the address must have no host bits set.
fn prefix_range(ctx: &mut Ctx, token: &Token, address: &str, length: &str) -> Option<(IpAddr, IpAddr)> {
    let first = ip_text(ctx, token, address)?;
    let bits: u32 = match first {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let Some(length) = length.parse::<u32>().ok().filter(|l| (1..=bits).contains(l)) else {
        ctx.error(&token.pos, format!("`{}` has an invalid prefix length (1 to {bits})", token.text));
        return None;
    };
    let host_bits = bits - length;
    let range = match first {
        IpAddr::V4(v4) => {
            let host_mask = if host_bits == 32 { u32::MAX } else { (1u32 << host_bits) - 1 };
            let value = u32::from(v4);
            (value & host_mask == 0).then(|| (first, IpAddr::V4(Ipv4Addr::from(value | host_mask))))
        }
        IpAddr::V6(v6) => {
            let host_mask = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
            let value = u128::from(v6);
            (value & host_mask == 0).then(|| (first, IpAddr::V6(Ipv6Addr::from(value | host_mask))))
        }
    };
    if range.is_none() {
        ctx.error(&token.pos, format!("`{}` has host bits set after the prefix length", token.text));
    }
    range
}

/// The end of `START-END`: a whole address, or the last IPv4 octet (decimal) / last IPv6
/// group (hex), which must be greater than the start's.
fn range_end(ctx: &mut Ctx, token: &Token, first: IpAddr, end: &str) -> Option<IpAddr> {
    if end.contains('.') || end.contains(':') {
        let last = ip_text(ctx, token, end)?;
        if Family::of(&last) != Family::of(&first) {
            ctx.error(&token.pos, format!("the range `{}` mixes IPv4 and IPv6", token.text));
            return None;
        }
        if last < first {
            ctx.error(&token.pos, format!("the range `{}` ends before it starts", token.text));
            return None;
        }
        return Some(last);
    }
    let (parsed, limit, start) = match first {
        IpAddr::V4(v4) => (end.parse::<u32>(), 0xff, u32::from(v4.octets()[3])),
        IpAddr::V6(v6) => (u32::from_str_radix(end, 16), 0xffff, u32::from(v6.segments()[7])),
    };
    let Ok(last_part) = parsed else {
        ctx.error(&token.pos, format!("`{end}` in `{}` is not a valid range end", token.text));
        return None;
    };
    if last_part > limit {
        ctx.error(&token.pos, format!("the range end `{end}` in `{}` is too large", token.text));
        return None;
    }
    if last_part <= start {
        ctx.error(&token.pos, format!("the range `{}` does not end after its start", token.text));
        return None;
    }
    Some(match first {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, last_part as u8))
        }
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[7] = last_part as u16;
            IpAddr::V6(Ipv6Addr::from(segments))
        }
    })
}

// ---------------------------------------------------------------------------------------
// virtual_server

pub fn virtual_server(ctx: &mut Ctx, node: &Node) -> Option<VirtualServer> {
    let key = virtual_server_key(ctx, node)?;
    let Some(children) = node.block.as_deref() else {
        ctx.error(&node.name.pos, "`virtual_server` needs a `{ ... }` block");
        return None;
    };
    let mut vs = VirtualServer {
        key,
        at: node.name.pos.to_string(),
        delay_loop: DEFAULT_DELAY_LOOP,
        lb_algo: DEFAULT_SCHEDULER.to_string(),
        lb_kind: Forwarding::default(),
        persistence_timeout: None,
        persistence_granularity: None,
        protocol: Protocol::Udp,
        sorry_server: None,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        inhibit_on_failure: false,
        ha_suspend: false,
        smtp_alert: None,
        virtualhost: None,
        retry: None,
        delay_before_retry: None,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        warmup: None,
        real_servers: Vec::new(),
        not_implemented: Vec::new(),
    };
    let mut protocol = None;
    let mut real_servers: Vec<(RealServer, Pos)> = Vec::new();
    for child in children {
        match child.keyword() {
            "delay_loop" => set(&mut vs.delay_loop, ctx.real(child, TIMER_MIN, TIMER_MAX)),
            "lb_algo" | "lvs_sched" => set(&mut vs.lb_algo, scheduler(ctx, child)),
            "lb_kind" | "lvs_method" => set(&mut vs.lb_kind, forwarding(ctx, child)),
            "persistence_timeout" => {
                if child.args.is_empty() {
                    vs.persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
                } else {
                    set_some(&mut vs.persistence_timeout, ctx.int(child, 1, MAX_PERSISTENCE_TIMEOUT));
                }
            }
            "persistence_granularity" => {
                if let Some(granularity) = persistence_granularity(ctx, child, &vs.key) {
                    vs.persistence_granularity = Some(granularity);
                    // keepalived makes the service persistent if it is not yet.
                    vs.persistence_timeout.get_or_insert(DEFAULT_PERSISTENCE_TIMEOUT);
                }
            }
            "protocol" => set_some(&mut protocol, protocol_value(ctx, child)),
            "sorry_server" => {
                if let Some((ip, port)) = address_and_port(ctx, child) {
                    vs.sorry_server = Some(SorryServer { ip, port, inhibit: false, lvs_method: None });
                }
            }
            "sorry_server_inhibit" => {
                ctx.flag(child);
                match vs.sorry_server.as_mut() {
                    Some(sorry) => sorry.inhibit = true,
                    None => ctx.error(&child.name.pos, "`sorry_server_inhibit` before or without `sorry_server` is ignored"),
                }
            }
            "sorry_server_lvs_method" => {
                let method = forwarding(ctx, child);
                match vs.sorry_server.as_mut() {
                    Some(sorry) => set_some(&mut sorry.lvs_method, method),
                    None => ctx.error(&child.name.pos, "`sorry_server_lvs_method` before or without `sorry_server` is ignored"),
                }
            }
            "alpha" => vs.alpha = ctx.flag(child),
            "omega" => vs.omega = ctx.flag(child),
            "quorum" => set(&mut vs.quorum, ctx.int(child, 1, U32_MAX)),
            "hysteresis" => set(&mut vs.hysteresis, ctx.int(child, 0, U32_MAX)),
            "quorum_up" => script_once(ctx, child, &mut vs.quorum_up),
            "quorum_down" => script_once(ctx, child, &mut vs.quorum_down),
            "inhibit_on_failure" => vs.inhibit_on_failure = ctx.flag(child),
            "ha_suspend" => vs.ha_suspend = ctx.flag(child),
            "smtp_alert" => set_some(&mut vs.smtp_alert, optional_bool(ctx, child)),
            "virtualhost" => set_some(&mut vs.virtualhost, ctx.string(child)),
            "retry" => set_some(&mut vs.retry, ctx.int(child, 1, U32_MAX)),
            "delay_before_retry" => set_some(&mut vs.delay_before_retry, ctx.real(child, 0.0, TIMER_MAX)),
            "connect_timeout" => set(&mut vs.connect_timeout, ctx.real(child, TIMER_MIN, CONNECT_TIMEOUT_MAX)),
            "warmup" => set_some(&mut vs.warmup, ctx.real(child, 0.0, TIMER_MAX)),
            "real_server" => real_servers.extend(real_server(ctx, child).map(|rs| (rs, child.name.pos.clone()))),
            keyword if keywords::VIRTUAL_SERVER.contains(&keyword) => {
                vs.not_implemented.push(ctx.not_implemented(child, "virtual_server"))
            }
            _ => ctx.unknown(child, "virtual_server", &[VIRTUAL_SERVER_KEYWORDS, keywords::VIRTUAL_SERVER]),
        }
    }
    vs.protocol = match protocol {
        Some(protocol) => protocol,
        None => {
            if matches!(vs.key, VirtualServerKey::Address { .. }) {
                ctx.warning(&node.name.pos, "no `protocol` set; keepalived defaults to UDP");
            }
            Protocol::Udp
        }
    };
    if matches!(vs.key, VirtualServerKey::Address { port: None, .. }) && vs.persistence_timeout.is_none() {
        ctx.warning(
            &node.name.pos,
            format!("a virtual server without a port must be persistent; keepalived sets `persistence_timeout {DEFAULT_PERSISTENCE_TIMEOUT}`"),
        );
        vs.persistence_timeout = Some(DEFAULT_PERSISTENCE_TIMEOUT);
    }
    vs.real_servers = usable_real_servers(ctx, &vs, real_servers);
    if vs.real_servers.is_empty() {
        ctx.error(&node.name.pos, "virtual server has no usable real servers; keepalived ignores it");
        return None;
    }
    Some(vs)
}

/// `IP [PORT]`, `fwmark N` or `group NAME`.
fn virtual_server_key(ctx: &mut Ctx, node: &Node) -> Option<VirtualServerKey> {
    let Some(first) = node.args.first() else {
        ctx.error(&node.name.pos, "`virtual_server` needs `ADDRESS [PORT]`, `fwmark N` or `group NAME`");
        return None;
    };
    let words: Vec<&Token> = node.args.iter().collect();
    match first.text.as_str() {
        kind @ ("fwmark" | "group") => {
            let Some(value) = node.args.get(1) else {
                ctx.error(&first.pos, format!("`virtual_server {kind}` needs a {}", if kind == "group" { "name" } else { "number" }));
                return None;
            };
            warn_extra(ctx, &words, 2, "`virtual_server`");
            if kind == "group" {
                Some(VirtualServerKey::Group { name: value.text.clone() })
            } else {
                Some(VirtualServerKey::Fwmark { mark: ctx.int_token(value, 0, U32_MAX)? })
            }
        }
        _ => {
            let ip = ctx.ip_token(first)?;
            let port = match node.args.get(1) {
                Some(token) => port_token(ctx, token)?,
                None => None,
            };
            warn_extra(ctx, &words, 2, "`virtual_server`");
            Some(VirtualServerKey::Address { ip, port })
        }
    }
}

/// Drops, as keepalived does, real servers whose address family differs from the virtual
/// address (unless tunnelled) and repeats of an earlier real server.
fn usable_real_servers(ctx: &mut Ctx, vs: &VirtualServer, parsed: Vec<(RealServer, Pos)>) -> Vec<RealServer> {
    let mut usable: Vec<RealServer> = Vec::new();
    for (rs, pos) in parsed {
        let forwarding = rs.lvs_method.unwrap_or(vs.lb_kind);
        if let VirtualServerKey::Address { ip, .. } = &vs.key
            && forwarding.kind != LbKind::Tun
            && Family::of(ip) != Family::of(&rs.ip)
        {
            ctx.error(&pos, format!("real server {} is not of the virtual server's address family; keepalived skips it", rs.ip));
            continue;
        }
        if let Some(earlier) = usable.iter().find(|earlier| earlier.ip == rs.ip && earlier.port == rs.port) {
            ctx.error(&pos, format!("real server {} repeats the one at {}; keepalived removes this one", rs.ip, earlier.at));
            continue;
        }
        usable.push(rs);
    }
    usable
}

fn scheduler(ctx: &mut Ctx, node: &Node) -> Option<String> {
    let token = ctx.arg(node)?;
    if SCHEDULERS.contains(&token.text.as_str()) {
        Some(token.text.clone())
    } else {
        ctx.error(&token.pos, format!("unknown LVS scheduler `{}`; valid: {}", token.text, SCHEDULERS.join(", ")));
        None
    }
}

fn protocol_value(ctx: &mut Ctx, node: &Node) -> Option<Protocol> {
    let token = ctx.arg(node)?;
    match token.text.to_ascii_uppercase().as_str() {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => {
            ctx.error(&token.pos, format!("unknown protocol `{}`; expected TCP, UDP or SCTP", token.text));
            None
        }
    }
}

/// An IPv4 netmask, or an IPv6 prefix length; the family is the virtual address's, else
/// guessed from the value as keepalived does (a `.` means IPv4).
fn persistence_granularity(ctx: &mut Ctx, node: &Node, key: &VirtualServerKey) -> Option<String> {
    let token = ctx.arg(node)?;
    let family = match key {
        VirtualServerKey::Address { ip, .. } => Family::of(ip),
        _ if token.text.contains('.') => Family::Ipv4,
        _ => Family::Ipv6,
    };
    let valid = match family {
        Family::Ipv4 => token.text.parse::<Ipv4Addr>().is_ok(),
        Family::Ipv6 => token.text.parse::<u8>().is_ok_and(|length| (1..=128).contains(&length)),
    };
    if !valid {
        let expected = match family {
            Family::Ipv4 => "an IPv4 netmask such as 255.255.255.0",
            Family::Ipv6 => "an IPv6 prefix length from 1 to 128",
        };
        ctx.error(&token.pos, format!("`persistence_granularity` `{}` is not {expected}", token.text));
        return None;
    }
    Some(token.text.clone())
}

/// `NAT | DR | TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
fn forwarding(ctx: &mut Ctx, node: &Node) -> Option<Forwarding> {
    let method = first_arg(ctx, node)?;
    let kind = match method.text.as_str() {
        "NAT" => LbKind::Nat,
        "DR" => LbKind::Dr,
        "TUN" => LbKind::Tun,
        other => {
            ctx.error(&method.pos, format!("unknown forwarding method `{other}`; expected NAT, DR or TUN"));
            return None;
        }
    };
    let options = &node.args[1..];
    if kind != LbKind::Tun {
        if let Some(extra) = options.first() {
            ctx.warning(&extra.pos, format!("tunnel options apply to TUN only; `{}` and what follows are ignored", extra.text));
        }
        return Some(Forwarding { kind, tunnel: None });
    }
    let mut tunnel = TunnelOptions::default();
    let mut index = 0;
    while index < options.len() {
        let option = &options[index];
        match option.text.as_str() {
            "type" => {
                let Some(value) = options.get(index + 1) else {
                    ctx.error(&option.pos, "tunnel `type` needs a value: ipip, gue or gre");
                    return None;
                };
                tunnel.tunnel_type = match value.text.as_str() {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    other => {
                        ctx.error(&value.pos, format!("unknown tunnel type `{other}`; expected ipip, gue or gre"));
                        return None;
                    }
                };
                index += 1;
            }
            "port" => {
                let Some(value) = options.get(index + 1) else {
                    ctx.error(&option.pos, "tunnel `port` needs a number");
                    return None;
                };
                tunnel.port = Some(ctx.int_token(value, 1, 65535)?);
                index += 1;
            }
            "nocsum" => tunnel.checksum = TunnelChecksum::Nocsum,
            "csum" => tunnel.checksum = TunnelChecksum::Csum,
            "remcsum" => tunnel.checksum = TunnelChecksum::Remcsum,
            other => {
                ctx.error(&option.pos, format!("unknown tunnel option `{other}`; expected type, port, nocsum, csum or remcsum"));
                return None;
            }
        }
        index += 1;
    }
    if (tunnel.tunnel_type == TunnelType::Gue) != tunnel.port.is_some() {
        ctx.error(&method.pos, "a gue tunnel needs `port N`, and only a gue tunnel may have one");
        return None;
    }
    if tunnel.tunnel_type == TunnelType::Ipip && tunnel.checksum != TunnelChecksum::Nocsum {
        ctx.error(&method.pos, "ipip tunnels have no checksum option");
        return None;
    }
    if tunnel.tunnel_type == TunnelType::Gre && tunnel.checksum == TunnelChecksum::Remcsum {
        ctx.error(&method.pos, "gre tunnels do not support `remcsum`");
        return None;
    }
    Some(Forwarding { kind, tunnel: Some(tunnel) })
}

// ---------------------------------------------------------------------------------------
// real_server

fn real_server(ctx: &mut Ctx, node: &Node) -> Option<RealServer> {
    let (ip, port) = address_and_port(ctx, node)?;
    let mut rs = RealServer {
        ip,
        port,
        at: node.name.pos.to_string(),
        weight: 1,
        lvs_method: None,
        inhibit_on_failure: None,
        alpha: None,
        notify_up: None,
        notify_down: None,
        uthreshold: None,
        lthreshold: None,
        smtp_alert: None,
        virtualhost: None,
        connect_timeout: None,
        retry: None,
        delay_before_retry: None,
        warmup: None,
        delay_loop: None,
        checkers: Vec::new(),
        not_implemented: Vec::new(),
    };
    for child in ctx.block(node) {
        match child.keyword() {
            "weight" => set(&mut rs.weight, ctx.int(child, 0, MAX_WEIGHT)),
            "lvs_method" => set_some(&mut rs.lvs_method, forwarding(ctx, child)),
            "inhibit_on_failure" => set_some(&mut rs.inhibit_on_failure, optional_bool(ctx, child)),
            "alpha" => set_some(&mut rs.alpha, optional_bool(ctx, child)),
            "notify_up" => script_once(ctx, child, &mut rs.notify_up),
            "notify_down" => script_once(ctx, child, &mut rs.notify_down),
            "uthreshold" => set_some(&mut rs.uthreshold, ctx.int(child, 0, U32_MAX)),
            "lthreshold" => set_some(&mut rs.lthreshold, ctx.int(child, 0, U32_MAX)),
            "smtp_alert" => set_some(&mut rs.smtp_alert, optional_bool(ctx, child)),
            "virtualhost" => set_some(&mut rs.virtualhost, ctx.string(child)),
            "connect_timeout" => set_some(&mut rs.connect_timeout, ctx.real(child, TIMER_MIN, CONNECT_TIMEOUT_MAX)),
            "retry" => set_some(&mut rs.retry, ctx.int(child, 1, U32_MAX)),
            "delay_before_retry" => set_some(&mut rs.delay_before_retry, ctx.real(child, 0.0, TIMER_MAX)),
            "warmup" => set_some(&mut rs.warmup, ctx.real(child, 0.0, TIMER_MAX)),
            "delay_loop" => set_some(&mut rs.delay_loop, ctx.real(child, TIMER_MIN, TIMER_MAX)),
            "TCP_CHECK" => rs.checkers.push(Checker::TcpCheck(plain_check(ctx, child, keywords::TCP_CHECK))),
            "PING_CHECK" => rs.checkers.push(Checker::PingCheck(plain_check(ctx, child, keywords::PING_CHECK))),
            "HTTP_GET" => rs.checkers.extend(http_check(ctx, child).map(Checker::HttpGet)),
            "SSL_GET" => rs.checkers.extend(http_check(ctx, child).map(Checker::SslGet)),
            "MISC_CHECK" => rs.checkers.extend(misc_check(ctx, child).map(Checker::MiscCheck)),
            "DNS_CHECK" => rs.checkers.push(Checker::DnsCheck(dns_check(ctx, child))),
            "SMTP_CHECK" => rs.checkers.push(Checker::SmtpCheck(smtp_check(ctx, child))),
            "UDP_CHECK" => rs.checkers.push(Checker::UdpCheck(udp_check(ctx, child))),
            "FILE_CHECK" => rs.checkers.push(Checker::FileCheck(ctx.not_implemented(child, "real_server"))),
            "BFD_CHECK" => rs.checkers.push(Checker::BfdCheck(ctx.not_implemented(child, "real_server"))),
            keyword if keywords::REAL_SERVER.contains(&keyword) => {
                rs.not_implemented.push(ctx.not_implemented(child, "real_server"))
            }
            _ => ctx.unknown(child, "real_server", &[REAL_SERVER_KEYWORDS, keywords::REAL_SERVER]),
        }
    }
    Some(rs)
}

// ---------------------------------------------------------------------------------------
// checkers

/// Reads a checker block: `own` handles the checker's own keywords (returning whether it
/// did), then the common options; other keywords keepalived knows in this checker
/// (`listed`: the checker's own list, the common ones being all implemented) are kept.
fn checker_body(
    ctx: &mut Ctx,
    node: &Node,
    own_keywords: &[&str],
    listed: &[&str],
    connection: bool,
    mut own: impl FnMut(&mut Ctx, &Node) -> bool,
) -> (CheckerCommon, Vec<Kept>) {
    let block = node.keyword();
    let mut common = CheckerCommon::default();
    let mut kept = Vec::new();
    for child in ctx.block(node) {
        if own(ctx, child) || common_option(ctx, child, &mut common, connection) {
            continue;
        }
        if listed.contains(&child.keyword()) {
            kept.push(ctx.not_implemented(child, block));
        } else {
            let connection_keywords: &[&str] = if connection { CONNECTION_KEYWORDS } else { &[] };
            ctx.unknown(child, block, &[own_keywords, SCHEDULE_KEYWORDS, connection_keywords, listed]);
        }
    }
    (common, kept)
}

/// The options every checker shares; returns whether `node` was one.
fn common_option(ctx: &mut Ctx, node: &Node, common: &mut CheckerCommon, connection: bool) -> bool {
    match node.keyword() {
        "connect_ip" if connection => {
            if let Some(ip) = ctx.ip(node) {
                match common.bindto {
                    Some(bindto) if Family::of(&bindto) != Family::of(&ip) => {
                        ctx.error(&node.name.pos, "`connect_ip` is not of the family of `bindto`; ignored")
                    }
                    _ => common.connect_ip = Some(ip),
                }
            }
        }
        "bindto" if connection => {
            if let Some(ip) = ctx.ip(node) {
                match common.connect_ip {
                    Some(connect) if Family::of(&connect) != Family::of(&ip) => {
                        ctx.error(&node.name.pos, "`bindto` is not of the family of `connect_ip`; ignored")
                    }
                    _ => common.bindto = Some(ip),
                }
            }
        }
        "connect_port" if connection => set_some(&mut common.connect_port, ctx.int(node, 1, 65535)),
        "bind_port" if connection => set_some(&mut common.bind_port, ctx.int(node, 1, 65535)),
        "bind_if" if connection => {
            if let Some(name) = ctx.arg(node) {
                if name.text.len() > MAX_INTERFACE_NAME {
                    ctx.error(&name.pos, format!("interface name `{}` is longer than {MAX_INTERFACE_NAME} characters", name.text));
                } else {
                    common.bind_if = Some(name.text.clone());
                }
            }
        }
        "connect_timeout" if connection => {
            set_some(&mut common.connect_timeout, ctx.real(node, TIMER_MIN, CONNECT_TIMEOUT_MAX))
        }
        "fwmark" if connection => set_some(&mut common.fwmark, ctx.int(node, 0, U32_MAX)),
        "retry" => set_some(&mut common.retry, ctx.int(node, 0, U32_MAX)),
        "delay_before_retry" => set_some(&mut common.delay_before_retry, ctx.real(node, 0.0, TIMER_MAX)),
        "warmup" => set_some(&mut common.warmup, ctx.real(node, 0.0, TIMER_MAX)),
        "delay_loop" => set_some(&mut common.delay_loop, ctx.real(node, TIMER_MIN, TIMER_MAX)),
        "alpha" => set_some(&mut common.alpha, optional_bool(ctx, node)),
        "log_all_failures" => set_some(&mut common.log_all_failures, optional_bool(ctx, node)),
        _ => return false,
    }
    true
}

fn plain_check(ctx: &mut Ctx, node: &Node, listed: &[&str]) -> PlainCheck {
    let (common, not_implemented) = checker_body(ctx, node, &[], listed, true, |_, _| false);
    PlainCheck { common, at: node.name.pos.to_string(), not_implemented }
}

/// HTTP_GET / SSL_GET; None (as keepalived drops it) when no url has a path.
fn http_check(ctx: &mut Ctx, node: &Node) -> Option<HttpCheck> {
    let mut urls = Vec::new();
    let mut virtualhost = None;
    let mut http_protocol = HttpProtocol::default();
    let mut enable_sni = false;
    let mut fast_recovery = false;
    let mut retry = None;
    let (mut common, not_implemented) = checker_body(ctx, node, HTTP_KEYWORDS, keywords::HTTP_GET, true, |ctx, child| {
        match child.keyword() {
            "url" => urls.extend(url(ctx, child)),
            "nb_get_retry" => {
                ctx.warning(&child.name.pos, "`nb_get_retry` is deprecated; use `retry`");
                set_some(&mut retry, ctx.int(child, 0, U32_MAX));
            }
            "virtualhost" => set_some(&mut virtualhost, ctx.string(child)),
            "http_protocol" => set(&mut http_protocol, http_protocol_value(ctx, child)),
            "enable_sni" => set(&mut enable_sni, optional_bool(ctx, child)),
            "fast_recovery" => set(&mut fast_recovery, optional_bool(ctx, child)),
            _ => return false,
        }
        true
    });
    if common.retry.is_none() {
        common.retry = retry;
    }
    if urls.is_empty() {
        ctx.error(&node.name.pos, format!("`{}` has no usable `url`; keepalived ignores this checker", node.keyword()));
        return None;
    }
    Some(HttpCheck { common, at: node.name.pos.to_string(), urls, virtualhost, http_protocol, enable_sni, fast_recovery, not_implemented })
}

fn http_protocol_value(ctx: &mut Ctx, node: &Node) -> Option<HttpProtocol> {
    let token = ctx.arg(node)?;
    match token.text.as_str() {
        "1.0" => Some(HttpProtocol::V1_0),
        "1.0C" | "1.0c" => Some(HttpProtocol::V1_0C),
        "1.1" => Some(HttpProtocol::V1_1),
        other => {
            ctx.error(&token.pos, format!("unknown `http_protocol` `{other}`; expected 1.0, 1.0C or 1.1"));
            None
        }
    }
}

/// `url { path ..; digest ..; status_code ..; virtualhost .. }`; None without a path.
fn url(ctx: &mut Ctx, node: &Node) -> Option<Url> {
    let mut path = None;
    let mut digest = None;
    let mut status_code = Vec::new();
    let mut virtualhost = None;
    let mut not_implemented = Vec::new();
    for child in ctx.block(node) {
        match child.keyword() {
            "path" => set_some(&mut path, ctx.string(child)),
            "digest" => {
                if digest.is_some() {
                    ctx.error(&child.name.pos, "`digest` is already set for this url; this one is ignored");
                } else {
                    digest = md5_digest(ctx, child);
                }
            }
            "status_code" => {
                if child.args.is_empty() {
                    ctx.error(&child.name.pos, "`status_code` needs codes or ranges such as 200 or 200-299");
                }
                status_code.extend(child.args.iter().filter_map(|token| status_range(ctx, token)));
            }
            "virtualhost" => set_some(&mut virtualhost, ctx.string(child)),
            keyword if keywords::URL.contains(&keyword) => not_implemented.push(ctx.not_implemented(child, "url")),
            _ => ctx.unknown(child, "url", &[URL_KEYWORDS, keywords::URL]),
        }
    }
    let Some(path) = path else {
        ctx.error(&node.name.pos, "`url` has no `path`; keepalived ignores it");
        return None;
    };
    if status_code.is_empty() {
        status_code.push((200, 299));
    }
    Some(Url { path, at: node.name.pos.to_string(), digest, status_code, virtualhost, not_implemented })
}

/// 32 hex digits (an MD5 as genhash prints it), stored lowercase.
fn md5_digest(ctx: &mut Ctx, node: &Node) -> Option<String> {
    let token = ctx.arg(node)?;
    if token.text.len() != 32 || !token.text.chars().all(|c| c.is_ascii_hexdigit()) {
        ctx.error(&token.pos, format!("digest `{}` is not 32 hexadecimal digits (an MD5 sum)", token.text));
        return None;
    }
    Some(token.text.to_ascii_lowercase())
}

/// `CODE` or `FIRST-LAST`, within 100..=599.
fn status_range(ctx: &mut Ctx, token: &Token) -> Option<(u16, u16)> {
    let (first, last) = token.text.split_once('-').unwrap_or((&token.text, &token.text));
    let valid = |text: &str| text.parse::<u16>().ok().filter(|code| (HTTP_STATUS_MIN..=HTTP_STATUS_MAX).contains(code));
    match (valid(first), valid(last)) {
        (Some(first), Some(last)) if first <= last => Some((first, last)),
        _ => {
            ctx.error(
                &token.pos,
                format!("`{}` is not an HTTP status code or range within {HTTP_STATUS_MIN}-{HTTP_STATUS_MAX}", token.text),
            );
            None
        }
    }
}

/// MISC_CHECK; None (as keepalived drops it) without a `misc_path`.
fn misc_check(ctx: &mut Ctx, node: &Node) -> Option<MiscCheck> {
    let mut misc_path = None;
    let mut misc_timeout = None;
    let mut misc_dynamic = false;
    let mut user = None;
    let (common, not_implemented) = checker_body(ctx, node, MISC_KEYWORDS, keywords::MISC_CHECK, false, |ctx, child| {
        match child.keyword() {
            "misc_path" => set_some(&mut misc_path, ctx.rest(child)),
            "misc_timeout" => set_some(&mut misc_timeout, ctx.int(child, 0, MAX_MISC_TIMEOUT)),
            "misc_dynamic" => misc_dynamic = ctx.flag(child),
            "user" => set_some(&mut user, ctx.rest(child)),
            _ => return false,
        }
        true
    });
    let Some(misc_path) = misc_path else {
        ctx.error(&node.name.pos, "`MISC_CHECK` has no `misc_path`; keepalived ignores this checker");
        return None;
    };
    Some(MiscCheck { common, at: node.name.pos.to_string(), misc_path, misc_timeout, misc_dynamic, user, not_implemented })
}

fn dns_check(ctx: &mut Ctx, node: &Node) -> DnsCheck {
    let mut dns_type = DnsType::default();
    let mut name = ".".to_string();
    let (common, not_implemented) = checker_body(ctx, node, DNS_KEYWORDS, keywords::DNS_CHECK, true, |ctx, child| {
        match child.keyword() {
            "type" => set(&mut dns_type, dns_type_value(ctx, child)),
            "name" => set(&mut name, ctx.string(child)),
            _ => return false,
        }
        true
    });
    DnsCheck { common, at: node.name.pos.to_string(), dns_type, name, not_implemented }
}

fn dns_type_value(ctx: &mut Ctx, node: &Node) -> Option<DnsType> {
    let token = ctx.arg(node)?;
    let value = match token.text.to_ascii_uppercase().as_str() {
        "A" => DnsType::A,
        "NS" => DnsType::Ns,
        "CNAME" => DnsType::Cname,
        "SOA" => DnsType::Soa,
        "MX" => DnsType::Mx,
        "TXT" => DnsType::Txt,
        "AAAA" => DnsType::Aaaa,
        "RRSIG" => DnsType::Rrsig,
        "DNSKEY" => DnsType::Dnskey,
        _ => {
            ctx.error(&token.pos, format!("unknown DNS query type `{}`; expected A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG or DNSKEY", token.text));
            return None;
        }
    };
    Some(value)
}

fn smtp_check(ctx: &mut Ctx, node: &Node) -> SmtpCheck {
    let mut helo_name = None;
    let mut hosts = Vec::new();
    let (common, not_implemented) = checker_body(ctx, node, SMTP_KEYWORDS, keywords::SMTP_CHECK, true, |ctx, child| {
        match child.keyword() {
            "helo_name" => set_some(&mut helo_name, ctx.string(child)),
            "host" => {
                let (common, not_implemented) = checker_body(ctx, child, &[], &[], true, |_, _| false);
                hosts.push(SmtpHost { common, at: child.name.pos.to_string(), not_implemented });
            }
            _ => return false,
        }
        true
    });
    SmtpCheck { common, at: node.name.pos.to_string(), helo_name, hosts, not_implemented }
}

fn udp_check(ctx: &mut Ctx, node: &Node) -> UdpCheck {
    let mut payload = None;
    let mut require_reply = false;
    let mut reply_data = None;
    let mut min_reply_length = 0;
    let mut max_reply_length = 255;
    let (common, not_implemented) = checker_body(ctx, node, UDP_KEYWORDS, keywords::UDP_CHECK, true, |ctx, child| {
        match child.keyword() {
            "payload" => set_some(&mut payload, hex_string(ctx, child, false)),
            "require_reply" => {
                require_reply = true;
                if !child.args.is_empty() {
                    set_some(&mut reply_data, hex_string(ctx, child, true));
                }
            }
            "min_reply_length" => set(&mut min_reply_length, ctx.int(child, 0, 65535)),
            "max_reply_length" => set(&mut max_reply_length, ctx.int(child, 0, 65535)),
            _ => return false,
        }
        true
    });
    if min_reply_length > max_reply_length {
        ctx.warning(
            &node.name.pos,
            format!("`min_reply_length` {min_reply_length} is above `max_reply_length` {max_reply_length}; this check always fails"),
        );
    }
    UdpCheck { common, at: node.name.pos.to_string(), payload, require_reply, reply_data, min_reply_length, max_reply_length, not_implemented }
}

/// The arguments as one hex string (spaces allowed between digits); `x` (any nibble) only
/// in reply patterns.
fn hex_string(ctx: &mut Ctx, node: &Node, wildcards: bool) -> Option<String> {
    let text = ctx.rest(node)?;
    let digit = |c: char| c.is_ascii_hexdigit() || (wildcards && matches!(c, 'x' | 'X'));
    if !text.chars().any(digit) || !text.chars().all(|c| digit(c) || c.is_whitespace()) {
        ctx.error(&node.args[0].pos, format!("`{text}` is not a hex string for `{}`", node.keyword()));
        return None;
    }
    Some(text)
}

// ---------------------------------------------------------------------------------------
// small readers

/// `IP [PORT]` after a keyword (real_server, sorry_server).
fn address_and_port(ctx: &mut Ctx, node: &Node) -> Option<(IpAddr, Option<u16>)> {
    let Some(address) = node.args.first() else {
        ctx.error(&node.name.pos, format!("`{}` needs an address and optionally a port", node.keyword()));
        return None;
    };
    let ip = ctx.ip_token(address)?;
    let port = match node.args.get(1) {
        Some(token) => port_token(ctx, token)?,
        None => None,
    };
    let words: Vec<&Token> = node.args.iter().collect();
    warn_extra(ctx, &words, 2, &format!("`{}`", node.keyword()));
    Some((ip, port))
}

/// A port, 0..=65535; 0 means "no port", as keepalived reads it. The outer None is an error.
fn port_token(ctx: &mut Ctx, token: &Token) -> Option<Option<u16>> {
    let port: u16 = ctx.int_token(token, 0, 65535)?;
    Some((port != 0).then_some(port))
}

fn ip_text(ctx: &mut Ctx, token: &Token, text: &str) -> Option<IpAddr> {
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            ctx.error(&token.pos, format!("`{text}` in `{}` is not an IP address", token.text));
            None
        }
    }
}

/// No value: yes; else keepalived's true/on/yes or false/off/no.
fn optional_bool(ctx: &mut Ctx, node: &Node) -> Option<bool> {
    let Some(token) = node.args.first() else {
        return Some(true);
    };
    match token.text.as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        other => {
            ctx.error(&token.pos, format!("`{}` takes yes/no, true/false or on/off, not `{other}`", node.keyword()));
            None
        }
    }
}

/// A script with its arguments; like keepalived, a second one is an error and ignored.
fn script_once(ctx: &mut Ctx, node: &Node, slot: &mut Option<String>) {
    if slot.is_some() {
        ctx.error(&node.name.pos, format!("`{}` is already set; this one is ignored", node.keyword()));
        return;
    }
    *slot = ctx.rest(node);
}

fn warn_extra(ctx: &mut Ctx, words: &[&Token], used: usize, what: &str) {
    if let Some(extra) = words.get(used) {
        ctx.warning(&extra.pos, format!("{what} takes at most {used} values; `{}` and what follows are ignored", extra.text));
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The first argument (the caller reads the rest), or an error naming the keyword.
fn first_arg<'n>(ctx: &mut Ctx, node: &'n Node) -> Option<&'n Token> {
    let first = node.args.first();
    if first.is_none() {
        ctx.error(&node.name.pos, format!("`{}` needs a value", node.keyword()));
    }
    first
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, path::Path};

    use super::*;
    use crate::config::{diagnostic::Diagnostics, lexer::tokenize, source::read_source_text, tree::parse_tree};

    /// Runs `text` through the whole pipeline and `build` on its first statement; returns what
    /// was built and every diagnostic as `keepxdp check` prints it.
    fn run<T>(text: &str, build: fn(&mut Ctx, &Node) -> Option<T>) -> (Option<T>, Vec<String>) {
        let mut diagnostics = Diagnostics::default();
        let lines = read_source_text(Path::new("t.conf"), text, "", &mut diagnostics);
        let tokens = tokenize(&lines, &mut diagnostics);
        let nodes = parse_tree(&tokens, &mut diagnostics);
        let built = build(&mut Ctx { diagnostics: &mut diagnostics }, &nodes[0]);
        (built, diagnostics.items.iter().map(|d| d.to_string()).collect())
    }

    /// A virtual server that must build without any diagnostic.
    fn clean(text: &str) -> VirtualServer {
        let (vs, messages) = run(text, virtual_server);
        assert!(messages.is_empty(), "{messages:#?}");
        vs.expect("built")
    }

    fn messages(text: &str) -> Vec<String> {
        run(text, virtual_server).1
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// One real server with `checker` as its only block line(s).
    fn with_checker(checker: &str) -> String {
        format!("virtual_server 10.0.0.1 80 {{\n    protocol TCP\n    real_server 10.0.0.2 80 {{\n{checker}\n    }}\n}}\n")
    }

    fn only_checker(checker: &str) -> Checker {
        let mut vs = clean(&with_checker(checker));
        let mut checkers = vs.real_servers.remove(0).checkers;
        assert_eq!(checkers.len(), 1);
        checkers.remove(0)
    }

    // ---- golden: virtual servers ----

    #[test]
    fn an_address_virtual_server_with_its_options() {
        let vs = clean(
            "virtual_server 192.168.1.10 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method DR
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol tcp
    sorry_server 192.168.1.99 8080
    sorry_server_inhibit
    alpha
    omega
    quorum 2
    hysteresis 1
    quorum_up \"/bin/up.sh now\" root
    quorum_down /bin/down.sh
    inhibit_on_failure
    ha_suspend
    smtp_alert no
    virtualhost www.example.com
    retry 4
    delay_before_retry 0
    connect_timeout 2.5
    warmup 0
    real_server 192.168.1.11 80 {
        weight 3
    }
}
",
        );
        assert_eq!(vs.key, VirtualServerKey::Address { ip: ip("192.168.1.10"), port: Some(80) });
        assert_eq!(vs.at, "t.conf:1:1");
        assert_eq!(vs.delay_loop, 6.0);
        assert_eq!(vs.lb_algo, "wrr");
        assert_eq!(vs.lb_kind, Forwarding { kind: LbKind::Dr, tunnel: None });
        assert_eq!(vs.persistence_timeout, Some(50));
        assert_eq!(vs.persistence_granularity.as_deref(), Some("255.255.255.0"));
        assert_eq!(vs.protocol, Protocol::Tcp);
        assert_eq!(vs.sorry_server, Some(SorryServer { ip: ip("192.168.1.99"), port: Some(8080), inhibit: true, lvs_method: None }));
        assert!(vs.alpha && vs.omega && vs.inhibit_on_failure && vs.ha_suspend);
        assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
        assert_eq!(vs.quorum_up.as_deref(), Some("/bin/up.sh now root"));
        assert_eq!(vs.quorum_down.as_deref(), Some("/bin/down.sh"));
        assert_eq!(vs.smtp_alert, Some(false));
        assert_eq!(vs.virtualhost.as_deref(), Some("www.example.com"));
        assert_eq!(vs.retry, Some(4));
        assert_eq!(vs.delay_before_retry, Some(0.0));
        assert_eq!(vs.connect_timeout, 2.5);
        assert_eq!(vs.warmup, Some(0.0));
        assert_eq!(vs.real_servers.len(), 1);
        assert_eq!(vs.real_servers[0].weight, 3);
        assert!(vs.not_implemented.is_empty());
    }

    #[test]
    fn keepalived_defaults_apply_when_unset() {
        let vs = clean("virtual_server 10.0.0.1 443 {\n    protocol TCP\n    real_server 10.0.0.2 443 {\n    }\n}\n");
        assert_eq!(vs.delay_loop, 60.0);
        assert_eq!(vs.lb_algo, "wlc");
        assert_eq!(vs.lb_kind, Forwarding { kind: LbKind::Nat, tunnel: None });
        assert_eq!((vs.quorum, vs.hysteresis), (1, 0));
        assert_eq!(vs.connect_timeout, 5.0);
        assert_eq!((vs.persistence_timeout, vs.retry, vs.delay_before_retry, vs.warmup), (None, None, None, None));
        let rs = &vs.real_servers[0];
        assert_eq!(rs.weight, 1);
        assert_eq!((rs.inhibit_on_failure, rs.delay_loop, rs.retry), (None, None, None));
    }

    #[test]
    fn without_protocol_keepalived_uses_udp_and_without_port_makes_the_service_persistent() {
        let (vs, messages) = run("virtual_server 2001:db8::1 {\n    real_server 2001:db8::2 {\n    }\n}\n", virtual_server);
        let vs = vs.unwrap();
        assert_eq!(vs.key, VirtualServerKey::Address { ip: ip("2001:db8::1"), port: None });
        assert_eq!(vs.protocol, Protocol::Udp);
        assert_eq!(vs.persistence_timeout, Some(360));
        assert_eq!(vs.real_servers[0].port, None);
        assert_eq!(
            messages,
            [
                "t.conf:1:1: warning: no `protocol` set; keepalived defaults to UDP",
                "t.conf:1:1: warning: a virtual server without a port must be persistent; keepalived sets `persistence_timeout 360`",
            ]
        );
    }

    #[test]
    fn a_fwmark_virtual_server_with_a_gue_tunnel_and_mixed_family_tunnelled_real_servers() {
        let vs = clean(
            "virtual_server fwmark 7 {
    lb_kind TUN type gue port 6080 csum
    persistence_timeout
    real_server 10.0.0.2 {
    }
    real_server 2001:db8::2 {
        lvs_method TUN type gre
    }
}
",
        );
        assert_eq!(vs.key, VirtualServerKey::Fwmark { mark: 7 });
        let gue = TunnelOptions { tunnel_type: TunnelType::Gue, port: Some(6080), checksum: TunnelChecksum::Csum };
        assert_eq!(vs.lb_kind, Forwarding { kind: LbKind::Tun, tunnel: Some(gue) });
        assert_eq!(vs.persistence_timeout, Some(360));
        let gre = TunnelOptions { tunnel_type: TunnelType::Gre, port: None, checksum: TunnelChecksum::Nocsum };
        assert_eq!(vs.real_servers[1].lvs_method, Some(Forwarding { kind: LbKind::Tun, tunnel: Some(gre) }));
    }

    #[test]
    fn a_group_virtual_server_names_its_group() {
        let vs = clean("virtual_server group WEB {\n    protocol TCP\n    lb_algo mh\n    real_server 10.0.0.2 80 {\n    }\n}\n");
        assert_eq!(vs.key, VirtualServerKey::Group { name: "WEB".into() });
        assert_eq!(vs.lb_algo, "mh");
    }

    #[test]
    fn keywords_keepalived_knows_but_keepxdp_does_not_implement_are_kept_with_a_warning() {
        let (vs, messages) = run("virtual_server 10.0.0.1 53 {\n    protocol UDP\n    ops\n    real_server 10.0.0.2 53 {\n    }\n}\n", virtual_server);
        let vs = vs.unwrap();
        assert_eq!(vs.not_implemented[0].keyword, "ops");
        assert_eq!(vs.not_implemented[0].at, "t.conf:3:5");
        assert_eq!(
            messages,
            ["t.conf:3:5: warning: `ops` in virtual_server is recognized but not implemented by keepxdp yet; it is kept and has no effect"]
        );
    }

    // ---- golden: virtual_server_group ----

    #[test]
    fn a_group_takes_addresses_ranges_prefixes_and_fwmarks() {
        let (group, messages) = run(
            "virtual_server_group WEB {
    192.168.1.1 80
    192.168.1.1-10 80
    192.168.200.250-192.168.201.10 443
    192.168.202.8/29
    2001:db8::1-ff 8080
    fwmark 7 inet
    fwmark 8 inet6
}
",
            virtual_server_group,
        );
        assert!(messages.is_empty(), "{messages:#?}");
        let group = group.unwrap();
        assert_eq!(group.name, "WEB");
        assert_eq!(
            group.entries,
            [
                GroupEntry::Address { ip: ip("192.168.1.1"), port: Some(80), at: "t.conf:2:5".into() },
                GroupEntry::Range { first: ip("192.168.1.1"), last: ip("192.168.1.10"), port: Some(80), at: "t.conf:3:5".into() },
                GroupEntry::Range {
                    first: ip("192.168.200.250"),
                    last: ip("192.168.201.10"),
                    port: Some(443),
                    at: "t.conf:4:5".into(),
                },
                GroupEntry::Range { first: ip("192.168.202.8"), last: ip("192.168.202.15"), port: None, at: "t.conf:5:5".into() },
                GroupEntry::Range { first: ip("2001:db8::1"), last: ip("2001:db8::ff"), port: Some(8080), at: "t.conf:6:5".into() },
                GroupEntry::Fwmark { mark: 7, family: Some(Family::Ipv4), at: "t.conf:7:5".into() },
                GroupEntry::Fwmark { mark: 8, family: Some(Family::Ipv6), at: "t.conf:8:5".into() },
            ]
        );
    }

    #[test]
    fn bad_group_lines_are_skipped_with_their_positions() {
        let (group, messages) = run(
            "virtual_server_group G {
    10.0.0.5-3 80
    10.0.0.1-300 80
    10.0.0.1/30 80
    bogus 80
    fwmark 9 foo
    10.0.0.1 70000
    10.0.0.9 80
}
",
            virtual_server_group,
        );
        assert_eq!(group.unwrap().entries.len(), 1);
        assert_eq!(
            messages,
            [
                "t.conf:2:5: error: the range `10.0.0.5-3` does not end after its start",
                "t.conf:3:5: error: the range end `300` in `10.0.0.1-300` is too large",
                "t.conf:4:5: error: `10.0.0.1/30` has host bits set after the prefix length",
                "t.conf:5:5: error: `bogus` is not an IP address",
                "t.conf:6:14: error: unknown address family `foo` for `fwmark`; expected inet or inet6",
                "t.conf:7:14: error: number 70000 is outside the range [0, 65535]",
            ]
        );
    }

    #[test]
    fn an_empty_group_is_removed_as_keepalived_does() {
        let (group, messages) = run("virtual_server_group G {\n}\n", virtual_server_group);
        assert!(group.is_none());
        assert_eq!(messages, ["t.conf:1:1: error: virtual_server_group `G` has no usable entries; keepalived removes it"]);
    }

    // ---- golden: real servers ----

    #[test]
    fn a_real_server_with_its_options() {
        let vs = clean(
            "virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.2 8080 {
        weight 0
        lvs_method NAT
        inhibit_on_failure no
        alpha
        notify_up \"/bin/notify up\"
        notify_down /bin/notify down
        uthreshold 100
        lthreshold 10
        smtp_alert
        virtualhost rs.example.com
        connect_timeout 3
        retry 2
        delay_before_retry 1.5
        warmup 4
        delay_loop 10
    }
}
",
        );
        let rs = &vs.real_servers[0];
        assert_eq!((rs.ip, rs.port, rs.at.as_str()), (ip("10.0.0.2"), Some(8080), "t.conf:3:5"));
        assert_eq!(rs.weight, 0);
        assert_eq!(rs.lvs_method, Some(Forwarding { kind: LbKind::Nat, tunnel: None }));
        assert_eq!((rs.inhibit_on_failure, rs.alpha, rs.smtp_alert), (Some(false), Some(true), Some(true)));
        assert_eq!(rs.notify_up.as_deref(), Some("/bin/notify up"));
        assert_eq!(rs.notify_down.as_deref(), Some("/bin/notify down"));
        assert_eq!((rs.uthreshold, rs.lthreshold), (Some(100), Some(10)));
        assert_eq!(rs.virtualhost.as_deref(), Some("rs.example.com"));
        assert_eq!((rs.connect_timeout, rs.retry, rs.delay_before_retry), (Some(3.0), Some(2), Some(1.5)));
        assert_eq!((rs.warmup, rs.delay_loop), (Some(4.0), Some(10.0)));
        assert!(rs.checkers.is_empty());
    }

    #[test]
    fn file_check_and_bfd_check_are_kept_whole() {
        let text = with_checker("        FILE_CHECK {\n            track_file f\n        }\n        BFD_CHECK {\n            name b\n        }");
        let (vs, messages) = run(&text, virtual_server);
        let checkers = &vs.unwrap().real_servers[0].checkers;
        assert!(matches!(&checkers[..], [Checker::FileCheck(file), Checker::BfdCheck(bfd)] if file.has_block && bfd.args.is_empty()));
        assert_eq!(
            messages,
            [
                "t.conf:4:9: warning: `FILE_CHECK` in real_server is recognized but not implemented by keepxdp yet; it is kept and has no effect",
                "t.conf:7:9: warning: `BFD_CHECK` in real_server is recognized but not implemented by keepxdp yet; it is kept and has no effect",
            ]
        );
    }

    #[test]
    fn a_group_mixing_families_with_a_familyless_fwmark_is_removed() {
        let (group, messages) = run("virtual_server_group G {\n    10.0.0.1 80\n    2001:db8::1 80\n    fwmark 7\n}\n", virtual_server_group);
        assert!(group.is_none());
        assert_eq!(
            messages,
            ["t.conf:1:1: error: virtual_server_group `G` mixes IPv4 and IPv6 addresses with a fwmark that has no `inet`/`inet6`; keepalived removes it"]
        );
    }

    // ---- golden: checkers ----

    #[test]
    fn tcp_check_takes_the_common_options() {
        let Checker::TcpCheck(tcp) = only_checker(
            "        TCP_CHECK {
            connect_ip 10.0.0.3
            connect_port 8080
            bindto 10.0.0.1
            bind_port 4000
            bind_if eth0
            connect_timeout 3
            retry 0
            delay_before_retry 2
            warmup 1
            delay_loop 5
            fwmark 4294967295
            alpha no
            log_all_failures
        }",
        ) else {
            panic!("not a TCP_CHECK")
        };
        assert_eq!(
            tcp.common,
            CheckerCommon {
                connect_ip: Some(ip("10.0.0.3")),
                connect_port: Some(8080),
                bindto: Some(ip("10.0.0.1")),
                bind_port: Some(4000),
                bind_if: Some("eth0".into()),
                connect_timeout: Some(3.0),
                retry: Some(0),
                delay_before_retry: Some(2.0),
                warmup: Some(1.0),
                delay_loop: Some(5.0),
                fwmark: Some(u32::MAX),
                alpha: Some(false),
                log_all_failures: Some(true),
            }
        );
        assert_eq!(tcp.at, "t.conf:4:9");
    }

    #[test]
    fn ssl_get_with_a_digest_and_status_code_ranges() {
        let Checker::SslGet(http) = only_checker(
            "        SSL_GET {
            http_protocol 1.0C
            enable_sni
            fast_recovery off
            virtualhost www.example.com
            url {
                path /health
                digest 9B3A0C85A887A256D6939DA88AABD8CD
                status_code 200-299 404
                virtualhost other.example.com
            }
            url {
                path /
            }
        }",
        ) else {
            panic!("not an SSL_GET")
        };
        assert_eq!(http.http_protocol, HttpProtocol::V1_0C);
        assert!(http.enable_sni && !http.fast_recovery);
        assert_eq!(http.virtualhost.as_deref(), Some("www.example.com"));
        assert_eq!(
            http.urls,
            [
                Url {
                    path: "/health".into(),
                    at: "t.conf:9:13".into(),
                    digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
                    status_code: vec![(200, 299), (404, 404)],
                    virtualhost: Some("other.example.com".into()),
                    not_implemented: vec![],
                },
                Url {
                    path: "/".into(),
                    at: "t.conf:15:13".into(),
                    digest: None,
                    status_code: vec![(200, 299)],
                    virtualhost: None,
                    not_implemented: vec![],
                },
            ]
        );
    }

    #[test]
    fn http_get_nb_get_retry_is_a_deprecated_retry_and_regex_is_kept() {
        let (vs, messages) = run(
            &with_checker(
                "        HTTP_GET {
            nb_get_retry 3
            url {
                path /
                regex \"ok\"
            }
        }",
            ),
            virtual_server,
        );
        let Checker::HttpGet(http) = &vs.unwrap().real_servers[0].checkers[0] else { panic!("not an HTTP_GET") };
        assert_eq!(http.common.retry, Some(3));
        assert_eq!(http.http_protocol, HttpProtocol::V1_0);
        assert_eq!(http.urls[0].not_implemented[0].keyword, "regex");
        assert_eq!(
            messages,
            [
                "t.conf:5:13: warning: `nb_get_retry` is deprecated; use `retry`",
                "t.conf:8:17: warning: `regex` in url is recognized but not implemented by keepxdp yet; it is kept and has no effect",
            ]
        );
    }

    #[test]
    fn misc_check_with_misc_dynamic() {
        let Checker::MiscCheck(misc) = only_checker(
            "        MISC_CHECK {
            misc_path \"/usr/local/bin/check.sh --port 80\"
            misc_timeout 5
            misc_dynamic
            user nobody nogroup
            retry 1
        }",
        ) else {
            panic!("not a MISC_CHECK")
        };
        assert_eq!(misc.misc_path, "/usr/local/bin/check.sh --port 80");
        assert_eq!(misc.misc_timeout, Some(5));
        assert!(misc.misc_dynamic);
        assert_eq!(misc.user.as_deref(), Some("nobody nogroup"));
        assert_eq!(misc.common.retry, Some(1));
    }

    #[test]
    fn dns_check_defaults_to_an_soa_query_for_the_root() {
        let Checker::DnsCheck(dns) = only_checker("        DNS_CHECK {\n        }") else { panic!("not a DNS_CHECK") };
        assert_eq!((dns.dns_type, dns.name.as_str()), (DnsType::Soa, "."));
        let Checker::DnsCheck(dns) = only_checker("        DNS_CHECK {\n            type aaaa\n            name example.com\n        }")
        else {
            panic!("not a DNS_CHECK")
        };
        assert_eq!((dns.dns_type, dns.name.as_str()), (DnsType::Aaaa, "example.com"));
    }

    #[test]
    fn smtp_check_with_a_host_block() {
        let Checker::SmtpCheck(smtp) = only_checker(
            "        SMTP_CHECK {
            helo_name mail.example.com
            connect_timeout 10
            host {
                connect_ip 10.0.0.4
                connect_port 25
                bindto 10.0.0.1
            }
        }",
        ) else {
            panic!("not an SMTP_CHECK")
        };
        assert_eq!(smtp.helo_name.as_deref(), Some("mail.example.com"));
        assert_eq!(smtp.common.connect_timeout, Some(10.0));
        assert_eq!(smtp.hosts.len(), 1);
        assert_eq!(smtp.hosts[0].at, "t.conf:7:13");
        assert_eq!(
            smtp.hosts[0].common,
            CheckerCommon {
                connect_ip: Some(ip("10.0.0.4")),
                connect_port: Some(25),
                bindto: Some(ip("10.0.0.1")),
                ..CheckerCommon::default()
            }
        );
    }

    #[test]
    fn udp_check_with_a_payload_and_a_reply_pattern() {
        let Checker::UdpCheck(udp) = only_checker(
            "        UDP_CHECK {
            payload 0a bC 1
            require_reply 0A xX
            min_reply_length 2
            max_reply_length 512
        }",
        ) else {
            panic!("not a UDP_CHECK")
        };
        assert_eq!(udp.payload.as_deref(), Some("0a bC 1"));
        assert!(udp.require_reply);
        assert_eq!(udp.reply_data.as_deref(), Some("0A xX"));
        assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 512));
        let Checker::UdpCheck(udp) = only_checker("        UDP_CHECK {\n        }") else { panic!("not a UDP_CHECK") };
        assert_eq!((udp.payload, udp.require_reply, udp.min_reply_length, udp.max_reply_length), (None, false, 0, 255));
    }

    #[test]
    fn ping_check_takes_only_the_common_options() {
        let Checker::PingCheck(ping) = only_checker("        PING_CHECK {\n            delay_loop 2\n        }") else {
            panic!("not a PING_CHECK")
        };
        assert_eq!(ping.common, CheckerCommon { delay_loop: Some(2.0), ..CheckerCommon::default() });
    }

    // ---- errors: exact message and position ----

    #[test]
    fn a_bad_lb_kind_is_reported_at_its_value_and_nat_stays() {
        let text = "virtual_server 10.0.0.1 80 {\n    protocol TCP\n    lb_kind XX\n    real_server 10.0.0.2 80 {\n    }\n}\n";
        let (vs, messages) = run(text, virtual_server);
        assert_eq!(vs.unwrap().lb_kind.kind, LbKind::Nat);
        assert_eq!(messages, ["t.conf:3:13: error: unknown forwarding method `XX`; expected NAT, DR or TUN"]);
    }

    #[test]
    fn a_bad_lb_algo_lists_the_valid_schedulers() {
        let text = "virtual_server 10.0.0.1 80 {\n    protocol TCP\n    lb_algo wrrr\n    real_server 10.0.0.2 80 {\n    }\n}\n";
        assert_eq!(
            messages(text),
            ["t.conf:3:13: error: unknown LVS scheduler `wrrr`; valid: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos"]
        );
    }

    #[test]
    fn a_virtual_server_with_a_bad_port_is_not_built() {
        let (vs, messages) = run("virtual_server 10.0.0.1 70000 {\n    real_server 10.0.0.2 80 {\n    }\n}\n", virtual_server);
        assert!(vs.is_none());
        assert_eq!(messages, ["t.conf:1:25: error: number 70000 is outside the range [0, 65535]"]);
    }

    #[test]
    fn a_real_server_with_a_bad_address_is_skipped() {
        let text = "virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.300 80 {
    }
    real_server 10.0.0.3 80 {
    }
}
";
        let (vs, messages) = run(text, virtual_server);
        assert_eq!(vs.unwrap().real_servers.len(), 1);
        assert_eq!(messages, ["t.conf:3:17: error: `10.0.0.300` is not an IP address"]);
    }

    #[test]
    fn a_digest_that_is_not_hex_is_rejected() {
        let text = with_checker("        HTTP_GET {\n            url {\n                path /\n                digest 9b3a0c85a887a256d6939da88aabd8cz\n            }\n        }");
        assert_eq!(messages(&text), ["t.conf:7:24: error: digest `9b3a0c85a887a256d6939da88aabd8cz` is not 32 hexadecimal digits (an MD5 sum)"]);
    }

    #[test]
    fn a_status_code_outside_100_to_599_is_rejected_and_the_rest_kept() {
        let text = with_checker("        HTTP_GET {\n            url {\n                path /\n                status_code 700 301\n            }\n        }");
        let (vs, messages) = run(&text, virtual_server);
        let Checker::HttpGet(http) = &vs.unwrap().real_servers[0].checkers[0] else { panic!("not an HTTP_GET") };
        assert_eq!(http.urls[0].status_code, [(301, 301)]);
        assert_eq!(messages, ["t.conf:7:29: error: `700` is not an HTTP status code or range within 100-599"]);
    }

    #[test]
    fn a_misspelt_keyword_gets_a_did_you_mean() {
        let text = "virtual_server 10.0.0.1 80 {\n    protocol TCP\n    delay_lop 5\n    real_server 10.0.0.2 80 {\n        wieght 2\n    }\n}\n";
        assert_eq!(
            messages(text),
            [
                "t.conf:3:5: error: unknown keyword `delay_lop` in virtual_server; did you mean `delay_loop`?",
                "t.conf:5:9: error: unknown keyword `wieght` in real_server; did you mean `weight`?",
            ]
        );
    }

    #[test]
    fn a_virtual_server_without_a_block_is_not_built() {
        let (vs, messages) = run("virtual_server 10.0.0.1 80\n", virtual_server);
        assert!(vs.is_none());
        assert_eq!(messages, ["t.conf:1:1: error: `virtual_server` needs a `{ ... }` block"]);
    }

    #[test]
    fn a_gue_tunnel_needs_a_port() {
        let text = "virtual_server 10.0.0.1 80 {\n    protocol TCP\n    lb_kind TUN type gue\n    real_server 10.0.0.2 80 {\n    }\n}\n";
        assert_eq!(messages(text), ["t.conf:3:13: error: a gue tunnel needs `port N`, and only a gue tunnel may have one"]);
    }

    #[test]
    fn a_negative_weight_is_rejected_and_the_default_kept() {
        let text = "virtual_server 10.0.0.1 80 {\n    protocol TCP\n    real_server 10.0.0.2 80 {\n        weight -1\n    }\n}\n";
        let (vs, messages) = run(text, virtual_server);
        assert_eq!(vs.unwrap().real_servers[0].weight, 1);
        assert_eq!(messages, ["t.conf:4:16: error: number -1 is outside the range [0, 2147483647]"]);
    }

    #[test]
    fn misc_check_has_no_connection_options_and_needs_a_path() {
        let text = with_checker("        MISC_CHECK {\n            connect_ip 10.0.0.3\n        }");
        assert_eq!(
            messages(&text),
            [
                "t.conf:5:13: error: unknown keyword `connect_ip` in MISC_CHECK",
                "t.conf:4:9: error: `MISC_CHECK` has no `misc_path`; keepalived ignores this checker",
            ]
        );
    }

    #[test]
    fn real_servers_of_another_family_or_repeated_are_dropped_as_keepalived_does() {
        let text = "virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.2 80 {
    }
    real_server 10.0.0.2 80 {
    }
    real_server 2001:db8::5 80 {
    }
}
";
        let (vs, messages) = run(text, virtual_server);
        assert_eq!(vs.unwrap().real_servers.len(), 1);
        assert_eq!(
            messages,
            [
                "t.conf:5:5: error: real server 10.0.0.2 repeats the one at t.conf:3:5; keepalived removes this one",
                "t.conf:7:5: error: real server 2001:db8::5 is not of the virtual server's address family; keepalived skips it",
            ]
        );
    }

    #[test]
    fn a_bad_boolean_and_an_unknown_dns_type_are_reported_at_their_values() {
        let text = with_checker("        DNS_CHECK {\n            type foo\n            alpha maybe\n        }");
        assert_eq!(
            messages(&text),
            [
                "t.conf:5:18: error: unknown DNS query type `foo`; expected A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG or DNSKEY",
                "t.conf:6:19: error: `alpha` takes yes/no, true/false or on/off, not `maybe`",
            ]
        );
    }

    #[test]
    fn a_virtual_server_without_usable_real_servers_is_not_built() {
        let (vs, messages) = run("virtual_server 10.0.0.1 80 {\n    protocol TCP\n}\n", virtual_server);
        assert!(vs.is_none());
        assert_eq!(messages, ["t.conf:1:1: error: virtual server has no usable real servers; keepalived ignores it"]);
    }
}
