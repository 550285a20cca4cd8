//! Embeds the XDP objects built by `cargo xtask build-ebpf`, and refuses to build with a
//! missing or stale one: a plain `cargo build` never ships an old data plane silently.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::exit,
    time::SystemTime,
};

/// Each object, and what it is built from (its crate and the shared types).
const OBJECTS: [(&str, [&str; 4]); 2] = [
    ("vrrp-ebpf", ["vrrp-ebpf/src", "vrrp-ebpf/Cargo.toml", "vrrp-common/src", "vrrp-common/Cargo.toml"]),
    ("lvs-ebpf", ["lvs-ebpf/src", "lvs-ebpf/Cargo.toml", "vrrp-common/src", "vrrp-common/Cargo.toml"]),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let object_dir = target_dir.join("bpfel-unknown-none").join("release");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    for (name, sources) in OBJECTS {
        let newest_source = sources
            .iter()
            .map(|source| {
                let path = root.join(source);
                println!("cargo:rerun-if-changed={}", path.display());
                newest_mtime(&path)
            })
            .max()
            .flatten();
        let object = object_dir.join(name);
        println!("cargo:rerun-if-changed={}", object.display());
        let built = match fs::metadata(&object).and_then(|m| m.modified()) {
            Ok(time) => time,
            Err(_) => stop(&format!(
                "the XDP object {} is missing; run `cargo xtask build-ebpf` (or `cargo xtask build`) first",
                object.display()
            )),
        };
        if let Some(source_time) = newest_source
            && source_time > built {
                stop(&format!(
                    "the XDP object {} is older than its sources; run `cargo xtask build-ebpf` (or `cargo xtask build`) to rebuild it",
                    object.display()
                ));
            }
    }
    println!("cargo:rustc-env=KEEPXDP_EBPF_DIR={}", object_dir.display());
}

fn stop(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1);
}

/// Newest modification time of a file, or of any file below a directory.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_mtime(&entry.path()))
        .max()
}
