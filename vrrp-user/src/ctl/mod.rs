//! The control socket: `keepxdp status` (or any client) connects and reads one JSON status
//! document.
mod socket;
mod table;

pub use socket::{ControlSocket, ensure_not_served, read_status};
pub use table::status_table;
