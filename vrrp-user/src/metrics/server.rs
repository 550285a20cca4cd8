//! The scrape endpoint: a minimal HTTP/1.x responder for `GET /metrics` (one path, one
//! response per connection, then close), on the daemon's runtime. The maps are read on a
//! blocking thread so a scrape never holds up VRRP.
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use super::exposition::{Snapshot, encode};
use crate::bpf::{add_checkers, read_flows, read_guard_stats, read_lvs};

/// The listening endpoint; stops with `close` or when dropped.
pub struct MetricsServer {
    task: JoinHandle<()>,
    pub local_addr: SocketAddr,
}

impl MetricsServer {
    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `addr`; each scrape reads `status` (the control socket's document) and the
/// maps pinned in `pin_dir`.
pub async fn serve(addr: SocketAddr, status: watch::Receiver<Arc<String>>, pin_dir: PathBuf) -> Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("--metrics-listen {addr}"))?;
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "serving Prometheus metrics on /metrics");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (status, pin_dir) = (status.clone(), pin_dir.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, status, pin_dir)).await;
            });
        }
    });
    Ok(MetricsServer { task, local_addr })
}

/// The request line's method and path, once the head is complete (None: not yet).
pub fn request_target(head: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(head).ok()?;
    if !text.contains("\r\n\r\n") && !text.contains("\n\n") {
        return None;
    }
    let mut parts = text.lines().next()?.split_whitespace();
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

async fn answer(mut stream: TcpStream, status: watch::Receiver<Arc<String>>, pin_dir: PathBuf) -> Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    let (method, path) = loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(target) = request_target(&head) {
            break target;
        }
        if head.len() > 8192 {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", "request head too large\n").await;
        }
    };
    let path = path.split('?').next().unwrap_or_default().to_string();
    match (method.as_str(), path.as_str()) {
        ("GET" | "HEAD", "/metrics") => {
            let document = status.borrow().clone();
            let body = tokio::task::spawn_blocking(move || encode(&snapshot(&document, &pin_dir))).await?;
            respond(&mut stream, "200 OK", prometheus::TEXT_FORMAT, if method == "HEAD" { "" } else { &body }).await
        }
        ("GET" | "HEAD", _) => respond(&mut stream, "404 Not Found", "text/plain", "keepxdp serves /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET /metrics\n").await,
    }
}

fn snapshot(document: &str, pin_dir: &std::path::Path) -> Snapshot {
    let status: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
    let lvs = read_lvs(pin_dir).ok().map(|mut table| {
        add_checkers(&mut table, &status);
        table
    });
    Snapshot { lvs, guard: read_guard_stats(pin_dir).unwrap_or_default(), flows: read_flows(pin_dir).ok(), status }
}

async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> Result<()> {
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_is_read_once_the_head_is_complete() {
        assert_eq!(request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Some(("GET".into(), "/metrics".into())));
    }

    #[tokio::test]
    async fn a_scrape_over_tcp_gets_the_exposition_and_other_paths_404() {
        let (_sender, receiver) = watch::channel(Arc::new(r#"{"vrrp":[{"name":"VI_1","interface":"eth0","vrid":51,"state":"Master"}]}"#.to_string()));
        let server = serve("127.0.0.1:0".parse().unwrap(), receiver, "/nonexistent".into()).await.unwrap();
        let get = |path: &'static str| {
            let addr = server.local_addr;
            async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).await.unwrap();
                response
            }
        };
        let response = get("/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n") && response.contains("text/plain; version=0.0.4"), "{response}");
        assert!(response.contains("keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 2"), "{response}");
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        server.close();
    }
}
