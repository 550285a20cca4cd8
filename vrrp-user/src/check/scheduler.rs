//! Runs checkers: one tokio task per checker, probing after a random warmup and then as
//! the retry state machine says, with a semaphore bounding how many probes run at once.
//! A real server is up when all its checkers are up; its health goes to a `HealthSink`, with
//! keepalived's notify_up / notify_down moments (`notify`); each checker's state goes to a
//! `CheckerBoard` for status.
use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::BoxFuture;
use tokio::{sync::Semaphore, task::JoinHandle};

use super::{
    notify::{Verdict, real_server_notify},
    outcome::Outcome,
    probe::Probe,
    retry::{Action, RetryState, Timing},
    status::CheckerBoard,
};
use crate::config::model::{RealServer, VirtualServer, VirtualServerKey};

/// Where real servers' health goes (the LVS tables, in the daemon).
pub trait HealthSink: Send + Sync + 'static {
    /// `weight`: a MISC_CHECK `misc_dynamic` weight, None to keep the configured one.
    fn set(&self, service: &str, real: &str, up: bool, weight: Option<u32>);

    /// Time for the real server's `notify_up` (`up`) or `notify_down` script, because of
    /// `checker`'s verdict (`reason`). Comes after the `set` that made it so.
    fn notify(&self, _service: &str, _real: &str, _up: bool, _checker: &str, _reason: &str) {}
}

/// Something that probes once (a `Probe`, or a fake in tests).
pub trait RunProbe: Send + Sync + 'static {
    fn run(&self) -> BoxFuture<'_, Outcome>;
}

impl RunProbe for Probe {
    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(Probe::run(self))
    }
}

/// One checker of one real server, ready to spawn.
pub struct CheckerTask {
    /// The virtual server, as `service_name` writes it.
    pub service: String,
    /// The real server, `IP:PORT`.
    pub real: String,
    /// For logs, e.g. `HTTP_GET at keepalived.conf:12`.
    pub name: String,
    pub timing: Timing,
    pub alpha: bool,
    /// What the checker does, where it was written left out: a reload keeps a real server's
    /// checkers running when every definition is unchanged (see `running`).
    pub definition: String,
    pub probe: Arc<dyn RunProbe>,
}

/// `10.0.0.1:80`, `[2001:db8::1]:80`, `fwmark 7`, `group web`.
pub fn service_name(key: &VirtualServerKey) -> String {
    match key {
        VirtualServerKey::Address { ip, port } => address_name(*ip, *port),
        VirtualServerKey::Fwmark { mark } => format!("fwmark {mark}"),
        VirtualServerKey::Group { name } => format!("group {name}"),
    }
}

fn address_name(ip: std::net::IpAddr, port: Option<u16>) -> String {
    std::net::SocketAddr::new(ip, port.unwrap_or(0)).to_string()
}

pub fn real_name(real: &RealServer) -> String {
    address_name(real.ip, real.port)
}

/// Every runnable checker of every real server. Checkers that cannot run (not implemented,
/// refused by `enable_script_security`, nothing to connect to) are skipped with a warning;
/// a real server left without checkers gets no health from here.
pub fn tasks_from_config(
    virtual_servers: &[VirtualServer],
    script_security: bool,
) -> Vec<CheckerTask> {
    let mut tasks = Vec::new();
    for virtual_server in virtual_servers {
        let service = service_name(&virtual_server.key);
        for real in &virtual_server.real_servers {
            for checker in &real.checkers {
                match Probe::from_config(virtual_server, real, checker, script_security) {
                    Ok(probe) => tasks.push(CheckerTask {
                        service: service.clone(),
                        real: real_name(real),
                        name: probe.name.clone(),
                        timing: probe.timing,
                        alpha: probe.alpha,
                        definition: probe.definition(),
                        probe: Arc::new(probe),
                    }),
                    Err(reason) => {
                        tracing::warn!(service, real = real_name(real), "checker skipped: {reason}")
                    }
                }
            }
        }
    }
    tasks
}

