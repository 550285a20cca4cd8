//! The one error type of the IPVS seam.
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The generic-netlink controller knows no "IPVS" family: `ip_vs` is not loaded (the
    /// lookup itself asks the kernel to autoload it where modules can be loaded).
    #[error("the kernel has no IPVS (modprobe ip_vs); keepxdp's XDP data plane does not need it")]
    NoIpvs,
    /// The kernel refused a request; `errno` is positive (EEXIST, ESRCH, ENOENT, ...).
    #[error("IPVS refused to {op}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel { op: &'static str, errno: i32 },
    /// The socket or the netlink framing failed (not a refusal by IPVS itself).
    #[error("generic netlink: {0}")]
    Netlink(String),
    /// A value IPVS would refuse or misread, caught before sending.
    #[error("not a valid IPVS entry: {0}")]
    Invalid(String),
    /// A reply (or bytes given to `decode_*`) that does not follow ip_vs.h.
    #[error("malformed IPVS attribute: {0}")]
    Malformed(String),
}

impl IpvsError {
    /// The kernel's errno when IPVS refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
