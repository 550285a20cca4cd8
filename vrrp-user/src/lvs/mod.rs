//! The LVS side of keepxdp: how virtual services reach the kernel's data planes.
pub mod ipvs;
