//! What a client asks the control socket: one line, then the reply (JSON). No line at all
//! (a client that only reads) means `status`.
//!
//! ```text
//! status
//! drain   tcp|udp|sctp|any VIP:PORT RS:PORT
//! undrain tcp|udp|sctp|any VIP:PORT RS:PORT
//! ```
use std::net::SocketAddr;

use crate::lvs::{DrainTarget, plan::ProtocolKey};

/// The longest request line accepted (a drain line of two IPv6 socket addresses is ~110 bytes).
pub const MAX_REQUEST: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    Status,
    Drain { target: DrainTarget, drained: bool },
}

impl ControlRequest {
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

/// The reply to a request other than status.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_their_line() {
        for line in ["status\n", "drain tcp 192.0.2.1:80 10.0.0.11:8080\n", "undrain any [fd00::1]:443 [fd00::11]:443\n"] {
            let request = ControlRequest::parse(line).unwrap();
            assert_eq!(request.to_line(), line);
        }
        assert_eq!(ControlRequest::parse("").unwrap(), ControlRequest::Status);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(ControlRequest::parse("drain tcp 192.0.2.1 10.0.0.11:80").unwrap_err().contains("is not VIP:PORT"));
        assert!(ControlRequest::parse("drain icmp 192.0.2.1:80 10.0.0.11:80").unwrap_err().contains("unknown protocol"));
        assert!(ControlRequest::parse("\u{1}\u{2}garbage").unwrap_err().starts_with("unknown request"));
        assert!(ControlRequest::parse("drain tcp").unwrap_err().starts_with("unknown request"));
    }
}
