//! DNS_CHECK: one query over UDP for `name` / `type` (keepalived's defaults: `.` and SOA,
//! recursion desired, class IN), judged as keepalived 2.2.7 does: within
//! `connect_timeout`, the first datagram that carries our ID and is a response (QR) decides;
//! it is up when its RCODE is NOERROR. keepalived looks at nothing else: an empty answer
//! section (ANCOUNT 0, NODATA) is up too. Datagrams shorter than a header, with another ID
//! or without QR are ignored; an ICMP error (port unreachable) is down.
//!
//! The query and the header are encoded by hand: the check needs a 12-byte header, one
//! question and three header fields of the reply, which is less code than a DNS crate's
//! message model and adds no dependency.
use super::{
    connection::{Connection, udp_socket},
    outcome::Outcome,
    random::random_bytes,
};
use crate::config::model::DnsType;

/// keepalived reads replies into a buffer of this size (a classic DNS datagram).
const MAX_REPLY_BYTES: usize = 512;
const HEADER_BYTES: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_RD: u16 = 0x0100;
const CLASS_IN: u16 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct DnsProbe {
    pub query_type: DnsType,
    /// A domain name; `.` is the root.
    pub name: String,
}

/// The query type's number on the wire.
pub fn type_code(query_type: DnsType) -> u16 {
    match query_type {
        DnsType::A => 1,
        DnsType::Ns => 2,
        DnsType::Cname => 5,
        DnsType::Soa => 6,
        DnsType::Mx => 15,
        DnsType::Txt => 16,
        DnsType::Aaaa => 28,
        DnsType::Rrsig => 46,
        DnsType::Dnskey => 48,
    }
}

/// A query with ID `id`: recursion desired, one question `name` / `query_type` / IN.
/// Err: a name that cannot be encoded (an empty label, a label over 63 bytes, over 255
/// bytes in all).
pub fn encode_query(id: u16, name: &str, query_type: DnsType) -> Result<Vec<u8>, String> {
    let mut query = Vec::with_capacity(HEADER_BYTES + name.len() + 6);
    for field in [id, FLAG_RD, 1, 0, 0, 0] {
        query.extend_from_slice(&field.to_be_bytes());
    }
    let qname_start = query.len();
    let labels = name.strip_suffix('.').unwrap_or(name);
    if !labels.is_empty() {
        for label in labels.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("DNS name `{name}` has an empty or over-long label"));
            }
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
    }
    query.push(0);
    if query.len() - qname_start > 255 {
        return Err(format!("DNS name `{name}` is longer than 255 bytes"));
    }
    query.extend_from_slice(&type_code(query_type).to_be_bytes());
    query.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(query)
}

/// What one received datagram means for a query with ID `id`.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Not an answer to our query (too short, another ID, not a response): keep waiting.
    Ignore,
    /// RCODE 0.
    NoError,
    Error {
        rcode: u8,
    },
}

pub fn judge_reply(id: u16, datagram: &[u8]) -> Reply {
    if datagram.len() < HEADER_BYTES {
        return Reply::Ignore;
    }
    let field = |at: usize| u16::from_be_bytes([datagram[at], datagram[at + 1]]);
    if field(0) != id || field(2) & FLAG_QR == 0 {
        return Reply::Ignore;
    }
    match (field(2) & 0xf) as u8 {
        0 => Reply::NoError,
        rcode => Reply::Error { rcode },
    }
}

impl DnsProbe {
    pub async fn run(&self, connection: &Connection) -> Outcome {
        let timeout = connection.connect_timeout;
        let target = connection.connect;
        match tokio::time::timeout(timeout, self.exchange(connection)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::down(format!("no DNS reply from {target} within {timeout:?}")),
        }
    }

