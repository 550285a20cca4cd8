//! The unsolicited Neighbour Advertisement a new Master sends for each virtual IPv6 address
//! (RFC 9568 §6.4.2, RFC 4861 §7.2.6): the ICMPv6 message, to go in an IPv6 packet with
//! hop limit 255 (RFC 4861 §7.1.2), normally from the virtual address to ff02::1.
//!
//! ```text
//!  0               1               2               3
//! |     Type      |     Code      |          Checksum             |
//! |R|S|O|                     Reserved                            |
//! |                   Target Address (16 bytes)                   |
//! | Option type 2 |  Length = 1   |  Target link-layer address... |
//! ```
use std::net::Ipv6Addr;

use super::{Error, Result, checksum};

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Router, Solicited, Override in the top bits; the rest of the word is reserved.
    pub const FLAGS: Field = 4..8;
    pub const TARGET: Field = 8..24;
    pub const OPTION_TYPE: usize = 24;
    /// In units of 8 bytes.
    pub const OPTION_LEN: usize = 25;
    pub const OPTION_LINK_LAYER_ADDRESS: Field = 26..32;
}

/// The message with one target link-layer address option.
pub const MESSAGE_LEN: usize = field::OPTION_LINK_LAYER_ADDRESS.end;
/// ICMPv6's IPv6 next header value, for the pseudo-header.
pub const IPPROTO_ICMPV6: u8 = 58;
pub const TYPE_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// RFC 4861 §4.6.1.
const OPTION_TARGET_LINK_LAYER_ADDRESS: u8 = 2;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// The all-nodes multicast address, where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A Neighbour Advertisement with a target link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborAdvert {
    /// R: the sender is a router. keepalived sets it when the interface forwards IPv6.
    pub router: bool,
    /// S: an answer to a solicitation; never set in an unsolicited advertisement.
    pub solicited: bool,
    /// O: replace cached link-layer addresses; set, so the move takes effect at once.
    pub override_flag: bool,
    pub target: Ipv6Addr,
    pub target_mac: [u8; 6],
}

impl NeighborAdvert {
    /// An unsolicited advertisement with the Override flag, as RFC 4861 §7.2.6 asks.
    pub const fn unsolicited(target: Ipv6Addr, target_mac: [u8; 6], router: bool) -> Self {
        Self {
            router,
            solicited: false,
            override_flag: true,
            target,
            target_mac,
        }
    }

    /// Reads an advertisement sent from `source` to `destination`, checking its checksum.
    /// The first option must be the target link-layer address; later bytes (other options)
    /// count for the checksum only.
    pub fn parse(message: &[u8], source: Ipv6Addr, destination: Ipv6Addr) -> Result<Self> {
        if message.len() < MESSAGE_LEN {
            return Err(Error::Truncated);
        }
        if message[field::TYPE] != TYPE_NEIGHBOR_ADVERTISEMENT {
            return Err(Error::UnexpectedField(
                "ICMPv6 type (not a neighbour advertisement)",
            ));
        }
        if message[field::CODE] != 0 {
            return Err(Error::UnexpectedField("ICMPv6 code (not 0)"));
        }
        if !checksum::verifies(sum(message, source, destination)?) {
            return Err(Error::BadChecksum);
        }
        if message[field::OPTION_TYPE] != OPTION_TARGET_LINK_LAYER_ADDRESS
            || message[field::OPTION_LEN] != 1
        {
            return Err(Error::UnexpectedField(
                "option (not an Ethernet target link-layer address)",
            ));
        }
        let flags = message[field::FLAGS.start];
        let mut target = [0u8; 16];
        target.copy_from_slice(&message[field::TARGET]);
        let mut target_mac = [0u8; 6];
        target_mac.copy_from_slice(&message[field::OPTION_LINK_LAYER_ADDRESS]);
        Ok(Self {
            router: flags & FLAG_ROUTER != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            override_flag: flags & FLAG_OVERRIDE != 0,
            target: Ipv6Addr::from(target),
            target_mac,
        })
    }

    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message into exactly `MESSAGE_LEN` bytes, with the checksum for an IPv6
    /// packet from `source` to `destination`.
    pub fn emit(&self, message: &mut [u8], source: Ipv6Addr, destination: Ipv6Addr) -> Result<()> {
        if message.len() != MESSAGE_LEN {
            return Err(Error::BufferLength {
                expected: MESSAGE_LEN,
                actual: message.len(),
            });
        }
        message[field::TYPE] = TYPE_NEIGHBOR_ADVERTISEMENT;
        message[field::CODE] = 0;
        message[field::CHECKSUM].fill(0);
        let flags = [
            (self.router, FLAG_ROUTER),
            (self.solicited, FLAG_SOLICITED),
            (self.override_flag, FLAG_OVERRIDE),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, bit)| flags | bit);
        message[field::FLAGS].copy_from_slice(&[flags, 0, 0, 0]);
        message[field::TARGET].copy_from_slice(&self.target.octets());
        message[field::OPTION_TYPE] = OPTION_TARGET_LINK_LAYER_ADDRESS;
        message[field::OPTION_LEN] = 1;
        message[field::OPTION_LINK_LAYER_ADDRESS].copy_from_slice(&self.target_mac);
        let value = checksum::finish(sum(message, source, destination)?);
        message[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
        Ok(())
    }

