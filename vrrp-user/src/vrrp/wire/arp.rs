//! The gratuitous ARP a new Master broadcasts for each virtual IPv4 address (RFC 3768
//! §6.4.2, RFC 9568 §6.4.2), so switches and hosts move the address to its MAC at once.
//!
//! A whole Ethernet frame, since it goes out through a packet socket: broadcast
//! destination, an ARP request whose sender and target protocol addresses are both the
//! virtual address. Like keepalived, the target hardware address is the broadcast address
//! too (RFC 5227's announcements use zeros; receivers ignore it in a request either way).
use std::net::Ipv4Addr;

use super::{Error, Result};

mod field {
    pub type Field = core::ops::Range<usize>;

    // Ethernet II header.
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    // ARP (RFC 826), as offsets in the frame.
    pub const HARDWARE_TYPE: Field = 14..16;
    pub const PROTOCOL_TYPE: Field = 16..18;
    pub const HARDWARE_LEN: usize = 18;
    pub const PROTOCOL_LEN: usize = 19;
    pub const OPERATION: Field = 20..22;
    pub const SENDER_HARDWARE: Field = 22..28;
    pub const SENDER_PROTOCOL: Field = 28..32;
    pub const TARGET_HARDWARE: Field = 32..38;
    pub const TARGET_PROTOCOL: Field = 38..42;
}

/// Ethernet header plus the ARP body, without padding (the NIC pads to 60 bytes).
pub const FRAME_LEN: usize = field::TARGET_PROTOCOL.end;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV4: u16 = 0x0800;
const HARDWARE_ETHERNET: u16 = 1;
const OPERATION_REQUEST: u16 = 1;

/// A gratuitous ARP request announcing that `address` is at `sender_mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GratuitousArp {
    /// The Ethernet source and ARP sender hardware address: the interface's MAC, or the
    /// virtual MAC 00:00:5e:00:01:<vrid> with `use_vmac`.
    pub sender_mac: [u8; 6],
    /// The virtual address, both sender and target protocol address.
    pub address: Ipv4Addr,
    /// The ARP target hardware address; `new` uses broadcast, as keepalived does.
    pub target_mac: [u8; 6],
}

impl GratuitousArp {
    pub const fn new(sender_mac: [u8; 6], address: Ipv4Addr) -> Self {
        Self {
            sender_mac,
            address,
            target_mac: BROADCAST_MAC,
        }
    }

