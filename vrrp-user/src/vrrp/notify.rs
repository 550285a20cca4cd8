//! Notify scripts on state changes, as keepalived runs them: `notify_master` / `_backup` /
//! `_fault` / `_stop` as written, and `notify` with `INSTANCE|GROUP NAME STATE PRIORITY`
//! appended. They run in the background with a time limit: a hanging script never holds
//! the state machine.
use std::time::Duration;

use super::fsm::State;
use crate::{config::model::Notify, track::script};

/// keepalived's default notify time limit is generous; a stuck script is killed after it.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The command lines to run when `name` (an instance, or a sync group) enters `state`.
pub fn commands(notify: &Notify, kind: &str, name: &str, state: State, priority: u8) -> Vec<Vec<String>> {
    let (specific, word) = match state {
        State::Master => (&notify.notify_master, "MASTER"),
        State::Backup => (&notify.notify_backup, "BACKUP"),
        State::Fault => (&notify.notify_fault, "FAULT"),
        State::Stop => (&notify.notify_stop, "STOP"),
        State::Initialize => return Vec::new(),
    };
    let mut commands = Vec::new();
    if let Some(command) = specific {
        commands.push(script::argv(command));
    }
    if let Some(command) = &notify.notify {
        let mut argv = script::argv(command);
        argv.extend([kind.to_string(), name.to_string(), word.to_string(), priority.to_string()]);
        commands.push(argv);
    }
    commands
}

/// Runs each command in the background, logging failures.
pub fn spawn_all(commands: Vec<Vec<String>>, instance: &str) {
    for argv in commands {
        let instance = instance.to_string();
        tokio::spawn(async move {
            if !script::run_once(&argv, NOTIFY_TIMEOUT).await {
                tracing::warn!(instance, command = argv.join(" "), "notify script failed or timed out");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify() -> Notify {
        Notify {
            notify: Some("/etc/keepalived/notify.sh".into()),
            notify_master: Some("\"/bin/echo became master\"".into()),
            notify_backup: None,
            notify_fault: Some("/bin/fault".into()),
            notify_stop: None,
        }
    }

    #[test]
    fn master_runs_notify_master_then_notify_with_keepalived_arguments() {
        let commands = commands(&notify(), "INSTANCE", "VI_1", State::Master, 150);
        assert_eq!(
            commands,
            [
                vec!["/bin/echo became master".to_string()],
                ["/etc/keepalived/notify.sh", "INSTANCE", "VI_1", "MASTER", "150"].map(String::from).to_vec()
            ]
        );
    }

    #[test]
    fn a_state_without_its_own_script_runs_only_notify() {
        let commands = commands(&notify(), "GROUP", "G", State::Backup, 100);
        assert_eq!(commands, [["/etc/keepalived/notify.sh", "GROUP", "G", "BACKUP", "100"].map(String::from).to_vec()]);
        assert!(super::commands(&notify(), "INSTANCE", "A", State::Initialize, 1).is_empty());
    }
}
