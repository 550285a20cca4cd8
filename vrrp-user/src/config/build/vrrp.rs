//! vrrp_instance, vrrp_sync_group, vrrp_script, vrrp_track_process, vrrp_track_file, and the
//! address lines shared by virtual_ipaddress and static_ipaddress.
use std::net::IpAddr;

use super::{Ctx, pos_of};
use crate::config::{
    diagnostic::Pos,
    keywords,
    model::{
        AuthType, Authentication, Family, InitialState, Notify, RawEntry, SyncGroup, TrackFile, TrackProcess,
        TrackRef, Tracking, VirtualAddress, VrrpInstance, VrrpScript,
    },
    tree::Node,
};

/// keepalived truncates longer passwords to this many characters.
const AUTH_PASS_MAX: usize = 8;

const INSTANCE_IMPLEMENTED: &[&str] = &[
    "state", "interface", "virtual_router_id", "priority", "advert_int", "version", "authentication",
    "virtual_ipaddress", "virtual_ipaddress_excluded", "virtual_routes", "virtual_rules", "nopreempt",
    "preempt", "preempt_delay", "unicast_src_ip", "unicast_peer", "mcast_src_ip", "use_vmac",
    "vmac_xmit_base", "accept", "no_accept", "track_interface", "track_script", "track_file",
    "track_process", "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop",
    "smtp_alert", "garp_master_delay", "garp_master_repeat", "garp_master_refresh",
    "garp_master_refresh_repeat", "dont_track_primary", "v3_checksum_as_v2", "strict_mode", "native_ipv6",
];

/// `ADDRESS[/LEN] [brd X] [dev X] [scope X] [label X] [peer X] [home] [-nodad]
/// [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [preferred_lft N|forever]`, keepalived
/// 2.2.7's virtual_ipaddress line. `track_group` and `use_vmac` on the line are accepted and
/// warned about as not implemented; so is any other word (never dropped silently).
pub fn virtual_address(ctx: &mut Ctx, node: &Node) -> Option<VirtualAddress> {
    let first = &node.name;
    let (address_text, length_text) = match first.text.split_once('/') {
        Some((address, length)) => (address, Some(length)),
        None => (first.text.as_str(), None),
    };
    let Ok(address) = address_text.parse::<IpAddr>() else {
        ctx.error(&first.pos, format!("`{}` is not an IP address", first.text));
        return None;
    };
    let max_len = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match length_text {
        None => max_len,
        Some(text) => match text.parse::<u8>() {
            Ok(length) if length <= max_len => length,
            _ => {
                ctx.error(&first.pos, format!("prefix length `/{text}` of {address} is not in 0..={max_len}"));
                return None;
            }
        },
    };
    let mut result = VirtualAddress {
        address,
        prefix_len,
        brd: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        // keepalived deprecates an IPv6 /128 by default.
        preferred_lft: (address.is_ipv6() && prefix_len == 128).then_some(0),
        home: false,
        mngtmpaddr: false,
        noprefixroute: false,
        autojoin: false,
        no_track: false,
        options: Vec::new(),
        at: first.pos.to_string(),
    };
    let mut index = 0;
    while index < node.args.len() {
        let option = &node.args[index];
        let value = node.args.get(index + 1);
        let word = option.text.as_str();
        let flag = match word {
            "home" => Some(&mut result.home),
            "mngtmpaddr" => Some(&mut result.mngtmpaddr),
            "noprefixroute" => Some(&mut result.noprefixroute),
            "autojoin" => Some(&mut result.autojoin),
            "no_track" => Some(&mut result.no_track),
            _ => None,
        };
        if let Some(flag) = flag {
            *flag = true;
            index += 1;
            continue;
        }
        if word == "-nodad" || word == "nodad" {
            // Applied to every IPv6 virtual address already (net/addresses.rs); no meaning
            // for IPv4.
            index += 1;
            continue;
        }
        let takes_value = ["brd", "broadcast", "dev", "scope", "label", "peer", "preferred_lft", "track_group"].contains(&word);
        if !takes_value {
            let what = if word == "use_vmac" { "is not implemented on an address line (use the instance's use_vmac)" } else { "is not an option keepxdp knows" };
            ctx.warning(&option.pos, format!("`{word}` on virtual address {address} {what}; ignored"));
            result.options.push(option.text.clone());
            index += 1;
            continue;
        }
        let Some(value) = value else {
            ctx.error(&option.pos, format!("`{word}` needs a value"));
            break;
        };
        let text = value.text.clone();
        match word {
            "brd" | "broadcast" => result.brd = Some(text),
            "dev" => result.dev = Some(text),
            "scope" => result.scope = Some(text),
            "label" => result.label = Some(text),
            "peer" => match text.split_once('/').map_or(text.as_str(), |(a, _)| a).parse::<IpAddr>() {
                Ok(peer) if peer.is_ipv4() == address.is_ipv4() => result.peer = Some(peer),
                _ => ctx.error(&value.pos, format!("peer `{text}` is not an address of the family of {address}")),
            },
            "preferred_lft" => match text.as_str() {
                "forever" => result.preferred_lft = None,
                number => match number.parse::<u32>() {
                    Ok(seconds) if seconds < u32::MAX => result.preferred_lft = Some(seconds),
                    _ => ctx.error(&value.pos, format!("preferred_lft takes a number of seconds or `forever`, not `{text}`")),
                },
            },
            _ => {
                ctx.warning(&option.pos, format!("`track_group` on virtual address {address} is not implemented; ignored"));
                result.options.push(format!("track_group {text}"));
            }
        }
        index += 2;
    }
    if let Some(scope) = &result.scope {
        let known = ["site", "link", "host", "nowhere", "global"];
        if !known.contains(&scope.as_str()) && scope.parse::<u8>().is_err() {
            ctx.error(&first.pos, format!("scope `{scope}` is not one of {} or a number", known.join(", ")));
        }
    }
    Some(result)
}

