//! Crafted L4 frames (Ethernet + IPv4/IPv6 + TCP/UDP, correct checksums) for the balancer's
//! tests, a parser for what comes back, the checks its checksums must pass, and a pcap writer
//! so a real decoder (tshark) can read the output.
use std::{
    io::Write,
    net::{IpAddr, SocketAddr},
    path::Path,
};

use anyhow::{Result, bail, ensure};

use crate::checksum::{finish, sum};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp { flags: u8 },
    /// `checksum: false` sends an IPv4 UDP datagram with checksum 0 (none, RFC 768).
    Udp { checksum: bool },
}

/// One frame to craft. `Packet::tcp` / `Packet::udp` give a valid one; fields can be changed
/// before `frame()`.
#[derive(Debug, Clone)]
pub struct Packet {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub l4: L4,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

impl Packet {
    /// A TCP segment `src` → `dst` with `flags` and a short payload.
    pub fn tcp(src: &str, dst: &str, flags: u8) -> Packet {
        Packet {
            dst_mac: [0x02, 0, 0, 0, 0, 0x01],
            src_mac: [0x02, 0xc1, 0, 0, 0, 0x01],
            src: src.parse().expect("source ip:port"),
            dst: dst.parse().expect("destination ip:port"),
            l4: L4::Tcp { flags },
            ttl: 64,
            payload: b"keepxdp".to_vec(),
        }
    }

    /// A UDP datagram `src` → `dst` with its checksum.
    pub fn udp(src: &str, dst: &str) -> Packet {
        Packet { l4: L4::Udp { checksum: true }, ..Packet::tcp(src, dst, 0) }
    }

    pub fn macs(mut self, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Packet {
        self.dst_mac = dst_mac;
        self.src_mac = src_mac;
        self
    }

    pub fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => PROTO_TCP,
            L4::Udp { .. } => PROTO_UDP,
        }
    }

    /// The L4 header and payload, checksummed over the pseudo-header.
    pub fn segment(&self) -> Vec<u8> {
        let mut segment = Vec::new();
        segment.extend_from_slice(&self.src.port().to_be_bytes());
        segment.extend_from_slice(&self.dst.port().to_be_bytes());
        let checksum_at;
        let mut with_checksum = true;
        match self.l4 {
            L4::Tcp { flags } => {
                segment.extend_from_slice(&0x1000_0001u32.to_be_bytes()); // sequence
                let ack = if flags & ACK != 0 { 0x2000_0001u32 } else { 0 };
                segment.extend_from_slice(&ack.to_be_bytes());
                segment.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
                checksum_at = 16;
            }
            L4::Udp { checksum } => {
                segment.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                segment.extend_from_slice(&[0, 0]);
                checksum_at = 6;
                with_checksum = checksum;
            }
        }
        segment.extend_from_slice(&self.payload);
        if with_checksum {
            let mut checksum = finish(sum(&segment, pseudo_header_sum(self.src.ip(), self.dst.ip(), self.proto(), segment.len())));
            if checksum == 0 && self.proto() == PROTO_UDP {
                checksum = 0xffff;
            }
            segment[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
        }
        segment
    }

    /// The IP packet (header + segment).
    pub fn ip_packet(&self) -> Vec<u8> {
        let segment = self.segment();
        let mut packet = match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = (20 + segment.len()) as u16;
                let mut ip = vec![0x45, 0];
                ip.extend_from_slice(&total.to_be_bytes());
                ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, self.ttl, self.proto(), 0, 0]);
                ip.extend_from_slice(&src.octets());
                ip.extend_from_slice(&dst.octets());
                let checksum = finish(sum(&ip, 0));
                ip[10..12].copy_from_slice(&checksum.to_be_bytes());
                ip
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend_from_slice(&(segment.len() as u16).to_be_bytes());
                ip.extend_from_slice(&[self.proto(), self.ttl]);
                ip.extend_from_slice(&src.octets());
                ip.extend_from_slice(&dst.octets());
                ip
            }
            _ => panic!("source and destination of different families"),
        };
        packet.extend_from_slice(&segment);
        packet
    }

    /// The Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let ethertype = if self.src.is_ipv4() { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 };
        let mut frame = self.dst_mac.to_vec();
        frame.extend_from_slice(&self.src_mac);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(&self.ip_packet());
        frame
    }
}

/// One's complement sum of the TCP/UDP pseudo-header (RFC 793 / RFC 768 / RFC 8200 §8.1).
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, length: usize) -> u32 {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(length as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(length as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("pseudo-header of mixed families"),
    }
    sum(&pseudo, 0)
}

/// What a frame carries, read back: the fields the balancer may rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ethertype: u16,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol / IPv6 next header.
    pub proto: u8,
    /// Offset of the IP header in the frame (14), and of what follows it.
    pub ip_at: usize,
    pub payload_at: usize,
}