/// Starts every checker, at most `max_concurrent_probes` probing at once. Each real server's
/// initial health (down if any checker is `alpha`) is published before this returns; each
/// checker is on `board` from then on.
pub fn spawn(
    tasks: Vec<CheckerTask>,
    sink: Arc<dyn HealthSink>,
    max_concurrent_probes: usize,
    board: &CheckerBoard,
) -> Vec<JoinHandle<()>> {
    let semaphore = Arc::new(Semaphore::new(max_concurrent_probes.max(1)));
    by_real_server(tasks)
        .into_iter()
        .flat_map(|((service, real), tasks)| spawn_group(service, real, tasks, &sink, &semaphore, board).handles)
        .collect()
}

/// Tasks grouped by (service, real server), in configuration order within a group.
pub(super) fn by_real_server(tasks: Vec<CheckerTask>) -> HashMap<(String, String), Vec<CheckerTask>> {
    let mut by_real: HashMap<(String, String), Vec<CheckerTask>> = HashMap::new();
    for task in tasks {
        by_real.entry((task.service.clone(), task.real.clone())).or_default().push(task);
    }
    by_real
}

/// One real server's running checkers.
pub(super) struct Group {
    pub definitions: Vec<String>,
    pub handles: Vec<JoinHandle<()>>,
    health: Arc<RealHealth>,
}

impl Group {
    /// Tells the sink the combined health again (after the tables were rebuilt).
    pub fn republish(&self) {
        self.health.republish();
    }

    pub fn abort(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Registers one real server's checkers on `board`, publishes its initial health and starts
/// them.
pub(super) fn spawn_group(
    service: String,
    real: String,
    tasks: Vec<CheckerTask>,
    sink: &Arc<dyn HealthSink>,
    semaphore: &Arc<Semaphore>,
    board: &CheckerBoard,
) -> Group {
    let board_indexes = tasks.iter().map(|t| board.register(&service, &real, &t.name, !t.alpha)).collect();
    let health = Arc::new(RealHealth {
        service,
        real,
        sink: sink.clone(),
        board: board.clone(),
        board_indexes,
        state: Mutex::new(RealState {
            checkers_up: tasks.iter().map(|t| !t.alpha).collect(),
            weight: None,
            published: None,
        }),
    });
    health.publish(None, "initial state");
    let definitions = tasks.iter().map(|t| t.definition.clone()).collect();
    let handles = tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| tokio::spawn(run_checker(task, index, health.clone(), semaphore.clone())))
        .collect();
    Group { definitions, handles, health }
}

/// One real server's checkers, combined.
struct RealHealth {
    service: String,
    real: String,
    sink: Arc<dyn HealthSink>,
    board: CheckerBoard,
    /// Each checker's index on the board.
    board_indexes: Vec<usize>,
    state: Mutex<RealState>,
}

/// One probe's result as a checker task reports it.
struct Report<'a> {
    index: usize,
    checker: &'a str,
    /// The checker's declared state after the probe.
    up: bool,
    alpha: bool,
    /// The checker's first verdict (no retry pending) since it started.
    first: bool,
    weight: Option<u32>,
    /// The probe's failure, None when it succeeded.
    error: Option<&'a str>,
    latency: Duration,
}

struct RealState {
    checkers_up: Vec<bool>,
    weight: Option<u32>,
    published: Option<(bool, Option<u32>)>,
}

