//! The receive checks of RFC 9568 §7.1 (and RFC 3768 §7.1 for v2) that need the instance's
//! configuration, as a pure function. The XDP guard already dropped what it can judge alone
//! (TTL, version, type, length, unknown VRID, foreign unicast source); these checks run again
//! here because adverts can reach the socket without the guard (generic fallback, tests), and
//! add authentication, interval and address checks. Each refusal has a reason to count.
use std::{net::IpAddr, time::Duration};

use serde::Serialize;

use super::fsm::{Advert, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardReason {
    /// TTL / hop limit other than 255: the packet was routed (RFC 9568 §7.1).
    BadTtl,
    /// A version other than the instance's.
    VersionMismatch,
    /// v2 authentication type or password differs (RFC 3768 §7.1 / keepalived).
    AuthMismatch,
    /// v2: "MUST verify that the Adver Interval in the packet is the same as the locally
    /// configured for this virtual router" (RFC 3768 §7.1).
    IntervalMismatch,
    /// The advertised addresses are not the configured ones (RFC 9568 §7.1 MAY; keepalived
    /// drops unless the sender is the owner, priority 255).
    AddressMismatch,
    /// Our own advert looped back (source is our primary address).
    OwnAdvert,
    /// Unicast instance: the source is not among `unicast_peer`.
    ForeignSource,
}

/// What the instance expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect<'a> {
    pub version: Version,
    pub advert_interval: Duration,
    /// v2 simple-text password (at most 8 bytes), None for no authentication.
    pub auth_pass: Option<&'a [u8]>,
    /// The virtual addresses in the instance's family, in configuration order.
    pub addresses: &'a [IpAddr],
    pub primary_address: IpAddr,
    /// Empty for multicast.
    pub unicast_peers: &'a [IpAddr],
}

/// A received advert as the checks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<'a> {
    pub source: IpAddr,
    pub ttl: u8,
    pub version: Version,
    pub priority: u8,
    pub interval: Duration,
    /// v2: Some(data) when auth type 1 (simple text), None for type 0.
    pub auth_pass: Option<&'a [u8]>,
    pub addresses: &'a [IpAddr],
}

/// Accept (and turn into the fsm's event) or refuse with the reason.
pub fn check(expect: &Expect, received: &Received) -> Result<Advert, DiscardReason> {
    // Unicast adverts may have been routed (keepalived sends IPv6 unicast with the default
    // hop limit); their source is checked against unicast_peer instead.
    if received.ttl != 255 && expect.unicast_peers.is_empty() {
        return Err(DiscardReason::BadTtl);
    }
    if received.version != expect.version {
        return Err(DiscardReason::VersionMismatch);
    }
    if received.source == expect.primary_address {
        return Err(DiscardReason::OwnAdvert);
    }
    if !expect.unicast_peers.is_empty() && !expect.unicast_peers.contains(&received.source) {
        return Err(DiscardReason::ForeignSource);
    }
    if expect.version == Version::V2 {
        if !same_password(expect.auth_pass, received.auth_pass) {
            return Err(DiscardReason::AuthMismatch);
        }
        if received.interval != expect.advert_interval {
            return Err(DiscardReason::IntervalMismatch);
        }
    }
    // A priority 0 advert (the Master leaving) and the owner's adverts are taken whatever
    // addresses they carry.
    if received.priority != 0 && received.priority != 255 && !same_addresses(expect.addresses, received.addresses) {
        return Err(DiscardReason::AddressMismatch);
    }
    Ok(Advert { source: received.source, priority: received.priority, interval: received.interval })
}

/// Passwords compare over the 8 bytes of the field: shorter ones are zero-padded.
fn same_password(ours: Option<&[u8]>, theirs: Option<&[u8]>) -> bool {
    let pad = |pass: &[u8]| {
        let mut field = [0u8; 8];
        let length = pass.len().min(8);
        field[..length].copy_from_slice(&pass[..length]);
        field
    };
    match (ours, theirs) {
        (None, None) => true,
        (Some(a), Some(b)) => pad(a) == pad(b),
        _ => false,
    }
}

