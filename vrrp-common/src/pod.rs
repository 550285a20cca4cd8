//! `aya::Pod` for the map types: they are `#[repr(C)]`, padding is explicit, and every bit
//! pattern is a valid value (the reason byte is decoded with `GuardReason::from_u8`).
use crate::guard::{GuardStatKey, PeerKey, VridConfig, VridKey};

unsafe impl aya::Pod for VridKey {}
unsafe impl aya::Pod for VridConfig {}
unsafe impl aya::Pod for PeerKey {}
unsafe impl aya::Pod for GuardStatKey {}

use crate::lvs::{
    Backend, BackendStats, Flow, FlowKey, LvsConfig, NatReverse, RealServerKey, RealServerVip, Service, ServiceStats,
    SyncRecord,
};

unsafe impl aya::Pod for Service {}
unsafe impl aya::Pod for Backend {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for Flow {}
unsafe impl aya::Pod for NatReverse {}
unsafe impl aya::Pod for LvsConfig {}
unsafe impl aya::Pod for BackendStats {}
unsafe impl aya::Pod for ServiceStats {}
unsafe impl aya::Pod for RealServerKey {}
unsafe impl aya::Pod for RealServerVip {}
unsafe impl aya::Pod for SyncRecord {}
