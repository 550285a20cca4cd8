//! The one test that talks to the kernel. Unprivileged: resolving a generic-netlink family
//! needs no capability. It checks the "no IPVS" path on a kernel without `ip_vs`; where
//! IPVS exists (or the lookup autoloads it) it checks instead that connecting succeeds.
use std::path::Path;

use crate::lvs::ipvs::{IpvsError, IpvsSocket};

#[test]
fn connect_on_a_kernel_without_ip_vs_says_so_clearly() {
    match IpvsSocket::connect() {
        Err(error @ IpvsError::NoIpvs) => {
            assert_eq!(
                error.to_string(),
                "the kernel has no IPVS (modprobe ip_vs); keepxdp's XDP data plane does not need it"
            );
            assert!(!Path::new("/proc/net/ip_vs").exists(), "IPVS is there, yet its family was not found");
        }
        Ok(socket) => {
            // A kernel with IPVS: the family exists and /proc shows it.
            assert!(socket.family_id() > 0);
            assert!(Path::new("/proc/net/ip_vs").exists());
        }
        Err(other) => panic!("expected the clear \"no IPVS\" error, got: {other}"),
    }
}
