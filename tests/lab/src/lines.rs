//! Line servers for balancer labs, run on threads inside lab namespaces: an echo (the client
//! speaks first: every line comes back prefixed with the server's name) and a push stream
//! (the server speaks first: `NAME SEQ` every 50 ms, the client never writes).
use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::Result;

use crate::netns::Netns;

/// How often a push stream sends a line.
pub const PUSH_EVERY: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads lines, answers `NAME LINE`.
    Echo,
    /// Sends `NAME SEQ\n` every `PUSH_EVERY` from the moment it accepts.
    Push,
}

pub struct LineServer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl LineServer {
    /// Listens on `addr` inside `netns`; returns once it is listening.
    pub fn start(netns: &Netns, addr: SocketAddr, name: &str, mode: Mode) -> Result<LineServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (path, name, flag) = (netns.path(), name.to_string(), stop.clone());
        let thread = crate::http::listen_in(path, addr, stop.clone(), move |stream| match mode {
            Mode::Echo => echo(stream, &name, &flag),
            Mode::Push => push(stream, &name, &flag),
        })?;
        Ok(LineServer { stop, thread: Some(thread) })
    }
}

impl Drop for LineServer {
    /// Closes the listener; served connections end within ~200 ms.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn echo(stream: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut writer = stream;
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            // A timeout keeps what was read so far in `line`.
            Ok(_) if line.ends_with('\n') => {
                if writer.write_all(format!("{name} {line}").as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
            Ok(_) => {}
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

fn push(mut stream: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    // Lines are small: the send buffer fills only after minutes without an ACK.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if stream.write_all(format!("{name} {seq}\n").as_bytes()).is_err() {
            return;
        }
        seq += 1;
        thread::sleep(PUSH_EVERY);
    }
}
