//! `cargo xtask demo` as a test: the demo binary run non-interactively, as the xtask runs it
//! (KEEPXDP_BIN set, `--json FILE` for its summary), on the DR pair and — kept up with
//! `--keep`, explored, then ended by `--down` — on the NAT pair; and interrupted by SIGINT
//! half-way. The summary's numbers must hold: takeover within Master_Down_Interval + 200 ms,
//! every established connection through the takeover and the preempt, requests spread over
//! the real servers, the failed one taken out by its HTTP_GET while requests keep succeeding,
//! the whole story under 2 minutes; and nothing of the lab may be left afterwards.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use keepxdp_lab::require_root;
use keepxdp_tests::{
    demo::summary::{LabPaths, Summary},
    keepxdp_bin,
    pair_lab::{
        config::{NODES, master_down_interval},
        load::LOST_AFTER,
    },
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const DEMO: &str = env!("CARGO_BIN_EXE_keepxdp-demo");
/// The budget for the whole story.
const WALL: Duration = Duration::from_secs(120);
/// A demo that has not finished by then is killed (and the test fails).
const TIMEOUT: Duration = Duration::from_secs(240);
/// Per kind, as the demo opens them.
const PER_KIND: usize = 10;

/// The demo as a child process, its stdout read line by line (and echoed).
struct Demo {
    child: Child,
    lines: Receiver<String>,
    output: Vec<String>,
}

impl Demo {
    fn start(args: &[&str]) -> Result<Demo> {
        let binary = keepxdp_bin()?;
        let mut child = Command::new(DEMO).args(args).env("KEEPXDP_BIN", binary).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().context("demo stdout")?;
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("demo| {line}");
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Demo { child, lines, output: Vec::new() })
    }

    /// Reads lines until one satisfies `done` (within `timeout`).
    fn wait_line(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if done(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!("no such line from the demo within {timeout:?}; so far:\n{}", self.output.join("\n")),
                Err(RecvTimeoutError::Disconnected) => bail!("the demo closed its output; so far:\n{}", self.output.join("\n")),
            }
        }
    }

    /// Waits for the demo to exit (killing it after `timeout`), with all its output read.
    fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the demo did not finish within {timeout:?}; its output:\n{}", self.output.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.output.push(line);
        }
        Ok(self.child.wait()?)
    }

    fn text(&self) -> String {
        self.output.join("\n")
    }
}

