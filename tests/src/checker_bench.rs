//! `keepxdp-bench checkers`: 10,000 real servers checked with TCP_CHECK every second by
//! `keepxdp run` (release), in a fresh network namespace: keepxdp's CPU and RSS while it does
//! that, and the checker-verdict → ring-written latency when real servers flip.
//!
//! The real servers are 10,000 loopback listeners, 127.1.S.R:80 (S = 0..99 the virtual
//! server, R = 1..100), all in this process: one thread, one epoll set. A TCP connect succeeds
//! against a listening socket whether or not it is ever accepted (the kernel completes the
//! handshake into the accept queue), but unaccepted connections stay queued until the backlog
//! is full and then new SYNs are dropped: so each connection is accepted, held for
//! `HOLD` and then closed with SO_LINGER {on, 0}, which sends an RST. Held, because an RST
//! sent at once can reach keepxdp's socket before its non-blocking connect has been seen to
//! complete, and the check then fails with ECONNRESET (it did, in the first version of this
//! bench); by `HOLD` later keepxdp has closed its side. An RST rather than a FIN so that
//! neither side keeps a TIME_WAIT socket: 10,000 a second would fill the namespace's
//! TIME_WAIT table within a minute (and log overflows to the kernel log). 10,000 listeners need 10,000 file
//! descriptors: the soft RLIMIT_NOFILE is raised to 65536, or to the hard limit when that is
//! lower and cannot be raised (no CAP_SYS_RESOURCE: 20,000 in our CI container), for this
//! process and, inherited, for keepxdp.
//!
//! The virtual servers are DR, VIPs 10.2.0.1..100:80 with no vrrp_instance (a VIP no
//! instance owns is always forwarded); no traffic is sent to them.
use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use keepxdp_lab::{keepxdp::Keepxdp, netns::Netns};

const SERVICES: u32 = 100;
const PER_SERVICE: u32 = 100;
/// Real servers stopped (then started) per flap round: one per virtual server.
const FLAPPED: u32 = 100;
const FLAP_ROUNDS: u32 = 2;
/// How long an accepted connection is held before the RST (see above): 10,000/s × HOLD
/// file descriptors on top of the listeners'.
const HOLD: Duration = Duration::from_millis(250);

fn real_addr(service: u32, real: u32) -> SocketAddr {
    SocketAddr::from(([127, 1, service as u8, (real + 1) as u8], 80))
}

fn config() -> String {
    let mut text = String::from("global_defs {\n  router_id bench\n}\n");
    for service in 0..SERVICES {
        text.push_str(&format!(
            "virtual_server 10.2.0.{} 80 {{\n  delay_loop 1\n  lb_algo wrr\n  lb_kind DR\n  protocol TCP\n",
            service + 1
        ));
        for real in 0..PER_SERVICE {
            let addr = real_addr(service, real);
            text.push_str(&format!(
                "  real_server {} 80 {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n",
                addr.ip()
            ));
        }
        text.push_str("}\n");
    }
    text
}

/// Raises the soft RLIMIT_NOFILE to `wanted`, or to the hard limit when that is lower (raising
/// the hard limit needs CAP_SYS_RESOURCE, which a container's root may lack); fails when the
/// result is below `needed`.
fn raise_nofile(wanted: u64, needed: u64) -> Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid out pointer.
    ensure!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0, "getrlimit: {}", std::io::Error::last_os_error());
    if limit.rlim_cur < wanted {
        let mut raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max.max(wanted) };
        // SAFETY: valid pointers.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            raised = libc::rlimit { rlim_cur: limit.rlim_max.min(wanted), rlim_max: limit.rlim_max };
            // SAFETY: as above.
            ensure!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0, "setrlimit(RLIMIT_NOFILE): {}", std::io::Error::last_os_error());
        }
        limit = raised;
    }
    ensure!(limit.rlim_cur >= needed, "RLIMIT_NOFILE is {} (hard {}); {needed} needed", limit.rlim_cur, limit.rlim_max);
    Ok(limit.rlim_cur)
}

enum Command {
    /// Close these listeners (indexes into the address list).
    Stop(Vec<usize>),
    /// Listen on them again.
    Start(Vec<usize>),
}

/// The 10,000 listeners on one epoll thread inside the bench namespace.
struct Listeners {
    commands: mpsc::Sender<(Command, mpsc::Sender<Result<()>>)>,
    accepted: Arc<AtomicU64>,
    quit: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn bind(addr: SocketAddr, epoll: RawFd, index: usize) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: index as u64 };
    // SAFETY: valid epoll and listener fds, a valid event.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), &mut event) } != 0 {
        bail!("epoll_ctl: {}", std::io::Error::last_os_error());
    }
    Ok(listener)
}

