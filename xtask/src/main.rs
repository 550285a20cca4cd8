//! `cargo xtask`: everything needed to go from a fresh machine to a running, tested keepxdp.
//! Every subcommand first runs `setup`, which installs only what is missing.
mod bench;
mod deb;
mod demo;
mod ebpf;
mod fuzz;
mod setup;
mod shell;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing: apt packages, bpf-linker 0.13.0 (LLVM 22), rust-src.
    Setup,
    /// Build vrrp-ebpf and lvs-ebpf for bpfel-unknown-none (release, with BTF).
    BuildEbpf,
    /// build-ebpf, then the userspace with the objects embedded: target/release/keepxdp.
    Build,
    /// Build, then run `keepxdp ARGS` (as root).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// build, then target/debian/keepxdp_*.deb (cargo-deb): binary, unit, man pages,
    /// completions, docs.
    Deb,
    /// Unit tests, then BPF tests (BPF_PROG_TEST_RUN), then lab tests (netns), in that order.
    Test,
    /// The load-balancer pair survives its failures: a netns lab (two keepxdp LBs as a VRRP
    /// pair, three real servers, a client), each step measured, a summary table at the end.
    Demo(demo::DemoArgs),
    /// Per-packet cost of the guard beside a bare XDP_PASS, measured in one run.
    Bench,
    /// cargo-fuzz (libFuzzer) on the parsers of outside input; crashes are saved under
    /// fuzz/regressions/ and replayed by the unit tests.
    Fuzz {
        /// One target (default: all of them, one after the other).
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    setup::setup()?;
    match cli.command {
        Command::Setup => Ok(()),
        Command::BuildEbpf => ebpf::build_ebpf().map(|_| ()),
        Command::Build => ebpf::build_all(),
        Command::Run { args } => {
            ebpf::build_all()?;
            shell::run_binary(&shell::root().join("target/release/keepxdp"), &args)
        }
        Command::Deb => deb::deb().map(|_| ()),
        Command::Test => test::test(),
        Command::Demo(args) => demo::demo(&args),
        Command::Bench => bench::bench(),
        Command::Fuzz { target, seconds } => fuzz::fuzz(target, seconds),
    }
}
