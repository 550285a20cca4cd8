//! keepxdp: an XDP-accelerated VRRP and LVS data plane that reads keepalived.conf.
//!
//! - `config`: reading keepalived.conf (file:line:col diagnostics)
//! - `bpf`: the XDP programs and their maps (the only place that touches BPF)
//! - `ctl`: the control socket
//! - `vrrp`: the VRRP protocol: wire format and the election state machine
//! - `daemon`: `keepxdp run`, wiring the above together
pub mod alert;
pub mod bpf;
pub mod check;
pub mod config;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod ctl;
pub mod daemon;
pub mod lvs;
pub mod metrics;
pub mod net;
pub mod observe;
pub mod ops;
pub mod top;
pub mod track;
pub mod vrrp;
