//! NAT state sync through a failover: the pair lab's NAT shape with `lvs_sync_daemon eth0
//! VI_1` and a second NAT service on the push stream's real servers, so no stateless
//! reverse translation applies to them. Under load (10 echo + 10 stream connections and new
//! HTTP requests), the Backup must have installed every long-lived connection the Master
//! synced before lb1's keepxdp is killed with SIGKILL and its links go down; on lb2 every
//! server-first stream through the shared real servers must keep flowing (their replies are
//! translated from the synced entries), and when lb1 comes back it asks lb2 for its table
//! and preempts without losing a connection. The control: the same lab without the sync
//! line loses those streams at the failover.
use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{process::wait_for, require_root};
use keepxdp_tests::pair_lab::{
    PairLab, Variant,
    config::{NODES, master_down_interval},
    failover::{self, Progress},
    load::Kind,
    sync::{self, counter},
};

const PER_KIND: usize = 10;
/// A connection may not stall longer than this beyond the takeover window. Looser than
/// lab_pair's second: a reply routed by the FIB toward a client the new Master has no
/// neighbour entry for yet is passed to the stack (which resolves it), so one more TCP
/// retransmission backoff can pass before the stream flows again (seen in lab_pair too).
const STALL: Duration = Duration::from_secs(3);

fn status(binary: &PathBuf, socket: &PathBuf) -> Result<serde_json::Value> {
    let text = keepxdp_lab::run(binary.to_str().unwrap(), &["status", "--json", "--control-socket", socket.to_str().unwrap()])?;
    Ok(serde_json::from_str(&text)?)
}

/// At the first step (connections open, before the kill): waits until the Backup installed
/// every long-lived connection, and keeps its counters.
struct SyncedBeforeKill {
    binary: PathBuf,
    backup_socket: PathBuf,
    seen: Option<serde_json::Value>,
}

impl Progress for SyncedBeforeKill {
    fn step(&mut self, text: &str) -> Result<()> {
        println!("step: {text}");
        if self.seen.is_none() {
            let mut last = serde_json::Value::Null;
            wait_for("the Backup to install every long-lived connection", Duration::from_secs(10), || {
                last = status(&self.binary, &self.backup_socket)?;
                Ok(counter(&last, "installed_new") >= 2 * PER_KIND as u64)
            })
            .with_context(|| format!("lb2's lvs_sync: {}", last["lvs_sync"]))?;
            self.seen = Some(last);
        }
        Ok(())
    }
}

