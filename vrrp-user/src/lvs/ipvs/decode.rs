//! The inverse of `encode`: services and destinations out of the nested attributes of
//! dump replies (`ip_vs_genl_fill_service` / `ip_vs_genl_fill_dest`). Pure. Attributes
//! this module does not use (STATS and STATS64 nests, connection counters, types newer
//! kernels may add) are skipped; a missing or short attribute that it needs is an error,
//! never a panic.
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::FromBytes;
use neli::genl::Nlattr;
use neli::types::Buffer;

use super::attrs::{cmd_attr, dest, fwd, svc, svc_flags};
use super::error::IpvsError;
use super::types::{Family, FwdMethod, IpvsDest, IpvsService, Proto, ServiceKey, Tunnel, TunnelType};

/// A service from the bytes of a nested `IPVS_CMD_ATTR_SERVICE` attribute (header included).
pub fn decode_service(attr: &[u8]) -> Result<IpvsService, IpvsError> {
    service_from_nlattr(&parse_container(attr, cmd_attr::SERVICE)?)
}

/// A destination from the bytes of a nested `IPVS_CMD_ATTR_DEST` attribute (header
/// included). `service_family` stands in for IPVS_DEST_ATTR_ADDR_FAMILY, which kernels
/// before 3.18 do not send (their destinations are always of the service's family).
pub fn decode_dest(attr: &[u8], service_family: Family) -> Result<IpvsDest, IpvsError> {
    dest_from_nlattr(&parse_container(attr, cmd_attr::DEST)?, service_family)
}

pub(super) fn service_from_nlattr(container: &Nlattr<u16, Buffer>) -> Result<IpvsService, IpvsError> {
    let fields = Fields::parse(container)?;
    let family = family(fields.take(svc::AF, "IPVS_SVC_ATTR_AF")?)?;
    let key = match fields.get(svc::FWMARK) {
        Some(mark) => ServiceKey::Fwmark { family, mark: u32_ne(mark, "IPVS_SVC_ATTR_FWMARK")? },
        None => {
            let code = u16_ne(fields.take(svc::PROTOCOL, "IPVS_SVC_ATTR_PROTOCOL")?, "IPVS_SVC_ATTR_PROTOCOL")?;
            let protocol = Proto::from_code(code).ok_or_else(|| malformed(format!("protocol {code} is not TCP, UDP or SCTP")))?;
            let addr = inet_addr(family, fields.take(svc::ADDR, "IPVS_SVC_ATTR_ADDR")?)?;
            let port = be16(fields.take(svc::PORT, "IPVS_SVC_ATTR_PORT")?, "IPVS_SVC_ATTR_PORT")?;
            ServiceKey::Addr { protocol, addr, port }
        }
    };
    let scheduler = string(fields.take(svc::SCHED_NAME, "IPVS_SVC_ATTR_SCHED_NAME")?);
    let flags = match fields.get(svc::FLAGS) {
        Some(bytes) => flags(bytes)?,
        None => 0,
    };
    let timeout = fields.get(svc::TIMEOUT).map(|b| u32_ne(b, "IPVS_SVC_ATTR_TIMEOUT")).transpose()?.unwrap_or(0);
    let netmask = match fields.get(svc::NETMASK) {
        Some(bytes) => netmask(family, bytes)?,
        None => IpvsService::default_netmask(family),
    };
    let pe_name = fields.get(svc::PE_NAME).map(string).filter(|name| !name.is_empty());
    Ok(IpvsService { key, scheduler, flags, timeout, netmask, pe_name })
}

pub(super) fn dest_from_nlattr(container: &Nlattr<u16, Buffer>, service_family: Family) -> Result<IpvsDest, IpvsError> {
    let fields = Fields::parse(container)?;
    let family = match fields.get(dest::ADDR_FAMILY) {
        Some(bytes) => family(bytes)?,
        None => service_family,
    };
    let addr = inet_addr(family, fields.take(dest::ADDR, "IPVS_DEST_ATTR_ADDR")?)?;
    let port = be16(fields.take(dest::PORT, "IPVS_DEST_ATTR_PORT")?, "IPVS_DEST_ATTR_PORT")?;
    let method = u32_ne(fields.take(dest::FWD_METHOD, "IPVS_DEST_ATTR_FWD_METHOD")?, "IPVS_DEST_ATTR_FWD_METHOD")? & fwd::MASK;
    let forwarding = match method {
        fwd::MASQ => FwdMethod::Masq,
        fwd::LOCALNODE => FwdMethod::Local,
        fwd::TUNNEL => FwdMethod::Tunnel(tunnel(&fields)?),
        fwd::DROUTE => FwdMethod::DirectRoute,
        fwd::BYPASS => FwdMethod::Bypass,
        other => return Err(malformed(format!("forwarding method {other} is not one of ip_vs.h's"))),
    };
    let weight = u32_ne(fields.take(dest::WEIGHT, "IPVS_DEST_ATTR_WEIGHT")?, "IPVS_DEST_ATTR_WEIGHT")?;
    let optional = |kind, name| fields.get(kind).map(|b| u32_ne(b, name)).transpose().map(Option::unwrap_or_default);
    let upper_threshold = optional(dest::U_THRESH, "IPVS_DEST_ATTR_U_THRESH")?;
    let lower_threshold = optional(dest::L_THRESH, "IPVS_DEST_ATTR_L_THRESH")?;
    Ok(IpvsDest { addr, port, forwarding, weight, upper_threshold, lower_threshold })
}

