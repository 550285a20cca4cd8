//! The VRRP state machine (RFC 3768 §6.4 for v2, RFC 9568 §6.4 for v3) as a pure function:
//! `step(params, machine, event, now) -> (machine, actions)`. It owns no socket, timer or
//! clock: timers are deadlines in the returned `Machine`, and the runtime delivers
//! `Event::Tick` when `machine.next_deadline()` passes. What the machine wants done (send an
//! advert, claim or release the virtual addresses, re-announce them, run notify scripts) comes
//! back as `Action`s.
//!
//! Where keepalived behaves differently from the RFC and users rely on it, keepalived wins and
//! the rule says so: `state MASTER` takes mastership at startup; a Master that hears a lower
//! priority answers at once (so the other side stops claiming); a Master leaving for FAULT
//! sends priority 0; `preempt_delay` holds preemption for a while after startup.
use std::{net::IpAddr, time::Duration};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
    /// Shut down (priority 0 sent if we were Master); no further transitions.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// What the configuration (and tracking) says about this instance, at the time of the event.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub version: Version,
    /// Effective priority: the configured one plus tracking deltas, clamped to 1..=254, or 255
    /// for the address owner.
    pub priority: u8,
    /// Our Advertisement_Interval.
    pub advert_interval: Duration,
    /// False with `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: no preemption until this long after startup.
    pub preempt_delay: Duration,
    /// Our primary address on the interface: breaks ties between equal priorities.
    pub primary_address: IpAddr,
    /// keepalived's `state MASTER`: take mastership at startup instead of waiting.
    pub start_as_master: bool,
    /// In a vrrp_sync_group: when the Master_Down_Timer fires, wait for the whole group to
    /// want mastership (`Action::WantMaster`, then `Event::SyncMaster`) instead of taking it.
    pub sync_group: bool,
}

/// The instance's protocol state and its timers (deadlines on the runtime's monotonic clock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub state: State,
    /// v3: the interval the current Master advertises (RFC 9568 Master_Adver_Interval).
    pub master_adver_interval: Duration,
    pub master_down_at: Option<Duration>,
    pub advert_at: Option<Duration>,
    /// When the instance started (for preempt_delay).
    pub started_at: Option<Duration>,
    /// The source of the last advert that kept us Backup (the current Master).
    pub master_address: Option<IpAddr>,
    /// Sync group member whose Master went silent, waiting for the rest of the group.
    pub wants_master: bool,
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            state: State::Initialize,
            master_adver_interval: Duration::ZERO,
            master_down_at: None,
            advert_at: None,
            started_at: None,
            master_address: None,
            wants_master: false,
        }
    }

    /// The earliest pending timer: the runtime sends `Event::Tick` once it has passed.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.master_down_at, self.advert_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

/// An advert that passed the receive checks (see `discard`), as the state machine needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Advert {
    pub source: IpAddr,
    pub priority: u8,
    /// v2: the advert's Adver Int; v3: its Max Adver Int.
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    Startup,
    Shutdown,
    Advert(Advert),
    /// Time passed: timers at or before `now` fire.
    Tick,
    /// The interface went down or a tracked object failed without a weight.
    Fault,
    /// The fault cleared.
    FaultCleared,
    /// vrrp_sync_group: another member became Master; so does this one (from Backup).
    SyncMaster,
    /// vrrp_sync_group: another member fell back to Backup; so does this one (from Master).
    SyncBackup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    SendAdvert { priority: u8 },
    /// Add the virtual addresses and announce them (gratuitous ARP / unsolicited NA).
    ClaimAddresses,
    /// Announce the addresses again (we stay Master after hearing another Master).
    Reannounce,
    ReleaseAddresses,
    /// The state changed: log it, run notify scripts, update sync groups.
    Transition { from: State, to: State },
    /// Sync group member: this instance would (no longer) become Master.
    WantMaster(bool),
}

/// Skew_Time: v2 (RFC 3768 §6.1) `(256 - Priority) / 256` s; v3 (RFC 9568 §6.1)
/// `((256 - Priority) * Master_Adver_Interval) / 256`.
pub fn skew_time(params: &Params, master_adver_interval: Duration) -> Duration {
    let weight = 256 - u32::from(params.priority);
    match params.version {
        Version::V2 => Duration::from_secs(1) * weight / 256,
        Version::V3 => master_adver_interval * weight / 256,
    }
}

