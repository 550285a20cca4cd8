//! `keepxdp-bench sync`: what NAT state sync (`lvs_sync_daemon`) costs.
//!
//! 1. The fast path's cost per new NAT flow with the sync hook on vs off
//!    (BPF_PROG_TEST_RUN of `lvs_bench_new_nat`: a new source address/port each repetition,
//!    so every packet is a new flow: both `lvs_nat` inserts, and with sync on the ring
//!    record). Off and on runs alternate; the ring is drained between runs, and a run must
//!    report every flow it made (none lost to a full ring).
//! 2. The userspace sender: entries/s and bytes/s on the wire from ring records to datagrams
//!    (`lvs::sync::decide` batching + `wire` encoding + `send_to` on the sync socket), over
//!    a veth between two namespaces to a receiver that decodes and counts; as a ratio to the
//!    same socket sending the same datagrams pre-encoded.
//! 3. The Backup's installer: connections/s into `lvs_nat`, as a ratio to plain map updates
//!    of the same entries.
use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use keepxdp::{
    bpf::{Dataplane, LoadOptions, LvsLimits, LvsMaps, ring_record, sync_ring},
    config::model::LbKind,
    lvs::{
        BackendPlan, LvsTables, ServiceKey, ServicePlan,
        plan::ProtocolKey,
        sync::{
            decide::{Action, Settings, Sync},
            entries::conn_of_record,
            wire::{self, Conn, Forward, TCP_ESTABLISHED},
        },
    },
    net::sync_socket::group_socket,
};
use keepxdp_lab::netns::{Netns, veth_pair};
use vrrp_common::lvs::{BACKEND_ALIVE, BACKEND_RESOLVED, LvsConfig, LvsReason};

const RUNS: usize = 15;
/// Repetitions per run: the ring (1 MiB, 64 bytes a record) holds 16,384 records.
const REPEAT: u32 = 12_000;
const XDP_TX: u32 = 3;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a literal address")
}

fn program<'a>(dataplane: &'a mut Dataplane, name: &str) -> Result<&'a mut Xdp> {
    Ok(dataplane.balancer_object().program_mut(name).with_context(|| format!("no program {name}"))?.try_into()?)
}

fn template(dataplane: &mut Dataplane, frame: &[u8]) -> Result<()> {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct BenchFrame {
        bytes: [u8; 64],
        flows: u32,
    }
    // SAFETY: repr(C), no padding, any bits valid.
    unsafe impl aya::Pod for BenchFrame {}
    let mut bytes = [0u8; 64];
    bytes.copy_from_slice(&frame[..64]);
    let map = dataplane.balancer_object().map_mut("bench_frame").context("no bench_frame")?;
    let mut array: aya::maps::Array<&mut aya::maps::MapData, BenchFrame> = aya::maps::Array::try_from(map)?;
    array.set(0, BenchFrame { bytes, flows: 0 }, 0)?;
    Ok(())
}

