//! Crafted Ethernet frames carrying VRRP adverts (valid or broken on purpose), and a plain
//! TCP frame. The layout follows RFC 3768 §5.1 (v2) and RFC 9568 §5.1 (v3).
use std::net::IpAddr;

use crate::checksum::{finish, sum};

pub const VRRP_MAC_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
pub const VRRP_MAC_V6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];

/// An advert to craft. `Advert::v2`/`v3` give a valid one; tests then break one field.
#[derive(Debug, Clone)]
pub struct Advert {
    pub version: u8,
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    pub ttl: u8,
    pub source: IpAddr,
    pub addresses: Vec<IpAddr>,
    /// Overrides the address count byte (to claim more than is carried).
    pub count_override: Option<u8>,
    /// Cut the frame to this many bytes after building it (IP length fields keep the full size).
    pub truncate_to: Option<usize>,
    pub source_mac: [u8; 6],
    /// v2 `auth_type PASS` (type 1) with this password, zero-padded; `None`: type 0.
    pub auth_pass: Option<&'static str>,
    /// A unicast advert to this address and MAC instead of the VRRP group (`unicast_peer`).
    pub unicast_to: Option<(IpAddr, [u8; 6])>,
}

impl Advert {
    pub fn v2(vrid: u8, source: &str, addresses: &[&str]) -> Advert {
        Advert {
            version: 2,
            kind: 1,
            vrid,
            priority: 100,
            ttl: 255,
            source: source.parse().unwrap(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            count_override: None,
            truncate_to: None,
            source_mac: [0x02, 0, 0, 0, 0, 0x01],
            auth_pass: None,
            unicast_to: None,
        }
    }

    pub fn v3(vrid: u8, source: &str, addresses: &[&str]) -> Advert {
        Advert { version: 3, ..Advert::v2(vrid, source, addresses) }
    }

    /// The VRRP message (header, addresses, v2 auth data) with its checksum.
    pub fn message(&self) -> Vec<u8> {
        let count = self.count_override.unwrap_or(self.addresses.len() as u8);
        let mut message = vec![(self.version << 4) | (self.kind & 0x0f), self.vrid, self.priority, count];
        if self.version == 2 {
            // auth type (0 none, 1 simple text), advert_int 1 s
            message.extend_from_slice(&[u8::from(self.auth_pass.is_some()), 1]);
        } else {
            message.extend_from_slice(&100u16.to_be_bytes()); // max advert int 100 cs
        }
        message.extend_from_slice(&[0, 0]);
        for address in &self.addresses {
            match address {
                IpAddr::V4(a) => message.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => message.extend_from_slice(&a.octets()),
            }
        }
        if self.version == 2 {
            let mut auth = [0u8; 8];
            let pass = self.auth_pass.unwrap_or("").as_bytes();
            auth[..pass.len().min(8)].copy_from_slice(&pass[..pass.len().min(8)]);
            message.extend_from_slice(&auth);
        }
        let mut acc = 0;
        if self.version == 3 {
            acc = pseudo_header_sum(&self.source, &self.destination(), message.len());
        }
        let checksum = finish(sum(&message, acc));
        message[6..8].copy_from_slice(&checksum.to_be_bytes());
        message
    }

    /// The group (224.0.0.18 / ff02::12), or the unicast peer.
    fn destination(&self) -> IpAddr {
        match (self.unicast_to, self.source) {
            (Some((address, _)), _) => address,
            (None, IpAddr::V4(_)) => "224.0.0.18".parse().unwrap(),
            (None, IpAddr::V6(_)) => "ff02::12".parse().unwrap(),
        }
    }

    /// The whole Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let message = self.message();
        let destination = self.destination();
        let mac = |group| self.unicast_to.map_or(group, |(_, mac)| mac);
        let mut frame = match self.source {
            IpAddr::V4(source) => {
                let IpAddr::V4(destination) = destination else { panic!("an IPv4 advert to {destination}") };
                let mut frame = ethernet(mac(VRRP_MAC_V4), self.source_mac, 0x0800);
                let total = (20 + message.len()) as u16;
                let mut ip = vec![0x45, 0xc0];
                ip.extend_from_slice(&total.to_be_bytes());
                ip.extend_from_slice(&[0, 0, 0, 0, self.ttl, 112, 0, 0]);
                ip.extend_from_slice(&source.octets());
                ip.extend_from_slice(&destination.octets());
                let checksum = finish(sum(&ip, 0));
                ip[10..12].copy_from_slice(&checksum.to_be_bytes());
                frame.extend_from_slice(&ip);
                frame
            }
            IpAddr::V6(source) => {
                let IpAddr::V6(destination) = destination else { panic!("an IPv6 advert to {destination}") };
                let mut frame = ethernet(mac(VRRP_MAC_V6), self.source_mac, 0x86dd);
                frame.extend_from_slice(&[0x60, 0, 0, 0]);
                frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
                frame.extend_from_slice(&[112, self.ttl]);
                frame.extend_from_slice(&source.octets());
                frame.extend_from_slice(&destination.octets());
                frame
            }
        };
        frame.extend_from_slice(&message);
        if let Some(length) = self.truncate_to {
            frame.truncate(length);
        }
        frame
    }
}