/// Master_Down_Interval: `3 * interval + Skew_Time`; v2 uses our Advertisement_Interval,
/// v3 the learned Master_Adver_Interval.
pub fn master_down_interval(params: &Params, master_adver_interval: Duration) -> Duration {
    let interval = match params.version {
        Version::V2 => params.advert_interval,
        Version::V3 => master_adver_interval,
    };
    interval * 3 + skew_time(params, master_adver_interval)
}

pub fn step(params: &Params, machine: &Machine, event: Event, now: Duration) -> (Machine, Vec<Action>) {
    let mut next = machine.clone();
    let mut actions = Vec::new();
    match (machine.state, event) {
        (State::Stop, _) => {}
        (State::Initialize, Event::Startup) => start(params, &mut next, &mut actions, now),
        // keepalived: an instance whose interface is missing or down (or whose tracking
        // fails) at startup waits in FAULT, and starts when the fault clears.
        (State::Initialize, Event::Fault) => transition(&mut next, &mut actions, State::Fault),
        (State::Initialize, _) => {}
        (_, Event::Shutdown) => {
            // RFC 9568 §6.4.3: a Master sends an advert with priority 0 on shutdown.
            if machine.state == State::Master {
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::ReleaseAddresses);
            }
            next.advert_at = None;
            next.master_down_at = None;
            transition(&mut next, &mut actions, State::Stop);
        }
        (State::Fault, Event::FaultCleared) if machine.started_at.is_none() => start(params, &mut next, &mut actions, now),
        (State::Fault, Event::FaultCleared) => {
            if params.priority == 255 {
                become_master(params, &mut next, &mut actions, now);
            } else {
                become_backup(params, &mut next, &mut actions, now, params.advert_interval);
            }
        }
        (State::Fault, _) => {}
        (_, Event::Fault) => {
            if machine.wants_master {
                next.wants_master = false;
                actions.push(Action::WantMaster(false));
            }
            if machine.state == State::Master {
                // keepalived: let the backups take over now, not after Master_Down_Interval.
                actions.push(Action::SendAdvert { priority: 0 });
                actions.push(Action::ReleaseAddresses);
            }
            next.advert_at = None;
            next.master_down_at = None;
            next.master_address = None;
            transition(&mut next, &mut actions, State::Fault);
        }
        (_, Event::FaultCleared) => {}
        (State::Backup, Event::SyncMaster) => become_master(params, &mut next, &mut actions, now),
        (State::Master, Event::SyncBackup) => {
            actions.push(Action::ReleaseAddresses);
            let interval = next.master_adver_interval;
            become_backup(params, &mut next, &mut actions, now, interval);
        }
        (_, Event::SyncMaster | Event::SyncBackup) => {}
        (State::Backup, Event::Tick) => {
            if machine.master_down_at.is_some_and(|at| at <= now) {
                // RFC 9568 §6.4.2: Master_Down_Timer fired.
                if params.sync_group {
                    // keepalived: a group goes Master together, once all its members would.
                    next.master_down_at = None;
                    if !next.wants_master {
                        next.wants_master = true;
                        actions.push(Action::WantMaster(true));
                    }
                } else {
                    become_master(params, &mut next, &mut actions, now);
                }
            }
        }
        (State::Backup, Event::Advert(advert)) => backup_hears(params, &mut next, &mut actions, now, advert),
        (State::Master, Event::Tick) => {
            if machine.advert_at.is_some_and(|at| at <= now) {
                actions.push(Action::SendAdvert { priority: params.priority });
                next.advert_at = Some(now + params.advert_interval);
            }
        }
        (State::Master, Event::Advert(advert)) => master_hears(params, &mut next, &mut actions, now, advert),
        (State::Backup | State::Master, Event::Startup) => {}
    }
    (next, actions)
}

fn transition(machine: &mut Machine, actions: &mut Vec<Action>, to: State) {
    if machine.state != to {
        actions.push(Action::Transition { from: machine.state, to });
        machine.state = to;
    }
}

