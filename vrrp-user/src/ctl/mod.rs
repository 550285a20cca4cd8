//! The control socket: `keepxdp status` (or any client) connects, asks `status` (or nothing)
//! and reads one JSON status document. Root-only (mode 0600); every client is bounded in
//! time and size (`request.rs` the protocol, `socket.rs` the serving).
mod request;
mod socket;
mod table;

pub use socket::{ControlSocket, ensure_not_served, read_status};
pub use table::status_table;
