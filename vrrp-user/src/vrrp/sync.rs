//! vrrp_sync_group (pure): members move together. One member becoming Master makes the
//! others Master; one falling back from Master to Backup takes the others back; one member's
//! own FAULT (interface down, failed tracking) puts the whole group in FAULT until every
//! member is healthy again (keepalived's rules).
use std::collections::BTreeSet;

use super::fsm::{Event, State};

/// What a member tells its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEvent {
    Transition { from: State, to: State },
    /// The member's own tracking says FAULT (true) or healthy (false).
    OwnFault(bool),
    /// The member's Master went silent (true) or came back (false).
    WantMaster(bool),
}

/// What the group tells a member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncCommand {
    Event(Event),
    /// Another member is (no longer) in FAULT.
    GroupFault(bool),
}

#[derive(Debug, Clone)]
pub struct GroupState {
    pub name: String,
    pub members: Vec<String>,
    own_faults: BTreeSet<String>,
    wants: BTreeSet<String>,
    masters: BTreeSet<String>,
    /// The group's state as its notify scripts saw it last.
    pub state: Option<State>,
}

impl GroupState {
    pub fn new(name: &str, members: Vec<String>) -> GroupState {
        GroupState {
            name: name.to_string(),
            members,
            own_faults: BTreeSet::new(),
            wants: BTreeSet::new(),
            masters: BTreeSet::new(),
            state: None,
        }
    }

    fn others<'a>(&'a self, member: &'a str) -> impl Iterator<Item = String> + 'a {
        self.members.iter().filter(move |m| m.as_str() != member).cloned()
    }

