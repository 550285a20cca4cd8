//! The bytes on the wire, and nothing else: no sockets, no state, no clock.
//!
//! One file per message, each shaped the same way (a `field` module of byte ranges, a
//! zero-copy `Packet` view, a `Repr` with `parse`/`buffer_len`/`emit`):
//!
//! - [`advert`]: the VRRP advertisement, v2 (RFC 3768) and v3 (RFC 9568), with the
//!   checksum rules of each and of keepalived;
//! - [`arp`]: the gratuitous ARP request a new Master broadcasts for each IPv4 address;
//! - [`ndisc`]: the unsolicited Neighbour Advertisement it sends for each IPv6 address;
//! - [`checksum`]: the RFC 1071 internet checksum and the IPv4/IPv6 pseudo-headers.
//!
//! The golden byte arrays in the tests were captured from Debian's keepalived 2.2.7, so a
//! change that breaks interoperability breaks a test.
pub mod advert;
pub mod arp;
pub mod checksum;
pub mod ndisc;

pub use advert::{
    AddressFamily, Auth, AuthType, Centiseconds, ChecksumContext, ChecksumForm, Ipv4Advert, Packet,
    Repr, Version,
};

/// IP protocol number of VRRP (IANA), also the IPv6 next header value.
pub const IPPROTO_VRRP: u8 = 112;

/// Why bytes could not be read as (or written as) one of this module's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the fixed header, or than the address count says it must be.
    #[error("truncated: shorter than the header or the address count requires")]
    Truncated,
    #[error("unsupported VRRP version {0} (only 2 and 3 exist)")]
    UnsupportedVersion(u8),
    /// RFC 3768/9568 define only type 1, ADVERTISEMENT.
    #[error("unsupported VRRP packet type {0} (only 1, advertisement, exists)")]
    BadType(u8),
    #[error("bad checksum")]
    BadChecksum,
    /// Addresses of both families in one message, addresses of a family other than the
    /// IP header's, a v2 message over IPv6, or a source and destination of different families.
    #[error("address family mismatch")]
    AddressFamilyMismatch,
    /// The message is longer than its address count says (shorter is `Truncated`).
    #[error("address count {count} does not match message length {len}")]
    AddressCountMismatch { count: u8, len: usize },
    /// The count field is one byte wide.
    #[error("{0} addresses do not fit in one advertisement (at most 255)")]
    TooManyAddresses(usize),
    /// RFC 2338 simple text passwords are at most 8 bytes.
    #[error("authentication password is {0} bytes long, at most 8 fit")]
    PasswordTooLong(usize),
    /// `emit` writes exactly `buffer_len()` bytes, because the checksum covers the whole buffer.
    #[error("buffer is {actual} bytes, the message needs exactly {expected}")]
    BufferLength { expected: usize, actual: usize },
    /// The datagram handed to `parse_ipv4_datagram` has a broken IPv4 header.
    #[error("malformed IPv4 header: {0}")]
    Ipv4Header(&'static str),
    /// A frame that is well formed but is not the message asked for (an ARP reply, an NA
    /// without a target link-layer address option, ...).
    #[error("unexpected value in field {0}")]
    UnexpectedField(&'static str),
}

pub type Result<T> = core::result::Result<T, Error>;