impl Drop for Demo {
    /// A failed test still ends the demo, which then tears its lab down.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_summary(path: &Path) -> Result<Summary> {
    let text = std::fs::read_to_string(path).with_context(|| format!("the demo's --json file {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The summary's numbers against the story's promises; `output` is what the demo printed.
fn check_numbers(summary: &Summary, variant: &str, output: &str) -> Result<()> {
    ensure!(summary.variant == variant, "variant {}", summary.variant);
    ensure!(summary.master == NODES[0].0 && summary.election_ms < 15_000, "election: {} after {} ms", summary.master, summary.election_ms);

    let answered: u32 = summary.answered_by.values().sum();
    ensure!(answered as usize == summary.requests && summary.requests > 0, "{} requests sent, {answered} answered", summary.requests);
    ensure!(summary.answered_by.len() >= 2, "requests spread over one server only: {:?}", summary.answered_by);

    let failure = &summary.server_failure;
    ensure!(failure.removal_ms <= failure.removal_bound_ms, "{} out after {} ms; bound {} ms", failure.server, failure.removal_ms, failure.removal_bound_ms);
    // delay_loop 1 × (retry 1 + 1) + connect_timeout 1 s, + 0.5 s of polling.
    ensure!(failure.removal_bound_ms <= 3500, "removal bound {} ms", failure.removal_bound_ms);
    ensure!(failure.after_removal.sent > 10 && failure.after_removal.failed == 0, "requests after {} was out: {:?}", failure.server, failure.after_removal);
    ensure!(failure.before_removal.sent > 0, "no request while {} was failing", failure.server);
    ensure!(failure.return_ms < 10_000, "{} back after {} ms", failure.server, failure.return_ms);

    let failover = &summary.failover;
    let bound = (master_down_interval(NODES[1].1) + Duration::from_millis(200)).as_millis() as u64;
    ensure!(failover.takeover_bound_ms == bound, "the demo's takeover bound {} ms, Master_Down_Interval + 200 ms is {bound} ms", failover.takeover_bound_ms);
    ensure!(failover.takeover_ms <= bound, "takeover {} ms; bound {bound} ms", failover.takeover_ms);
    ensure!(failover.connections.len() == 2, "{:?}", failover.connections);
    for c in &failover.connections {
        ensure!(c.opened == PER_KIND, "{} connections opened: {}", c.kind, c.opened);
        ensure!(c.through_takeover == c.opened, "{}: {}/{} kept working through the takeover", c.kind, c.through_takeover, c.opened);
        ensure!(c.through_preempt == c.opened, "{}: {}/{} kept working through the preempt", c.kind, c.through_preempt, c.opened);
        ensure!(c.longest_silence_ms < LOST_AFTER.as_millis() as u64, "{}: silent for {} ms", c.kind, c.longest_silence_ms);
    }
    ensure!(failover.requests.sent > 50, "new requests during the failover: {:?}", failover.requests);
    ensure!(failover.failed_outside_takeover == 0, "{} new requests failed outside the takeover window", failover.failed_outside_takeover);
    ensure!(failover.preempt_ms > 0 && failover.preempt_ms < 10_000, "preempt {} ms", failover.preempt_ms);
    ensure!(summary.wall_ms < WALL.as_millis() as u64, "the story took {} ms", summary.wall_ms);

    // The table printed is this summary.
    for needle in [
        format!("measured ({variant})"),
        format!("{} ms (bound {bound} ms)", failover.takeover_ms),
        format!("{} ms (bound {} ms)", failure.removal_ms, failure.removal_bound_ms),
        format!("{PER_KIND}/{PER_KIND} through takeover, {PER_KIND}/{PER_KIND} through preempt"),
    ] {
        ensure!(output.contains(&needle), "{needle:?} not in the demo's output:\n{output}");
    }
    Ok(())
}

/// Processes whose command line mentions `needle` (the lab's keepxdps name their config in it).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Nothing of the lab of demo `pid` with files in `dir` is left: no namespace, no process,
/// no mount, no directory.
fn nothing_left(pid: u32, dir: &str) -> Result<()> {
    let prefix = format!("kx{pid}-");
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    ensure!(namespaces.is_empty(), "namespaces left: {namespaces:?}");
    let processes = processes_mentioning(&prefix);
    ensure!(processes.is_empty(), "processes left: {processes:?}");
    ensure!(!dir.is_empty(), "no lab directory known");
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    ensure!(!mounts.contains(dir), "mounts left under {dir}:\n{mounts}");
    ensure!(!Path::new(dir).exists(), "{dir} is still there");
    Ok(())
}

#[test]
fn lab_demo_dr_tells_the_story_in_under_two_minutes_and_its_numbers_hold() -> Result<()> {
    require_root()?;
    let json = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let mut demo = Demo::start(&["--json", json.path().to_str().unwrap()])?;
    let pid = demo.child.id();
    let status = demo.wait_exit(TIMEOUT)?;
    let wall = started.elapsed();
    ensure!(status.success(), "the demo exited with {status}:\n{}", demo.text());
    println!("demo wall time, start to exit: {:.1} s", wall.as_secs_f64());
    let summary = read_summary(json.path())?;
    check_numbers(&summary, "DR", &demo.text())?;
    ensure!(demo.text().contains("lab torn down"), "{}", demo.text());
    ensure!(summary.lab.pid == pid, "summary of pid {}, demo pid {pid}", summary.lab.pid);
    nothing_left(pid, &summary.lab.dir)
}

#[test]
fn lab_demo_nat_with_keep_stays_up_to_be_explored_until_down() -> Result<()> {
    require_root()?;
    let json = tempfile::NamedTempFile::new()?;
    let mut demo = Demo::start(&["--nat", "--keep", "--json", json.path().to_str().unwrap()])?;
    let pid = demo.child.id();
    demo.wait_line(TIMEOUT, |l| l.starts_with("Tear it down:"))?;
    let summary = read_summary(json.path())?;
    check_numbers(&summary, "NAT", &demo.text())?;
    let lab: &LabPaths = &summary.lab;
    ensure!(keepxdp_tests::demo::namespaces_left(lab).len() == lab.namespaces.len(), "the kept lab's namespaces: {:?}", lab.namespaces);

    // The printed commands work: curl through the VIP from the client, keepxdp status.
    let curl = demo.output.iter().find(|l| l.trim_start().starts_with("nsenter") && l.contains("curl")).context("no curl command printed")?;
    let curl = curl.split('#').next().unwrap().trim().replace("curl -s", "curl -s -m 3");
    let answer = keepxdp_lab::run("sh", &["-c", &curl])?;
    ensure!(answer.trim().starts_with("rs"), "`{curl}` answered {answer:?}");
    let lb1 = lab.nodes.iter().find(|n| n.name == NODES[0].0).context("lb1 in the summary")?;
    let status = keepxdp_lab::run(keepxdp_bin()?.to_str().unwrap(), &["status", "--json", "--control-socket", &lb1.control_socket])?;
    let status: serde_json::Value = serde_json::from_str(&status)?;
    ensure!(status["vrrp"].as_array().is_some_and(|i| !i.is_empty() && i.iter().all(|i| i["state"] == "Master")), "lb1 status: {status}");
    ensure!(demo.child.try_wait()?.is_none(), "the kept demo exited");

    // `--down` (what `cargo xtask demo --down` runs) ends it.
    let down = Command::new(DEMO).arg("--down").output()?;
    ensure!(down.status.success(), "--down: {}", String::from_utf8_lossy(&down.stderr));
    let exit = demo.wait_exit(Duration::from_secs(30))?;
    ensure!(exit.success(), "the kept demo exited with {exit} after --down:\n{}", demo.text());
    ensure!(String::from_utf8_lossy(&down.stdout).contains("tore its lab down"), "--down said {:?}", String::from_utf8_lossy(&down.stdout));
    ensure!(!Path::new(keepxdp_tests::demo::keep::STATE_FILE).exists(), "the state file is still there");
    nothing_left(pid, &lab.dir)
}

#[test]
fn lab_demo_interrupted_by_sigint_tears_the_lab_down() -> Result<()> {
    require_root()?;
    let mut demo = Demo::start(&[])?;
    let pid = demo.child.id();
    // Both keepxdps are running by this line; it names the lab's directory.
    let line = demo.wait_line(Duration::from_secs(60), |l| l.contains("keepxdp started on lb1"))?;
    let dir = line
        .split_whitespace()
        .find_map(|word| word.contains("/keepxdp-pair-").then(|| Path::new(word).parent().map(|p| p.display().to_string())).flatten())
        .context("the lab's directory in the progress line")?;
    ensure!(!processes_mentioning(&format!("kx{pid}-")).is_empty(), "no keepxdp of the lab is running");
    kill(Pid::from_raw(pid as i32), Signal::SIGINT)?;
    let status = demo.wait_exit(Duration::from_secs(30))?;
    ensure!(status.code() == Some(130), "the demo exited with {status} on SIGINT:\n{}", demo.text());
    nothing_left(pid, &dir)
}
