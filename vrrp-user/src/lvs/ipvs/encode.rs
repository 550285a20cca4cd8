//! Services and destinations as the nested attributes the kernel's
//! `ip_vs_genl_parse_service` / `ip_vs_genl_parse_dest` read. Pure: no socket here, so the
//! exact bytes are tested without an `ip_vs` module.
//!
//! Attributes are built with neli's `NlattrBuilder` and nested with `Nlattr::nest`, which
//! pads each to 4 bytes and sets NLA_F_NESTED on the container. Which attributes are sent,
//! and in what order, follows keepalived's libipvs: the kernel needs AF and either FWMARK or
//! PROTOCOL+ADDR+PORT to find a service, and SCHED_NAME, FLAGS, TIMEOUT and NETMASK all
//! present to add or edit one (else EINVAL); a destination needs ADDR and PORT, and
//! FWD_METHOD, WEIGHT, U_THRESH and L_THRESH to be added or edited.
use std::io::Cursor;
use std::net::IpAddr;

use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::types::{Buffer, GenlBuffer};
use neli::{Size, ToBytes};

use super::attrs::{GENL_VERSION, PENAME_MAXLEN, SCHEDNAME_MAXLEN, cmd_attr, dest, svc, svc_flags};
use super::error::IpvsError;
use super::types::{Family, FwdMethod, IpvsDest, IpvsService, ServiceKey, TunnelType};

/// The bytes of the nested `IPVS_CMD_ATTR_SERVICE` attribute (header included) for `service`.
pub fn encode_service_attrs(service: &IpvsService) -> Result<Vec<u8>, IpvsError> {
    attr_bytes(&service_nlattr(service)?)
}

/// The bytes of the nested `IPVS_CMD_ATTR_DEST` attribute (header included) for `dest`.
pub fn encode_dest_attrs(dest: &IpvsDest) -> Result<Vec<u8>, IpvsError> {
    attr_bytes(&dest_nlattr(dest)?)
}

/// The generic-netlink message (header and attributes) of one IPVS request.
pub(super) fn request(
    cmd: u8,
    service: Option<&IpvsService>,
    dest: Option<&IpvsDest>,
) -> Result<Genlmsghdr<u8, u16>, IpvsError> {
    let mut attrs = GenlBuffer::new();
    if let Some(service) = service {
        attrs.push(service_nlattr(service)?);
    }
    if let Some(dest) = dest {
        attrs.push(dest_nlattr(dest)?);
    }
    GenlmsghdrBuilder::default()
        .cmd(cmd)
        .version(GENL_VERSION)
        .attrs(attrs)
        .build()
        .map_err(|e| IpvsError::Netlink(format!("building the request: {e}")))
}

pub(super) fn service_nlattr(service: &IpvsService) -> Result<Nlattr<u16, Buffer>, IpvsError> {
    check_name("scheduler", &service.scheduler, SCHEDNAME_MAXLEN)?;
    let family = service.family();
    let mut attrs = vec![attr(svc::AF, family.code())?];
    match service.key {
        ServiceKey::Fwmark { mark, .. } => {
            if mark == 0 {
                return Err(IpvsError::Invalid("fwmark 0 means \"no mark\" to the kernel".into()));
            }
            attrs.push(attr(svc::FWMARK, mark)?);
        }
        ServiceKey::Addr { protocol, addr, port } => {
            attrs.push(attr(svc::PROTOCOL, protocol.code())?);
            attrs.push(attr(svc::ADDR, inet_addr(&addr))?);
            attrs.push(attr(svc::PORT, be16(port))?);
        }
    }
    attrs.push(attr(svc::SCHED_NAME, service.scheduler.as_str())?);
    if let Some(pe) = &service.pe_name {
        check_name("persistence engine", pe, PENAME_MAXLEN)?;
        attrs.push(attr(svc::PE_NAME, pe.as_str())?);
    }
    attrs.push(attr(svc::FLAGS, flags_payload(service.flags))?);
    attrs.push(attr(svc::TIMEOUT, service.timeout)?);
    attrs.push(attr(svc::NETMASK, netmask_payload(family, service.netmask)?)?);
    nest(cmd_attr::SERVICE, &attrs)
}

