//! MISC_CHECK: run a command; its exit code is the verdict (see `Outcome::from_misc_exit`).
use std::time::Duration;

use super::outcome::Outcome;
use crate::track::script::{Ended, RunAs, run_command_as};

#[derive(Debug, Clone, PartialEq)]
pub struct MiscProbe {
    /// `misc_path`, split like keepalived's scripts (`track::script::argv`).
    pub argv: Vec<String>,
    /// `misc_timeout`, else `delay_loop`: the command is killed after this long.
    pub timeout: Duration,
    /// `misc_dynamic`.
    pub dynamic: bool,
    /// `user USER [GROUP]`: the command runs as this user instead of keepxdp's.
    pub run_as: Option<RunAs>,
}

impl MiscProbe {
    pub async fn run(&self) -> Outcome {
        match run_command_as(&self.argv, self.timeout, self.run_as).await {
            Ended::Exited(code) => Outcome::from_misc_exit(code, self.dynamic),
            Ended::Failed(reason) => Outcome::down(reason),
            Ended::TimedOut => Outcome::down(format!("{} timed out after {:?}", self.argv.join(" "), self.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::script::argv;

    fn misc(command: &str, dynamic: bool) -> MiscProbe {
        MiscProbe {
            argv: argv(command),
            timeout: Duration::from_secs(5),
            dynamic,
            run_as: None,
        }
    }

    #[tokio::test]
    async fn exit_codes_with_misc_dynamic() {
        assert_eq!(misc("/bin/sh -c 'exit 0'", true).run().await, Outcome::Up);
        assert!(!misc("/bin/sh -c 'exit 1'", true).run().await.is_up());
        assert_eq!(
            misc("/bin/sh -c 'exit 2'", true).run().await,
            Outcome::UpWithWeight { weight: 0 }
        );
        assert_eq!(
            misc("/bin/sh -c 'exit 7'", true).run().await,
            Outcome::UpWithWeight { weight: 5 }
        );
    }

    #[tokio::test]
    async fn with_user_the_command_runs_as_that_user() {
        // `nobody` exists on Debian; the check passes only when the command's uid is its uid.
        let run_as = RunAs::resolve("nobody").expect("user nobody");
        let mut probe = misc(&format!("/bin/sh -c 'test $(id -u) = {}'", run_as.uid), false);
        probe.run_as = Some(run_as);
        assert_eq!(probe.run().await, Outcome::Up);
        assert!(RunAs::resolve("no-such-user-kx").unwrap_err().contains("does not exist"));
    }

    #[tokio::test]
    async fn without_misc_dynamic_only_zero_is_up() {
        assert_eq!(misc("/bin/sh -c 'exit 0'", false).run().await, Outcome::Up);
        assert!(!misc("/bin/sh -c 'exit 7'", false).run().await.is_up());
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_down() {
        let probe = MiscProbe {
            timeout: Duration::from_millis(100),
            ..misc("/bin/sleep 5", false)
        };
        let outcome = probe.run().await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("timed out")),
            "{outcome:?}"
        );
    }
}
