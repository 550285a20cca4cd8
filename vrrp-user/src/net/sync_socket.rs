//! The sync daemon's multicast socket (`lvs_sync_daemon`): one UDP socket per node, bound
//! to the group and port on the sync interface, both sending and receiving.
use std::{
    net::{IpAddr, SocketAddr},
    os::fd::AsRawFd,
};

use anyhow::{Context, Result};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

/// The interface's MTU (SIOCGIFMTU).
pub fn interface_mtu(name: &str) -> Option<u32> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).ok()?;
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return None;
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut request) };
    (rc == 0).then(|| unsafe { request.ifr_ifru.ifru_mtu } as u32)
}

/// The group socket: bound to the group and port on `interface`, joined there, multicast
/// loop off (a node never hears itself), TTL / hop limit as configured, a receive buffer
/// large enough for a dump's burst.
pub fn group_socket(interface: &str, ifindex: u32, group: SocketAddr, ttl: u8) -> Result<std::net::UdpSocket> {
    let domain = if group.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind_device(Some(interface.as_bytes())).with_context(|| format!("binding the sync socket to {interface}"))?;
    socket.bind(&group.into()).with_context(|| format!("binding the sync socket to {group}"))?;
    match group.ip() {
        IpAddr::V4(v4) => {
            socket.join_multicast_v4_n(&v4, &InterfaceIndexOrAddress::Index(ifindex)).with_context(|| format!("joining {v4} on {interface}"))?;
            socket.set_multicast_ttl_v4(ttl as u32)?;
            socket.set_multicast_loop_v4(false)?;
        }
        IpAddr::V6(v6) => {
            socket.join_multicast_v6(&v6, ifindex).with_context(|| format!("joining {v6} on {interface}"))?;
            socket.set_multicast_if_v6(ifindex)?;
            socket.set_multicast_hops_v6(ttl as u32)?;
            socket.set_multicast_loop_v6(false)?;
        }
    }
    // Root may exceed rmem_max (SO_RCVBUFFORCE); otherwise what the kernel allows.
    let size: libc::c_int = 8 << 20;
    let forced = unsafe {
        libc::setsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size as *const _ as *const libc::c_void, size_of::<libc::c_int>() as u32)
    };
    if forced != 0 {
        let _ = socket.set_recv_buffer_size(size as usize);
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

