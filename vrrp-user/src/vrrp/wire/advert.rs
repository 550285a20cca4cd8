//! The VRRP advertisement, the protocol's only message: v2 (RFC 3768) and v3 (RFC 9568).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2: |   Auth Type   |   Adver Int   |          Checksum             |
//! v3: |(rsvd)|     Max Adver Int      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Count IP Addrs IPv4 or IPv6 addresses          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2 only: |              Authentication Data (8 bytes)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Nothing in the message says whether its addresses are IPv4 or IPv6: the IP header
//! does. So every parse and emit takes a [`ChecksumContext`] (the IP source and
//! destination), which gives both the address family and the checksum's pseudo-header.
//!
//! Checksums:
//! - v2: over the VRRP message alone (RFC 3768 §5.3.8).
//! - v3 over IPv6: with the IPv6 pseudo-header, next header 112.
//! - v3 over IPv4: keepalived (by default) adds an IPv4 pseudo-header (source,
//!   destination, zero, protocol 112, length); RFC 9568 and keepalived's
//!   `v3_checksum_as_v2` cover the message alone. Both are in use, so a receiver accepts
//!   either and says which one matched ([`ChecksumForm`]); a sender picks one.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use super::{Error, IPPROTO_VRRP, Result, checksum};

mod field {
    pub type Field = core::ops::Range<usize>;

    /// Version in the high nibble, type in the low one.
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2 only.
    pub const AUTH_TYPE: usize = 4;
    /// v2 only: whole seconds.
    pub const ADVER_INT: usize = 5;
    /// v3 only: 4 reserved bits, then 12 bits of centiseconds.
    pub const MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRESSES: usize = 8;
    /// v2 only: the authentication data after the addresses.
    pub const AUTH_DATA_LEN: usize = 8;

    /// Where the addresses are, for `count` addresses of `address_len` bytes.
    pub const fn addresses(count: u8, address_len: usize) -> Field {
        ADDRESSES..ADDRESSES + count as usize * address_len
    }

    /// Where the v2 authentication data is (v2 addresses are always IPv4).
    pub const fn auth_data(count: u8) -> Field {
        let start = addresses(count, 4).end;
        start..start + AUTH_DATA_LEN
    }
}

/// Length of the fixed header, before the addresses.
pub const HEADER_LEN: usize = field::ADDRESSES;
/// The only VRRP packet type (RFC 3768 §5.3.2, RFC 9568 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// v3 keeps the top 4 bits of the interval field: sent as zero, ignored on receipt.
const MAX_ADVER_INT_MASK: u16 = 0x0fff;

/// The address family of the IP packet carrying an advertisement, and so of its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

impl AddressFamily {
    pub fn of(address: &IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// Bytes per address in the message.
    pub const fn address_len(self) -> usize {
        match self {
            Self::Ipv4 => 4,
            Self::Ipv6 => 16,
        }
    }
}

/// How a message's checksum was (or is to be) computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Over the VRRP message alone: v2, and v3/IPv4 per RFC 9568 or `v3_checksum_as_v2`.
    MessageOnly,
    /// v3/IPv4 with an IPv4 pseudo-header: keepalived's default.
    Ipv4PseudoHeader,
    /// v3/IPv6 with the IPv6 pseudo-header: the only form over IPv6.
    Ipv6PseudoHeader,
}

/// What the IP layer tells the checksum: the source and destination of the IP packet that
/// carries (or will carry) the message, and which v3/IPv4 form to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumContext {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// Send v3/IPv4 checksums over the message alone (keepalived's `v3_checksum_as_v2`,
    /// RFC 9568) instead of with keepalived's default IPv4 pseudo-header. Receiving accepts
    /// both forms whatever this says.
    pub v3_ipv4_as_v2: bool,
}

impl ChecksumContext {
    pub fn new(source: IpAddr, destination: IpAddr) -> Self {
        Self {
            source,
            destination,
            v3_ipv4_as_v2: false,
        }
    }

    pub fn with_v3_ipv4_as_v2(self, v3_ipv4_as_v2: bool) -> Self {
        Self {
            v3_ipv4_as_v2,
            ..self
        }
    }

    /// The family of the IP packet; source and destination must agree.
    pub fn family(&self) -> Result<AddressFamily> {
        match (self.source, self.destination) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(AddressFamily::Ipv4),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(AddressFamily::Ipv6),
            _ => Err(Error::AddressFamilyMismatch),
        }
    }

    /// The form a sender uses for a message of `version`.
    pub fn send_form(&self, version: u8) -> Result<ChecksumForm> {
        Ok(match (version, self.family()?) {
            (2, AddressFamily::Ipv4) => ChecksumForm::MessageOnly,
            (2, AddressFamily::Ipv6) => return Err(Error::AddressFamilyMismatch),
            (3, AddressFamily::Ipv4) if self.v3_ipv4_as_v2 => ChecksumForm::MessageOnly,
            (3, AddressFamily::Ipv4) => ChecksumForm::Ipv4PseudoHeader,
            (3, AddressFamily::Ipv6) => ChecksumForm::Ipv6PseudoHeader,
            (other, _) => return Err(Error::UnsupportedVersion(other)),
        })
    }

    /// The forms a receiver accepts for a message of `version`, preferred first.
    fn accepted_forms(&self, version: u8) -> Result<&'static [ChecksumForm]> {
        Ok(match (version, self.family()?) {
            (2, AddressFamily::Ipv4) => &[ChecksumForm::MessageOnly],
            (2, AddressFamily::Ipv6) => return Err(Error::AddressFamilyMismatch),
            (3, AddressFamily::Ipv4) => {
                &[ChecksumForm::Ipv4PseudoHeader, ChecksumForm::MessageOnly]
            }
            (3, AddressFamily::Ipv6) => &[ChecksumForm::Ipv6PseudoHeader],
            (other, _) => return Err(Error::UnsupportedVersion(other)),
        })
    }

    /// The pseudo-header's sum for a message of `length` bytes, or 0 for `MessageOnly`.
    fn pseudo_header_sum(&self, form: ChecksumForm, length: usize) -> Result<u16> {
        Ok(match (form, self.source, self.destination) {
            (ChecksumForm::MessageOnly, _, _) => 0,
            (ChecksumForm::Ipv4PseudoHeader, IpAddr::V4(source), IpAddr::V4(destination)) => {
                let length = u16::try_from(length).map_err(|_| Error::Truncated)?;
                checksum::ipv4_pseudo_header(source, destination, IPPROTO_VRRP, length)
            }
            (ChecksumForm::Ipv6PseudoHeader, IpAddr::V6(source), IpAddr::V6(destination)) => {
                let length = u32::try_from(length).map_err(|_| Error::Truncated)?;
                checksum::ipv6_pseudo_header(source, destination, IPPROTO_VRRP, length)
            }
            _ => return Err(Error::AddressFamilyMismatch),
        })
    }
}