/// One line of a track_* block: `NAME [weight N [reverse]]`.
fn track_refs(ctx: &mut Ctx, node: &Node) -> Vec<TrackRef> {
    let mut refs = Vec::new();
    let lines: Vec<&Node> = match &node.block {
        Some(children) => children.iter().collect(),
        None => {
            ctx.error(&node.name.pos, format!("`{}` needs a `{{ ... }}` block", node.keyword()));
            Vec::new()
        }
    };
    for line in lines {
        let rest: Vec<&_> = line.args.iter().collect();
        let (weight, reverse) = ctx.weight_spec(&rest);
        refs.push(TrackRef { name: line.name.text.clone(), weight, reverse, at: line.name.pos.to_string() });
    }
    refs
}

/// Common to instances and sync groups: notify scripts and tracking. Returns false when the
/// keyword is not one of them.
fn notify_or_track(ctx: &mut Ctx, node: &Node, notify: &mut Notify, tracking: &mut Tracking) -> bool {
    match node.keyword() {
        "notify" => notify.notify = ctx.rest(node),
        "notify_master" => notify.notify_master = ctx.rest(node),
        "notify_backup" => notify.notify_backup = ctx.rest(node),
        "notify_fault" => notify.notify_fault = ctx.rest(node),
        "notify_stop" => notify.notify_stop = ctx.rest(node),
        "track_interface" => tracking.track_interface.extend(track_refs(ctx, node)),
        "track_script" => tracking.track_script.extend(track_refs(ctx, node)),
        "track_file" => tracking.track_file.extend(track_refs(ctx, node)),
        "track_process" => tracking.track_process.extend(track_refs(ctx, node)),
        _ => return false,
    }
    true
}

/// `KEYWORD [on|off|true|false|yes|no]`: a flag that may be spelled with a value.
pub(super) fn boolean(ctx: &mut Ctx, node: &Node) -> Option<bool> {
    match node.args.first().map(|t| t.text.to_ascii_lowercase()) {
        None => Some(true),
        Some(value) => match value.as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => {
                ctx.error(&node.args[0].pos, format!("`{}` takes on/off, true/false or yes/no, not `{}`", node.keyword(), node.args[0].text));
                None
            }
        },
    }
}

