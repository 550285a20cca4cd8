//! The `keepxdp` command line.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};
use keepxdp::{
    bpf::{LvsLimits, format_table, read_guard_stats},
    config::{self, LoadOptions},
    ops::keepalived_args::{Invocation, KeepalivedFlags},
    ctl::{read_status, status_table},
    daemon::{LbBackend, RunOptions, UnusableConfig, run},
};
use vrrp_common::pins::DEFAULT_PIN_DIR;

const DEFAULT_CONTROL_SOCKET: &str = "/run/keepxdp.sock";

/// The end of `keepxdp --help` and of keepxdp(8).
const KEEPALIVED_STYLE: &str = "\
keepalived's command line works too: with no subcommand keepxdp runs (`keepxdp -n -D -f FILE`), \
and -t/--config-test anywhere checks (`keepxdp -f FILE -t`); --signum=DATA|STATS|JSON|RELOAD|STOP \
prints a signal's number. SIGHUP reloads (a bad file keeps the running configuration), SIGUSR1, \
SIGUSR2 and SIGRTMIN+2 write keepalived's data, stats and JSON dumps (/tmp/keepalived.*), \
SIGTERM stops.

Files: /etc/keepalived/keepalived.conf (read), /etc/default/keepxdp (DAEMON_ARGS for the unit), \
/run/keepxdp.sock (control socket, root only), /sys/fs/bpf/keepxdp (pinned programs and maps).";