    /// Reads a frame, refusing anything but a broadcast Ethernet/IPv4 ARP request whose
    /// sender and target addresses are equal. Bytes past `FRAME_LEN` (padding) are ignored.
    pub fn parse(frame: &[u8]) -> Result<Self> {
        let frame = frame.get(..FRAME_LEN).ok_or(Error::Truncated)?;
        let u16_at =
            |range: field::Field| u16::from_be_bytes([frame[range.start], frame[range.start + 1]]);
        let mac_at = |range: field::Field| -> [u8; 6] {
            let mut mac = [0; 6];
            mac.copy_from_slice(&frame[range]);
            mac
        };
        let ipv4_at = |range: field::Field| {
            Ipv4Addr::new(
                frame[range.start],
                frame[range.start + 1],
                frame[range.start + 2],
                frame[range.start + 3],
            )
        };
        if mac_at(field::DESTINATION) != BROADCAST_MAC {
            return Err(Error::UnexpectedField(
                "Ethernet destination (not broadcast)",
            ));
        }
        if u16_at(field::ETHERTYPE) != ETHERTYPE_ARP {
            return Err(Error::UnexpectedField("EtherType (not ARP)"));
        }
        if u16_at(field::HARDWARE_TYPE) != HARDWARE_ETHERNET
            || u16_at(field::PROTOCOL_TYPE) != ETHERTYPE_IPV4
            || frame[field::HARDWARE_LEN] != 6
            || frame[field::PROTOCOL_LEN] != 4
        {
            return Err(Error::UnexpectedField(
                "ARP hardware/protocol (not Ethernet/IPv4)",
            ));
        }
        if u16_at(field::OPERATION) != OPERATION_REQUEST {
            return Err(Error::UnexpectedField("ARP operation (not a request)"));
        }
        let sender_mac = mac_at(field::SENDER_HARDWARE);
        if mac_at(field::SOURCE) != sender_mac {
            return Err(Error::UnexpectedField(
                "Ethernet source (not the ARP sender)",
            ));
        }
        let address = ipv4_at(field::SENDER_PROTOCOL);
        if ipv4_at(field::TARGET_PROTOCOL) != address {
            return Err(Error::UnexpectedField(
                "ARP target address (not the sender's)",
            ));
        }
        Ok(Self {
            sender_mac,
            address,
            target_mac: mac_at(field::TARGET_HARDWARE),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        FRAME_LEN
    }

    /// Writes the frame into exactly `FRAME_LEN` bytes.
    pub fn emit(&self, frame: &mut [u8]) -> Result<()> {
        if frame.len() != FRAME_LEN {
            return Err(Error::BufferLength {
                expected: FRAME_LEN,
                actual: frame.len(),
            });
        }
        frame[field::DESTINATION].copy_from_slice(&BROADCAST_MAC);
        frame[field::SOURCE].copy_from_slice(&self.sender_mac);
        frame[field::ETHERTYPE].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        frame[field::HARDWARE_TYPE].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        frame[field::PROTOCOL_TYPE].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame[field::HARDWARE_LEN] = 6;
        frame[field::PROTOCOL_LEN] = 4;
        frame[field::OPERATION].copy_from_slice(&OPERATION_REQUEST.to_be_bytes());
        frame[field::SENDER_HARDWARE].copy_from_slice(&self.sender_mac);
        frame[field::SENDER_PROTOCOL].copy_from_slice(&self.address.octets());
        frame[field::TARGET_HARDWARE].copy_from_slice(&self.target_mac);
        frame[field::TARGET_PROTOCOL].copy_from_slice(&self.address.octets());
        Ok(())
    }

    pub fn to_frame(&self) -> [u8; FRAME_LEN] {
        let mut frame = [0; FRAME_LEN];
        self.emit(&mut frame).expect("the array is FRAME_LEN long");
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Debian's keepalived 2.2.7 becoming Master for 10.9.0.100 on veth `a`
    /// (MAC fe:f2:e0:78:9f:22) in a netns, with `tcpdump -i b arp` on the peer; tshark
    /// decodes it as "request/gratuitous ARP", "Is gratuitous: True".
    const GARP_FRAME_BYTES: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xf2, 0xe0, 0x78, 0x9f, 0x22, 0x08,
        0x06, // Ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
        0xfe, 0xf2, 0xe0, 0x78, 0x9f, 0x22, 0x0a, 0x09, 0x00, 0x64, // sender
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x09, 0x00, 0x64, // target
    ];
    const MAC: [u8; 6] = [0xfe, 0xf2, 0xe0, 0x78, 0x9f, 0x22];
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 100);

    #[test]
    fn emits_what_keepalived_sends() {
        assert_eq!(GratuitousArp::new(MAC, VIP).to_frame(), GARP_FRAME_BYTES);
    }

    #[test]
    fn parse_then_emit_gives_the_same_bytes() {
        let garp = GratuitousArp::parse(&GARP_FRAME_BYTES).unwrap();
        assert_eq!(garp, GratuitousArp::new(MAC, VIP));
        let mut frame = [0u8; FRAME_LEN];
        garp.emit(&mut frame).unwrap();
        assert_eq!(frame, GARP_FRAME_BYTES);
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut padded = GARP_FRAME_BYTES.to_vec();
        padded.resize(60, 0);
        assert_eq!(GratuitousArp::parse(&padded).unwrap().address, VIP);
    }

    #[test]
    fn rfc5227_zero_target_hardware_address_is_kept() {
        let announcement = GratuitousArp {
            target_mac: [0; 6],
            ..GratuitousArp::new(MAC, VIP)
        };
        let frame = announcement.to_frame();
        assert_eq!(frame[field::TARGET_HARDWARE], [0; 6]);
        assert_eq!(GratuitousArp::parse(&frame).unwrap(), announcement);
    }

    #[test]
    fn errors() {
        assert_eq!(
            GratuitousArp::parse(&GARP_FRAME_BYTES[..41]),
            Err(Error::Truncated)
        );
        let mut frame = [0u8; 41];
        assert_eq!(
            GratuitousArp::new(MAC, VIP).emit(&mut frame),
            Err(Error::BufferLength {
                expected: 42,
                actual: 41
            })
        );
        for (byte, value) in [
            (0, 0x01),                              // unicast destination
            (12, 0x86),                             // EtherType
            (15, 0x06),                             // hardware type
            (21, 0x02),                             // reply
            (6, 0x00),                              // Ethernet source differs from the ARP sender
            (field::TARGET_PROTOCOL.end - 1, 0x65), // not gratuitous: target != sender
        ] {
            let mut frame = GARP_FRAME_BYTES;
            frame[byte] = value;
            assert!(
                matches!(GratuitousArp::parse(&frame), Err(Error::UnexpectedField(_))),
                "byte {byte}"
            );
        }
    }
}
