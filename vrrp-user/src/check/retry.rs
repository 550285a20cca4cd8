//! keepalived's retry logic for one checker, as a pure state machine.
//!
//! After a success the next probe is `delay_loop` away, and a down checker comes up at
//! once. A failure is retried `retry` times, each `delay_before_retry` after the last; only
//! when those retries fail too (retry + 1 failures in a row) is the checker declared down,
//! and the next probe is `delay_loop` away again.
use std::time::Duration;

/// How often a checker probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub delay_loop: Duration,
    pub delay_before_retry: Duration,
    /// `retry` / `nb_get_retry`: extra attempts after a failure.
    pub retry: u32,
    /// The first probe comes after a random delay in `[0, warmup)`.
    pub warmup: Duration,
}

/// What the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish the checker's new health.
    Declare {
        up: bool,
    },
    NextProbeIn(Duration),
}

/// One checker's health and how many retries it has spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryState {
    pub up: bool,
    retries_spent: u32,
}

impl RetryState {
    /// With `alpha` a checker starts down and must succeed once; otherwise it starts up.
    pub fn new(alpha: bool) -> RetryState {
        RetryState {
            up: !alpha,
            retries_spent: 0,
        }
    }

    /// No retry is pending: the last probe gave a verdict (success, or the last retry failed).
    pub fn settled(&self) -> bool {
        self.retries_spent == 0
    }

    /// The state after one probe, and what to do: at most one `Declare`, then the delay.
    pub fn record(self, success: bool, timing: &Timing) -> (RetryState, Vec<Action>) {
        if !success && self.retries_spent < timing.retry {
            let next = RetryState {
                up: self.up,
                retries_spent: self.retries_spent + 1,
            };
            return (next, vec![Action::NextProbeIn(timing.delay_before_retry)]);
        }
        let mut actions = Vec::with_capacity(2);
        if success != self.up {
            actions.push(Action::Declare { up: success });
        }
        actions.push(Action::NextProbeIn(timing.delay_loop));
        (
            RetryState {
                up: success,
                retries_spent: 0,
            },
            actions,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        delay_loop: Duration::from_secs(60),
        delay_before_retry: Duration::from_secs(3),
        retry: 2,
        warmup: Duration::from_secs(60),
    };
    const LOOP: Action = Action::NextProbeIn(Duration::from_secs(60));
    const RETRY: Action = Action::NextProbeIn(Duration::from_secs(3));
    const UP: Action = Action::Declare { up: true };
    const DOWN: Action = Action::Declare { up: false };

    /// (alpha, probe results, expected actions after each, health at the end)
    #[allow(clippy::type_complexity)]
    const TABLE: &[(&str, bool, &[bool], &[&[Action]], bool)] = &[
        (
            "an up checker that keeps succeeding stays up",
            false,
            &[true, true],
            &[&[LOOP], &[LOOP]],
            true,
        ),
        (
            "retry 2: the third failure in a row declares down",
            false,
            &[false, false, false],
            &[&[RETRY], &[RETRY], &[DOWN, LOOP]],
            false,
        ),
        (
            "a success between failures resets the retries",
            false,
            &[false, false, true, false],
            &[&[RETRY], &[RETRY], &[LOOP], &[RETRY]],
            true,
        ),
        (
            "a down checker comes up on its first success",
            false,
            &[false, false, false, true],
            &[&[RETRY], &[RETRY], &[DOWN, LOOP], &[UP, LOOP]],
            true,
        ),
        (
            "alpha: starts down, one success brings it up",
            true,
            &[true],
            &[&[UP, LOOP]],
            true,
        ),
        (
            "alpha: failures of a down checker declare nothing",
            true,
            &[false, false, false],
            &[&[RETRY], &[RETRY], &[LOOP]],
            false,
        ),
    ];

    #[test]
    fn retry_table() {
        for (name, alpha, results, expected, up_at_end) in TABLE {
            let mut state = RetryState::new(*alpha);
            for (i, (success, want)) in results.iter().zip(expected.iter()).enumerate() {
                let (next, actions) = state.record(*success, &TIMING);
                assert_eq!(actions, *want, "{name}: probe {i}");
                state = next;
            }
            assert_eq!(state.up, *up_at_end, "{name}");
        }
    }

    #[test]
    fn retry_zero_declares_down_on_the_first_failure() {
        let timing = Timing { retry: 0, ..TIMING };
        let (state, actions) = RetryState::new(false).record(false, &timing);
        assert_eq!(actions, [DOWN, LOOP]);
        assert!(!state.up);
    }
}
