//! Internet checksum arithmetic (RFC 1071 sums, RFC 1624 incremental updates) on 16-bit
//! words read big-endian. Pure functions: NAT rewrites and TUN headers use them.

/// Folds a 32-bit one's complement sum into 16 bits.
#[inline(always)]
pub fn fold(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// RFC 1624 eq. 3 for one 32-bit field (an IPv4 address): HC' = ~(~HC + ~m + m').
#[inline(always)]
pub fn replace32(check: u16, old: u32, new: u32) -> u16 {
    let sum = (!check as u32 & 0xffff)
        + (!(old >> 16) & 0xffff)
        + (!old & 0xffff)
        + (new >> 16)
        + (new & 0xffff);
    !fold(sum)
}

/// RFC 1624 eq. 3 for one 16-bit field (a port).
#[inline(always)]
pub fn replace16(check: u16, old: u16, new: u16) -> u16 {
    let sum = (!check as u32 & 0xffff) + (!old as u32 & 0xffff) + new as u32;
    !fold(sum)
}

/// Replaces a 16-byte address (IPv6) in a checksum, as four 32-bit words.
#[inline(always)]
pub fn replace128(check: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    let mut check = check;
    check = replace32(check, be32(old, 0), be32(new, 0));
    check = replace32(check, be32(old, 4), be32(new, 4));
    check = replace32(check, be32(old, 8), be32(new, 8));
    replace32(check, be32(old, 12), be32(new, 12))
}

#[inline(always)]
pub fn be32(bytes: &[u8; 16], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The header checksum of a 20-byte IPv4 header whose checksum field is zero.
#[inline(always)]
pub fn ipv4_header(header: &[u8; 20]) -> u16 {
    let mut sum = 0u32;
    let mut i = 0;
    while i < 20 {
        sum += u16::from_be_bytes([header[i], header[i + 1]]) as u32;
        i += 2;
    }
    !fold(sum)
}
