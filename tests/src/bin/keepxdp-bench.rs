//! `cargo xtask bench` runs this. `guard`: the VRRP guard's per-packet cost, measured with
//! BPF_PROG_TEST_RUN beside a bare XDP_PASS program in the same run. `config`: reading and
//! validating a 10,000-real-server keepalived.conf, beside `keepalived -t` on the same file.
//! `lvs`: the XDP balancer's cost per packet beside a bare MAC swap, then its packets/s on one
//! core over a veth rig beside nftables DNAT (`../lvs_bench.rs`). `checkers`: `keepxdp run`
//! health-checking 10,000 loopback real servers: CPU, RSS, verdict → map latency
//! (`../checker_bench.rs`). `flood`: a keepalived Master and a Backup (keepxdp, then
//! keepalived) under a flood of invalid adverts: false takeovers and the Backup's CPU
//! (`keepxdp_tests::flood_lab`).
//! Ratios, not absolute numbers, are what carry from run to run on a shared VM.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use keepxdp::{bpf::Dataplane, config::Family};
use keepxdp_lab::frames::{Advert, tcp_syn};
use keepxdp_tests::{guard_with, instance};
use vrrp_common::pins::{PROG_VRRP_GUARD, PROG_XDP_PASS};

#[path = "../lvs_bench.rs"]
mod lvs_bench;
#[path = "../sync_bench.rs"]
mod sync_bench;
#[path = "../checker_bench.rs"]
mod checker_bench;

const RUNS: usize = 5;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("guard") => guard(args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(10_000_000)),
        Some("config") => config(),
        Some("failover") => failover(args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(10)),
        Some("lvs") => lvs_bench::main(&args[2..]),
        Some("sync") => sync_bench::main(&args[2..]),
        Some("checkers") => checker_bench::main(&args[2..]),
        Some("flood") => flood(&args[2..]),
        _ => anyhow::bail!("usage: keepxdp-bench guard [REPEAT] | config | failover [RUNS] | lvs [cost|rig|all] [REPEAT] | sync [ENTRIES] | checkers [SECONDS] | flood [SECONDS [RATE [keepxdp|keepalived [v2|v3]]]]"),
    }
}

/// 100 virtual servers × 100 real servers, each with a TCP_CHECK.
fn ten_thousand_real_servers() -> String {
    let mut text = String::from("global_defs {\n  router_id bench\n}\n");
    for service in 0..100u32 {
        text.push_str(&format!(
            "virtual_server 10.1.{}.{} 80 {{\n  delay_loop 1\n  lb_algo wlc\n  lb_kind NAT\n  protocol TCP\n",
            service / 250,
            service % 250 + 1
        ));
        for server in 0..100u32 {
            let n = service * 100 + server;
            text.push_str(&format!(
                "  real_server 127.{}.{}.{} 8080 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n",
                n / 65536 % 256,
                n / 256 % 256,
                n % 256
            ));
        }
        text.push_str("}\n");
    }
    text
}

