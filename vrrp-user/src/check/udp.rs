//! UDP_CHECK: send a datagram to the real server and judge what comes back within
//! `connect_timeout`, as keepalived 2.2.7 does:
//!
//! - the payload is `payload` (hex), else 32 random bytes;
//! - without `require_reply` the check is up unless the server answers with an ICMP
//!   "destination unreachable" (port closed, host unreachable): a reply and silence are
//!   both up;
//! - with `require_reply` silence is down; the first datagram decides. With a
//!   `require_reply` pattern its length must be within `min_reply_length ..=
//!   max_reply_length` and its first bytes must match the pattern (`x` nibbles match
//!   anything; only as many bytes as both have are compared, as keepalived does). Without a
//!   pattern any reply is up (keepalived only checks the lengths alongside a pattern).
//!
//! The socket (bound, marked, connected, with IP_RECVERR) is `connection::udp_socket`.
use super::{
    connection::{Connection, udp_socket},
    outcome::Outcome,
    random::random_bytes,
};

/// keepalived sends this many random bytes when `payload` is not given.
const RANDOM_PAYLOAD_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct UdpProbe {
    /// None: random bytes each time.
    pub payload: Option<Vec<u8>>,
    pub require_reply: bool,
    /// `require_reply HEX`.
    pub reply: Option<ReplyPattern>,
    pub min_reply_length: u16,
    pub max_reply_length: u16,
}

/// Bytes a reply must start with; a set bit in `wildcard` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPattern {
    pub data: Vec<u8>,
    pub wildcard: Vec<u8>,
}

impl ReplyPattern {
    pub fn parse(text: &str) -> Result<ReplyPattern, String> {
        let (data, wildcard) = parse_hex(text, true)?;
        Ok(ReplyPattern { data, wildcard })
    }

    /// keepalived compares the first min(reply, pattern) bytes: a reply shorter than the
    /// pattern matches when its bytes do.
    pub fn matches(&self, reply: &[u8]) -> bool {
        reply
            .iter()
            .zip(self.data.iter().zip(&self.wildcard))
            .all(|(got, (want, any))| (got ^ want) & !any == 0)
    }
}

/// keepalived's hex strings: spaces and tabs separate octets; two digits make an octet and
/// a lone digit before a space (or the end) is an octet of its own (`1` is 0x01). With
/// `wildcards`, `x`/`X` is a nibble that matches anything. Returns (data, wildcard mask).
pub fn parse_hex(text: &str, wildcards: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    let nibble = |c: u8| -> Result<(u8, u8), String> {
        match c {
            b'x' | b'X' if wildcards => Ok((0, 0xf)),
            _ => (c as char)
                .to_digit(16)
                .map(|d| (d as u8, 0))
                .ok_or_else(|| format!("`{text}` is not a hex string")),
        }
    };
    let (mut data, mut mask) = (Vec::new(), Vec::new());
    for word in text.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let bytes = word.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let (mut value, mut any) = nibble(bytes[i])?;
            if let Some(&low) = bytes.get(i + 1) {
                let (low, low_any) = nibble(low)?;
                value = value << 4 | low;
                any = any << 4 | low_any;
            }
            data.push(value);
            mask.push(any);
            i += 2;
        }
    }
    if data.is_empty() {
        return Err(format!("`{text}` is not a hex string"));
    }
    Ok((data, mask))
}

impl UdpProbe {
    pub async fn run(&self, connection: &Connection) -> Outcome {
        let timeout = connection.connect_timeout;
        let socket = match udp_socket(connection) {
            Ok(socket) => socket,
            Err(reason) => return Outcome::down(reason),
        };
        let payload = match &self.payload {
            Some(payload) => payload.clone(),
            None => random_bytes(RANDOM_PAYLOAD_BYTES),
        };
        if let Err(e) = socket.send(&payload).await {
            return Outcome::down(format!("send to {}: {e}", connection.connect));
        }
        let mut reply = vec![0u8; usize::from(self.max_reply_length) + 1];
        match tokio::time::timeout(timeout, socket.recv(&mut reply)).await {
            Err(_) if self.require_reply => Outcome::down(format!(
                "no reply from {} within {timeout:?}",
                connection.connect
            )),
            // Silence: nothing said the port is closed.
            Err(_) => Outcome::Up,
            Ok(Err(e)) => Outcome::down(format!("{}: {e}", connection.connect)),
            Ok(Ok(_)) if !self.require_reply => Outcome::Up,
            Ok(Ok(length)) => self.judge(&reply[..length]),
        }
    }

