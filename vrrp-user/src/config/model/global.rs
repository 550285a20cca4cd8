use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::Kept;

/// `smtp_server`: an address or a host name (resolved when an alert is sent) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

/// `global_defs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    /// `smtp_server ADDRESS|NAME [PORT]` (port 25 when omitted).
    pub smtp_server: Option<SmtpServer>,
    /// Seconds for each step of the SMTP dialogue (keepalived: 30).
    pub smtp_connect_timeout: Option<u32>,
    pub smtp_helo_name: Option<String>,
    /// `smtp_alert [BOOL]`: the default of every instance, sync group, virtual and real
    /// server's `smtp_alert`; `smtp_alert_vrrp` / `smtp_alert_checker` override it for VRRP
    /// and for the checkers. None: not written.
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    /// No mail for an instance or group entering FAULT.
    pub no_email_faults: bool,
    /// Checker mails only when the real server's combined state changes.
    pub no_checker_emails: bool,
    pub vrrp_mcast_group4: Option<Ipv4Addr>,
    pub vrrp_mcast_group6: Option<Ipv6Addr>,
    /// Default VRRP version for instances (keepalived: 2).
    pub vrrp_version: Option<u8>,
    pub vrrp_strict: bool,
    pub vrrp_garp_master_delay: Option<u32>,
    pub vrrp_garp_master_repeat: Option<u32>,
    pub vrrp_garp_master_refresh: Option<u32>,
    pub vrrp_garp_master_refresh_repeat: Option<u32>,
    pub vrrp_garp_interval: Option<f64>,
    pub vrrp_gna_interval: Option<f64>,
    pub enable_script_security: bool,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<String>,
    pub vrrp_startup_delay: Option<f64>,
    pub max_auto_priority: Option<i32>,
    /// `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    pub not_implemented: Vec<Kept>,
}

/// keepalived's IPVS sync daemon line: the node that is Master for `vrrp_instance` sends its
/// NAT flow state over `interface`, the others install it. Unset options keep IPVS's defaults
/// (applied by `lvs::sync`: id = the instance's VRID, group 224.0.0.81, port 8848, ttl 1,
/// maxlen from the interface's MTU).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    pub vrrp_instance: String,
    pub id: Option<u8>,
    /// Largest sync datagram payload, bytes.
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
    /// `FILE:LINE:COL` of the keyword.
    pub at: String,
}
