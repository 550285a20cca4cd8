//! The SMTP dialogue of one alert, as keepalived 2.2.7 holds it (core/smtp.c): greeting 220,
//! `HELO name` 250, `MAIL FROM:<from>` 250, one `RCPT TO:<to>` 250 per recipient, `DATA`
//! 354, the text and its dot 250, `QUIT`. Connecting and each reply have the timeout
//! (smtp_connect_timeout). A reply's code is on its last line (`250-` lines continue it).
use std::time::Duration;

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    time::timeout,
};

use super::plan::Server;

/// A reply line longer than this ends the dialogue (keepalived's buffer is 512 bytes).
const MAX_REPLY_LINE: usize = 4096;

/// What went wrong, for the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    #[error("{step}: the server answered {reply:?}")]
    Refused { step: &'static str, reply: String },
    #[error("{0}")]
    Io(String),
}

/// One message: envelope and DATA text (see `message::data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub async fn send(server: &Server, envelope: &Envelope) -> Result<(), SendError> {
    let target = format!("{}:{}", server.host, server.port);
    let stream = match timeout(server.timeout, TcpStream::connect((server.host.as_str(), server.port))).await {
        Err(_) => return Err(SendError::Timeout(server.timeout, "the connection")),
        Ok(Err(error)) => return Err(SendError::Connect(format!("{target}: {error}"))),
        Ok(Ok(stream)) => stream,
    };
    let mut session = Session { stream: BufReader::new(stream), timeout: server.timeout };
    session.expect("the greeting", 220).await?;
    session.command("HELO", &format!("HELO {}\r\n", server.helo_name), 250).await?;
    session.command("MAIL FROM", &format!("MAIL FROM:<{}>\r\n", envelope.from), 250).await?;
    for to in &envelope.to {
        session.command("RCPT TO", &format!("RCPT TO:<{to}>\r\n"), 250).await?;
    }
    session.command("DATA", "DATA\r\n", 354).await?;
    session.command("the message", &envelope.data, 250).await?;
    // The message is accepted; QUIT's reply changes nothing.
    let _ = session.command("QUIT", "QUIT\r\n", 221).await;
    Ok(())
}

struct Session {
    stream: BufReader<TcpStream>,
    timeout: Duration,
}

impl Session {
    async fn command(&mut self, step: &'static str, text: &str, code: u16) -> Result<(), SendError> {
        match timeout(self.timeout, self.stream.get_mut().write_all(text.as_bytes())).await {
            Err(_) => return Err(SendError::Timeout(self.timeout, step)),
            Ok(Err(error)) => return Err(SendError::Io(format!("{step}: {error}"))),
            Ok(Ok(())) => {}
        }
        self.expect(step, code).await
    }

    /// Reads one reply (its continuation lines too) and checks its code.
    async fn expect(&mut self, step: &'static str, code: u16) -> Result<(), SendError> {
        loop {
            let mut line = String::new();
            let read = timeout(self.timeout, (&mut self.stream).take(MAX_REPLY_LINE as u64).read_line(&mut line)).await;
            match read {
                Err(_) => return Err(SendError::Timeout(self.timeout, step)),
                Ok(Err(error)) => return Err(SendError::Io(format!("{step}: {error}"))),
                Ok(Ok(0)) => return Err(SendError::Io(format!("{step}: the server closed the connection"))),
                Ok(Ok(_)) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            return match line.get(..3).and_then(|c| c.parse::<u16>().ok()) {
                Some(got) if got == code => Ok(()),
                _ => Err(SendError::Refused { step, reply: line.to_string() }),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
        net::TcpListener,
    };

    use super::*;

    /// A sink that answers each command with the next canned reply and returns what it heard.
    async fn sink(replies: Vec<&'static str>) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut heard = String::new();
            let mut replies = replies.into_iter();
            write.write_all(replies.next().unwrap().as_bytes()).await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                heard.push_str(&line);
                if in_data && line != ".\r\n" {
                    continue;
                }
                in_data = line == "DATA\r\n";
                let Some(reply) = replies.next() else { break };
                write.write_all(reply.as_bytes()).await.unwrap();
            }
            heard
        });
        (port, task)
    }

    fn server(port: u16) -> Server {
        Server { host: "127.0.0.1".into(), port, helo_name: "lb1".into(), timeout: Duration::from_secs(2) }
    }

    fn envelope() -> Envelope {
        Envelope { from: "lb@example.com".into(), to: vec!["a@example.com".into(), "b@example.com".into()], data: "Subject: x\r\n\r\nbody\r\n\r\n.\r\n".into() }
    }

    #[tokio::test]
    async fn the_dialogue_is_keepalived_s() {
        let ok = vec!["220-mx ready\r\n220 still\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 queued\r\n", "221 bye\r\n"];
        let (port, heard) = sink(ok).await;
        send(&server(port), &envelope()).await.unwrap();
        assert_eq!(
            heard.await.unwrap(),
            "HELO lb1\r\nMAIL FROM:<lb@example.com>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n\r\n.\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn a_refused_recipient_ends_it_with_the_reply() {
        let (port, _heard) = sink(vec!["220 mx\r\n", "250 hi\r\n", "250 ok\r\n", "550 no such user\r\n"]).await;
        let error = send(&server(port), &envelope()).await.unwrap_err();
        assert_eq!(error, SendError::Refused { step: "RCPT TO", reply: "550 no such user".into() });
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut quick = server(listener.local_addr().unwrap().port());
        quick.timeout = Duration::from_millis(200);
        assert_eq!(send(&quick, &envelope()).await.unwrap_err(), SendError::Timeout(quick.timeout, "the greeting"));
        drop(listener);
        assert!(matches!(send(&quick, &envelope()).await.unwrap_err(), SendError::Connect(_)));
    }
}
