//! The `keepxdp` command line.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};
use keepxdp::{
    bpf::{format_table, read_guard_stats},
    config::ConfigError,
    ctl::read_status,
    daemon::{RunOptions, run},
};
use tracing_subscriber::EnvFilter;
use vrrp_common::pins::DEFAULT_PIN_DIR;

const DEFAULT_CONTROL_SOCKET: &str = "/run/keepxdp.sock";

#[derive(Parser)]
#[command(name = "keepxdp", version, about = "XDP-accelerated VRRP and LVS data plane that reads keepalived.conf")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller in the foreground until SIGTERM.
    Run {
        /// keepalived.conf to read.
        #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
        config: PathBuf,
        /// Where programs and maps are pinned (a bpffs is mounted if none is there).
        #[arg(long, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// Unix socket serving the status document.
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
    /// Print the VRRP guard's counters from the pinned map (per interface, family, VRID).
    GuardStats {
        #[arg(long, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a running keepxdp's status document (JSON).
    Status {
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Config errors already read `FILE:LINE:COL: error: ...`.
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                eprintln!("{config_error}");
            } else {
                eprintln!("keepxdp: error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { config, pin_dir, control_socket } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run(RunOptions { config, pin_dir, control_socket }))
        }
        Command::GuardStats { pin_dir, json } => {
            let rows = read_guard_stats(&pin_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", format_table(&rows));
            }
            Ok(())
        }
        Command::Status { control_socket } => {
            print!("{}", read_status(&control_socket)?);
            Ok(())
        }
    }
}