pub fn instance(ctx: &mut Ctx, node: &Node, default_version: Option<u8>) -> Option<VrrpInstance> {
    let name = ctx.name(node)?;
    let mut instance = VrrpInstance {
        name,
        at: node.name.pos.to_string(),
        state: InitialState::Backup,
        interface: None,
        virtual_router_id: None,
        priority: 100,
        advert_int: 1.0,
        version: default_version.unwrap_or(2),
        family: Family::Ipv4,
        native_ipv6: false,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
        nopreempt: false,
        preempt_delay: None,
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        mcast_src_ip: None,
        use_vmac: None,
        vmac_xmit_base: false,
        accept: None,
        tracking: Tracking::default(),
        notify: Notify::default(),
        smtp_alert: None,
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        dont_track_primary: false,
        v3_checksum_as_v2: false,
        strict_mode: None,
        not_implemented: Vec::new(),
    };
    let mut version_written = None;
    let mut advert_int_at = None;
    let mut nopreempt_at = None;
    for child in ctx.block(node) {
        if notify_or_track(ctx, child, &mut instance.notify, &mut instance.tracking) {
            continue;
        }
        match child.keyword() {
            "state" => match ctx.arg(child).map(|t| (t.text.to_ascii_uppercase(), t.pos.clone())) {
                Some((state, _)) if state == "MASTER" => instance.state = InitialState::Master,
                Some((state, _)) if state == "BACKUP" => instance.state = InitialState::Backup,
                Some((_, pos)) => ctx.error(&pos, format!("state must be MASTER or BACKUP, not `{}`", child.args[0].text)),
                None => {}
            },
            "interface" => instance.interface = ctx.string(child),
            "virtual_router_id" => instance.virtual_router_id = ctx.int(child, 1, 255),
            "priority" => {
                if let Some(priority) = ctx.int(child, 1, 255) {
                    instance.priority = priority;
                }
            }
            "advert_int" => {
                if let Some(interval) = ctx.real(child, 0.01, 255.0) {
                    instance.advert_int = interval;
                    advert_int_at = Some(child.args[0].pos.clone());
                }
            }
            "version" => {
                if let Some(version) = ctx.int(child, 2, 3) {
                    instance.version = version;
                    version_written = Some(child.name.pos.clone());
                }
            }
            "authentication" => instance.authentication = Some(authentication(ctx, child)),
            "virtual_ipaddress" => {
                for line in ctx.block(child) {
                    instance.virtual_ipaddress.extend(virtual_address(ctx, line));
                }
            }
            "virtual_ipaddress_excluded" => {
                for line in ctx.block(child) {
                    instance.virtual_ipaddress_excluded.extend(virtual_address(ctx, line));
                }
            }
            "virtual_routes" => instance.virtual_routes.extend(ctx.block(child).iter().map(RawEntry::of)),
            "virtual_rules" => instance.virtual_rules.extend(ctx.block(child).iter().map(RawEntry::of)),
            "nopreempt" => {
                instance.nopreempt = ctx.flag(child);
                nopreempt_at = Some(child.name.pos.clone());
            }
            "preempt" => instance.nopreempt = !ctx.flag(child),
            "preempt_delay" => instance.preempt_delay = ctx.real(child, 0.0, 1000.0),
            "unicast_src_ip" => instance.unicast_src_ip = ctx.ip(child),
            "unicast_peer" => {
                for line in ctx.block(child) {
                    // `ADDRESS [min_ttl N] [max_ttl N]`: the options are the kernel's business.
                    instance.unicast_peer.extend(ctx.ip_token(&line.name));
                }
            }
            "mcast_src_ip" => instance.mcast_src_ip = ctx.ip(child),
            "use_vmac" => instance.use_vmac = Some(child.args.first().map(|t| t.text.clone()).unwrap_or_default()),
            "vmac_xmit_base" => instance.vmac_xmit_base = ctx.flag(child),
            "accept" => instance.accept = Some(ctx.flag(child)),
            "no_accept" => instance.accept = Some(!ctx.flag(child)),
            "smtp_alert" => instance.smtp_alert = boolean(ctx, child).or(instance.smtp_alert),
            "garp_master_delay" => instance.garp_master_delay = ctx.int(child, 0, 1000),
            "garp_master_repeat" => instance.garp_master_repeat = ctx.int(child, 0, 1000),
            "garp_master_refresh" => instance.garp_master_refresh = ctx.int(child, 0, 86400),
            "garp_master_refresh_repeat" => instance.garp_master_refresh_repeat = ctx.int(child, 0, 1000),
            "dont_track_primary" => instance.dont_track_primary = ctx.flag(child),
            "v3_checksum_as_v2" => instance.v3_checksum_as_v2 = ctx.flag(child),
            "strict_mode" => instance.strict_mode = boolean(ctx, child),
            "native_ipv6" => instance.native_ipv6 = ctx.flag(child),
            keyword if keywords::VRRP_INSTANCE.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "vrrp_instance");
                instance.not_implemented.push(kept);
            }
            _ => ctx.unknown(child, "vrrp_instance", &[INSTANCE_IMPLEMENTED, keywords::VRRP_INSTANCE]),
        }
    }
    instance.family = if instance.native_ipv6 {
        Family::Ipv6
    } else {
        instance
            .virtual_ipaddress
            .first()
            .map(|v| v.address)
            .or(instance.unicast_src_ip)
            .or(instance.unicast_peer.first().copied())
            .map_or(Family::Ipv4, |a| Family::of(&a))
    };
    instance_rules(ctx, &mut instance, version_written, advert_int_at, nopreempt_at);
    Some(instance)
}

