//! NAT state sync (`lvs_sync_daemon` in global_defs), keepalived's IPVS sync daemon done for
//! the XDP balancer: the node that is Master for the named vrrp_instance multicasts the
//! flows its balancer starts (reported through the `lvs_sync_ring` ring buffer) to the
//! group; the others install them in `lvs_nat` / `lvs_conntrack`, so after a failover the
//! new Master translates replies of flows it never saw (a real server that speaks first,
//! one shared by several NAT services, where stateless reverse NAT cannot tell the VIP).
//!
//! `wire` (the datagrams, IPVS's sync v1 layout), `decide` (what to send and install when),
//! `entries` (sync entries ↔ this node's map entries). The ring, socket and maps are
//! `daemon::sync`'s.
pub mod decide;
pub mod entries;
pub mod install;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr};

/// IPVS's defaults.
pub const DEFAULT_GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81));
pub const DEFAULT_PORT: u16 = 8848;
pub const DEFAULT_TTL: u8 = 1;

/// The datagram payload an interface of `mtu` carries toward `group` (IP and UDP headers
/// off), bounded by `maxlen` when configured.
pub fn payload_limit(mtu: u32, group: IpAddr, maxlen: Option<u16>) -> usize {
    let headers = if group.is_ipv4() { 20 + 8 } else { 40 + 8 };
    let by_mtu = (mtu as usize).saturating_sub(headers);
    maxlen.map_or(by_mtu, |m| (m as usize).min(by_mtu.max(wire::MIN_DATAGRAM))).max(wire::MIN_DATAGRAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_fits_the_mtu_and_maxlen_and_one_entry() {
        assert_eq!(payload_limit(1500, DEFAULT_GROUP, None), 1472);
        assert_eq!(payload_limit(1500, "ff02::81".parse().unwrap(), None), 1452);
        assert_eq!(payload_limit(9000, DEFAULT_GROUP, Some(1200)), 1200);
        assert_eq!(payload_limit(1500, DEFAULT_GROUP, Some(9000)), 1472);
        assert_eq!(payload_limit(1500, DEFAULT_GROUP, Some(10)), wire::MIN_DATAGRAM);
    }
}