impl Headers {
    /// Ethernet + IPv4 (any IHL) or IPv6 (fixed header).
    pub fn parse(frame: &[u8]) -> Result<Headers> {
        ensure!(frame.len() >= 14, "frame of {} bytes has no Ethernet header", frame.len());
        let mac = |at: usize| -> [u8; 6] { frame[at..at + 6].try_into().unwrap() };
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let ip = &frame[14..];
        let (src, dst, proto, header_len) = match ethertype {
            ETHERTYPE_IPV4 => {
                ensure!(ip.len() >= 20, "IPv4 header truncated");
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let src: [u8; 4] = ip[12..16].try_into().unwrap();
                let dst: [u8; 4] = ip[16..20].try_into().unwrap();
                (IpAddr::from(src), IpAddr::from(dst), ip[9], ihl)
            }
            ETHERTYPE_IPV6 => {
                ensure!(ip.len() >= 40, "IPv6 header truncated");
                let src: [u8; 16] = ip[8..24].try_into().unwrap();
                let dst: [u8; 16] = ip[24..40].try_into().unwrap();
                (IpAddr::from(src), IpAddr::from(dst), ip[6], 40)
            }
            other => bail!("ethertype {other:#06x} is not IP"),
        };
        Ok(Headers { dst_mac: mac(0), src_mac: mac(6), ethertype, src, dst, proto, ip_at: 14, payload_at: 14 + header_len })
    }

    /// Source and destination as ip:port (TCP/UDP).
    pub fn endpoints(&self, frame: &[u8]) -> (SocketAddr, SocketAddr) {
        let l4 = &frame[self.payload_at..];
        (
            SocketAddr::new(self.src, u16::from_be_bytes([l4[0], l4[1]])),
            SocketAddr::new(self.dst, u16::from_be_bytes([l4[2], l4[3]])),
        )
    }
}

/// Checks an IPv4 header's checksum (`ip` starts at the header).
pub fn check_ipv4_header(ip: &[u8]) -> Result<()> {
    ensure!(ip.len() >= 20 && ip[0] >> 4 == 4, "not an IPv4 header");
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    ensure!(ip.len() >= header_len, "IPv4 header truncated");
    let total = sum(&ip[..header_len], 0);
    ensure!(total == 0xffff, "IPv4 header checksum {:#06x} is wrong (header sums to {total:#06x})",
        u16::from_be_bytes([ip[10], ip[11]]));
    Ok(())
}

/// Checks the TCP/UDP checksum of an IP packet (`ip` starts at the IPv4/IPv6 header) over
/// the pseudo-header; the L4 length comes from the IP header, so Ethernet padding is ignored.
/// An IPv4 UDP checksum of 0 means "none" and passes.
pub fn check_l4_checksum(ip: &[u8]) -> Result<()> {
    ensure!(!ip.is_empty(), "empty IP packet");
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match ip[0] >> 4 {
        4 => {
            ensure!(ip.len() >= 20, "IPv4 header truncated");
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            ensure!(ip.len() >= total && total >= header_len, "IPv4 total length {total} does not fit {} bytes", ip.len());
            let src: [u8; 4] = ip[12..16].try_into().unwrap();
            let dst: [u8; 4] = ip[16..20].try_into().unwrap();
            (src.into(), dst.into(), ip[9], &ip[header_len..total])
        }
        6 => {
            ensure!(ip.len() >= 40, "IPv6 header truncated");
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            ensure!(ip.len() >= 40 + payload, "IPv6 payload length {payload} does not fit");
            let src: [u8; 16] = ip[8..24].try_into().unwrap();
            let dst: [u8; 16] = ip[24..40].try_into().unwrap();
            (src.into(), dst.into(), ip[6], &ip[40..40 + payload])
        }
        version => bail!("IP version {version}"),
    };
    let checksum_at = match proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        other => bail!("protocol {other} is neither TCP nor UDP"),
    };
    ensure!(l4.len() >= checksum_at + 2, "L4 header truncated");
    let field = u16::from_be_bytes([l4[checksum_at], l4[checksum_at + 1]]);
    if proto == PROTO_UDP && field == 0 {
        ensure!(src.is_ipv4(), "an IPv6 UDP checksum may not be 0 (RFC 8200 §8.1)");
        return Ok(());
    }
    let total = sum(l4, pseudo_header_sum(src, dst, proto, l4.len()));
    ensure!(total == 0xffff, "{} checksum {field:#06x} is wrong (segment sums to {total:#06x})",
        if proto == PROTO_TCP { "TCP" } else { "UDP" });
    Ok(())
}