/// keepalived's per-instance rules, with its fix-ups: the instance still runs.
fn instance_rules(
    ctx: &mut Ctx,
    instance: &mut VrrpInstance,
    version_written: Option<Pos>,
    advert_int_at: Option<Pos>,
    nopreempt_at: Option<Pos>,
) {
    let family = instance.family;
    if family == Family::Ipv6 && instance.version == 2 {
        // keepalived runs IPv6 instances with VRRPv3 (RFC 3768 is IPv4-only).
        if let Some(pos) = version_written {
            ctx.warning(&pos, format!("({}) VRRP version 2 cannot carry IPv6; this IPv6 instance uses version 3", instance.name));
        }
        instance.version = 3;
    }
    let mismatched: Vec<VirtualAddress> = instance
        .virtual_ipaddress
        .iter()
        .filter(|vip| Family::of(&vip.address) != family)
        .cloned()
        .collect();
    for vip in &mismatched {
        ctx.error(
            &pos_of(&vip.at),
            format!("({}) {} is not of the instance's address family and is ignored (use virtual_ipaddress_excluded for it)", instance.name, vip.address),
        );
    }
    instance.virtual_ipaddress.retain(|vip| Family::of(&vip.address) == family);
    let interval_pos = advert_int_at.unwrap_or_else(|| pos_of(&instance.at));
    if instance.version == 2 && instance.advert_int.fract() != 0.0 {
        let rounded = instance.advert_int.round().max(1.0);
        ctx.error(&interval_pos, format!("({}) a VRRPv2 advert_int must be whole seconds; {} is rounded to {rounded}", instance.name, instance.advert_int));
        instance.advert_int = rounded;
    }
    if instance.version == 3 && instance.advert_int > 40.95 {
        ctx.error(&interval_pos, format!("({}) a VRRPv3 advert_int must be at most 40.95 s; {} is set to 40.95", instance.name, instance.advert_int));
        instance.advert_int = 40.95;
    }
    if instance.priority == 255 && instance.nopreempt {
        let pos = nopreempt_at.unwrap_or_else(|| pos_of(&instance.at));
        ctx.error(&pos, format!("({}) nopreempt is incompatible with priority 255 (the address owner always preempts); nopreempt is ignored", instance.name));
        instance.nopreempt = false;
    }
    for peer in &instance.unicast_peer {
        if Family::of(peer) != family {
            ctx.error(&pos_of(&instance.at), format!("({}) unicast_peer {peer} is not of the instance's address family", instance.name));
        }
    }
    if instance.virtual_ipaddress.is_empty() {
        ctx.warning(&pos_of(&instance.at), format!("({}) has no virtual_ipaddress; at least one is sensible", instance.name));
    }
}

