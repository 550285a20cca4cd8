//! keepalived 2.2.7's command line, so a unit's or /etc/default/keepalived's `DAEMON_ARGS`
//! carries over: `keepxdp -f FILE -n -D -S 0 -p /run/keepalived.pid` runs, `keepxdp -f FILE
//! -t` (in any order) checks, `--signum=NAME` prints a number. Every option keepalived takes is
//! accepted, with its meaning where keepxdp has one and a "not applicable" note otherwise.
use std::path::PathBuf;

use clap::Args;

/// keepalived's options, accepted by `keepxdp run` and `keepxdp check` (and without a
/// subcommand, as keepalived spells them).
#[derive(Args, Debug, Clone, Default, PartialEq)]
#[command(next_help_heading = "keepalived's options")]
pub struct KeepalivedFlags {
    /// keepxdp always stays in the foreground (accepted as keepalived's -n).
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Log keepxdp's own events in detail (debug level for keepxdp's targets).
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Log to the console (stderr, keepxdp's default; with -S, to both).
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// Log to syslog with this facility: 0-7 (local0-7), localN, user or daemon.
    #[arg(short = 'S', long = "log-facility", value_parser = parse_facility)]
    pub log_facility: Option<Facility>,
    /// keepalived's log file (not applicable: keepxdp logs to stderr or syslog).
    #[arg(short = 'g', long = "log-file", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub log_file: Option<String>,
    /// keepalived's --flush-log-file (not applicable).
    #[arg(long = "flush-log-file")]
    pub flush_log_file: bool,
    /// Do not log to syslog (keepxdp's default without -S).
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,
    /// Run only the VRRP side (the virtual_servers are not loaded).
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp_only: bool,
    /// Run only the health checkers and balancer (no vrrp_instance is run).
    #[arg(short = 'C', long = "check")]
    pub check_only: bool,
    /// keepalived's -B (no BFD: keepxdp has none).
    #[arg(short = 'B', long = "no_bfd")]
    pub no_bfd: bool,
    /// keepalived's --all (keepxdp always runs every part configured).
    #[arg(long = "all")]
    pub all: bool,
    /// Write keepxdp's pid to FILE (removed on a clean stop); a running keepxdp named there
    /// stops a second one with "already running (pid N)".
    #[arg(short = 'p', long = "pid")]
    pub pid: Option<PathBuf>,
    /// keepalived's VRRP child's pid file: keepxdp, one process, writes its own pid there.
    #[arg(short = 'r', long = "vrrp_pid")]
    pub vrrp_pid: Option<PathBuf>,
    /// keepalived's checker child's pid file: keepxdp writes its own pid there.
    #[arg(short = 'c', long = "checkers_pid")]
    pub checkers_pid: Option<PathBuf>,
    /// Run in this network namespace (/run/netns/NAME).
    #[arg(short = 's', long = "namespace")]
    pub namespace: Option<String>,
    /// keepalived's -X (release VIPs on exit: keepxdp always does, unless --keep-dataplane).
    #[arg(short = 'X', long = "release-vips")]
    pub release_vips: bool,
    /// keepalived's -V (not applicable: keepxdp releases the VIPs it holds on stop).
    #[arg(short = 'V', long = "dont-release-vrrp")]
    pub dont_release_vrrp: bool,
    /// keepalived's -I (not applicable: keepxdp does not use IPVS by default).
    #[arg(short = 'I', long = "dont-release-ipvs")]
    pub dont_release_ipvs: bool,
    /// keepalived's -R (not applicable: keepxdp has no children to respawn).
    #[arg(short = 'R', long = "dont-respawn")]
    pub dont_respawn: bool,
    /// keepalived's -d (use `keepxdp check --dump` for the resolved configuration).
    #[arg(short = 'd', long = "dump-conf")]
    pub dump_conf: bool,
    /// keepalived's -x (SNMP: not applicable).
    #[arg(short = 'x', long = "snmp")]
    pub snmp: bool,
    /// keepalived's -m (core dumps: not applicable).
    #[arg(short = 'm', long = "core-dump")]
    pub core_dump: bool,
    /// keepalived's -M (not applicable).
    #[arg(short = 'M', long = "core-dump-pattern", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub core_dump_pattern: Option<String>,
    /// keepalived's -u (not applicable: keepxdp writes its dumps root-only).
    #[arg(short = 'u', long = "umask")]
    pub umask: Option<String>,
}

