//! An SMTP sink for the alert lab: listens inside a lab namespace, speaks just enough SMTP
//! (220, HELO/EHLO, MAIL, RCPT, DATA, QUIT) to accept every message, and keeps what it was
//! told. One connection at a time, each with a 5 s read timeout; the listener closes on
//! `stop` (or drop), after which connections are refused.
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use keepxdp_lab::netns::Netns;

/// The sink closes by itself after this, whatever the test does.
const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// One accepted message, as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA text without the final dot line, CRLFs kept.
    pub data: String,
}

impl Received {
    /// A header's value (`Subject`, `From`, ...), from the header block.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        head.split("\r\n").find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }

    /// The header names in order.
    pub fn header_names(&self) -> Vec<&str> {
        let head = self.data.split_once("\r\n\r\n").map_or("", |(h, _)| h);
        head.split("\r\n").filter_map(|line| line.split_once(": ").map(|(n, _)| n)).collect()
    }

    /// The body, its trailing blank line removed.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim_end_matches("\r\n")
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on `addr` inside `netns`; returns once it listens.
    pub fn start(netns: &Netns, addr: SocketAddr) -> Result<SmtpSink> {
        let netns = netns.path();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (received.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let listener = (|| -> Result<TcpListener> {
                nix::sched::setns(std::fs::File::open(&netns)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
                let listener = TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            })();
            let listener = match listener {
                Ok(listener) => {
                    let _ = ready_tx.send(Ok(()));
                    listener
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let started = Instant::now();
            while !stopping.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Ok(message) = serve(stream) {
                            kept.lock().unwrap().extend(message);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        ready_rx.recv().context("the SMTP sink's thread ended")??;
        Ok(SmtpSink { addr, received, stop, thread: Some(thread) })
    }

    /// The messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Closes the listener (new connections are refused from when this returns).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One session: every message it carried.
fn serve(stream: TcpStream) -> Result<Vec<Received>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut messages = Vec::new();
    let mut current = Received::default();
    writer.write_all(b"220 sink.lab ESMTP ready\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(messages);
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("HELO ") || upper.starts_with("EHLO ") {
            current.helo = command[5..].to_string();
            b"250 sink.lab\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current.mail_from = command[10..].to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            current.rcpt_to.push(command[8..].to_string());
            b"250 ok\r\n"
        } else if upper == "DATA" {
            writer.write_all(b"354 go ahead\r\n")?;
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(messages);
                }
                if line == ".\r\n" {
                    break;
                }
                current.data.push_str(&line);
            }
            let helo = current.helo.clone();
            messages.push(std::mem::replace(&mut current, Received { helo, ..Received::default() }));
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            writer.write_all(b"221 bye\r\n")?;
            return Ok(messages);
        } else {
            b"500 what?\r\n"
        };
        writer.write_all(reply)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_body_of_a_received_message() {
        let message = Received {
            data: "Date: x\r\nFrom: a@b\r\nSubject: Hi there\r\nX-Mailer: Keepalived\r\nTo: c@d, e@f\r\n\r\nbody line\r\n\r\n".into(),
            ..Received::default()
        };
        assert_eq!(message.header("Subject"), Some("Hi there"));
        assert_eq!(message.header("To"), Some("c@d, e@f"));
        assert_eq!(message.header_names(), ["Date", "From", "Subject", "X-Mailer", "To"]);
        assert_eq!(message.body(), "body line");
    }
}
