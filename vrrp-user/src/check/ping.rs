//! PING_CHECK: one ICMP (ICMPv6) echo request to the real server; up when the echo reply
//! comes back within `connect_timeout`, down on silence or an ICMP error (as keepalived
//! 2.2.7, which sends one echo per check and needs no port).
//!
//! keepalived uses a datagram ICMP socket (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`),
//! which the kernel only allows to groups in `net.ipv4.ping_group_range` (keepalived
//! widens that sysctl to include gid 0 at startup). keepxdp does not touch the sysctl:
//! when the datagram socket is refused it falls back to a raw ICMP socket, which root
//! (CAP_NET_RAW) may always open; with a raw socket it matches replies by identifier
//! and sequence itself. `bindto` (the address), `bind_if` and `fwmark` apply.
use std::{
    io::Read,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicU16, Ordering},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::{
    connection::{Connection, apply_options},
    outcome::Outcome,
    random::random_bytes,
};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const PAYLOAD: &[u8] = b"keepxdp PING_CHECK keepxdp PING_CHECK keepxdp PING_CHEC";

static SEQUENCE: AtomicU16 = AtomicU16::new(1);

/// Which ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpSocket {
    /// Datagram, falling back to raw when refused.
    Datagram,
    Raw,
}

pub async fn ping(connection: &Connection) -> Outcome {
    ping_with(connection, IcmpSocket::Datagram).await
}

pub async fn ping_with(connection: &Connection, kind: IcmpSocket) -> Outcome {
    let timeout = connection.connect_timeout;
    let target = connection.connect.ip();
    match tokio::time::timeout(timeout, echo(connection, kind)).await {
        Ok(Ok(())) => Outcome::Up,
        Ok(Err(reason)) => Outcome::down(format!("ping {target}: {reason}")),
        Err(_) => Outcome::down(format!("ping {target}: no echo reply within {timeout:?}")),
    }
}