/// RFC 9568 §6.4.1: the owner (255) becomes Master at once; keepalived's `state MASTER`
/// does too; everyone else waits as Backup.
fn start(params: &Params, machine: &mut Machine, actions: &mut Vec<Action>, now: Duration) {
    machine.started_at = Some(now);
    machine.master_adver_interval = params.advert_interval;
    if params.priority == 255 || params.start_as_master {
        become_master(params, machine, actions, now);
    } else {
        become_backup(params, machine, actions, now, params.advert_interval);
    }
}

fn become_master(params: &Params, machine: &mut Machine, actions: &mut Vec<Action>, now: Duration) {
    machine.wants_master = false;
    actions.push(Action::SendAdvert { priority: params.priority });
    actions.push(Action::ClaimAddresses);
    machine.master_down_at = None;
    machine.advert_at = Some(now + params.advert_interval);
    machine.master_address = Some(params.primary_address);
    transition(machine, actions, State::Master);
}

fn become_backup(params: &Params, machine: &mut Machine, actions: &mut Vec<Action>, now: Duration, interval: Duration) {
    machine.wants_master = false;
    machine.master_adver_interval = interval;
    machine.advert_at = None;
    machine.master_down_at = Some(now + master_down_interval(params, interval));
    transition(machine, actions, State::Backup);
}

/// keepalived's preempt_delay: preemption is held until this long after startup.
fn may_preempt(params: &Params, machine: &Machine, now: Duration) -> bool {
    params.preempt && machine.started_at.is_none_or(|start| now >= start + params.preempt_delay)
}

/// RFC 9568 §6.4.2, Backup receives an ADVERTISEMENT.
fn backup_hears(params: &Params, machine: &mut Machine, actions: &mut Vec<Action>, now: Duration, advert: Advert) {
    if advert.priority == 0 {
        // The Master is leaving: take over after Skew_Time only.
        machine.master_down_at = Some(now + skew_time(params, machine.master_adver_interval));
        return;
    }
    // "greater than or equal to the local Priority" (holo-vrrp's bug was "greater than").
    if !may_preempt(params, machine, now) || advert.priority >= params.priority {
        if params.version == Version::V3 {
            machine.master_adver_interval = advert.interval;
        }
        machine.master_down_at = Some(now + master_down_interval(params, machine.master_adver_interval));
        machine.master_address = Some(advert.source);
        if machine.wants_master {
            // Our Master is back: the group must not go Master on our account.
            machine.wants_master = false;
            actions.push(Action::WantMaster(false));
        }
    }
    // Else: a lower priority while we may preempt: discard; our timer will fire.
}

/// RFC 9568 §6.4.3, Master receives an ADVERTISEMENT.
fn master_hears(params: &Params, machine: &mut Machine, actions: &mut Vec<Action>, now: Duration, advert: Advert) {
    if advert.priority == 0 {
        // Another router is leaving: assert ourselves at once.
        actions.push(Action::SendAdvert { priority: params.priority });
        machine.advert_at = Some(now + params.advert_interval);
        return;
    }
    let yields = advert.priority > params.priority
        || (advert.priority == params.priority && address_greater(&advert.source, &params.primary_address));
    if yields {
        actions.push(Action::ReleaseAddresses);
        machine.advert_at = None;
        if params.version == Version::V3 {
            machine.master_adver_interval = advert.interval;
        }
        machine.master_down_at = Some(now + master_down_interval(params, machine.master_adver_interval));
        machine.master_address = Some(advert.source);
        transition(machine, actions, State::Backup);
    } else {
        // Split brain or a lower-priority router still claiming: answer at once so it
        // backs off, and re-announce the addresses so the network follows the winner
        // (keepalived #166, #1528).
        actions.push(Action::SendAdvert { priority: params.priority });
        actions.push(Action::Reannounce);
        machine.advert_at = Some(now + params.advert_interval);
    }
}

