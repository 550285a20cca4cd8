//! Plain Rust values for IPVS services and destinations: what `encode` writes and
//! `decode` reads back, compared with `==` when reconciling a wanted table with the live one.
use std::net::IpAddr;

use super::attrs::{AF_INET, AF_INET6, fwd, svc_flags, tun_type};

/// The address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// `AF_INET` / `AF_INET6`.
    pub fn code(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }

    pub fn from_code(code: u16) -> Option<Family> {
        match code {
            AF_INET => Some(Family::Inet),
            AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }
}

/// The protocols IPVS accepts for a service (the kernel refuses any other with
/// EPROTONOSUPPORT, fwmark services included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP.
    pub fn code(self) -> u16 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    pub fn from_code(code: u16) -> Option<Proto> {
        match code {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// keepalived.conf's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Sctp => "SCTP",
        }
    }
}

/// What identifies a service to the kernel: the kernel wants either a firewall mark or
/// protocol + address + port, never both, so the two are one enum rather than optional
/// fields that could disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `virtual_server IP PORT`; port 0 is a port-less (persistent) service.
    Addr { protocol: Proto, addr: IpAddr, port: u16 },
    /// `virtual_server fwmark N`; a mark is never 0 (the kernel reads 0 as "no mark"). The
    /// kernel files fwmark services under TCP and sends no protocol back.
    Fwmark { family: Family, mark: u32 },
}

/// One IPVS virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsService {
    pub key: ServiceKey,
    /// `rr`, `wlc`, `sh`, ...: the kernel loads `ip_vs_<name>`.
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` (attrs::svc_flags). PERSISTENT goes with `timeout`.
    pub flags: u32,
    /// Persistence timeout in seconds (0 unless persistent).
    pub timeout: u32,
    /// Persistence granularity: for IPv4 the mask as a number (`0xffff_ff00` is /24), for
    /// IPv6 the prefix length (1..=128). See `IpvsService::default_netmask`.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

impl IpvsService {
    /// A service with keepalived's defaults: no flags, no persistence, full netmask.
    pub fn new(key: ServiceKey, scheduler: &str) -> IpvsService {
        let family = key.family();
        IpvsService {
            key,
            scheduler: scheduler.to_string(),
            flags: 0,
            timeout: 0,
            netmask: IpvsService::default_netmask(family),
            pe_name: None,
        }
    }

    /// What keepalived and ipvsadm send when no granularity is set: a /32 mask for IPv4 and
    /// prefix length 128 for IPv6 (the kernel refuses an IPv6 netmask outside 1..=128).
    pub fn default_netmask(family: Family) -> u32 {
        match family {
            Family::Inet => u32::MAX,
            Family::Inet6 => 128,
        }
    }

    pub fn family(&self) -> Family {
        self.key.family()
    }

    pub fn is_persistent(&self) -> bool {
        self.flags & svc_flags::PERSISTENT != 0
    }
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

/// Tunnel encapsulation (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn code(self) -> u8 {
        match self {
            TunnelType::Ipip => tun_type::IPIP,
            TunnelType::Gue => tun_type::GUE,
            TunnelType::Gre => tun_type::GRE,
        }
    }

    pub fn from_code(code: u8) -> Option<TunnelType> {
        match code {
            tun_type::IPIP => Some(TunnelType::Ipip),
            tun_type::GUE => Some(TunnelType::Gue),
            tun_type::GRE => Some(TunnelType::Gre),
            _ => None,
        }
    }
}

/// How a tunnelled destination is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tunnel {
    pub kind: TunnelType,
    /// The GUE port (the kernel wants one for GUE); 0 otherwise.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (attrs::tun_flags); 0 is nocsum.
    pub flags: u16,
}

/// How packets reach a destination (`IP_VS_CONN_F_*` forwarding methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FwdMethod {
    /// NAT (keepalived's `NAT`).
    Masq,
    /// The kernel's own address: the kernel reports this for a destination that is local.
    Local,
    /// IP-in-IP, GUE or GRE (keepalived's `TUN`).
    Tunnel(Tunnel),
    /// Direct routing (keepalived's `DR`).
    DirectRoute,
    /// Cache bypass.
    Bypass,
}

impl FwdMethod {
    /// The `IPVS_DEST_ATTR_FWD_METHOD` value.
    pub fn code(self) -> u32 {
        match self {
            FwdMethod::Masq => fwd::MASQ,
            FwdMethod::Local => fwd::LOCALNODE,
            FwdMethod::Tunnel(_) => fwd::TUNNEL,
            FwdMethod::DirectRoute => fwd::DROUTE,
            FwdMethod::Bypass => fwd::BYPASS,
        }
    }
}

/// One IPVS destination (real server) of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsDest {
    /// May be of the other family than the service's only when tunnelled.
    pub addr: IpAddr,
    /// 0 for fwmark services that keep the client's port.
    pub port: u16,
    pub forwarding: FwdMethod,
    /// 0..=i32::MAX (an `int` in the kernel); 0 takes the server out of rotation.
    pub weight: u32,
    /// Connection limits; 0 means none.
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

impl IpvsDest {
    /// A destination with weight 1 and no thresholds (keepalived's defaults).
    pub fn new(addr: IpAddr, port: u16, forwarding: FwdMethod) -> IpvsDest {
        IpvsDest { addr, port, forwarding, weight: 1, upper_threshold: 0, lower_threshold: 0 }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}
