//! The demo `cargo xtask demo` runs (and `tests/lab_demo.rs` checks): the load-balancer pair
//! survives its failures, told on the tests' pair lab (`keepxdp_tests::demo`). In the tests
//! crate because the lab attaches XDP programs with the balancer object. `KEEPXDP_BIN` names
//! the keepxdp to run (default: the one beside this binary).
use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::Result;
use clap::Parser;
use keepxdp_tests::{
    demo::{self, Options, Printer, interrupt, keep},
    pair_lab::config::HTTP_PORT,
};

#[derive(Parser)]
#[command(name = "keepxdp-demo", about = "The keepxdp load-balancer pair survives its failures: a netns lab, measured")]
struct Cli {
    /// The NAT pair (front VIP and the real servers' gateway VIP in one sync group) instead of DR.
    #[arg(long)]
    nat: bool,
    /// Leave the lab up after the summary and print the commands to explore it; Ctrl-C (or
    /// `--down` from another shell) tears it down.
    #[arg(long)]
    keep: bool,
    /// Tear down a lab left up by `--keep`, then exit.
    #[arg(long, conflicts_with_all = ["nat", "keep", "json"])]
    down: bool,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Whatever step noticed it (the terminal's Ctrl-C also reaches the lab's keepxdps).
        Err(_) if interrupted() => {
            eprintln!("interrupted: the lab is torn down (keepxdp stopped, namespaces deleted)");
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("demo failed: {error:#}\nthe lab is torn down (keepxdp stopped, namespaces deleted)");
            ExitCode::FAILURE
        }
    }
}

fn interrupted() -> bool {
    interrupt::interrupted()
}

fn run(cli: &Cli) -> Result<()> {
    keepxdp_lab::require_root()?;
    if cli.down {
        println!("{}", keep::down()?);
        return Ok(());
    }
    let keepxdp = demo::keepxdp_binary()?;
    // The lab starts (and restarts) keepxdp from KEEPXDP_BIN. Set before any thread exists.
    // SAFETY: single-threaded here.
    unsafe { std::env::set_var("KEEPXDP_BIN", &keepxdp) };
    interrupt::install()?;
    let options = Options { nat: cli.nat, ..Options::default() };
    let mut printer = Printer { started: Instant::now() };
    println!(
        "keepxdp demo: a {} load-balancer pair survives its failures (keepxdp {}; Ctrl-C tears the lab down)",
        options.variant().name(),
        keepxdp.display()
    );
    let (lab, summary) = demo::run(&options, &mut printer)?;
    println!("\n{}", summary.table());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)?;
    }
    if cli.keep {
        keep::record(&summary.lab)?;
        println!("{}", keep::explore(&summary.lab, &keepxdp, HTTP_PORT));
        interrupt::wait();
        println!("tearing the lab down");
    }
    let teardown = Instant::now();
    drop(lab);
    keep::forget();
    let left = demo::namespaces_left(&summary.lab);
    anyhow::ensure!(left.is_empty(), "namespaces left after the teardown: {left:?}");
    println!(
        "[{:5.1} s] lab torn down in {:.1} s: keepxdp stopped on lb1 and lb2, {} namespaces deleted",
        printer.started.elapsed().as_secs_f64(),
        teardown.elapsed().as_secs_f64(),
        summary.lab.namespaces.len()
    );
    Ok(())
}
