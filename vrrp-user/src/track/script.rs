//! vrrp_script: run the script every `interval`, kill it after `timeout`, and turn results
//! into up/down with keepalived's rise/fall counting.
use std::{os::unix::fs::MetadataExt, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use tokio::{process::Command, sync::watch};

use super::priority::Reading;
use crate::config::model::VrrpScript;

/// rise/fall counting (pure): `rise` successes in a row bring a down script up, `fall`
/// failures in a row take an up script down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    pub up: bool,
    streak: u32,
}

impl RiseFall {
    /// keepalived starts scripts as up, or down with `init_fail`.
    pub fn new(init_fail: bool) -> RiseFall {
        RiseFall { up: !init_fail, streak: 0 }
    }

    pub fn record(self, success: bool, rise: u32, fall: u32) -> RiseFall {
        if success == self.up {
            return RiseFall { up: self.up, streak: 0 };
        }
        let streak = self.streak + 1;
        let needed = if success { rise } else { fall };
        if streak >= needed.max(1) { RiseFall { up: success, streak: 0 } } else { RiseFall { up: self.up, streak } }
    }
}

/// keepalived's words: the script and its arguments, split on spaces outside quotes.
pub fn argv(script: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in script.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// keepalived's script security: with `enable_script_security`, a script (or a directory on
/// its path) that a non-root user could modify is refused.
pub fn check_security(program: &Path) -> Result<()> {
    let resolved = if program.is_absolute() {
        program.to_path_buf()
    } else {
        let path = std::env::var("PATH").unwrap_or_default();
        path.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.exists()).with_context(|| format!("{} is not on PATH", program.display()))?
    };
    for candidate in resolved.ancestors() {
        if candidate.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::metadata(candidate).with_context(|| format!("{} does not exist", candidate.display()))?;
        let writable_by_others = meta.mode() & 0o022 != 0 && !(meta.is_dir() && meta.mode() & 0o1000 != 0 && meta.uid() == 0);
        if meta.uid() != 0 || writable_by_others {
            bail!("{} is writable by a non-root user; refused by enable_script_security", candidate.display());
        }
    }
    Ok(())
}

/// How a command run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit code (None when killed by a signal).
    Exited(Option<i32>),
    /// Could not be started or waited for.
    Failed(String),
    TimedOut,
}

/// Who a script runs as (`user USER [GROUP]`): numeric ids resolved when the config is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `USER [GROUP]` as keepalived writes it; the group defaults to the user's own.
    pub fn resolve(spec: &str) -> Result<RunAs, String> {
        let mut words = spec.split_whitespace();
        let user_name = words.next().ok_or("user: no user name")?;
        let user = nix::unistd::User::from_name(user_name)
            .map_err(|e| format!("user {user_name}: {e}"))?
            .ok_or_else(|| format!("user {user_name} does not exist"))?;
        let gid = match words.next() {
            Some(group_name) => nix::unistd::Group::from_name(group_name)
                .map_err(|e| format!("group {group_name}: {e}"))?
                .ok_or_else(|| format!("group {group_name} does not exist"))?
                .gid
                .as_raw(),
            None => user.gid.as_raw(),
        };
        Ok(RunAs { uid: user.uid.as_raw(), gid })
    }
}

/// Runs a command (output discarded), killing it after `timeout`.
pub async fn run_command(argv: &[String], timeout: Duration) -> Ended {
    run_command_as(argv, timeout, None).await
}

/// `run_command` as another user (setgid, then setuid, in the child).
pub async fn run_command_as(argv: &[String], timeout: Duration, run_as: Option<RunAs>) -> Ended {
    let Some((program, args)) = argv.split_first() else { return Ended::Failed("empty command".into()) };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    if let Some(run_as) = run_as {
        command.uid(run_as.uid).gid(run_as.gid);
    }
    let child = command.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return Ended::Failed(format!("cannot run {program}: {error}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => Ended::Exited(status.code()),
        Ok(Err(error)) => Ended::Failed(format!("waiting for {program}: {error}")),
        Err(_) => Ended::TimedOut,
    }
}

/// One run: true when the script exits 0 within `timeout`.
pub async fn run_once(argv: &[String], timeout: Duration) -> bool {
    run_command(argv, timeout).await == Ended::Exited(Some(0))
}

/// Runs `script` forever, publishing its reading.
pub async fn run(script: VrrpScript, security: bool, reading: watch::Sender<Reading>) {
    let words = argv(script.script.as_deref().unwrap_or_default());
    if security
        && let Err(error) = words.first().map(|p| check_security(Path::new(p))).unwrap_or_else(|| Ok(())) {
            tracing::error!(script = script.name, "{error:#}; the script is disabled");
            return;
        }
    let interval = Duration::from_secs_f64(script.interval);
    let timeout = script.timeout.map_or(interval, Duration::from_secs_f64);
    let mut state = RiseFall::new(script.init_fail);
    reading.send_replace(if state.up { Reading::Up } else { Reading::Down });
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let success = run_once(&words, timeout).await;
        let next = state.record(success, script.rise, script.fall);
        if next.up != state.up {
            tracing::info!(script = script.name, up = next.up, "vrrp_script changed");
        }
        state = next;
        reading.send_replace(if state.up { Reading::Up } else { Reading::Down });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_that_many_results_in_a_row() {
        let mut state = RiseFall::new(false);
        for _ in 0..2 {
            state = state.record(false, 2, 3);
            assert!(state.up, "fall 3: two failures are not enough");
        }
        state = state.record(false, 2, 3);
        assert!(!state.up);
        state = state.record(true, 2, 3);
        assert!(!state.up, "rise 2");
        state = state.record(false, 2, 3);
        state = state.record(true, 2, 3);
        assert!(!state.up, "the streak restarts after a failure");
        state = state.record(true, 2, 3);
        assert!(state.up);
    }

    #[test]
    fn init_fail_starts_down() {
        assert!(!RiseFall::new(true).up);
    }

    #[test]
    fn argv_splits_on_spaces_outside_quotes() {
        assert_eq!(argv("/bin/sh -c 'exit 1'"), ["/bin/sh", "-c", "exit 1"]);
        assert_eq!(argv("  killall  -0 haproxy "), ["killall", "-0", "haproxy"]);
    }

    #[tokio::test]
    async fn a_script_succeeds_fails_and_times_out() {
        assert!(run_once(&argv("/bin/true"), Duration::from_secs(2)).await);
        assert!(!run_once(&argv("/bin/false"), Duration::from_secs(2)).await);
        assert!(!run_once(&argv("/bin/sleep 5"), Duration::from_millis(100)).await);
        assert!(!run_once(&argv("/nonexistent/script"), Duration::from_secs(1)).await);
    }

    #[test]
    fn script_security_refuses_a_world_writable_script() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_security(&script).unwrap_err().to_string();
        assert!(error.contains("writable by a non-root user"), "{error}");
        assert!(check_security(Path::new("/bin/true")).is_ok());
    }
}