/// RFC 9568 §6.4.3: "the primary IPvX address of the sender is greater than the local
/// primary IPvX address", compared as unsigned integers in network byte order.
fn address_greater(theirs: &IpAddr, ours: &IpAddr) -> bool {
    match (theirs, ours) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(version: Version, priority: u8) -> Params {
        Params {
            version,
            priority,
            advert_interval: SECOND,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_address: "10.0.0.2".parse().unwrap(),
            start_as_master: false,
            sync_group: false,
        }
    }

    fn advert(source: &str, priority: u8) -> Event {
        Event::Advert(Advert { source: source.parse().unwrap(), priority, interval: SECOND })
    }

    fn started(p: &Params) -> Machine {
        step(p, &Machine::new(), Event::Startup, Duration::ZERO).0
    }

    fn master(p: &Params) -> Machine {
        let backup = started(p);
        step(p, &backup, Event::Tick, backup.master_down_at.unwrap()).0
    }

    #[test]
    fn skew_and_master_down_interval_v2_rfc3768_6_1() {
        let p = params(Version::V2, 100);
        // (256 - 100) / 256 s = 609.375 ms; 3 * 1 s + skew.
        assert_eq!(skew_time(&p, SECOND), Duration::from_micros(609_375));
        assert_eq!(master_down_interval(&p, SECOND), Duration::from_micros(3_609_375));
    }

    #[test]
    fn skew_and_master_down_interval_v3_use_the_learned_interval_rfc9568_6_1() {
        let p = params(Version::V3, 100);
        // Master advertises every 100 ms: skew = 156 * 100 ms / 256.
        assert_eq!(skew_time(&p, ms(100)), Duration::from_nanos(60_937_500));
        assert_eq!(master_down_interval(&p, ms(100)), Duration::from_nanos(360_937_500));
        // v3 does not use the v2 formula (holo-vrrp's bug): with 1 s it matches v2 only by chance.
        assert_ne!(skew_time(&p, ms(100)), skew_time(&params(Version::V2, 100), ms(100)));
    }

    #[test]
    fn startup_waits_as_backup_for_master_down_interval_rfc9568_6_4_1() {
        let p = params(Version::V3, 100);
        let (machine, actions) = step(&p, &Machine::new(), Event::Startup, ms(5));
        assert_eq!(machine.state, State::Backup);
        assert_eq!(machine.master_down_at, Some(ms(5) + master_down_interval(&p, SECOND)));
        assert_eq!(actions, [Action::Transition { from: State::Initialize, to: State::Backup }]);
    }

    #[test]
    fn the_address_owner_becomes_master_at_once_rfc9568_6_4_1() {
        let p = params(Version::V3, 255);
        let (machine, actions) = step(&p, &Machine::new(), Event::Startup, Duration::ZERO);
        assert_eq!(machine.state, State::Master);
        assert_eq!(
            actions,
            [
                Action::SendAdvert { priority: 255 },
                Action::ClaimAddresses,
                Action::Transition { from: State::Initialize, to: State::Master }
            ]
        );
        assert_eq!(machine.advert_at, Some(SECOND));
    }

    #[test]
    fn keepalived_state_master_takes_mastership_at_startup() {
        let p = Params { start_as_master: true, ..params(Version::V2, 100) };
        assert_eq!(started(&p).state, State::Master);
    }

    #[test]
    fn backup_becomes_master_when_master_down_timer_fires_rfc9568_6_4_2() {
        let p = params(Version::V2, 100);
        let backup = started(&p);
        let deadline = backup.master_down_at.unwrap();
        let (early, none) = step(&p, &backup, Event::Tick, deadline - ms(1));
        assert_eq!((early.state, none.len()), (State::Backup, 0), "nothing before the deadline");
        let (machine, actions) = step(&p, &backup, Event::Tick, deadline);
        assert_eq!(machine.state, State::Master);
        assert!(actions.contains(&Action::SendAdvert { priority: 100 }) && actions.contains(&Action::ClaimAddresses));
    }

    #[test]
    fn backup_hearing_priority_0_takes_over_after_skew_time_only_rfc9568_6_4_2() {
        let p = params(Version::V3, 100);
        let backup = started(&p);
        let (machine, _) = step(&p, &backup, advert("10.0.0.9", 0), ms(500));
        assert_eq!(machine.master_down_at, Some(ms(500) + skew_time(&p, SECOND)));
    }

    #[test]
    fn backup_resets_its_timer_on_greater_or_equal_priority_rfc9568_6_4_2() {
        let p = params(Version::V3, 100);
        let backup = started(&p);
        for priority in [100, 101, 200] {
            let (machine, _) = step(&p, &backup, advert("10.0.0.9", priority), ms(700));
            assert_eq!(machine.master_down_at, Some(ms(700) + master_down_interval(&p, SECOND)), "priority {priority}");
            assert_eq!(machine.master_address, Some("10.0.0.9".parse().unwrap()));
        }
    }

    #[test]
    fn backup_with_preempt_discards_a_lower_priority_rfc9568_6_4_2() {
        let p = params(Version::V3, 100);
        let backup = started(&p);
        let (machine, actions) = step(&p, &backup, advert("10.0.0.9", 99), ms(700));
        assert_eq!(machine, backup, "discarded: the timer keeps running out");
        assert!(actions.is_empty());
    }

    #[test]
    fn backup_with_nopreempt_follows_a_lower_priority_master_rfc9568_6_4_2() {
        let p = Params { preempt: false, ..params(Version::V3, 100) };
        let backup = started(&p);
        let (machine, _) = step(&p, &backup, advert("10.0.0.9", 50), ms(700));
        assert_eq!(machine.master_down_at, Some(ms(700) + master_down_interval(&p, SECOND)));
    }

    #[test]
    fn preempt_delay_holds_preemption_after_startup_keepalived() {
        let p = Params { preempt_delay: Duration::from_secs(30), ..params(Version::V3, 100) };
        let backup = started(&p);
        let (held, _) = step(&p, &backup, advert("10.0.0.9", 50), Duration::from_secs(10));
        assert_eq!(held.master_down_at, Some(Duration::from_secs(10) + master_down_interval(&p, SECOND)));
        let (free, _) = step(&p, &backup, advert("10.0.0.9", 50), Duration::from_secs(31));
        assert_eq!(free, backup, "after the delay a lower priority is discarded again");
    }

    #[test]
    fn v3_backup_learns_the_masters_advert_interval_rfc9568_6_4_2() {
        let p = params(Version::V3, 100);
        let backup = started(&p);
        let event = Event::Advert(Advert { source: "10.0.0.9".parse().unwrap(), priority: 150, interval: ms(100) });
        let (machine, _) = step(&p, &backup, event, ms(50));
        assert_eq!(machine.master_adver_interval, ms(100));
        assert_eq!(machine.master_down_at, Some(ms(50) + master_down_interval(&p, ms(100))));
    }

    #[test]
    fn v2_backup_keeps_its_own_interval() {
        let p = params(Version::V2, 100);
        let backup = started(&p);
        let event = Event::Advert(Advert { source: "10.0.0.9".parse().unwrap(), priority: 150, interval: ms(3000) });
        let (machine, _) = step(&p, &backup, event, ms(50));
        assert_eq!(machine.master_down_at, Some(ms(50) + Duration::from_micros(3_609_375)));
    }

    #[test]
    fn master_sends_an_advert_every_interval_rfc9568_6_4_3() {
        let p = params(Version::V3, 100);
        let m = master(&p);
        let at = m.advert_at.unwrap();
        let (machine, actions) = step(&p, &m, Event::Tick, at);
        assert_eq!(actions, [Action::SendAdvert { priority: 100 }]);
        assert_eq!(machine.advert_at, Some(at + SECOND));
    }

    #[test]
    fn master_yields_to_a_higher_priority_rfc9568_6_4_3() {
        let p = params(Version::V3, 100);
        let m = master(&p);
        let (machine, actions) = step(&p, &m, advert("10.0.0.1", 101), ms(9000));
        assert_eq!(machine.state, State::Backup);
        assert_eq!(actions, [Action::ReleaseAddresses, Action::Transition { from: State::Master, to: State::Backup }]);
        assert_eq!(machine.advert_at, None);
        assert_eq!(machine.master_down_at, Some(ms(9000) + master_down_interval(&p, SECOND)));
    }

    #[test]
    fn equal_priority_is_won_by_the_higher_primary_address_rfc9568_6_4_3() {
        let p = params(Version::V3, 100); // we are 10.0.0.2
        let m = master(&p);
        let (lost, _) = step(&p, &m, advert("10.0.0.3", 100), ms(9000));
        assert_eq!(lost.state, State::Backup, "10.0.0.3 > 10.0.0.2");
        let (kept, _) = step(&p, &m, advert("10.0.0.1", 100), ms(9000));
        assert_eq!(kept.state, State::Master, "10.0.0.1 < 10.0.0.2");
        let v6 = Params { primary_address: "fe80::2".parse().unwrap(), ..p };
        let (lost6, _) = step(&v6, &master(&v6), advert("fe80::10", 100), ms(9000));
        assert_eq!(lost6.state, State::Backup);
    }

    #[test]
    fn master_hearing_a_lower_priority_answers_at_once_and_reannounces_split_brain() {
        let p = params(Version::V3, 100);
        let m = master(&p);
        let (machine, actions) = step(&p, &m, advert("10.0.0.9", 50), ms(9300));
        assert_eq!(machine.state, State::Master);
        assert_eq!(actions, [Action::SendAdvert { priority: 100 }, Action::Reannounce]);
        assert_eq!(machine.advert_at, Some(ms(9300) + SECOND));
    }

    #[test]
    fn master_hearing_priority_0_sends_an_advert_at_once_rfc9568_6_4_3() {
        let p = params(Version::V3, 100);
        let m = master(&p);
        let (machine, actions) = step(&p, &m, advert("10.0.0.9", 0), ms(9300));
        assert_eq!(actions, [Action::SendAdvert { priority: 100 }]);
        assert_eq!(machine.state, State::Master);
    }

    #[test]
    fn the_owner_never_yields_except_to_a_higher_addressed_owner() {
        let p = params(Version::V3, 255);
        let m = started(&p);
        assert_eq!(step(&p, &m, advert("10.0.0.1", 254), SECOND).0.state, State::Master);
        assert_eq!(step(&p, &m, advert("10.0.0.9", 255), SECOND).0.state, State::Backup);
    }

    #[test]
    fn shutdown_of_a_master_sends_priority_0_and_releases_rfc9568_6_4_3() {
        let p = params(Version::V2, 100);
        let (machine, actions) = step(&p, &master(&p), Event::Shutdown, ms(9000));
        assert_eq!(machine.state, State::Stop);
        assert_eq!(
            actions,
            [
                Action::SendAdvert { priority: 0 },
                Action::ReleaseAddresses,
                Action::Transition { from: State::Master, to: State::Stop }
            ]
        );
        assert_eq!(machine.next_deadline(), None);
    }

    #[test]
    fn shutdown_of_a_backup_sends_nothing() {
        let p = params(Version::V2, 100);
        let (machine, actions) = step(&p, &started(&p), Event::Shutdown, ms(9000));
        assert_eq!(machine.state, State::Stop);
        assert_eq!(actions, [Action::Transition { from: State::Backup, to: State::Stop }]);
    }

    #[test]
    fn fault_takes_a_master_down_with_priority_0_and_clearing_it_waits_as_backup() {
        let p = params(Version::V3, 100);
        let (faulted, actions) = step(&p, &master(&p), Event::Fault, ms(9000));
        assert_eq!(faulted.state, State::Fault);
        assert_eq!(
            actions,
            [
                Action::SendAdvert { priority: 0 },
                Action::ReleaseAddresses,
                Action::Transition { from: State::Master, to: State::Fault }
            ]
        );
        assert_eq!(faulted.next_deadline(), None);
        // Adverts and ticks are ignored while in FAULT.
        assert_eq!(step(&p, &faulted, advert("10.0.0.9", 50), ms(9100)).0, faulted);
        let (cleared, _) = step(&p, &faulted, Event::FaultCleared, ms(9500));
        assert_eq!(cleared.state, State::Backup);
        assert_eq!(cleared.master_down_at, Some(ms(9500) + master_down_interval(&p, SECOND)));
    }

    #[test]
    fn an_instance_faulty_at_startup_waits_in_fault_and_starts_when_it_clears_keepalived() {
        let p = Params { start_as_master: true, preempt_delay: Duration::from_secs(30), ..params(Version::V3, 100) };
        let (waiting, actions) = step(&p, &Machine::new(), Event::Fault, ms(5));
        assert_eq!(waiting.state, State::Fault);
        assert_eq!(actions, [Action::Transition { from: State::Initialize, to: State::Fault }]);
        assert_eq!(waiting.next_deadline(), None);
        // Cleared: a real startup (state MASTER honoured, preempt_delay counted from now).
        let (started, actions) = step(&p, &waiting, Event::FaultCleared, ms(9000));
        assert_eq!(started.state, State::Master);
        assert!(actions.contains(&Action::ClaimAddresses));
        assert_eq!(started.started_at, Some(ms(9000)));
        // Once started, a later fault clears to Backup as usual.
        let (faulted, _) = step(&p, &started, Event::Fault, ms(9500));
        assert_eq!(step(&p, &faulted, Event::FaultCleared, ms(9600)).0.state, State::Backup);
    }

    #[test]
    fn a_sync_group_moves_a_backup_to_master_and_a_master_to_backup() {
        let p = params(Version::V2, 100);
        let (machine, actions) = step(&p, &started(&p), Event::SyncMaster, ms(100));
        assert_eq!(machine.state, State::Master);
        assert!(actions.contains(&Action::ClaimAddresses));
        let (back, actions) = step(&p, &machine, Event::SyncBackup, ms(200));
        assert_eq!(back.state, State::Backup);
        assert_eq!(actions[0], Action::ReleaseAddresses);
        assert_eq!(back.master_down_at, Some(ms(200) + master_down_interval(&p, SECOND)));
        // No-ops elsewhere.
        assert_eq!(step(&p, &back, Event::SyncBackup, ms(300)).0, back);
        assert_eq!(step(&p, &machine, Event::SyncMaster, ms(300)).0, machine);
    }

    #[test]
    fn a_sync_group_member_waits_for_its_group_when_its_master_goes_silent() {
        let p = Params { sync_group: true, ..params(Version::V2, 100) };
        let backup = started(&p);
        let (waiting, actions) = step(&p, &backup, Event::Tick, backup.master_down_at.unwrap());
        assert_eq!(waiting.state, State::Backup);
        assert_eq!(actions, [Action::WantMaster(true)]);
        assert_eq!(waiting.next_deadline(), None);
        // Its Master comes back: the wish is withdrawn and the timer runs again.
        let (back, actions) = step(&p, &waiting, advert("10.0.0.9", 150), ms(9000));
        assert_eq!(actions, [Action::WantMaster(false)]);
        assert!(back.master_down_at.is_some() && !back.wants_master);
        // The group agrees: Master.
        let (master, _) = step(&p, &waiting, Event::SyncMaster, ms(9000));
        assert_eq!((master.state, master.wants_master), (State::Master, false));
    }

    #[test]
    fn nothing_happens_after_stop() {
        let p = params(Version::V2, 100);
        let (stopped, _) = step(&p, &started(&p), Event::Shutdown, SECOND);
        for event in [Event::Startup, Event::Tick, Event::Fault, advert("10.0.0.9", 200)] {
            let (machine, actions) = step(&p, &stopped, event, ms(5000));
            assert_eq!((machine.state, actions.len()), (State::Stop, 0));
        }
    }

    #[test]
    fn two_routers_converge_on_the_higher_priority_with_a_fake_clock() {
        // A (prio 200) and B (prio 100) start together; deliver each advert to the other.
        let a = Params { primary_address: "10.0.0.1".parse().unwrap(), ..params(Version::V3, 200) };
        let b = Params { primary_address: "10.0.0.2".parse().unwrap(), ..params(Version::V3, 100) };
        let params = [a.clone(), b.clone()];
        let mut machines = [started(&a), started(&b)];
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(10) {
            now += ms(10);
            for me in 0..2 {
                let other = 1 - me;
                let (next, actions) = step(&params[me], &machines[me], Event::Tick, now);
                machines[me] = next;
                for action in actions {
                    if let Action::SendAdvert { priority } = action {
                        let heard = Advert { source: params[me].primary_address, priority, interval: SECOND };
                        machines[other] = step(&params[other], &machines[other], Event::Advert(heard), now).0;
                    }
                }
            }
        }
        let [ma, mb] = machines;
        assert_eq!((ma.state, mb.state), (State::Master, State::Backup));
        assert_eq!(mb.master_address, Some(a.primary_address));
    }
}
