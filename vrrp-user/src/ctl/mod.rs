//! The control socket: `keepxdp status` (or any client) connects, sends one request line
//! (`status`, or nothing; `drain`/`undrain` from `keepxdp lvs drain`) and reads one JSON
//! document back. Root-only (mode 0600); every client is bounded in time and size
//! (`request.rs` the protocol, `socket.rs` the serving).
pub mod request;
mod socket;
mod table;

pub use request::{ControlReply, ControlRequest};
pub use socket::{ControlCommand, ControlSocket, ensure_not_served, read_status, request};
pub use table::status_table;