/// A read/write view of a VRRP message in a buffer, without copying it.
///
/// `new_checked` guarantees the fixed header and the addresses' minimum room (IPv4-sized,
/// since the family is not known yet), so the fixed-field getters cannot panic; address
/// and authentication accessors return `None` instead of reading past the end.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; the getters may then panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after `check_len`.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Fails with `Truncated` if the buffer is shorter than the fixed header, or than the
    /// address count needs with the smallest (IPv4) addresses, plus the v2 authentication
    /// data. The exact check needs the family: [`Packet::check_len_for`].
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data.len() < self.required_len(AddressFamily::Ipv4) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Fails unless the buffer is exactly as long as the address count says for `family`:
    /// `Truncated` if shorter, `AddressCountMismatch` if longer.
    pub fn check_len_for(&self, family: AddressFamily) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let required = self.required_len(family);
        if len < required {
            Err(Error::Truncated)
        } else if len > required {
            Err(Error::AddressCountMismatch {
                count: self.address_count(),
                len,
            })
        } else {
            Ok(())
        }
    }

    /// Needs the fixed header to be present.
    fn required_len(&self, family: AddressFamily) -> usize {
        let trailer = if self.version() == 2 {
            field::AUTH_DATA_LEN
        } else {
            0
        };
        field::addresses(self.address_count(), family.address_len()).end + trailer
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole message (the buffer).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    pub fn address_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2: the authentication type (the byte is reserved bits in v3).
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2: the advertisement interval in whole seconds.
    pub fn adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3: the maximum advertisement interval in centiseconds, reserved bits dropped.
    pub fn max_adver_int(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([
            data[field::MAX_ADVER_INT.start],
            data[field::MAX_ADVER_INT.start + 1],
        ]) & MAX_ADVER_INT_MASK
    }

    /// v3: the 4 reserved bits (to be ignored; exposed for diagnostics).
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    pub fn checksum(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::CHECKSUM.start], data[field::CHECKSUM.start + 1]])
    }

    /// Address `index` read as `family`, if the count and the buffer both cover it.
    pub fn address(&self, family: AddressFamily, index: usize) -> Option<IpAddr> {
        if index >= usize::from(self.address_count()) {
            return None;
        }
        let start = field::ADDRESSES + index * family.address_len();
        let bytes = self
            .buffer
            .as_ref()
            .get(start..start + family.address_len())?;
        Some(match family {
            AddressFamily::Ipv4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
            AddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        })
    }

    /// v2: the 8 bytes of authentication data after the (IPv4) addresses.
    pub fn auth_data(&self) -> Option<[u8; 8]> {
        let bytes = self
            .buffer
            .as_ref()
            .get(field::auth_data(self.address_count()))?;
        bytes.try_into().ok()
    }

    /// Which accepted checksum form (for this version and the context's family) the
    /// message's checksum matches, if any. v3/IPv4 tries keepalived's pseudo-header form
    /// first, then the message-only form.
    pub fn verify_checksum(&self, context: &ChecksumContext) -> Result<Option<ChecksumForm>> {
        let message = self.buffer.as_ref();
        let message_sum = checksum::data(message);
        for &form in context.accepted_forms(self.version())? {
            let pseudo = context.pseudo_header_sum(form, message.len())?;
            if checksum::verifies(checksum::combine(&[pseudo, message_sum])) {
                return Ok(Some(form));
            }
        }
        Ok(None)
    }

    /// The checksum the message should carry in `form` (its checksum field read as zero).
    pub fn compute_checksum(&self, form: ChecksumForm, context: &ChecksumContext) -> Result<u16> {
        let message = self.buffer.as_ref();
        let pseudo = context.pseudo_header_sum(form, message.len())?;
        // Taking the stored checksum back out is the same as summing with it zeroed.
        let without_field = checksum::combine(&[checksum::data(message), !self.checksum()]);
        Ok(checksum::finish(checksum::combine(&[
            pseudo,
            without_field,
        ])))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_version_and_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    pub fn set_address_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// v2.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// v2, whole seconds.
    pub fn set_adver_int(&mut self, seconds: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = seconds;
    }

    /// v3, centiseconds; the reserved bits are written as zero (RFC 9568 §5.2.5).
    pub fn set_max_adver_int(&mut self, interval: Centiseconds) {
        self.buffer.as_mut()[field::MAX_ADVER_INT]
            .copy_from_slice(&(interval.get() & MAX_ADVER_INT_MASK).to_be_bytes());
    }

    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Writes address `index` at its family's offset. Panics if the buffer is too short
    /// (emit sizes the buffer first).
    pub fn set_address(&mut self, index: usize, address: IpAddr) {
        let family = AddressFamily::of(&address);
        let start = field::ADDRESSES + index * family.address_len();
        let slot = &mut self.buffer.as_mut()[start..start + family.address_len()];
        match address {
            IpAddr::V4(v4) => slot.copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => slot.copy_from_slice(&v6.octets()),
        }
    }

    /// v2: the authentication data after `address_count()` IPv4 addresses.
    pub fn set_auth_data(&mut self, data: &[u8; 8]) {
        let range = field::auth_data(self.address_count());
        self.buffer.as_mut()[range].copy_from_slice(data);
    }

    /// Computes and stores the checksum in the form the context sends for this version.
    pub fn fill_checksum(&mut self, context: &ChecksumContext) -> Result<()> {
        let form = context.send_form(self.version())?;
        self.fill_checksum_as(form, context)
    }

    /// Computes and stores the checksum in a given form.
    pub fn fill_checksum_as(
        &mut self,
        form: ChecksumForm,
        context: &ChecksumContext,
    ) -> Result<()> {
        let value = self.compute_checksum(form, context)?;
        self.set_checksum(value);
        Ok(())
    }
}

