//! When a real server's `notify_up` / `notify_down` runs, as keepalived 2.2.7 decides it
//! (check/ipwrapper.c: `update_svr_checker_state`, `perform_svr_state`, `init_service_rs`):
//!
//! - when the real server's combined state flips (all checkers up ⇄ one down): the script of
//!   its new state;
//! - when a checker's first verdict leaves it as it started and it is `alpha` (or down): the
//!   script of the real server's current state. An alpha real server whose first check fails
//!   thus runs `notify_down` although it never was up;
//! - never at startup for the initial state (keepalived only does with `rs_init_notifies`,
//!   which keepxdp does not read).
//!
//! Pure; the daemon picks the script and runs it.

/// One checker verdict, as the real server's health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub alpha: bool,
    /// The checker's first verdict (retries done) since it started.
    pub first: bool,
    /// The checker's declared state before and after.
    pub was_up: bool,
    pub up: bool,
}

/// Which script to run: Some(true) `notify_up`, Some(false) `notify_down`, None nothing.
/// `real_was_up` / `real_up`: the real server's combined state before and after the verdict.
pub fn real_server_notify(real_was_up: bool, real_up: bool, verdict: Verdict) -> Option<bool> {
    if real_was_up != real_up {
        return Some(real_up);
    }
    let unchanged_first = verdict.first && verdict.was_up == verdict.up;
    (unchanged_first && (verdict.alpha || !verdict.up)).then_some(real_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn verdict(alpha: bool, first: bool, was_up: bool, up: bool) -> Verdict {
        Verdict {
            alpha,
            first,
            was_up,
            up,
        }
    }

    /// (what, real server before, after, verdict, expected)
    const TABLE: &[(&str, bool, bool, Verdict, Option<bool>)] = &[
        (
            "the real server goes down",
            true,
            false,
            verdict(false, false, true, false),
            Some(false),
        ),
        (
            "the real server comes back",
            false,
            true,
            verdict(false, false, false, true),
            Some(true),
        ),
        (
            "non-alpha first success: nothing",
            true,
            true,
            verdict(false, true, true, true),
            None,
        ),
        (
            "a later success of an up server: nothing",
            true,
            true,
            verdict(false, false, true, true),
            None,
        ),
        (
            "alpha first failure: notify_down",
            false,
            false,
            verdict(true, true, false, false),
            Some(false),
        ),
        (
            "alpha first success: the flip runs notify_up",
            false,
            true,
            verdict(true, true, false, true),
            Some(true),
        ),
        (
            "alpha later failure of a down server: nothing",
            false,
            false,
            verdict(true, false, false, false),
            None,
        ),
        (
            "a checker going down while another already is: no flip, nothing",
            false,
            false,
            verdict(false, false, true, false),
            None,
        ),
        (
            "a checker recovering while another is still down: nothing",
            false,
            false,
            verdict(false, false, false, true),
            None,
        ),
        (
            "alpha first success while another checker is down: no flip, nothing",
            false,
            false,
            verdict(true, true, false, true),
            None,
        ),
    ];

    #[test]
    fn notify_table() {
        for (what, before, after, verdict, expected) in TABLE {
            assert_eq!(
                real_server_notify(*before, *after, *verdict),
                *expected,
                "{what}"
            );
        }
    }
}
