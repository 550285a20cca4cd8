//! The sync datagrams, laid out as IPVS's sync protocol version 1 (the kernel's
//! `ip_vs_sync.c`): an 8-byte header (0, sync id, size, entry count, version 1, 0) and
//! connection entries of 36 (IPv4) or 72 (IPv6) bytes, all big-endian. An IPVS Backup reads
//! the entries keepxdp sends and keepxdp reads IPVS's (options such as sequence data are
//! skipped) — by layout; no kernel IPVS was at hand to try it against.
//!
//! keepxdp adds two control messages IPVS ignores (their version byte is not 1, their first
//! byte 0: IPVS reads them as version-0 messages of 0 entries): a Backup's request for a
//! full dump, and the Master's end-of-dump marker.
//!
//! Pure: bytes in, values out, every malformed input an error naming what is wrong.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const HEADER_LEN: usize = 8;
/// IPVS sync protocol version of data messages.
pub const VERSION: u8 = 1;
/// keepxdp's control messages ('K').
pub const CONTROL_VERSION: u8 = 0x4b;
pub const V4_CONN_LEN: usize = 36;
pub const V6_CONN_LEN: usize = 72;
/// The entry count is one byte.
pub const MAX_CONNS: usize = 255;
/// The smallest datagram that carries any entry.
pub const MIN_DATAGRAM: usize = HEADER_LEN + V6_CONN_LEN;

/// Entry type bit: IPv6.
const TYPE_INET6: u8 = 1;
/// IPVS connection flags (include/uapi/linux/ip_vs.h).
const F_FWD_MASK: u32 = 0x0007;
const F_MASQ: u32 = 0x0000;
const F_TUNNEL: u32 = 0x0002;
const F_DROUTE: u32 = 0x0003;
const F_TEMPLATE: u32 = 0x1000;
/// IPVS TCP state ESTABLISHED (`IP_VS_TCP_S_ESTABLISHED`).
pub const TCP_ESTABLISHED: u16 = 1;

const CONTROL_RESYNC_REQUEST: u16 = 1;
const CONTROL_DUMP_DONE: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Forward {
    Nat,
    Dr,
    Tun,
}