impl RealHealth {
    fn update(&self, report: Report<'_>) {
        let reason = report.error.unwrap_or("check succeeded");
        let (real_was_up, was_up, real_up) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let real_was_up = state.checkers_up.iter().all(|up| *up);
            let was_up = std::mem::replace(&mut state.checkers_up[report.index], report.up);
            if report.weight.is_some() {
                state.weight = report.weight;
            }
            (real_was_up, was_up, state.checkers_up.iter().all(|up| *up))
        };
        self.board.record(
            &self.service,
            &self.real,
            self.board_indexes[report.index],
            report.up,
            report.error,
            report.latency,
        );
        self.publish(Some(report.checker), reason);
        let verdict = Verdict {
            alpha: report.alpha,
            first: report.first,
            was_up,
            up: report.up,
        };
        if was_up != report.up {
            // keepalived mails each checker's change (with no_checker_emails, only those that
            // change the real server's state).
            crate::alert::checker_changed(&self.service, &self.real, report.checker, report.up, real_was_up, real_up);
        }
        if let Some(up) = real_server_notify(real_was_up, real_up, verdict) {
            self.sink
                .notify(&self.service, &self.real, up, report.checker, reason);
        }
    }

    fn republish(&self) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some((up, weight)) = state.published else { return };
        drop(state);
        self.sink.set(&self.service, &self.real, up, weight);
    }

    /// Tells the sink when the combined health or weight changed; logs a flip once.
    fn publish(&self, checker: Option<&str>, reason: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = (state.checkers_up.iter().all(|up| *up), state.weight);
        if state.published == Some(now) {
            return;
        }
        let flipped = state.published.is_none_or(|(up, _)| up != now.0);
        state.published = Some(now);
        drop(state);
        if flipped {
            // The flip is logged at info by whoever acts on `notify` (the daemon).
            let (service, real) = (&self.service, &self.real);
            tracing::debug!(
                service,
                real,
                up = now.0,
                checker,
                reason,
                "real server {}",
                if now.0 { "up" } else { "down" }
            );
        }
        self.sink.set(&self.service, &self.real, now.0, now.1);
    }
}

async fn run_checker(
    task: CheckerTask,
    index: usize,
    health: Arc<RealHealth>,
    semaphore: Arc<Semaphore>,
) {
    let mut random = SplitMix64::seeded(&(&task.service, &task.real, index, &task.name));
    tokio::time::sleep(task.timing.warmup.mul_f64(random.unit())).await;
    let mut state = RetryState::new(task.alpha);
    let mut has_run = false;
    loop {
        let (outcome, latency) = {
            let Ok(_permit) = semaphore.acquire().await else {
                return;
            };
            let started = tokio::time::Instant::now();
            let outcome = task.probe.run().await;
            (outcome, started.elapsed())
        };
        let weight = match outcome {
            Outcome::UpWithWeight { weight } => Some(weight),
            _ => None,
        };
        let error = match &outcome {
            Outcome::Down { reason } => Some(reason.as_str()),
            _ => None,
        };
        let reason = error.unwrap_or("check succeeded");
        let (next, actions) = state.record(outcome.is_up(), &task.timing);
        state = next;
        let mut delay = task.timing.delay_loop;
        for action in actions {
            match action {
                Action::Declare { up } => tracing::debug!(
                    service = task.service,
                    real = task.real,
                    checker = task.name,
                    up,
                    reason,
                    "checker changed"
                ),
                Action::NextProbeIn(next_delay) => delay = next_delay,
            }
        }
        let first = !has_run && state.settled();
        has_run |= state.settled();
        health.update(Report {
            index,
            checker: &task.name,
            up: state.up,
            alpha: task.alpha,
            first,
            weight,
            error,
            latency,
        });
        // A zero delay_loop must not spin.
        tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
    }
}

