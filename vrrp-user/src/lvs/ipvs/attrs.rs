//! The numbers of the kernel's IPVS generic-netlink interface, as
//! `include/uapi/linux/ip_vs.h` defines them (checked against the header text; every enum
//! there starts at 0 with an UNSPEC entry, so the first real member is 1).
//!
//! They are written out rather than taken from a crate because no maintained Rust crate
//! carries them, and a wrong number here is silent: the kernel ignores or misreads it.

/// `IPVS_GENL_NAME`: the generic-netlink family name the kernel registers when `ip_vs` loads.
pub const GENL_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const GENL_VERSION: u8 = 1;

/// `AF_INET` / `AF_INET6` as IPVS carries them in `IPVS_SVC_ATTR_AF` and
/// `IPVS_DEST_ATTR_ADDR_FAMILY` (Linux values; IPVS is Linux-only).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Generic-netlink commands (`enum { IPVS_CMD_UNSPEC = 0, ... }` in ip_vs.h).
pub mod cmd {
    /// `IPVS_CMD_NEW_SERVICE`: add a service.
    pub const NEW_SERVICE: u8 = 1;
    /// `IPVS_CMD_SET_SERVICE`: modify a service.
    pub const SET_SERVICE: u8 = 2;
    /// `IPVS_CMD_DEL_SERVICE`: delete a service.
    pub const DEL_SERVICE: u8 = 3;
    /// `IPVS_CMD_GET_SERVICE`: get one service, or all with NLM_F_DUMP.
    pub const GET_SERVICE: u8 = 4;
    /// `IPVS_CMD_NEW_DEST`: add a destination (real server).
    pub const NEW_DEST: u8 = 5;
    /// `IPVS_CMD_SET_DEST`: modify a destination.
    pub const SET_DEST: u8 = 6;
    /// `IPVS_CMD_DEL_DEST`: delete a destination.
    pub const DEL_DEST: u8 = 7;
    /// `IPVS_CMD_GET_DEST`: dump a service's destinations.
    pub const GET_DEST: u8 = 8;
    /// `IPVS_CMD_FLUSH`: delete every service and destination (after NEW/DEL_DAEMON 9, 10,
    /// GET_DAEMON 11, SET/GET_CONFIG 12, 13, SET/GET_INFO 14, 15, ZERO 16).
    pub const FLUSH: u8 = 17;
}

/// First-level attributes of a command (`IPVS_CMD_ATTR_*`).
pub mod cmd_attr {
    /// `IPVS_CMD_ATTR_SERVICE`: nested `IPVS_SVC_ATTR_*`.
    pub const SERVICE: u16 = 1;
    /// `IPVS_CMD_ATTR_DEST`: nested `IPVS_DEST_ATTR_*`.
    pub const DEST: u16 = 2;
}

/// Attributes inside `IPVS_CMD_ATTR_SERVICE` (`IPVS_SVC_ATTR_*`).
pub mod svc {
    /// u16, native order: AF_INET or AF_INET6.
    pub const AF: u16 = 1;
    /// u16, native order: IPPROTO_TCP/UDP/SCTP.
    pub const PROTOCOL: u16 = 2;
    /// 16 bytes, `union nf_inet_addr` (an IPv4 address fills the first 4).
    pub const ADDR: u16 = 3;
    /// `__be16`.
    pub const PORT: u16 = 4;
    /// u32, native order; a service has either FWMARK or PROTOCOL+ADDR+PORT.
    pub const FWMARK: u16 = 5;
    /// NUL-terminated string, at most `IP_VS_SCHEDNAME_MAXLEN` bytes with the NUL.
    pub const SCHED_NAME: u16 = 6;
    /// `struct ip_vs_flags { __u32 flags; __u32 mask; }`, native order.
    pub const FLAGS: u16 = 7;
    /// u32 seconds: the persistence timeout.
    pub const TIMEOUT: u16 = 8;
    /// `__be32`: an IPv4 mask in network order, or for IPv6 a prefix length that the kernel
    /// compares as a plain integer (so it travels in native order, as ipvsadm sends it).
    pub const NETMASK: u16 = 9;
    /// Nested `IPVS_STATS_ATTR_*` (32-bit counters); only in replies.
    pub const STATS: u16 = 10;
    /// NUL-terminated string: the persistence engine (`sip`).
    pub const PE_NAME: u16 = 11;
    /// Nested `IPVS_STATS_ATTR_*` (64-bit counters); only in replies.
    pub const STATS64: u16 = 12;
}

/// Attributes inside `IPVS_CMD_ATTR_DEST` (`IPVS_DEST_ATTR_*`).
pub mod dest {
    /// 16 bytes, `union nf_inet_addr`.
    pub const ADDR: u16 = 1;
    /// `__be16`.
    pub const PORT: u16 = 2;
    /// u32: `IP_VS_CONN_F_*` forwarding method (the kernel masks it with FWD_MASK).
    pub const FWD_METHOD: u16 = 3;
    /// u32 (an `int` in the kernel: 0..=i32::MAX).
    pub const WEIGHT: u16 = 4;
    /// u32: upper connection threshold (0: none).
    pub const U_THRESH: u16 = 5;
    /// u32: lower connection threshold.
    pub const L_THRESH: u16 = 6;
    /// u32 counters; only in replies.
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    /// Nested stats; only in replies.
    pub const STATS: u16 = 10;
    /// u16: the destination's own family (may differ from the service's only for tunnels).
    pub const ADDR_FAMILY: u16 = 11;
    /// Nested 64-bit stats; only in replies.
    pub const STATS64: u16 = 12;
    /// u8: `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    pub const TUN_TYPE: u16 = 13;
    /// `__be16`: the GUE destination port.
    pub const TUN_PORT: u16 = 14;
    /// u16: `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    pub const TUN_FLAGS: u16 = 15;
}

/// Virtual service flags (`IP_VS_SVC_F_*`).
pub mod svc_flags {
    /// Persistent port: connections from one client stick to one real server.
    pub const PERSISTENT: u32 = 0x0001;
    /// Set by the kernel on every service it has hashed; never sent (see encode.rs).
    pub const HASHED: u32 = 0x0002;
    /// One-packet scheduling (keepalived's `ops`).
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flags; `sh` reads SCHED1 as fallback and SCHED2 as port (as does `mh`).
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
}

/// Forwarding methods (`IP_VS_CONN_F_*`, within `IP_VS_CONN_F_FWD_MASK` = 0x7).
pub mod fwd {
    pub const MASQ: u32 = 0x0000;
    pub const LOCALNODE: u32 = 0x0001;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    pub const BYPASS: u32 = 0x0004;
    pub const MASK: u32 = 0x0007;
}

/// Tunnel types (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
pub mod tun_type {
    pub const IPIP: u8 = 0;
    pub const GUE: u8 = 1;
    pub const GRE: u8 = 2;
}

/// Tunnel encapsulation flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`; NOCSUM is 0).
pub mod tun_flags {
    pub const CSUM: u16 = 1 << 0;
    pub const REMCSUM: u16 = 1 << 1;
}

/// `IP_VS_SCHEDNAME_MAXLEN` and `IP_VS_PENAME_MAXLEN`: buffer sizes including the NUL.
pub const SCHEDNAME_MAXLEN: usize = 16;
pub const PENAME_MAXLEN: usize = 16;

/// `NLA_F_NESTED`: the kernel sets it on nests it sends; we set it on ours too.
pub const NLA_F_NESTED: u16 = 0x8000;
