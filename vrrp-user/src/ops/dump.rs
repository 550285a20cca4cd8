//! The dumps keepalived writes on its signals, from keepxdp's state: the data dump (SIGUSR1,
//! keepalived.data), the statistics (SIGUSR2, keepalived.stats) and the JSON dump (SIGJSON,
//! keepalived.json, the field names of keepalived's vrrp_json.c). Pure: the daemon hands in
//! its state, `dump_files` writes the text.
use std::{fmt::Write as _, path::Path, time::Duration};

use serde::Serialize;

use super::log::state_name;
use crate::{
    lvs::tables::ServiceView,
    vrrp::{discard::DiscardReason, fsm::State, instance::InstanceStatus, spec::InstanceSpec},
};

/// What a dump is made of.
pub struct DumpInput<'a> {
    pub pid: u32,
    pub config: &'a Path,
    /// Seconds since the Unix epoch when keepxdp started.
    pub started_at: f64,
    pub instances: &'a [(InstanceSpec, InstanceStatus)],
    pub services: &'a [ServiceView],
}

/// keepalived's `state` / `wantstate` numbers (vrrp.h: VRRP_STATE_INIT 0, BACK 1, MAST 2,
/// FAULT 3, STOP 98).
fn state_number(state: State) -> u8 {
    match state {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
        State::Stop => 98,
    }
}

fn version(spec: &InstanceSpec) -> u8 {
    match spec.version {
        crate::vrrp::fsm::Version::V2 => 2,
        crate::vrrp::fsm::Version::V3 => 3,
    }
}

/// `10.0.0.1/24 dev eth0 scope global`, as keepalived lists a virtual address.
fn address_line(spec: &InstanceSpec, address: &crate::config::model::VirtualAddress) -> String {
    let dev = address.dev.as_deref().unwrap_or(&spec.interface);
    let scope = address.scope.as_deref().unwrap_or("global");
    format!("{}/{} dev {dev} scope {scope}", address.address, address.prefix_len)
}

/// `1796188062.071541 (Wed Dec  2 05:07:42.071541 2026)`, keepalived's timestamp.
fn timestamp(seconds: f64) -> String {
    let whole = seconds.trunc() as libc::time_t;
    let micros = ((seconds - seconds.trunc()) * 1e6).round() as u32 % 1_000_000;
    // SAFETY: localtime_r fills `tm` from `whole`; strftime writes at most `buffer.len()`
    // bytes and returns how many.
    let local = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&whole, &mut tm);
        let mut buffer = [0u8; 64];
        let n = libc::strftime(buffer.as_mut_ptr().cast(), buffer.len(), c"%a %b %e %H:%M:%S".as_ptr(), &tm);
        let year = tm.tm_year + 1900;
        format!("{}.{micros:06} {year}", String::from_utf8_lossy(&buffer[..n]))
    };
    format!("{seconds:.6} ({local})")
}

fn interval(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} sec", duration.as_secs())
    } else {
        format!("{} milli-sec", duration.as_millis())
    }
}

/// The data dump: keepalived's "Global definitions", "VRRP Topology" and "LVS Topology"
/// sections, with the fields keepxdp has.
pub fn data_text(input: &DumpInput) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "------< Global definitions >------");
    let _ = writeln!(out, " keepxdp version = {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, " Configuration file = {}", input.config.display());
    let _ = writeln!(out, " Process id = {}", input.pid);
    let _ = writeln!(out, " Started = {}", timestamp(input.started_at));
    let _ = writeln!(out, "------< VRRP Topology >------");
    for (spec, status) in input.instances {
        let state = state_name(status.state);
        let _ = writeln!(out, " VRRP Instance = {}", spec.name);
        let _ = writeln!(out, "   VRRP Version = {}", version(spec));
        let _ = writeln!(out, "   State = {state}");
        let _ = writeln!(out, "   Wantstate = {state}");
        if let Some(reason) = &status.fault_reason {
            let _ = writeln!(out, "   Fault reason = {reason}");
        }
        if let Some(at) = status.last_transition {
            let _ = writeln!(out, "   Last transition = {}", timestamp(at));
        }
        if let Some(ms) = status.master_down_timer_ms {
            let _ = writeln!(out, "   Master down timer = {} usecs", ms * 1000);
        }
        let _ = writeln!(out, "   Interface = {}", spec.interface);
        if let Some(source) = spec.source {
            let _ = writeln!(out, "   Using src_ip = {source}");
        }
        if spec.unicast_peers.is_empty() {
            let _ = writeln!(out, "   Multicast address {}", spec.group);
        } else {
            let peers: Vec<String> = spec.unicast_peers.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "   Unicast Peer = {}", peers.join(", "));
        }
        let _ = writeln!(out, "   Gratuitous ARP delay = {}", spec.garp_delay.as_secs());
        let _ = writeln!(out, "   Gratuitous ARP repeat = {}", spec.garp_repeat);
        let _ = writeln!(out, "   Gratuitous ARP refresh = {}", spec.garp_refresh.map_or(0, |d| d.as_secs()));
        let _ = writeln!(out, "   Gratuitous ARP refresh repeat = {}", spec.garp_refresh_repeat);
        let _ = writeln!(out, "   Virtual Router ID = {}", spec.vrid);
        let _ = writeln!(out, "   Priority = {}", status.base_priority);
        let _ = writeln!(out, "   Effective priority = {}", status.priority);
        let _ = writeln!(out, "   Advert interval = {}", interval(spec.advert_interval));
        if status.state == State::Backup
            && let Some(master) = status.master
        {
            let _ = writeln!(out, "   Master router = {master}");
        }
        let _ = writeln!(out, "   Preempt = {}", if spec.preempt { "enabled" } else { "disabled" });
        if !spec.preempt_delay.is_zero() {
            let _ = writeln!(out, "   Preempt delay = {} secs", spec.preempt_delay.as_secs());
        }
        let _ = writeln!(out, "   Authentication type = {}", if spec.auth_pass.is_some() { "SIMPLE_PASSWORD" } else { "none" });
        let set = if status.state == State::Master { " set" } else { "" };
        let _ = writeln!(out, "   Virtual IP ({}):", spec.addresses.len());
        for address in &spec.addresses {
            let _ = writeln!(out, "     {}{set}", address_line(spec, address));
        }
        if let Some(group) = &spec.sync_group {
            let _ = writeln!(out, "   Sync group = {group}");
        }
    }
    if !input.services.is_empty() {
        lvs_topology(&mut out, input.services);
    }
    out
}