fn config() -> Result<()> {
    use keepxdp::config::{LoadOptions, load};
    let dir = std::env::temp_dir().join(format!("keepxdp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("keepalived.conf");
    std::fs::write(&path, ten_thousand_real_servers())?;
    let mut ours = Vec::new();
    let mut real_servers = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let loaded = load(&path, &LoadOptions::default());
        ours.push(started.elapsed());
        anyhow::ensure!(!loaded.diagnostics.has_errors(), "the generated config has errors: {:?}", loaded.diagnostics.items.first());
        real_servers = loaded.config.map_or(0, |c| c.virtual_servers.iter().map(|v| v.real_servers.len()).sum());
    }
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = std::process::Command::new("keepalived")
            .args(["-t", "-l", "-f"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .context("running keepalived -t")?;
        theirs.push(started.elapsed());
        let _ = status;
    }
    ours.sort();
    theirs.sort();
    let ours_ms = ours[RUNS / 2].as_secs_f64() * 1000.0;
    let theirs_ms = theirs[RUNS / 2].as_secs_f64() * 1000.0;
    println!("| reader | ms (median of {RUNS}) | ÷ keepalived -t |");
    println!("|---|---|---|");
    println!("| keepxdp: read + parse + validate, {real_servers} real servers | {ours_ms:.1} | {:.2} |", ours_ms / theirs_ms);
    println!("| keepalived 2.2.7 -t on the same file | {theirs_ms:.1} | 1.00 |");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn guard(repeat: u32) -> Result<()> {
    let mut dataplane = guard_with(&[instance(51, Family::Ipv4, &[])])?;
    let pass: &mut Xdp = dataplane
        .balancer_object()
        .program_mut(PROG_XDP_PASS)
        .context("no xdp_pass program")?
        .try_into()?;
    pass.load()?;

    let tcp = tcp_syn([10, 0, 0, 100]);
    let advert = Advert::v2(51, "10.0.0.1", &["10.0.0.100"]).frame();
    let unknown = Advert::v2(99, "10.0.0.1", &["10.0.0.100"]).frame();

    let mut rows = Vec::new();
    let baseline = median_ns(program(&mut dataplane, true)?, &tcp, repeat)?;
    rows.push(("bare XDP_PASS (baseline), 64-byte TCP frame", baseline));
    rows.push(("guard, TCP frame, tail call into the balancer stand-in", median_ns(program(&mut dataplane, false)?, &tcp, repeat)?));
    rows.push(("guard, valid VRRPv2 advert: vrids lookup + counter, XDP_PASS", median_ns(program(&mut dataplane, false)?, &advert, repeat)?));
    rows.push(("guard, unknown VRID: vrids miss + counter, XDP_DROP", median_ns(program(&mut dataplane, false)?, &unknown, repeat)?));
    dataplane.unchain_balancer()?;
    rows.push(("guard, TCP frame, empty balancer slot (XDP_PASS)", median_ns(program(&mut dataplane, false)?, &tcp, repeat)?));

    println!("| case | ns/packet | ÷ bare XDP_PASS |");
    println!("|---|---|---|");
    for (case, ns) in rows {
        println!("| {case} | {ns:.1} | {:.2} |", ns / baseline);
    }
    println!("\nBPF_PROG_TEST_RUN, repeat {repeat}, median of {RUNS} runs, one process pinned to one CPU.");
    Ok(())
}

fn program(dataplane: &mut Dataplane, baseline: bool) -> Result<&mut Xdp> {
    let (object, name) = if baseline {
        (dataplane.balancer_object(), PROG_XDP_PASS)
    } else {
        (dataplane.guard_object(), PROG_VRRP_GUARD)
    };
    Ok(object.program_mut(name).context("program missing")?.try_into()?)
}

/// Median over RUNS of the kernel's average ns per repetition.
fn median_ns(program: &mut Xdp, frame: &[u8], repeat: u32) -> Result<f64> {
    let mut samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let result = program.test_run(TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() })?;
            Ok(result.duration)
        })
        .collect::<Result<_>>()?;
    samples.sort();
    Ok(samples[RUNS / 2].as_nanos() as f64)
}

#[derive(Clone, Copy, PartialEq)]
enum Daemon {
    Keepalived,
    Keepxdp,
}

