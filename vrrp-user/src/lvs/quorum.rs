//! A virtual server's quorum, as keepalived 2.2.7 keeps it (check/ipwrapper.c:
//! `update_quorum_state`, `weigh_live_realservers`, `set_quorum_states`). Pure.
//!
//! - The weight is the sum of the weights of the real servers that are up.
//! - Down, quorum is gained when weight ≥ quorum + hysteresis.
//! - Up, quorum is lost when weight < quorum − hysteresis, or when the weight is 0.
//! - A new virtual server starts without quorum and is evaluated once (`init`): enough
//!   weight gains quorum (and runs `quorum_up`); otherwise, with a sorry server not yet in
//!   use, it "starts with quorum down" (the sorry server goes in, `quorum_down` runs);
//!   without a sorry server nothing is said.
//! - While quorum is down and there is a sorry server, the real servers are out of the pool
//!   and the sorry server takes every new connection; without a sorry server the real servers
//!   that are up keep serving whatever the quorum says.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumEvent {
    /// Runs `quorum_up`.
    Gained,
    /// Runs `quorum_down`.
    Lost,
    /// Runs `quorum_down`: (re)configured without quorum, a sorry server going in.
    StartedDown,
}

impl QuorumEvent {
    /// Whether the event runs `quorum_up` (else `quorum_down`).
    pub fn up(self) -> bool {
        self == QuorumEvent::Gained
    }
}

/// What the evaluation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumInput {
    /// Sum of the weights of the real servers that are up.
    pub weight: u64,
    pub quorum: u32,
    pub hysteresis: u32,
    /// Evaluating a virtual server just (re)configured rather than after a health change.
    pub init: bool,
    pub has_sorry: bool,
    /// The sorry server was already in the pool before this evaluation.
    pub sorry_in_use: bool,
}

/// The quorum state after `input`, from `up`, and the event to report (if any).
pub fn evaluate(up: bool, input: QuorumInput) -> (bool, Option<QuorumEvent>) {
    let weight = input.weight as i128;
    let (quorum, hysteresis) = (input.quorum as i128, input.hysteresis as i128);
    if !up && weight >= quorum + hysteresis {
        return (true, Some(QuorumEvent::Gained));
    }
    if up && (weight == 0 || weight < quorum - hysteresis) {
        return (false, Some(QuorumEvent::Lost));
    }
    if input.init && !up && input.has_sorry && !input.sorry_in_use {
        return (false, Some(QuorumEvent::StartedDown));
    }
    (up, None)
}

#[cfg(test)]
mod tests {
    use super::{QuorumEvent::*, *};

    const fn input(weight: u64, quorum: u32, hysteresis: u32) -> QuorumInput {
        QuorumInput { weight, quorum, hysteresis, init: false, has_sorry: false, sorry_in_use: false }
    }

    const fn init(weight: u64, quorum: u32, hysteresis: u32, has_sorry: bool) -> QuorumInput {
        QuorumInput { init: true, has_sorry, ..input(weight, quorum, hysteresis) }
    }

    /// (what, state before, input, state after, event)
    const TABLE: &[(&str, bool, QuorumInput, bool, Option<QuorumEvent>)] = &[
        ("start with enough weight: gained", false, init(3, 2, 0, false), true, Some(Gained)),
        ("start short, no sorry server: silent", false, init(1, 2, 0, false), false, None),
        ("start short with a sorry server: started down", false, init(1, 2, 0, true), false, Some(StartedDown)),
        (
            "reload short, sorry server already in use: silent",
            false,
            QuorumInput { sorry_in_use: true, ..init(1, 2, 0, true) },
            false,
            None,
        ),
        ("start at exactly quorum + hysteresis: gained", false, init(3, 2, 1, false), true, Some(Gained)),
        ("start between quorum and quorum + hysteresis: not gained", false, init(2, 2, 1, false), false, None),
        ("up, weight stays at quorum: kept", true, input(2, 2, 0), true, None),
        ("up, weight below quorum: lost", true, input(1, 2, 0), false, Some(Lost)),
        ("hysteresis 1: quorum − hysteresis is still up", true, input(1, 2, 1), true, None),
        ("hysteresis 1: below quorum − hysteresis is lost", true, input(0, 2, 1), false, Some(Lost)),
        ("hysteresis ≥ quorum: only a zero weight loses", true, input(1, 1, 3), true, None),
        ("hysteresis ≥ quorum: zero weight loses", true, input(0, 1, 3), false, Some(Lost)),
        ("down, weight back to quorum but not + hysteresis: still down", false, input(2, 2, 1), false, None),
        ("down, weight reaches quorum + hysteresis: gained", false, input(3, 2, 1), true, Some(Gained)),
        ("down after a health change, sorry server configured: no repeat", false, QuorumInput { has_sorry: true, ..input(0, 1, 0) }, false, None),
    ];

    #[test]
    fn quorum_table() {
        for (what, before, input, after, event) in TABLE {
            assert_eq!(evaluate(*before, *input), (*after, *event), "{what}");
        }
    }

    #[test]
    fn a_sequence_with_hysteresis_does_not_flap() {
        // quorum 3, hysteresis 1: lost below 2, regained at 4.
        let mut up = evaluate(false, init(4, 3, 1, true)).0;
        let mut events = Vec::new();
        for weight in [3, 2, 1, 2, 3, 4, 3] {
            let (next, event) = evaluate(up, input(weight, 3, 1));
            up = next;
            events.push(event);
        }
        assert_eq!(events, [None, None, Some(Lost), None, None, Some(Gained), None]);
        assert!(QuorumEvent::Gained.up() && !QuorumEvent::Lost.up() && !QuorumEvent::StartedDown.up());
    }
}
