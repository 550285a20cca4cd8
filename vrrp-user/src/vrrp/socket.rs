//! The VRRP sockets of one interface (IPv4): a raw IPPROTO_VRRP socket bound to the device,
//! joined to the VRRP group, sending with TTL 255 (RFC 9568 §5.1.1.3). The kernel writes the
//! IP header on send and delivers it on receive (so the TTL can be checked).
use std::{
    io,
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::AsRawFd,
};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

pub const IPPROTO_VRRP: i32 = 112;
/// RFC 9568 §5.1.1.2: 224.0.0.18.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

pub struct VrrpSocketV4 {
    /// Receives: bound to the device only (a raw socket bound to an address would see
    /// nothing sent to the group).
    socket: AsyncFd<Socket>,
    /// Sends: bound to the source address, so unicast adverts leave from it too.
    sender: AsyncFd<Socket>,
}

fn raw_vrrp_socket(interface: &str) -> Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
        .context("opening a raw VRRP socket (needs CAP_NET_RAW)")?;
    socket
        .bind_device(Some(interface.as_bytes()))
        .with_context(|| format!("binding the VRRP socket to {interface}"))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: the socket is owned by the AsyncFd and stays open for its whole life.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

impl VrrpSocketV4 {
    /// `source`: the address adverts are sent from (unicast_src_ip, mcast_src_ip or the
    /// interface's primary address).
    pub fn open(
        interface: &str,
        ifindex: u32,
        source: Ipv4Addr,
        group: Ipv4Addr,
        send_interface: &str,
        send_index: u32,
    ) -> Result<VrrpSocketV4> {
        let receiver = raw_vrrp_socket(interface)?;
        receiver
            .join_multicast_v4_n(&group, &socket2::InterfaceIndexOrAddress::Index(ifindex))
            .with_context(|| format!("joining {group} on {interface}"))?;
        let sender = raw_vrrp_socket(send_interface)?;
        sender.set_ttl_v4(255)?;
        sender.set_multicast_ttl_v4(255)?;
        sender.set_multicast_loop_v4(false)?;
        // By index: a socket bound to a vmac may not name the base interface's address.
        let request = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: send_index as i32,
        };
        // SAFETY: a valid socket and a properly sized ip_mreqn.
        let result = unsafe {
            libc::setsockopt(
                sender.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                (&request as *const libc::ip_mreqn).cast(),
                size_of::<libc::ip_mreqn>() as u32,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("sending multicast on {send_interface}"));
        }
        sender
            .bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())
            .with_context(|| format!("binding the VRRP socket to {source}"))?;
        // It also receives what is sent to `source`; nobody reads that copy: keep it small.
        sender.set_recv_buffer_size(0)?;
        Ok(VrrpSocketV4 { socket: register(receiver)?, sender: register(sender)? })
    }

    /// One datagram, IP header included.
    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.socket.readable().await?;
            let result = guard.try_io(|inner| {
                // SAFETY: MaybeUninit<u8> has the layout of u8; recv only writes.
                let uninit = unsafe { &mut *(buffer as *mut [u8] as *mut [MaybeUninit<u8>]) };
                inner.get_ref().recv(uninit)
            });
            match result {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends a VRRP message (the kernel adds the IP header) to `destination`.
    pub async fn send(&self, message: &[u8], destination: Ipv4Addr) -> io::Result<()> {
        let address = SocketAddr::V4(SocketAddrV4::new(destination, 0)).into();
        loop {
            let mut guard = self.sender.writable().await?;
            match guard.try_io(|inner| inner.get_ref().send_to(message, &address)) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.socket.get_ref().as_raw_fd()
    }
}

/// A packet socket (bound to no interface), for gratuitous ARP frames.
pub struct FrameSocket {
    socket: Socket,
}

impl FrameSocket {
    pub fn open() -> Result<FrameSocket> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).context("opening a packet socket")?;
        Ok(FrameSocket { socket })
    }

    /// Sends a whole Ethernet frame (its first 6 bytes are the destination) out of `ifindex`.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex as i32;
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&frame[..6]);
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }
}

/// The interface's MAC address, asked of the kernel (not /sys, which `nsenter --net` leaves
/// showing another namespace).
pub fn mac_address(interface: &str) -> Result<[u8; 6]> {
    let text = mac_via_ioctl(interface).with_context(|| format!("reading the MAC address of {interface}"))?;
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *slot = u8::from_str_radix(part, 16).with_context(|| format!("bad MAC {text}"))?;
    }
    Ok(mac)
}

