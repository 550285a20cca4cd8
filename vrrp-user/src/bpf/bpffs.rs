//! Making sure the pin directory is on a BPF filesystem.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sys::statfs::statfs,
};

/// statfs(2) f_type of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// A bpffs this process mounted, unmounted again by `release`.
#[derive(Debug)]
pub struct BpffsMount {
    mounted_at: Option<PathBuf>,
}

impl BpffsMount {
    pub fn mounted_here(&self) -> Option<&Path> {
        self.mounted_at.as_deref()
    }

    /// Unmounts what `ensure_bpffs` mounted on the pin directory itself, once nothing is
    /// pinned there any more.
    pub fn release(self) {
        if let Some(path) = self.mounted_at {
            // The kernel preloads `maps.debug` and `progs.debug` in a bpffs root.
            let ours_left = fs::read_dir(&path)
                .map(|entries| {
                    entries.filter_map(Result::ok).any(|e| !e.file_name().to_string_lossy().ends_with(".debug"))
                })
                .unwrap_or(true);
            if !ours_left
                && let Err(error) = umount2(&path, MntFlags::MNT_DETACH) {
                    tracing::warn!(path = %path.display(), %error, "cannot unmount the bpffs keepxdp mounted");
                }
        }
    }
}

fn is_bpffs(path: &Path) -> bool {
    statfs(path).map(|s| s.filesystem_type().0 == BPF_FS_MAGIC).unwrap_or(false)
}

/// Creates `pin_dir` on a bpffs. If its nearest existing ancestor is on a bpffs, the
/// directory is simply created there. Otherwise a bpffs is mounted: on `/sys/fs/bpf` when
/// the pin dir lies below it (the system's usual place, left mounted), else on the pin dir
/// itself (unmounted again on `release`).
pub fn ensure_bpffs(pin_dir: &Path) -> Result<BpffsMount> {
    let ancestor = pin_dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    // A bpffs on the pin dir itself, over a parent that is not one: mounted by a keepxdp
    // that left its data plane running (--keep-dataplane). Adopt it: unmount it when done.
    let parent_is_bpffs = pin_dir.parent().is_some_and(is_bpffs);
    if ancestor == pin_dir && is_bpffs(pin_dir) && !parent_is_bpffs && !pin_dir.starts_with("/sys/fs/bpf") {
        return Ok(BpffsMount { mounted_at: Some(pin_dir.to_path_buf()) });
    }
    if is_bpffs(ancestor) {
        fs::create_dir_all(pin_dir).with_context(|| format!("creating pin directory {}", pin_dir.display()))?;
        return Ok(BpffsMount { mounted_at: None });
    }
    let system = Path::new("/sys/fs/bpf");
    let (mount_point, remember) = if pin_dir.starts_with(system) && system.is_dir() {
        (system.to_path_buf(), false)
    } else {
        fs::create_dir_all(pin_dir).with_context(|| format!("creating pin directory {}", pin_dir.display()))?;
        (pin_dir.to_path_buf(), true)
    };
    mount(Some("bpffs"), &mount_point, Some("bpf"), MsFlags::empty(), None::<&str>)
        .with_context(|| format!("mounting bpffs on {}", mount_point.display()))?;
    tracing::info!(path = %mount_point.display(), "mounted bpffs");
    fs::create_dir_all(pin_dir).with_context(|| format!("creating pin directory {}", pin_dir.display()))?;
    Ok(BpffsMount { mounted_at: remember.then_some(mount_point) })
}