/// A syslog facility (LOG_LOCAL0.., LOG_USER, LOG_DAEMON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub libc::c_int);

/// keepalived's spellings: `0`..`7` and `local0`..`local7` (LOG_LOCALn), `user`, `daemon`.
pub fn parse_facility(text: &str) -> Result<Facility, String> {
    let locals = [libc::LOG_LOCAL0, libc::LOG_LOCAL1, libc::LOG_LOCAL2, libc::LOG_LOCAL3, libc::LOG_LOCAL4, libc::LOG_LOCAL5, libc::LOG_LOCAL6, libc::LOG_LOCAL7];
    let lower = text.to_ascii_lowercase();
    let digit = lower.strip_prefix("local").unwrap_or(&lower);
    match (lower.as_str(), digit.parse::<usize>()) {
        ("user", _) => Ok(Facility(libc::LOG_USER)),
        ("daemon", _) => Ok(Facility(libc::LOG_DAEMON)),
        (_, Ok(n)) if n < 8 => Ok(Facility(locals[n])),
        _ => Err(format!("{text:?} is not a facility: 0-7, local0-local7, user or daemon")),
    }
}

impl KeepalivedFlags {
    /// The pid files to write, each once.
    pub fn pid_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [&self.pid, &self.vrrp_pid, &self.checkers_pid].into_iter().flatten().cloned().collect();
        files.dedup();
        files
    }

    /// What keepxdp makes of options that do not apply to it, for the log at startup.
    pub fn notes(&self) -> Vec<&'static str> {
        let mut notes = Vec::new();
        let mut note = |given: bool, text: &'static str| {
            if given {
                notes.push(text);
            }
        };
        note(self.log_file.is_some(), "-g/--log-file: not applicable, keepxdp logs to stderr (journald) or syslog (-S)");
        note(self.flush_log_file, "--flush-log-file: not applicable");
        note(self.no_bfd, "-B/--no_bfd: keepxdp has no BFD");
        note(self.dont_release_vrrp, "-V/--dont-release-vrrp: not applicable, keepxdp releases its VIPs on stop (see --keep-dataplane)");
        note(self.dont_release_ipvs, "-I/--dont-release-ipvs: not applicable");
        note(self.dont_respawn, "-R/--dont-respawn: not applicable, keepxdp is one process");
        note(self.dump_conf, "-d/--dump-conf: not applicable, use `keepxdp check --dump`");
        note(self.snmp, "-x/--snmp: not applicable, keepxdp has no SNMP agent");
        note(self.core_dump || self.core_dump_pattern.is_some(), "-m/-M: not applicable");
        note(self.umask.is_some(), "-u/--umask: not applicable, keepxdp's dumps are root-only");
        notes
    }
}

/// `-P` / `-C`: the parts of `model` keepxdp leaves out (-P: the virtual_servers, -C: the
/// vrrp_instances and their sync groups).
pub fn restrict(flags: &KeepalivedFlags, model: &mut crate::config::Config) {
    if flags.vrrp_only && !flags.check_only {
        model.virtual_servers.clear();
        model.virtual_server_groups.clear();
    }
    if flags.check_only && !flags.vrrp_only {
        model.vrrp_instances.clear();
        model.vrrp_sync_groups.clear();
    }
}

/// What the command line asks for before clap sees it.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// Arguments for keepxdp's own parser (a keepalived-style line rewritten to `run` or
    /// `check`).
    Args(Vec<String>),
    /// `--signum=NAME`.
    Signum(String),
}

const SUBCOMMANDS: &[&str] = &["run", "lvs", "ipvs", "guard-stats", "check", "status", "top", "help", "generate"];

