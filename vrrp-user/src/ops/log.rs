//! keepalived's wording in keepxdp's logs, so log alerts written for keepalived keep matching.
use std::time::{SystemTime, UNIX_EPOCH};

use crate::vrrp::fsm::State;

/// keepalived's name for a state, as its logs and data dump spell it.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        State::Stop => "STOP",
    }
}

/// `(VI_1) Entering MASTER STATE`, keepalived's line for a state change.
pub fn entering(instance: &str, to: State) -> String {
    match to {
        State::Stop => format!("({instance}) Stopped"),
        to => format!("({instance}) Entering {} STATE", state_name(to)),
    }
}

/// Seconds since the Unix epoch, with microseconds.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_read_like_keepalived() {
        assert_eq!(entering("VI_1", State::Master), "(VI_1) Entering MASTER STATE");
        assert_eq!(entering("VI_1", State::Backup), "(VI_1) Entering BACKUP STATE");
        assert_eq!(entering("web", State::Fault), "(web) Entering FAULT STATE");
    }
}