#[test]
fn lab_nat_pair_with_lvs_sync_daemon_keeps_server_first_connections_through_shared_real_servers_across_failover_and_preempt() -> Result<()> {
    require_root()?;
    let mut lab = PairLab::new(Variant::Nat)?;
    lab.config_for = Some(sync::node_config);
    lab.start_node(0)?;
    lab.start_node(1)?;
    lab.wait_for_master(0, Duration::from_secs(15))?;
    lab.wait_for_resolved(1, Duration::from_secs(10))?;
    let backup = lab.node(1)?;
    let mut progress = SyncedBeforeKill { binary: backup.binary.clone(), backup_socket: backup.control_socket.clone(), seen: None };
    let master_socket = lab.node(0)?.control_socket.clone();
    let master_before = status(&backup.binary, &master_socket)?;
    let run = failover::run(&mut lab, 0, PER_KIND, Duration::from_millis(1500), &mut progress)?;
    let logs = lab.logs();

    let before = progress.seen.expect("the first step ran");
    let synced = &before["lvs_sync"];
    println!(
        "lb2 (Backup) before the kill: {} synced entries received, {} flows installed, {} refreshed, {} not installed (table full {}, unknown service {}), lvs_nat {} / {}",
        counter(&before, "received_entries"),
        counter(&before, "installed_new"),
        counter(&before, "installed_refreshed"),
        counter(&before, "not_installed_table_full") + counter(&before, "not_installed_unknown_service"),
        counter(&before, "not_installed_table_full"),
        counter(&before, "not_installed_unknown_service"),
        counter(&before, "nat_entries"),
        counter(&before, "nat_capacity"),
    );
    println!("lb1 (Master) sync counters at start: {}", master_before["lvs_sync"]);
    println!(
        "takeover {} ms (Master_Down_Interval {} ms), preempt {} ms",
        run.takeover().as_millis(),
        master_down_interval(NODES[1].1).as_millis(),
        run.preempt().as_millis()
    );
    let after_lb1 = status(&lab.node(0)?.binary, &lab.node(0)?.control_socket)?;
    let after_lb2 = status(&lab.node(1)?.binary, &lab.node(1)?.control_socket)?;
    println!("lb1 after its return: {}", after_lb1["lvs_sync"]);
    println!("lb2 after the preempt: {}", after_lb2["lvs_sync"]);

    ensure!(logs.contains("belongs to several virtual_servers"), "the stream's real servers are ambiguous for stateless reverse NAT\n{logs}");
    ensure!(counter(&before, "malformed") == 0 && counter(&before, "install_errors") == 0, "lb2: {synced}");
    let mut failures = Vec::new();
    for kind in [Kind::Stream, Kind::Echo] {
        let (opened, surviving) = run.survival(kind);
        let longest = run.load.connections.iter().filter(|c| c.kind == kind).map(|c| c.longest_gap().0).max().unwrap_or_default();
        println!("{}: {surviving}/{opened} survived, longest gap {} ms", kind.name(), longest.as_millis());
        if surviving != opened {
            let lost: Vec<String> = run
                .load
                .connections
                .iter()
                .filter(|c| c.kind == kind)
                .filter_map(|c| c.error.as_ref().map(|(at, e)| format!("{} at +{} ms: {e}", c.server, at.saturating_duration_since(run.killed).as_millis())))
                .collect();
            failures.push(format!("{surviving} of {opened} {} connections survived; lost: {lost:?}", kind.name()));
        }
        for connection in run.load.connections.iter().filter(|c| c.kind == kind && c.error.is_none()) {
            let stalls = run.stalls(connection, STALL);
            if !stalls.is_empty() {
                failures.push(format!("a {} connection to {} stalled: {stalls:?}", kind.name(), connection.server));
            }
        }
    }
    ensure!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
    // lb2 was Master: it sent the flows it started (the HTTP requests); lb1 came back,
    // asked, and got lb2's table.
    ensure!(counter(&after_lb2, "sent_entries") > 0, "lb2 sent nothing while Master: {}", after_lb2["lvs_sync"]);
    ensure!(counter(&after_lb2, "dumps_sent") >= 1 && counter(&after_lb1, "dumps_received") >= 1, "lb1's resync request was answered: lb1 {} lb2 {}", after_lb1["lvs_sync"], after_lb2["lvs_sync"]);
    ensure!(counter(&after_lb1, "malformed") == 0 && counter(&after_lb2, "malformed") == 0);
    Ok(())
}

#[test]
fn lab_control_without_lvs_sync_daemon_the_streams_through_shared_real_servers_die_at_failover() -> Result<()> {
    require_root()?;
    let mut lab = PairLab::new(Variant::Nat)?;
    lab.config_for = Some(sync::unsynced_node_config);
    lab.start_node(0)?;
    lab.start_node(1)?;
    lab.wait_for_master(0, Duration::from_secs(15))?;
    lab.wait_for_resolved(1, Duration::from_secs(10))?;
    let run = failover::run(&mut lab, 0, PER_KIND, Duration::from_millis(1500), &mut ())?;
    let (opened, surviving) = run.survival(Kind::Stream);
    let (echo_opened, echo_surviving) = run.survival(Kind::Echo);
    println!("without sync: stream (server first) {surviving}/{opened} survived; echo (client first) {echo_surviving}/{echo_opened}");
    ensure!(opened == PER_KIND && surviving < opened, "without synced state the streams' replies cannot be translated on lb2: {surviving}/{opened} survived\n{}", lab.logs());
    // Client-first connections rebuild their state from their next packet.
    ensure!(echo_surviving == echo_opened, "echo {echo_surviving}/{echo_opened}\n{}", lab.logs());
    Ok(())
}