/// One connection (or persistence template: `template`, client port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub protocol: u8,
    pub client: SocketAddr,
    pub virtual_service: SocketAddr,
    /// The real server.
    pub destination: SocketAddr,
    pub forward: Forward,
    pub template: bool,
    /// IPVS's state number (TCP: `TCP_ESTABLISHED`; UDP: 0).
    pub state: u16,
    /// Seconds; 0: the receiver's default for the state.
    pub timeout: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Conns { sync_id: u8, conns: Vec<Conn>, skipped: usize },
    /// A Backup asks the Master for everything it has.
    ResyncRequest { sync_id: u8 },
    /// The Master's dump is complete: `entries` were sent.
    DumpDone { sync_id: u8, entries: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than the 8-byte header")]
    TooShort(usize),
    #[error("header says {said} bytes, the datagram has {got}")]
    SizeMismatch { said: usize, got: usize },
    #[error("an IPVS version 0 message (first byte {0}): not read")]
    Version0(u8),
    #[error("unknown version {0}")]
    UnknownVersion(u8),
    #[error("reserved header bytes are not zero")]
    Reserved,
    #[error("entry {index}: {reason}")]
    Entry { index: usize, reason: &'static str },
    #[error("{0} bytes after the last entry")]
    Trailing(usize),
    #[error("unknown control message {0}")]
    UnknownControl(u16),
}

fn address_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The bytes of one entry.
fn encode_conn(conn: &Conn, out: &mut Vec<u8>) {
    let v6 = conn.client.is_ipv6();
    let len = if v6 { V6_CONN_LEN } else { V4_CONN_LEN };
    let mut flags = match conn.forward {
        Forward::Nat => F_MASQ,
        Forward::Tun => F_TUNNEL,
        Forward::Dr => F_DROUTE,
    };
    if conn.template {
        flags |= F_TEMPLATE;
    }
    out.push(if v6 { TYPE_INET6 } else { 0 });
    out.push(conn.protocol);
    // Entry version 0 in the top 4 bits, its size in the low 12.
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&conn.state.to_be_bytes());
    out.extend_from_slice(&conn.client.port().to_be_bytes());
    out.extend_from_slice(&conn.virtual_service.port().to_be_bytes());
    out.extend_from_slice(&conn.destination.port().to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // fwmark
    out.extend_from_slice(&conn.timeout.to_be_bytes());
    for addr in [conn.client.ip(), conn.virtual_service.ip(), conn.destination.ip()] {
        out.extend_from_slice(&address_bytes(addr));
    }
}

fn conn_len(conn: &Conn) -> usize {
    if conn.client.is_ipv6() { V6_CONN_LEN } else { V4_CONN_LEN }
}

fn header(sync_id: u8, size: usize, count: u8, version: u8, spare: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.push(0);
    out.push(sync_id);
    out.extend_from_slice(&(size as u16).to_be_bytes());
    out.push(count);
    out.push(version);
    out.extend_from_slice(&spare.to_be_bytes());
    out
}

/// `conns` in as few datagrams as fit: each at most `maxlen` bytes (raised to
/// `MIN_DATAGRAM`) and `MAX_CONNS` entries. Entries whose addresses mix families are left out.
pub fn encode_conns(sync_id: u8, conns: &[Conn], maxlen: usize) -> Vec<Vec<u8>> {
    let maxlen = maxlen.max(MIN_DATAGRAM);
    let mut datagrams = Vec::new();
    let mut batch: Vec<&Conn> = Vec::new();
    let mut size = HEADER_LEN;
    let flush = |batch: &mut Vec<&Conn>, size: &mut usize, datagrams: &mut Vec<Vec<u8>>| {
        if batch.is_empty() {
            return;
        }
        let mut out = header(sync_id, *size, batch.len() as u8, VERSION, 0);
        for conn in batch.iter() {
            encode_conn(conn, &mut out);
        }
        datagrams.push(out);
        batch.clear();
        *size = HEADER_LEN;
    };
    for conn in conns.iter().filter(|c| c.client.is_ipv6() == c.virtual_service.is_ipv6() && c.client.is_ipv6() == c.destination.is_ipv6()) {
        if size + conn_len(conn) > maxlen || batch.len() == MAX_CONNS {
            flush(&mut batch, &mut size, &mut datagrams);
        }
        size += conn_len(conn);
        batch.push(conn);
    }
    flush(&mut batch, &mut size, &mut datagrams);
    datagrams
}

/// How many entries of `v6`'s family fit in one datagram of `maxlen`.
pub fn conns_per_datagram(maxlen: usize, v6: bool) -> usize {
    let len = if v6 { V6_CONN_LEN } else { V4_CONN_LEN };
    ((maxlen.max(MIN_DATAGRAM) - HEADER_LEN) / len).min(MAX_CONNS)
}

pub fn encode_resync_request(sync_id: u8) -> Vec<u8> {
    header(sync_id, HEADER_LEN, 0, CONTROL_VERSION, CONTROL_RESYNC_REQUEST)
}

pub fn encode_dump_done(sync_id: u8, entries: u32) -> Vec<u8> {
    let mut out = header(sync_id, HEADER_LEN + 4, 0, CONTROL_VERSION, CONTROL_DUMP_DONE);
    out.extend_from_slice(&entries.to_be_bytes());
    out
}

fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One entry at the start of `bytes` (exactly its declared size): the connection, or None
/// when it is well-formed but not something keepxdp keeps (a forwarding method it has not).
fn decode_conn(bytes: &[u8], index: usize) -> Result<Option<Conn>, DecodeError> {
    let error = |reason| DecodeError::Entry { index, reason };
    let v6 = match bytes[0] {
        0 => false,
        TYPE_INET6 => true,
        _ => return Err(error("unknown entry type")),
    };
    let base = if v6 { V6_CONN_LEN } else { V4_CONN_LEN };
    if bytes.len() < base {
        return Err(error("shorter than its address family's entry"));
    }
    // Options (sequence data, persistence engine data): type, length, data; skipped.
    let mut at = base;
    while at < bytes.len() {
        if at + 2 > bytes.len() {
            return Err(error("truncated option"));
        }
        let length = bytes[at + 1] as usize;
        if length == 0 || at + 2 + length > bytes.len() {
            return Err(error("option length outside the entry"));
        }
        at += 2 + length;
    }
    let flags = be32(bytes, 4);
    let forward = match flags & F_FWD_MASK {
        F_MASQ => Forward::Nat,
        F_TUNNEL => Forward::Tun,
        F_DROUTE => Forward::Dr,
        _ => return Ok(None),
    };
    let addr = |n: usize| -> IpAddr {
        if v6 {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[24 + 16 * n..40 + 16 * n]);
            IpAddr::V6(Ipv6Addr::from(octets))
        } else {
            IpAddr::V4(Ipv4Addr::new(bytes[24 + 4 * n], bytes[25 + 4 * n], bytes[26 + 4 * n], bytes[27 + 4 * n]))
        }
    };
    Ok(Some(Conn {
        protocol: bytes[1],
        state: be16(bytes, 8),
        client: SocketAddr::new(addr(0), be16(bytes, 10)),
        virtual_service: SocketAddr::new(addr(1), be16(bytes, 12)),
        destination: SocketAddr::new(addr(2), be16(bytes, 14)),
        forward,
        template: flags & F_TEMPLATE != 0,
        timeout: be32(bytes, 20),
    }))
}