fn authentication(ctx: &mut Ctx, node: &Node) -> Authentication {
    let mut auth = Authentication { auth_type: None, auth_pass: None };
    for child in ctx.block(node) {
        match child.keyword() {
            "auth_type" => match ctx.arg(child).map(|t| t.text.to_ascii_uppercase()) {
                Some(kind) if kind == "PASS" => auth.auth_type = Some(AuthType::Pass),
                Some(kind) if kind == "AH" => {
                    auth.auth_type = Some(AuthType::Ah);
                    ctx.warning(
                        &child.args[0].pos,
                        "auth_type AH (IPsec AH) is not implemented: this instance sends and accepts adverts without authentication",
                    );
                }
                Some(_) => ctx.error(&child.args[0].pos, format!("auth_type must be PASS or AH, not `{}`", child.args[0].text)),
                None => {}
            },
            "auth_pass" => {
                if let Some(token) = ctx.arg(child) {
                    let mut pass = token.text.clone();
                    if pass.chars().count() > AUTH_PASS_MAX {
                        ctx.warning(&token.pos, format!("auth_pass is longer than {AUTH_PASS_MAX} characters; truncated as keepalived does"));
                        pass = pass.chars().take(AUTH_PASS_MAX).collect();
                    }
                    auth.auth_pass = Some(pass);
                }
            }
            _ => ctx.unknown(child, "authentication", &[&["auth_type", "auth_pass"]]),
        }
    }
    auth
}

const SYNC_GROUP_IMPLEMENTED: &[&str] = &[
    "group", "smtp_alert", "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop",
    "track_interface", "track_script", "track_file", "track_process",
];

pub fn sync_group(ctx: &mut Ctx, node: &Node) -> Option<SyncGroup> {
    let name = ctx.name(node)?;
    let mut group = SyncGroup {
        name,
        at: node.name.pos.to_string(),
        group: Vec::new(),
        notify: Notify::default(),
        tracking: Tracking::default(),
        smtp_alert: None,
        not_implemented: Vec::new(),
    };
    for child in ctx.block(node) {
        if notify_or_track(ctx, child, &mut group.notify, &mut group.tracking) {
            continue;
        }
        match child.keyword() {
            "group" => group.group.extend(ctx.list_tokens(child).into_iter().map(|t| t.text.clone())),
            "smtp_alert" => group.smtp_alert = boolean(ctx, child).or(group.smtp_alert),
            keyword if keywords::VRRP_SYNC_GROUP.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "vrrp_sync_group");
                group.not_implemented.push(kept);
            }
            // An old spelling (Debian's lvs_syncd sample): member names without `group { }`.
            // (A bare word close to a keyword is taken for a misspelt keyword instead.)
            name if child.args.is_empty() && child.block.is_none() && !Ctx::near_any(name, &[SYNC_GROUP_IMPLEMENTED, keywords::VRRP_SYNC_GROUP]) => {
                ctx.warning(
                    &child.name.pos,
                    format!("`{name}` directly in vrrp_sync_group is read as a member; write it inside `group {{ }}` (keepalived 2.2.7 rejects this form)"),
                );
                group.group.push(name.to_string());
            }
            _ => ctx.unknown(child, "vrrp_sync_group", &[SYNC_GROUP_IMPLEMENTED, keywords::VRRP_SYNC_GROUP]),
        }
    }
    Some(group)
}

