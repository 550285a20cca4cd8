//! Client load through the VIP, followed over time: long-lived echo connections (a line
//! every 100 ms, each echo checked), push streams (lines must keep arriving), and a bounded
//! stream of new HTTP requests. Every event is timestamped, so a test can tell what happened
//! inside and outside a failover window.
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Result, anyhow, bail};
use keepxdp_lab::{http, netns::Netns};

use super::{VIP, config};

/// A connection that hears nothing for this long is lost.
pub const LOST_AFTER: Duration = Duration::from_secs(5);
const ECHO_EVERY: Duration = Duration::from_millis(100);
const REQUEST_EVERY: Duration = Duration::from_millis(25);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The client speaks first.
    Echo,
    /// The server speaks first.
    Stream,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo (client first)",
            Kind::Stream => "stream (server first)",
        }
    }
}

/// One long-lived connection's history.
#[derive(Debug)]
pub struct Connection {
    pub kind: Kind,
    pub server: String,
    /// When each echo came back / each line arrived.
    pub events: Vec<Instant>,
    /// Why it ended before the load stopped (reset, mismatch, silent for LOST_AFTER).
    pub error: Option<(Instant, String)>,
}

impl Connection {
    /// The longest time without an event, and where it started.
    pub fn longest_gap(&self) -> (Duration, Option<Instant>) {
        self.events.windows(2).map(|w| (w[1] - w[0], Some(w[0]))).max().unwrap_or((Duration::ZERO, None))
    }

    /// Gaps longer than `limit`: (start, length).
    pub fn gaps_over(&self, limit: Duration) -> Vec<(Instant, Duration)> {
        self.events.windows(2).filter(|w| w[1] - w[0] > limit).map(|w| (w[0], w[1] - w[0])).collect()
    }
}

/// One new HTTP request.
#[derive(Debug)]
pub struct Request {
    pub started: Instant,
    pub ended: Instant,
    /// The server that answered, or the error.
    pub outcome: std::result::Result<String, String>,
}

pub struct Report {
    pub connections: Vec<Connection>,
    pub requests: Vec<Request>,
}

impl Report {
    pub fn failed_requests(&self) -> Vec<&Request> {
        self.requests.iter().filter(|r| r.outcome.is_err()).collect()
    }

    /// Successful requests per answering server.
    pub fn answered_by(&self) -> BTreeMap<String, u32> {
        let mut seen = BTreeMap::new();
        for request in &self.requests {
            if let Ok(name) = &request.outcome {
                *seen.entry(name.clone()).or_insert(0) += 1;
            }
        }
        seen
    }

    /// (opened, alive at the end) for `kind`.
    pub fn survival(&self, kind: Kind) -> (usize, usize) {
        let of_kind: Vec<&Connection> = self.connections.iter().filter(|c| c.kind == kind).collect();
        (of_kind.len(), of_kind.iter().filter(|c| c.error.is_none()).count())
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    connections: Vec<JoinHandle<Connection>>,
    requests: Option<JoinHandle<Vec<Request>>>,
}

impl Load {
    /// Opens `per_kind` echo and `per_kind` stream connections from `client` (each checked
    /// once before this returns), then keeps them busy; with `requests`, also sends a new
    /// HTTP request every 25 ms (at most `max_requests`).
    pub fn start(client: &Netns, per_kind: usize, max_requests: Option<u32>) -> Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = in_netns(client, move || {
            let mut opened = Vec::new();
            for kind in [Kind::Echo, Kind::Stream] {
                for i in 0..per_kind {
                    opened.push(open(kind).map_err(|e| anyhow!("opening {} connection {i}: {e:#}", kind.name()))?);
                }
            }
            Ok(opened)
        })?;
        let connections = opened
            .into_iter()
            .map(|(kind, server, stream, reader)| {
                let stop = stop.clone();
                std::thread::spawn(move || follow(kind, server, stream, reader, &stop))
            })
            .collect();
        let requests = match max_requests {
            Some(max) => {
                let (path, stop) = (client.path(), stop.clone());
                Some(std::thread::spawn(move || {
                    if nix::sched::setns(std::fs::File::open(&path).expect("client netns"), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                        return Vec::new();
                    }
                    request_stream(max, &stop)
                }))
            }
            None => None,
        };
        Ok(Load { stop, connections, requests })
    }