/// A v3 interval in hundredths of a second, 12 bits wide: at most 4095 (40.95 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Centiseconds(u16);

impl Centiseconds {
    pub const MAX: Self = Self(MAX_ADVER_INT_MASK);

    /// `None` above 4095, which the 12-bit field cannot carry.
    pub const fn new(centiseconds: u16) -> Option<Self> {
        if centiseconds <= MAX_ADVER_INT_MASK {
            Some(Self(centiseconds))
        } else {
            None
        }
    }

    /// Whole centiseconds of `duration` (rounded down); `None` if it does not fit.
    pub fn from_duration(duration: Duration) -> Option<Self> {
        let centiseconds = duration.as_millis() / 10;
        u16::try_from(centiseconds).ok().and_then(Self::new)
    }

    pub const fn get(self) -> u16 {
        self.0
    }

    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }
}

/// The v2 authentication type (RFC 2338 §5.3.6; RFC 3768 keeps only 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0: no authentication.
    None,
    /// 1: a clear-text password of up to 8 bytes (RFC 2338, removed by RFC 3768 but still
    /// keepalived's `auth_type PASS`).
    SimpleText,
    /// 2: IP Authentication Header (RFC 2338, removed by RFC 3768). The VRRP message then
    /// travels inside AH (IP protocol 51); parsed so it can be reported, never recommended.
    Ah,
    /// Any other value, kept so the daemon can count and report it.
    Other(u8),
}

impl AuthType {
    /// RFC 3768 removed every type but `None`; `Ah` is the one keepalived still calls
    /// deprecated.
    pub const fn is_deprecated(self) -> bool {
        matches!(self, Self::Ah)
    }
}

impl From<u8> for AuthType {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::None,
            1 => Self::SimpleText,
            2 => Self::Ah,
            other => Self::Other(other),
        }
    }
}

impl From<AuthType> for u8 {
    fn from(value: AuthType) -> Self {
        match value {
            AuthType::None => 0,
            AuthType::SimpleText => 1,
            AuthType::Ah => 2,
            AuthType::Other(other) => other,
        }
    }
}

/// v2 authentication: the type and the 8 data bytes, kept verbatim so parse -> emit gives
/// back the same bytes (RFC 3768: data is sent as zero and ignored when the type is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth {
    pub auth_type: AuthType,
    pub data: [u8; 8],
}

impl Auth {
    pub const fn none() -> Self {
        Self {
            auth_type: AuthType::None,
            data: [0; 8],
        }
    }

    /// A simple text password, zero-padded to 8 bytes; longer ones are refused (keepalived
    /// truncates them at configuration time, which is config's business, not the wire's).
    pub fn simple_text(password: &[u8]) -> Result<Self> {
        if password.len() > 8 {
            return Err(Error::PasswordTooLong(password.len()));
        }
        let mut data = [0; 8];
        data[..password.len()].copy_from_slice(password);
        Ok(Self {
            auth_type: AuthType::SimpleText,
            data,
        })
    }

    /// The password without its zero padding, for `SimpleText`.
    pub fn password(&self) -> Option<&[u8]> {
        if self.auth_type != AuthType::SimpleText {
            return None;
        }
        let len = self
            .data
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last + 1);
        Some(&self.data[..len])
    }
}

/// The version-specific half of an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only.
    V2 {
        /// Advertisement interval, whole seconds.
        adver_int: u8,
        auth: Auth,
    },
    /// RFC 9568: IPv4 or IPv6.
    V3 { max_adver_int: Centiseconds },
}

impl Version {
    pub const fn number(&self) -> u8 {
        match self {
            Self::V2 { .. } => 2,
            Self::V3 { .. } => 3,
        }
    }
}

/// The meaning of a valid advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    pub version: Version,
    /// Virtual Router ID, 1..=255 in a valid configuration (0 is carried as is).
    pub vrid: u8,
    /// 255 = address owner, 0 = the Master is leaving.
    pub priority: u8,
    /// All of the IP packet's family.
    pub addresses: Vec<IpAddr>,
}

/// An advertisement read from a whole IPv4 datagram, as a raw IPPROTO_VRRP socket gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Advert {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    /// RFC: must be 255 (checking that is the caller's business).
    pub ttl: u8,
    pub repr: Repr,
    pub checksum_form: ChecksumForm,
}