/// Kernels before 5.2 have IPIP only and send no TUN_* attributes.
fn tunnel(fields: &Fields) -> Result<Tunnel, IpvsError> {
    let kind = match fields.get(dest::TUN_TYPE) {
        Some(bytes) => {
            let code = *bytes.first().ok_or_else(|| malformed("empty IPVS_DEST_ATTR_TUN_TYPE".into()))?;
            TunnelType::from_code(code).ok_or_else(|| malformed(format!("tunnel type {code} is not ipip, gue or gre")))?
        }
        None => TunnelType::Ipip,
    };
    let port = fields.get(dest::TUN_PORT).map(|b| be16(b, "IPVS_DEST_ATTR_TUN_PORT")).transpose()?.unwrap_or(0);
    let flags = fields.get(dest::TUN_FLAGS).map(|b| u16_ne(b, "IPVS_DEST_ATTR_TUN_FLAGS")).transpose()?.unwrap_or(0);
    Ok(Tunnel { kind, port, flags })
}

/// The payloads of a container's attributes by type; the last of a repeated type wins, as
/// in the kernel's nla_parse.
struct Fields {
    payloads: Vec<(u16, Vec<u8>)>,
}

impl Fields {
    fn parse(container: &Nlattr<u16, Buffer>) -> Result<Fields, IpvsError> {
        let handle = container.get_attr_handle::<u16>().map_err(|e| malformed(format!("nested attributes: {e}")))?;
        let payloads = handle
            .iter()
            .map(|attr| (*attr.nla_type().nla_type(), attr.nla_payload().as_ref().to_vec()))
            .collect();
        Ok(Fields { payloads })
    }

    fn get(&self, kind: u16) -> Option<&[u8]> {
        self.payloads.iter().rev().find(|(k, _)| *k == kind).map(|(_, payload)| payload.as_slice())
    }

    fn take(&self, kind: u16, name: &str) -> Result<&[u8], IpvsError> {
        self.get(kind).ok_or_else(|| malformed(format!("{name} is missing")))
    }
}

fn parse_container(bytes: &[u8], expected: u16) -> Result<Nlattr<u16, Buffer>, IpvsError> {
    let container = Nlattr::<u16, Buffer>::from_bytes(&mut Cursor::new(bytes))
        .map_err(|e| malformed(format!("attribute header: {e}")))?;
    let kind = *container.nla_type().nla_type();
    if kind != expected {
        return Err(malformed(format!("attribute type {kind}, expected {expected}")));
    }
    Ok(container)
}

fn family(bytes: &[u8]) -> Result<Family, IpvsError> {
    let code = u16_ne(bytes, "address family")?;
    Family::from_code(code).ok_or_else(|| malformed(format!("address family {code} is neither AF_INET nor AF_INET6")))
}

fn inet_addr(family: Family, bytes: &[u8]) -> Result<IpAddr, IpvsError> {
    match family {
        Family::Inet => Ok(IpAddr::V4(Ipv4Addr::from(array::<4>(bytes, "IPv4 address")?))),
        Family::Inet6 => Ok(IpAddr::V6(Ipv6Addr::from(array::<16>(bytes, "IPv6 address")?))),
    }
}

/// `struct ip_vs_flags`; only the bits under the mask count, and HASHED (kernel
/// bookkeeping, set on every live service) is dropped so a dump compares equal to the
/// service that created it.
fn flags(bytes: &[u8]) -> Result<u32, IpvsError> {
    let raw = array::<8>(bytes, "IPVS_SVC_ATTR_FLAGS")?;
    let (flags, mask) = raw.split_at(4);
    let flags = u32_ne(flags, "flags")?;
    let mask = u32_ne(mask, "mask")?;
    Ok(flags & mask & !svc_flags::HASHED)
}

/// See encode.rs: network order for IPv4 masks, native order for IPv6 prefix lengths.
fn netmask(family: Family, bytes: &[u8]) -> Result<u32, IpvsError> {
    let raw = array::<4>(bytes, "IPVS_SVC_ATTR_NETMASK")?;
    Ok(match family {
        Family::Inet => u32::from_be_bytes(raw),
        Family::Inet6 => u32::from_ne_bytes(raw),
    })
}

/// A NUL-terminated string; bytes after the NUL are ignored.
fn string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn u16_ne(bytes: &[u8], name: &str) -> Result<u16, IpvsError> {
    array::<2>(bytes, name).map(u16::from_ne_bytes)
}

fn be16(bytes: &[u8], name: &str) -> Result<u16, IpvsError> {
    array::<2>(bytes, name).map(u16::from_be_bytes)
}

fn u32_ne(bytes: &[u8], name: &str) -> Result<u32, IpvsError> {
    array::<4>(bytes, name).map(u32::from_ne_bytes)
}

/// The first N bytes; the kernel may send longer payloads (ADDR is always 16 bytes).
fn array<const N: usize>(bytes: &[u8], name: &str) -> Result<[u8; N], IpvsError> {
    bytes
        .get(..N)
        .and_then(|head| <[u8; N]>::try_from(head).ok())
        .ok_or_else(|| malformed(format!("{name} has {} bytes, expected {N}", bytes.len())))
}

fn malformed(message: String) -> IpvsError {
    IpvsError::Malformed(message)
}