    fn judge(&self, reply: &[u8]) -> Outcome {
        let Some(pattern) = &self.reply else {
            return Outcome::Up;
        };
        let (min, max) = (self.min_reply_length, self.max_reply_length);
        if !(usize::from(min)..=usize::from(max)).contains(&reply.len()) {
            return Outcome::down(format!(
                "reply of {} bytes{}, expected {min} to {max}",
                reply.len(),
                if reply.len() > usize::from(max) {
                    " or more"
                } else {
                    ""
                }
            ));
        }
        if !pattern.matches(reply) {
            return Outcome::down("reply does not match require_reply");
        }
        Outcome::Up
    }
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::Duration};

    use tokio::net::UdpSocket;

    use super::*;
    use crate::check::connection::tests::local;

    fn probe(require_reply: Option<&str>) -> UdpProbe {
        UdpProbe {
            payload: Some(parse_hex("68 65 6c 6c 6f", false).unwrap().0),
            require_reply: require_reply.is_some(),
            reply: require_reply
                .filter(|p| !p.is_empty())
                .map(|p| ReplyPattern::parse(p).unwrap()),
            min_reply_length: 0,
            max_reply_length: 255,
        }
    }

    /// A UDP server on 127.0.0.1 that answers each datagram with `answer(datagram)`, if
    /// Some.
    async fn server(answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        port
    }

    fn closed_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn quick(port: u16) -> Connection {
        Connection {
            connect_timeout: Duration::from_millis(300),
            ..local(port)
        }
    }

    #[test]
    fn hex_strings_are_read_like_keepalived() {
        assert_eq!(parse_hex("0a bC 1", false).unwrap().0, [0x0a, 0xbc, 0x01]);
        assert_eq!(parse_hex("0abc1", false).unwrap().0, [0x0a, 0xbc, 0x01]);
        assert_eq!(
            parse_hex("0A xX 3x", true).unwrap(),
            (vec![0x0a, 0x00, 0x30], vec![0x00, 0xff, 0x0f])
        );
        assert!(
            parse_hex("0x", false).is_err(),
            "x is a wildcard only in reply patterns"
        );
        assert!(parse_hex("  ", false).is_err());
    }

    #[test]
    fn x_nibbles_match_anything_and_only_the_common_prefix_is_compared() {
        let pattern = ReplyPattern::parse("de xd 0x").unwrap();
        assert!(pattern.matches(&[0xde, 0xad, 0x07, 0x99]));
        assert!(
            pattern.matches(&[0xde, 0x1d]),
            "a shorter reply is compared as far as it goes"
        );
        assert!(!pattern.matches(&[0xde, 0xae]));
        assert!(!pattern.matches(&[0xde, 0xad, 0x17]));
    }

    #[tokio::test]
    async fn without_require_reply_an_answering_server_is_up() {
        let port = server(|datagram| Some(datagram.to_vec())).await;
        assert_eq!(probe(None).run(&quick(port)).await, Outcome::Up);
    }

    #[tokio::test]
    async fn without_require_reply_a_silent_server_is_up() {
        let port = server(|_| None).await;
        assert_eq!(probe(None).run(&quick(port)).await, Outcome::Up);
    }

    #[tokio::test]
    async fn a_closed_port_is_down_through_icmp_port_unreachable() {
        let outcome = probe(None).run(&quick(closed_port())).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("refused")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn with_require_reply_a_silent_server_is_down() {
        let port = server(|_| None).await;
        let outcome = probe(Some("")).run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("no reply")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn with_require_reply_an_echo_server_is_up_when_the_reply_matches() {
        let port = server(|datagram| Some(datagram.to_vec())).await;
        assert_eq!(probe(Some("")).run(&quick(port)).await, Outcome::Up);
        assert_eq!(probe(Some("68 65 6c")).run(&quick(port)).await, Outcome::Up);
        assert_eq!(
            probe(Some("68 x5 xx 6x 6f")).run(&quick(port)).await,
            Outcome::Up
        );
    }

    #[tokio::test]
    async fn a_reply_that_does_not_match_reply_data_is_down() {
        let port = server(|_| Some(b"world".to_vec())).await;
        let outcome = probe(Some("68 65")).run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("does not match")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_reply_outside_min_and_max_reply_length_is_down() {
        let port = server(|datagram| Some(datagram.to_vec())).await;
        let too_short = UdpProbe {
            min_reply_length: 6,
            ..probe(Some("68"))
        };
        assert!(!too_short.run(&quick(port)).await.is_up());
        let too_long = UdpProbe {
            max_reply_length: 4,
            ..probe(Some("68"))
        };
        let outcome = too_long.run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("5 bytes or more")),
            "{outcome:?}"
        );
        let within = UdpProbe {
            min_reply_length: 5,
            max_reply_length: 5,
            ..probe(Some("68"))
        };
        assert_eq!(within.run(&quick(port)).await, Outcome::Up);
    }

    #[tokio::test]
    async fn without_a_payload_random_bytes_are_sent() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = server(move |datagram| {
            let _ = tx.send(datagram.to_vec());
            Some(b"ok".to_vec())
        })
        .await;
        let probe = UdpProbe {
            payload: None,
            ..probe(Some(""))
        };
        assert_eq!(probe.run(&quick(port)).await, Outcome::Up);
        assert_eq!(probe.run(&quick(port)).await, Outcome::Up);
        let (first, second) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert_eq!(first.len(), RANDOM_PAYLOAD_BYTES);
        assert_ne!(first, second);
    }

    #[tokio::test]
    async fn the_probe_is_sent_from_bindto_and_bind_port() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let (_, from) = socket.recv_from(&mut buf).await.unwrap();
            let _ = tx.send(from);
        });
        let bind_port = closed_port();
        let connection = Connection {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], bind_port))),
            ..quick(port)
        };
        assert_eq!(probe(None).run(&connection).await, Outcome::Up);
        assert_eq!(rx.recv().await.unwrap().port(), bind_port);
    }
}
