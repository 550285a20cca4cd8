//! SMTP_CHECK: keepalived 2.2.7's dialogue. Connect; the greeting's first line must be
//! `220`; send `HELO <helo_name>` (keepalived's default name: smtpchecker.keepalived.org);
//! the reply's first line must be `250`; send `QUIT` and read one more line (any). Each
//! step (connect, each read, each write) has `connect_timeout`. A status is three digits
//! followed by a space or the end of the line, so a multi-line `220-` greeting is down, as
//! in keepalived.
//!
//! keepalived turns each deprecated `host { }` block into one more checker of the same real
//! server, so every host must pass for the real server to be up: here one probe checks
//! them all in turn and is down at the first that fails.
use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    connection::{Connection, connect},
    outcome::Outcome,
};

/// keepalived's HELO name when `helo_name` is not given.
pub const DEFAULT_HELO_NAME: &str = "smtpchecker.keepalived.org";
/// keepalived's line buffer: a longer line is cut to this.
const MAX_LINE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpProbe {
    pub helo_name: String,
}

impl SmtpProbe {
    /// Up when every server in `servers` passes the dialogue.
    pub async fn run(&self, servers: &[Connection]) -> Outcome {
        for server in servers {
            if let Err(reason) = self.dialogue(server).await {
                return Outcome::down(format!("SMTP server {}: {reason}", server.connect));
            }
        }
        Outcome::Up
    }

    async fn dialogue(&self, server: &Connection) -> Result<(), String> {
        let timeout = server.connect_timeout;
        let mut stream = connect(server).await?;
        let greeting = read_line(&mut stream, timeout).await?;
        if status(&greeting) != Some(220) {
            return Err(format!("bad greeting {greeting:?}"));
        }
        write_line(
            &mut stream,
            &format!("HELO {}\r\n", self.helo_name),
            timeout,
        )
        .await?;
        let helo = read_line(&mut stream, timeout).await?;
        if status(&helo) != Some(250) {
            return Err(format!("bad HELO reply {helo:?}"));
        }
        write_line(&mut stream, "QUIT\r\n", timeout).await?;
        read_line(&mut stream, timeout).await?;
        Ok(())
    }
}

/// The line's status code: three digits, then a space or the end of the line.
pub fn status(line: &str) -> Option<u16> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (digits, rest) = line.split_at_checked(3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    digits.parse().ok()
}

/// Reads until a newline (the line without it); each read must come within `timeout`.
async fn read_line(stream: &mut TcpStream, timeout: Duration) -> Result<String, String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; MAX_LINE_BYTES];
    loop {
        let n = match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
            Err(_) => return Err(format!("no reply within {timeout:?}")),
            Ok(Err(e)) => return Err(format!("receive: {e}")),
            Ok(Ok(0)) => return Err("connection closed".into()),
            Ok(Ok(n)) => n,
        };
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end.min(MAX_LINE_BYTES));
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if line.len() >= MAX_LINE_BYTES {
            // keepalived starts its buffer over when a line does not fit.
            line.clear();
        }
    }
}

async fn write_line(stream: &mut TcpStream, line: &str, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, stream.write_all(line.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send: {e}")),
        Err(_) => Err(format!("send: timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncBufReadExt, BufReader},
        net::TcpListener,
        sync::mpsc,
    };

    use super::*;
    use crate::check::connection::tests::local;

    /// An SMTP server on 127.0.0.1 that greets with `greeting` and answers HELO with
    /// `helo_reply`; the lines it received go to the channel. `None`: say nothing.
    async fn server(
        greeting: Option<&'static str>,
        helo_reply: &'static str,
    ) -> (u16, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let Some(greeting) = greeting else {
                        // Hang: hold the connection, say nothing.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    };
                    write.write_all(greeting.as_bytes()).await.unwrap();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let _ = tx.send(line.clone());
                        let answer = if line.starts_with("HELO") {
                            helo_reply
                        } else if line == "QUIT" {
                            "221 bye\r\n"
                        } else {
                            "500 what\r\n"
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, rx)
    }

    fn probe() -> SmtpProbe {
        SmtpProbe {
            helo_name: DEFAULT_HELO_NAME.into(),
        }
    }

    fn quick(port: u16) -> Connection {
        Connection {
            connect_timeout: Duration::from_millis(300),
            ..local(port)
        }
    }

    #[test]
    fn a_status_is_three_digits_then_a_space_or_the_end() {
        assert_eq!(status("220 mail.example ESMTP"), Some(220));
        assert_eq!(status("250\r"), Some(250));
        assert_eq!(status("220-mail.example"), None, "a continuation line");
        assert_eq!(status("2200 x"), None);
        assert_eq!(status("22"), None);
    }

    #[tokio::test]
    async fn a_server_saying_220_then_250_is_up_and_hears_helo_then_quit() {
        let (port, mut heard) = server(Some("220 mail.test ESMTP\r\n"), "250 hello\r\n").await;
        assert_eq!(probe().run(&[quick(port)]).await, Outcome::Up);
        assert_eq!(
            heard.recv().await.unwrap(),
            "HELO smtpchecker.keepalived.org"
        );
        assert_eq!(heard.recv().await.unwrap(), "QUIT");
    }

    #[tokio::test]
    async fn helo_name_is_sent() {
        let (port, mut heard) = server(Some("220 mail.test\r\n"), "250 hello\r\n").await;
        let probe = SmtpProbe {
            helo_name: "lb1.example.com".into(),
        };
        assert_eq!(probe.run(&[quick(port)]).await, Outcome::Up);
        assert_eq!(heard.recv().await.unwrap(), "HELO lb1.example.com");
    }

    #[tokio::test]
    async fn a_server_greeting_with_554_is_down() {
        let (port, _) = server(Some("554 go away\r\n"), "250 hello\r\n").await;
        let outcome = probe().run(&[quick(port)]).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("bad greeting")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_server_refusing_helo_is_down() {
        let (port, _) = server(Some("220 mail.test\r\n"), "550 no\r\n").await;
        let outcome = probe().run(&[quick(port)]).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("bad HELO reply")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_hangs_is_down_after_connect_timeout() {
        let (port, _) = server(None, "250 hello\r\n").await;
        let outcome = probe().run(&[quick(port)]).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("no reply within")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn every_host_must_pass() {
        let (good, _) = server(Some("220 a\r\n"), "250 hello\r\n").await;
        let (bad, _) = server(Some("554 b\r\n"), "250 hello\r\n").await;
        assert_eq!(probe().run(&[quick(good), quick(good)]).await, Outcome::Up);
        let outcome = probe().run(&[quick(good), quick(bad)]).await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains(&format!(":{bad}"))),
            "{outcome:?}"
        );
    }
}
