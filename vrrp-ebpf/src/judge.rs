//! The guard's decision on one frame (RFC 3768 §7.1, RFC 9568 §7.1 receive checks that can
//! be made without the instance's state), and its counting.
use aya_ebpf::bindings::BPF_NOEXIST;
use aya_ebpf::programs::XdpContext;
use vrrp_common::guard::{
    FAMILY_IPV4, FAMILY_IPV6, GuardReason, GuardStatKey, IPPROTO_VRRP, PeerKey,
    VRID_FLAG_UNICAST, VRRP_HEADER_LEN, VRRP_TTL, VRRP_TYPE_ADVERTISEMENT, VRRP_V2_AUTH_LEN,
    VridKey,
};

use crate::frame::*;
use crate::{GUARD_STATS, PEERS, VRIDS};

pub enum Verdict {
    /// A valid advert for a configured instance: on to the stack.
    Accept,
    /// A VRRP packet that failed a check: dropped (and counted).
    Drop,
    /// Not VRRP: the balancer's business.
    NotVrrp,
}

/// What the IP layer says about a VRRP packet.
struct Carrier {
    family: u8,
    ttl: u8,
    /// Offset of the VRRP header in the frame.
    vrrp_offset: usize,
    /// IP payload length claimed by the IP header.
    payload_len: usize,
    source: [u8; 16],
}

#[inline(always)]
pub fn judge(ctx: &XdpContext) -> Verdict {
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let Some(ethernet) = ptr_at::<[u8; ETH_HDR_LEN]>(ctx, 0) else {
        return Verdict::NotVrrp;
    };
    let ethernet = unsafe { &*ethernet };
    let carrier = match u16::from_be_bytes([ethernet[ETH_TYPE], ethernet[ETH_TYPE + 1]]) {
        ETHERTYPE_IPV4 => ipv4(ctx),
        ETHERTYPE_IPV6 => ipv6(ctx),
        _ => return Verdict::NotVrrp,
    };
    match carrier {
        Carried::NotVrrp => Verdict::NotVrrp,
        Carried::Malformed(family) => {
            count(ifindex, 0, family, GuardReason::Truncated);
            Verdict::Drop
        }
        Carried::Vrrp(carrier) => {
            let (vrid, reason) = check(ctx, ifindex, &carrier);
            count(ifindex, vrid, carrier.family, reason);
            match reason {
                GuardReason::Accepted => Verdict::Accept,
                _ => Verdict::Drop,
            }
        }
    }
}

enum Carried {
    NotVrrp,
    /// Protocol 112, but the IP header itself is inconsistent.
    Malformed(u8),
    Vrrp(Carrier),
}

// Headers are copied out of the frame with one bounds check each: the verifier then sees a
// single checked packet pointer per header, whatever offsets the compiler folds.

