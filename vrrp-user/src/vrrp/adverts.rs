//! An instance's adverts at the message level (pure): the bytes it sends to each destination,
//! and what a received datagram means for it (an fsm event, or a counted refusal; the rules
//! are in `discard`).
use std::net::IpAddr;

use anyhow::{Context, Result};

use super::{
    discard::{self, DiscardReason},
    fsm::{Advert, Version},
    link::Datagram,
    spec::InstanceSpec,
    wire::{self, ChecksumContext},
};

/// One advert per destination: the group, or each unicast peer (the v3 pseudo-header
/// checksum covers the destination, so each is built for its own).
pub fn outgoing(spec: &InstanceSpec, source: IpAddr, priority: u8) -> Result<Vec<(IpAddr, Vec<u8>)>> {
    let destinations: Vec<IpAddr> = if spec.unicast_peers.is_empty() { vec![spec.group] } else { spec.unicast_peers.clone() };
    let version = match spec.version {
        Version::V2 => wire::Version::V2 {
            adver_int: spec.advert_interval.as_secs().clamp(1, 255) as u8,
            auth: match &spec.auth_pass {
                Some(pass) => wire::Auth::simple_text(pass)?,
                None => wire::Auth::none(),
            },
        },
        Version::V3 => wire::Version::V3 {
            max_adver_int: wire::Centiseconds::from_duration(spec.advert_interval)
                .context("advert_int out of the 12-bit centisecond range")?,
        },
    };
    let repr = wire::Repr { version, vrid: spec.vrid, priority, addresses: spec.addresses.iter().map(|a| a.address).collect() };
    destinations
        .into_iter()
        .map(|destination| {
            let context = ChecksumContext::new(source, destination).with_v3_ipv4_as_v2(spec.v3_checksum_as_v2);
            Ok((destination, repr.to_bytes(&context)?))
        })
        .collect()
}

/// What a received datagram is to the instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Advert(Advert),
    /// Another virtual router's: not ours to count.
    OtherVrid,
    Malformed,
    Discarded(DiscardReason),
}

/// Judges a datagram for the instance sending from `source`.
pub fn judge(spec: &InstanceSpec, source: IpAddr, datagram: &Result<Datagram, wire::Error>) -> Heard {
    let Ok(advert) = datagram else { return Heard::Malformed };
    if advert.repr.vrid != spec.vrid {
        return Heard::OtherVrid;
    }
    let (version, auth_pass) = match &advert.repr.version {
        wire::Version::V2 { auth, .. } => (Version::V2, auth.password().map(<[u8]>::to_vec)),
        wire::Version::V3 { .. } => (Version::V3, None),
    };
    let ours: Vec<IpAddr> = spec.addresses.iter().map(|a| a.address).collect();
    let expect = discard::Expect {
        version: spec.version,
        advert_interval: spec.advert_interval,
        auth_pass: spec.auth_pass.as_deref(),
        addresses: &ours,
        primary_address: source,
        unicast_peers: &spec.unicast_peers,
    };
    let received = discard::Received {
        source: advert.source,
        ttl: advert.ttl,
        version,
        priority: advert.repr.priority,
        interval: advert.repr.advert_interval(),
        auth_pass: auth_pass.as_deref(),
        addresses: &advert.repr.addresses,
    };
    match discard::check(&expect, &received) {
        Ok(heard) => Heard::Advert(heard),
        Err(reason) => Heard::Discarded(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{spec::tests::spec_v4, wire::Packet};

    fn datagram(bytes: &[u8], source: &str, ttl: u8) -> Result<Datagram, wire::Error> {
        let source: IpAddr = source.parse().unwrap();
        let destination: IpAddr = "224.0.0.18".parse().unwrap();
        let (repr, _) = wire::Repr::parse(&Packet::new_checked(bytes)?, &ChecksumContext::new(source, destination))?;
        Ok(Datagram { source, destination, ttl, repr })
    }

    #[test]
    fn an_advert_we_build_is_heard_by_another_router_of_the_same_configuration() {
        let spec = spec_v4();
        let sent = outgoing(&spec, "10.0.0.2".parse().unwrap(), 150).unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, spec.group);
        let heard = judge(&spec, "10.0.0.3".parse().unwrap(), &datagram(&sent[0].1, "10.0.0.2", 255));
        let Heard::Advert(advert) = heard else { panic!("{heard:?}") };
        assert_eq!((advert.priority, advert.source), (150, "10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn unicast_sends_one_advert_per_peer_and_refuses_strangers() {
        let peers = vec!["10.0.0.3".parse().unwrap(), "10.0.0.4".parse().unwrap()];
        let spec = InstanceSpec { unicast_peers: peers, ..spec_v4() };
        let sent = outgoing(&spec, "10.0.0.2".parse().unwrap(), 100).unwrap();
        assert_eq!(sent.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(), ["10.0.0.3", "10.0.0.4"]);
        let stranger = judge(&spec, "10.0.0.2".parse().unwrap(), &datagram(&sent[0].1, "10.0.0.9", 255));
        assert_eq!(stranger, Heard::Discarded(DiscardReason::ForeignSource));
    }

    #[test]
    fn another_vrid_and_garbage_are_told_apart() {
        let spec = spec_v4();
        let other = outgoing(&InstanceSpec { vrid: 52, ..spec_v4() }, "10.0.0.3".parse().unwrap(), 100).unwrap();
        assert_eq!(judge(&spec, "10.0.0.2".parse().unwrap(), &datagram(&other[0].1, "10.0.0.3", 255)), Heard::OtherVrid);
        assert_eq!(judge(&spec, "10.0.0.2".parse().unwrap(), &datagram(&[0x21, 0], "10.0.0.3", 255)), Heard::Malformed);
    }
}
