//! keepalived's pid files (`-p`, `-r`, `-c`): written with keepxdp's pid once it is sure to
//! run, removed on a clean stop; one naming a running keepxdp (or keepalived) stops a second
//! one before it loads anything.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// The pid files this keepxdp wrote; removed when dropped (if they still name it).
#[derive(Debug, Default)]
pub struct PidFiles(Vec<PathBuf>);

/// The pid in `path` if a keepxdp or keepalived runs under it (a stale file, or a pid reused
/// by something else, does not count).
pub fn running_owner(path: &Path) -> Option<(u32, String)> {
    let pid: u32 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    if pid == std::process::id() {
        return None;
    }
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim();
    (comm == "keepxdp" || comm == "keepalived").then(|| (pid, comm.to_string()))
}

impl PidFiles {
    /// Refuses when any of `paths` names a running keepxdp/keepalived, then writes them all.
    pub fn claim(paths: &[PathBuf]) -> Result<PidFiles> {
        for path in paths {
            if let Some((pid, name)) = running_owner(path) {
                bail!("{name} is already running (pid {pid}): its pid file is {}", path.display());
            }
        }
        let mut written = PidFiles::default();
        for path in paths {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            fs::write(path, format!("{}\n", std::process::id())).with_context(|| format!("writing pid file {}", path.display()))?;
            written.0.push(path.clone());
        }
        Ok(written)
    }
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let ours = fs::read_to_string(path).is_ok_and(|text| text.trim() == std::process::id().to_string());
            if ours {
                let _ = fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/keepxdp.pid");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A pid nothing runs under (pid_max is below 2^22).
        fs::write(&path, "4999999\n").unwrap();
        let files = PidFiles::claim(std::slice::from_ref(&path)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        drop(files);
        assert!(!path.exists());
    }
}
