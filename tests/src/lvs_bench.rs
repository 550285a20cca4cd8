//! `keepxdp-bench lvs`: the balancer's cost per packet (BPF_PROG_TEST_RUN, ratio against a
//! bare MAC swap in the same run), then its packets/s on one core over a veth rig beside
//! nftables DNAT doing the same job (ratio against nftables in the same run).
//!
//! Both parts install services the way `keepxdp run` does (`LvsTables::apply` through the
//! `LvsMaps` seam, 65537-slot Maglev rings); only the backend entries are then overwritten as
//! resolved (MACs known, as after the data plane's first FIB lookup).
use std::{
    fs::File,
    net::IpAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use keepxdp::{
    bpf::{Dataplane, LvsMaps},
    config::model::LbKind,
    lvs::{BackendPlan, LvsTables, ServiceKey, ServicePlan, plan::ProtocolKey},
};
use keepxdp_lab::{
    checksum::{finish, sum},
    netns::{Netns, veth_pair},
};
use nix::sched::{CloneFlags, CpuSet, sched_setaffinity, setns};
use vrrp_common::{
    lvs::{BACKEND_ALIVE, BACKEND_RESOLVED, BackendStats, Flow, FlowKey, ring_slot},
    pins::{MAP_LVS_BACKEND_STATS, MAP_LVS_CONNTRACK, MAP_LVS_MAGLEV, PROG_LVS_BALANCER},
};

const RUNS: usize = 5;
const RIG_RUNS: usize = 3;
const XDP_TX: u32 = 3;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
/// The generator's flows (distinct source ports).
const RIG_FLOWS: u32 = 1024;

/// The value of `bench_frame` (lvs-ebpf/src/bench.rs): the template and the generator's flows.
#[repr(C)]
#[derive(Clone, Copy)]
struct BenchFrame {
    bytes: [u8; 64],
    flows: u32,
}
// SAFETY: repr(C), no padding (64 + 4 bytes), every bit pattern valid.
unsafe impl aya::Pod for BenchFrame {}

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// A 64-byte (IPv4) or 74-byte (IPv6) TCP frame with correct IP and TCP checksums.
fn tcp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], src: IpAddr, dst: IpAddr, src_port: u16, flags: u8) -> Vec<u8> {
    let mut frame = dst_mac.to_vec();
    frame.extend_from_slice(&src_mac);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&src_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    if flags & TCP_ACK != 0 {
        tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
    }
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            frame.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let check = finish(sum(&ip, 0));
            ip[10..12].copy_from_slice(&check.to_be_bytes());
            frame.extend_from_slice(&ip);
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 6, 0, 20]);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            frame.extend_from_slice(&[0x86, 0xdd]);
            frame.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
            frame.extend_from_slice(&s.octets());
            frame.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 0, 0, 20, 0, 0, 0, 6]);
        }
        _ => unreachable!("one family"),
    }
    let check = finish(sum(&tcp, sum(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&check.to_be_bytes());
    frame.extend_from_slice(&tcp);
    if frame.len() < 64 {
        frame.resize(64, 0);
    }
    frame
}

/// A SYN from `src`:40000 to `dst`:80, client MAC to ours (the sync bench's template).
pub fn syn_frame(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    tcp_frame(LB_MAC, CLIENT_MAC, src, dst, 40000, TCP_SYN)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a literal address")
}

/// One service as `keepalived.conf` would give it: round-robin-free Maglev, no persistence.
fn service(vip: &str, forwarding: LbKind, backends: &[&str], port: u16) -> ServicePlan {
    let key = ServiceKey { addr: ip(vip), port: 80, protocol: ProtocolKey::Tcp };
    ServicePlan {
        key,
        name: format!("{vip}:80"),
        at: "bench".into(),
        forwarding,
        scheduler: "mh".into(),
        persistence: None,
        backends: backends
            .iter()
            .map(|b| BackendPlan {
                name: format!("{b}:{port}"),
                addr: ip(b),
                port,
                weight: 1,
                starts_down: false,
                inhibit_on_failure: false,
            })
            .collect(),
        sorry: None,
        quorum: 1,
        hysteresis: 0,
    }
}

/// Installs `plans` through `LvsTables` (as `keepxdp run` does), then marks every backend
/// resolved: `resolve(address)` gives (next-hop MAC, our MAC, egress ifindex).
fn install(
    dataplane: &mut Dataplane,
    plans: &[ServicePlan],
    resolve: impl Fn(IpAddr) -> ([u8; 6], [u8; 6], u32),
) -> Result<LvsTables> {
    let mut tables = LvsTables::new(dataplane.limits());
    let errors = tables.apply(plans, dataplane);
    ensure!(errors.is_empty(), "installing the bench services: {errors:?}");
    check_rings(dataplane, &tables)?;
    for view in tables.views() {
        for backend in &view.backends {
            let mut entry = dataplane.backend(backend.index)?;
            let (mac, src_mac, ifindex) = resolve(backend.plan.addr);
            entry.flags = BACKEND_ALIVE | BACKEND_RESOLVED;
            entry.mac = mac;
            entry.src_mac = src_mac;
            entry.ifindex = ifindex;
            dataplane.put_backend(backend.index, &entry)?;
        }
    }
    Ok(tables)
}

/// The kernel's view of ring slot `index` (BPF_MAP_LOOKUP_ELEM, not the mmap).
fn kernel_ring_slot(dataplane: &mut Dataplane, index: u32) -> Result<u32> {
    let map = dataplane.balancer_object().map(MAP_LVS_MAGLEV).context("no map lvs_maglev")?;
    let array: Array<&MapData, u32> = Array::try_from(map)?;
    Ok(array.get(&index, 0)?)
}

/// The rings the controller wrote through its mmap of `lvs_maglev` must be what the kernel
/// reads (array cells are 8 bytes apart; a 4-byte stride once scrambled every ring).
fn check_rings(dataplane: &mut Dataplane, tables: &LvsTables) -> Result<()> {
    let size = dataplane.limits().maglev_size;
    for view in tables.views() {
        let base = view.index * size;
        for offset in [1, size / 2, size - 1] {
            ensure!(
                kernel_ring_slot(dataplane, base + offset)? == dataplane.ring_slot(base + offset)?,
                "the kernel does not see the Maglev ring slot {} the controller wrote",
                base + offset
            );
        }
    }
    Ok(())
}

fn load_programs(dataplane: &mut Dataplane, names: &[&str]) -> Result<()> {
    for name in names {
        program(dataplane, name)?.load().with_context(|| format!("verifying {name}"))?;
    }
    Ok(())
}

fn program<'a>(dataplane: &'a mut Dataplane, name: &str) -> Result<&'a mut Xdp> {
    Ok(dataplane
        .balancer_object()
        .program_mut(name)
        .with_context(|| format!("the balancer object has no program {name}"))?
        .try_into()?)
}