/// A tiny deterministic PRNG (SplitMix64) so each checker's warmup is spread but
/// reproducible, without a `rand` dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn seeded(seed: &impl Hash) -> SplitMix64 {
        let mut hasher = DefaultHasher::new();
        seed.hash(&mut hasher);
        SplitMix64(hasher.finish())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use tokio::time::{Instant, sleep};

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Published {
        pub real: String,
        pub up: bool,
        pub weight: Option<u32>,
    }

    #[derive(Default)]
    pub(crate) struct RecordingSink(Mutex<Vec<Published>>, Mutex<Vec<(bool, String)>>);

    impl HealthSink for RecordingSink {
        fn set(&self, service: &str, real: &str, up: bool, weight: Option<u32>) {
            assert_eq!(service, "10.0.0.1:80");
            self.0.lock().unwrap().push(Published {
                real: real.into(),
                up,
                weight,
            });
        }
        fn notify(&self, _service: &str, _real: &str, up: bool, _checker: &str, reason: &str) {
            self.1.lock().unwrap().push((up, reason.into()));
        }
    }

    impl RecordingSink {
        pub fn last(&self) -> Published {
            self.0
                .lock()
                .unwrap()
                .last()
                .cloned()
                .expect("something was published")
        }
        pub fn published(&self) -> Vec<Published> {
            self.0.lock().unwrap().clone()
        }
        pub fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        pub fn notifies(&self) -> Vec<(bool, String)> {
            self.1.lock().unwrap().clone()
        }
    }

    /// A server the test switches on and off; counts probes.
    #[derive(Default)]
    pub(crate) struct FakeServer {
        pub down: AtomicBool,
        pub probes: AtomicU32,
        pub weight: Option<u32>,
    }

    impl RunProbe for FakeServer {
        fn run(&self) -> BoxFuture<'_, Outcome> {
            self.probes.fetch_add(1, Ordering::SeqCst);
            let outcome = match (self.down.load(Ordering::SeqCst), self.weight) {
                (true, _) => Outcome::down("switched off"),
                (false, Some(weight)) => Outcome::UpWithWeight { weight },
                (false, None) => Outcome::Up,
            };
            Box::pin(async move { outcome })
        }
    }

    pub(crate) const TIMING: Timing = Timing {
        delay_loop: Duration::from_secs(10),
        delay_before_retry: Duration::from_secs(1),
        retry: 2,
        warmup: Duration::ZERO,
    };

    pub(crate) fn task(real: &str, server: Arc<FakeServer>, alpha: bool) -> CheckerTask {
        CheckerTask {
            service: "10.0.0.1:80".into(),
            real: real.into(),
            name: "TCP_CHECK".into(),
            timing: TIMING,
            alpha,
            definition: "TCP_CHECK".into(),
            probe: server,
        }
    }

    /// Sleeps until `at` seconds after `start`.
    pub(crate) async fn until(start: Instant, at: f64) {
        tokio::time::sleep_until(start + Duration::from_secs_f64(at)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_goes_down_after_retry_plus_one_failures_and_back_on_the_first_success() {
        let start = Instant::now();
        let server = Arc::new(FakeServer::default());
        let sink = Arc::new(RecordingSink::default());
        let handles = spawn(
            vec![task("10.0.0.2:80", server.clone(), false)],
            sink.clone(),
            4,
            &CheckerBoard::default(),
        );
        assert_eq!(
            sink.last(),
            Published {
                real: "10.0.0.2:80".into(),
                up: true,
                weight: None
            },
            "starts up without alpha"
        );

        // Probes at 0 and 10 succeed; off at 15: probes at 20, 21 (retries), 22 fail.
        until(start, 15.0).await;
        server.down.store(true, Ordering::SeqCst);
        until(start, 21.5).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 4);
        assert!(sink.last().up, "two failures with retry 2 are not enough");
        until(start, 22.5).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 5);
        assert!(
            !sink.last().up,
            "the third failure in a row (retry + 1) takes it down"
        );

        // Back on at 25: the next probe (22 + delay_loop = 32) brings it up at once.
        until(start, 25.0).await;
        server.down.store(false, Ordering::SeqCst);
        until(start, 31.5).await;
        assert!(!sink.last().up);
        until(start, 32.5).await;
        assert!(sink.last().up);
        assert_eq!(
            sink.count(),
            3,
            "initial up, down, up: nothing published without a change"
        );
        handles.iter().for_each(JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_server_is_up_only_when_all_its_checkers_are() {
        let start = Instant::now();
        let healthy = Arc::new(FakeServer::default());
        let broken = Arc::new(FakeServer::default());
        broken.down.store(true, Ordering::SeqCst);
        let sink = Arc::new(RecordingSink::default());
        let handles = spawn(
            vec![
                task("10.0.0.3:80", healthy, true),
                task("10.0.0.3:80", broken.clone(), true),
            ],
            sink.clone(),
            1,
            &CheckerBoard::default(),
        );
        assert!(!sink.last().up, "alpha: starts down");
        until(start, 5.0).await;
        assert!(!sink.last().up, "one of two checkers is still down");
        broken.down.store(false, Ordering::SeqCst);
        until(start, 15.0).await;
        assert!(sink.last().up);
        handles.iter().for_each(JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn a_misc_dynamic_weight_is_published() {
        let server = Arc::new(FakeServer {
            weight: Some(5),
            ..FakeServer::default()
        });
        let sink = Arc::new(RecordingSink::default());
        let handles = spawn(
            vec![task("10.0.0.4:80", server, false)],
            sink.clone(),
            1,
            &CheckerBoard::default(),
        );
        sleep(Duration::from_secs(1)).await;
        assert_eq!(
            sink.last(),
            Published {
                real: "10.0.0.4:80".into(),
                up: true,
                weight: Some(5)
            }
        );
        handles.iter().for_each(JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_probe_comes_within_the_warmup() {
        let start = Instant::now();
        let server = Arc::new(FakeServer::default());
        let sink = Arc::new(RecordingSink::default());
        let warm = CheckerTask {
            timing: Timing {
                warmup: Duration::from_secs(10),
                delay_loop: Duration::from_secs(100),
                ..TIMING
            },
            ..task("10.0.0.5:80", server.clone(), false)
        };
        let handles = spawn(vec![warm], sink, 1, &CheckerBoard::default());
        until(start, 10.0).await;
        assert_eq!(server.probes.load(Ordering::SeqCst), 1);
        handles.iter().for_each(JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn flips_call_notify_with_the_reason_and_the_board_follows_the_checker() {
        let start = Instant::now();
        let server = Arc::new(FakeServer::default());
        let sink = Arc::new(RecordingSink::default());
        let board = CheckerBoard::default();
        let timing = Timing { retry: 0, ..TIMING };
        let quick = CheckerTask {
            timing,
            ..task("10.0.0.6:80", server.clone(), false)
        };
        let handles = spawn(vec![quick], sink.clone(), 1, &board);
        until(start, 5.0).await;
        assert!(
            sink.notifies().is_empty(),
            "no notify at startup nor for a first success"
        );
        let checkers = board.checkers("10.0.0.1:80", "10.0.0.6:80");
        assert_eq!((checkers[0].up, checkers[0].flips), (true, 0));
        assert_eq!(
            checkers[0].latency_ms,
            Some(0.0),
            "paused time: the fake probe takes none"
        );
        server.down.store(true, Ordering::SeqCst);
        until(start, 15.0).await;
        server.down.store(false, Ordering::SeqCst);
        until(start, 25.0).await;
        assert_eq!(
            sink.notifies(),
            [
                (false, "switched off".to_string()),
                (true, "check succeeded".to_string())
            ]
        );
        let checkers = board.checkers("10.0.0.1:80", "10.0.0.6:80");
        assert_eq!(checkers[0].name, "TCP_CHECK");
        assert_eq!((checkers[0].up, checkers[0].flips), (true, 2));
        assert_eq!(checkers[0].last_error.as_deref(), Some("switched off"));
        handles.iter().for_each(JoinHandle::abort);
    }

    #[tokio::test(start_paused = true)]
    async fn an_alpha_server_whose_first_verdict_is_down_runs_notify_down_once() {
        let start = Instant::now();
        let server = Arc::new(FakeServer::default());
        server.down.store(true, Ordering::SeqCst);
        let sink = Arc::new(RecordingSink::default());
        let handles = spawn(
            vec![task("10.0.0.7:80", server, true)],
            sink.clone(),
            1,
            &CheckerBoard::default(),
        );
        // retry 2: the first verdict comes with the third probe (at 2s); later ones are silent.
        until(start, 1.5).await;
        assert!(
            sink.notifies().is_empty(),
            "retries pending: no verdict yet"
        );
        until(start, 40.0).await;
        assert_eq!(sink.notifies(), [(false, "switched off".to_string())]);
        handles.iter().for_each(JoinHandle::abort);
    }

    #[test]
    fn the_warmup_prng_is_deterministic_and_in_range() {
        let draws: Vec<f64> = (0..1000)
            .scan(SplitMix64::seeded(&"checker"), |r, _| Some(r.unit()))
            .collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert_eq!(SplitMix64::seeded(&"checker").unit(), draws[0]);
        assert_ne!(SplitMix64::seeded(&"other").unit(), draws[0]);
    }
}