#[inline(always)]
fn ipv4(ctx: &XdpContext) -> Carried {
    let Some(header) = ptr_at::<[u8; IPV4_MIN_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
        return Carried::NotVrrp;
    };
    let header = unsafe { *header };
    if header[IPV4_PROTOCOL] != IPPROTO_VRRP {
        return Carried::NotVrrp;
    }
    let header_len = ((header[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([header[IPV4_TOTAL_LEN], header[IPV4_TOTAL_LEN + 1]]) as usize;
    if header_len < IPV4_MIN_HDR_LEN || total_len < header_len {
        return Carried::Malformed(FAMILY_IPV4);
    }
    let mut source = [0u8; 16];
    source[..4].copy_from_slice(&header[IPV4_SRC..IPV4_SRC + 4]);
    Carried::Vrrp(Carrier {
        family: FAMILY_IPV4,
        ttl: header[IPV4_TTL],
        vrrp_offset: ETH_HDR_LEN + header_len,
        payload_len: total_len - header_len,
        source,
    })
}

#[inline(always)]
fn ipv6(ctx: &XdpContext) -> Carried {
    let Some(header) = ptr_at::<[u8; IPV6_HDR_LEN]>(ctx, ETH_HDR_LEN) else {
        return Carried::NotVrrp;
    };
    let header = unsafe { &*header };
    // VRRP is carried directly after the fixed header; a packet with extension headers is
    // not an advert this guard judges (RFC 9568 sends none).
    if header[IPV6_NEXT_HEADER] != IPPROTO_VRRP {
        return Carried::NotVrrp;
    }
    let mut source = [0u8; 16];
    source.copy_from_slice(&header[IPV6_SRC..IPV6_SRC + 16]);
    Carried::Vrrp(Carrier {
        family: FAMILY_IPV6,
        ttl: header[IPV6_HOP_LIMIT],
        vrrp_offset: ETH_HDR_LEN + IPV6_HDR_LEN,
        payload_len: u16::from_be_bytes([header[IPV6_PAYLOAD_LEN], header[IPV6_PAYLOAD_LEN + 1]]) as usize,
        source,
    })
}

/// The checks (RFC 9568 §7.1). Returns the VRID read (0 when none could be read) and the
/// reason.
#[inline(always)]
fn check(ctx: &XdpContext, ifindex: u32, carrier: &Carrier) -> (u8, GuardReason) {
    let at = carrier.vrrp_offset;
    if carrier.payload_len < VRRP_HEADER_LEN {
        return (0, GuardReason::Truncated);
    }
    let Some(header) = ptr_at::<[u8; VRRP_HEADER_LEN]>(ctx, at) else {
        return (0, GuardReason::Truncated);
    };
    let header = unsafe { *header };
    let (version_type, vrid, address_count) = (header[0], header[1], header[3]);
    let version = version_type >> 4;
    // VRRPv2 exists only over IPv4 (RFC 3768); v3 covers both (RFC 9568).
    let version_ok = version == 3 || (version == 2 && carrier.family == FAMILY_IPV4);
    if !version_ok {
        return (vrid, GuardReason::BadVersion);
    }
    if version_type & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return (vrid, GuardReason::BadType);
    }
    let Some(config) = VRIDS.get_ptr(VridKey::new(ifindex, vrid, carrier.family)) else {
        return (vrid, GuardReason::UnknownVrid);
    };
    let flags = unsafe { (*config).flags };
    // Multicast adverts must not have been routed. Unicast ones may be (keepalived sends
    // IPv6 unicast with the default hop limit): their sources are checked instead.
    if carrier.ttl != VRRP_TTL && flags & VRID_FLAG_UNICAST == 0 {
        return (vrid, GuardReason::BadTtl);
    }
    let address_len = if carrier.family == FAMILY_IPV4 { 4 } else { 16 };
    let auth_len = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    let needed = VRRP_HEADER_LEN + (address_count as usize) * address_len + auth_len;
    if carrier.payload_len < needed || !has(ctx, at, needed) {
        return (vrid, GuardReason::Truncated);
    }
    if flags & VRID_FLAG_UNICAST != 0 {
        let peer = PeerKey::new(ifindex, vrid, carrier.family, carrier.source);
        if PEERS.get_ptr(peer).is_none() {
            return (vrid, GuardReason::ForeignSource);
        }
    }
    (vrid, GuardReason::Accepted)
}

#[inline(always)]
fn count(ifindex: u32, vrid: u8, family: u8, reason: GuardReason) {
    let key = GuardStatKey::new(ifindex, vrid, family, reason);
    if let Some(counter) = GUARD_STATS.get_ptr_mut(key) {
        // Per-CPU slot: no other CPU writes it.
        unsafe { *counter += 1 };
        return;
    }
    // First packet of this row on any CPU. If another CPU created it meanwhile, the
    // insert fails with EEXIST and the row exists: count into it.
    if GUARD_STATS.insert(key, 1u64, BPF_NOEXIST as u64).is_err() {
        if let Some(counter) = GUARD_STATS.get_ptr_mut(key) {
            unsafe { *counter += 1 };
        }
    }
}
