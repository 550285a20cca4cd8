//! The instance's VRRP socket behind a small trait (`VrrpLink`): receive a parsed advert with
//! what its IP header said, send a message to a destination. `Link` is the real one, either
//! family; the runtime's replay tests put a recording fake in its place.
use std::{io, net::IpAddr};

use anyhow::Result;

use super::{
    socket::{VrrpSocketV4, VrrpSocketV6},
    wire::{self, ChecksumContext, Packet, Repr},
};

/// A received advert and its IP header's facts.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    pub repr: Repr,
}

pub trait VrrpLink: Send + Sync {
    /// The next datagram; the inner error is a malformed one (to count, not to stop on).
    fn recv(&self, buffer: &mut [u8]) -> impl Future<Output = io::Result<Result<Datagram, wire::Error>>> + Send;
    fn send(&self, message: &[u8], destination: IpAddr) -> impl Future<Output = io::Result<()>> + Send;
}

/// Where the sockets go: received on the instance's interface, sent on `send_interface`
/// (its vmac, unless vmac_xmit_base), from `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlace {
    pub interface: String,
    pub ifindex: u32,
    pub send_interface: String,
    pub send_ifindex: u32,
    pub source: IpAddr,
    pub group: IpAddr,
}

pub enum Link {
    V4(VrrpSocketV4),
    V6(VrrpSocketV6),
}

impl Link {
    pub fn open(place: &LinkPlace) -> Result<Link> {
        match (place.group, place.source) {
            (IpAddr::V4(group), IpAddr::V4(source)) => Ok(Link::V4(VrrpSocketV4::open(
                &place.interface,
                place.ifindex,
                source,
                group,
                &place.send_interface,
                place.send_ifindex,
            )?)),
            (IpAddr::V6(group), IpAddr::V6(source)) => Ok(Link::V6(VrrpSocketV6::open(
                &place.interface,
                place.ifindex,
                source,
                group,
                &place.send_interface,
                place.send_ifindex,
            )?)),
            _ => anyhow::bail!("source {} and group {} are of different families", place.source, place.group),
        }
    }
}

impl VrrpLink for Link {
    async fn recv(&self, buffer: &mut [u8]) -> io::Result<Result<Datagram, wire::Error>> {
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

    async fn send(&self, message: &[u8], destination: IpAddr) -> io::Result<()> {
        match (self, destination) {
            (Link::V4(socket), IpAddr::V4(destination)) => socket.send(message, destination).await,
            (Link::V6(socket), IpAddr::V6(destination)) => socket.send(message, destination).await,
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "destination of the other address family")),
        }
    }
}
