use std::{
    io::Read,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use tokio::{io::AsyncWriteExt, net::UnixListener, sync::watch, task::JoinHandle};

/// A listening control socket serving the latest status; removed again on `close`.
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
    status: watch::Sender<Arc<String>>,
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let document = receiver.borrow().clone();
                tokio::spawn(async move {
                    let _ = stream.write_all(document.as_bytes()).await;
                    let _ = stream.write_all(b"\n").await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { path: path.to_path_buf(), task, status: sender })
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
    if let Ok(mut stream) = UnixStream::connect(path) {
        let mut document = String::new();
        let _ = stream.read_to_string(&mut document);
        let pid = serde_json::from_str::<serde_json::Value>(&document).ok().and_then(|status| status["pid"].as_u64());
        let pid = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
        anyhow::bail!("keepxdp is already running{pid}: it serves the control socket {}", path.display());
    }
    Ok(())
}

/// Client side: the status document a running keepxdp serves on `path`.
pub fn read_status(path: &Path) -> Result<String> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("permission denied: the control socket {} is root-only (run this as root)", path.display())
        }
        Err(error) => {
            return Err(error).with_context(|| format!("connecting to {} (is keepxdp running with --control-socket {}?)", path.display(), path.display()));
        }
    };
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
}