/// Both checks on an Ethernet frame: the IPv4 header checksum (IPv4 only) and the L4 checksum.
pub fn check_checksums(frame: &[u8]) -> Result<()> {
    ensure!(frame.len() > 14, "frame too short");
    let ip = &frame[14..];
    if ip[0] >> 4 == 4 {
        check_ipv4_header(ip)?;
    }
    check_l4_checksum(ip)
}

/// Writes `frames` as a classic pcap file (LINKTYPE_ETHERNET, microsecond timestamps).
pub fn write_pcap(path: &Path, frames: &[&[u8]]) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    file.write_all(&2u16.to_le_bytes())?; // version 2.4
    file.write_all(&4u16.to_le_bytes())?;
    file.write_all(&0i32.to_le_bytes())?; // thiszone
    file.write_all(&0u32.to_le_bytes())?; // sigfigs
    file.write_all(&65535u32.to_le_bytes())?; // snaplen
    file.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    for (i, frame) in frames.iter().enumerate() {
        file.write_all(&(1_700_000_000u32 + i as u32).to_le_bytes())?;
        file.write_all(&0u32.to_le_bytes())?;
        file.write_all(&(frame.len() as u32).to_le_bytes())?;
        file.write_all(&(frame.len() as u32).to_le_bytes())?;
        file.write_all(frame)?;
    }
    file.flush()?;
    Ok(())
}

/// Reads a classic pcap file (as `tcpdump -w` writes it, microsecond timestamps, either byte
/// order): (seconds since the epoch, captured bytes) per frame.
pub fn read_pcap(path: &Path) -> Result<Vec<(f64, Vec<u8>)>> {
    let data = std::fs::read(path)?;
    ensure!(data.len() >= 24, "{}: no pcap header", path.display());
    let little = match &data[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        magic => bail!("{}: not a microsecond pcap (magic {magic:02x?})", path.display()),
    };
    let word = |at: usize| {
        let bytes: [u8; 4] = data[at..at + 4].try_into().unwrap();
        if little { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    // A capture stopped mid-write may end in a partial record: it is left out.
    while at + 16 <= data.len() {
        let (seconds, micros, captured) = (word(at), word(at + 4), word(at + 8) as usize);
        if at + 16 + captured > data.len() {
            break;
        }
        frames.push((f64::from(seconds) + f64::from(micros) / 1e6, data[at + 16..at + 16 + captured].to_vec()));
        at += 16 + captured;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_pcap_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        let frames = [Packet::tcp("10.0.0.1:1", "10.0.0.2:2", SYN).frame(), Packet::udp("10.0.0.1:1", "10.0.0.2:3").frame()];
        write_pcap(&path, &[&frames[0], &frames[1]]).unwrap();
        let read = read_pcap(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].1, frames[1]);
        assert_eq!(read[1].0, 1_700_000_001.0);
    }

    #[test]
    fn crafted_ipv4_tcp_and_udp_frames_have_valid_checksums() {
        let tcp = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
        assert_eq!(tcp.len(), 14 + 20 + 20 + 7);
        check_checksums(&tcp).unwrap();
        let udp = Packet::udp("10.0.0.1:40000", "10.0.0.100:53").frame();
        assert_eq!(udp.len(), 14 + 20 + 8 + 7);
        check_checksums(&udp).unwrap();
        let headers = Headers::parse(&udp).unwrap();
        assert_eq!(headers.endpoints(&udp).1, "10.0.0.100:53".parse().unwrap());
    }

    #[test]
    fn crafted_ipv6_frames_have_valid_checksums() {
        check_checksums(&Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN | ACK).frame()).unwrap();
        check_checksums(&Packet::udp("[fd00::1]:40000", "[fd00::100]:53").frame()).unwrap();
    }

    #[test]
    fn a_flipped_bit_fails_the_checks() {
        let mut frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
        frame[14 + 16] ^= 1;
        assert!(check_ipv4_header(&frame[14..]).is_err());
        assert!(check_l4_checksum(&frame[14..]).is_err());
    }

    #[test]
    fn an_ipv4_udp_datagram_without_checksum_passes_the_check() {
        let mut packet = Packet::udp("10.0.0.1:40000", "10.0.0.100:53");
        packet.l4 = L4::Udp { checksum: false };
        let frame = packet.frame();
        assert_eq!(&frame[14 + 20 + 6..14 + 20 + 8], &[0, 0]);
        check_checksums(&frame).unwrap();
    }
}