/// The same set of addresses, in any order.
fn same_addresses(ours: &[IpAddr], theirs: &[IpAddr]) -> bool {
    ours.len() == theirs.len() && ours.iter().all(|a| theirs.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    struct Fixture {
        addresses: Vec<IpAddr>,
        peers: Vec<IpAddr>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture { addresses: vec![ip("10.0.0.100"), ip("10.0.0.101")], peers: Vec::new() }
        }
        fn expect(&self, version: Version) -> Expect<'_> {
            Expect {
                version,
                advert_interval: Duration::from_secs(1),
                auth_pass: None,
                addresses: &self.addresses,
                primary_address: ip("10.0.0.2"),
                unicast_peers: &self.peers,
            }
        }
        fn received(&self, version: Version) -> Received<'_> {
            Received {
                source: ip("10.0.0.1"),
                ttl: 255,
                version,
                priority: 100,
                interval: Duration::from_secs(1),
                auth_pass: None,
                addresses: &self.addresses,
            }
        }
    }

    #[test]
    fn a_matching_advert_becomes_an_fsm_event() {
        let f = Fixture::new();
        let advert = check(&f.expect(Version::V3), &f.received(Version::V3)).unwrap();
        assert_eq!((advert.source, advert.priority), (ip("10.0.0.1"), 100));
    }

    #[test]
    fn ttl_must_be_255_rfc9568_7_1() {
        let f = Fixture::new();
        let received = Received { ttl: 64, ..f.received(Version::V3) };
        assert_eq!(check(&f.expect(Version::V3), &received), Err(DiscardReason::BadTtl));
    }

    #[test]
    fn a_unicast_peers_advert_may_have_been_routed() {
        let f = Fixture { peers: vec![ip("10.0.0.1")], ..Fixture::new() };
        let routed = Received { ttl: 64, ..f.received(Version::V3) };
        assert!(check(&f.expect(Version::V3), &routed).is_ok());
    }

    #[test]
    fn the_version_must_be_the_instances() {
        let f = Fixture::new();
        assert_eq!(check(&f.expect(Version::V3), &f.received(Version::V2)), Err(DiscardReason::VersionMismatch));
    }

    #[test]
    fn our_own_looped_advert_is_ignored() {
        let f = Fixture::new();
        let received = Received { source: ip("10.0.0.2"), ..f.received(Version::V3) };
        assert_eq!(check(&f.expect(Version::V3), &received), Err(DiscardReason::OwnAdvert));
    }

    #[test]
    fn a_unicast_instance_takes_only_its_peers() {
        let f = Fixture { peers: vec![ip("10.0.0.7")], ..Fixture::new() };
        assert_eq!(check(&f.expect(Version::V3), &f.received(Version::V3)), Err(DiscardReason::ForeignSource));
        let from_peer = Received { source: ip("10.0.0.7"), ..f.received(Version::V3) };
        assert!(check(&f.expect(Version::V3), &from_peer).is_ok());
    }

    #[test]
    fn v2_authentication_must_match_zero_padded_rfc3768_7_1() {
        let f = Fixture::new();
        let expect = Expect { auth_pass: Some(b"1111"), ..f.expect(Version::V2) };
        let padded = Received { auth_pass: Some(b"1111\0\0\0\0"), ..f.received(Version::V2) };
        assert!(check(&expect, &padded).is_ok());
        let wrong = Received { auth_pass: Some(b"2222"), ..f.received(Version::V2) };
        assert_eq!(check(&expect, &wrong), Err(DiscardReason::AuthMismatch));
        assert_eq!(check(&expect, &f.received(Version::V2)), Err(DiscardReason::AuthMismatch), "none vs PASS");
    }

    #[test]
    fn v2_interval_must_match_but_v3_learns_it_rfc3768_7_1() {
        let f = Fixture::new();
        let v2 = Received { interval: Duration::from_secs(2), ..f.received(Version::V2) };
        assert_eq!(check(&f.expect(Version::V2), &v2), Err(DiscardReason::IntervalMismatch));
        let v3 = Received { interval: Duration::from_millis(200), ..f.received(Version::V3) };
        assert_eq!(check(&f.expect(Version::V3), &v3).unwrap().interval, Duration::from_millis(200));
    }

    #[test]
    fn addresses_must_match_in_any_order_except_for_priority_0_and_the_owner() {
        let f = Fixture::new();
        let swapped = [ip("10.0.0.101"), ip("10.0.0.100")];
        let reordered = Received { addresses: &swapped, ..f.received(Version::V3) };
        assert!(check(&f.expect(Version::V3), &reordered).is_ok());
        let other = [ip("10.0.0.100")];
        let missing = Received { addresses: &other, ..f.received(Version::V3) };
        assert_eq!(check(&f.expect(Version::V3), &missing), Err(DiscardReason::AddressMismatch));
        for priority in [0, 255] {
            assert!(check(&f.expect(Version::V3), &Received { priority, ..missing.clone() }).is_ok(), "priority {priority}");
        }
    }
}
