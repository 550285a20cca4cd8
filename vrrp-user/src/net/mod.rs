//! The kernel's addresses, through rtnetlink: the one seam through which keepxdp adds and
//! removes virtual addresses, and what the kernel announces about links, addresses and routes. Gratuitous ARP / unsolicited NA frames are built by
//! `vrrp::wire` and sent by the instance runtime.
mod addresses;
mod interfaces;
mod neighbours;
pub mod route_spec;
pub mod sync_socket;
mod routes;
pub mod vmac;
mod watch;
mod xdp_mode;

pub use addresses::{AddressTable, Netlink, RecordingTable, VipHook};
pub use interfaces::{Interfaces, LinkFacts, watch_interfaces};
pub use routes::RouteTable;
pub use neighbours::Neighbour;
pub use watch::{NetEvent, watch_events};
pub use xdp_mode::{XdpAttachMode, xdp_attach_mode};
