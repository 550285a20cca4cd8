//! MISC_CHECK: run a command; its exit code is the verdict (see `Outcome::from_misc_exit`).
use std::time::Duration;

use super::outcome::Outcome;
use crate::track::script::{Ended, run_command};

#[derive(Debug, Clone, PartialEq)]
pub struct MiscProbe {
    /// `misc_path`, split like keepalived's scripts (`track::script::argv`).
    pub argv: Vec<String>,
    /// `misc_timeout`, else `delay_loop`: the command is killed after this long.
    pub timeout: Duration,
    /// `misc_dynamic`.
    pub dynamic: bool,
}

impl MiscProbe {
    pub async fn run(&self) -> Outcome {
        match run_command(&self.argv, self.timeout).await {
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
