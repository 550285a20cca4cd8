//! VRRP (RFC 3768 v2, RFC 9568 v3): `wire` knows the bytes, `fsm` decides (a pure function
//! of state, event and time). Sockets, timers and netlink live outside both.
pub mod discard;
pub mod fsm;
pub mod instance;
pub mod link;
pub mod notify;
pub mod reload;
pub mod socket;
pub mod spec;
pub mod sync;
pub mod wire;
