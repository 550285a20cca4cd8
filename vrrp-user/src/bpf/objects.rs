//! The XDP objects, embedded at build time from `cargo xtask build-ebpf`'s output
//! (build.rs refuses to embed a missing or stale one).

/// The VRRP guard (entry program) and its maps.
pub static VRRP_EBPF: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("KEEPXDP_EBPF_DIR"), "/vrrp-ebpf"));

/// The balancer (tail-called from the guard) and the bare `xdp_pass` program.
pub static LVS_EBPF: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("KEEPXDP_EBPF_DIR"), "/lvs-ebpf"));