fn set_template(dataplane: &mut Dataplane, frame: &[u8], flows: u32) -> Result<()> {
    let mut bytes = [0u8; 64];
    bytes.copy_from_slice(&frame[..64]);
    let map = dataplane.balancer_object().map_mut("bench_frame").context("no map bench_frame")?;
    let mut array: Array<&mut MapData, BenchFrame> = Array::try_from(map)?;
    array.set(0, BenchFrame { bytes, flows }, 0)?;
    Ok(())
}

/// Median over RUNS of the kernel's average ns per repetition; fails unless the program
/// returns XDP_TX (the path being measured is the forwarding one).
fn median_ns(dataplane: &mut Dataplane, name: &str, frame: &[u8], repeat: u32) -> Result<f64> {
    let program = program(dataplane, name)?;
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let result = program.test_run(TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() })?;
        ensure!(result.return_value == XDP_TX, "{name} returned {} instead of XDP_TX", result.return_value);
        samples.push(result.duration);
    }
    samples.sort();
    Ok(samples[RUNS / 2].as_nanos() as f64)
}

/// Whether `lvs_conntrack` holds some flow to `vip` (a sanity check of the state cases).
fn conntrack_has(dataplane: &mut Dataplane, vip: [u8; 4]) -> Result<bool> {
    let map = dataplane.balancer_object().map(MAP_LVS_CONNTRACK).context("no conntrack map")?;
    let conntrack: aya::maps::HashMap<&MapData, FlowKey, Flow> = aya::maps::HashMap::try_from(map)?;
    for key in conntrack.keys() {
        let key = key?;
        if std::env::var_os("KEEPXDP_BENCH_DEBUG").is_some() {
            eprintln!("conntrack key {key:?} -> {:?}", conntrack.get(&key, 0)?);
        }
        if key.dst[0] == u32::from_ne_bytes(vip) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn new_flows(dataplane: &mut Dataplane, backends: &[u32]) -> Result<u64> {
    let map = dataplane.balancer_object().map(MAP_LVS_BACKEND_STATS).context("no backend stats map")?;
    let stats: PerCpuArray<&MapData, BackendStats> = PerCpuArray::try_from(map)?;
    let mut total = 0;
    for index in backends {
        total += stats.get(index, 0)?.iter().map(|s| s.new_flows).sum::<u64>();
    }
    Ok(total)
}

/// Part 1: ns/packet by BPF_PROG_TEST_RUN.
pub fn cost(repeat: u32) -> Result<()> {
    ensure!(repeat >= 1_000_000, "repeat {repeat}: use at least 1,000,000");
    let mut dataplane = Dataplane::load()?;
    load_programs(&mut dataplane, &["xdp_tx_swap", "bench_restore_tx", "lvs_bench_same", "lvs_bench_new"])?;
    let v4 = ["10.9.1.2", "10.9.2.2", "10.9.3.2"];
    let v6 = ["fd00:9:1::2", "fd00:9:2::2", "fd00:9:3::2"];
    let plans = [
        service("10.9.0.100", LbKind::Dr, &v4, 80),
        service("10.9.0.101", LbKind::Dr, &v4, 80),
        service("10.9.0.102", LbKind::Nat, &v4, 8080),
        service("fd00:9::100", LbKind::Dr, &v6, 80),
    ];
    // Backends resolved, egress 0: XDP_TX back out of the ingress interface (no FIB lookup).
    let tables = install(&mut dataplane, &plans, |addr| {
        let last = match addr {
            IpAddr::V4(a) => a.octets()[2],
            IpAddr::V6(a) => a.octets()[5],
        };
        ([0x02, 0, 0, 0, 0x10, last], LB_MAC, 0)
    })?;
    // 10.9.0.101: every ring slot changed (current, previous differ), as after a real server
    // joined: each new flow misses conntrack and inserts.
    let maglev_size = dataplane.limits().maglev_size;
    let changed = tables.views().into_iter().find(|v| v.key.addr == ip("10.9.0.101")).context("service .101")?;
    let changed_backends: Vec<u32> = changed.backends.iter().map(|b| b.index).collect();
    let mut ring = Vec::new();
    for current in tables.ring(&changed.key, &dataplane).context("ring of .101")? {
        let at = changed_backends.iter().position(|b| *b == current).context("ring names a foreign backend")?;
        ring.push(ring_slot(current, changed_backends[(at + 1) % changed_backends.len()]));
    }
    for (offset, value) in ring.iter().enumerate() {
        dataplane.put_ring_slot(changed.index * maglev_size + offset as u32, *value)?;
    }

    let client = ip("10.9.0.1");
    let ack = |vip: &str| tcp_frame(LB_MAC, CLIENT_MAC, client, ip(vip), 40000, TCP_ACK);
    let syn = |vip: &str| tcp_frame(LB_MAC, CLIENT_MAC, client, ip(vip), 40000, TCP_SYN);
    let ack6 = tcp_frame(LB_MAC, CLIENT_MAC, ip("fd00:9::1"), ip("fd00:9::100"), 40000, TCP_ACK);

    let mut rows: Vec<(&str, f64)> = Vec::new();
    let baseline = median_ns(&mut dataplane, "xdp_tx_swap", &ack("10.9.0.100"), repeat)?;
    rows.push(("(a) `xdp_tx_swap`: swap MACs, XDP_TX (baseline)", baseline));
    rows.push((
        "(b) DR, established flow, IPv4 (`lvs_balancer`: parse, service, ring slot, MACs, XDP_TX; no state)",
        median_ns(&mut dataplane, PROG_LVS_BALANCER, &ack("10.9.0.100"), repeat)?,
    ));
    set_template(&mut dataplane, &syn("10.9.0.100"), 0)?;
    rows.push((
        "(c) DR, new flow (SYN), ring unchanged (`lvs_bench_new`: + new source addr/port each repetition; no state)",
        median_ns(&mut dataplane, "lvs_bench_new", &syn("10.9.0.100"), repeat)?,
    ));
    ensure!(!conntrack_has(&mut dataplane, [10, 9, 0, 100])?, "case (c) wrote conntrack state");
    set_template(&mut dataplane, &syn("10.9.0.101"), 0)?;
    let inserted_before = new_flows(&mut dataplane, &changed_backends)?;
    rows.push((
        "(d) DR, new flow (SYN) on changed ring slots (`lvs_bench_new`: + conntrack miss + insert, 64k LRU full)",
        median_ns(&mut dataplane, "lvs_bench_new", &syn("10.9.0.101"), repeat)?,
    ));
    ensure!(conntrack_has(&mut dataplane, [10, 9, 0, 101])?, "case (d) wrote no conntrack state");
    let inserted = new_flows(&mut dataplane, &changed_backends)? - inserted_before;
    ensure!(inserted >= (RUNS as u64) * repeat as u64, "case (d): {inserted} new flows counted");
    set_template(&mut dataplane, &ack("10.9.0.102"), 0)?;
    rows.push((
        "(e) NAT, established flow (`lvs_bench_same`: + restore, `lvs_nat` hit, DNAT + checksums)",
        median_ns(&mut dataplane, "lvs_bench_same", &ack("10.9.0.102"), repeat)?,
    ));
    rows.push((
        "(f) DR, established flow, IPv6 (`lvs_balancer`, 74-byte frame)",
        median_ns(&mut dataplane, PROG_LVS_BALANCER, &ack6, repeat)?,
    ));
    let restore = median_ns(&mut dataplane, "bench_restore_tx", &ack("10.9.0.102"), repeat)?;
    rows.push(("(g) `bench_restore_tx`: template restore + MAC swap (the bench harness of e)", restore));

    println!("| case | ns/packet | ÷ xdp_tx_swap |");
    println!("|---|---|---|");
    for (case, ns) in &rows {
        println!("| {case} | {ns:.1} | {:.2} |", ns / baseline);
    }
    let overhead = restore - baseline;
    let nat = rows[4].1 - overhead;
    println!(
        "\nBPF_PROG_TEST_RUN, repeat {repeat}, median of {RUNS} runs, 64-byte TCP frames, one 65537-slot ring per service, 3 resolved backends. \
         (e) without the restore overhead (g − a = {overhead:.0} ns): {nat:.0} ns = {:.2}×.",
        nat / baseline
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Part 2: packets/s on one core over a veth rig.

/// Pins the calling thread (and what it starts) to one CPU.
fn pin_to_cpu(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).context("sched_setaffinity")?;
    Ok(())
}

/// `in_netns` for the other benches.
pub fn in_netns_pub<T>(netns: &Netns, f: impl FnOnce() -> Result<T>) -> Result<T> {
    in_netns(netns, f)
}

/// Runs `f` with the calling thread in `netns`, then moves it back.
fn in_netns<T>(netns: &Netns, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let home = File::open("/proc/thread-self/ns/net").context("opening our network namespace")?;
    netns.enter_current_thread()?;
    let result = f();
    setns(&home, CloneFlags::CLONE_NEWNET).context("returning to our network namespace")?;
    result
}

fn mac_of(netns: &Netns, device: &str) -> Result<[u8; 6]> {
    let output = netns.ip(&["-o", "link", "show", "dev", device])?;
    let text = output.split("link/ether ").nth(1).and_then(|rest| rest.split_whitespace().next()).context("no MAC")?;
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16)?;
    }
    Ok(mac)
}

/// Deletes, by name, every namespace this process created (`kx<pid>-…`), whatever happened.
pub struct Sweep;

impl Drop for Sweep {
    fn drop(&mut self) {
        let prefix = format!("kx{}-", std::process::id());
        if let Ok(list) = keepxdp_lab::run("ip", &["netns", "list"]) {
            for name in list.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with(&prefix)) {
                let _ = keepxdp_lab::run("ip", &["netns", "delete", name]);
            }
        }
    }
}