fn pseudo_header_sum(source: &IpAddr, destination: &IpAddr, length: usize) -> u32 {
    match (source, destination) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut pseudo = s.octets().to_vec();
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 112]);
            pseudo.extend_from_slice(&(length as u16).to_be_bytes());
            sum(&pseudo, 0)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = s.octets().to_vec();
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(length as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 112]);
            sum(&pseudo, 0)
        }
        _ => panic!("{source} and {destination} are of different families"),
    }
}

fn ethernet(destination: [u8; 6], source: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut frame = destination.to_vec();
    frame.extend_from_slice(&source);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame
}

/// A TCP SYN from 10.0.0.1:40000 to `destination`:80, padded to 64 bytes: traffic the guard
/// must hand to the balancer.
pub fn tcp_syn(destination: [u8; 4]) -> Vec<u8> {
    let mut frame = ethernet([0x02, 0, 0, 0, 0, 0x02], [0x02, 0, 0, 0, 0, 0x01], 0x0800);
    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1];
    ip.extend_from_slice(&destination);
    let checksum = finish(sum(&ip, 0));
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    let mut tcp = vec![0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
    let mut pseudo = vec![10, 0, 0, 1];
    pseudo.extend_from_slice(&destination);
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    let checksum = finish(sum(&tcp, sum(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&tcp);
    frame.resize(64, 0);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_advert_frame_has_the_rfc_3768_layout() {
        let frame = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]).frame();
        assert_eq!(frame.len(), 14 + 20 + 8 + 4 + 8);
        assert_eq!(&frame[0..6], &VRRP_MAC_V4);
        assert_eq!(frame[14 + 8], 255, "TTL");
        assert_eq!(frame[14 + 9], 112, "protocol");
        assert_eq!(&frame[34..38], &[0x21, 51, 100, 1]);
        // A correct checksum sums (with itself) to 0xffff.
        assert_eq!(sum(&frame[34..], 0), 0xffff);
        assert_eq!(sum(&frame[14..34], 0), 0xffff);
    }

    #[test]
    fn a_v3_ipv6_advert_checksum_covers_the_pseudo_header() {
        let advert = Advert::v3(7, "fe80::1", &["fd00::7"]);
        let frame = advert.frame();
        assert_eq!(frame.len(), 14 + 40 + 8 + 16);
        assert_eq!(frame[14 + 7], 255, "hop limit");
        let message = &frame[54..];
        assert_eq!(sum(message, pseudo_header_sum(&advert.source, &advert.destination(), message.len())), 0xffff);
    }

    #[test]
    fn a_unicast_v2_advert_with_a_password_carries_both() {
        let mut advert = Advert::v2(51, "10.77.0.1", &["10.77.0.100"]);
        advert.auth_pass = Some("secret");
        advert.unicast_to = Some(("10.77.0.2".parse().unwrap(), [2, 0, 0, 0, 0, 2]));
        let frame = advert.frame();
        assert_eq!(&frame[..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&frame[30..34], &[10, 77, 0, 2]);
        assert_eq!(finish(sum(&frame[14..34], 0)), 0, "IPv4 header checksum");
        let message = &frame[34..];
        assert_eq!(message[4], 1, "auth type simple text");
        assert_eq!(&message[12..20], b"secret\0\0");
        assert_eq!(sum(message, 0), 0xffff);
        let mut v3 = Advert::v3(51, "10.77.0.1", &["10.77.0.100"]);
        v3.unicast_to = advert.unicast_to;
        let message = v3.message();
        assert_eq!(sum(&message, pseudo_header_sum(&v3.source, &v3.destination(), message.len())), 0xffff);
    }
}