    /// The commands for the other members, and the group's new state if it changed.
    pub fn on_event(&mut self, member: &str, event: MemberEvent) -> (Vec<(String, SyncCommand)>, Option<State>) {
        if !self.members.iter().any(|m| m == member) {
            return (Vec::new(), None);
        }
        let mut commands = Vec::new();
        let mut state = None;
        if let MemberEvent::Transition { from, to } = event {
            if to == State::Master {
                self.masters.insert(member.to_string());
                self.wants.remove(member);
            } else if from == State::Master {
                self.masters.remove(member);
            }
        }
        match event {
            MemberEvent::WantMaster(true) => {
                self.wants.insert(member.to_string());
                let ready = self.members.iter().all(|m| self.wants.contains(m) || self.masters.contains(m));
                if ready && self.own_faults.is_empty() {
                    // Everyone's Master is gone: the group takes over together.
                    commands.extend(self.wants.iter().map(|m| (m.clone(), SyncCommand::Event(Event::SyncMaster))));
                    self.wants.clear();
                }
            }
            MemberEvent::WantMaster(false) => {
                self.wants.remove(member);
            }
            MemberEvent::OwnFault(true) => {
                let first = self.own_faults.is_empty();
                self.own_faults.insert(member.to_string());
                if first {
                    commands.extend(self.others(member).map(|m| (m, SyncCommand::GroupFault(true))));
                    state = Some(State::Fault);
                }
            }
            MemberEvent::OwnFault(false) => {
                let was_faulted = self.own_faults.remove(member);
                if was_faulted && self.own_faults.is_empty() {
                    commands.extend(self.others(member).map(|m| (m, SyncCommand::GroupFault(false))));
                }
            }
            MemberEvent::Transition { to: State::Master, .. } if self.own_faults.is_empty() => {
                commands.extend(self.others(member).map(|m| (m, SyncCommand::Event(Event::SyncMaster))));
                state = Some(State::Master);
            }
            MemberEvent::Transition { from: State::Master, to: State::Backup } => {
                commands.extend(self.others(member).map(|m| (m, SyncCommand::Event(Event::SyncBackup))));
                state = Some(State::Backup);
            }
            MemberEvent::Transition { to: State::Backup, .. } if self.own_faults.is_empty() => state = Some(State::Backup),
            MemberEvent::Transition { to: State::Stop, .. } => state = Some(State::Stop),
            MemberEvent::Transition { .. } => {}
        }
        let changed = state.filter(|s| self.state != Some(*s));
        if let Some(new) = changed {
            self.state = Some(new);
        }
        (commands, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupState {
        GroupState::new("G", vec!["A".into(), "B".into(), "C".into()])
    }

    #[test]
    fn one_member_becoming_master_takes_the_others_along() {
        let mut g = group();
        let (commands, state) = g.on_event("A", MemberEvent::Transition { from: State::Backup, to: State::Master });
        assert_eq!(
            commands,
            [("B".into(), SyncCommand::Event(Event::SyncMaster)), ("C".into(), SyncCommand::Event(Event::SyncMaster))]
        );
        assert_eq!(state, Some(State::Master));
        // The others' own transitions then change nothing more for the group's notify.
        let (_, again) = g.on_event("B", MemberEvent::Transition { from: State::Backup, to: State::Master });
        assert_eq!(again, None);
    }

    #[test]
    fn a_master_falling_back_takes_the_others_back() {
        let mut g = group();
        g.on_event("A", MemberEvent::Transition { from: State::Backup, to: State::Master });
        let (commands, state) = g.on_event("B", MemberEvent::Transition { from: State::Master, to: State::Backup });
        assert_eq!(commands.len(), 2);
        assert!(commands.iter().all(|(_, c)| *c == SyncCommand::Event(Event::SyncBackup)));
        assert_eq!(state, Some(State::Backup));
    }

    #[test]
    fn one_members_fault_faults_the_group_until_all_are_healthy() {
        let mut g = group();
        let (commands, state) = g.on_event("A", MemberEvent::OwnFault(true));
        assert_eq!(commands, [("B".into(), SyncCommand::GroupFault(true)), ("C".into(), SyncCommand::GroupFault(true))]);
        assert_eq!(state, Some(State::Fault));
        let (second, _) = g.on_event("B", MemberEvent::OwnFault(true));
        assert!(second.is_empty(), "already faulted");
        let (still, _) = g.on_event("A", MemberEvent::OwnFault(false));
        assert!(still.is_empty(), "B is still faulty");
        let (cleared, _) = g.on_event("B", MemberEvent::OwnFault(false));
        assert_eq!(cleared, [("A".into(), SyncCommand::GroupFault(false)), ("C".into(), SyncCommand::GroupFault(false))]);
    }

    #[test]
    fn no_member_is_pulled_to_master_while_the_group_is_faulted() {
        let mut g = group();
        g.on_event("A", MemberEvent::OwnFault(true));
        let (commands, _) = g.on_event("B", MemberEvent::Transition { from: State::Backup, to: State::Master });
        assert!(commands.is_empty());
    }

    #[test]
    fn the_group_goes_master_only_when_every_members_master_is_silent() {
        let mut g = group();
        assert!(g.on_event("A", MemberEvent::WantMaster(true)).0.is_empty());
        assert!(g.on_event("B", MemberEvent::WantMaster(true)).0.is_empty());
        // C's Master is still there; then it goes silent too.
        let (commands, _) = g.on_event("C", MemberEvent::WantMaster(true));
        let targets: Vec<&str> = commands.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(targets, ["A", "B", "C"]);
        assert!(commands.iter().all(|(_, c)| *c == SyncCommand::Event(Event::SyncMaster)));
    }

    #[test]
    fn a_withdrawn_wish_holds_the_group_back() {
        let mut g = group();
        g.on_event("A", MemberEvent::WantMaster(true));
        g.on_event("B", MemberEvent::WantMaster(true));
        g.on_event("A", MemberEvent::WantMaster(false));
        assert!(g.on_event("C", MemberEvent::WantMaster(true)).0.is_empty());
    }

    #[test]
    fn strangers_are_ignored() {
        assert_eq!(group().on_event("Z", MemberEvent::OwnFault(true)), (Vec::new(), None));
    }
}
