//! `cargo xtask deb`: target/debian/keepxdp_VERSION-1_ARCH.deb, built by cargo-deb from
//! vrrp-user's [package.metadata.deb]: the release keepxdp (XDP objects embedded) in
//! /usr/sbin, contrib/keepxdp.service, man pages and completions that the binary writes from
//! its own clap command, /etc/default/keepxdp, README, docs and an example keepalived.conf.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{ebpf, shell};

/// Generated files the package's assets name (`target/release/deb-assets/…` in the metadata).
const ASSETS: &str = "target/release/deb-assets";

/// Builds the package; returns its path.
pub fn deb() -> Result<PathBuf> {
    let started = Instant::now();
    ebpf::build_all()?;
    let built = started.elapsed();
    let root = shell::root();
    let binary = root.join("target/release/keepxdp");
    let assets = root.join(ASSETS);
    if assets.exists() {
        std::fs::remove_dir_all(&assets).with_context(|| format!("removing {}", assets.display()))?;
    }
    for what in ["man", "completions"] {
        shell::run(Command::new(&binary).args(["generate", what]).arg(assets.join(what)))?;
    }
    // Debian policy: man pages gzipped (-n: no name or time inside, the package reproduces).
    let pages: Vec<PathBuf> = std::fs::read_dir(assets.join("man"))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    shell::run(Command::new("gzip").arg("-9nf").args(&pages))?;
    let out_dir = root.join("target/debian");
    std::fs::create_dir_all(&out_dir)?;
    for old in debs_in(&out_dir)? {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    // --no-build: cargo-deb would build without the eBPF objects step; build_all did it all.
    shell::run(
        shell::cargo()
            .current_dir(&root)
            .args(["deb", "-p", "keepxdp", "--no-build", "--output"])
            .arg(&out_dir),
    )?;
    let package = match debs_in(&out_dir)?.as_slice() {
        [one] => one.clone(),
        other => bail!("cargo deb wrote {} .deb files into {} (expected one)", other.len(), out_dir.display()),
    };
    eprintln!(
        "deb: {} ({} KiB; release build {:.1?}, package {:.1?})",
        package.display(),
        std::fs::metadata(&package)?.len() / 1024,
        built,
        started.elapsed() - built
    );
    Ok(package)
}

fn debs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .collect())
}