    /// Stops everything and collects the histories.
    pub fn stop(mut self) -> Result<Report> {
        self.stop.store(true, Ordering::Relaxed);
        let connections = std::mem::take(&mut self.connections)
            .into_iter().map(|t| t.join().map_err(|_| anyhow!("connection thread panicked"))).collect::<Result<_>>()?;
        let requests = match self.requests.take() {
            Some(thread) => thread.join().map_err(|_| anyhow!("request thread panicked"))?,
            None => Vec::new(),
        };
        Ok(Report { connections, requests })
    }
}

impl Drop for Load {
    /// A story that failed half-way still ends its load threads.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs `f` on a thread inside `netns` (sockets it opens live there).
fn in_netns<T: Send + 'static>(netns: &Netns, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let path = netns.path();
    std::thread::spawn(move || {
        nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
        f()
    })
    .join()
    .map_err(|_| anyhow!("client thread panicked"))?
}

type Opened = (Kind, String, TcpStream, BufReader<TcpStream>);

/// Connects and gets the first answer (which names the real server).
fn open(kind: Kind) -> Result<Opened> {
    let port = match kind {
        Kind::Echo => config::ECHO_PORT,
        Kind::Stream => config::STREAM_PORT,
    };
    let target: SocketAddr = format!("{VIP}:{port}").parse()?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    if kind == Kind::Echo {
        stream.write_all(b"hello\n")?;
    }
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let Some((server, _)) = line.trim().split_once(' ') else { bail!("unexpected first line {line:?}") };
    // Short reads from here on, so the follower notices `stop` and measures silence itself.
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok((kind, server.to_string(), stream, reader))
}

/// Reads one line within LOST_AFTER (or until `stop`): Ok(None) when stopped.
fn read_line(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> Result<Option<String>> {
    let deadline = Instant::now() + LOST_AFTER;
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => bail!("closed by the peer"),
            Ok(_) if line.ends_with('\n') => return Ok(Some(line)),
            Ok(_) => {}
            // A timeout keeps what was read so far in `line`.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => bail!("{e}"),
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            bail!("nothing for {LOST_AFTER:?}");
        }
    }
}

fn follow(kind: Kind, server: String, mut stream: TcpStream, mut reader: BufReader<TcpStream>, stop: &AtomicBool) -> Connection {
    let mut connection = Connection { kind, server, events: vec![Instant::now()], error: None };
    let mut seq = 0u64;
    let result = (|| -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            match kind {
                Kind::Echo => {
                    seq += 1;
                    stream.write_all(format!("{seq}\n").as_bytes())?;
                    let Some(line) = read_line(&mut reader, stop)? else { return Ok(()) };
                    let expected = format!("{} {seq}\n", connection.server);
                    if line != expected {
                        bail!("echo {line:?}, expected {expected:?}");
                    }
                    connection.events.push(Instant::now());
                    std::thread::sleep(ECHO_EVERY);
                }
                Kind::Stream => {
                    let Some(line) = read_line(&mut reader, stop)? else { return Ok(()) };
                    if !line.starts_with(&format!("{} ", connection.server)) {
                        bail!("line {line:?} from another server than {}", connection.server);
                    }
                    connection.events.push(Instant::now());
                }
            }
        }
        Ok(())
    })();
    if let Err(error) = result {
        connection.error = Some((Instant::now(), format!("{error:#}")));
    }
    connection
}

fn request_stream(max: u32, stop: &AtomicBool) -> Vec<Request> {
    let target: SocketAddr = format!("{VIP}:{}", config::HTTP_PORT).parse().expect("VIP");
    let mut requests = Vec::new();
    while !stop.load(Ordering::Relaxed) && (requests.len() as u32) < max {
        let started = Instant::now();
        let outcome = http::get_within(target, 0, REQUEST_TIMEOUT).map_err(|e| format!("{e:#}"));
        requests.push(Request { started, ended: Instant::now(), outcome });
        std::thread::sleep(REQUEST_EVERY);
    }
    requests
}
