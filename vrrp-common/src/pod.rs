//! `aya::Pod` for the map types: they are `#[repr(C)]`, padding is explicit, and every bit
//! pattern is a valid value (the reason byte is decoded with `GuardReason::from_u8`).
use crate::guard::{GuardStatKey, PeerKey, VridConfig, VridKey};

unsafe impl aya::Pod for VridKey {}
unsafe impl aya::Pod for VridConfig {}
unsafe impl aya::Pod for PeerKey {}
unsafe impl aya::Pod for GuardStatKey {}