struct Rig {
    gen_ns: Netns,
    lb: Netns,
    rs: Vec<Netns>,
    g0: u32,
    l0: u32,
    /// Per rs: (rs address, r0 MAC, l_N MAC, l_N ifindex).
    paths: Vec<(IpAddr, [u8; 6], [u8; 6], u32)>,
    template: Vec<u8>,
}

impl Rig {
    fn new() -> Result<Rig> {
        let gen_ns = Netns::new("gen")?;
        let lb = Netns::new("lb")?;
        let rs = (1..=3).map(|n| Netns::new(&format!("rs{n}"))).collect::<Result<Vec<_>>>()?;
        for netns in [&gen_ns, &lb].into_iter().chain(rs.iter()) {
            // No IPv6 chatter (RS, DAD, MLD) reaching the sinks.
            netns.run("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])?;
        }
        lb.run("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        veth_pair(&gen_ns, "g0", "10.9.0.1/24", &lb, "l0", "10.9.0.254/24")?;
        lb.ip(&["addr", "add", "10.9.0.100/32", "dev", "l0"])?;
        let mut paths = Vec::new();
        for (n, netns) in rs.iter().enumerate() {
            let n = n + 1;
            let l = format!("l{n}");
            veth_pair(&lb, &l, &format!("10.9.{n}.1/24"), netns, "r0", &format!("10.9.{n}.2/24"))?;
            let rs_mac = mac_of(netns, "r0")?;
            let addr = ip(&format!("10.9.{n}.2"));
            lb.ip(&["neigh", "replace", &addr.to_string(), "lladdr", &format_mac(rs_mac), "dev", &l, "nud", "permanent"])?;
            paths.push((addr, rs_mac, mac_of(&lb, &l)?, lb.ifindex(&l)?));
        }
        let template = tcp_frame(mac_of(&lb, "l0")?, mac_of(&gen_ns, "g0")?, ip("10.9.0.1"), ip("10.9.0.100"), 40000, TCP_ACK);
        let (g0, l0) = (gen_ns.ifindex("g0")?, lb.ifindex("l0")?);
        Ok(Rig { gen_ns, lb, rs, g0, l0, paths, template })
    }
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn attach(dataplane: &mut Dataplane, name: &str, netns: &Netns, ifindex: u32) -> Result<XdpLinkId> {
    in_netns(netns, || {
        program(dataplane, name)?
            .attach_to_if_index(ifindex, XdpMode::Driver)
            .with_context(|| format!("attaching {name} (driver mode) in {}", netns.name))
    })
}

fn detach(dataplane: &mut Dataplane, name: &str, netns: &Netns, link: XdpLinkId) -> Result<()> {
    in_netns(netns, || Ok(program(dataplane, name)?.detach(link)?))
}

fn sink_total(dataplane: &mut Dataplane) -> Result<u64> {
    let map = dataplane.balancer_object().map("bench_sink").context("no map bench_sink")?;
    let sink: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
    Ok(sink.get(&0, 0)?.iter().sum())
}

/// One `xdp_gen` call in the generator's namespace: `repeat` live frames out of g0.
fn generate(dataplane: &mut Dataplane, rig: &Rig, repeat: u32) -> Result<Duration> {
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(rig.template.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&rig.g0.to_ne_bytes());
    let template = rig.template.clone();
    in_netns(&rig.gen_ns, || {
        let program = program(dataplane, "xdp_gen")?;
        let started = Instant::now();
        program
            .test_run(TestRunOptions {
                data_in: Some(&template),
                ctx_in: Some(&ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(64),
                ..TestRunOptions::default()
            })
            .context("xdp_gen live frames")?;
        Ok(started.elapsed())
    })
}

struct Throughput {
    /// Frames counted at the sinks / wall time, median run.
    delivered_mpps: f64,
    offered_mpps: f64,
}

/// RIG_RUNS runs of ~`seconds` each (calls of ≥ 0.5 s); the median run by delivered Mpps.
fn throughput(dataplane: &mut Dataplane, rig: &Rig, seconds: f64) -> Result<Throughput> {
    // Calibrate: calls sized so each lasts ~1 s (each call has ~15 ms of fixed setup); the
    // warm-up calls (which also set up the flows' state) are not counted.
    let calls = seconds.round().max(1.0) as usize;
    let target = seconds / calls as f64;
    let mut per_call: u32 = 200_000;
    let rescale = |per_call: u32, took: Duration| {
        ((per_call as f64 * target / took.as_secs_f64()) as u64).clamp(100_000, u32::MAX as u64) as u32
    };
    for _ in 0..10 {
        let took = generate(dataplane, rig, per_call)?;
        per_call = rescale(per_call, took);
        if took.as_secs_f64() >= 0.5 * target {
            break;
        }
    }
    let mut runs = Vec::new();
    for _ in 0..RIG_RUNS {
        std::thread::sleep(Duration::from_millis(20));
        let before = sink_total(dataplane)?;
        let mut wall = Duration::ZERO;
        let mut offered = 0u64;
        for _ in 0..calls {
            let took = generate(dataplane, rig, per_call)?;
            ensure!(took >= Duration::from_millis(500), "a generator call lasted {took:?}, less than 0.5 s");
            wall += took;
            offered += per_call as u64;
            per_call = rescale(per_call, took);
        }
        // Let the receive queues drain (their softirq runs on this CPU) before counting.
        std::thread::sleep(Duration::from_millis(20));
        let delivered = sink_total(dataplane)? - before;
        runs.push(Throughput {
            delivered_mpps: delivered as f64 / wall.as_secs_f64() / 1e6,
            offered_mpps: offered as f64 / wall.as_secs_f64() / 1e6,
        });
    }
    runs.sort_by(|a, b| a.delivered_mpps.total_cmp(&b.delivered_mpps));
    let median = runs.swap_remove(RIG_RUNS / 2);
    ensure!(median.delivered_mpps > 0.01, "nothing reached the sinks");
    Ok(median)
}

/// Part 2: packets/s on one core.
pub fn rig(seconds: f64) -> Result<()> {
    keepxdp_lab::require_root()?;
    ensure!((1.0..=10.0).contains(&seconds), "run length {seconds} s: keep it between 1 and 10");
    pin_to_cpu(0)?;
    let _sweep = Sweep;
    let rig = Rig::new()?;
    let mut dataplane = Dataplane::load()?;
    load_programs(&mut dataplane, &["xdp_gen", "xdp_sink", "xdp_pass"])?;
    set_template(&mut dataplane, &rig.template, RIG_FLOWS)?;
    let paths = rig.paths.clone();
    let mut tables = install(
        &mut dataplane,
        &[service("10.9.0.100", LbKind::Nat, &["10.9.1.2", "10.9.2.2", "10.9.3.2"], 80)],
        |addr| {
            let (_, mac, src_mac, ifindex) = paths.iter().find(|p| p.0 == addr).copied().expect("a rig backend");
            (mac, src_mac, ifindex)
        },
    )?;
    let backends: Vec<u32> = tables.views()[0].backends.iter().map(|b| b.index).collect();
    for (netns, _) in rig.rs.iter().zip(&rig.paths) {
        let r0 = netns.ifindex("r0")?;
        attach(&mut dataplane, "xdp_sink", netns, r0)?;
    }

    // The generator floor: frames dropped on arrival at l0.
    let link = attach(&mut dataplane, "xdp_sink", &rig.lb, rig.l0)?;
    let floor = throughput(&mut dataplane, &rig, seconds)?;
    detach(&mut dataplane, "xdp_sink", &rig.lb, link)?;

    // A: keepxdp's balancer, NAT, on l0 (driver mode), redirecting to l1..l3.
    let link = attach(&mut dataplane, PROG_LVS_BALANCER, &rig.lb, rig.l0)?;
    let sinks_before = sink_total(&mut dataplane)?;
    let balancer = throughput(&mut dataplane, &rig, seconds)?;
    let forwarded = new_flows(&mut dataplane, &backends)?;
    ensure!(forwarded >= RIG_FLOWS as u64, "the balancer set up {forwarded} NAT flows, expected {RIG_FLOWS}");
    ensure!(sink_total(&mut dataplane)? > sinks_before, "the balancer delivered nothing");

    // A': the same service switched to DR (keepalived.conf edit → LvsTables update; the ring
    // and the resolved backends stay): MAC rewrite + redirect, no per-flow state.
    let errors = tables.apply(&[service("10.9.0.100", LbKind::Dr, &["10.9.1.2", "10.9.2.2", "10.9.3.2"], 80)], &mut dataplane);
    ensure!(errors.is_empty(), "switching the rig service to DR: {errors:?}");
    ensure!(dataplane.backend(backends[0])?.flags & BACKEND_RESOLVED != 0, "the DR update lost the resolved MACs");
    let direct = throughput(&mut dataplane, &rig, seconds)?;
    detach(&mut dataplane, PROG_LVS_BALANCER, &rig.lb, link)?;

    // B: nftables DNAT (conntrack, numgen) in the stack; l0 carries xdp_pass so the
    // generator's live XDP_TX frames are delivered.
    let link = attach(&mut dataplane, "xdp_pass", &rig.lb, rig.l0)?;
    let dir = tempfile::tempdir()?;
    let ruleset = dir.path().join("bench.nft");
    std::fs::write(
        &ruleset,
        "table ip bench {\n  chain pre {\n    type nat hook prerouting priority -100;\n    \
         ip daddr 10.9.0.100 tcp dport 80 dnat to numgen inc mod 3 map { 0 : 10.9.1.2, 1 : 10.9.2.2, 2 : 10.9.3.2 }\n  }\n}\n",
    )?;
    rig.lb.run("nft", &["-f", &ruleset.to_string_lossy()])?;
    let nftables = throughput(&mut dataplane, &rig, seconds)?;
    detach(&mut dataplane, "xdp_pass", &rig.lb, link)?;

    let added = |t: &Throughput| 1e3 / t.delivered_mpps - 1e3 / floor.delivered_mpps;
    println!("| path (one core: generator, forwarder and sinks on CPU 0) | Mpps at the sinks (median of {RIG_RUNS}) | offered Mpps | ns/packet added by forwarding | ÷ nftables |");
    println!("|---|---|---|---|---|");
    println!(
        "| generator floor (`xdp_gen` → l0, `xdp_sink` drops on arrival) | {:.2} | {:.2} | – | {:.2} |",
        floor.delivered_mpps,
        floor.offered_mpps,
        floor.delivered_mpps / nftables.delivered_mpps
    );
    println!(
        "| keepxdp `lvs_balancer` on l0 (driver mode), NAT, redirect to l1..l3 | {:.2} | {:.2} | {:.0} | {:.2} |",
        balancer.delivered_mpps,
        balancer.offered_mpps,
        added(&balancer),
        balancer.delivered_mpps / nftables.delivered_mpps
    );
    println!(
        "| keepxdp `lvs_balancer`, same service as DR (MAC rewrite + redirect, no state) | {:.2} | {:.2} | {:.0} | {:.2} |",
        direct.delivered_mpps,
        direct.offered_mpps,
        added(&direct),
        direct.delivered_mpps / nftables.delivered_mpps
    );
    println!(
        "| nftables DNAT (`numgen inc mod 3` map, conntrack, forwarding), `xdp_pass` on l0 | {:.2} | {:.2} | {:.0} | 1.00 |",
        nftables.delivered_mpps,
        nftables.offered_mpps,
        added(&nftables)
    );
    println!(
        "\n64-byte TCP ACKs to 10.9.0.100:80 from 10.9.0.0 with {RIG_FLOWS} source ports, BPF_PROG_TEST_RUN live frames \
         (batch 64) out of g0; ~{seconds:.0} s per run in calls of ≥ 0.5 s; veth rig gen → lb → rs1..rs3 \
         (each r0 counts and drops in XDP). Balancer (NAT) ÷ nftables: {:.2}× packets/s, {:.2}× less CPU per forwarded packet.",
        balancer.delivered_mpps / nftables.delivered_mpps,
        added(&nftables) / added(&balancer)
    );
    drop(dataplane);
    drop(rig);
    Ok(())
}

/// `keepxdp-bench lvs [cost|rig|all] [REPEAT]`.
pub fn main(args: &[String]) -> Result<()> {
    let part = args.first().map(String::as_str).unwrap_or("all");
    let repeat = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(2_000_000);
    let seconds: f64 = std::env::var("KEEPXDP_RIG_SECONDS").ok().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    match part {
        "cost" => cost(repeat),
        "rig" => rig(seconds),
        "all" => {
            cost(repeat)?;
            println!();
            rig(seconds)
        }
        other => bail!("keepxdp-bench lvs: unknown part {other} (cost, rig or all)"),
    }
}
