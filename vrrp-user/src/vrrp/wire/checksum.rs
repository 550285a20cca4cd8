//! The internet checksum (RFC 1071) and the pseudo-headers that VRRPv3 and ICMPv6 add to it.
//!
//! Sums are kept folded to 16 bits, so they combine with `combine` in any order: the
//! one's complement sum is commutative and associative. A message checks when the sum of
//! everything it covers, the checksum field included, is `0xffff`.
use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 32-bit accumulator to 16 bits, adding the carries back in (end-around carry).
const fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of `data` taken as big-endian 16-bit words. An odd trailing
/// byte is padded with a zero byte, so only the last part of a message may have odd length.
pub fn data(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
        // Fold early: cannot overflow however long the slice is.
        if sum > 0xffff_0000 {
            sum = u32::from(fold(sum));
        }
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    fold(sum)
}

/// The one's complement sum of already-folded partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&sum| u32::from(sum)).sum())
}

/// The sum of the IPv4 pseudo-header (RFC 768/793): source, destination, a zero byte,
/// the protocol number and the upper-layer length.
pub fn ipv4_pseudo_header(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    length: u16,
) -> u16 {
    let mut header = [0u8; 12];
    header[0..4].copy_from_slice(&source.octets());
    header[4..8].copy_from_slice(&destination.octets());
    header[9] = protocol;
    header[10..12].copy_from_slice(&length.to_be_bytes());
    data(&header)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the
/// upper-layer length as 32 bits, three zero bytes and the next header value.
pub fn ipv6_pseudo_header(
    source: Ipv6Addr,
    destination: Ipv6Addr,
    next_header: u8,
    length: u32,
) -> u16 {
    let mut header = [0u8; 40];
    header[0..16].copy_from_slice(&source.octets());
    header[16..32].copy_from_slice(&destination.octets());
    header[32..36].copy_from_slice(&length.to_be_bytes());
    header[39] = next_header;
    data(&header)
}

/// The value to put in a checksum field: the complement of the sum of everything covered
/// (computed with the checksum field zero).
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// Whether a received message checks: the sum over everything covered, checksum field
/// included, is all ones (negative zero in one's complement).
pub const fn verifies(sum: u16) -> bool {
    sum == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(finish(0xddf2), 0x220d);
    }

    #[test]
    fn odd_length_pads_the_last_byte_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), data(&[0x12, 0x34, 0x56, 0x00]));
    }

    #[test]
    fn sums_combine_in_any_split() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = data(&bytes);
        assert_eq!(combine(&[data(&bytes[..400]), data(&bytes[400..])]), whole);
        assert_eq!(combine(&[data(&bytes[400..]), data(&bytes[..400])]), whole);
    }

    #[test]
    fn long_runs_of_ones_do_not_overflow() {
        assert_eq!(data(&[0xff; 1 << 20]), 0xffff);
    }

    #[test]
    fn a_filled_checksum_verifies() {
        let mut message = [
            0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0x00, 0x00, 10, 9, 0, 100,
        ];
        let checksum = finish(data(&message));
        message[6..8].copy_from_slice(&checksum.to_be_bytes());
        assert!(verifies(data(&message)));
    }

    #[test]
    fn pseudo_headers_lay_out_as_the_rfcs_say() {
        let v4 = ipv4_pseudo_header(
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(224, 0, 0, 18),
            112,
            12,
        );
        assert_eq!(v4, data(&[10, 9, 0, 1, 224, 0, 0, 18, 0, 112, 0, 12]));
        let v6 = ipv6_pseudo_header(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 58, 32);
        let mut bytes = [0u8; 40];
        bytes[15] = 1;
        bytes[31] = 1;
        bytes[35] = 32;
        bytes[39] = 58;
        assert_eq!(v6, data(&bytes));
    }
}