    pub fn to_bytes(&self, source: Ipv6Addr, destination: Ipv6Addr) -> [u8; MESSAGE_LEN] {
        let mut message = [0; MESSAGE_LEN];
        self.emit(&mut message, source, destination)
            .expect("the array is MESSAGE_LEN long");
        message
    }
}

/// The ICMPv6 checksum sum: the IPv6 pseudo-header (next header 58) and the message.
fn sum(message: &[u8], source: Ipv6Addr, destination: Ipv6Addr) -> Result<u16> {
    let length = u32::try_from(message.len()).map_err(|_| Error::Truncated)?;
    let pseudo = checksum::ipv6_pseudo_header(source, destination, IPPROTO_ICMPV6, length);
    Ok(checksum::combine(&[pseudo, checksum::data(message)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Debian's keepalived 2.2.7 becoming Master of fd00:9::100 (`version 3`,
    /// `native_ipv6`) on veth `a` (MAC ce:d6:68:14:50:39, IPv6 forwarding off) in a netns,
    /// with `tcpdump -i b 'icmp6 and ip6[40]==136'` on the peer: the ICMPv6 message of an
    /// IPv6 packet from fd00:9::100 to ff02::1, hop limit 255. tshark: Override set, Router
    /// and Solicited not set, "Checksum Status: Good".
    const UNSOLICITED_NA_BYTES: [u8; 32] = [
        0x88, 0x00, 0xd3, 0x67, // type 136, code 0, checksum
        0x20, 0x00, 0x00, 0x00, // O
        0xfd, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, // target fd00:9::100
        0x02, 0x01, 0xce, 0xd6, 0x68, 0x14, 0x50, 0x39, // target link-layer address option
    ];
    const VIP: Ipv6Addr = Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 0x100);
    const MAC: [u8; 6] = [0xce, 0xd6, 0x68, 0x14, 0x50, 0x39];

    #[test]
    fn emits_what_keepalived_sends() {
        let advert = NeighborAdvert::unsolicited(VIP, MAC, false);
        assert_eq!(advert.to_bytes(VIP, ALL_NODES), UNSOLICITED_NA_BYTES);
    }

    #[test]
    fn parse_then_emit_gives_the_same_bytes() {
        let advert = NeighborAdvert::parse(&UNSOLICITED_NA_BYTES, VIP, ALL_NODES).unwrap();
        assert_eq!(advert, NeighborAdvert::unsolicited(VIP, MAC, false));
        let mut message = [0u8; MESSAGE_LEN];
        advert.emit(&mut message, VIP, ALL_NODES).unwrap();
        assert_eq!(message, UNSOLICITED_NA_BYTES);
    }

    #[test]
    fn router_flag_round_trips() {
        let advert = NeighborAdvert::unsolicited(VIP, MAC, true);
        let bytes = advert.to_bytes(VIP, ALL_NODES);
        assert_eq!(bytes[4], FLAG_ROUTER | FLAG_OVERRIDE);
        assert_eq!(
            NeighborAdvert::parse(&bytes, VIP, ALL_NODES).unwrap(),
            advert
        );
    }

    #[test]
    fn checksum_covers_the_ipv6_addresses() {
        let other_source = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            NeighborAdvert::parse(&UNSOLICITED_NA_BYTES, other_source, ALL_NODES),
            Err(Error::BadChecksum)
        );
        let mut corrupt = UNSOLICITED_NA_BYTES;
        corrupt[31] ^= 1;
        assert_eq!(
            NeighborAdvert::parse(&corrupt, VIP, ALL_NODES),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            NeighborAdvert::parse(&UNSOLICITED_NA_BYTES[..31], VIP, ALL_NODES),
            Err(Error::Truncated)
        );
        let mut short = [0u8; 31];
        assert_eq!(
            NeighborAdvert::unsolicited(VIP, MAC, false).emit(&mut short, VIP, ALL_NODES),
            Err(Error::BufferLength {
                expected: 32,
                actual: 31
            })
        );
        let mut solicitation = UNSOLICITED_NA_BYTES;
        solicitation[field::TYPE] = 135;
        assert!(matches!(
            NeighborAdvert::parse(&solicitation, VIP, ALL_NODES),
            Err(Error::UnexpectedField(_))
        ));
        // A source link-layer address option (type 1), checksum fixed up so only the
        // option is wrong.
        let mut wrong_option = UNSOLICITED_NA_BYTES;
        wrong_option[field::OPTION_TYPE] = 1;
        wrong_option[field::CHECKSUM].fill(0);
        let value = checksum::finish(sum(&wrong_option, VIP, ALL_NODES).unwrap());
        wrong_option[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
        assert!(matches!(
            NeighborAdvert::parse(&wrong_option, VIP, ALL_NODES),
            Err(Error::UnexpectedField(_))
        ));
    }
}
