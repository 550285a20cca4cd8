//! The alert queue: the state machines call `instance_state`, `group_state` and
//! `checker_changed`, which format the mail and `try_send` it into a bounded channel (never
//! waiting); one task sends the mails in order. Nothing happens until `start` (the daemon),
//! so the functions are no-ops in unit tests and CLI commands.
use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    message::{self, Mail},
    plan::{AlertPlan, Server},
    smtp::{self, Envelope},
};
use crate::vrrp::fsm::State;

/// Mails waiting at most; past that a new one is dropped (and counted). A dead server costs
/// up to smtp_connect_timeout per mail: the queue bounds the memory, not the delay.
pub const QUEUE_CAPACITY: usize = 64;

/// For status: what happened to the mails since keepxdp started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AlertCounts {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    /// Not queued: the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

struct Outgoing {
    server: Server,
    envelope: Envelope,
    subject: String,
}

struct Alerts {
    plan: Mutex<Arc<AlertPlan>>,
    sender: mpsc::Sender<Outgoing>,
    counters: Arc<Counters>,
}

static ALERTS: OnceLock<Alerts> = OnceLock::new();

/// Starts the sending task (on the current tokio runtime) with `plan`; a second call (a
/// reload) replaces the plan.
pub fn start(plan: AlertPlan) {
    if let Some(alerts) = ALERTS.get() {
        *alerts.plan.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
        return;
    }
    let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
    let counters = Arc::new(Counters::default());
    tokio::spawn(send_all(receiver, counters.clone()));
    let alerts = Alerts { plan: Mutex::new(Arc::new(plan)), sender, counters };
    if ALERTS.set(alerts).is_err() {
        tracing::warn!("the alert queue was started twice");
    }
}

fn plan() -> Option<(Arc<AlertPlan>, &'static Alerts)> {
    let alerts = ALERTS.get()?;
    let plan = alerts.plan.lock().unwrap_or_else(|e| e.into_inner()).clone();
    plan.sends().then_some((plan, alerts))
}

/// A VRRP instance entered `state`.
pub fn instance_state(name: &str, state: State) {
    let Some((plan, alerts)) = plan() else { return };
    if plan.instance(name)
        && !(plan.no_email_faults && state == State::Fault)
        && let Some(mail) = message::instance(&plan.router_id, name, state)
    {
        alerts.enqueue(&plan, mail);
    }
}

/// A sync group entered `state`.
pub fn group_state(name: &str, state: State) {
    let Some((plan, alerts)) = plan() else { return };
    if plan.group(name)
        && !(plan.no_email_faults && state == State::Fault)
        && let Some(mail) = message::group(&plan.router_id, name, state)
    {
        alerts.enqueue(&plan, mail);
    }
}

/// A checker (`checker`: its name, `KIND at FILE:LINE`) of real server `real` of `service`
/// (both as the checkers name them) went up or down; `real_was_up`, `real_up`: the real
/// server's combined state before and after it.
pub fn checker_changed(service: &str, real: &str, checker: &str, checker_up: bool, real_was_up: bool, real_up: bool) {
    let Some((plan, alerts)) = plan() else { return };
    if plan.no_checker_emails && real_was_up == real_up {
        return;
    }
    let Some((vs, rs)) = plan.real_server(service, real) else { return };
    let kind = checker.split(" at ").next().unwrap_or(checker);
    alerts.enqueue(&plan, message::real_server(&plan.router_id, vs, rs, real_up, kind, checker_up));
}

/// The instance's resolved `smtp_alert` (for keepalived's JSON dump), whether or not a
/// server is configured.
pub fn instance_smtp_alert(name: &str) -> bool {
    ALERTS.get().is_some_and(|alerts| alerts.plan.lock().unwrap_or_else(|e| e.into_inner()).instance_alert_on(name))
}

pub fn counts() -> AlertCounts {
    let Some(alerts) = ALERTS.get() else { return AlertCounts::default() };
    let c = &alerts.counters;
    AlertCounts {
        queued: c.queued.load(Ordering::Relaxed),
        sent: c.sent.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
    }
}

/// At shutdown: waits up to `max` for the queued mails (the Stopping ones) to go out.
pub async fn drain(max: Duration) {
    let deadline = tokio::time::Instant::now() + max;
    while counts().queued > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = counts().queued;
    if left > 0 {
        tracing::warn!(left, "stopping with alert mails not sent");
    }
}

impl Alerts {
    fn enqueue(&self, plan: &AlertPlan, mail: Mail) {
        let Some(server) = plan.server.clone() else { return };
        let data = message::data(&rfc822_now(), &plan.from, &plan.to, &mail);
        let envelope = Envelope { from: plan.from.clone(), to: plan.to.clone(), data };
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.sender.try_send(Outgoing { server, envelope, subject: mail.subject }) {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let subject = match &error {
                mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o.subject.clone(),
            };
            tracing::warn!(subject, "alert mail dropped: {QUEUE_CAPACITY} mails are already waiting for the SMTP server");
        }
    }
}

async fn send_all(mut receiver: mpsc::Receiver<Outgoing>, counters: Arc<Counters>) {
    while let Some(outgoing) = receiver.recv().await {
        let server = format!("{}:{}", outgoing.server.host, outgoing.server.port);
        match smtp::send(&outgoing.server, &outgoing.envelope).await {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(subject = outgoing.subject, server, "SMTP alert successfully sent");
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subject = outgoing.subject, server, "SMTP alert not sent: {error}");
            }
        }
        counters.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Now in local time as keepalived writes its Date header (`%a, %d %b %Y %H:%M:%S %z`).
fn rfc822_now() -> String {
    // SAFETY: time, localtime_r and strftime write only into the locals given; the format is
    // a NUL-terminated literal and the buffer length is passed.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let mut buffer = [0u8; 80];
        let n = libc::strftime(buffer.as_mut_ptr().cast(), buffer.len(), c"%a, %d %b %Y %H:%M:%S %z".as_ptr(), &tm);
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_rfc_822_like_keepalived_s() {
        let date = rfc822_now();
        // e.g. "Wed, 02 Dec 2026 15:04:05 +0000"
        let parts: Vec<&str> = date.split(' ').collect();
        assert_eq!(parts.len(), 6, "{date}");
        assert!(parts[0].ends_with(',') && parts[4].len() == 8 && (parts[5].starts_with('+') || parts[5].starts_with('-')), "{date}");
    }

    #[test]
    fn without_start_the_hooks_do_nothing() {
        instance_state("VI_1", State::Master);
        checker_changed("10.0.0.1:80", "10.0.1.1:80", "TCP_CHECK at k.conf:3", false, true, false);
        assert_eq!(counts(), AlertCounts::default());
    }
}