async fn echo(connection: &Connection, kind: IcmpSocket) -> Result<(), String> {
    let target = connection.connect.ip();
    let (socket, raw) = open(target, kind)?;
    apply_options(&socket, connection)?;
    if let Some(bind) = connection.source() {
        let from = SocketAddr::new(bind.ip(), 0);
        socket
            .bind(&from.into())
            .map_err(|e| format!("bind to {}: {e}", bind.ip()))?;
    }
    socket
        .connect(&SocketAddr::new(target, 0).into())
        .map_err(|e| format!("connect: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    // SAFETY: the Socket owns its fd, which stays open and the same until it is dropped
    // with the AsyncFd.
    let socket = unsafe { AsyncFd::register(socket) }.map_err(|e| format!("socket: {e}"))?;

    // A datagram socket's identifier is its port, set by the kernel; a raw one's is ours.
    let random = random_bytes(2);
    let identifier = u16::from_be_bytes([random[0], random[1]]);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = echo_request(target.is_ipv4(), identifier, sequence);
    socket
        .get_ref()
        .send(&request)
        .map_err(|e| format!("send: {e}"))?;

    let mut buffer = [0u8; 2048];
    loop {
        let mut ready = socket
            .readable()
            .await
            .map_err(|e| format!("receive: {e}"))?;
        let length = match ready.try_io(|fd| {
            let mut socket: &Socket = fd.get_ref();
            socket.read(&mut buffer)
        }) {
            Ok(Ok(length)) => length,
            Ok(Err(e)) => return Err(format!("receive: {e}")),
            Err(_would_block) => continue,
        };
        let mut packet = &buffer[..length];
        if raw && target.is_ipv4() {
            // A raw IPv4 socket hands over the IP header too.
            let header = usize::from(packet.first().map_or(0, |b| b & 0xf)) * 4;
            packet = packet.get(header..).unwrap_or_default();
        }
        if is_our_reply(
            packet,
            target.is_ipv4(),
            raw.then_some(identifier),
            sequence,
        ) {
            return Ok(());
        }
    }
}

/// The socket and whether it is raw.
fn open(target: IpAddr, kind: IcmpSocket) -> Result<(Socket, bool), String> {
    let (domain, protocol) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    if kind == IcmpSocket::Datagram {
        match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => return Ok((socket, false)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {}
            Err(e) => return Err(format!("ICMP socket: {e}")),
        }
    }
    Socket::new(domain, Type::RAW, Some(protocol))
        .map(|socket| (socket, true))
        .map_err(|e| {
            format!(
                "ICMP socket: {e} (a datagram ICMP socket needs the group in \
                 net.ipv4.ping_group_range, a raw one CAP_NET_RAW)"
            )
        })
}

/// An echo request; the IPv4 checksum is ours to compute (a datagram socket recomputes it,
/// the kernel fills in ICMPv6's).
fn echo_request(ipv4: bool, identifier: u16, sequence: u16) -> Vec<u8> {
    let kind = if ipv4 {
        ECHO_REQUEST_V4
    } else {
        ECHO_REQUEST_V6
    };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    if ipv4 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// An echo reply to our request (the identifier only when the socket is raw: a datagram
/// socket's kernel matches it).
fn is_our_reply(packet: &[u8], ipv4: bool, identifier: Option<u16>, sequence: u16) -> bool {
    let reply = if ipv4 { ECHO_REPLY_V4 } else { ECHO_REPLY_V6 };
    if packet.len() < 8 || packet[0] != reply {
        return false;
    }
    let field = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    identifier.is_none_or(|id| field(4) == id) && field(6) == sequence
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    !crate::vrrp::wire::checksum::data(data)
}

#[cfg(test)]
mod tests {
    use std::{process::Command, time::Duration};

    use super::*;
    use crate::check::connection::tests::local;

    fn to(ip: IpAddr, timeout: Duration) -> Connection {
        Connection {
            connect: SocketAddr::new(ip, 0),
            connect_timeout: timeout,
            ..local(0)
        }
    }

    /// Runs `probe` on a thread in a fresh network namespace (gone when the thread ends)
    /// where `setup` ran. Needs root: without it the test fails.
    fn in_a_new_network_namespace(setup: &[&str], probe: Connection) -> Outcome {
        let setup: Vec<String> = setup.iter().map(|s| s.to_string()).collect();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) needs root");
            for command in ["link set lo up"]
                .iter()
                .copied()
                .chain(setup.iter().map(|s| s.as_str()))
            {
                let status = Command::new("ip")
                    .args(command.split_whitespace())
                    .status()
                    .expect("ip");
                assert!(status.success(), "ip {command}");
            }
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(ping(&probe))
        })
        .join()
        .unwrap()
    }

    #[test]
    fn the_echo_request_checksum_is_the_internet_checksum() {
        let request = echo_request(true, 0x1234, 7);
        assert_eq!(&request[..2], [ECHO_REQUEST_V4, 0]);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to zero"
        );
        assert!(is_our_reply(
            &[0, 0, 0, 0, 0x12, 0x34, 0, 7],
            true,
            Some(0x1234),
            7
        ));
        assert!(!is_our_reply(
            &[0, 0, 0, 0, 0x12, 0x35, 0, 7],
            true,
            Some(0x1234),
            7
        ));
        assert!(
            !is_our_reply(&[8, 0, 0, 0, 0x12, 0x34, 0, 7], true, None, 7),
            "our own request"
        );
    }

    #[tokio::test]
    async fn ping_to_127_0_0_1_is_up() {
        let outcome = ping(&to([127, 0, 0, 1].into(), Duration::from_secs(2))).await;
        assert_eq!(outcome, Outcome::Up);
    }

    #[tokio::test]
    async fn ping_to_ipv6_loopback_is_up() {
        let outcome = ping(&to("::1".parse().unwrap(), Duration::from_secs(2))).await;
        assert_eq!(outcome, Outcome::Up);
    }

    #[tokio::test]
    async fn ping_over_a_raw_socket_is_up_too() {
        let v4 = ping_with(
            &to([127, 0, 0, 1].into(), Duration::from_secs(2)),
            IcmpSocket::Raw,
        )
        .await;
        assert_eq!(v4, Outcome::Up);
        let v6 = ping_with(
            &to("::1".parse().unwrap(), Duration::from_secs(2)),
            IcmpSocket::Raw,
        )
        .await;
        assert_eq!(v6, Outcome::Up);
    }

    #[test]
    fn ping_to_an_address_nobody_answers_is_down_after_connect_timeout() {
        // 10.99.0.2 is on an ifb device, which drops what it is given: no reply, no error.
        let started = std::time::Instant::now();
        let outcome = in_a_new_network_namespace(
            &[
                "link add nowhere type ifb",
                "addr add 10.99.0.1/24 dev nowhere",
                "link set nowhere up",
            ],
            to([10, 99, 0, 2].into(), Duration::from_millis(300)),
        );
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("no echo reply")),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn ping_without_a_route_is_down_at_once() {
        let outcome =
            in_a_new_network_namespace(&[], to([10, 99, 0, 2].into(), Duration::from_secs(30)));
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("unreachable")),
            "{outcome:?}"
        );
    }

    #[test]
    fn ping_from_bindto_and_bind_if_in_a_namespace() {
        let probe = Connection {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            bind_if: Some("lo".into()),
            fwmark: Some(7),
            ..to([127, 0, 0, 1].into(), Duration::from_secs(2))
        };
        assert_eq!(in_a_new_network_namespace(&[], probe), Outcome::Up);
    }
}
