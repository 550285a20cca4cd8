//! Writing the dumps where keepalived does (/tmp/keepalived.data, .stats, .json), atomically
//! (a reader never sees half a file) and readable by root only, as keepalived's umask 0177.
use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use super::{
    dump::{self, DumpInput},
    signals::Request,
};

/// keepalived's default directory for its dumps.
pub const DEFAULT_DUMP_DIR: &str = "/tmp";

/// The file a request writes, keepalived's name for it.
pub fn file_name(request: Request) -> Option<&'static str> {
    match request {
        Request::Data => Some("keepalived.data"),
        Request::Stats => Some("keepalived.stats"),
        Request::Json => Some("keepalived.json"),
        _ => None,
    }
}

/// Writes `contents` to `dir/name` through a temporary file renamed over it.
pub fn write_atomically(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    let staging = dir.join(format!(".{name}.{}", std::process::id()));
    // A new file only (never through a link someone left in /tmp under that name).
    let create = || fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staging);
    let mut file = match create() {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(&staging).with_context(|| format!("removing stale {}", staging.display()))?;
            create()
        }
        other => other,
    }
    .with_context(|| format!("creating {}", staging.display()))?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", staging.display()))?;
    fs::rename(&staging, &path).with_context(|| format!("renaming {} to {}", staging.display(), path.display()))?;
    Ok(path)
}

/// Writes the dump `request` asks for into `dir` (Data, Stats, Json; others write nothing).
pub fn write(request: Request, dir: &Path, input: &DumpInput) -> Result<Option<PathBuf>> {
    let Some(name) = file_name(request) else { return Ok(None) };
    let contents = match request {
        Request::Data => dump::data_text(input),
        Request::Stats => dump::stats_text(input),
        _ => dump::json(input),
    };
    write_atomically(dir, name, &contents).map(Some)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_dump_replaces_the_old_file_whole_and_is_root_only() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "keepalived.data", "old\n").unwrap();
        let path = write_atomically(dir.path(), "keepalived.data", "new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no staging file left");
    }
}
