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
    let carrier = match be16_at(ctx, ETH_TYPE) {
        Some(ETHERTYPE_IPV4) => ipv4(ctx),
        Some(ETHERTYPE_IPV6) => ipv6(ctx),
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

#[inline(always)]
fn ipv4(ctx: &XdpContext) -> Carried {
    let ip = ETH_HDR_LEN;
    if !has(ctx, ip, IPV4_MIN_HDR_LEN) {
        return Carried::NotVrrp;
    }
    if u8_at(ctx, ip + IPV4_PROTOCOL) != Some(IPPROTO_VRRP) {
        return Carried::NotVrrp;
    }
    let (Some(version_ihl), Some(ttl), Some(total_len), Some(src)) = (
        u8_at(ctx, ip),
        u8_at(ctx, ip + IPV4_TTL),
        be16_at(ctx, ip + IPV4_TOTAL_LEN),
        ptr_at::<[u8; 4]>(ctx, ip + IPV4_SRC),
    ) else {
        return Carried::NotVrrp;
    };
    let header_len = ((version_ihl & 0x0f) as usize) * 4;
    let total_len = total_len as usize;
    if header_len < IPV4_MIN_HDR_LEN || total_len < header_len {
        return Carried::Malformed(FAMILY_IPV4);
    }
    let src = unsafe { *src };
    let mut source = [0u8; 16];
    source[..4].copy_from_slice(&src);
    Carried::Vrrp(Carrier {
        family: FAMILY_IPV4,
        ttl,
        vrrp_offset: ip + header_len,
        payload_len: total_len - header_len,
        source,
    })
}

#[inline(always)]
fn ipv6(ctx: &XdpContext) -> Carried {
    let ip = ETH_HDR_LEN;
    if !has(ctx, ip, IPV6_HDR_LEN) {
        return Carried::NotVrrp;
    }
    // VRRP is carried directly after the fixed header; a packet with extension headers is
    // not an advert this guard judges (RFC 9568 sends none).
    if u8_at(ctx, ip + IPV6_NEXT_HEADER) != Some(IPPROTO_VRRP) {
        return Carried::NotVrrp;
    }
    let (Some(hop_limit), Some(payload_len), Some(src)) = (
        u8_at(ctx, ip + IPV6_HOP_LIMIT),
        be16_at(ctx, ip + IPV6_PAYLOAD_LEN),
        ptr_at::<[u8; 16]>(ctx, ip + IPV6_SRC),
    ) else {
        return Carried::NotVrrp;
    };
    Carried::Vrrp(Carrier {
        family: FAMILY_IPV6,
        ttl: hop_limit,
        vrrp_offset: ip + IPV6_HDR_LEN,
        payload_len: payload_len as usize,
        source: unsafe { *src },
    })
}

/// The checks, in the order the RFC lists them. Returns the VRID read (0 when none could
/// be read) and the reason.
#[inline(always)]
fn check(ctx: &XdpContext, ifindex: u32, carrier: &Carrier) -> (u8, GuardReason) {
    let at = carrier.vrrp_offset;
    if carrier.payload_len < VRRP_HEADER_LEN || !has(ctx, at, VRRP_HEADER_LEN) {
        return (0, GuardReason::Truncated);
    }
    let (Some(version_type), Some(vrid), Some(address_count)) =
        (u8_at(ctx, at), u8_at(ctx, at + 1), u8_at(ctx, at + 3))
    else {
        return (0, GuardReason::Truncated);
    };
    if carrier.ttl != VRRP_TTL {
        return (vrid, GuardReason::BadTtl);
    }
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
    let address_len = if carrier.family == FAMILY_IPV4 { 4 } else { 16 };
    let auth_len = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    let needed = VRRP_HEADER_LEN + (address_count as usize) * address_len + auth_len;
    if carrier.payload_len < needed || !has(ctx, at, needed) {
        return (vrid, GuardReason::Truncated);
    }
    let flags = unsafe { (*config).flags };
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