/// Closes with SO_LINGER {on, 0}: an RST, no TIME_WAIT.
fn close_with_reset(stream: std::net::TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

impl Listeners {
    fn start(netns: &Netns, addrs: Vec<SocketAddr>) -> Result<Listeners> {
        let (commands, command_rx) = mpsc::channel::<(Command, mpsc::Sender<Result<()>>)>();
        let accepted = Arc::new(AtomicU64::new(0));
        let quit = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let path = netns.path();
        let (count, stop) = (accepted.clone(), quit.clone());
        let thread = std::thread::spawn(move || {
            let setup = (|| -> Result<(RawFd, HashMap<usize, TcpListener>)> {
                nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
                // SAFETY: plain syscall.
                let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
                ensure!(epoll >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
                let mut listeners = HashMap::new();
                for (index, addr) in addrs.iter().enumerate() {
                    listeners.insert(index, bind(*addr, epoll, index)?);
                }
                Ok((epoll, listeners))
            })();
            let (epoll, mut listeners) = match setup {
                Ok(ok) => {
                    let _ = ready_tx.send(Ok(()));
                    ok
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
            let mut held = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                while held.front().is_some_and(|(at, _): &(Instant, std::net::TcpStream)| at.elapsed() >= HOLD) {
                    if let Some((_, stream)) = held.pop_front() {
                        close_with_reset(stream);
                    }
                }
                while let Ok((command, done)) = command_rx.try_recv() {
                    let result = match command {
                        Command::Stop(indexes) => {
                            for index in indexes {
                                // Dropping the listener closes it (and removes it from epoll).
                                listeners.remove(&index);
                            }
                            Ok(())
                        }
                        Command::Start(indexes) => indexes.into_iter().try_for_each(|index| {
                            listeners.insert(index, bind(addrs[index], epoll, index)?);
                            Ok(())
                        }),
                    };
                    let _ = done.send(result);
                }
                // SAFETY: a valid epoll fd and buffer.
                let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, 20) };
                for event in events.iter().take(ready.max(0) as usize) {
                    let Some(listener) = listeners.get(&(event.u64 as usize)) else { continue };
                    while let Ok((stream, _)) = listener.accept() {
                        held.push_back((Instant::now(), stream));
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            drop(listeners);
            // SAFETY: ours, closed once.
            unsafe { libc::close(epoll) };
        });
        ready_rx.recv().context("listener thread")??;
        Ok(Listeners { commands, accepted, quit, thread: Some(thread) })
    }

    fn command(&self, command: Command) -> Result<()> {
        let (done_tx, done_rx) = mpsc::channel();
        self.commands.send((command, done_tx))?;
        done_rx.recv_timeout(Duration::from_secs(10))?
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// utime + stime of `pid`, in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').context("stat")?.1.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// VmRSS, RssAnon, RssFile, RssShmem of `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<[u64; 4]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok([field("VmRSS:"), field("RssAnon:"), field("RssFile:"), field("RssShmem:")])
}

/// Resident KiB of `pid`'s mappings of BPF maps (/proc/PID/smaps, `anon_inode:bpf-map`):
/// the mmapped Maglev rings, counted in VmRSS (as RssFile) for every mapping of them.
fn bpf_map_rss_kib(pid: u32) -> Result<(u64, usize)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let (mut kib, mut mappings, mut in_map) = (0, 0, false);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            in_map = line.contains("bpf-map");
            mappings += usize::from(in_map);
        } else if in_map && let Some(rest) = line.strip_prefix("Rss:") {
            kib += rest.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok((kib, mappings))
}

fn status(keepxdp: &Keepxdp) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&keepxdp.status_json()?)?)
}

/// Real servers keepxdp has up (from status).
fn up_count(status: &serde_json::Value) -> usize {
    status["lvs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["backends"].as_array().into_iter().flatten())
        .filter(|b| b["up"] == true)
        .count()
}

fn wait_status(keepxdp: &Keepxdp, what: &str, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if done(&status(keepxdp)?) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("{what}: not within {limit:?}\n{}", keepxdp.child.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `keepxdp run` measured.
struct Measured {
    cpu: f64,
    cpu_max: f64,
    /// VmRSS, RssAnon, RssFile, RssShmem (KiB), the largest VmRSS sample.
    rss: [u64; 4],
    bpf_kib: u64,
    bpf_mappings: usize,
    rss_end: u64,
    probes: f64,
    latency: serde_json::Value,
    down_times: Vec<Duration>,
    up_times: Vec<Duration>,
    socket_after: Duration,
    all_probed_after: Duration,
    errors: usize,
}

fn measure(binary: &std::path::Path, netns: &Netns, listeners: &Listeners, extra: &[&str], seconds: u64) -> Result<Measured> {
    let total = (SERVICES * PER_SERVICE) as usize;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let keepxdp = Keepxdp::start_with(binary, netns, dir.path(), &config(), extra)?;
    let pid = keepxdp.child.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
    ensure!(comm.trim() == "keepxdp", "pid {pid} is {comm:?}, not keepxdp");
    let socket_after = started.elapsed();

    // Warm-up: every checker has probed once (the first probes are spread over `warmup` =
    // delay_loop), then a few seconds more.
    wait_status(&keepxdp, "every checker probed", Duration::from_secs(15), |s| {
        s["lvs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["backends"].as_array().into_iter().flatten())
            .filter(|b| b["checkers"][0]["latency_ms"].is_number() && b["up"] == true)
            .count()
            == total
    })?;
    let all_probed_after = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));

    // Steady state: CPU from utime + stime, RSS sampled every second.
    let ticks_per_second = {
        // SAFETY: plain libc call.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 { ticks as f64 } else { 100.0 }
    };
    let (ticks0, accepted0, t0) = (cpu_ticks(pid)?, listeners.accepted.load(Ordering::Relaxed), Instant::now());
    let mut rss = [0u64; 4];
    let mut per_second = Vec::new();
    let mut last = ticks0;
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let sample = rss_kib(pid)?;
        if sample[0] > rss[0] {
            rss = sample;
        }
        let ticks = cpu_ticks(pid)?;
        per_second.push((ticks - last) as f64 / ticks_per_second * 100.0);
        last = ticks;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid)? - ticks0) as f64 / ticks_per_second / elapsed * 100.0;
    let probes = (listeners.accepted.load(Ordering::Relaxed) - accepted0) as f64 / elapsed;
    let cpu_max = per_second.iter().copied().fold(0.0, f64::max);

    // Flaps: stop one real server per virtual server, wait until keepxdp has all of them
    // down, start them again, wait until all are up; the histogram of verdict → maps written
    // comes from keepxdp's status.
    let flapped: Vec<usize> = (0..FLAPPED as usize).map(|s| s * PER_SERVICE as usize + s % PER_SERVICE as usize).collect();
    let before = status(&keepxdp)?["lvs_update_latency_us"]["count"].as_u64().unwrap_or(0);
    let mut down_times = Vec::new();
    let mut up_times = Vec::new();
    for _ in 0..FLAP_ROUNDS {
        let stopped = Instant::now();
        listeners.command(Command::Stop(flapped.clone()))?;
        wait_status(&keepxdp, "the stopped real servers down", Duration::from_secs(10), |s| up_count(s) == total - flapped.len())?;
        down_times.push(stopped.elapsed());
        let restarted = Instant::now();
        listeners.command(Command::Start(flapped.clone()))?;
        wait_status(&keepxdp, "the restarted real servers up", Duration::from_secs(10), |s| up_count(s) == total)?;
        up_times.push(restarted.elapsed());
    }
    wait_status(&keepxdp, "every flip counted", Duration::from_secs(2), |s| {
        s["lvs_update_latency_us"]["count"].as_u64().unwrap_or(0) >= before + (2 * FLAPPED * FLAP_ROUNDS) as u64
    })?;
    let latency = status(&keepxdp)?["lvs_update_latency_us"].clone();
    let rss_end = rss_kib(pid)?[0];
    let (bpf_kib, bpf_mappings) = bpf_map_rss_kib(pid)?;
    let errors = keepxdp.child.log_text().lines().filter(|l| l.contains("ERROR")).count();
    drop(keepxdp);
    Ok(Measured {
        cpu,
        cpu_max,
        rss,
        bpf_kib,
        bpf_mappings,
        rss_end,
        probes,
        latency,
        down_times,
        up_times,
        socket_after,
        all_probed_after,
        errors,
    })
}

/// The configurations measured: keepxdp's defaults, and the rings sized for this
/// configuration (100 services; the smallest prime above 100 × 100 real servers).
const RUNS_OF: &[(&str, &[&str])] = &[
    ("defaults (128 services × 65537-slot rings)", &[]),
    ("`--max-services 100 --maglev-size 10007`", &["--max-services", "100", "--maglev-size", "10007"]),
];

pub fn main(args: &[String]) -> Result<()> {
    keepxdp_lab::require_root()?;
    let seconds: u64 = args.first().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let binary = match std::env::var_os("KEEPXDP_BIN") {
        Some(path) => PathBuf::from(path),
        None => bail!("set KEEPXDP_BIN to a release keepxdp (cargo xtask bench does)"),
    };
    let total = (SERVICES * PER_SERVICE) as usize;
    let nofile = raise_nofile(65536, total as u64 + 4096)?;
    let addrs: Vec<SocketAddr> = (0..SERVICES).flat_map(|s| (0..PER_SERVICE).map(move |r| real_addr(s, r))).collect();
    let netns = Netns::new("ck")?;
    let listeners = Listeners::start(&netns, addrs)?;
    let mut results = Vec::new();
    for (_, extra) in RUNS_OF {
        results.push(measure(&binary, &netns, &listeners, extra, seconds)?);
    }
    drop(listeners);
    drop(netns);

    let mib = |kib: u64| kib as f64 / 1024.0;
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let row = |name: &str, goal: &str, cell: &dyn Fn(&Measured) -> String| {
        println!("| {name} | {goal} | {} |", results.iter().map(cell).collect::<Vec<_>>().join(" | "));
    };
    let field = |m: &Measured, name: &str| m.latency[name].as_u64().unwrap_or(0);
    println!(
        "| {total} real servers, TCP_CHECK every 1 s, keepxdp release | goal | {} |",
        RUNS_OF.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(RUNS_OF.len()));
    row(&format!("CPU, mean over {seconds} s steady state (utime + stime), % of one core"), "< 100 %", &|m| {
        format!("{:.1} % (worst second {:.0} %) {}", m.cpu, m.cpu_max, verdict(m.cpu < 100.0))
    });
    row("RSS (VmRSS, largest 1 s sample)", "< 64 MiB", &|m| {
        format!(
            "{:.1} MiB (anon {:.1}, file {:.1}) {}",
            mib(m.rss[0]),
            mib(m.rss[1]),
            mib(m.rss[2]),
            verdict(mib(m.rss[0]) < 64.0)
        )
    });
    row("… of it, mappings of BPF maps (the mmapped Maglev rings)", "", &|m| {
        format!("{:.1} MiB in {} mappings", mib(m.bpf_kib), m.bpf_mappings)
    });
    row("… VmRSS without them (after the flaps)", "< 64 MiB", &|m| {
        let rest = mib(m.rss_end.saturating_sub(m.bpf_kib));
        format!("{rest:.1} MiB {}", verdict(rest < 64.0))
    });
    row("checker verdict → ring and maps written, p50", "", &|m| format!("{} µs ({} flips)", field(m, "p50"), field(m, "count")));
    row("checker verdict → ring and maps written, p99", "< 1000 µs", &|m| {
        format!("{} µs {}", field(m, "p99"), verdict(field(m, "p99") < 1000))
    });
    row("checker verdict → ring and maps written, max", "", &|m| format!("{} µs", field(m, "max")));
    row("… the ring and maps update alone (no queueing), p50 / p99 / max", "", &|m| {
        format!("{} / {} / {} µs", field(m, "write_p50"), field(m, "write_p99"), field(m, "write_max"))
    });
    row("probes accepted by the listeners", &format!("≈ {total} /s"), &|m| format!("{:.0} /s", m.probes));
    let secs = |v: &[Duration]| v.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(", ");
    row(&format!("{FLAPPED} real servers stopped: all down after (s; bound 3 s + ≤ 0.1 s polling)"), "", &|m| secs(&m.down_times));
    row("… started again: all up after (s; bound 2 s + ≤ 0.1 s polling)", "", &|m| secs(&m.up_times));
    row("control socket up / every checker probed and up after start", "", &|m| {
        format!("{:.1} s / {:.1} s", m.socket_after.as_secs_f64(), m.all_probed_after.as_secs_f64())
    });
    row("ERROR lines in keepxdp's log", "0", &|m| m.errors.to_string());
    println!(
        "\n{FLAPPED} real servers (one per virtual server) stopped and started {FLAP_ROUNDS} times per run; \
         RLIMIT_NOFILE {nofile}; listeners hold each accepted connection {} ms, then RST.",
        HOLD.as_millis()
    );
    Ok(())
}