/// SIOCGIFHWADDR on the current network namespace.
fn mac_via_ioctl(interface: &str) -> io::Result<String> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(interface.bytes()) {
        *slot = byte as libc::c_char;
    }
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR, &mut request) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let data = unsafe { request.ifr_ifru.ifru_hwaddr.sa_data };
    Ok(data[..6].iter().map(|b| format!("{:02x}", *b as u8)).collect::<Vec<_>>().join(":"))
}

/// RFC 9568 §5.1.2.2: ff02::12.
pub const VRRP_GROUP_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The IPv6 VRRP sockets of one interface. Raw IPv6 sockets deliver no IP header, so the
/// destination and hop limit come as control messages (IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT).
pub struct VrrpSocketV6 {
    socket: AsyncFd<Socket>,
    sender: AsyncFd<Socket>,
    ifindex: u32,
}

/// One received IPv6 VRRP message and what the IPv6 header said.
pub struct ReceivedV6 {
    pub length: usize,
    pub source: std::net::Ipv6Addr,
    pub destination: std::net::Ipv6Addr,
    pub hop_limit: u8,
}

impl VrrpSocketV6 {
    pub fn open(
        interface: &str,
        ifindex: u32,
        source: std::net::Ipv6Addr,
        group: std::net::Ipv6Addr,
        send_interface: &str,
        send_index: u32,
    ) -> Result<VrrpSocketV6> {
        use nix::sys::socket::{setsockopt, sockopt};
        let new = |interface: &str| -> Result<Socket> {
            let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
                .context("opening a raw IPv6 VRRP socket (needs CAP_NET_RAW)")?;
            socket.bind_device(Some(interface.as_bytes())).with_context(|| format!("binding to {interface}"))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        };
        let receiver = new(interface)?;
        receiver.join_multicast_v6(&group, ifindex).with_context(|| format!("joining {group} on {interface}"))?;
        setsockopt(&receiver, sockopt::Ipv6RecvPacketInfo, &true)?;
        setsockopt(&receiver, sockopt::Ipv6RecvHopLimit, &true)?;
        let sender = new(send_interface)?;
        sender.set_multicast_hops_v6(255)?;
        sender.set_unicast_hops_v6(255)?;
        sender.set_multicast_if_v6(send_index)?;
        sender.set_multicast_loop_v6(false)?;
        sender
            .bind(&SocketAddr::V6(std::net::SocketAddrV6::new(source, 0, 0, ifindex)).into())
            .with_context(|| format!("binding the VRRP socket to {source}"))?;
        sender.set_recv_buffer_size(0)?;
        Ok(VrrpSocketV6 { socket: register(receiver)?, sender: register(sender)?, ifindex: send_index })
    }

    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<ReceivedV6> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
        loop {
            let mut guard = self.socket.readable().await?;
            let result = guard.try_io(|inner| {
                let mut iov = [io::IoSliceMut::new(buffer)];
                let mut space = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
                let message = recvmsg::<SockaddrIn6>(inner.get_ref().as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty())
                    .map_err(io::Error::from)?;
                let mut received = ReceivedV6 {
                    length: message.bytes,
                    source: message.address.map(|a| a.ip()).unwrap_or(std::net::Ipv6Addr::UNSPECIFIED),
                    destination: std::net::Ipv6Addr::UNSPECIFIED,
                    hop_limit: 0,
                };
                for control in message.cmsgs().map_err(io::Error::from)? {
                    match control {
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            received.destination = std::net::Ipv6Addr::from(info.ipi6_addr.s6_addr)
                        }
                        ControlMessageOwned::Ipv6HopLimit(limit) => received.hop_limit = limit as u8,
                        _ => {}
                    }
                }
                Ok(received)
            });
            match result {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn send(&self, message: &[u8], destination: std::net::Ipv6Addr) -> io::Result<()> {
        let address = SocketAddr::V6(std::net::SocketAddrV6::new(destination, 0, 0, self.ifindex)).into();
        loop {
            let mut guard = self.sender.writable().await?;
            match guard.try_io(|inner| inner.get_ref().send_to(message, &address)) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Sends an unsolicited Neighbour Advertisement (from the virtual address, hop limit 255, to
/// all nodes) so neighbours update their caches, as gratuitous ARP does for IPv4.
pub fn send_unsolicited_na(interface: &str, ifindex: u32, address: std::net::Ipv6Addr, message: &[u8]) -> Result<()> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).context("opening an ICMPv6 socket")?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.bind(&SocketAddr::V6(std::net::SocketAddrV6::new(address, 0, 0, ifindex)).into())?;
    let all_nodes = std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    socket.send_to(message, &SocketAddr::V6(std::net::SocketAddrV6::new(all_nodes, 0, 0, ifindex)).into())?;
    Ok(())
}
