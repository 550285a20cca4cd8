//! The IPVS seam: with `lb_backend ipvs` keepxdp programs the kernel's IPVS over generic
//! netlink instead of forwarding in XDP, and `keepxdp ipvs import` prints a live IPVS table
//! as keepalived.conf. Everything but `socket` is pure, so the wire format is tested byte
//! for byte against ip_vs.h on kernels without `ip_vs`.
//!
//! - `attrs`: the numbers of include/uapi/linux/ip_vs.h
//! - `types`: services and destinations as plain values
//! - `encode` / `decode`: those values as the kernel's nested attributes, and back
//! - `socket`: the netlink socket (the only side effects)
//! - `import`: a table as keepalived `virtual_server` blocks
pub mod attrs;
mod decode;
mod encode;
mod error;
mod import;
mod socket;
mod types;

#[cfg(test)]
mod tests;

pub use decode::{decode_dest, decode_service};
pub use encode::{encode_dest_attrs, encode_service_attrs};
pub use error::IpvsError;
pub use import::to_keepalived;
pub use socket::IpvsSocket;
pub use types::{Family, FwdMethod, IpvsDest, IpvsService, Proto, ServiceKey, Tunnel, TunnelType};
