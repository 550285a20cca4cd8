//! The LVS half of keepalived.conf: virtual server groups, virtual servers, their real
//! servers and health checkers. Defaults are keepalived 2.2.7's (checked against its
//! `keepalived -t` output); a value that a lower level inherits from a higher one (checker
//! from real server, real server from virtual server) is an `Option`, None meaning "inherit".
use std::net::IpAddr;

use serde::Serialize;

use super::{Family, Kept};

/// `virtual_server_group NAME { ... }`.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub at: String,
    pub entries: Vec<GroupEntry>,
    pub not_implemented: Vec<Kept>,
}

/// One line of a virtual_server_group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupEntry {
    /// `IP [PORT]`; port None when omitted or 0 (only valid for persistent services).
    Address { ip: IpAddr, port: Option<u16>, at: String },
    /// `IP-LAST [PORT]` (last IPv4 octet in decimal, last IPv6 group in hex),
    /// `IP-IP [PORT]` or `IP/LEN [PORT]`, as the inclusive range `first..=last`.
    Range { first: IpAddr, last: IpAddr, port: Option<u16>, at: String },
    /// `fwmark N [inet|inet6]`.
    Fwmark { mark: u32, family: Option<Family>, at: String },
}

/// What a virtual_server statement names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VirtualServerKey {
    /// `virtual_server IP [PORT]`; port None when omitted or 0.
    Address { ip: IpAddr, port: Option<u16> },
    Fwmark { mark: u32 },
    Group { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum LbKind {
    #[default]
    Nat,
    Dr,
    Tun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TunnelChecksum {
    #[default]
    Nocsum,
    Csum,
    Remcsum,
}

/// `TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct TunnelOptions {
    pub tunnel_type: TunnelType,
    /// Required for (and only allowed with) GUE.
    pub port: Option<u16>,
    pub checksum: TunnelChecksum,
}

/// `lb_kind` / `lvs_method`: how packets reach the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Forwarding {
    pub kind: LbKind,
    /// Some exactly when `kind` is TUN.
    pub tunnel: Option<TunnelOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SorryServer {
    pub ip: IpAddr,
    pub port: Option<u16>,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
    /// `sorry_server_lvs_method`; None: the virtual server's.
    pub lvs_method: Option<Forwarding>,
}

/// `virtual_server IP [PORT] | fwmark N | group NAME { ... }`.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualServer {
    pub key: VirtualServerKey,
    pub at: String,
    /// Seconds between checks; keepalived's default: 60.
    pub delay_loop: f64,
    /// `lb_algo` / `lvs_sched`; keepalived's default: wlc.
    pub lb_algo: String,
    /// `lb_kind` / `lvs_method`; keepalived's default: NAT.
    pub lb_kind: Forwarding,
    /// Seconds; `persistence_timeout` alone, or `persistence_granularity` or a zero port
    /// without a timeout, mean keepalived's 360.
    pub persistence_timeout: Option<u32>,
    /// An IPv4 netmask (`255.255.255.0`) or an IPv6 prefix length (`64`), as written.
    pub persistence_granularity: Option<String>,
    /// keepalived 2.2.7 warns "no protocol set - defaulting to UDP" and uses UDP when an
    /// address service has no `protocol` (the kernel's own default), so UDP it is here too.
    /// keepalived ignores the protocol of fwmark services.
    pub protocol: Protocol,
    pub sorry_server: Option<SorryServer>,
    pub alpha: bool,
    pub omega: bool,
    /// Minimum total weight of live real servers; keepalived's default: 1.
    pub quorum: u32,
    /// keepalived's default: 0.
    pub hysteresis: u32,
    /// Scripts with their arguments (and optional `user [group]`), as written.
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub inhibit_on_failure: bool,
    pub ha_suspend: bool,
    pub smtp_alert: Option<bool>,
    /// Default `Host:` for HTTP_GET/SSL_GET checkers.
    pub virtualhost: Option<String>,
    /// Checker retries; None: the checker's own default (1; DNS_CHECK 3; MISC_CHECK 0).
    pub retry: Option<u32>,
    /// Seconds; None: the checker's default (HTTP/SSL 3, DNS delay_loop, others 1).
    pub delay_before_retry: Option<f64>,
    /// Seconds; keepalived's default: 5.
    pub connect_timeout: f64,
    /// Seconds of random delay before the first check; None: up to delay_loop.
    pub warmup: Option<f64>,
    pub real_servers: Vec<RealServer>,
    pub not_implemented: Vec<Kept>,
}

