//! A tiny HTTP server and client for balancer labs, run on threads inside lab namespaces.
//! The server answers every request with its name; `GET /hold` keeps the connection open
//! and echoes what the client sends (a long-lived connection to follow across a reload).
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use socket2::{Domain, Socket, Type};

use crate::netns::Netns;

pub struct HttpServer {
    /// Where it listens, to start it again after `stop`.
    netns_path: String,
    addr: SocketAddr,
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `addr` inside `netns`, answering with `name`.
    pub fn start(netns: &Netns, addr: SocketAddr, name: &str) -> Result<HttpServer> {
        let mut server = HttpServer {
            netns_path: netns.path(),
            addr,
            name: name.to_string(),
            stop: Arc::new(AtomicBool::new(true)),
            thread: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Stops it as a crashed or stopped HTTP process would go: when this returns the
    /// listening socket is closed, so new connections are refused (RST); connections being
    /// served finish or are dropped within ~200 ms. Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The accept loop owns the listener: joining it closes the socket.
            let _ = thread.join();
        }
    }

    /// Listens again on the same address (after `stop`; std's TcpListener sets
    /// SO_REUSEADDR, so connections left in TIME_WAIT do not block the bind).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let stop = Arc::new(AtomicBool::new(false));
        let (path, name, flag, addr) = (self.netns_path.clone(), self.name.clone(), stop.clone(), self.addr);
        let thread = listen_in(path, addr, flag.clone(), move |stream| serve(stream, &name, &flag))?;
        self.stop = stop;
        self.thread = Some(thread);
        Ok(())
    }
}

/// Listens on `addr` inside the namespace at `path`, on a thread of its own that owns the
/// listener; each connection goes to `serve` on a thread of its own, until `stop`. Returns
/// once it is listening (or why it cannot).
pub(crate) fn listen_in(
    path: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    serve: impl Fn(TcpStream) + Send + Sync + 'static,
) -> Result<thread::JoinHandle<()>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let serve = Arc::new(serve);
    let thread = thread::spawn(move || {
        let listener = (|| -> Result<TcpListener> {
            nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
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
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let serve = serve.clone();
                    thread::spawn(move || serve(stream));
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    ready_rx.recv().context("listener thread")??;
    Ok(thread)
}

fn serve(stream: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    let mut request_line = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                if request_line.is_empty() {
                    request_line = line.clone();
                }
                if line == "\r\n" {
                    break;
                }
            }
            Err(_) if !stop.load(Ordering::Relaxed) => continue,
            Err(_) => return,
        }
    }
    if request_line.starts_with("GET /hold") {
        let _ = writer.write_all(format!("HTTP/1.1 200 OK\r\n\r\n{name}\n").as_bytes());
        let mut buffer = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    if writer.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
                Err(_) => continue,
            }
        }
    } else {
        let body = format!("{name}\n");
        let _ = writer.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects from `source_port` (fixed ports make a run's flows, and so the balancer's
/// choices, the same every time).
fn connect(target: SocketAddr, source_port: u16) -> Result<TcpStream> {
    connect_within(target, source_port, Duration::from_secs(3))
}

/// `connect` giving up after `timeout` (port 0: one the kernel picks).
fn connect_within(target: SocketAddr, source_port: u16, timeout: Duration) -> Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    let any: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    socket.bind(&SocketAddr::new(any.ip(), source_port).into())?;
    socket.connect_timeout(&target.into(), timeout)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout))?;
    Ok(stream)
}

/// One `GET /` from `source_port`: the answering server's name.
pub fn get(target: SocketAddr, source_port: u16) -> Result<String> {
    get_within(target, source_port, Duration::from_secs(3))
}

/// `get` failing when connecting, or any read, takes longer than `timeout` (port 0: one the
/// kernel picks).
pub fn get_within(target: SocketAddr, source_port: u16, timeout: Duration) -> Result<String> {
    let mut stream = connect_within(target, source_port, timeout)?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else { bail!("no HTTP response: {response:?}") };
    if !head.starts_with("HTTP/1.0 200") {
        bail!("unexpected response: {head}");
    }
    Ok(body.trim().to_string())
}

/// A long-lived connection (`GET /hold`): who answered, and the stream to echo through.
pub fn hold(target: SocketAddr, source_port: u16) -> Result<(String, TcpStream)> {
    let mut stream = connect(target, source_port)?;
    stream.write_all(b"GET /hold HTTP/1.1\r\nHost: lab\r\n\r\n")?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("connection closed before the response");
        }
    }
    line.clear();
    reader.read_line(&mut line)?;
    Ok((line.trim().to_string(), stream))
}

/// Sends `text` on a held connection and waits for its echo.
pub fn echo(stream: &mut TcpStream, text: &str) -> Result<()> {
    stream.write_all(text.as_bytes())?;
    let mut buffer = vec![0u8; text.len()];
    stream.read_exact(&mut buffer)?;
    if buffer != text.as_bytes() {
        bail!("echo mismatch: {:?}", String::from_utf8_lossy(&buffer));
    }
    Ok(())
}
