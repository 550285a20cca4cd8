//! The control socket: `keepxdp status` (or any client) connects, sends one request line
//! (none: status) and reads one JSON document back; `keepxdp lvs drain` asks through it.
pub mod request;
mod socket;
mod table;

pub use request::{ControlReply, ControlRequest};
pub use socket::{ControlCommand, ControlSocket, ensure_not_served, read_status, request};
pub use table::status_table;
