//! The load-balancer pair survives the Master's death: two keepxdp nodes (lb1 priority 150,
//! lb2 100, VRRPv3 advert_int 0.3 s), three real servers, 10 echo + 10 stream connections
//! and a stream of new HTTP requests through the VIP. lb1's keepxdp is killed with SIGKILL
//! and its links go down (a dead host); lb2 must hold the VIPs within Master_Down_Interval +
//! 200 ms, every established connection must keep working, new requests may fail only
//! inside the takeover window; then lb1 comes back, preempts, and loses no connection either.
use std::time::Duration;

use anyhow::{Result, ensure};
use keepxdp_lab::require_root;
use keepxdp_tests::pair_lab::{
    PairLab, Variant,
    config::{NODES, master_down_interval},
    failover::{self, Failover},
    load::Kind,
};

const PER_KIND: usize = 10;
/// A connection may not stall longer than this beyond the takeover window (DR).
const STALL: Duration = Duration::from_secs(1);
/// NAT: a server-first reply reaching the new Master for a client it has no neighbour entry
/// for yet fails bpf_fib_lookup (NO_NEIGH) and goes to the stack; the next TCP retransmission
/// (one backoff later, ~3.4 s after the kill) gets through. Seen in CI on an idle machine
/// too; a known gap (resolve the client side's next hops on becoming Master), as lab_sync.
const NAT_STALL: Duration = Duration::from_secs(3);
/// Slack on the takeover bound: the VIP is added by netlink after the timer fires.
const TAKEOVER_SLACK: Duration = Duration::from_millis(200);

fn pair_survives_the_masters_death(variant: Variant) -> Result<()> {
    require_root()?;
    let mut lab = PairLab::new(variant)?;
    lab.start_node(0)?;
    lab.start_node(1)?;
    lab.wait_for_master(0, Duration::from_secs(15))?;
    lab.wait_for_resolved(1, Duration::from_secs(10))?;
    let run = failover::run(&mut lab, 0, PER_KIND, Duration::from_millis(1500), &mut ())?;
    let logs = lab.logs();
    print_numbers(variant, &run);
    let bound = master_down_interval(NODES[1].1) + TAKEOVER_SLACK;

    ensure!(run.takeover() <= bound, "{}: lb2 held the VIPs {} ms after the kill; bound {} ms", variant.name(), run.takeover().as_millis(), bound.as_millis());
    let mut failures = Vec::new();
    for kind in [Kind::Echo, Kind::Stream] {
        let (opened, surviving) = run.survival(kind);
        if surviving != opened {
            let lost: Vec<String> = run
                .load
                .connections
                .iter()
                .filter(|c| c.kind == kind)
                .filter_map(|c| c.error.as_ref().map(|(at, e)| format!("{} at +{} ms: {e}", c.server, at.saturating_duration_since(run.killed).as_millis())))
                .collect();
            failures.push(format!("{}: {surviving} of {opened} {} connections survived; lost: {lost:?}", variant.name(), kind.name()));
        }
        for connection in run.load.connections.iter().filter(|c| c.kind == kind && c.error.is_none()) {
            let stalls = run.stalls(connection, if variant.name() == "NAT" { NAT_STALL } else { STALL });
            if !stalls.is_empty() {
                failures.push(format!("{}: a {} connection to {} stalled (at +ms from the kill, for ms): {:?}", variant.name(), kind.name(), connection.server, stalls.iter().map(|(a, l)| (a.as_millis(), l.as_millis())).collect::<Vec<_>>()));
            }
        }
    }
    let outside = run.failed_outside();
    if !outside.is_empty() {
        let detail: Vec<String> = outside.iter().map(|r| format!("+{} ms: {:?}", r.started.saturating_duration_since(run.killed).as_millis() as i128, r.outcome)).collect();
        failures.push(format!("{}: {} new requests failed outside the takeover window: {detail:?}", variant.name(), outside.len()));
    }
    ensure!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
    let answered = run.load.answered_by();
    ensure!(answered.len() == 3, "every real server answers new requests: {answered:?}");
    ensure!(run.load.requests.iter().filter(|r| r.started > run.took_over && r.outcome.is_ok()).count() > 10, "requests succeed after the takeover");
    ensure!(run.load.requests.iter().filter(|r| r.started > run.preempted && r.outcome.is_ok()).count() > 10, "requests succeed after the preempt");
    Ok(())
}

fn print_numbers(variant: Variant, run: &Failover) {
    let bound = master_down_interval(NODES[1].1);
    println!("{}: takeover {} ms after the kill (Master_Down_Interval {} ms); preempt {} ms after the return", variant.name(), run.takeover().as_millis(), bound.as_millis(), run.preempt().as_millis());
    for kind in [Kind::Echo, Kind::Stream] {
        let (opened, surviving) = run.survival(kind);
        let longest = run.load.connections.iter().filter(|c| c.kind == kind).map(|c| c.longest_gap().0).max().unwrap_or_default();
        println!("{}: {} {surviving}/{opened} survived, longest gap {} ms", variant.name(), kind.name(), longest.as_millis());
    }
    let failed = run.load.failed_requests();
    let span = match (failed.first(), failed.last()) {
        (Some(first), Some(last)) => format!(
            ", from +{} to +{} ms after the kill",
            first.started.saturating_duration_since(run.killed).as_millis(),
            last.ended.saturating_duration_since(run.killed).as_millis()
        ),
        _ => String::new(),
    };
    println!("{}: new requests {} sent, {} failed{span}, {} outside the takeover window; answered by {:?}", variant.name(), run.load.requests.len(), failed.len(), run.failed_outside().len(), run.load.answered_by());
}

#[test]
fn lab_dr_pair_takes_over_within_master_down_interval_and_keeps_every_connection_through_failover_and_preempt() -> Result<()> {
    pair_survives_the_masters_death(Variant::Dr)
}

#[test]
fn lab_nat_pair_takes_over_within_master_down_interval_and_keeps_every_connection_through_failover_and_preempt() -> Result<()> {
    pair_survives_the_masters_death(Variant::Nat)
}
