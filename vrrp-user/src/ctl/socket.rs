use std::{
    io::{Read, Write},
    os::unix::{
        fs::{DirBuilderExt, PermissionsExt},
        net::UnixStream,
    },
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixListener,
    sync::{Semaphore, mpsc, oneshot, watch},
    task::JoinHandle,
};

use super::request::{self, ControlReply, ControlRequest, MAX_REQUEST};

/// How long a client may take to send its request; one that sends nothing at all is then
/// answered `status` (as a client that only reads expects).
pub const REQUEST_WAIT: Duration = Duration::from_millis(500);
/// How long writing the answer may take: a client that never reads is dropped after it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once; more wait (in the listen backlog) until one finishes.
pub const MAX_CLIENTS: usize = 32;

/// How long a request other than status may wait for the daemon's loop to answer it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A request other than status, for the daemon's loop to answer.
pub struct ControlCommand {
    pub request: ControlRequest,
    pub reply: oneshot::Sender<ControlReply>,
}

/// A listening control socket serving the latest status and passing other requests to the
/// daemon (`take_commands`); removed again on `close`.
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
    status: watch::Sender<Arc<String>>,
    commands: Option<mpsc::Receiver<ControlCommand>>,
}

impl ControlSocket {
    /// Binds `path` (replacing a socket left by a process that died), root-only (mode 0600,
    /// owned by the daemon's user), and serves `status`: every connection in a task of its
    /// own, bounded in time and size, so no client can hold up the daemon or another client.
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
        let listener = bind_private(path)?;
        let (sender, receiver) = watch::channel(Arc::new(status));
        let (command_sender, commands) = mpsc::channel(16);
        let task = tokio::spawn(serve(listener, receiver, command_sender));
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

/// Binds the socket in a fresh directory only its owner can enter, sets it to 0600 there,
/// then renames it to `path`: it never exists at `path` with a wider mode, whatever the umask.
fn bind_private(path: &Path) -> Result<UnixListener> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".{name}.{}.staging", std::process::id()));
    // Left by an earlier run with the same pid (a reboot): nothing in it is ours to keep.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let staged = staging.join("sock");
    let bound = UnixListener::bind(&staged)
        .with_context(|| format!("binding control socket {}", path.display()))
        .and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, path).with_context(|| format!("moving the control socket to {}", path.display()))?;
            Ok(listener)
        });
    let _ = std::fs::remove_dir_all(&staging);
    let listener = bound?;
    Ok(listener)
}

async fn serve(listener: UnixListener, status: watch::Receiver<Arc<String>>, commands: mpsc::Sender<ControlCommand>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        // With MAX_CLIENTS being served, the next connection waits in the listen backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, ...: wait instead of spinning on the error.
                tracing::warn!("control socket: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            let _slot = slot;
            answer(stream, status, commands).await;
        });
    }
}

/// Reads one request (bounded: `MAX_REQUEST` bytes, `REQUEST_WAIT`), writes its answer
/// (bounded: `WRITE_TIMEOUT`), closes.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    status: watch::Receiver<Arc<String>>,
    commands: mpsc::Sender<ControlCommand>,
) {
    let parsed = read_request(&mut stream).await;
    let document = match &parsed {
        Ok(ControlRequest::Status) => status.borrow().clone(),
        Ok(request) => {
            let (reply, replied) = oneshot::channel();
            let reply = match commands.try_send(ControlCommand { request: *request, reply }) {
                Ok(()) => tokio::time::timeout(COMMAND_TIMEOUT, replied).await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            let reply = reply.unwrap_or_else(|| ControlReply::from_result(Err(anyhow::anyhow!("keepxdp is busy; try again"))));
            Arc::new(serde_json::to_string(&reply).unwrap_or_default())
        }
        Err(error) => {
            tracing::debug!("control socket: {error}");
            Arc::new(request::error_document(error))
        }
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(document.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.shutdown().await
    })
    .await;
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Result<ControlRequest, request::RequestError> {
    let mut buffer = Vec::with_capacity(64);
    let mut chunk = [0u8; MAX_REQUEST + 1];
    let deadline = tokio::time::Instant::now() + REQUEST_WAIT;
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        let ended = match read {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => {
                buffer.extend_from_slice(&chunk[..n]);
                false
            }
            // Nothing sent at all: a client that only reads. Something, but no end: refused.
            Err(_) if buffer.is_empty() => return Ok(ControlRequest::Status),
            Err(_) => return Err(request::RequestError::Incomplete),
        };
        if let Some(parsed) = request::parse(&buffer, ended) {
            return parsed;
        }
    }
}

/// Fails when a keepxdp is serving `path` already (checked before anything is loaded: a
/// second keepxdp would otherwise take over the first one's data plane).
pub fn ensure_not_served(path: &Path) -> Result<()> {
    if let Ok(stream) = UnixStream::connect(path) {
        let document = request_status(stream).unwrap_or_default();
        let pid = serde_json::from_str::<serde_json::Value>(&document).ok().and_then(|status| status["pid"].as_u64());
        let pid = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
        anyhow::bail!("keepxdp is already running{pid}: it serves the control socket {}", path.display());
    }
    Ok(())
}

/// Client side: the status document a running keepxdp serves on `path`.
pub fn read_status(path: &Path) -> Result<String> {
    let stream = connect(path)?;
    let document = request_status(stream).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&document)
        && let Some(error) = map.get("error").and_then(|e| e.as_str())
        && map.get("ok") == Some(&serde_json::Value::Bool(false))
    {
        anyhow::bail!("the control socket {} refused the request: {error}", path.display());
    }
    Ok(document)
}

