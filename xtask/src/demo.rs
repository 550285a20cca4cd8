//! `cargo xtask demo`: builds keepxdp and the demo (`tests/src/bin/keepxdp-demo.rs`, the
//! tests' pair lab: two keepxdp LBs as a VRRP pair, three real servers, a client), then runs
//! it. The demo tears its lab down on Ctrl-C and SIGTERM; signals sent to this process are
//! passed on to it.
use std::{
    path::PathBuf,
    process::Command,
    sync::atomic::{AtomicI32, Ordering},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction},
    unistd::Pid,
};

use crate::{ebpf, shell};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The NAT pair (front VIP and the real servers' gateway VIP in one sync group) instead of DR.
    #[arg(long)]
    nat: bool,
    /// Leave the lab up after the summary and print the commands to explore it; Ctrl-C there
    /// (or `cargo xtask demo --down` from another shell) tears it down.
    #[arg(long)]
    keep: bool,
    /// Tear down a lab left up by `--keep`.
    #[arg(long, conflicts_with_all = ["nat", "keep", "json"])]
    down: bool,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The last SIGINT / SIGTERM this process got, not yet passed on (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    PENDING.store(signal, Ordering::Relaxed);
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    keepxdp_lab::require_root()?;
    if !args.down {
        ebpf::build_all()?;
    }
    shell::run(shell::cargo().args(["build", "--release", "-p", "keepxdp-tests", "--bin", "keepxdp-demo"]))?;
    let mut command = Command::new(shell::root().join("target/release/keepxdp-demo"));
    command.env("KEEPXDP_BIN", shell::root().join("target/release/keepxdp"));
    for (flag, on) in [("--nat", args.nat), ("--keep", args.keep), ("--down", args.down)] {
        if on {
            command.arg(flag);
        }
    }
    if let Some(path) = &args.json {
        command.arg("--json").arg(path);
    }
    run_passing_signals(command)
}

/// Runs `command`, passing on SIGINT and SIGTERM (a Ctrl-C reaches it from the terminal
/// anyway; a `kill` of this process would not), and exits with its exit code.
fn run_passing_signals(mut command: Command) -> Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(signal, &action)? };
    }
    eprintln!("+ {}", shell::describe(&command));
    let mut child = command.spawn().with_context(|| format!("starting {}", shell::describe(&command)))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let pending = PENDING.swap(0, Ordering::Relaxed);
        if pending != 0 {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::try_from(pending)?);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    match status.code() {
        Some(0) => Ok(()),
        // Interrupted: the demo said so and tore its lab down.
        Some(130) => std::process::exit(130),
        _ => bail!("the demo failed ({status})"),
    }
}
