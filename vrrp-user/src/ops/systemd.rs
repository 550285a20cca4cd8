//! systemd's service protocol (sd_notify, through the `sd-notify` crate): READY=1 once the
//! data plane is attached and the configuration applied, RELOADING=1 … READY=1 around a
//! SIGHUP reload, STOPPING=1 on the way down, WATCHDOG=1 at half of WatchdogSec. Without
//! NOTIFY_SOCKET (not under systemd) every call does nothing.
use std::time::Duration;

use sd_notify::NotifyState;

pub struct Systemd {
    /// WatchdogSec as systemd passed it (WATCHDOG_USEC), if the watchdog is on for us.
    watchdog: Option<Duration>,
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!("telling systemd {states:?}: {error}");
    }
}

impl Systemd {
    pub fn from_env() -> Systemd {
        let mut usec = 0;
        let mut watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        // libsystemd's sd_watchdog_enabled takes WATCHDOG_USEC without WATCHDOG_PID as meant
        // for this process; the crate wants both.
        if watchdog.is_none() && std::env::var_os("WATCHDOG_PID").is_none() {
            watchdog = std::env::var("WATCHDOG_USEC").ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).map(Duration::from_micros);
        }
        Systemd { watchdog }
    }

    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        send(&states);
    }

    pub fn stopping(&self) {
        send(&[NotifyState::Stopping]);
    }

    /// How often to send WATCHDOG=1: half of WatchdogSec (None: no watchdog).
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog.map(|limit| limit / 2)
    }

    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            send(&[NotifyState::Watchdog]);
        }
    }
}