/// keepalived's checker data (`VIP = …, VPORT = …`, `RIP = …`), each real server's checkers
/// under it.
fn lvs_topology(out: &mut String, services: &[ServiceView]) {
    let _ = writeln!(out, "------< LVS Topology >------");
    for service in services {
        let _ = writeln!(out, " VIP = {}, VPORT = {}", service.key.addr, service.key.port);
        let _ = writeln!(out, "   virtual server = {}", service.name);
        let _ = writeln!(out, "   lb_algo = {}", service.scheduler);
        let _ = writeln!(out, "   lb_kind = {:?}", service.forwarding);
        let _ = writeln!(out, "   protocol = {:?}", service.key.protocol);
        if let Some(timeout) = service.persistence {
            let _ = writeln!(out, "   persistence timeout = {timeout}");
        }
        let _ = writeln!(out, "   quorum = {}, hysteresis = {}", service.quorum, service.hysteresis);
        let _ = writeln!(out, "   quorum state = {}", if service.quorum_up { "UP" } else { "DOWN" });
        if service.sorry_in_use {
            let _ = writeln!(out, "   sorry server in use");
        }
        for backend in &service.backends {
            let _ = writeln!(
                out,
                "   RIP = {}, RPORT = {}, WEIGHT = {}, ALIVE = {}",
                backend.plan.addr,
                backend.plan.port,
                backend.weight(),
                if backend.up { "yes" } else { "no" }
            );
            for checker in &backend.checkers {
                let _ = writeln!(
                    out,
                    "     {} = {}{}",
                    checker.name,
                    if checker.up { "UP" } else { "DOWN" },
                    checker.last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default()
                );
            }
        }
    }
}

fn discarded(status: &InstanceStatus, reason: DiscardReason) -> u64 {
    status.discarded.get(&reason).copied().unwrap_or(0)
}

/// keepalived's per-instance statistics, the same layout.
pub fn stats_text(input: &DumpInput) -> String {
    let mut out = String::new();
    for (spec, status) in input.instances {
        let stats = Stats::of(status);
        let _ = writeln!(out, "VRRP Instance: {}", spec.name);
        let _ = writeln!(out, "  Advertisements:");
        let _ = writeln!(out, "    Received: {}", stats.advert_rcvd);
        let _ = writeln!(out, "    Sent: {}", stats.advert_sent);
        let _ = writeln!(out, "  Became master: {}", stats.become_master);
        let _ = writeln!(out, "  Released master: {}", stats.release_master);
        let _ = writeln!(out, "  Packet Errors:");
        let _ = writeln!(out, "    Length: {}", stats.packet_len_err);
        let _ = writeln!(out, "    TTL: {}", stats.ip_ttl_err);
        let _ = writeln!(out, "    Invalid Type: {}", stats.invalid_type_rcvd);
        let _ = writeln!(out, "    Advertisement Interval: {}", stats.advert_interval_err);
        let _ = writeln!(out, "    Address List: {}", stats.addr_list_err);
        let _ = writeln!(out, "  Authentication Errors:");
        let _ = writeln!(out, "    Invalid Type: {}", stats.invalid_authtype);
        let _ = writeln!(out, "    Type Mismatch: {}", stats.authtype_mismatch);
        let _ = writeln!(out, "    Failure: {}", stats.auth_failure);
        let _ = writeln!(out, "  Priority Zero:");
        let _ = writeln!(out, "    Received: {}", stats.pri_zero_rcvd);
        let _ = writeln!(out, "    Sent: {}", stats.pri_zero_sent);
    }
    out
}

