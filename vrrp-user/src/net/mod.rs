//! The kernel's addresses, through rtnetlink: the one seam through which keepxdp adds and
//! removes virtual addresses. Gratuitous ARP / unsolicited NA frames are built by
//! `vrrp::wire` and sent by the instance runtime.
mod addresses;

pub use addresses::{AddressTable, Netlink, RecordingTable};
