//! What a control-socket client may ask, and the parsing of it (pure: no I/O).
//!
//! A client connects and sends one request line (then a newline or a half-close); a client
//! that sends nothing is answered `status` once the server stops waiting. The answer is one
//! JSON document and a newline, then the server closes the connection.
//!
//! ```text
//! status
//! drain   tcp|udp|sctp|any VIP:PORT RS:PORT
//! undrain tcp|udp|sctp|any VIP:PORT RS:PORT
//! ```
use std::net::SocketAddr;

use crate::lvs::{DrainTarget, plan::ProtocolKey};

/// The longest request line read; a longer one is refused unread past this (a drain line of
/// two IPv6 socket addresses is ~110 bytes).
pub const MAX_REQUEST: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    Status,
    Drain { target: DrainTarget, drained: bool },
}

impl ControlRequest {
    /// One request line (without its newline).
    pub fn parse(line: &str) -> Result<ControlRequest, String> {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        match words.as_slice() {
            [] | ["status"] => Ok(ControlRequest::Status),
            [verb @ ("drain" | "undrain"), protocol, service, real] => {
                let protocol = match *protocol {
                    "tcp" => Some(ProtocolKey::Tcp),
                    "udp" => Some(ProtocolKey::Udp),
                    "sctp" => Some(ProtocolKey::Sctp),
                    "any" => None,
                    other => return Err(format!("unknown protocol `{other}` (tcp, udp, sctp or any)")),
                };
                let service: SocketAddr = service.parse().map_err(|_| format!("`{service}` is not VIP:PORT"))?;
                let real: SocketAddr = real.parse().map_err(|_| format!("`{real}` is not RS:PORT"))?;
                Ok(ControlRequest::Drain { target: DrainTarget { service, protocol, real }, drained: *verb == "drain" })
            }
            [verb, ..] => Err(format!("unknown request `{}`", verb.chars().take(40).collect::<String>())),
        }
    }

    pub fn to_line(&self) -> String {
        match self {
            ControlRequest::Status => "status\n".into(),
            ControlRequest::Drain { target, drained } => {
                let protocol = match target.protocol {
                    Some(ProtocolKey::Tcp) => "tcp",
                    Some(ProtocolKey::Udp) => "udp",
                    Some(ProtocolKey::Sctp) => "sctp",
                    None => "any",
                };
                let verb = if *drained { "drain" } else { "undrain" };
                format!("{verb} {protocol} {} {}\n", target.service, target.real)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// More than `MAX_REQUEST` bytes without a newline.
    TooLong,
    /// Not UTF-8, or not a request this socket answers (what was sent, at most 64 bytes).
    Unknown(String),
    /// A known request with bad arguments.
    Invalid(String),
    /// Bytes came, then neither a newline nor an end within the time allowed.
    Incomplete,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::TooLong => write!(f, "request longer than {MAX_REQUEST} bytes"),
            RequestError::Unknown(text) => {
                write!(f, "unknown request {text:?} (this socket answers `status`, `drain`, `undrain`)")
            }
            RequestError::Invalid(why) => write!(f, "{why}"),
            RequestError::Incomplete => write!(f, "incomplete request (no newline before the time limit)"),
        }
    }
}

/// What has been read so far decides: `Some` when the request is complete (a newline was
/// seen, or `ended`: the client half-closed or the wait is over) or already wrong.
pub fn parse(buffer: &[u8], ended: bool) -> Option<Result<ControlRequest, RequestError>> {
    let line = match buffer.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_REQUEST => &buffer[..end],
        Some(_) => return Some(Err(RequestError::TooLong)),
        None if buffer.len() > MAX_REQUEST => return Some(Err(RequestError::TooLong)),
        None if ended => buffer,
        None => return None,
    };
    Some(parse_line(line))
}

fn parse_line(line: &[u8]) -> Result<ControlRequest, RequestError> {
    let unknown = || RequestError::Unknown(String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned());
    let text = std::str::from_utf8(line).map_err(|_| unknown())?;
    match text.split_ascii_whitespace().next() {
        None | Some("status" | "drain" | "undrain") => ControlRequest::parse(text).map_err(RequestError::Invalid),
        Some(_) => Err(unknown()),
    }
}

