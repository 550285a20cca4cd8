use std::net::IpAddr;

use serde::Serialize;

use super::{Kept, RawEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    #[default]
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authentication {
    pub auth_type: Option<AuthType>,
    /// At most 8 characters (longer is truncated with a warning, as keepalived does).
    pub auth_pass: Option<String>,
}

/// `ADDRESS[/LEN] [brd X] [dev X] [scope X] [label X] ...` in virtual_ipaddress and friends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualAddress {
    pub address: IpAddr,
    /// keepalived's default: 32 (IPv4) / 128 (IPv6).
    pub prefix_len: u8,
    pub brd: Option<String>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    /// `peer ADDR`: the other end of a point-to-point address (IFA_ADDRESS; the address
    /// itself goes in IFA_LOCAL).
    pub peer: Option<IpAddr>,
    /// `preferred_lft N|forever` in seconds, `None` for forever. keepalived's default: 0 for
    /// an IPv6 /128 (deprecated: never chosen as a source address), forever otherwise.
    pub preferred_lft: Option<u32>,
    /// `home`, `mngtmpaddr`, `noprefixroute`, `autojoin`: the kernel's IFA_F_* flags.
    pub home: bool,
    pub mngtmpaddr: bool,
    pub noprefixroute: bool,
    pub autojoin: bool,
    /// `no_track`: removed by another tool while Master, the address is not put back (until
    /// the instance next becomes Master).
    pub no_track: bool,
    /// Options keepxdp does not apply (`track_group`, `use_vmac` on an address line,
    /// unknown words), each warned about with its position by the config reader.
    pub options: Vec<String>,
    pub at: String,
}

/// A reference to a tracked object with keepalived's `weight N [reverse]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
    pub at: String,
}

/// Notify scripts of an instance or a sync group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Notify {
    pub notify: Option<String>,
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tracking {
    pub track_interface: Vec<TrackRef>,
    pub track_script: Vec<TrackRef>,
    pub track_file: Vec<TrackRef>,
    pub track_process: Vec<TrackRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub at: String,
    pub state: InitialState,
    pub interface: Option<String>,
    pub virtual_router_id: Option<u8>,
    /// keepalived's default: 100.
    pub priority: u8,
    /// Seconds; keepalived's default: 1.
    pub advert_int: f64,
    /// 2 or 3: the instance's `version`, else global_defs `vrrp_version`, else 2.
    pub version: u8,
    /// IPv6 when `native_ipv6`, else the family of the first virtual address, else IPv4.
    pub family: Family,
    pub native_ipv6: bool,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    pub virtual_routes: Vec<RawEntry>,
    pub virtual_rules: Vec<RawEntry>,
    pub nopreempt: bool,
    pub preempt_delay: Option<f64>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<IpAddr>,
    pub mcast_src_ip: Option<IpAddr>,
    /// `use_vmac [NAME]`: Some("") when no name is given.
    pub use_vmac: Option<String>,
    pub vmac_xmit_base: bool,
    /// `accept` / `no_accept`; None: keepalived's default (accept unless vrrp_strict).
    pub accept: Option<bool>,
    pub tracking: Tracking,
    pub notify: Notify,
    /// None: not written (the global defaults decide, see `alert::plan`).
    pub smtp_alert: Option<bool>,
    pub garp_master_delay: Option<u32>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<u32>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub dont_track_primary: bool,
    pub v3_checksum_as_v2: bool,
    pub strict_mode: Option<bool>,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub at: String,
    pub group: Vec<String>,
    pub notify: Notify,
    pub tracking: Tracking,
    /// None: not written (the global defaults decide, see `alert::plan`).
    pub smtp_alert: Option<bool>,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub at: String,
    pub script: Option<String>,
    /// Seconds; keepalived's default: 1.
    pub interval: f64,
    pub timeout: Option<f64>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<String>,
    pub init_fail: bool,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackProcess {
    pub name: String,
    pub at: String,
    pub process: Option<String>,
    /// The process's arguments to match (`param_match`'s value is kept in `param_match`).
    pub parameters: Option<String>,
    pub param_match: Option<String>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub quorum: u32,
    pub quorum_max: Option<u32>,
    pub delay: Option<f64>,
    pub not_implemented: Vec<Kept>,
}

impl TrackProcess {
    /// keepalived's defaults: weight 0 (a missing process is FAULT), quorum 1.
    pub fn new(name: String, at: String) -> TrackProcess {
        TrackProcess {
            name,
            at,
            process: None,
            parameters: None,
            param_match: None,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: None,
            delay: None,
            not_implemented: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub at: String,
    pub file: Option<String>,
    pub weight: i32,
    pub weight_reverse: bool,
    /// `init_file [VALUE] [overwrite]`, as written.
    pub init_file: Option<String>,
    pub not_implemented: Vec<Kept>,
}