    async fn exchange(&self, connection: &Connection) -> Outcome {
        let target = connection.connect;
        let socket = match udp_socket(connection) {
            Ok(socket) => socket,
            Err(reason) => return Outcome::down(reason),
        };
        let random = random_bytes(2);
        let id = u16::from_be_bytes([random[0], random[1]]);
        let query = match encode_query(id, &self.name, self.query_type) {
            Ok(query) => query,
            Err(reason) => return Outcome::down(reason),
        };
        if let Err(e) = socket.send(&query).await {
            return Outcome::down(format!("send to {target}: {e}"));
        }
        let mut buffer = [0u8; MAX_REPLY_BYTES];
        loop {
            let length = match socket.recv(&mut buffer).await {
                Ok(length) => length,
                Err(e) => return Outcome::down(format!("{target}: {e}")),
            };
            match judge_reply(id, &buffer[..length]) {
                Reply::Ignore => continue,
                Reply::NoError => return Outcome::Up,
                Reply::Error { rcode } => {
                    return Outcome::down(format!("{target} answered with rcode {rcode}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;
    use crate::check::connection::tests::local;

    /// The question section of a query: (name labels, type, class).
    fn question(query: &[u8]) -> (Vec<String>, u16, u16) {
        let mut at = HEADER_BYTES;
        let mut labels = Vec::new();
        while query[at] != 0 {
            let n = query[at] as usize;
            labels.push(String::from_utf8(query[at + 1..at + 1 + n].to_vec()).unwrap());
            at += 1 + n;
        }
        let field = |i: usize| u16::from_be_bytes([query[i], query[i + 1]]);
        (labels, field(at + 1), field(at + 3))
    }

    /// A tiny DNS responder on 127.0.0.1: answers each query with the header `answer`
    /// builds from the query, followed by the query's question.
    async fn responder(answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static) -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                for reply in answer(&buf[..n]) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        port
    }

    /// A reply to `query` with `flags` and `ancount` answers (the answers themselves are
    /// not looked at).
    fn reply(query: &[u8], id_delta: u16, flags: u16, ancount: u16) -> Vec<u8> {
        let id = u16::from_be_bytes([query[0], query[1]]).wrapping_add(id_delta);
        let mut reply = Vec::new();
        for field in [id, flags, 1, ancount, 0, 0] {
            reply.extend_from_slice(&field.to_be_bytes());
        }
        reply.extend_from_slice(&query[HEADER_BYTES..]);
        reply
    }

    fn probe() -> DnsProbe {
        DnsProbe {
            query_type: DnsType::Soa,
            name: ".".into(),
        }
    }

    fn quick(port: u16) -> Connection {
        Connection {
            connect_timeout: Duration::from_millis(300),
            ..local(port)
        }
    }

    #[test]
    fn the_query_asks_for_name_and_type_in_class_in_with_recursion_desired() {
        let query = encode_query(0xbeef, "www.example.com", DnsType::Aaaa).unwrap();
        assert_eq!(
            &query[..HEADER_BYTES],
            [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            question(&query),
            (vec!["www".into(), "example".into(), "com".into()], 28, 1)
        );
        assert_eq!(
            encode_query(1, "example.com.", DnsType::A).unwrap(),
            encode_query(1, "example.com", DnsType::A).unwrap(),
            "a trailing dot changes nothing"
        );
        let root = encode_query(1, ".", DnsType::Soa).unwrap();
        assert_eq!(
            &root[HEADER_BYTES..],
            [0, 0, 6, 0, 1],
            "the root is one empty label"
        );
        assert!(encode_query(1, "a..b", DnsType::A).is_err());
        assert!(encode_query(1, &"a".repeat(64), DnsType::A).is_err());
    }

    #[test]
    fn a_reply_counts_only_with_our_id_and_qr_and_is_up_on_rcode_noerror() {
        assert_eq!(
            judge_reply(7, &[0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]),
            Reply::NoError
        );
        assert_eq!(
            judge_reply(7, &[0, 7, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]),
            Reply::Error { rcode: 3 }
        );
        assert_eq!(
            judge_reply(7, &[0, 8, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]),
            Reply::Ignore
        );
        assert_eq!(
            judge_reply(7, &[0, 7, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
            Reply::Ignore
        );
        assert_eq!(judge_reply(7, &[0, 7, 0x81, 0x80]), Reply::Ignore);
    }

    #[tokio::test]
    async fn a_server_answering_noerror_is_up() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = responder(move |query| {
            let _ = tx.send(query.to_vec());
            vec![reply(query, 0, 0x8180, 1)]
        })
        .await;
        let probe = DnsProbe {
            query_type: DnsType::A,
            name: "example.com".into(),
        };
        assert_eq!(probe.run(&quick(port)).await, Outcome::Up);
        let query = rx.recv().await.unwrap();
        assert_eq!(
            question(&query),
            (vec!["example".into(), "com".into()], 1, 1)
        );
    }

    #[tokio::test]
    async fn noerror_without_answers_is_up_as_keepalived_only_checks_the_rcode() {
        let port = responder(|query| vec![reply(query, 0, 0x8180, 0)]).await;
        assert_eq!(probe().run(&quick(port)).await, Outcome::Up);
    }

    #[tokio::test]
    async fn an_rcode_other_than_noerror_is_down() {
        let port = responder(|query| vec![reply(query, 0, 0x8182, 0)]).await;
        let outcome = probe().run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("rcode 2")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn replies_with_another_id_or_without_qr_are_skipped() {
        let port = responder(|query| {
            vec![
                reply(query, 1, 0x8182, 0),
                reply(query, 0, 0x0100, 0),
                vec![1, 2, 3],
                reply(query, 0, 0x8180, 1),
            ]
        })
        .await;
        assert_eq!(probe().run(&quick(port)).await, Outcome::Up);
    }

    #[tokio::test]
    async fn a_silent_server_is_down_after_connect_timeout() {
        let port = responder(|query| vec![reply(query, 1, 0x8180, 1)]).await;
        let outcome = probe().run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("no DNS reply")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_down() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let outcome = probe().run(&quick(port)).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("refused")),
            "{outcome:?}"
        );
    }
}
