//! The instance's VRRP sockets, either family, behind one interface: receive a parsed
//! advert with what its IP header said, send a message to a destination.
use std::{io, net::IpAddr};

use anyhow::Result;

use super::{
    instance::InstanceSpec,
    socket::{VrrpSocketV4, VrrpSocketV6, link_local_ipv6, primary_ipv4},
    wire::{self, ChecksumContext, Packet, Repr},
};

pub enum Link {
    V4(VrrpSocketV4),
    V6(VrrpSocketV6),
}

/// A received advert and its IP header's facts.
pub struct Datagram {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    pub repr: Repr,
}

impl Link {
    /// Opens the sockets (receiving on the instance's interface, sending on `send_interface`,
    /// its vmac unless vmac_xmit_base); returns the address adverts are sent from (the
    /// instance interface's primary address).
    pub fn open(spec: &InstanceSpec, send_interface: &str) -> Result<(IpAddr, Link)> {
        let send_index = nix::net::if_::if_nametoindex(send_interface)?;
        match spec.group {
            IpAddr::V4(group) => {
                let source = match spec.source {
                    Some(IpAddr::V4(source)) => source,
                    _ => primary_ipv4(&spec.interface)?,
                };
                Ok((IpAddr::V4(source), Link::V4(VrrpSocketV4::open(&spec.interface, spec.ifindex, source, group, send_interface)?)))
            }
            IpAddr::V6(group) => {
                let source = match spec.source {
                    Some(IpAddr::V6(source)) => source,
                    _ => link_local_ipv6(&spec.interface)?,
                };
                Ok((IpAddr::V6(source), Link::V6(VrrpSocketV6::open(&spec.interface, spec.ifindex, source, group, send_interface, send_index)?)))
            }
        }
    }

    /// The next datagram; the inner error is a malformed one (to count, not to stop on).
    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<std::result::Result<Datagram, wire::Error>> {
        match self {
            Link::V4(socket) => {
                let length = socket.recv(buffer).await?;
                Ok(Repr::parse_ipv4_datagram(&buffer[..length]).map(|advert| Datagram {
                    source: IpAddr::V4(advert.source),
                    destination: IpAddr::V4(advert.destination),
                    ttl: advert.ttl,
                    repr: advert.repr,
                }))
            }
            Link::V6(socket) => {
                let received = socket.recv(buffer).await?;
                let context = ChecksumContext::new(IpAddr::V6(received.source), IpAddr::V6(received.destination));
                Ok(Packet::new_checked(&buffer[..received.length])
                    .and_then(|packet| Repr::parse(&packet, &context))
                    .map(|(repr, _)| Datagram {
                        source: IpAddr::V6(received.source),
                        destination: IpAddr::V6(received.destination),
                        ttl: received.hop_limit,
                        repr,
                    }))
            }
        }
    }

    pub async fn send(&self, message: &[u8], destination: IpAddr) -> io::Result<()> {
        match (self, destination) {
            (Link::V4(socket), IpAddr::V4(destination)) => socket.send(message, destination).await,
            (Link::V6(socket), IpAddr::V6(destination)) => socket.send(message, destination).await,
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "destination of the other address family")),
        }
    }
}
