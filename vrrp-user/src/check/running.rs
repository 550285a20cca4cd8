//! The checkers that run, by real server, across reloads. keepalived carries a checker's
//! state over a reload when the checker did not change; so does this: a real server whose
//! checkers are all unchanged (same definitions, in the same order) keeps its tasks, its
//! health and its board entries — a real server that was down stays down, no re-warmup, no
//! "initial state" published. Changed ones restart from their configured state (`alpha`
//! down, else up), new ones start, removed ones stop.
use std::{collections::HashMap, sync::Arc};

use tokio::sync::Semaphore;

use super::{
    scheduler::{CheckerTask, Group, HealthSink, by_real_server, spawn_group},
    status::CheckerBoard,
};

/// What a reconcile did, in real servers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub kept: usize,
    pub restarted: usize,
    pub started: usize,
    pub stopped: usize,
}

pub struct RunningCheckers {
    groups: HashMap<(String, String), Group>,
    semaphore: Arc<Semaphore>,
    board: CheckerBoard,
}

impl RunningCheckers {
    /// At most `max_concurrent_probes` probes at once, over every reload.
    pub fn new(max_concurrent_probes: usize, board: CheckerBoard) -> RunningCheckers {
        RunningCheckers {
            groups: HashMap::new(),
            semaphore: Arc::new(Semaphore::new(max_concurrent_probes.max(1))),
            board,
        }
    }

    pub fn board(&self) -> &CheckerBoard {
        &self.board
    }

    /// Brings the running checkers to `tasks`. Kept real servers publish their current health
    /// again (to a sink that may have been rebuilt); it is the health they had.
    pub fn reconcile(&mut self, tasks: Vec<CheckerTask>, sink: &Arc<dyn HealthSink>) -> Reconciled {
        let mut done = Reconciled::default();
        let mut wanted = by_real_server(tasks);
        let gone: Vec<_> = self.groups.keys().filter(|key| !wanted.contains_key(*key)).cloned().collect();
        for key in gone {
            self.stop(&key);
            done.stopped += 1;
        }
        // Configuration order does not matter across real servers; sorted for stable logs.
        let mut keys: Vec<_> = wanted.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let tasks = wanted.remove(&key).expect("a key of the map");
            let definitions: Vec<&String> = tasks.iter().map(|t| &t.definition).collect();
            match self.groups.get(&key) {
                Some(group) if group.definitions.iter().collect::<Vec<_>>() == definitions => {
                    group.republish();
                    done.kept += 1;
                    continue;
                }
                Some(_) => {
                    self.stop(&key);
                    done.restarted += 1;
                }
                None => done.started += 1,
            }
            let (service, real) = key.clone();
            let group = spawn_group(service, real, tasks, sink, &self.semaphore, &self.board);
            self.groups.insert(key, group);
        }
        done
    }

    fn stop(&mut self, key: &(String, String)) {
        if let Some(group) = self.groups.remove(key) {
            group.abort();
        }
        self.board.remove(&key.0, &key.1);
    }

    pub fn stop_all(&mut self) {
        let keys: Vec<_> = self.groups.keys().cloned().collect();
        for key in keys {
            self.stop(&key);
        }
    }
}

impl Drop for RunningCheckers {
    fn drop(&mut self) {
        for group in self.groups.values() {
            group.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::time::Instant;

    use super::*;
    use crate::check::scheduler::tests::{FakeServer, RecordingSink, task, until};

    fn sink_of(recording: &Arc<RecordingSink>) -> Arc<dyn HealthSink> {
        recording.clone()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_reload_keeps_a_down_real_server_down_without_probing_again() {
        let start = Instant::now();
        let server = Arc::new(FakeServer::default());
        server.down.store(true, Ordering::SeqCst);
        let recording = Arc::new(RecordingSink::default());
        let sink = sink_of(&recording);
        let mut running = RunningCheckers::new(4, CheckerBoard::default());
        running.reconcile(vec![task("10.0.0.2:80", server.clone(), false)], &sink);
        // retry 2, delay_before_retry 1 s: down after the third failure, at ~2 s.
        until(start, 3.0).await;
        assert!(!recording.last().up, "down after its retries");
        let probes = server.probes.load(Ordering::SeqCst);
        let flips = running.board().checkers("10.0.0.1:80", "10.0.0.2:80")[0].flips;

        let done = running.reconcile(vec![task("10.0.0.2:80", server.clone(), false)], &sink);
        assert_eq!(done, Reconciled { kept: 1, ..Default::default() });
        assert!(!recording.last().up, "republished as it was: down, never 'initial state' up");
        assert!(
            recording.published().iter().skip_while(|p| p.up).all(|p| !p.up),
            "nothing published it up after it went down"
        );
        assert_eq!(server.probes.load(Ordering::SeqCst), probes, "no probe right after the reload");
        let board = running.board().checkers("10.0.0.1:80", "10.0.0.2:80");
        assert_eq!((board.len(), board[0].up, board[0].flips), (1, false, flips), "the board kept its entry");
        running.stop_all();
    }

    #[tokio::test(start_paused = true)]
    async fn changed_checkers_restart_new_ones_start_and_removed_ones_stop() {
        let start = Instant::now();
        let (a, b, c) = (Arc::new(FakeServer::default()), Arc::new(FakeServer::default()), Arc::new(FakeServer::default()));
        let recording = Arc::new(RecordingSink::default());
        let sink = sink_of(&recording);
        let mut running = RunningCheckers::new(4, CheckerBoard::default());
        running.reconcile(vec![task("10.0.0.2:80", a.clone(), false), task("10.0.0.3:80", b.clone(), false)], &sink);
        until(start, 1.0).await;
        let mut changed = task("10.0.0.2:80", a.clone(), false);
        changed.definition = "TCP_CHECK connect_timeout 5".into();
        let done = running.reconcile(vec![changed, task("10.0.0.4:80", c.clone(), false)], &sink);
        assert_eq!(done, Reconciled { restarted: 1, started: 1, stopped: 1, kept: 0 });
        assert!(running.board().checkers("10.0.0.1:80", "10.0.0.3:80").is_empty(), "removed from the board");
        let b_probes = b.probes.load(Ordering::SeqCst);
        until(start, 30.0).await;
        assert_eq!(b.probes.load(Ordering::SeqCst), b_probes, "a removed real server's checker stopped");
        assert!(c.probes.load(Ordering::SeqCst) >= 1, "the new one runs");
        assert_eq!(running.board().checkers("10.0.0.1:80", "10.0.0.2:80").len(), 1, "restarted: one entry, not two");
        running.stop_all();
    }
}
