//! `cargo xtask demo`: the load-balancer pair's story told on the pair lab the tests use
//! (`pair_lab`): the pair elects a Master, requests spread over the real servers, a real
//! server fails and its HTTP_GET takes it out, the Master dies (kill -9, links down) and the
//! Backup takes over while established connections keep working, the old Master comes back
//! and preempts. One progress line per step, a summary table of what was measured at the end.
//! The binary is `src/bin/keepxdp-demo.rs`; `tests/lab_demo.rs` runs it and checks the numbers.
pub mod interrupt;
pub mod keep;
pub mod summary;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use keepxdp_lab::process::wait_for;

use crate::{
    lvs_lab::{lvs_json, requests},
    pair_lab::{
        PairLab, VIP, Variant,
        config::{HTTP_PORT, NODES, master_down_interval},
        failover::{self, Progress},
        load::{Kind, LOST_AFTER, Load},
    },
};
use summary::{Connections, Failover, LabPaths, NodePaths, Requests, ServerFailure, Summary};

/// The real server that fails (rs2).
const FAILING: usize = 1;
/// The pair lab's HTTP_GET timing (seconds; `pair_lab/config.rs` and the templates write
/// them): a stopped server is out within delay_loop × (retry + 1) + connect_timeout.
const DELAY_LOOP: u64 = 1;
const RETRY: u64 = 1;
const CONNECT_TIMEOUT: u64 = 1;
/// What polling `keepxdp lvs --json` adds to the measured removal, on a loaded machine.
const POLL_ALLOWANCE: Duration = Duration::from_millis(500);
/// How long the Backup serves alone before the old Master comes back: longer than a
/// connection may stay silent (TCP's retransmission backoff across the takeover can reach
/// 3.4 s), so every connection that survives is seen talking through the Backup.
const HOLD: Duration = LOST_AFTER.checked_add(Duration::from_millis(500)).unwrap();
/// Slack on the takeover bound: the VIPs are added by netlink after the timer fires.
const TAKEOVER_SLACK: Duration = Duration::from_millis(200);

pub struct Options {
    /// The NAT pair (the DR one otherwise).
    pub nat: bool,
    /// HTTP requests in the spread step.
    pub requests: u16,
    /// Long-lived connections of each kind through the failover.
    pub per_kind: usize,
    /// How long traffic flows between the failover's steps.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { nat: false, requests: 300, per_kind: 10, settle: Duration::from_millis(1500) }
    }
}

impl Options {
    pub fn variant(&self) -> Variant {
        if self.nat { Variant::Nat } else { Variant::Dr }
    }

    /// The template the nodes' configurations come from (embedded by `pair_lab/config.rs`).
    pub fn template_path(&self) -> String {
        format!("{}/src/pair_lab/{}", env!("CARGO_MANIFEST_DIR"), if self.nat { "nat.conf" } else { "dr.conf" })
    }
}

/// Prints a step: `[ 12.3 s] text`, time since the demo started. Stops the story (an error)
/// once Ctrl-C or SIGTERM has arrived.
pub struct Printer {
    pub started: Instant,
}

