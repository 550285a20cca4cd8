//! What a control-socket client may ask, and the parsing of it (pure: no I/O).
//!
//! A client connects and sends one request line (`status`, then a newline or a half-close);
//! a client that sends nothing is answered `status` too once the server stops waiting. The
//! answer is one JSON document and a newline, then the server closes the connection.

/// The longest request line read; a longer one is refused unread past this.
pub const MAX_REQUEST: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// More than `MAX_REQUEST` bytes without a newline.
    TooLong,
    /// Not UTF-8, or not a request this socket answers.
    Unknown(String),
    /// Bytes came, then neither a newline nor an end within the time allowed.
    Incomplete,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::TooLong => write!(f, "request longer than {MAX_REQUEST} bytes"),
            RequestError::Unknown(text) => write!(f, "unknown request {text:?} (this socket answers `status`)"),
            RequestError::Incomplete => write!(f, "incomplete request (no newline before the time limit)"),
        }
    }
}

/// What has been read so far decides: `Some` when the request is complete (a newline was
/// seen, or `ended`: the client half-closed or the wait is over) or already wrong.
pub fn parse(buffer: &[u8], ended: bool) -> Option<Result<Request, RequestError>> {
    let line = match buffer.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_REQUEST => &buffer[..end],
        Some(_) => return Some(Err(RequestError::TooLong)),
        None if buffer.len() > MAX_REQUEST => return Some(Err(RequestError::TooLong)),
        None if ended => buffer,
        None => return None,
    };
    Some(parse_line(line))
}

fn parse_line(line: &[u8]) -> Result<Request, RequestError> {
    let unknown = || RequestError::Unknown(String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned());
    let text = std::str::from_utf8(line).map_err(|_| unknown())?;
    match text.trim() {
        "" | "status" => Ok(Request::Status),
        _ => Err(unknown()),
    }
}

/// The answer to a refused request: `{"error": "..."}`.
pub fn error_document(error: &RequestError) -> String {
    serde_json::json!({ "error": error.to_string() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_with_a_newline_or_an_end_and_nothing_at_all_are_status() {
        assert_eq!(parse(b"status\n", false), Some(Ok(Request::Status)));
        assert_eq!(parse(b"status\r\n", false), Some(Ok(Request::Status)));
        assert_eq!(parse(b"status", true), Some(Ok(Request::Status)));
        assert_eq!(parse(b"", true), Some(Ok(Request::Status)));
        assert_eq!(parse(b"\n", false), Some(Ok(Request::Status)));
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
        assert_eq!(parse(&fits, false), Some(Ok(Request::Status)));
    }

    #[test]
    fn a_quoted_garbage_line_is_cut_to_64_bytes_in_the_error() {
        let Some(Err(RequestError::Unknown(text))) = parse(&[b'x'; 200], true) else { panic!() };
        assert_eq!(text.len(), 64);
    }
}