/// `real_server IP [PORT] { ... }`. Options left None inherit the virtual server's.
#[derive(Debug, Clone, Serialize)]
pub struct RealServer {
    pub ip: IpAddr,
    /// None when omitted or 0 (fwmark services, or DR/TUN reusing the virtual port).
    pub port: Option<u16>,
    pub at: String,
    /// 0..=2147483647 (keepalived 2.2.7 accepts up to INT32_MAX); default 1.
    pub weight: i64,
    pub lvs_method: Option<Forwarding>,
    pub inhibit_on_failure: Option<bool>,
    pub alpha: Option<bool>,
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// Connection limits (0: none).
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub smtp_alert: Option<bool>,
    pub virtualhost: Option<String>,
    pub connect_timeout: Option<f64>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub delay_loop: Option<f64>,
    pub checkers: Vec<Checker>,
    pub not_implemented: Vec<Kept>,
}

/// Options every checker block takes. None: the real server's value. MISC_CHECK has no
/// connection options (connect_ip .. fwmark).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckerCommon {
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub connect_timeout: Option<f64>,
    /// `retry`, or the deprecated `nb_get_retry`.
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub delay_loop: Option<f64>,
    /// SO_MARK for the checker's packets.
    pub fwmark: Option<u32>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Checker {
    TcpCheck(PlainCheck),
    HttpGet(HttpCheck),
    SslGet(HttpCheck),
    MiscCheck(MiscCheck),
    DnsCheck(DnsCheck),
    SmtpCheck(SmtpCheck),
    UdpCheck(UdpCheck),
    PingCheck(PlainCheck),
    /// Recognized, kept, not implemented.
    FileCheck(Kept),
    BfdCheck(Kept),
}

/// TCP_CHECK and PING_CHECK: only the common options.
#[derive(Debug, Clone, Serialize)]
pub struct PlainCheck {
    pub common: CheckerCommon,
    pub at: String,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum HttpProtocol {
    #[default]
    #[serde(rename = "1.0")]
    V1_0,
    /// 1.0 with `Connection: close`.
    #[serde(rename = "1.0C")]
    V1_0C,
    #[serde(rename = "1.1")]
    V1_1,
}

/// HTTP_GET and SSL_GET.
#[derive(Debug, Clone, Serialize)]
pub struct HttpCheck {
    pub common: CheckerCommon,
    pub at: String,
    /// At least one (keepalived drops a checker without urls).
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: HttpProtocol,
    pub enable_sni: bool,
    pub fast_recovery: bool,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    pub at: String,
    /// MD5 of the body as 32 lowercase hex digits.
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges; keepalived's default: 200-299.
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    /// `regex` and its options are kept, not implemented.
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MiscCheck {
    pub common: CheckerCommon,
    pub at: String,
    /// The command with its arguments.
    pub misc_path: String,
    /// Whole seconds (0..=4294); None: delay_loop.
    pub misc_timeout: Option<u32>,
    /// Exit codes 2..=255 set the weight to code - 2.
    pub misc_dynamic: bool,
    /// `USER [GROUP]`.
    pub user: Option<String>,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsType {
    A,
    Ns,
    Cname,
    #[default]
    Soa,
    Mx,
    Txt,
    Aaaa,
    Rrsig,
    Dnskey,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsCheck {
    pub common: CheckerCommon,
    pub at: String,
    /// keepalived's default: SOA.
    pub dns_type: DnsType,
    /// keepalived's default: `.`.
    pub name: String,
    pub not_implemented: Vec<Kept>,
}

/// A deprecated SMTP_CHECK `host { }` block: one more server to check.
#[derive(Debug, Clone, Serialize)]
pub struct SmtpHost {
    pub common: CheckerCommon,
    pub at: String,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmtpCheck {
    pub common: CheckerCommon,
    pub at: String,
    /// None: keepalived's built-in HELO name.
    pub helo_name: Option<String>,
    pub hosts: Vec<SmtpHost>,
    pub not_implemented: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UdpCheck {
    pub common: CheckerCommon,
    pub at: String,
    /// Hex digits (spaces allowed) to send; None: a random payload.
    pub payload: Option<String>,
    pub require_reply: bool,
    /// Hex digits the reply must start with; `x` matches any nibble.
    pub reply_data: Option<String>,
    /// keepalived's defaults: 0 and 255.
    pub min_reply_length: u16,
    pub max_reply_length: u16,
    pub not_implemented: Vec<Kept>,
}