/// One received datagram.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let said = be16(bytes, 2) as usize;
    if said != bytes.len() {
        return Err(DecodeError::SizeMismatch { said, got: bytes.len() });
    }
    if bytes[0] != 0 {
        return Err(DecodeError::Version0(bytes[0]));
    }
    let sync_id = bytes[1];
    let count = bytes[4] as usize;
    let spare = be16(bytes, 6);
    match bytes[5] {
        VERSION => {}
        CONTROL_VERSION => {
            return match (spare, bytes.len()) {
                (CONTROL_RESYNC_REQUEST, HEADER_LEN) if count == 0 => Ok(Message::ResyncRequest { sync_id }),
                (CONTROL_DUMP_DONE, 12) if count == 0 => Ok(Message::DumpDone { sync_id, entries: be32(bytes, 8) }),
                (CONTROL_RESYNC_REQUEST | CONTROL_DUMP_DONE, got) => Err(DecodeError::SizeMismatch { said: if spare == CONTROL_DUMP_DONE { 12 } else { HEADER_LEN }, got }),
                (other, _) => Err(DecodeError::UnknownControl(other)),
            };
        }
        // IPVS treats any other version as its old format; keepxdp does not read that.
        other => return Err(DecodeError::UnknownVersion(other)),
    }
    if spare != 0 {
        return Err(DecodeError::Reserved);
    }
    let mut conns = Vec::with_capacity(count);
    let mut skipped = 0;
    let mut at = HEADER_LEN;
    for index in 0..count {
        if at + 4 > bytes.len() {
            return Err(DecodeError::Entry { index, reason: "past the end of the datagram" });
        }
        let ver_size = be16(bytes, at + 2);
        if ver_size >> 12 != 0 {
            return Err(DecodeError::Entry { index, reason: "unknown entry version" });
        }
        let size = (ver_size & 0x0fff) as usize;
        if size < 4 || at + size > bytes.len() {
            return Err(DecodeError::Entry { index, reason: "size outside the datagram" });
        }
        match decode_conn(&bytes[at..at + size], index)? {
            Some(conn) => conns.push(conn),
            None => skipped += 1,
        }
        // Entries are 32-bit aligned.
        at += (size + 3) & !3;
    }
    if at < bytes.len() {
        return Err(DecodeError::Trailing(bytes.len() - at));
    }
    Ok(Message::Conns { sync_id, conns, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat_v4() -> Conn {
        Conn {
            protocol: 6,
            client: "10.0.0.1:40000".parse().unwrap(),
            virtual_service: "10.0.0.100:80".parse().unwrap(),
            destination: "10.1.0.11:8080".parse().unwrap(),
            forward: Forward::Nat,
            template: false,
            state: TCP_ESTABLISHED,
            timeout: 0,
        }
    }

    /// Written out by hand from the kernel's `struct ip_vs_sync_mesg` and
    /// `struct ip_vs_sync_v4` (network order).
    const GOLDEN_V4: [u8; 44] = [
        0x00, 0x07, 0x00, 0x2c, // reserved, sync id 7, size 44
        0x01, 0x01, 0x00, 0x00, // 1 entry, version 1, spare
        0x00, 0x06, 0x00, 0x24, // type IPv4, TCP, entry version 0 + size 36
        0x00, 0x00, 0x00, 0x00, // flags: MASQ
        0x00, 0x01, 0x9c, 0x40, // state ESTABLISHED, cport 40000
        0x00, 0x50, 0x1f, 0x90, // vport 80, dport 8080
        0x00, 0x00, 0x00, 0x00, // fwmark
        0x00, 0x00, 0x00, 0x00, // timeout
        10, 0, 0, 1, // caddr
        10, 0, 0, 100, // vaddr
        10, 1, 0, 11, // daddr
    ];

    #[test]
    fn an_ipv4_nat_entry_has_ipvs_bytes_and_reads_back() {
        let datagrams = encode_conns(7, &[nat_v4()], 1472);
        assert_eq!(datagrams, vec![GOLDEN_V4.to_vec()]);
        assert_eq!(decode(&GOLDEN_V4), Ok(Message::Conns { sync_id: 7, conns: vec![nat_v4()], skipped: 0 }));
    }

    #[test]
    fn an_ipv6_dr_template_round_trips_with_its_flags_and_timeout() {
        let conn = Conn {
            protocol: 17,
            client: "[fd00::1]:0".parse().unwrap(),
            virtual_service: "[fd00::100]:53".parse().unwrap(),
            destination: "[fd00:1::11]:53".parse().unwrap(),
            forward: Forward::Dr,
            template: true,
            state: 0,
            timeout: 300,
        };
        let datagram = &encode_conns(1, &[conn], 1472)[0];
        assert_eq!(datagram.len(), HEADER_LEN + V6_CONN_LEN);
        assert_eq!(&datagram[8..12], &[0x01, 17, 0x00, 72]);
        assert_eq!(&datagram[12..16], &[0x00, 0x00, 0x10, 0x03], "TEMPLATE | DROUTE");
        assert_eq!(&datagram[28..32], &300u32.to_be_bytes());
        assert_eq!(&datagram[32..48], &"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(decode(datagram), Ok(Message::Conns { sync_id: 1, conns: vec![conn], skipped: 0 }));
    }

    #[test]
    fn batches_respect_maxlen_and_the_one_byte_count() {
        let conns: Vec<Conn> = (0..1000u16).map(|p| Conn { client: SocketAddr::new("10.0.0.1".parse().unwrap(), p), ..nat_v4() }).collect();
        let datagrams = encode_conns(0, &conns, 1472);
        assert!(datagrams.iter().all(|d| d.len() <= 1472));
        assert_eq!(datagrams[0].len(), HEADER_LEN + 40 * V4_CONN_LEN);
        assert_eq!(conns_per_datagram(1472, false), 40);
        let big = encode_conns(0, &conns, 65507);
        assert_eq!(big[0][4], 255);
        let mut back = Vec::new();
        for datagram in &datagrams {
            let Ok(Message::Conns { conns, .. }) = decode(datagram) else { panic!() };
            back.extend(conns);
        }
        assert_eq!(back, conns);
    }

    #[test]
    fn control_messages_have_their_own_version_and_read_back() {
        assert_eq!(encode_resync_request(9), [0, 9, 0, 8, 0, 0x4b, 0, 1]);
        assert_eq!(decode(&encode_resync_request(9)), Ok(Message::ResyncRequest { sync_id: 9 }));
        assert_eq!(encode_dump_done(9, 513), [0, 9, 0, 12, 0, 0x4b, 0, 2, 0, 0, 2, 1]);
        assert_eq!(decode(&encode_dump_done(9, 513)), Ok(Message::DumpDone { sync_id: 9, entries: 513 }));
    }

    #[test]
    fn options_after_an_entry_are_skipped_and_unknown_methods_counted() {
        let mut bytes = GOLDEN_V4.to_vec();
        // A sequence-data option (type 1, 24 bytes): entry size 36 + 26 → 62, padded to 64.
        bytes[11] = 62;
        bytes.extend_from_slice(&[1, 24]);
        bytes.extend_from_slice(&[0xaa; 24]);
        bytes.extend_from_slice(&[0, 0]);
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(decode(&bytes), Ok(Message::Conns { sync_id: 7, conns: vec![nat_v4()], skipped: 0 }));
        let mut local = GOLDEN_V4;
        local[15] = 1; // LOCALNODE
        assert_eq!(decode(&local), Ok(Message::Conns { sync_id: 7, conns: vec![], skipped: 1 }));
    }

    #[test]
    fn malformed_datagrams_are_errors_naming_the_problem() {
        assert_eq!(decode(&[0, 1, 0]), Err(DecodeError::TooShort(3)));
        let mut wrong_size = GOLDEN_V4;
        wrong_size[3] = 40;
        assert_eq!(decode(&wrong_size), Err(DecodeError::SizeMismatch { said: 40, got: 44 }));
        assert_eq!(decode(&GOLDEN_V4[..40]), Err(DecodeError::SizeMismatch { said: 44, got: 40 }));
        let mut v0 = GOLDEN_V4;
        v0[0] = 3;
        assert_eq!(decode(&v0), Err(DecodeError::Version0(3)));
        let mut v9 = GOLDEN_V4;
        v9[5] = 9;
        assert_eq!(decode(&v9), Err(DecodeError::UnknownVersion(9)));
        let mut spare = GOLDEN_V4;
        spare[7] = 1;
        assert_eq!(decode(&spare), Err(DecodeError::Reserved));
        let mut count = GOLDEN_V4;
        count[4] = 2;
        assert!(matches!(decode(&count), Err(DecodeError::Entry { index: 1, .. })));
        let mut zero = GOLDEN_V4;
        zero[4] = 0;
        assert_eq!(decode(&zero), Err(DecodeError::Trailing(36)));
        let mut entry_size = GOLDEN_V4;
        entry_size[11] = 200;
        assert!(matches!(decode(&entry_size), Err(DecodeError::Entry { index: 0, reason: "size outside the datagram" })));
        let mut short_entry = GOLDEN_V4;
        short_entry[11] = 20;
        let short_entry = &mut short_entry[..];
        assert!(decode(short_entry).is_err());
        let mut kind = GOLDEN_V4;
        kind[8] = 5;
        assert!(matches!(decode(&kind), Err(DecodeError::Entry { reason: "unknown entry type", .. })));
        let mut control = encode_resync_request(1);
        control[7] = 9;
        assert_eq!(decode(&control), Err(DecodeError::UnknownControl(9)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic walk over many lengths and contents (no fuzzer dependency).
        let mut seed = 0x1234_5678u32;
        for len in 0..400 {
            for _ in 0..20 {
                let mut bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect();
                if len >= 8 {
                    bytes[0] = 0;
                    bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                    bytes[5] = if seed & 1 == 0 { VERSION } else { CONTROL_VERSION };
                }
                let _ = decode(&bytes);
            }
        }
    }
}