/// One run: the kernel's ns per repetition.
fn run_once(dataplane: &mut Dataplane, frame: &[u8]) -> Result<f64> {
    let program = program(dataplane, "lvs_bench_new_nat")?;
    let result = program.test_run(TestRunOptions { data_in: Some(frame), repeat: REPEAT, ..TestRunOptions::default() })?;
    ensure!(result.return_value == XDP_TX, "lvs_bench_new_nat returned {}", result.return_value);
    Ok(result.duration.as_nanos() as f64)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// Part 1.
pub fn cost() -> Result<()> {
    let limits = LvsLimits { nat_entries: 1 << 20, ..LvsLimits::default() };
    let mut dataplane = Dataplane::load_with(&LoadOptions { limits, state_pin_dir: None })?;
    program(&mut dataplane, "lvs_bench_new_nat")?.load().context("verifying lvs_bench_new_nat")?;
    let reals = ["10.9.1.2", "10.9.2.2", "10.9.3.2"];
    let plan = ServicePlan {
        key: ServiceKey { addr: ip("10.9.0.102"), port: 80, protocol: ProtocolKey::Tcp },
        name: "10.9.0.102:80".into(),
        at: "bench".into(),
        forwarding: LbKind::Nat,
        scheduler: "mh".into(),
        persistence: None,
        backends: reals
            .iter()
            .map(|r| BackendPlan { name: format!("{r}:8080"), addr: ip(r), port: 8080, weight: 1, starts_down: false, inhibit_on_failure: false })
            .collect(),
        sorry: None,
        quorum: 1,
        hysteresis: 0,
    };
    let mut tables = LvsTables::new(dataplane.limits());
    let errors = tables.apply(&[plan], &mut dataplane);
    ensure!(errors.is_empty(), "{errors:?}");
    for view in tables.views() {
        for backend in &view.backends {
            let mut entry = dataplane.backend(backend.index)?;
            entry.flags = BACKEND_ALIVE | BACKEND_RESOLVED;
            entry.mac = [0x02, 0, 0, 0, 0x10, backend.index as u8];
            entry.src_mac = [0x02, 0, 0, 0, 0, 0xfe];
            entry.ifindex = 0;
            dataplane.put_backend(backend.index, &entry)?;
        }
    }
    let frame = crate::lvs_bench::syn_frame(ip("10.9.0.1"), ip("10.9.0.102"));
    template(&mut dataplane, &frame)?;
    let mut ring = sync_ring(&dataplane)?;
    let config = |sync: u32| LvsConfig { nat_services: 1, sync, ..LvsConfig::default() };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let mut recorded = 0u64;
    for _ in 0..RUNS {
        dataplane.put_config(&config(0))?;
        off.push(run_once(&mut dataplane, &frame)?);
        ensure!(ring.next().is_none(), "sync off: the ring stays empty");
        dataplane.put_config(&config(1))?;
        on.push(run_once(&mut dataplane, &frame)?);
        let mut records = 0;
        while let Some(item) = ring.next() {
            let record = ring_record(&item).context("a SyncRecord")?;
            let conn = conn_of_record(&record);
            ensure!(conn.virtual_service == SocketAddr::new(ip("10.9.0.102"), 80) && conn.destination.port() == 8080, "{conn:?}");
            records += 1;
        }
        ensure!(records == REPEAT, "sync on: {records} records for {REPEAT} new flows");
        recorded += records as u64;
    }
    ensure!(dataplane.balancer_reason_count(LvsReason::SyncRingFull)? == 0, "no record lost to a full ring");
    let (off, on) = (median(off), median(on));
    println!("| case | ns per new NAT flow | ÷ sync off |");
    println!("|---|---|---|");
    println!("| NAT, new flow (SYN), `lvs_sync_daemon` off (`LvsConfig::sync` 0) | {off:.1} | 1.00 |");
    println!("| NAT, new flow (SYN), sync on: + a 56-byte `SyncRecord` into `lvs_sync_ring` | {on:.1} | {:.2} |", on / off);
    println!(
        "\nBPF_PROG_TEST_RUN of `lvs_bench_new_nat` (template restore + new source address/port + the balancer), repeat {REPEAT}, \
         median of {RUNS} alternating runs each; {recorded} records read back, none lost (`sync_ring_full` 0). \
         The hook adds {:.1} ns per new flow; established flows do not run it.",
        on - off
    );
    Ok(())
}

fn conn(n: u32) -> Conn {
    Conn {
        protocol: 6,
        client: SocketAddr::new(IpAddr::from([10, 8, (n >> 16) as u8, (n >> 8) as u8]), n as u16),
        virtual_service: "10.0.0.100:80".parse().expect("literal"),
        destination: "10.1.0.11:8080".parse().expect("literal"),
        forward: Forward::Nat,
        template: false,
        state: TCP_ESTABLISHED,
        timeout: 0,
    }
}

/// The receiver: counts entries and bytes until `stop` (and the socket is quiet).
fn receive(socket: std::net::UdpSocket, stop: Arc<AtomicBool>) -> Result<(u64, u64)> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buffer = vec![0u8; 65536];
    let (mut entries, mut bytes) = (0u64, 0u64);
    loop {
        match socket.recv(&mut buffer) {
            Ok(length) => {
                bytes += length as u64;
                if let Ok(wire::Message::Conns { conns, .. }) = wire::decode(&buffer[..length]) {
                    entries += conns.len() as u64;
                }
            }
            Err(_) if stop.load(Ordering::Relaxed) => return Ok((entries, bytes)),
            Err(_) => {}
        }
    }
}