impl Progress for Printer {
    fn step(&mut self, text: &str) -> Result<()> {
        interrupt::check()?;
        println!("[{:5.1} s] {text}", self.started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Tells the story on a new lab; returns the lab (still up) and what was measured.
pub fn run(options: &Options, printer: &mut Printer) -> Result<(PairLab, Summary)> {
    let variant = options.variant();
    let mut lab = PairLab::new(variant)?;
    let servers: Vec<String> = lab.real_servers.iter().map(|s| format!("{} {}", s.name, s.address)).collect();
    printer.step(&format!(
        "lab up ({}): client {}, LBs lb1 and lb2, real servers {} (each HTTP :80, line echo :5000, push stream :5001), VIP {VIP}",
        variant.name(),
        crate::pair_lab::CLIENT,
        servers.join(", ")
    ))?;

    let (election_ms, master) = elect(&mut lab, options, printer)?;
    let (requests_sent, answered_by) = spread(&lab, options, printer)?;
    let server_failure = fail_a_server(&mut lab, printer)?;
    let failover = fail_over(&mut lab, options, printer)?;
    let summary = Summary {
        variant: variant.name().to_string(),
        election_ms,
        master,
        requests: requests_sent,
        answered_by,
        server_failure,
        failover,
        wall_ms: printer.started.elapsed().as_millis() as u64,
        lab: paths(&lab),
    };
    Ok((lab, summary))
}

/// Both keepxdps start; lb1 (priority 150) must become Master with every VIP, lb2 Backup.
fn elect(lab: &mut PairLab, options: &Options, printer: &mut Printer) -> Result<(u64, String)> {
    let started = Instant::now();
    lab.start_node(0)?;
    lab.start_node(1)?;
    let configs: Vec<String> = lab.nodes.iter().flatten().map(|k| k.config_path.display().to_string()).collect();
    printer.step(&format!(
        "keepxdp started on lb1 (priority {}) and lb2 (priority {}), both state BACKUP with preempt; config: the pair lab's, embedded from {}, written to {}",
        NODES[0].1,
        NODES[1].1,
        options.template_path(),
        configs.join(" and ")
    ))?;
    wait_for("lb1 Master with the VIPs, lb2 Backup", Duration::from_secs(15), || {
        interrupt::check()?;
        Ok(lab.is_master(0)? && lab.holds_vips(0)? && lab.holds_no_vip(1)? && lab.states(1)?.iter().all(|s| s == "Backup"))
    })
    .with_context(|| lab.logs())?;
    let election = started.elapsed();
    let vips: Vec<&str> = lab.variant.vips().into_iter().map(|(_, vip)| vip).collect();
    printer.step(&format!("lb1 is Master with {} {} ms after keepxdp started; lb2 is Backup", vips.join(" and "), election.as_millis()))?;
    lab.wait_for_master(0, Duration::from_secs(10))?;
    lab.wait_for_resolved(1, Duration::from_secs(10))?;
    Ok((election.as_millis() as u64, NODES[0].0.to_string()))
}

/// `options.requests` new HTTP requests through the VIP: who answered.
fn spread(lab: &PairLab, options: &Options, printer: &mut Printer) -> Result<(usize, std::collections::BTreeMap<String, u32>)> {
    interrupt::check()?;
    let answered = requests(&lab.client, options.requests, 20000)?;
    let counts: Vec<String> = answered.iter().map(|(server, n)| format!("{server} {n}")).collect();
    printer.step(&format!("{} HTTP requests through the VIP, spread by Maglev (weights 1:1:1): {}", options.requests, counts.join(", ")))?;
    Ok((options.requests as usize, answered))
}

/// rs2's HTTP stops while new requests flow: its HTTP_GET takes it out of the rings; then
/// it comes back.
fn fail_a_server(lab: &mut PairLab, printer: &mut Printer) -> Result<ServerFailure> {
    let (name, address) = (lab.real_servers[FAILING].name.clone(), lab.real_servers[FAILING].address);
    let load = Load::start(&lab.client, 0, Some(2000))?;
    interrupt::pause(Duration::from_millis(500))?;
    let stopped = Instant::now();
    lab.real_servers[FAILING].http.stop();
    printer.step(&format!("{name}'s HTTP server stops (connections to it are refused); new requests every 25 ms"))?;
    wait_for(&format!("{name} out of lb1's ring"), Duration::from_secs(10), || {
        interrupt::check()?;
        Ok(http_ring_slots(lab, 0, address)? == 0)
    })
    .with_context(|| lab.logs())?;
    let removed = Instant::now();
    let removal = removed - stopped;
    printer.step(&format!(
        "{name} out of lb1's ring {} ms after its HTTP stopped (HTTP_GET: delay_loop {DELAY_LOOP}, retry {RETRY}, connect_timeout {CONNECT_TIMEOUT})",
        removal.as_millis()
    ))?;
    interrupt::pause(Duration::from_secs(1))?;
    let report = load.stop()?;
    let in_window = |from: Instant, to: Option<Instant>| {
        Requests::of(report.requests.iter().filter(|r| r.started >= from && to.is_none_or(|to| r.started < to)).map(|r| r.outcome.is_ok()))
    };
    let (before, after) = (in_window(stopped, Some(removed)), in_window(removed, None));
    printer.step(&format!(
        "new requests: {} of {} failed while {name} was in the ring, {} of {} after it was out",
        before.failed, before.sent, after.failed, after.sent
    ))?;

    lab.real_servers[FAILING].http.restart()?;
    let restarted = Instant::now();
    for node in 0..2 {
        wait_for(&format!("{name} back in lb{}'s ring", node + 1), Duration::from_secs(10), || {
            interrupt::check()?;
            Ok(http_ring_slots(lab, node, address)? > 0)
        })
        .with_context(|| lab.logs())?;
    }
    let back = restarted.elapsed();
    printer.step(&format!("{name}'s HTTP server is back: in both nodes' rings {} ms later", back.as_millis()))?;
    Ok(ServerFailure {
        server: name,
        removal_ms: removal.as_millis() as u64,
        removal_bound_ms: (Duration::from_secs(DELAY_LOOP * (RETRY + 1) + CONNECT_TIMEOUT) + POLL_ALLOWANCE).as_millis() as u64,
        before_removal: before,
        after_removal: after,
        return_ms: back.as_millis() as u64,
    })
}

/// The Master dies under load, the Backup takes over, the Master comes back and preempts
/// (`pair_lab::failover`); what the connections and requests went through.
fn fail_over(lab: &mut PairLab, options: &Options, printer: &mut Printer) -> Result<Failover> {
    let run = failover::run_holding(lab, 0, options.per_kind, options.settle, HOLD, printer)?;
    let connections: Vec<Connections> = [Kind::Echo, Kind::Stream]
        .into_iter()
        .map(|kind| {
            let of_kind: Vec<_> = run.load.connections.iter().filter(|c| c.kind == kind).collect();
            Connections {
                kind: kind.name().to_string(),
                opened: of_kind.len(),
                through_takeover: of_kind.iter().filter(|c| c.events.iter().any(|e| *e > run.took_over && *e < run.revived)).count(),
                through_preempt: of_kind.iter().filter(|c| c.error.is_none() && c.events.iter().any(|e| *e > run.preempted)).count(),
                longest_silence_ms: of_kind.iter().map(|c| c.longest_gap().0).max().unwrap_or_default().as_millis() as u64,
            }
        })
        .collect();
    let kept: Vec<String> = connections
        .iter()
        .map(|c| {
            format!(
                "{} {}/{} through the takeover and {}/{} through the preempt (longest silence {} ms)",
                c.kind, c.through_takeover, c.opened, c.through_preempt, c.opened, c.longest_silence_ms
            )
        })
        .collect();
    printer.step(&format!("established connections kept working: {}", kept.join("; ")))?;
    Ok(Failover {
        master: NODES[0].0.to_string(),
        backup: NODES[1].0.to_string(),
        takeover_ms: run.takeover().as_millis() as u64,
        takeover_bound_ms: (master_down_interval(NODES[1].1) + TAKEOVER_SLACK).as_millis() as u64,
        connections,
        requests: Requests::of(run.load.requests.iter().map(|r| r.outcome.is_ok())),
        failed_outside_takeover: run.failed_outside().len(),
        preempt_ms: run.preempt().as_millis() as u64,
    })
}

/// `real`'s ring slots in node `node`'s HTTP service (0 when it is not listed).
fn http_ring_slots(lab: &PairLab, node: usize, real: &str) -> Result<u64> {
    let table = lvs_json(lab.node(node)?, &lab.lbs[node])?;
    let service = format!("{VIP}:{HTTP_PORT}");
    Ok(table["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["address"].as_str() == Some(service.as_str()))
        .flat_map(|s| s["backends"].as_array().cloned().unwrap_or_default())
        .find(|b| b["address"].as_str().is_some_and(|a| a.split(':').next() == Some(real)))
        .and_then(|b| b["ring_slots"].as_u64())
        .unwrap_or(0))
}

/// The lab's names and paths.
pub fn paths(lab: &PairLab) -> LabPaths {
    let mut namespaces: Vec<String> = vec![lab.outer.netns.name.clone()];
    namespaces.extend(lab.inner.iter().map(|s| s.netns.name.clone()));
    namespaces.push(lab.client.name.clone());
    namespaces.extend(lab.lbs.iter().map(|n| n.name.clone()));
    namespaces.extend(lab.real_servers.iter().map(|s| s.netns.name.clone()));
    let nodes = lab
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(n, k)| k.as_ref().map(|k| (n, k)))
        .map(|(n, k)| NodePaths {
            name: NODES[n].0.to_string(),
            namespace: lab.lbs[n].name.clone(),
            control_socket: k.control_socket.display().to_string(),
            pin_dir: k.pin_dir.display().to_string(),
            config: k.config_path.display().to_string(),
            log: k.child.log.display().to_string(),
            pid: k.child.pid(),
        })
        .collect();
    LabPaths { pid: std::process::id(), dir: lab.dir.path().display().to_string(), namespaces, nodes }
}

/// The keepxdp the demo runs: KEEPXDP_BIN, or the keepxdp beside the demo binary.
pub fn keepxdp_binary() -> Result<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("KEEPXDP_BIN") {
        return Ok(path.into());
    }
    let beside = std::env::current_exe()?.with_file_name("keepxdp");
    anyhow::ensure!(beside.is_file(), "no keepxdp at {} and KEEPXDP_BIN is not set: run `cargo xtask demo`, which builds it", beside.display());
    Ok(beside)
}

/// The lab's namespaces still present (after a teardown: none).
pub fn namespaces_left(lab: &LabPaths) -> Vec<String> {
    lab.namespaces.iter().filter(|n| Path::new(&format!("/run/netns/{n}")).exists()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_removal_bound_follows_the_pair_labs_http_get() {
        for variant in [Variant::Dr, Variant::Nat] {
            let config = crate::pair_lab::config::node_config(variant, 0, &["10.0.0.11"]);
            for line in [format!("delay_loop {DELAY_LOOP}"), format!("retry {RETRY}"), format!("connect_timeout {CONNECT_TIMEOUT}"), format!("delay_before_retry {DELAY_LOOP}")] {
                assert!(config.lines().any(|l| l.trim() == line), "{line:?} not in\n{config}");
            }
        }
    }

    #[test]
    fn the_template_named_is_the_one_embedded() {
        for nat in [false, true] {
            let options = Options { nat, ..Options::default() };
            let text = std::fs::read_to_string(options.template_path()).unwrap();
            let embedded = if nat { crate::pair_lab::config::NAT_TEMPLATE } else { crate::pair_lab::config::DR_TEMPLATE };
            assert_eq!(text, embedded);
        }
    }
}
