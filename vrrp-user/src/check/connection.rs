//! Where a checker connects from and to (`Connection`: `connect_ip`/`connect_port`,
//! `bindto`/`bind_port`, `bind_if`, `fwmark`, `connect_timeout`, resolved by `probe`) and the
//! sockets opened from it: TCP (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK), UDP (UDP_CHECK,
//! DNS_CHECK, with IP_RECVERR so ICMP errors fail the next recv) and the options every
//! socket takes (PING_CHECK's ICMP socket too). A leaf: the protocol modules use it, it uses
//! none of them (only `source`, which picks the address a checker without `bindto` binds).
use std::{io, net::SocketAddr, os::fd::AsRawFd, time::Duration};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::source;

/// Where a checker connects from and to.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub connect: SocketAddr,
    /// `bindto` / `bind_port`.
    pub bind: Option<SocketAddr>,
    /// `bind_if`.
    pub bind_if: Option<String>,
    /// SO_MARK.
    pub fwmark: Option<u32>,
    pub connect_timeout: Duration,
}

impl Connection {
    /// What the checker's socket binds to: `bindto`/`bind_port` as written; with no `bindto`
    /// (the unspecified address), the kernel's source unless that is one of this node's VIPs
    /// (`source::source_for`).
    pub fn source(&self) -> Option<SocketAddr> {
        let written = self.bind.filter(|b| !b.ip().is_unspecified());
        if written.is_some() {
            return written;
        }
        let port = self.bind.map_or(0, |b| b.port());
        match source::source_for(self.connect, |socket| apply_options(socket, self)) {
            Some(ip) => Some(SocketAddr::new(ip, port)),
            None => self.bind,
        }
    }
}

/// A TCP connection (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK): from `bind`, with SO_MARK
/// and SO_BINDTODEVICE, within `connect_timeout`.
pub async fn connect(connection: &Connection) -> Result<TcpStream, String> {
    let socket = if connection.connect.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let socket = socket.map_err(|e| format!("socket: {e}"))?;
    if let Some(mark) = connection.fwmark {
        SockRef::from(&socket)
            .set_mark(mark)
            .map_err(|e| format!("SO_MARK {mark}: {e}"))?;
    }
    if let Some(interface) = &connection.bind_if {
        SockRef::from(&socket)
            .bind_device(Some(interface.as_bytes()))
            .map_err(|e| format!("bind to device {interface}: {e}"))?;
    }
    if let Some(bind) = connection.source() {
        socket
            .bind(bind)
            .map_err(|e| format!("bind to {bind}: {e}"))?;
    }
    match tokio::time::timeout(
        connection.connect_timeout,
        socket.connect(connection.connect),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect to {}: {e}", connection.connect)),
        Err(_) => Err(format!(
            "connect to {}: timed out after {:?}",
            connection.connect, connection.connect_timeout
        )),
    }
}

/// A UDP socket connected to `connection.connect`: bound to `bindto`/`bind_port`, with
/// SO_MARK and SO_BINDTODEVICE, and IP_RECVERR so ICMP errors (port or host unreachable)
/// fail the next recv.
pub fn udp_socket(connection: &Connection) -> Result<UdpSocket, String> {
    let target = connection.connect;
    let socket = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(|e| format!("socket: {e}"))?;
    apply_options(&socket, connection)?;
    let (level, option) = match target {
        SocketAddr::V4(_) => (libc::SOL_IP, libc::IP_RECVERR),
        SocketAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_RECVERR),
    };
    set_int_option(&socket, level, option, 1).map_err(|e| format!("IP_RECVERR: {e}"))?;
    if let Some(bind) = connection.source() {
        socket
            .bind(&bind.into())
            .map_err(|e| format!("bind to {bind}: {e}"))?;
    }
    socket
        .connect(&target.into())
        .map_err(|e| format!("connect to {target}: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    UdpSocket::from_std(socket.into()).map_err(|e| format!("socket: {e}"))
}

/// SO_MARK (`fwmark`) and SO_BINDTODEVICE (`bind_if`).
pub(crate) fn apply_options(socket: &Socket, connection: &Connection) -> Result<(), String> {
    if let Some(mark) = connection.fwmark {
        socket
            .set_mark(mark)
            .map_err(|e| format!("SO_MARK {mark}: {e}"))?;
    }
    if let Some(interface) = &connection.bind_if {
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(|e| format!("bind to device {interface}: {e}"))?;
    }
    Ok(())
}

fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd and a c_int option value of the right size.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn local(port: u16) -> Connection {
        Connection {
            connect: SocketAddr::from(([127, 0, 0, 1], port)),
            bind: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn tcp_check_binds_to_bindto_and_bind_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bind_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let connection = Connection {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], bind_port))),
            ..local(port)
        };
        let stream = connect(&connection).await.unwrap();
        assert_eq!(stream.local_addr().unwrap().port(), bind_port);
    }
}
