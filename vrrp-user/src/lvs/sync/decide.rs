//! What the sync daemon does when: a pure state machine (inputs with the time, actions out),
//! driven by `daemon::sync`, which owns the ring, the socket and the maps.
//!
//! - Master for the sync instance: new flows from the balancer's ring are batched and sent
//!   when a datagram is full or `flush_after` passed since the first one waited; a Backup's
//!   resync request is answered with a full dump of the flow tables (at most one per
//!   `dump_every_at_most`), ended by a DumpDone marker.
//! - Otherwise (Backup, Fault, starting): entries received are installed; on becoming
//!   Backup (and at start) a resync request is sent, and sent again every `request_every`
//!   until a dump's end is heard.
//!
//! Why the Backup asks rather than the Master dumping on a timer: the new Backup is the one
//! that knows it needs the table (it just started, or it was Master a moment ago), it gets
//! it within milliseconds instead of within a period, and a quiet pair sends nothing. The
//! XDP program reports a flow once (when it starts), so a lost datagram is repaired only by
//! the next dump (the next time a Backup starts or loses Master).
use std::time::{Duration, Instant};

use serde::Serialize;

use super::wire::{self, Conn, DecodeError, Message};

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub sync_id: u8,
    /// Largest datagram payload.
    pub maxlen: usize,
    pub flush_after: Duration,
    pub request_every: Duration,
    pub dump_every_at_most: Duration,
}

impl Settings {
    pub fn new(sync_id: u8, maxlen: usize) -> Settings {
        Settings {
            sync_id,
            maxlen: maxlen.max(wire::MIN_DATAGRAM),
            flush_after: Duration::from_millis(50),
            request_every: Duration::from_secs(3),
            dump_every_at_most: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// One datagram to the group.
    Send(Vec<u8>),
    /// Entries to write into the flow tables.
    Install(Vec<Conn>),
    /// Read the flow tables and hand the connections to `Sync::dump`.
    Dump,
}

/// What installing a batch did (from the map seam).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Installed {
    /// New flows written.
    pub new: u64,
    /// Flows already there, rewritten.
    pub refreshed: u64,
    /// Not written: the table is full.
    pub table_full: u64,
    /// No service or real server here matches (the nodes' configurations differ).
    pub unknown_service: u64,
    /// A forwarding method or kind this node does not keep state for.
    pub unsupported: u64,
    /// The map write failed.
    pub failed: u64,
}

/// `keepxdp status`'s `lvs_sync`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub master: bool,
    pub ring_records: u64,
    /// Ring records while not Master for the sync instance: not sent.
    pub ring_records_not_master: u64,
    pub sent_entries: u64,
    pub sent_datagrams: u64,
    pub sent_bytes: u64,
    pub send_errors: u64,
    pub dumps_sent: u64,
    pub resync_requests_sent: u64,
    pub resync_requests_received: u64,
    pub received_datagrams: u64,
    pub received_entries: u64,
    pub dumps_received: u64,
    /// Entries a Master received (another node thinks it is Master too): ignored.
    pub ignored_as_master: u64,
    pub installed_new: u64,
    pub installed_refreshed: u64,
    /// Entries a full flow table could not take.
    pub not_installed_table_full: u64,
    pub not_installed_unknown_service: u64,
    pub not_installed_unsupported: u64,
    pub install_errors: u64,
    pub malformed: u64,
    pub last_malformed: Option<String>,
    /// Datagrams of another sync id (another pair on the group).
    pub other_sync_id: u64,
}

pub struct Sync {
    settings: Settings,
    master: bool,
    pending: Vec<Conn>,
    pending_since: Option<Instant>,
    /// Backup: when the last resync request went out, and whether a dump's end came since.
    asked_at: Option<Instant>,
    answered: bool,
    /// Master: a dump is wanted, not before this.
    dump_due: Option<Instant>,
    last_dump: Option<Instant>,
    pub counters: Counters,
}