#[derive(Parser)]
#[command(
    name = "keepxdp",
    version,
    about = "XDP-accelerated VRRP and LVS data plane that reads keepalived.conf",
    after_long_help = KEEPALIVED_STYLE
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller in the foreground until SIGTERM.
    Run {
        /// keepalived.conf to read.
        #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
        config: PathBuf,
        /// keepalived's config id: selects `@ID` conditional lines (default: the host name).
        #[arg(short = 'i', long)]
        config_id: Option<String>,
        /// Where programs and maps are pinned (a bpffs is mounted if none is there).
        #[arg(long, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// Unix socket serving the status document.
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
        /// On SIGTERM leave the XDP programs attached and pinned (the next keepxdp replaces
        /// them); VRRP still stops cleanly.
        #[arg(long)]
        keep_dataplane: bool,
        /// Services the balancer can hold (each gets a Maglev ring).
        #[arg(long, default_value_t = vrrp_common::lvs::DEFAULT_MAX_SERVICES)]
        max_services: u32,
        /// Maglev ring size per service (a prime, at least 100 × the real servers of a service).
        #[arg(long, default_value_t = vrrp_common::lvs::DEFAULT_MAGLEV_SIZE)]
        maglev_size: u32,
        /// Conntrack entries (persistence, flows on changed ring slots).
        #[arg(long, default_value_t = vrrp_common::lvs::DEFAULT_CONNTRACK_ENTRIES)]
        conntrack_entries: u32,
        /// Shared NAT state entries (two per NAT connection).
        #[arg(long, default_value_t = vrrp_common::lvs::DEFAULT_NAT_ENTRIES)]
        nat_entries: u32,
        /// What forwards the virtual_servers: keepxdp's XDP balancer, or the kernel's IPVS
        /// (needs a kernel with ip_vs).
        #[arg(long, value_enum, default_value = "xdp")]
        lb_backend: LbBackend,
        /// Where keepalived's signals write their dumps: SIGUSR1 keepalived.data, SIGUSR2
        /// keepalived.stats, SIGRTMIN+2 keepalived.json.
        #[arg(long, default_value = keepxdp::ops::dump_files::DEFAULT_DUMP_DIR)]
        dump_dir: PathBuf,
        /// Serve Prometheus metrics on ADDR (`GET /metrics`, e.g. 127.0.0.1:9650); off unless given.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        keepalived: KeepalivedFlags,
    },
    /// Print the balancer's services, real servers and counters from the pinned maps, like
    /// `ipvsadm -Ln --stats`.
    Lvs {
        #[command(subcommand)]
        action: Option<LvsAction>,
        #[arg(long, global = true, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// The running keepxdp's control socket: its checkers' states are added when it answers.
        #[arg(long, global = true, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Connections, packets and bytes per second over --interval, like `ipvsadm -Ln --rate`.
        #[arg(long, conflicts_with = "connections")]
        rate: bool,
        /// Seconds between the two reads of --rate.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// The connections the data plane keeps state for, like `ipvsadm -Lcn`.
        #[arg(short = 'c', long)]
        connections: bool,
        /// Exact numbers (accepted as ipvsadm's --exact; keepxdp never abbreviates them).
        #[arg(long)]
        exact: bool,
    },
    /// Watch instances, services, real servers and their rates, refreshed every second (q quits).
    Top {
        #[arg(long, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
    /// Print the kernel's IPVS table as keepalived.conf virtual_server blocks (needs a kernel
    /// with ip_vs; keepxdp's XDP data plane does not).
    Ipvs {
        #[command(subcommand)]
        command: IpvsCommand,
    },
    /// Print the VRRP guard's counters from the pinned map (per interface, family, VRID).
    GuardStats {
        #[arg(long, default_value = DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a keepalived.conf (also spelled `keepxdp -t -f FILE`, as keepalived does).
    /// Exit code: 0 usable (warnings allowed), 4 errors but keepxdp would run with the bad
    /// parts skipped, 3 the configuration cannot be used at all.
    Check {
        #[arg(short = 'f', long = "use-file", default_value = "/etc/keepalived/keepalived.conf")]
        config: PathBuf,
        /// keepalived's config id: selects `@ID` conditional lines (default: the host name).
        #[arg(short = 'i', long)]
        config_id: Option<String>,
        /// Print the resolved model as JSON on stdout.
        #[arg(long)]
        dump: bool,
        #[command(flatten)]
        keepalived: KeepalivedFlags,
    },
    /// Show a running keepxdp's state: VRRP instances, guard attachments.
    Status {
        #[arg(long, default_value = DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
        /// The status document as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// `keepxdp lvs drain|undrain`: runtime weight 0 of one real server, kept through reloads.
#[derive(Subcommand)]
enum LvsAction {
    /// Take a real server out of a virtual_server's ring (weight 0, like `ipvsadm -e -w 0`)
    /// while its established flows keep reaching it; `--wait` watches it empty.
    Drain {
        /// The virtual_server, VIP:PORT ([V6]:PORT for IPv6).
        service: std::net::SocketAddr,
        /// The real server, RS:PORT.
        real: std::net::SocketAddr,
        /// tcp, udp, sctp, or any (every virtual_server at VIP:PORT).
        #[arg(long, default_value = "any")]
        protocol: String,
        /// Watch until no packet has reached the real server for --quiet seconds.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 5)]
        quiet: u64,
        /// Give up waiting (exit 1) after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Put a drained real server back into the ring with its configured weight.
    Undrain {
        service: std::net::SocketAddr,
        real: std::net::SocketAddr,
        #[arg(long, default_value = "any")]
        protocol: String,
    },
}

impl LvsAction {
    /// The control request's target, drain or not, and the watch (quiet, timeout).
    #[allow(clippy::type_complexity)]
    fn into_request(self) -> Result<(keepxdp::lvs::DrainTarget, bool, Option<(std::time::Duration, std::time::Duration)>)> {
        let (service, real, protocol, drained, wait) = match self {
            LvsAction::Drain { service, real, protocol, wait, quiet, timeout } => {
                let wait = wait.then(|| (std::time::Duration::from_secs(quiet), std::time::Duration::from_secs(timeout)));
                (service, real, protocol, true, wait)
            }
            LvsAction::Undrain { service, real, protocol } => (service, real, protocol, false, None),
        };
        let line = format!("drain {protocol} {service} {real}");
        match keepxdp::ctl::ControlRequest::parse(&line).map_err(|e| anyhow::anyhow!(e))? {
            keepxdp::ctl::ControlRequest::Drain { target, .. } => Ok((target, drained, wait)),
            keepxdp::ctl::ControlRequest::Status => unreachable!("a drain line"),
        }
    }
}

/// `keepxdp generate man|completions DIR`: a packaging hook kept out of `Cli` (and so out of
/// the man pages and completions it writes).
#[derive(Parser)]
#[command(name = "keepxdp generate")]
struct GenerateCli {
    #[arg(value_enum)]
    what: keepxdp::ops::generate::Generated,
    dir: PathBuf,
}

#[derive(Subcommand)]
enum IpvsCommand {
    /// Dump the live IPVS table as virtual_server blocks.
    Import,
}

fn main() -> ExitCode {
    // Give freed heap back to the kernel above 128 KiB of free top (glibc keeps up to 128 MiB
    // by default with its dynamic threshold): 10,000 health checkers allocate and free a
    // probe each per second, and the default left ~20 MiB of freed memory resident.
    // SAFETY: mallopt is a plain libc tuning call, made before any other thread exists.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024) };
    // keepalived's spelling (`keepxdp -f FILE -t`, `keepxdp -n -D -p PIDFILE`, `--signum=NAME`).
    let args = match keepxdp::ops::keepalived_args::rewrite(std::env::args().collect()) {
        Invocation::Signum(name) => return signum(&name),
        Invocation::Args(args) => args,
    };
    if args.get(1).map(String::as_str) == Some("generate") {
        return generate(GenerateCli::parse_from(&args[1..]));
    }
    let cli = Cli::parse_from(args);
    let flags = match &cli.command {
        Command::Run { keepalived, .. } | Command::Check { keepalived, .. } => keepalived.clone(),
        _ => KeepalivedFlags::default(),
    };
    keepxdp::ops::logging::init(&flags);
    if let Some(namespace) = &flags.namespace
        && let Err(error) = enter_namespace(namespace)
    {
        eprintln!("keepxdp: error: {error:#}");
        return ExitCode::FAILURE;
    }
    match execute(cli) {
        Ok(code) => code,
        Err(error) => {
            if let Some(unusable) = error.downcast_ref::<UnusableConfig>() {
                // Each diagnostic was logged as it was found; end with the summary.
                eprintln!("keepxdp: error: {unusable}");
            } else {
                eprintln!("keepxdp: error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn generate(cli: GenerateCli) -> ExitCode {
    use clap::CommandFactory as _;
    match keepxdp::ops::generate::generate(Cli::command(), cli.what, &cli.dir) {
        Ok(paths) => {
            paths.iter().for_each(|path| println!("{}", path.display()));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("keepxdp: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--signum=NAME`: the signal's number, as `keepalived --signum` prints it.
fn signum(name: &str) -> ExitCode {
    match keepxdp::ops::signals::signum(name) {
        Ok(number) => {
            println!("{number}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// keepalived's `-s NETNS`: run inside /run/netns/NETNS (before any thread or socket exists).
fn enter_namespace(name: &str) -> Result<()> {
    use anyhow::Context as _;
    let path = std::path::Path::new("/run/netns").join(name);
    let file = std::fs::File::open(&path).with_context(|| format!("network namespace {name}: opening {}", path.display()))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("entering network namespace {name}"))?;
    Ok(())
}

fn check(path: PathBuf, config_id: Option<String>, dump: bool) -> Result<ExitCode> {
    let options = LoadOptions {
        config_id,
        environment: config::Environment { interfaces: config::system_interfaces() },
    };
    let loaded = config::load(&path, &options);
    for diagnostic in &loaded.diagnostics.items {
        eprintln!("{diagnostic}");
    }
    // What `run` would skip or treat differently in the balancer, as `run` logs it.
    let balancer = loaded.runnable().map(|model| keepxdp::lvs::plan(model).1).unwrap_or_default();
    for warning in &balancer {
        match warning.split_once(": ") {
            Some((at, message)) => eprintln!("{at}: warning: {message}"),
            None => eprintln!("warning: {warning}"),
        }
    }
    let errors = loaded.diagnostics.errors().count();
    let warnings = loaded.diagnostics.warnings().count() + balancer.len();
    let code = loaded.diagnostics.exit_code();
    let verdict = match code {
        0 => "usable",
        4 => "usable with the erroneous parts skipped",
        _ => "cannot be used",
    };
    eprintln!("{}: {errors} error(s), {warnings} warning(s): {verdict}", path.display());
    if dump
        && let Some(model) = &loaded.config {
            println!("{}", serde_json::to_string_pretty(model)?);
        }
    Ok(ExitCode::from(code as u8))
}

fn execute(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            config,
            config_id,
            pin_dir,
            control_socket,
            keep_dataplane,
            max_services,
            maglev_size,
            conntrack_entries,
            nat_entries,
            lb_backend,
            dump_dir,
            metrics_listen,
            keepalived,
        } => {
            let limits = LvsLimits { max_services, maglev_size, conntrack_entries, nat_entries };
            if !keepxdp::lvs::maglev::is_prime(maglev_size) {
                anyhow::bail!("--maglev-size {maglev_size} is not a prime (Maglev needs one, e.g. 65537, 251, 4099)");
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run(RunOptions { config, config_id, pin_dir, control_socket, keep_dataplane, limits, lb_backend, dump_dir, keepalived, metrics_listen }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Lvs { action: Some(action), pin_dir, control_socket, .. } => {
            let (target, drained, wait) = action.into_request()?;
            let done = keepxdp::observe::drain::command(&pin_dir, &control_socket, target, drained, wait)?;
            Ok(if done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Lvs { action: None, pin_dir, control_socket, json, rate, interval, connections, exact: _ } => {
            use keepxdp::observe::command::{LvsView, lvs};
            let view = match (rate, connections) {
                (true, _) if !(0.05..=3600.0).contains(&interval) => anyhow::bail!("--interval {interval}: give seconds between 0.05 and 3600"),
                (true, _) => LvsView::Rate(std::time::Duration::from_secs_f64(interval)),
                (_, true) => LvsView::Connections,
                _ => LvsView::Stats,
            };
            print!("{}", lvs(&pin_dir, &control_socket, view, json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Top { pin_dir, control_socket } => {
            keepxdp::top::run(&pin_dir, &control_socket, std::time::Duration::from_secs(1))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ipvs { command: IpvsCommand::Import } => {
            let socket = keepxdp::lvs::ipvs::IpvsSocket::connect()?;
            print!("{}", keepxdp::lvs::ipvs::to_keepalived(&socket.table()?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, config_id, dump, keepalived: _ } => check(config, config_id, dump),
        Command::GuardStats { pin_dir, json } => {
            let rows = read_guard_stats(&pin_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", format_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { control_socket, json } => {
            let document = read_status(&control_socket)?;
            if json {
                print!("{document}");
            } else {
                print!("{}", status_table(&document)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        let args = line.split_whitespace().map(String::from).collect();
        let Invocation::Args(args) = keepxdp::ops::keepalived_args::rewrite(args) else { panic!("not args") };
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn keepalived_command_lines_parse_into_run_and_check() {
        let Command::Check { config, keepalived, .. } = parse("keepxdp -f /etc/k.conf -t -D").command else { panic!("not check") };
        assert_eq!(config, PathBuf::from("/etc/k.conf"));
        assert!(keepalived.log_detail);
        let Command::Run { config, pin_dir, keepalived, .. } =
            parse("keepxdp --dont-fork --log-console -D -S 0 -p /run/k.pid -f /etc/k.conf --pin-dir /sys/fs/bpf/x").command
        else {
            panic!("not run")
        };
        assert_eq!((config, pin_dir), (PathBuf::from("/etc/k.conf"), PathBuf::from("/sys/fs/bpf/x")));
        assert_eq!(keepalived.pid_files(), [PathBuf::from("/run/k.pid")]);
        assert!(matches!(parse("keepxdp run -n -P -f k.conf").command, Command::Run { keepalived: KeepalivedFlags { vrrp_only: true, .. }, .. }));
    }
}