pub fn script(ctx: &mut Ctx, node: &Node) -> Option<VrrpScript> {
    let name = ctx.name(node)?;
    let mut script = VrrpScript {
        name,
        at: node.name.pos.to_string(),
        script: None,
        interval: 1.0,
        timeout: None,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        user: None,
        init_fail: false,
        not_implemented: Vec::new(),
    };
    const IMPLEMENTED: &[&str] = &["script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail"];
    for child in ctx.block(node) {
        match child.keyword() {
            "script" => script.script = ctx.rest(child),
            "interval" => script.interval = ctx.real(child, 0.001, 86400.0).unwrap_or(script.interval),
            "timeout" => script.timeout = ctx.real(child, 0.001, 86400.0),
            "weight" => {
                let tokens: Vec<&_> = std::iter::once(&child.name).chain(child.args.iter()).collect();
                let (weight, reverse) = ctx.weight_spec(&tokens);
                script.weight = weight.unwrap_or(0);
                script.weight_reverse = reverse;
            }
            "rise" => script.rise = ctx.int(child, 1, 1_000_000).unwrap_or(script.rise),
            "fall" => script.fall = ctx.int(child, 1, 1_000_000).unwrap_or(script.fall),
            "user" => script.user = ctx.rest(child),
            "init_fail" => script.init_fail = ctx.flag(child),
            keyword if keywords::VRRP_SCRIPT.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "vrrp_script");
                script.not_implemented.push(kept);
            }
            _ => ctx.unknown(child, "vrrp_script", &[IMPLEMENTED, keywords::VRRP_SCRIPT]),
        }
    }
    if script.script.is_none() {
        ctx.error(&node.name.pos, format!("vrrp_script {} has no `script`", script.name));
    }
    Some(script)
}

pub fn track_process(ctx: &mut Ctx, node: &Node) -> Option<TrackProcess> {
    let name = ctx.name(node)?;
    let mut track = TrackProcess::new(name, node.name.pos.to_string());
    const IMPLEMENTED: &[&str] = &["process", "param_match", "weight", "quorum", "quorum_max", "delay"];
    for child in ctx.block(node) {
        match child.keyword() {
            "process" => {
                track.process = ctx.arg_first(child);
                let parameters: Vec<&str> = child.args.iter().skip(1).map(|t| t.text.as_str()).collect();
                track.parameters = (!parameters.is_empty()).then(|| parameters.join(" "));
            }
            "param_match" => match ctx.string(child) {
                Some(mode) if ["initial", "partial", "exact"].contains(&mode.as_str()) => track.param_match = Some(mode),
                Some(mode) => ctx.error(&child.args[0].pos, format!("param_match must be initial, partial or exact, not `{mode}`")),
                None => {}
            },
            "weight" => {
                let tokens: Vec<&_> = std::iter::once(&child.name).chain(child.args.iter()).collect();
                let (weight, reverse) = ctx.weight_spec(&tokens);
                track.weight = weight.unwrap_or(0);
                track.weight_reverse = reverse;
            }
            "quorum" => track.quorum = ctx.int(child, 1, 65535).unwrap_or(track.quorum),
            "quorum_max" => track.quorum_max = ctx.int(child, 1, 65535),
            "delay" => track.delay = ctx.real(child, 0.0, 3600.0),
            keyword if keywords::VRRP_TRACK_PROCESS.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "vrrp_track_process");
                track.not_implemented.push(kept);
            }
            _ => ctx.unknown(child, "vrrp_track_process", &[IMPLEMENTED, keywords::VRRP_TRACK_PROCESS]),
        }
    }
    if track.process.is_none() {
        ctx.error(&node.name.pos, format!("vrrp_track_process {} has no `process`", track.name));
    }
    Some(track)
}

