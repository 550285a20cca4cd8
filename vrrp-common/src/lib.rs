//! Types shared by keepxdp's XDP programs (kernel side) and its controller (user side).
//!
//! Everything here is `#[repr(C)]` plain data: the XDP programs and the controller read the
//! same bytes from the same maps. With the `user` feature the types also implement `aya::Pod`.
#![no_std]

pub mod guard;
pub mod lvs;
pub mod pins;

#[cfg(feature = "user")]
mod pod;
