//! The control socket: `keepxdp status` (or any client) connects and reads one JSON status
//! document.
mod socket;

pub use socket::{ControlSocket, read_status};