pub fn track_file(ctx: &mut Ctx, node: &Node) -> Option<TrackFile> {
    let name = ctx.name(node)?;
    let mut track = TrackFile {
        name,
        at: node.name.pos.to_string(),
        file: None,
        weight: 1,
        weight_reverse: false,
        init_file: None,
        not_implemented: Vec::new(),
    };
    const IMPLEMENTED: &[&str] = &["file", "weight", "init_file"];
    for child in ctx.block(node) {
        match child.keyword() {
            "file" => track.file = ctx.rest(child),
            "weight" => {
                let tokens: Vec<&_> = std::iter::once(&child.name).chain(child.args.iter()).collect();
                let (weight, reverse) = ctx.weight_spec(&tokens);
                track.weight = weight.unwrap_or(1);
                track.weight_reverse = reverse;
            }
            "init_file" => track.init_file = Some(child.args.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")),
            keyword if keywords::VRRP_TRACK_FILE.contains(&keyword) => {
                let kept = ctx.not_implemented(child, "vrrp_track_file");
                track.not_implemented.push(kept);
            }
            _ => ctx.unknown(child, "vrrp_track_file", &[IMPLEMENTED, keywords::VRRP_TRACK_FILE]),
        }
    }
    if track.file.is_none() {
        ctx.error(&node.name.pos, format!("vrrp_track_file {} has no `file`", track.name));
    }
    Some(track)
}

#[cfg(test)]
mod address_line_tests {
    use crate::config::model::VirtualAddress;

    fn read(lines: &str) -> (Vec<VirtualAddress>, String) {
        let text = format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {{\n{lines}\n }}\n}}\n");
        let loaded = crate::config::load_str(std::path::Path::new("k.conf"), &text, &crate::config::LoadOptions::default());
        let messages: Vec<String> = loaded.diagnostics.items.iter().map(|d| d.to_string()).collect();
        (loaded.config.map(|c| c.vrrp_instances[0].virtual_ipaddress.clone()).unwrap_or_default(), messages.join("\n"))
    }

    #[test]
    fn every_keepalived_option_is_read() {
        let (v6s, messages) = read("  fd00::1/64 dev eth0 label eth0:1 home -nodad mngtmpaddr noprefixroute autojoin no_track preferred_lft 30");
        let (v4s, messages4) = read("  10.0.0.1/32 peer 10.0.0.2/32 brd 10.0.0.255 scope link");
        let (v6, v4) = (&v6s[0], &v4s[0]);
        let messages = format!("{messages}\n{messages4}");
        assert!(v6.home && v6.mngtmpaddr && v6.noprefixroute && v6.autojoin && v6.no_track, "{v6:?}");
        assert_eq!((v6.preferred_lft, v6.dev.as_deref(), v6.label.as_deref()), (Some(30), Some("eth0"), Some("eth0:1")));
        assert_eq!((v4.peer, v4.preferred_lft, v4.scope.as_deref()), (Some("10.0.0.2".parse().unwrap()), None, Some("link")));
        assert!(v6.options.is_empty() && v4.options.is_empty(), "{v6:?} {v4:?}");
        assert!(!messages.contains("virtual address"), "{messages}");
    }

    #[test]
    fn preferred_lft_defaults_as_keepalived_and_forever_overrides() {
        let (addresses, _) = read("  fd00::1/128\n  fd00::2/64\n  fd00::3/128 preferred_lft forever");
        let lifetimes: Vec<_> = addresses.iter().map(|a| a.preferred_lft).collect();
        assert_eq!(lifetimes, [Some(0), None, None]);
        let (addresses, _) = read("  10.0.0.1/32\n  10.0.0.2/32 preferred_lft 0");
        assert_eq!(addresses.iter().map(|a| a.preferred_lft).collect::<Vec<_>>(), [None, Some(0)]);
    }

    #[test]
    fn what_is_not_applied_is_warned_about_where_it_is_written() {
        let (addresses, messages) = read("  10.0.0.1/24 track_group G1 use_vmac colour\n  10.0.0.2 preferred_lft soon peer fd00::1");
        assert_eq!(addresses[0].options, ["track_group G1", "use_vmac", "colour"]);
        assert!(messages.contains("k.conf:6:15: warning: `track_group` on virtual address 10.0.0.1 is not implemented"), "{messages}");
        assert!(messages.contains("k.conf:6:30: warning: `use_vmac` on virtual address 10.0.0.1 is not implemented"), "{messages}");
        assert!(messages.contains("k.conf:6:39: warning: `colour` on virtual address 10.0.0.1 is not an option"), "{messages}");
        assert!(messages.contains("k.conf:7:26: error: preferred_lft takes a number of seconds or `forever`, not `soon`"), "{messages}");
        assert!(messages.contains("k.conf:7:36: error: peer `fd00::1` is not an address of the family of 10.0.0.2"), "{messages}");
    }
}