impl Repr {
    /// Reads and validates a message: version, type, exact length for the context's
    /// family, and the checksum. Returns the meaning and which checksum form matched.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        context: &ChecksumContext,
    ) -> Result<(Repr, ChecksumForm)> {
        packet.check_len()?;
        let family = context.family()?;
        let version_number = packet.version();
        match (version_number, family) {
            (2, AddressFamily::Ipv4) | (3, _) => {}
            (2, AddressFamily::Ipv6) => return Err(Error::AddressFamilyMismatch),
            (other, _) => return Err(Error::UnsupportedVersion(other)),
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::BadType(packet.msg_type()));
        }
        packet.check_len_for(family)?;
        let checksum_form = packet.verify_checksum(context)?.ok_or(Error::BadChecksum)?;

        let addresses = (0..usize::from(packet.address_count()))
            .map(|index| packet.address(family, index).ok_or(Error::Truncated))
            .collect::<Result<Vec<_>>>()?;
        let version = if version_number == 2 {
            Version::V2 {
                adver_int: packet.adver_int(),
                auth: Auth {
                    auth_type: AuthType::from(packet.auth_type()),
                    data: packet.auth_data().ok_or(Error::Truncated)?,
                },
            }
        } else {
            // The mask drops the reserved bits, so this always fits.
            let max_adver_int =
                Centiseconds::new(packet.max_adver_int()).unwrap_or(Centiseconds::MAX);
            Version::V3 { max_adver_int }
        };
        let repr = Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            addresses,
        };
        Ok((repr, checksum_form))
    }

    /// Reads a whole IPv4 datagram (IP header + VRRP), as a raw socket for protocol 112
    /// delivers it, checking the IP header's version, length and protocol. The kernel has
    /// already checked the header checksum.
    pub fn parse_ipv4_datagram(datagram: &[u8]) -> Result<Ipv4Advert> {
        const MIN_HEADER_LEN: usize = 20;
        if datagram.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if datagram[0] >> 4 != 4 {
            return Err(Error::Ipv4Header("version is not 4"));
        }
        let header_len = usize::from(datagram[0] & 0x0f) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(Error::Ipv4Header("header length below 20 bytes"));
        }
        if header_len > datagram.len() {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        if total_len < header_len {
            return Err(Error::Ipv4Header("total length below header length"));
        }
        if total_len > datagram.len() {
            return Err(Error::Truncated);
        }
        if datagram[9] != IPPROTO_VRRP {
            return Err(Error::Ipv4Header("protocol is not 112 (VRRP)"));
        }
        let ttl = datagram[8];
        let source = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
        let destination = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
        let context = ChecksumContext::new(source.into(), destination.into());
        let packet = Packet::new_checked(&datagram[header_len..total_len])?;
        let (repr, checksum_form) = Repr::parse(&packet, &context)?;
        Ok(Ipv4Advert {
            source,
            destination,
            ttl,
            repr,
            checksum_form,
        })
    }

    /// The family of the addresses, if there are any and they agree.
    fn address_family(&self) -> Result<Option<AddressFamily>> {
        let mut families = self.addresses.iter().map(AddressFamily::of);
        let Some(first) = families.next() else {
            return Ok(None);
        };
        if families.all(|family| family == first) {
            Ok(Some(first))
        } else {
            Err(Error::AddressFamilyMismatch)
        }
    }

    /// Bytes the message takes. Addresses are sized by their own family (all must agree,
    /// which `emit` checks).
    pub fn buffer_len(&self) -> usize {
        let address_len = self
            .addresses
            .first()
            .map_or(4, |a| AddressFamily::of(a).address_len());
        let trailer = match self.version {
            Version::V2 { .. } => field::AUTH_DATA_LEN,
            Version::V3 { .. } => 0,
        };
        HEADER_LEN + self.addresses.len() * address_len + trailer
    }

    /// The advertisement interval, whatever the version's unit.
    pub fn advert_interval(&self) -> Duration {
        match self.version {
            Version::V2 { adver_int, .. } => Duration::from_secs(adver_int.into()),
            Version::V3 { max_adver_int } => max_adver_int.as_duration(),
        }
    }

    /// Writes the message into a buffer of exactly `buffer_len()` bytes and fills the
    /// checksum in the context's send form. Refuses addresses of the wrong family, v2 over
    /// IPv6, and more than 255 addresses.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        context: &ChecksumContext,
    ) -> Result<()> {
        let family = context.family()?;
        if self.address_family()?.is_some_and(|own| own != family) {
            return Err(Error::AddressFamilyMismatch);
        }
        let form = context.send_form(self.version.number())?;
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| Error::TooManyAddresses(self.addresses.len()))?;
        let expected = self.buffer_len();
        let actual = packet.as_bytes().len();
        if actual != expected {
            return Err(Error::BufferLength { expected, actual });
        }

        packet.set_version_and_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_address_count(count);
        match self.version {
            Version::V2 { adver_int, auth } => {
                packet.set_auth_type(auth.auth_type.into());
                packet.set_adver_int(adver_int);
                packet.set_auth_data(&auth.data);
            }
            Version::V3 { max_adver_int } => packet.set_max_adver_int(max_adver_int),
        }
        for (index, &address) in self.addresses.iter().enumerate() {
            packet.set_address(index, address);
        }
        packet.set_checksum(0);
        packet.fill_checksum_as(form, context)
    }

    /// `emit` into a new buffer of the right size.
    pub fn to_bytes(&self, context: &ChecksumContext) -> Result<Vec<u8>> {
        let mut packet = Packet::new_unchecked(vec![0; self.buffer_len()]);
        self.emit(&mut packet, context)?;
        Ok(packet.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVERT_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
    /// The link-local source of the v3/IPv6 capture (the veth's EUI-64 address).
    const V6_SOURCE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x6cf6, 0x17ff, 0xfea8, 0x99f4);

    // Golden datagrams: captured from Debian's keepalived 2.2.7 (`keepalived -n -l -D
    // --vrrp`) in a netns on a veth pair (interface a = 10.9.0.1/24, captured on the peer b
    // with `tcpdump -i b proto 112`), each with `state MASTER`, `virtual_router_id 51`,
    // `priority 100`, `advert_int 1`. They are the IPv4 datagrams (IP header + VRRP) that a
    // raw IPPROTO_VRRP socket returns; tshark -V reports "Checksum Status: Good" for each.

    /// v2, one address (10.9.0.100), no authentication.
    const V2_ONE_ADDRESS_DATAGRAM: [u8; 40] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x88, 0x0a, 0x09, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12, // IPv4 header
        0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0x70, 0x5d, 0x0a, 0x09, 0x00, 0x64, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// v2, three addresses (10.9.0.100-102), `auth_type PASS`, `auth_pass secret12`.
    const V2_THREE_ADDRESSES_PASS_DATAGRAM: [u8; 48] = [
        0x45, 0xc0, 0x00, 0x30, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x80, 0x0a, 0x09, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12, // IPv4 header
        0x21, 0x33, 0x64, 0x03, 0x01, 0x01, 0xec, 0xff, 0x0a, 0x09, 0x00, 0x64, 0x0a, 0x09, 0x00,
        0x65, 0x0a, 0x09, 0x00, 0x66, b's', b'e', b'c', b'r', b'e', b't', b'1', b'2',
    ];

    /// v3 over IPv4 (`version 3`), one address (10.9.0.100): keepalived's default checksum,
    /// with the IPv4 pseudo-header (0x7561).
    const V3_IPV4_PSEUDO_HEADER_DATAGRAM: [u8; 32] = [
        0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x90, 0x0a, 0x09, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12, // IPv4 header
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x75, 0x61, 0x0a, 0x09, 0x00, 0x64,
    ];

    /// The same v3/IPv4 message with its checksum over the message alone (0x5ffa), as
    /// `v3_checksum_as_v2` / RFC 9568 senders produce it. Keepalived 2.2.7 cannot send
    /// this form, so it is derived from the capture; 0x5ffa was computed independently
    /// (a few lines of Python) and tshark with `vrrp.v3_checksum_as_in_v2:TRUE` agrees.
    const V3_IPV4_MESSAGE_ONLY_BYTES: [u8; 12] = [
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x5f, 0xfa, 0x0a, 0x09, 0x00, 0x64,
    ];

    /// v3 over IPv6 (`version 3`, `native_ipv6`), two addresses (fd00:9::100, fd00:9::101),
    /// sent from fe80::6cf6:17ff:fea8:99f4 to ff02::12 (the IPv6 header is not part of what
    /// a raw IPv6 socket returns, so only the VRRP message is kept).
    const V3_IPV6_TWO_ADDRESSES_BYTES: [u8; 40] = [
        0x31, 0x33, 0x64, 0x02, 0x00, 0x64, 0x52, 0x90, // header
        0xfd, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, // fd00:9::100
        0xfd, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x01, // fd00:9::101
    ];

    fn v4_context() -> ChecksumContext {
        ChecksumContext::new(ADVERT_SOURCE.into(), VRRP_GROUP_V4.into())
    }

    fn v6_context() -> ChecksumContext {
        ChecksumContext::new(V6_SOURCE.into(), VRRP_GROUP_V6.into())
    }

    fn vip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 9, 0, last))
    }

    fn vip6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, last))
    }

    fn v3(addresses: Vec<IpAddr>) -> Repr {
        Repr {
            version: Version::V3 {
                max_adver_int: Centiseconds::new(100).unwrap(),
            },
            vrid: 51,
            priority: 100,
            addresses,
        }
    }

    fn parse(bytes: &[u8], context: &ChecksumContext) -> Result<(Repr, ChecksumForm)> {
        Repr::parse(&Packet::new_checked(bytes)?, context)
    }

    /// Recomputes the message-only or pseudo-header checksum after a test edits bytes.
    fn refill(bytes: &mut [u8], form: ChecksumForm, context: &ChecksumContext) {
        Packet::new_unchecked(bytes)
            .fill_checksum_as(form, context)
            .unwrap();
    }

    #[test]
    fn v2_one_address_parses_and_emits_the_same_bytes() {
        let advert = Repr::parse_ipv4_datagram(&V2_ONE_ADDRESS_DATAGRAM).unwrap();
        assert_eq!(advert.source, ADVERT_SOURCE);
        assert_eq!(advert.destination, VRRP_GROUP_V4);
        assert_eq!(advert.ttl, 255, "RFC 3768 §5.2.3: the TTL MUST be 255");
        assert_eq!(advert.checksum_form, ChecksumForm::MessageOnly);
        let expected = Repr {
            version: Version::V2 {
                adver_int: 1,
                auth: Auth::none(),
            },
            vrid: 51,
            priority: 100,
            addresses: vec![vip(100)],
        };
        assert_eq!(advert.repr, expected);
        assert_eq!(advert.repr.advert_interval(), Duration::from_secs(1));
        assert_eq!(expected.buffer_len(), 20);
        assert_eq!(
            expected.to_bytes(&v4_context()).unwrap(),
            V2_ONE_ADDRESS_DATAGRAM[20..]
        );
    }

    #[test]
    fn v2_three_addresses_with_simple_text_password_round_trips() {
        let advert = Repr::parse_ipv4_datagram(&V2_THREE_ADDRESSES_PASS_DATAGRAM).unwrap();
        let Version::V2 { adver_int, auth } = advert.repr.version else {
            panic!("not v2")
        };
        assert_eq!(adver_int, 1);
        assert_eq!(auth.auth_type, AuthType::SimpleText);
        assert_eq!(auth.password(), Some(&b"secret12"[..]));
        assert_eq!(auth, Auth::simple_text(b"secret12").unwrap());
        assert_eq!(advert.repr.addresses, vec![vip(100), vip(101), vip(102)]);
        assert_eq!(
            advert.repr.to_bytes(&v4_context()).unwrap(),
            V2_THREE_ADDRESSES_PASS_DATAGRAM[20..]
        );
    }

    #[test]
    fn packet_getters_read_the_named_fields() {
        let packet = Packet::new_checked(&V2_THREE_ADDRESSES_PASS_DATAGRAM[20..]).unwrap();
        assert_eq!(packet.version(), 2);
        assert_eq!(packet.msg_type(), TYPE_ADVERTISEMENT);
        assert_eq!(packet.vrid(), 51);
        assert_eq!(packet.priority(), 100);
        assert_eq!(packet.address_count(), 3);
        assert_eq!(packet.auth_type(), 1);
        assert_eq!(packet.adver_int(), 1);
        assert_eq!(packet.checksum(), 0xecff);
        assert_eq!(packet.address(AddressFamily::Ipv4, 2), Some(vip(102)));
        assert_eq!(
            packet.address(AddressFamily::Ipv4, 3),
            None,
            "beyond the count"
        );
        assert_eq!(
            packet.address(AddressFamily::Ipv6, 1),
            None,
            "beyond the buffer"
        );
        assert_eq!(packet.auth_data(), Some(*b"secret12"));
    }

    #[test]
    fn setters_then_fill_checksum_rebuild_a_captured_message() {
        let mut bytes = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version_and_type(3, TYPE_ADVERTISEMENT);
        packet.set_vrid(51);
        packet.set_priority(100);
        packet.set_address_count(1);
        packet.set_max_adver_int(Centiseconds::new(100).unwrap());
        packet.set_address(0, vip(100));
        packet.fill_checksum(&v4_context()).unwrap();
        assert_eq!(bytes, V3_IPV4_PSEUDO_HEADER_DATAGRAM[20..]);
    }

    #[test]
    fn v3_ipv4_accepts_keepalived_pseudo_header_checksum() {
        let advert = Repr::parse_ipv4_datagram(&V3_IPV4_PSEUDO_HEADER_DATAGRAM).unwrap();
        assert_eq!(advert.checksum_form, ChecksumForm::Ipv4PseudoHeader);
        assert_eq!(advert.repr, v3(vec![vip(100)]));
        assert_eq!(advert.repr.advert_interval(), Duration::from_secs(1));
    }

    #[test]
    fn v3_ipv4_accepts_message_only_checksum_and_says_so() {
        let (repr, form) = parse(&V3_IPV4_MESSAGE_ONLY_BYTES, &v4_context()).unwrap();
        assert_eq!(form, ChecksumForm::MessageOnly);
        assert_eq!(repr, v3(vec![vip(100)]));
    }

    #[test]
    fn v3_ipv4_emits_pseudo_header_form_unless_told_v3_checksum_as_v2() {
        let repr = v3(vec![vip(100)]);
        assert_eq!(
            repr.to_bytes(&v4_context()).unwrap(),
            V3_IPV4_PSEUDO_HEADER_DATAGRAM[20..]
        );
        let as_v2 = v4_context().with_v3_ipv4_as_v2(true);
        assert_eq!(repr.to_bytes(&as_v2).unwrap(), V3_IPV4_MESSAGE_ONLY_BYTES);
    }

    #[test]
    fn v3_ipv4_pseudo_header_binds_the_checksum_to_the_ip_addresses() {
        // Another destination (unicast peer): the pseudo-header form no longer checks, and
        // neither does the message-only one, so the packet is refused.
        let peer = ChecksumContext::new(ADVERT_SOURCE.into(), Ipv4Addr::new(10, 9, 0, 2).into());
        assert_eq!(
            parse(&V3_IPV4_PSEUDO_HEADER_DATAGRAM[20..], &peer),
            Err(Error::BadChecksum)
        );
        // The message-only form does not depend on the addresses.
        assert!(parse(&V3_IPV4_MESSAGE_ONLY_BYTES, &peer).is_ok());
    }

    #[test]
    fn v3_ipv6_two_addresses_round_trips() {
        let (repr, form) = parse(&V3_IPV6_TWO_ADDRESSES_BYTES, &v6_context()).unwrap();
        assert_eq!(form, ChecksumForm::Ipv6PseudoHeader);
        assert_eq!(repr, v3(vec![vip6(0x100), vip6(0x101)]));
        assert_eq!(repr.buffer_len(), 40);
        assert_eq!(
            repr.to_bytes(&v6_context()).unwrap(),
            V3_IPV6_TWO_ADDRESSES_BYTES
        );
        // v3_ipv4_as_v2 is about IPv4 only.
        let flagged = v6_context().with_v3_ipv4_as_v2(true);
        assert_eq!(
            repr.to_bytes(&flagged).unwrap(),
            V3_IPV6_TWO_ADDRESSES_BYTES
        );
    }

    #[test]
    fn v3_ipv6_refuses_a_message_only_checksum() {
        let mut bytes = V3_IPV6_TWO_ADDRESSES_BYTES;
        refill(&mut bytes, ChecksumForm::MessageOnly, &v6_context());
        assert_eq!(parse(&bytes, &v6_context()), Err(Error::BadChecksum));
    }

    #[test]
    fn v3_reserved_bits_are_ignored_on_receipt_and_sent_as_zero() {
        let mut bytes = V3_IPV4_MESSAGE_ONLY_BYTES;
        bytes[4] |= 0xa0;
        refill(&mut bytes, ChecksumForm::MessageOnly, &v4_context());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.v3_reserved(), 0xa);
        assert_eq!(packet.max_adver_int(), 100);
        let (repr, _) = Repr::parse(&packet, &v4_context()).unwrap();
        assert_eq!(repr, v3(vec![vip(100)]));
        let emitted = repr
            .to_bytes(&v4_context().with_v3_ipv4_as_v2(true))
            .unwrap();
        assert_eq!(emitted, V3_IPV4_MESSAGE_ONLY_BYTES);
    }

    #[test]
    fn ah_auth_type_is_parsed_and_marked_deprecated() {
        let mut bytes: Vec<u8> = V2_ONE_ADDRESS_DATAGRAM[20..].to_vec();
        bytes[field::AUTH_TYPE] = 2;
        refill(&mut bytes, ChecksumForm::MessageOnly, &v4_context());
        let (repr, _) = parse(&bytes, &v4_context()).unwrap();
        let Version::V2 { auth, .. } = repr.version else {
            panic!("not v2")
        };
        assert_eq!(auth.auth_type, AuthType::Ah);
        assert!(auth.auth_type.is_deprecated());
        assert!(!AuthType::SimpleText.is_deprecated());
        assert_eq!(auth.password(), None);
        assert_eq!(repr.to_bytes(&v4_context()).unwrap(), bytes);
    }

    #[test]
    fn centiseconds_fit_in_twelve_bits() {
        assert_eq!(Centiseconds::new(4095), Some(Centiseconds::MAX));
        assert_eq!(Centiseconds::new(4096), None);
        assert_eq!(
            Centiseconds::from_duration(Duration::from_millis(1234))
                .unwrap()
                .get(),
            123
        );
        assert_eq!(Centiseconds::from_duration(Duration::from_secs(41)), None);
        assert_eq!(
            Centiseconds::MAX.as_duration(),
            Duration::from_millis(40_950)
        );
    }

    #[test]
    fn priority_zero_and_empty_address_list_are_carried() {
        // A Master leaving sends priority 0 (RFC 3768 §6.4.3); the wire does not judge.
        let repr = Repr {
            version: Version::V2 {
                adver_int: 3,
                auth: Auth::none(),
            },
            vrid: 1,
            priority: 0,
            addresses: vec![],
        };
        let bytes = repr.to_bytes(&v4_context()).unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(parse(&bytes, &v4_context()).unwrap().0, repr);
    }

    // Errors, one per variant the advertisement can produce.

    #[test]
    fn error_truncated_below_the_fixed_header() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&V2_ONE_ADDRESS_DATAGRAM[20..20 + len]).err(),
                Some(Error::Truncated)
            );
        }
    }

    #[test]
    fn error_truncated_below_what_the_address_count_requires() {
        let bytes = &V2_THREE_ADDRESSES_PASS_DATAGRAM[20..];
        // Missing part of the authentication data.
        assert_eq!(
            Packet::new_checked(&bytes[..bytes.len() - 1]).err(),
            Some(Error::Truncated)
        );
        // 12 bytes hold one IPv4 address but not one IPv6 address: only the family tells.
        let mut v3_one = V3_IPV4_MESSAGE_ONLY_BYTES;
        let packet = Packet::new_checked(&mut v3_one[..]).unwrap();
        assert_eq!(
            packet.check_len_for(AddressFamily::Ipv6),
            Err(Error::Truncated)
        );
        assert_eq!(
            parse(&V3_IPV4_MESSAGE_ONLY_BYTES, &v6_context()),
            Err(Error::Truncated)
        );
        // A count of 255 in a short buffer.
        let mut bytes = V3_IPV4_MESSAGE_ONLY_BYTES;
        bytes[field::COUNT] = 255;
        assert_eq!(parse(&bytes, &v4_context()), Err(Error::Truncated));
    }

    #[test]
    fn error_address_count_mismatch_when_longer_than_the_count_says() {
        let mut bytes = V3_IPV6_TWO_ADDRESSES_BYTES;
        bytes[field::COUNT] = 1;
        assert_eq!(
            parse(&bytes, &v6_context()),
            Err(Error::AddressCountMismatch { count: 1, len: 40 })
        );
        let mut longer = V2_ONE_ADDRESS_DATAGRAM[20..].to_vec();
        longer.extend_from_slice(&[0; 4]);
        assert_eq!(
            parse(&longer, &v4_context()),
            Err(Error::AddressCountMismatch { count: 1, len: 24 })
        );
    }

    #[test]
    fn error_unsupported_version() {
        for version in [0u8, 1, 4, 15] {
            let mut bytes = V3_IPV4_MESSAGE_ONLY_BYTES;
            bytes[field::VER_TYPE] = (version << 4) | 1;
            assert_eq!(
                parse(&bytes, &v4_context()),
                Err(Error::UnsupportedVersion(version))
            );
        }
    }

    #[test]
    fn error_bad_type() {
        let mut bytes = V3_IPV4_MESSAGE_ONLY_BYTES;
        bytes[field::VER_TYPE] = 0x32;
        assert_eq!(parse(&bytes, &v4_context()), Err(Error::BadType(2)));
    }

    #[test]
    fn error_bad_checksum_on_any_flipped_bit() {
        let message = &V2_THREE_ADDRESSES_PASS_DATAGRAM[20..];
        for byte in 0..message.len() {
            // Skip the version/type and count bytes: flipping them is a different error.
            if byte == field::VER_TYPE || byte == field::COUNT {
                continue;
            }
            let mut bytes = message.to_vec();
            bytes[byte] ^= 0x01;
            assert_eq!(
                parse(&bytes, &v4_context()),
                Err(Error::BadChecksum),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn error_address_family_mismatch() {
        // A v2 message arriving over IPv6: RFC 3768 is IPv4 only.
        assert_eq!(
            parse(&V2_ONE_ADDRESS_DATAGRAM[20..], &v6_context()),
            Err(Error::AddressFamilyMismatch)
        );
        // Source and destination of different families.
        let mixed = ChecksumContext::new(ADVERT_SOURCE.into(), VRRP_GROUP_V6.into());
        assert_eq!(
            parse(&V3_IPV4_MESSAGE_ONLY_BYTES, &mixed),
            Err(Error::AddressFamilyMismatch)
        );
        // Emitting mixed addresses, IPv6 addresses over IPv4, and v2 over IPv6.
        let mixed_addresses = v3(vec![vip(1), vip6(1)]);
        assert_eq!(
            mixed_addresses.to_bytes(&v4_context()),
            Err(Error::AddressFamilyMismatch)
        );
        assert_eq!(
            v3(vec![vip6(1)]).to_bytes(&v4_context()),
            Err(Error::AddressFamilyMismatch)
        );
        let v2_over_v6 = Repr {
            version: Version::V2 {
                adver_int: 1,
                auth: Auth::none(),
            },
            vrid: 1,
            priority: 100,
            addresses: vec![],
        };
        assert_eq!(
            v2_over_v6.to_bytes(&v6_context()),
            Err(Error::AddressFamilyMismatch)
        );
    }

    #[test]
    fn error_too_many_addresses() {
        let repr = v3((0..256).map(|_| vip(1)).collect());
        assert_eq!(
            repr.to_bytes(&v4_context()),
            Err(Error::TooManyAddresses(256))
        );
    }

    #[test]
    fn error_password_too_long() {
        assert_eq!(
            Auth::simple_text(b"123456789"),
            Err(Error::PasswordTooLong(9))
        );
        assert_eq!(Auth::simple_text(b"").unwrap().password(), Some(&b""[..]));
    }

    #[test]
    fn error_buffer_length_on_emit() {
        let repr = v3(vec![vip(100)]);
        let mut short = Packet::new_unchecked([0u8; 11]);
        assert_eq!(
            repr.emit(&mut short, &v4_context()),
            Err(Error::BufferLength {
                expected: 12,
                actual: 11
            })
        );
        let mut long = Packet::new_unchecked([0u8; 13]);
        assert_eq!(
            repr.emit(&mut long, &v4_context()),
            Err(Error::BufferLength {
                expected: 12,
                actual: 13
            })
        );
    }

    #[test]
    fn error_ipv4_header() {
        let mut not_v4 = V2_ONE_ADDRESS_DATAGRAM;
        not_v4[0] = 0x65;
        assert_eq!(
            Repr::parse_ipv4_datagram(&not_v4),
            Err(Error::Ipv4Header("version is not 4"))
        );
        let mut short_ihl = V2_ONE_ADDRESS_DATAGRAM;
        short_ihl[0] = 0x44;
        assert!(matches!(
            Repr::parse_ipv4_datagram(&short_ihl),
            Err(Error::Ipv4Header(_))
        ));
        let mut not_vrrp = V2_ONE_ADDRESS_DATAGRAM;
        not_vrrp[9] = 51; // AH
        assert!(matches!(
            Repr::parse_ipv4_datagram(&not_vrrp),
            Err(Error::Ipv4Header(_))
        ));
        let mut total_below_header = V2_ONE_ADDRESS_DATAGRAM;
        total_below_header[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            Repr::parse_ipv4_datagram(&total_below_header),
            Err(Error::Ipv4Header(_))
        ));
        // IHL pointing past the end, total length past the end, less than an IP header.
        let mut long_ihl = V2_ONE_ADDRESS_DATAGRAM;
        long_ihl[0] = 0x4f;
        assert_eq!(
            Repr::parse_ipv4_datagram(&long_ihl[..40]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Repr::parse_ipv4_datagram(&V2_ONE_ADDRESS_DATAGRAM[..39]),
            Err(Error::Truncated)
        );
        assert_eq!(
            Repr::parse_ipv4_datagram(&[0x45; 19]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn ipv4_datagram_uses_total_length_not_trailing_bytes() {
        let mut padded = V2_ONE_ADDRESS_DATAGRAM.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let advert = Repr::parse_ipv4_datagram(&padded).unwrap();
        assert_eq!(advert.repr.addresses, vec![vip(100)]);
    }

    /// Any byte string, at any length, gives a value or an error and never panics.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state: u32 = 0x1234_5678;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let contexts = [
            v4_context(),
            v6_context(),
            v4_context().with_v3_ipv4_as_v2(true),
        ];
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Mostly plausible versions, so the deeper checks run too.
                *first = [0x21, 0x31, next() as u8][(next() % 3) as usize];
            }
            if bytes.len() > 3 {
                bytes[3] %= 8;
            }
            for context in &contexts {
                if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                    let _ = Repr::parse(&packet, context);
                    let _ = packet.address(AddressFamily::Ipv6, (next() % 8) as usize);
                    let _ = packet.auth_data();
                }
            }
            let mut datagram = V2_ONE_ADDRESS_DATAGRAM[..20].to_vec();
            datagram.extend_from_slice(&bytes);
            datagram[2..4].copy_from_slice(&(next() as u16 % 100).to_be_bytes());
            let _ = Repr::parse_ipv4_datagram(&datagram);
            let _ = Repr::parse_ipv4_datagram(&bytes);
        }
    }
}
