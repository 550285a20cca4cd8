use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixListener,
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use super::request::{ControlReply, ControlRequest, MAX_REQUEST};

/// How long a client may take to send its request line, and to read the reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// A request other than status, for the daemon's loop to answer.
pub struct ControlCommand {
    pub request: ControlRequest,
    pub reply: oneshot::Sender<ControlReply>,
}

/// A listening control socket serving the latest status and passing other requests to the
/// daemon (`commands`); removed again on `close`.
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
    status: watch::Sender<Arc<String>>,
    commands: Option<mpsc::Receiver<ControlCommand>>,
}

/// Reads the request line: up to a newline or the end of the client's writing, at most
/// MAX_REQUEST bytes. A client that sends nothing within the timeout is asking for status.
async fn read_request(stream: &mut tokio::net::UnixStream) -> Result<ControlRequest, String> {
    let mut line = Vec::new();
    let mut buffer = [0u8; 256];
    loop {
        let read = match tokio::time::timeout(CLIENT_TIMEOUT, stream.read(&mut buffer)).await {
            Err(_) if line.is_empty() => return Ok(ControlRequest::Status),
            Err(_) => return Err("request line not finished in time".into()),
            Ok(Err(error)) => return Err(format!("reading the request: {error}")),
            Ok(Ok(read)) => read,
        };
        line.extend_from_slice(&buffer[..read]);
        if read == 0 || line.contains(&b'\n') {
            break;
        }
        if line.len() > MAX_REQUEST {
            return Err(format!("request longer than {MAX_REQUEST} bytes"));
        }
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    if end > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    let text = std::str::from_utf8(&line[..end]).map_err(|_| "request is not UTF-8".to_string())?;
    ControlRequest::parse(text)
}

/// One client: its request, the answer, written with a deadline (a client that never reads
/// holds only its own task, and only for CLIENT_TIMEOUT).
async fn serve_client(mut stream: tokio::net::UnixStream, status: Arc<String>, commands: mpsc::Sender<ControlCommand>) {
    let answer = match read_request(&mut stream).await {
        Ok(ControlRequest::Status) => status.as_str().to_string(),
        Ok(request) => {
            let (reply, replied) = oneshot::channel();
            let reply = match commands.try_send(ControlCommand { request, reply }) {
                Ok(()) => tokio::time::timeout(Duration::from_secs(10), replied).await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            let reply = reply.unwrap_or_else(|| ControlReply::from_result(Err(anyhow::anyhow!("keepxdp is busy; try again"))));
            serde_json::to_string(&reply).unwrap_or_default()
        }
        Err(error) => {
            tracing::debug!("control socket: {error}");
            serde_json::to_string(&ControlReply::from_result(Err(anyhow::anyhow!(error)))).unwrap_or_default()
        }
    };
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, write).await;
}

impl ControlSocket {
    /// Binds `path` (replacing a socket left by a process that died) and serves `status`.
    pub fn bind(path: &Path, status: String) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "control socket {} is in use by another keepxdp; give each one its own --control-socket",
                    path.display()
                );
            }
            std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
        }
        let listener = UnixListener::bind(path).with_context(|| format!("binding control socket {}", path.display()))?;
        let (sender, receiver) = watch::channel(Arc::new(status));
        let (command_sender, commands) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let document = receiver.borrow().clone();
                tokio::spawn(serve_client(stream, document, command_sender.clone()));
            }
        });
        Ok(Self { path: path.to_path_buf(), task, status: sender, commands: Some(commands) })
    }

    /// The requests for the daemon to answer (once).
    pub fn take_commands(&mut self) -> mpsc::Receiver<ControlCommand> {
        self.commands.take().expect("take_commands is called once")
    }

    pub fn set_status(&self, status: String) {
        self.status.send_replace(Arc::new(status));
    }

    /// The served document, followed as it changes (the metrics endpoint reads it).
    pub fn subscribe(&self) -> watch::Receiver<Arc<String>> {
        self.status.subscribe()
    }

    pub fn close(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Fails when a keepxdp is serving `path` already (checked before anything is loaded: a
/// second keepxdp would otherwise take over the first one's data plane).
pub fn ensure_not_served(path: &Path) -> Result<()> {
    if UnixStream::connect(path).is_ok() {
        let document = request(path, &ControlRequest::Status).unwrap_or_default();
        let pid = serde_json::from_str::<serde_json::Value>(&document).ok().and_then(|status| status["pid"].as_u64());
        let pid = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
        anyhow::bail!("keepxdp is already running{pid}: it serves the control socket {}", path.display());
    }
    Ok(())
}

/// Client side: the status document a running keepxdp serves on `path`.
pub fn read_status(path: &Path) -> Result<String> {
    request(path, &ControlRequest::Status)
}

/// Client side: sends `request`, returns the reply (the status document, or a ControlReply).
pub fn request(path: &Path, request: &ControlRequest) -> Result<String> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("permission denied: the control socket {} is root-only (run this as root)", path.display())
        }
        Err(error) => {
            return Err(error).with_context(|| format!("connecting to {} (is keepxdp running with --control-socket {}?)", path.display(), path.display()));
        }
    };
    // An older keepxdp answers without reading: a failed write is not an error by itself.
    let _ = stream.write_all(request.to_line().as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut document = String::new();
    stream.read_to_string(&mut document)?;
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_reads_the_latest_status_and_close_removes_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let socket = ControlSocket::bind(&path, "{\"state\":\"starting\"}".into()).unwrap();
        socket.set_status("{\"state\":\"running\"}".into());
        let client_path = path.clone();
        let got = tokio::task::spawn_blocking(move || read_status(&client_path)).await.unwrap().unwrap();
        assert_eq!(got.trim(), "{\"state\":\"running\"}");
        socket.close();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_second_daemon_on_the_same_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let first = ControlSocket::bind(&path, "{}".into()).unwrap();
        let error = ControlSocket::bind(&path, "{}".into()).err().unwrap();
        assert!(error.to_string().contains("in use by another keepxdp"), "{error}");
        first.close();
    }

    #[tokio::test]
    async fn requests_reach_the_daemon_garbage_gets_an_error_and_a_silent_client_blocks_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut socket = ControlSocket::bind(&path, "{\"state\":\"running\"}".into()).unwrap();
        let mut commands = socket.take_commands();
        tokio::spawn(async move {
            while let Some(command) = commands.recv().await {
                let _ = command.reply.send(ControlReply { ok: true, changed: vec![format!("{:?}", command.request)], error: None });
            }
        });
        // Connects, sends nothing, never reads.
        let _silent = UnixStream::connect(&path).unwrap();
        let client_path = path.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let status = read_status(&client_path).unwrap();
            let took = started.elapsed();
            let drain = request(&client_path, &ControlRequest::parse("drain tcp 192.0.2.1:80 10.0.0.1:80").unwrap()).unwrap();
            let mut raw = UnixStream::connect(&client_path).unwrap();
            raw.write_all(b"\x00\xffnot a request\n").unwrap();
            let mut garbage = String::new();
            raw.read_to_string(&mut garbage).unwrap();
            let mut raw = UnixStream::connect(&client_path).unwrap();
            let _ = raw.write_all(&vec![b'x'; 64 * 1024]);
            let mut oversized = String::new();
            let _ = raw.read_to_string(&mut oversized);
            (status, took, drain, garbage, oversized)
        })
        .await
        .unwrap();
        let (status, took, drain, garbage, oversized) = answers;
        assert_eq!(status.trim(), "{\"state\":\"running\"}");
        assert!(took < Duration::from_millis(500), "status took {took:?} beside a silent client");
        assert!(drain.contains("\"ok\":true") && drain.contains("Drain"), "{drain}");
        assert!(garbage.contains("\"ok\":false") && garbage.contains("not UTF-8"), "{garbage}");
        assert!(oversized.is_empty() || oversized.contains("longer than"), "{oversized}");
        socket.close();
    }
}