/// The answer to a request other than status (and to a refused one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ControlReply {
    pub fn from_result(result: anyhow::Result<Vec<String>>) -> ControlReply {
        match result {
            Ok(changed) => ControlReply { ok: true, changed, error: None },
            Err(error) => ControlReply { ok: false, changed: Vec::new(), error: Some(format!("{error:#}")) },
        }
    }
}

/// The answer to a refused request: `{"ok": false, "error": "..."}`.
pub fn error_document(error: &RequestError) -> String {
    serde_json::to_string(&ControlReply { ok: false, changed: Vec::new(), error: Some(error.to_string()) }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_their_line() {
        for line in ["status\n", "drain tcp 192.0.2.1:80 10.0.0.11:8080\n", "undrain any [fd00::1]:443 [fd00::11]:443\n"] {
            let request = ControlRequest::parse(line).unwrap();
            assert_eq!(request.to_line(), line);
            assert_eq!(parse(line.as_bytes(), false), Some(Ok(request)));
        }
        assert_eq!(ControlRequest::parse("").unwrap(), ControlRequest::Status);
    }

    #[test]
    fn bad_drain_lines_say_what_is_wrong() {
        assert!(ControlRequest::parse("drain tcp 192.0.2.1 10.0.0.11:80").unwrap_err().contains("is not VIP:PORT"));
        assert!(ControlRequest::parse("drain icmp 192.0.2.1:80 10.0.0.11:80").unwrap_err().contains("unknown protocol"));
        assert!(ControlRequest::parse("drain tcp").unwrap_err().starts_with("unknown request"));
        let Some(Err(RequestError::Invalid(why))) = parse(b"drain tcp 192.0.2.1 10.0.0.11:80\n", false) else { panic!() };
        assert!(why.contains("is not VIP:PORT"), "{why}");
    }

    #[test]
    fn status_with_a_newline_or_an_end_and_nothing_at_all_are_status() {
        assert_eq!(parse(b"status\n", false), Some(Ok(ControlRequest::Status)));
        assert_eq!(parse(b"status\r\n", false), Some(Ok(ControlRequest::Status)));
        assert_eq!(parse(b"status", true), Some(Ok(ControlRequest::Status)));
        assert_eq!(parse(b"", true), Some(Ok(ControlRequest::Status)));
        assert_eq!(parse(b"\n", false), Some(Ok(ControlRequest::Status)));
    }

    #[test]
    fn a_partial_line_waits_for_more() {
        assert_eq!(parse(b"", false), None);
        assert_eq!(parse(b"sta", false), None);
    }

    #[test]
    fn garbage_is_refused_with_what_was_sent() {
        assert_eq!(parse(b"reboot\n", false), Some(Err(RequestError::Unknown("reboot".into()))));
        let Some(Err(error)) = parse(&[0xff, 0xfe, 0, b'\n'], false) else { panic!() };
        assert!(error.to_string().contains("unknown request"), "{error}");
        let document: serde_json::Value = serde_json::from_str(&error_document(&error)).unwrap();
        assert!(document["error"].as_str().unwrap().starts_with("unknown request"));
        assert_eq!(document["ok"], false);
    }

    #[test]
    fn an_oversized_request_is_refused_as_soon_as_it_is_too_long() {
        assert_eq!(parse(&[b'a'; MAX_REQUEST + 1], false), Some(Err(RequestError::TooLong)));
        let mut long = vec![b' '; MAX_REQUEST + 5];
        long.push(b'\n');
        assert_eq!(parse(&long, false), Some(Err(RequestError::TooLong)));
        // Exactly the limit is still read.
        let mut fits = vec![b' '; MAX_REQUEST - 6];
        fits.extend_from_slice(b"status\n");
        assert_eq!(parse(&fits, false), Some(Ok(ControlRequest::Status)));
    }

    #[test]
    fn a_quoted_garbage_line_is_cut_to_64_bytes_in_the_error() {
        let Some(Err(RequestError::Unknown(text))) = parse(&[b'x'; 200], true) else { panic!() };
        assert_eq!(text.len(), 64);
    }
}