pub(super) fn dest_nlattr(d: &IpvsDest) -> Result<Nlattr<u16, Buffer>, IpvsError> {
    if d.weight > i32::MAX as u32 {
        return Err(IpvsError::Invalid(format!("weight {} is above {} (an int in the kernel)", d.weight, i32::MAX)));
    }
    let mut attrs = vec![
        attr(dest::ADDR_FAMILY, d.family().code())?,
        attr(dest::ADDR, inet_addr(&d.addr))?,
        attr(dest::PORT, be16(d.port))?,
        attr(dest::FWD_METHOD, d.forwarding.code())?,
        attr(dest::WEIGHT, d.weight)?,
    ];
    if let FwdMethod::Tunnel(tunnel) = d.forwarding {
        if tunnel.kind == TunnelType::Gue && tunnel.port == 0 {
            return Err(IpvsError::Invalid("a GUE tunnel needs a port".into()));
        }
        // ipvsadm sends all three for every tunnel; kernels before 5.2/5.3 ignore them
        // (attribute types above their maximum are skipped).
        attrs.push(attr(dest::TUN_TYPE, tunnel.kind.code())?);
        attrs.push(attr(dest::TUN_PORT, be16(tunnel.port))?);
        attrs.push(attr(dest::TUN_FLAGS, tunnel.flags)?);
    }
    attrs.push(attr(dest::U_THRESH, d.upper_threshold)?);
    attrs.push(attr(dest::L_THRESH, d.lower_threshold)?);
    nest(cmd_attr::DEST, &attrs)
}

/// `struct ip_vs_flags`: the flags, and a mask of all ones so that an edit sets every
/// flag (keepalived does the same). HASHED is the kernel's own bookkeeping: a NEW_SERVICE
/// carrying it is never hashed (ip_vs_svc_hash refuses "already hashed"), so it is dropped.
fn flags_payload(flags: u32) -> Buffer {
    let mut bytes = (flags & !svc_flags::HASHED).to_ne_bytes().to_vec();
    bytes.extend_from_slice(&u32::MAX.to_ne_bytes());
    Buffer::from(bytes)
}

/// NETMASK is a `__be32` the kernel uses as-is: ANDed with IPv4 addresses (so network
/// order), compared with 1..=128 as a plain integer for IPv6 (so native order).
fn netmask_payload(family: Family, netmask: u32) -> Result<Buffer, IpvsError> {
    match family {
        Family::Inet => Ok(Buffer::from(netmask.to_be_bytes().to_vec())),
        Family::Inet6 if (1..=128).contains(&netmask) => Ok(Buffer::from(netmask.to_ne_bytes().to_vec())),
        Family::Inet6 => Err(IpvsError::Invalid(format!("IPv6 netmask {netmask} is not a prefix length 1..=128"))),
    }
}

/// `union nf_inet_addr`: always 16 bytes, an IPv4 address in the first 4.
fn inet_addr(addr: &IpAddr) -> Buffer {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes = v6.octets(),
    }
    Buffer::from(bytes.to_vec())
}

fn be16(value: u16) -> Buffer {
    Buffer::from(value.to_be_bytes().to_vec())
}

/// A NUL-terminated name in a kernel buffer of `max` bytes.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), IpvsError> {
    if name.is_empty() || name.len() >= max || name.contains('\0') {
        return Err(IpvsError::Invalid(format!("{what} name `{name}` must be 1 to {} bytes", max - 1)));
    }
    Ok(())
}

fn attr<P: Size + ToBytes>(kind: u16, payload: P) -> Result<Nlattr<u16, Buffer>, IpvsError> {
    let nla_type = AttrTypeBuilder::default().nla_type(kind).build().map_err(build_error)?;
    NlattrBuilder::default().nla_type(nla_type).nla_payload(payload).build().map_err(build_error)
}

fn nest(kind: u16, children: &[Nlattr<u16, Buffer>]) -> Result<Nlattr<u16, Buffer>, IpvsError> {
    let mut container = attr(kind, Buffer::from(Vec::new()))?;
    for child in children {
        container = container.nest(child).map_err(build_error)?;
    }
    Ok(container)
}

fn attr_bytes(attr: &Nlattr<u16, Buffer>) -> Result<Vec<u8>, IpvsError> {
    let mut cursor = Cursor::new(Vec::with_capacity(attr.padded_size()));
    attr.to_bytes(&mut cursor).map_err(build_error)?;
    Ok(cursor.into_inner())
}

fn build_error(e: impl std::fmt::Display) -> IpvsError {
    IpvsError::Netlink(format!("building an attribute: {e}"))
}
