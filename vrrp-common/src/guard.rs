//! The VRRP guard's maps: which VRIDs are configured on which interface, the unicast peer
//! sets, and the per-CPU decision counters.

/// IP protocol number of VRRP (RFC 3768 §5.2.4, RFC 9568 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// Adverts must arrive with TTL / hop limit 255 (RFC 9568 §7.1): they were not routed.
pub const VRRP_TTL: u8 = 255;
/// The only VRRP packet type (ADVERTISEMENT).
pub const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
/// Fixed part of the VRRP header: version/type, VRID, priority, count, auth/interval, checksum.
pub const VRRP_HEADER_LEN: usize = 8;
/// VRRPv2 carries 8 bytes of authentication data after the addresses (RFC 3768 §5.3.10).
pub const VRRP_V2_AUTH_LEN: usize = 8;

/// Address family tags used in keys (not AF_* values: they only need to be distinct).
pub const FAMILY_IPV4: u8 = 4;
pub const FAMILY_IPV6: u8 = 6;

/// `VridConfig::flags`: the instance uses unicast peers, so sources must be in `vrrp_peers`.
pub const VRID_FLAG_UNICAST: u32 = 1;

/// Limits, sized for a large edge node: 255 VRIDs × 2 families on a few interfaces.
pub const MAX_VRIDS: u32 = 4096;
pub const MAX_PEERS: u32 = 16384;
/// (ifindex, VRID, family, reason) rows. Unknown VRIDs are counted too, so an attacker can
/// create at most 256 × 2 × 7 rows per interface; beyond the limit the packet is still
/// judged, only its counter row is not created.
pub const MAX_GUARD_STAT_ROWS: u32 = 32768;

/// Key of `vrids`: one configured VRRP instance on one interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VridKey {
    pub ifindex: u32,
    pub vrid: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

impl VridKey {
    pub const fn new(ifindex: u32, vrid: u8, family: u8) -> Self {
        Self { ifindex, vrid, family, _pad: [0; 2] }
    }
}

/// Value of `vrids`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VridConfig {
    /// `VRID_FLAG_*` bits.
    pub flags: u32,
}

/// Key of `vrrp_peers`: one allowed unicast source of one instance. IPv4 addresses occupy the
/// first 4 bytes of `addr`, the rest is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub ifindex: u32,
    pub vrid: u8,
    pub family: u8,
    pub _pad: [u8; 2],
    pub addr: [u8; 16],
}

impl PeerKey {
    pub const fn new(ifindex: u32, vrid: u8, family: u8, addr: [u8; 16]) -> Self {
        Self { ifindex, vrid, family, _pad: [0; 2], addr }
    }
}

/// Why the guard passed or dropped a VRRP packet. The discriminant is the `reason` byte of
/// `GuardStatKey`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GuardReason {
    Accepted = 0,
    BadTtl = 1,
    BadVersion = 2,
    BadType = 3,
    Truncated = 4,
    UnknownVrid = 5,
    ForeignSource = 6,
}

impl GuardReason {
    pub const ALL: [GuardReason; 7] = [
        GuardReason::Accepted,
        GuardReason::BadTtl,
        GuardReason::BadVersion,
        GuardReason::BadType,
        GuardReason::Truncated,
        GuardReason::UnknownVrid,
        GuardReason::ForeignSource,
    ];

    /// The name operators see in `keepxdp guard-stats` and the docs.
    pub const fn name(self) -> &'static str {
        match self {
            GuardReason::Accepted => "accepted",
            GuardReason::BadTtl => "bad_ttl",
            GuardReason::BadVersion => "bad_version",
            GuardReason::BadType => "bad_type",
            GuardReason::Truncated => "truncated",
            GuardReason::UnknownVrid => "unknown_vrid",
            GuardReason::ForeignSource => "foreign_source",
        }
    }

    pub const fn from_u8(value: u8) -> Option<GuardReason> {
        match value {
            0 => Some(GuardReason::Accepted),
            1 => Some(GuardReason::BadTtl),
            2 => Some(GuardReason::BadVersion),
            3 => Some(GuardReason::BadType),
            4 => Some(GuardReason::Truncated),
            5 => Some(GuardReason::UnknownVrid),
            6 => Some(GuardReason::ForeignSource),
            _ => None,
        }
    }
}

/// Key of `guard_stats` (per-CPU u64 packet counts). `vrid` is 0 when the packet was too
/// short to carry one (VRID 0 is never valid, so it cannot be mistaken for an instance).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuardStatKey {
    pub ifindex: u32,
    pub vrid: u8,
    pub family: u8,
    pub reason: u8,
    pub _pad: u8,
}

impl GuardStatKey {
    pub const fn new(ifindex: u32, vrid: u8, family: u8, reason: GuardReason) -> Self {
        Self { ifindex, vrid, family, reason: reason as u8, _pad: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn map_types_have_the_sizes_both_sides_assume() {
        // Explicit padding: no hidden bytes the kernel would hash differently.
        assert_eq!(size_of::<VridKey>(), 8);
        assert_eq!(size_of::<VridConfig>(), 4);
        assert_eq!(size_of::<PeerKey>(), 24);
        assert_eq!(size_of::<GuardStatKey>(), 8);
    }

    #[test]
    fn every_reason_round_trips_through_its_byte_and_has_a_distinct_name() {
        for (index, reason) in GuardReason::ALL.iter().enumerate() {
            assert_eq!(GuardReason::from_u8(*reason as u8), Some(*reason));
            assert_eq!(*reason as usize, index);
            for other in &GuardReason::ALL[index + 1..] {
                assert_ne!(reason.name(), other.name());
            }
        }
        assert_eq!(GuardReason::from_u8(GuardReason::ALL.len() as u8), None);
    }
}