/// keepalived's spelling to keepxdp's: no subcommand → `run`, `-t`/`--config-test` anywhere →
/// `check`; `-v` → `--version`.
pub fn rewrite(args: Vec<String>) -> Invocation {
    let mut rest = args.into_iter();
    let program = rest.next().unwrap_or_else(|| "keepxdp".into());
    let rest: Vec<String> = rest.collect();
    let mut signum = None;
    let mut kept = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if let Some(name) = arg.strip_prefix("--signum=") {
            signum = Some(name.to_string());
        } else if arg == "--signum" {
            signum = Some(iter.next().cloned().unwrap_or_default());
        } else {
            kept.push(arg.clone());
        }
    }
    if let Some(name) = signum {
        return Invocation::Signum(name);
    }
    let first = kept.first().map(String::as_str);
    let keepalived_style = match first {
        None => false,
        Some(first) => !SUBCOMMANDS.contains(&first) && !matches!(first, "-h" | "--help" | "-V" | "--version"),
    };
    let mut out = vec![program];
    if !keepalived_style {
        out.extend(kept);
        return Invocation::Args(out);
    }
    if kept.iter().any(|a| a == "-v") && kept.len() == 1 {
        out.push("--version".into());
        return Invocation::Args(out);
    }
    let is_test = |a: &String| a == "-t" || a == "--config-test" || a.starts_with("--config-test=");
    if kept.iter().any(is_test) {
        out.push("check".into());
        out.extend(kept.into_iter().filter(|a| !is_test(a)));
    } else {
        out.push("run".into());
        out.extend(kept);
    }
    Invocation::Args(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn rewritten(line: &str) -> String {
        match rewrite(args(line)) {
            Invocation::Args(args) => args.join(" "),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn keepalived_lines_become_run_or_check() {
        assert_eq!(rewritten("keepxdp -f /etc/k.conf -t"), "keepxdp check -f /etc/k.conf");
        assert_eq!(rewritten("keepxdp -t -f /etc/k.conf"), "keepxdp check -f /etc/k.conf");
        assert_eq!(rewritten("keepxdp --config-test=/tmp/log -f k.conf"), "keepxdp check -f k.conf");
        assert_eq!(rewritten("keepxdp --dont-fork -D -S 0 -p /run/k.pid"), "keepxdp run --dont-fork -D -S 0 -p /run/k.pid");
        assert_eq!(rewritten("keepxdp status --json"), "keepxdp status --json");
        assert_eq!(rewritten("keepxdp --help"), "keepxdp --help");
        assert_eq!(rewritten("keepxdp -v"), "keepxdp --version");
        assert_eq!(rewritten("keepxdp"), "keepxdp");
    }

    #[test]
    fn signum_anywhere() {
        assert_eq!(rewrite(args("keepxdp --signum=JSON")), Invocation::Signum("JSON".into()));
        assert_eq!(rewrite(args("keepxdp -f k.conf --signum RELOAD")), Invocation::Signum("RELOAD".into()));
    }

    #[derive(clap::Parser, Debug)]
    struct Probe {
        #[arg(short = 'f', long = "use-file")]
        config: Option<PathBuf>,
        #[command(flatten)]
        keepalived: KeepalivedFlags,
    }

    fn parse(line: &str) -> Result<Probe, clap::Error> {
        <Probe as clap::Parser>::try_parse_from(args(line))
    }

    #[test]
    fn a_debian_daemon_args_line_parses() {
        let probe = parse("keepxdp --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf -S 7 -P -p /run/keepalived.pid -r /run/vrrp.pid -c /run/checkers.pid -s blue").unwrap();
        let flags = probe.keepalived;
        assert!(flags.dont_fork && flags.log_console && flags.log_detail && flags.vrrp_only && !flags.check_only);
        assert_eq!(flags.log_facility, Some(Facility(libc::LOG_LOCAL7)));
        assert_eq!(flags.namespace.as_deref(), Some("blue"));
        assert_eq!(flags.pid_files().len(), 3);
        assert!(flags.notes().is_empty());
        let short = parse("keepxdp -n -l -D -C -S daemon -g -G -x").unwrap().keepalived;
        assert!(short.check_only && short.no_syslog && short.snmp);
        assert_eq!(short.log_facility, Some(Facility(libc::LOG_DAEMON)));
        assert_eq!(short.notes().len(), 2, "{:?}", short.notes());
    }

    #[test]
    fn a_bad_facility_is_refused_with_the_spellings() {
        let error = parse("keepxdp -S local9").unwrap_err().to_string();
        assert!(error.contains("0-7, local0-local7, user or daemon"), "{error}");
    }
}