/// keepalived's `stats` object (vrrp_json.c).
#[derive(Serialize)]
struct Stats {
    advert_rcvd: u64,
    advert_sent: u64,
    become_master: u64,
    release_master: u64,
    packet_len_err: u64,
    advert_interval_err: u64,
    ip_ttl_err: u64,
    invalid_type_rcvd: u64,
    addr_list_err: u64,
    invalid_authtype: u64,
    authtype_mismatch: u64,
    auth_failure: u64,
    pri_zero_rcvd: u64,
    pri_zero_sent: u64,
}

impl Stats {
    fn of(status: &InstanceStatus) -> Stats {
        Stats {
            advert_rcvd: status.adverts_received,
            advert_sent: status.adverts_sent,
            become_master: status.became_master,
            release_master: status.released_master,
            packet_len_err: status.malformed,
            advert_interval_err: discarded(status, DiscardReason::IntervalMismatch),
            ip_ttl_err: discarded(status, DiscardReason::BadTtl),
            // keepxdp's discard reasons have no counterpart for these two.
            invalid_type_rcvd: 0,
            invalid_authtype: 0,
            addr_list_err: discarded(status, DiscardReason::AddressMismatch),
            authtype_mismatch: 0,
            auth_failure: discarded(status, DiscardReason::AuthMismatch),
            // Not counted by keepxdp yet.
            pri_zero_rcvd: 0,
            pri_zero_sent: 0,
        }
    }
}

/// keepalived's `data` object (vrrp_json.c), the fields keepalived 2.2.7 writes.
#[derive(Serialize)]
struct Data {
    iname: String,
    dont_track_primary: u8,
    skip_check_adv_addr: u8,
    strict_mode: u8,
    vmac_ifname: String,
    ifp_ifname: String,
    master_priority: u8,
    last_transition: f64,
    garp_delay: f64,
    garp_refresh: u64,
    garp_rep: u32,
    garp_refresh_rep: u32,
    garp_lower_prio_delay: u64,
    garp_lower_prio_rep: u32,
    lower_prio_no_advert: u8,
    higher_prio_send_advert: u8,
    vrid: u8,
    base_priority: u8,
    effective_priority: u8,
    vipset: bool,
    promote_secondaries: bool,
    adver_int: f64,
    master_adver_int: f64,
    accept: u8,
    nopreempt: bool,
    preempt_delay: u64,
    state: u8,
    wantstate: u8,
    version: u8,
    smtp_alert: bool,
    notify_deleted: bool,
    vips: Vec<String>,
    auth_type: u8,
}

#[derive(Serialize)]
struct JsonInstance {
    data: Data,
    stats: Stats,
}

/// The JSON dump: an array of `{data, stats}`, one per instance.
pub fn json(input: &DumpInput) -> String {
    let instances: Vec<JsonInstance> = input
        .instances
        .iter()
        .map(|(spec, status)| {
            let master = status.state == State::Master;
            let set = if master { " set" } else { "" };
            let vmac = match &spec.use_vmac {
                Some(name) if name.is_empty() => format!("vrrp.{}", spec.vrid),
                Some(name) => name.clone(),
                None => String::new(),
            };
            JsonInstance {
                data: Data {
                    iname: spec.name.clone(),
                    dont_track_primary: u8::from(!spec.track_primary),
                    skip_check_adv_addr: 0,
                    strict_mode: 0,
                    vmac_ifname: vmac,
                    ifp_ifname: spec.interface.clone(),
                    master_priority: if master { status.priority } else { 0 },
                    last_transition: status.last_transition.unwrap_or(0.0),
                    garp_delay: spec.garp_delay.as_secs_f64(),
                    garp_refresh: spec.garp_refresh.map_or(0, |d| d.as_secs()),
                    garp_rep: spec.garp_repeat,
                    garp_refresh_rep: spec.garp_refresh_repeat,
                    garp_lower_prio_delay: spec.garp_delay.as_secs(),
                    garp_lower_prio_rep: spec.garp_repeat,
                    lower_prio_no_advert: 0,
                    higher_prio_send_advert: 0,
                    vrid: spec.vrid,
                    base_priority: status.base_priority,
                    effective_priority: status.priority,
                    vipset: master,
                    promote_secondaries: false,
                    adver_int: spec.advert_interval.as_secs_f64(),
                    master_adver_int: spec.advert_interval.as_secs_f64(),
                    accept: 1,
                    nopreempt: !spec.preempt,
                    preempt_delay: spec.preempt_delay.as_secs(),
                    state: state_number(status.state),
                    wantstate: state_number(status.state),
                    version: version(spec),
                    smtp_alert: crate::alert::queue::instance_smtp_alert(&spec.name),
                    notify_deleted: false,
                    vips: spec.addresses.iter().map(|a| format!("{}{set}", address_line(spec, a))).collect(),
                    auth_type: u8::from(spec.auth_pass.is_some()),
                },
                stats: Stats::of(status),
            }
        })
        .collect();
    serde_json::to_string(&instances).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests;
