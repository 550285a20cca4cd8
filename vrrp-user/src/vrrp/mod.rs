//! VRRP (RFC 3768 v2, RFC 9568 v3): `wire` knows the bytes, `fsm` decides (a pure function
//! of state, event and time), `instance` runs one virtual router on its inputs and carries
//! out the decisions. Around it: `spec` (what the configuration asks), `readiness` (is the
//! interface usable), `adverts` (messages out, datagrams judged with `discard`), `link`,
//! `socket` and `host` (the kernel's sockets behind small traits), `attachment` (the sockets
//! and vmac held while the interface is usable), `sync` and `reload` (pure rules).
pub mod adverts;
pub mod attachment;
pub mod discard;
pub mod fsm;
pub mod host;
pub mod instance;
pub mod link;
pub mod notify;
pub mod readiness;
pub mod reload;
pub mod socket;
pub mod spec;
pub mod sync;
pub mod wire;
