//! The result of one probe.

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Up,
    /// MISC_CHECK with `misc_dynamic`: up, and the real server's weight becomes `weight`.
    UpWithWeight {
        weight: u32,
    },
    Down {
        reason: String,
    },
}

impl Outcome {
    pub fn down(reason: impl Into<String>) -> Outcome {
        Outcome::Down {
            reason: reason.into(),
        }
    }

    pub fn is_up(&self) -> bool {
        !matches!(self, Outcome::Down { .. })
    }

    /// keepalived's MISC_CHECK exit codes: 0 up, 1 down; with `misc_dynamic`, 2..=255 mean
    /// up with weight `code - 2`; anything else (or a signal: `None`) is down.
    pub fn from_misc_exit(code: Option<i32>, dynamic: bool) -> Outcome {
        match code {
            Some(0) => Outcome::Up,
            Some(code @ 2..=255) if dynamic => Outcome::UpWithWeight {
                weight: code as u32 - 2,
            },
            Some(code) => Outcome::down(format!("exited with status {code}")),
            None => Outcome::down("killed by a signal"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misc_exit_codes_follow_keepalived() {
        assert_eq!(Outcome::from_misc_exit(Some(0), false), Outcome::Up);
        assert!(!Outcome::from_misc_exit(Some(1), true).is_up());
        assert!(
            !Outcome::from_misc_exit(Some(7), false).is_up(),
            "without misc_dynamic, non-zero is down"
        );
        assert_eq!(
            Outcome::from_misc_exit(Some(2), true),
            Outcome::UpWithWeight { weight: 0 }
        );
        assert_eq!(
            Outcome::from_misc_exit(Some(255), true),
            Outcome::UpWithWeight { weight: 253 }
        );
        assert!(!Outcome::from_misc_exit(Some(256), true).is_up());
        assert!(!Outcome::from_misc_exit(None, true).is_up());
    }
}