impl Sync {
    pub fn new(settings: Settings) -> Sync {
        Sync {
            settings,
            master: false,
            pending: Vec::new(),
            pending_since: None,
            asked_at: None,
            answered: false,
            dump_due: None,
            last_dump: None,
            counters: Counters::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn is_master(&self) -> bool {
        self.master
    }

    /// The daemon starts (not Master yet): ask for the table.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.ask(now)
    }

    fn ask(&mut self, now: Instant) -> Vec<Action> {
        self.asked_at = Some(now);
        self.answered = false;
        self.counters.resync_requests_sent += 1;
        vec![Action::Send(wire::encode_resync_request(self.settings.sync_id))]
    }

    /// The sync instance's state: Master or not.
    pub fn set_master(&mut self, master: bool, now: Instant) -> Vec<Action> {
        if master == self.master {
            return Vec::new();
        }
        self.master = master;
        self.counters.master = master;
        self.pending.clear();
        self.pending_since = None;
        self.dump_due = None;
        if master {
            self.asked_at = None;
            Vec::new()
        } else {
            self.ask(now)
        }
    }

    /// A new flow from the balancer.
    pub fn record(&mut self, conn: Conn, now: Instant) -> Vec<Action> {
        self.counters.ring_records += 1;
        if !self.master {
            self.counters.ring_records_not_master += 1;
            return Vec::new();
        }
        self.pending.push(conn);
        self.pending_since.get_or_insert(now);
        let per_datagram = wire::conns_per_datagram(self.settings.maxlen, self.pending.iter().any(|c| c.client.is_ipv6()));
        if self.pending.len() >= per_datagram { self.flush() } else { Vec::new() }
    }

    fn flush(&mut self) -> Vec<Action> {
        self.pending_since = None;
        let conns = std::mem::take(&mut self.pending);
        self.sends(&conns)
    }

    fn sends(&mut self, conns: &[Conn]) -> Vec<Action> {
        let datagrams = wire::encode_conns(self.settings.sync_id, conns, self.settings.maxlen);
        self.counters.sent_entries += conns.len() as u64;
        datagrams.into_iter().map(|d| self.count_send(d)).collect()
    }

    fn count_send(&mut self, datagram: Vec<u8>) -> Action {
        self.counters.sent_datagrams += 1;
        self.counters.sent_bytes += datagram.len() as u64;
        Action::Send(datagram)
    }

    /// Time passes: partial batches go out, requests are repeated, a wanted dump starts.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.master {
            if self.pending_since.is_some_and(|since| now.duration_since(since) >= self.settings.flush_after) {
                actions.extend(self.flush());
            }
            if self.dump_due.is_some_and(|due| now >= due) {
                self.dump_due = None;
                self.last_dump = Some(now);
                actions.push(Action::Dump);
            }
        } else if !self.answered && self.asked_at.is_none_or(|at| now.duration_since(at) >= self.settings.request_every) {
            actions.extend(self.ask(now));
        }
        actions
    }

    /// The table to dump (the effect layer read it after `Action::Dump`): entries, then the
    /// end marker.
    pub fn dump(&mut self, conns: &[Conn]) -> Vec<Action> {
        self.counters.dumps_sent += 1;
        let mut actions = self.sends(conns);
        let done = wire::encode_dump_done(self.settings.sync_id, conns.len() as u32);
        actions.push(self.count_send(done));
        actions
    }

    /// A datagram from the group (never from this node: multicast loop is off).
    pub fn datagram(&mut self, bytes: &[u8], now: Instant) -> Vec<Action> {
        let message = match wire::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.malformed(error);
                return Vec::new();
            }
        };
        let sync_id = match &message {
            Message::Conns { sync_id, .. } | Message::ResyncRequest { sync_id } | Message::DumpDone { sync_id, .. } => *sync_id,
        };
        if sync_id != self.settings.sync_id {
            self.counters.other_sync_id += 1;
            return Vec::new();
        }
        self.counters.received_datagrams += 1;
        match message {
            Message::Conns { conns, skipped, .. } => {
                self.counters.received_entries += (conns.len() + skipped) as u64;
                self.counters.not_installed_unsupported += skipped as u64;
                if self.master {
                    self.counters.ignored_as_master += conns.len() as u64;
                    Vec::new()
                } else if conns.is_empty() {
                    Vec::new()
                } else {
                    vec![Action::Install(conns)]
                }
            }
            Message::ResyncRequest { .. } => {
                self.counters.resync_requests_received += 1;
                if self.master && self.dump_due.is_none() {
                    let earliest = self.last_dump.map_or(now, |at| at + self.settings.dump_every_at_most);
                    self.dump_due = Some(earliest.max(now));
                }
                Vec::new()
            }
            Message::DumpDone { .. } => {
                self.counters.dumps_received += 1;
                self.answered = true;
                Vec::new()
            }
        }
    }

    fn malformed(&mut self, error: DecodeError) {
        self.counters.malformed += 1;
        self.counters.last_malformed = Some(error.to_string());
    }

    pub fn installed(&mut self, outcome: Installed) {
        let c = &mut self.counters;
        c.installed_new += outcome.new;
        c.installed_refreshed += outcome.refreshed;
        c.not_installed_table_full += outcome.table_full;
        c.not_installed_unknown_service += outcome.unknown_service;
        c.not_installed_unsupported += outcome.unsupported;
        c.install_errors += outcome.failed;
    }

    pub fn send_failed(&mut self) {
        self.counters.send_errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::sync::wire::{Forward, TCP_ESTABLISHED};

    fn conn(port: u16) -> Conn {
        Conn {
            protocol: 6,
            client: format!("10.0.0.1:{port}").parse().unwrap(),
            virtual_service: "10.0.0.100:80".parse().unwrap(),
            destination: "10.1.0.11:80".parse().unwrap(),
            forward: Forward::Nat,
            template: false,
            state: TCP_ESTABLISHED,
            timeout: 0,
        }
    }

    fn sends(actions: &[Action]) -> Vec<Message> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(bytes) => Some(wire::decode(bytes).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn master(now: Instant) -> Sync {
        let mut sync = Sync::new(Settings::new(51, 1472));
        sync.start(now);
        sync.set_master(true, now);
        sync
    }

    #[test]
    fn a_starting_node_asks_for_the_table_and_asks_again_until_a_dump_ends() {
        let t0 = Instant::now();
        let mut sync = Sync::new(Settings::new(51, 1472));
        assert_eq!(sends(&sync.start(t0)), [Message::ResyncRequest { sync_id: 51 }]);
        assert!(sync.tick(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(sends(&sync.tick(t0 + Duration::from_secs(3))), [Message::ResyncRequest { sync_id: 51 }]);
        assert!(sync.datagram(&wire::encode_dump_done(51, 0), t0 + Duration::from_secs(4)).is_empty());
        assert!(sync.tick(t0 + Duration::from_secs(60)).is_empty(), "answered: no more requests");
        assert_eq!(sync.counters.resync_requests_sent, 2);
        assert_eq!(sync.counters.dumps_received, 1);
    }

    #[test]
    fn a_master_batches_new_flows_and_sends_a_full_datagram_at_once_and_the_rest_after_flush_after() {
        let t0 = Instant::now();
        let mut sync = master(t0);
        let mut actions = Vec::new();
        for port in 0..45 {
            actions.extend(sync.record(conn(port), t0));
        }
        let sent = sends(&actions);
        assert_eq!(sent.len(), 1, "40 IPv4 entries fill a 1472-byte datagram");
        let Message::Conns { conns, .. } = &sent[0] else { panic!() };
        assert_eq!(conns.len(), 40);
        assert!(sync.tick(t0 + Duration::from_millis(10)).is_empty());
        let rest = sends(&sync.tick(t0 + Duration::from_millis(50)));
        assert!(matches!(&rest[..], [Message::Conns { conns, .. }] if conns.len() == 5));
        assert_eq!((sync.counters.sent_entries, sync.counters.sent_datagrams), (45, 2));
        assert_eq!(sync.counters.sent_bytes, (8 + 40 * 36 + 8 + 5 * 36) as u64);
    }

    #[test]
    fn a_backup_does_not_send_what_its_ring_reports_and_installs_what_it_hears() {
        let t0 = Instant::now();
        let mut sync = Sync::new(Settings::new(51, 1472));
        sync.start(t0);
        assert!(sync.record(conn(1), t0).is_empty());
        assert!(sync.tick(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(sync.counters.ring_records_not_master, 1);
        let datagram = wire::encode_conns(51, &[conn(1), conn(2)], 1472).remove(0);
        assert_eq!(sync.datagram(&datagram, t0), [Action::Install(vec![conn(1), conn(2)])]);
        assert_eq!(sync.counters.received_entries, 2);
    }

    #[test]
    fn a_request_makes_the_master_dump_at_most_every_half_second_ending_with_the_marker() {
        let t0 = Instant::now();
        let mut sync = master(t0);
        let request = wire::encode_resync_request(51);
        sync.datagram(&request, t0);
        assert_eq!(sync.tick(t0), [Action::Dump]);
        let actions = sync.dump(&[conn(1), conn(2)]);
        assert_eq!(
            sends(&actions),
            [Message::Conns { sync_id: 51, conns: vec![conn(1), conn(2)], skipped: 0 }, Message::DumpDone { sync_id: 51, entries: 2 }]
        );
        // A second Backup asking right after: its dump waits for the interval.
        sync.datagram(&request, t0 + Duration::from_millis(100));
        sync.datagram(&request, t0 + Duration::from_millis(200));
        assert!(sync.tick(t0 + Duration::from_millis(300)).is_empty());
        assert_eq!(sync.tick(t0 + Duration::from_millis(500)), [Action::Dump]);
        assert_eq!(sync.counters.resync_requests_received, 3);
    }

    #[test]
    fn losing_master_drops_the_unsent_batch_and_asks_the_new_master() {
        let t0 = Instant::now();
        let mut sync = master(t0);
        sync.record(conn(1), t0);
        assert_eq!(sends(&sync.set_master(false, t0)), [Message::ResyncRequest { sync_id: 51 }]);
        assert!(sync.tick(t0 + Duration::from_millis(100)).is_empty(), "nothing left to flush");
        assert!(sync.set_master(false, t0).is_empty(), "no change, no request");
    }

    #[test]
    fn a_backup_ignores_requests_and_a_master_ignores_entries() {
        let t0 = Instant::now();
        let mut backup = Sync::new(Settings::new(51, 1472));
        backup.datagram(&wire::encode_resync_request(51), t0);
        assert!(backup.tick(t0).iter().all(|a| !matches!(a, Action::Dump)));
        let mut sync = master(t0);
        let datagram = wire::encode_conns(51, &[conn(1)], 1472).remove(0);
        assert!(sync.datagram(&datagram, t0).is_empty());
        assert_eq!(sync.counters.ignored_as_master, 1);
    }

    #[test]
    fn malformed_datagrams_and_other_sync_ids_are_counted_and_change_nothing() {
        let t0 = Instant::now();
        let mut sync = Sync::new(Settings::new(51, 1472));
        assert!(sync.datagram(&[1, 2, 3], t0).is_empty());
        assert!(sync.datagram(&[0, 51, 0, 8, 0, 7, 0, 0], t0).is_empty());
        assert_eq!(sync.counters.malformed, 2);
        assert_eq!(sync.counters.last_malformed.as_deref(), Some("unknown version 7"));
        let other = wire::encode_conns(52, &[conn(1)], 1472).remove(0);
        assert!(sync.datagram(&other, t0).is_empty());
        assert_eq!(sync.counters.other_sync_id, 1);
        assert_eq!(sync.counters.received_datagrams, 0);
    }

    #[test]
    fn install_outcomes_add_up_in_the_counters() {
        let mut sync = Sync::new(Settings::new(1, 1472));
        sync.installed(Installed { new: 3, refreshed: 1, table_full: 2, unknown_service: 1, unsupported: 0, failed: 0 });
        sync.installed(Installed { new: 1, table_full: 1, ..Installed::default() });
        let c = &sync.counters;
        assert_eq!((c.installed_new, c.installed_refreshed, c.not_installed_table_full, c.not_installed_unknown_service), (4, 1, 3, 1));
    }
}