/// Client side: sends `request` to the keepxdp serving `path`, returns its answer (a
/// ControlReply document for anything but status).
pub fn request(path: &Path, request: &ControlRequest) -> Result<String> {
    let mut stream = connect(path)?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT + Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.to_line().as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut document = String::new();
    stream.read_to_string(&mut document).with_context(|| format!("reading {}", path.display()))?;
    Ok(document)
}

fn connect(path: &Path) -> Result<UnixStream> {
    match UnixStream::connect(path) {
        Ok(stream) => Ok(stream),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("permission denied: the control socket {} is root-only (run this as root)", path.display())
        }
        Err(error) => Err(error).with_context(|| format!("connecting to {} (is keepxdp running with --control-socket {}?)", path.display(), path.display())),
    }
}

/// Sends `status` and a half-close, reads the answer (bounded in time, as the server is).
fn request_status(mut stream: UnixStream) -> Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"status\n")?;
    stream.shutdown(std::net::Shutdown::Write)?;
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

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[tokio::test]
    async fn the_socket_is_0600_and_owned_by_the_daemon_user_whatever_the_umask() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        // The widest umask: the mode still comes out 0600 (restored before any assertion).
        let before = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let socket = ControlSocket::bind(&path, "{}".into());
        nix::sys::stat::umask(before);
        let socket = socket.unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), nix::unistd::geteuid().as_raw());
        // The staging directory is gone.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ctl.sock")]);
        socket.close();
    }

    /// A raw client: sends `bytes` (then half-closes when `close_write`), reads the answer.
    fn raw_exchange(path: &Path, bytes: &[u8], close_write: bool) -> String {
        let mut stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // An oversized request may be refused before all of it is written: that is fine.
        let _ = stream.write_all(bytes);
        if close_write {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[tokio::test]
    async fn garbage_and_oversized_requests_get_an_error_and_a_silent_client_gets_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let socket = ControlSocket::bind(&path, "{\"pid\":1}".into()).unwrap();
        let p = path.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let garbage = raw_exchange(&p, b"\x00\xffGET / HTTP/1.0\r\n\r\n", true);
            let oversized = raw_exchange(&p, &vec![b'A'; 1 << 20], false);
            let silent = {
                let mut stream = UnixStream::connect(&p).unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).unwrap();
                answer
            };
            let partial = raw_exchange(&p, b"stat", false);
            (garbage, oversized, silent, partial)
        })
        .await
        .unwrap();
        let error = |answer: &str| serde_json::from_str::<serde_json::Value>(answer).unwrap()["error"].as_str().unwrap().to_string();
        assert!(error(&answers.0).starts_with("unknown request"), "{}", answers.0);
        assert!(error(&answers.1).contains("longer than"), "{}", answers.1);
        assert_eq!(answers.2.trim(), "{\"pid\":1}");
        assert!(error(&answers.3).contains("incomplete"), "{}", answers.3);
        // read_status turns an error document into an error.
        let p = path.clone();
        let status = tokio::task::spawn_blocking(move || read_status(&p)).await.unwrap().unwrap();
        assert_eq!(status.trim(), "{\"pid\":1}");
        socket.close();
    }

    #[tokio::test]
    async fn clients_that_never_read_or_never_send_do_not_hold_up_another_client() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        // A document larger than a socket buffer: a client that never reads blocks the write.
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(4 << 20));
        let socket = ControlSocket::bind(&path, big.clone()).unwrap();
        let p = path.clone();
        let (stuck, took) = tokio::task::spawn_blocking(move || {
            // More stuck clients than MAX_CLIENTS: the last ones wait for a slot, none blocks for ever.
            let mut stuck = Vec::new();
            for i in 0..MAX_CLIENTS + 8 {
                let mut stream = UnixStream::connect(&p).unwrap();
                if i % 2 == 0 {
                    stream.write_all(b"status\n").unwrap(); // and never reads
                }
                stuck.push(stream); // odd ones never send, never read
            }
            std::thread::sleep(Duration::from_millis(100));
            let started = std::time::Instant::now();
            let got = read_status(&p).unwrap();
            assert_eq!(got.trim().len(), big.len());
            (stuck, started.elapsed())
        })
        .await
        .unwrap();
        // Slots free up as the stuck ones time out (REQUEST_WAIT, WRITE_TIMEOUT).
        assert!(took < REQUEST_WAIT + WRITE_TIMEOUT + Duration::from_secs(3), "status took {took:?}");
        drop(stuck);
        socket.close();
    }

    #[tokio::test]
    async fn a_drain_request_reaches_the_daemon_and_its_reply_the_client() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut socket = ControlSocket::bind(&path, "{}".into()).unwrap();
        let mut commands = socket.take_commands();
        tokio::spawn(async move {
            while let Some(command) = commands.recv().await {
                let _ = command.reply.send(ControlReply { ok: true, changed: vec![format!("{:?}", command.request)], error: None });
            }
        });
        let p = path.clone();
        let drain = tokio::task::spawn_blocking(move || request(&p, &ControlRequest::parse("drain tcp 192.0.2.1:80 10.0.0.1:80").unwrap()))
            .await
            .unwrap()
            .unwrap();
        let reply: ControlReply = serde_json::from_str(drain.trim()).unwrap();
        assert!(reply.ok && reply.changed[0].starts_with("Drain"), "{drain}");
        socket.close();
    }
}
