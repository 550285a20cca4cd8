//! `cargo xtask fuzz [TARGET] [--seconds N]`: cargo-fuzz (libFuzzer) on the parsers that take
//! bytes from outside — the config reader, VRRP adverts, ARP/NA, IPVS netlink, HTTP replies,
//! DNS/SMTP/UDP checker replies, control socket requests (vrrp-user/src/fuzzing.rs). Each run
//! starts from fuzz/seeds/TARGET (and keepalived's own samples for `config`), keeps its
//! corpus in fuzz/corpus/TARGET, and copies any crash into fuzz/regressions/TARGET, which
//! `cargo test -p keepxdp` replays.
use std::{fs, path::Path, process::Command, time::Instant};

use anyhow::{Context, Result, bail};

use crate::{ebpf::EbpfToolchain, shell};

pub const TARGETS: &[&str] =
    &["config", "vrrp_advert", "arp_na", "ipvs_netlink", "http_response", "checker_replies", "control_request"];

const CARGO_FUZZ_VERSION: &str = "0.13.1";

/// One target's run.
#[derive(Debug)]
pub struct Run {
    pub target: String,
    pub seconds: f64,
    pub execs: u64,
    pub corpus: usize,
    pub crashes: Vec<String>,
}

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = shell::output(shell::cargo().args(["fuzz", "--version"])).unwrap_or_default();
    if installed.contains(CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    eprintln!("fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    shell::run(shell::cargo().args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--locked"]))
}

fn copy_files(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(from) else { return Ok(()) };
    for entry in entries.flatten() {
        if entry.path().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// `stat::number_of_executed_units: N` from libFuzzer's final stats.
fn executed_units(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|n| n.trim().parse().ok())
        .last()
        .unwrap_or(0)
}

pub fn run_target(target: &str, seconds: u64) -> Result<Run> {
    let fuzz = shell::root().join("fuzz");
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    fs::create_dir_all(&corpus)?;
    fs::create_dir_all(&artifacts)?;
    copy_files(&fuzz.join("seeds").join(target), &corpus)?;
    if target == "config" {
        copy_files(Path::new("/usr/share/doc/keepalived/samples"), &corpus)?;
    }
    let before: std::collections::BTreeSet<_> = fs::read_dir(&artifacts)?.flatten().map(|e| e.file_name()).collect();
    // Built first, so the time below is the fuzzing alone.
    shell::run(EbpfToolchain::detect().cargo().current_dir(&fuzz).args(["fuzz", "build", target]))?;
    let started = Instant::now();
    let mut command: Command = EbpfToolchain::detect().cargo();
    command
        .current_dir(&fuzz)
        .args(["fuzz", "run", target])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-max_len=8192", "-timeout=10", "-rss_limit_mb=4096"]);
    let output = command.output().with_context(|| format!("running {}", shell::describe(&command)))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let crashes: Vec<String> = fs::read_dir(&artifacts)?
        .flatten()
        .map(|e| e.file_name())
        .filter(|name| !before.contains(name))
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    if !crashes.is_empty() {
        let saved = fuzz.join("regressions").join(target);
        fs::create_dir_all(&saved)?;
        for name in &crashes {
            fs::copy(artifacts.join(name), saved.join(name))?;
        }
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        eprintln!("fuzz {target}: {} crash(es), saved in {}\n{}", crashes.len(), saved.display(), tail.join("\n"));
    } else if !output.status.success() {
        bail!("cargo fuzz run {target} failed:\n{stderr}");
    }
    let corpus_size = fs::read_dir(&corpus)?.count();
    Ok(Run { target: target.into(), seconds: started.elapsed().as_secs_f64(), execs: executed_units(&stderr), corpus: corpus_size, crashes })
}

pub fn fuzz(target: Option<String>, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    crate::ebpf::build_ebpf()?;
    let targets: Vec<String> = match target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t],
        Some(t) => bail!("unknown fuzz target `{t}`; targets: {}", TARGETS.join(", ")),
        None => TARGETS.iter().map(|t| t.to_string()).collect(),
    };
    let mut runs = Vec::new();
    for target in &targets {
        eprintln!("== fuzz {target} for {seconds} s");
        runs.push(run_target(target, seconds)?);
    }
    println!("| target | seconds | execs | execs/s | corpus | crashes |\n|---|---|---|---|---|---|");
    for run in &runs {
        println!(
            "| {} | {:.0} | {} | {:.0} | {} | {} |",
            run.target,
            run.seconds,
            run.execs,
            run.execs as f64 / run.seconds.max(1.0),
            run.corpus,
            run.crashes.len()
        );
    }
    let crashed: Vec<&str> = runs.iter().filter(|r| !r.crashes.is_empty()).map(|r| r.target.as_str()).collect();
    if !crashed.is_empty() {
        bail!("crashes in {}: each is saved under fuzz/regressions/ (replayed by cargo test -p keepxdp); fix and rerun", crashed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_executed_units_come_from_the_final_stats() {
        let stderr = "#1024 pulse\nstat::number_of_executed_units: 123456\nstat::average_exec_per_sec: 2000\n";
        assert_eq!(super::executed_units(stderr), 123456);
    }

    #[test]
    fn xtask_and_the_library_list_the_same_targets() {
        let fuzzing = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../vrrp-user/src/fuzzing.rs")).unwrap();
        for target in super::TARGETS {
            assert!(fuzzing.contains(&format!("(\"{target}\", {target})")), "{target} missing from fuzzing::TARGETS");
            assert!(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/fuzz_targets")).join(format!("{target}.rs")).exists());
        }
    }
}
