//! Running commands from the workspace root, loudly.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `cargo` (the rustup proxy, so `+toolchain` works) with the environment of the outer
/// `cargo xtask` cleaned of what would pin a nested build to the outer toolchain.
pub fn cargo() -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root()).env_remove("RUSTUP_TOOLCHAIN").env_remove("RUSTC");
    command
}

/// Runs `command`, echoing it first; fails naming it.
pub fn run(command: &mut Command) -> Result<()> {
    eprintln!("+ {}", describe(command));
    let status = command.status().with_context(|| format!("starting {}", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Runs `command` quietly and returns its stdout, or None when it cannot start or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

pub fn run_binary(binary: &Path, args: &[String]) -> Result<()> {
    run(Command::new(binary).args(args))
}