/// One failover: `master` (priority 150, `state MASTER`) and `backup` (100) in one VRID;
/// every process of the Master's host is killed (-9); the time until the Backup's host holds
/// the address. keepxdp only runs on the lab's `node` host, keepalived on either.
fn one_failover(master: Daemon, backup: Daemon, version: u8, advert_int: &str) -> Result<Duration> {
    use keepxdp_lab::{process::wait_for, vrrp_lab::{VrrpLab, instance_config}};
    let lab = VrrpLab::new()?;
    let binary = keepxdp_tests::keepxdp_bin()?;
    // keepxdp sits on `node`; the Master is on `node` unless keepxdp is the Backup.
    let master_on_node = backup != Daemon::Keepxdp;
    let (master_dev, backup_dev) = if master_on_node { ("kxnode", "kxpeer") } else { ("kxpeer", "kxnode") };
    let master_config = instance_config(master_dev, version, 150, advert_int, "MASTER", "");
    let backup_config = instance_config(backup_dev, version, 100, advert_int, "BACKUP", "");
    let mut guards = Vec::new();
    let mut keepxdp = None;
    for (daemon, config, on_node) in [(master, &master_config, master_on_node), (backup, &backup_config, !master_on_node)] {
        match (daemon, on_node) {
            (Daemon::Keepxdp, _) => keepxdp = Some(lab.keepxdp_on_node(&binary, config)?),
            (Daemon::Keepalived, true) => guards.push(lab.keepalived_on_node(config)?),
            (Daemon::Keepalived, false) => guards.push(lab.keepalived_on_peer(config)?),
        }
        if guards.len() + usize::from(keepxdp.is_some()) == 1 {
            let holds = |lab: &VrrpLab| if master_on_node { lab.node_holds_vip() } else { lab.peer_holds_vip() };
            wait_for("the Master to hold the VIP", Duration::from_secs(10), || holds(&lab))?;
        }
    }
    // Settled: only the Master holds it.
    wait_for("one holder", Duration::from_secs(10), || {
        Ok(if master_on_node { lab.node_holds_vip()? && !lab.peer_holds_vip()? } else { lab.peer_holds_vip()? && !lab.node_holds_vip()? })
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    if master_on_node { lab.node.kill_all()? } else { lab.peer.kill_all()? }
    wait_for("the Backup to take the VIP", Duration::from_secs(10), || {
        if master_on_node { lab.peer_holds_vip() } else { lab.node_holds_vip() }
    })?;
    let took = killed.elapsed();
    drop(keepxdp);
    drop(guards);
    Ok(took)
}

fn failover(runs: usize) -> Result<()> {
    use Daemon::{Keepalived, Keepxdp};
    let scenarios = [
        ("keepalived -> keepalived (baseline)", Keepalived, Keepalived),
        ("keepxdp -> keepalived", Keepxdp, Keepalived),
        ("keepalived -> keepxdp", Keepalived, Keepxdp),
    ];
    println!("| Master -> Backup (kill -9 of the Master host) | v2, advert_int 1: median ms | ÷ baseline | v3, advert_int 0.1: median ms | ÷ baseline |");
    println!("|---|---|---|---|---|");
    let mut baseline = [0.0f64; 2];
    for (index, (name, master, backup)) in scenarios.iter().enumerate() {
        let mut cells = Vec::new();
        for (column, (version, interval)) in [(2u8, "1"), (3u8, "0.1")].iter().enumerate() {
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| one_failover(*master, *backup, *version, interval))
                .collect::<Result<_>>()?;
            times.sort();
            let median = times[runs / 2].as_secs_f64() * 1000.0;
            if index == 0 {
                baseline[column] = median;
            }
            cells.push(format!("{median:.0} | {:.2}", median / baseline[column]));
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("\nMedian of {runs} runs each; Master priority 150, Backup 100 (Master_Down_Interval 3609 ms for v2 at 1 s, 361 ms for v3 at 0.1 s); polled every ~20 ms with ip(8).");
    Ok(())
}

/// The flood tables: each Backup at each setting, SECONDS of flood (default 15) as fast as
/// one sender goes, then both Backups at v3/30 ms paced at the same rate (default 50,000
/// frames/s: what the slower full-rate run reaches on a small VM); RATE runs only that rate.
/// Every run is bounded at 20 M frames.
fn flood(args: &[String]) -> Result<()> {
    use keepxdp_lab::flood::FloodLimits;
    use keepxdp_tests::flood_lab::{self, Backup, V2_1S, V3_30MS};
    let seconds: u64 = args.first().map(|a| a.parse()).transpose()?.unwrap_or(15);
    let rate: Option<u64> = args.get(1).map(|a| a.parse()).transpose()?;
    let backups = match args.get(2).map(String::as_str) {
        Some("keepxdp") => vec![Backup::Keepxdp],
        Some("keepalived") => vec![Backup::Keepalived],
        _ => vec![Backup::Keepxdp, Backup::Keepalived],
    };
    let settings = match args.get(3).map(String::as_str) {
        Some("v2") => vec![V2_1S],
        Some("v3") => vec![V3_30MS],
        _ => vec![V2_1S, V3_30MS],
    };
    let binary = keepxdp_tests::keepxdp_bin()?;
    let limits = |rate: Option<u64>| FloodLimits { max_frames: 20_000_000, max_time: Duration::from_secs(seconds), rate: rate.filter(|r| *r > 0) };
    let mut plan = Vec::new();
    match rate {
        Some(rate) => plan.extend(settings.iter().flat_map(|s| backups.iter().map(move |b| (*s, *b, limits(Some(rate)))))),
        None => {
            plan.extend(settings.iter().flat_map(|s| backups.iter().map(move |b| (*s, *b, limits(None)))));
            plan.extend(backups.iter().map(|b| (V3_30MS, *b, limits(Some(50_000)))));
        }
    }
    let mut rows = Vec::new();
    let mut guard_rows = Vec::new();
    for (setting, backup, limits) in plan {
        let run = flood_lab::run(&binary, backup, setting, limits)?;
        eprintln!("{} (logged {} lines, e.g. {:?})", flood_lab::row(&run), run.log_lines, run.log_sample.first());
        let offered = limits.rate.map_or("full".to_string(), |r| format!("{}k", r / 1000));
        rows.push(format!("| {offered} {}", flood_lab::row(&run)));
        if run.guard.is_some() {
            for (kind, sent, counted) in flood_lab::drops_by_reason(&run) {
                guard_rows.push(format!("| {offered} | v{} advert_int {} | {} | {sent} | {counted} |", setting.version, setting.advert_int, kind.guard_reason()));
            }
        }
    }
    println!("| rate {}", flood_lab::TABLE_HEADER);
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\n{seconds} s of flood per row (full: as fast as one sendmmsg thread goes; 50k: paced); invalid adverts, mixed evenly: TTL 64, unknown VRIDs, bad version, bad type, truncated address list; sent to the Backup's MAC only. VIP taken: `ip monitor address` on the Backup; \"the Master was on time\": the Backup's first advert came less than a Master_Down_Interval (3 × advert_int + skew) after the Master's last one, on a capture at the switch. CPU: utime + stime of the Backup's processes over the flood (the XDP drops run in softirq, outside any process).");
    if !guard_rows.is_empty() {
        println!("\n| rate | keepxdp's guard | reason | frames sent | counted dropped |");
        println!("|---|---|---|---|---|");
        for row in guard_rows {
            println!("{row}");
        }
    }
    Ok(())
}