/// Sends `datagrams` (or, with `records`, what `Sync` makes of them) and returns the time.
fn send(socket: &std::net::UdpSocket, group: SocketAddr, pre_encoded: Option<&[Vec<u8>]>, entries: u32) -> Result<Duration> {
    let started = Instant::now();
    match pre_encoded {
        Some(datagrams) => {
            for datagram in datagrams {
                send_one(socket, datagram, group)?;
            }
        }
        None => {
            let mut sync = Sync::new(Settings::new(51, 1472));
            let now = Instant::now();
            sync.set_master(true, now);
            let mut actions = Vec::new();
            for n in 0..entries {
                actions.extend(sync.record(conn(n), now));
                for action in actions.drain(..) {
                    if let Action::Send(datagram) = action {
                        send_one(socket, &datagram, group)?;
                    }
                }
            }
            for action in sync.tick(now + Duration::from_secs(1)) {
                if let Action::Send(datagram) = action {
                    send_one(socket, &datagram, group)?;
                }
            }
        }
    }
    Ok(started.elapsed())
}

/// A blocking send; ENOBUFS (the qdisc is full) is waited out.
fn send_one(socket: &std::net::UdpSocket, datagram: &[u8], group: SocketAddr) -> Result<()> {
    loop {
        match socket.send_to(datagram, group) {
            Ok(_) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) || e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Part 2.
pub fn sender(entries: u32) -> Result<()> {
    let _sweep = crate::lvs_bench::Sweep;
    let a = Netns::new("sa")?;
    let b = Netns::new("sb")?;
    veth_pair(&a, "s0", "10.9.8.1/24", &b, "s1", "10.9.8.2/24")?;
    let group: SocketAddr = "224.0.0.81:8848".parse()?;
    let (a_index, b_index) = (a.ifindex("s0")?, b.ifindex("s1")?);
    let mut rows = Vec::new();
    let datagrams = wire::encode_conns(51, &(0..entries).map(conn).collect::<Vec<_>>(), 1472);
    let wire_bytes: u64 = datagrams.iter().map(|d| d.len() as u64).sum();
    for pre_encoded in [true, false] {
        let stop = Arc::new(AtomicBool::new(false));
        let receiver_socket = crate::lvs_bench::in_netns_pub(&b, || group_socket("s1", b_index, group, 1))?;
        let flag = stop.clone();
        let receiver = std::thread::spawn(move || receive(receiver_socket, flag));
        let socket = crate::lvs_bench::in_netns_pub(&a, || group_socket("s0", a_index, group, 1))?;
        socket.set_nonblocking(false)?;
        let took = send(&socket, group, pre_encoded.then_some(&datagrams[..]), entries)?;
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let (received, bytes) = receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        rows.push((pre_encoded, took, received, bytes));
    }
    let rate = |took: Duration| entries as f64 / took.as_secs_f64();
    let baseline = rate(rows[0].1);
    println!("| sender | entries/s | MB/s on the wire | entries received | ÷ pre-encoded send |");
    println!("|---|---|---|---|---|");
    for (pre_encoded, took, received, _bytes) in &rows {
        let what = if *pre_encoded {
            "the same datagrams pre-encoded, `send_to` only (baseline)"
        } else {
            "ring records → `decide` batching → `wire` encoding → `send_to`"
        };
        println!(
            "| {what} | {:.0} | {:.1} | {received} / {entries} | {:.2} |",
            rate(*took),
            wire_bytes as f64 / took.as_secs_f64() / 1e6,
            rate(*took) / baseline
        );
    }
    println!(
        "\n{entries} IPv4 NAT entries, 40 per 1472-byte datagram ({} datagrams, {wire_bytes} bytes of UDP payload, 36.6 bytes an entry), \
         multicast 224.0.0.81:8848 over a veth between two namespaces to a receiver decoding every datagram.",
        datagrams.len()
    );
    Ok(())
}

/// Part 3: the Backup's installer (`lvs::sync::install` through `XdpSyncMaps`: a
/// BPF_NOEXIST insert per entry, two entries per NAT connection, the fill kept) vs the same
/// entries written with plain map updates.
pub fn installer(conns: u32) -> Result<()> {
    use keepxdp::{
        bpf::XdpSyncMaps,
        lvs::sync::{
            entries::{Directory, Entry, Fill, entries_for},
            install::{Fills, install},
        },
    };
    let limits = LvsLimits { nat_entries: 4 * conns, ..LvsLimits::default() };
    let mut dataplane = Dataplane::load_with(&LoadOptions { limits, state_pin_dir: None })?;
    let plan = ServicePlan {
        key: ServiceKey { addr: ip("10.0.0.100"), port: 80, protocol: ProtocolKey::Tcp },
        name: "10.0.0.100:80".into(),
        at: "bench".into(),
        forwarding: LbKind::Nat,
        scheduler: "mh".into(),
        persistence: None,
        backends: vec![BackendPlan { name: "10.1.0.11:8080".into(), addr: ip("10.1.0.11"), port: 8080, weight: 1, starts_down: false, inhibit_on_failure: false }],
        sorry: None,
        quorum: 1,
        hysteresis: 0,
    };
    let mut tables = LvsTables::new(dataplane.limits());
    ensure!(tables.apply(&[plan], &mut dataplane).is_empty());
    let directory = Directory::of(&tables.views());
    let all: Vec<Conn> = (0..2 * conns).map(conn).collect();
    let (baseline_conns, synced_conns) = all.split_at(conns as usize);

    // Baseline: the entries `install` would write, written with plain updates.
    let map = dataplane.balancer_object().map_mut(vrrp_common::pins::MAP_LVS_NAT).context("no lvs_nat")?;
    let mut nat: aya::maps::HashMap<&mut aya::maps::MapData, vrrp_common::lvs::FlowKey, vrrp_common::lvs::NatReverse> = aya::maps::HashMap::try_from(map)?;
    let entries: Vec<Entry> = baseline_conns.iter().map(|c| entries_for(c, &directory)).collect::<Result<Vec<_>, _>>().map_err(|e| anyhow::anyhow!("{e:?}"))?.into_iter().flatten().collect();
    let started = Instant::now();
    for entry in &entries {
        if let Entry::Nat(key, value) = entry {
            nat.insert(key, value, 0)?;
        }
    }
    let baseline = started.elapsed();

    let mut maps = XdpSyncMaps::of(&dataplane)?;
    let mut fills = Fills { nat: Fill { capacity: limits.nat_entries as u64, used: 2 * conns as u64 }, conntrack: Fill { capacity: 1024, used: 0 } };
    let started = Instant::now();
    let mut installed = 0;
    for batch in synced_conns.chunks(40) {
        let (outcome, error) = install(batch, &directory, &mut fills, &mut maps);
        ensure!(error.is_none(), "{error:?}");
        installed += outcome.new;
    }
    let synced = started.elapsed();
    ensure!(installed == conns as u64, "{installed} of {conns} installed");
    let rate = |took: Duration| conns as f64 / took.as_secs_f64();
    println!("| Backup installer | connections/s | ÷ plain updates |");
    println!("|---|---|---|");
    println!("| the same two `lvs_nat` entries per connection, plain `bpf_map_update_elem` (baseline) | {:.0} | 1.00 |", rate(baseline));
    println!("| `lvs::sync::install` (directory lookup, BPF_NOEXIST insert, fill count), batches of 40 | {:.0} | {:.2} |", rate(synced), rate(synced) / rate(baseline));
    println!("
{conns} NAT connections each way into an LRU `lvs_nat` of {} entries.", limits.nat_entries);
    Ok(())
}

pub fn main(args: &[String]) -> Result<()> {
    let entries = args.first().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    cost()?;
    println!();
    sender(entries)?;
    println!();
    installer(100_000)
}
