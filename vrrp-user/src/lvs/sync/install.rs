//! Writing received connections into the flow tables through `SyncMaps`, keeping `Fill` so
//! that a full table refuses new keys (and counts them) instead of letting the LRU evict
//! flows it already holds: a Backup keeps what it has and says what it could not take.
use super::{
    decide::Installed,
    entries::{Directory, Entry, Fill, Skip, entries_for},
    wire::Conn,
};
use crate::bpf::{SyncMaps, Written};

/// The two tables' fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fills {
    pub nat: Fill,
    pub conntrack: Fill,
}

enum One {
    New,
    Refreshed,
    Full,
}

/// One entry; `room`: the connection's entries may all be new keys.
fn write(entry: &Entry, room: bool, fills: &mut Fills, maps: &mut impl SyncMaps) -> anyhow::Result<One> {
    let fill = match entry {
        Entry::Nat(..) => &mut fills.nat,
        Entry::Conntrack(..) => &mut fills.conntrack,
    };
    if room {
        if maps.insert_new(entry)? == Written::Yes {
            fill.add();
            return Ok(One::New);
        }
    }
    Ok(match maps.overwrite_existing(entry)? {
        Written::Yes => One::Refreshed,
        // Not there, and no room for it.
        Written::No => One::Full,
    })
}

/// Installs `conns`; what happened to each, counted by connection.
pub fn install(conns: &[Conn], directory: &Directory, fills: &mut Fills, maps: &mut impl SyncMaps) -> (Installed, Option<anyhow::Error>) {
    let mut outcome = Installed::default();
    let mut first_error = None;
    for conn in conns {
        let entries = match entries_for(conn, directory) {
            Ok(entries) => entries,
            Err(Skip::UnknownService) => {
                outcome.unknown_service += 1;
                continue;
            }
            Err(Skip::Unsupported) => {
                outcome.unsupported += 1;
                continue;
            }
        };
        // Room for all of a connection's entries or none of them: no half-installed flow.
        let fill = match entries.first() {
            Some(Entry::Conntrack(..)) => fills.conntrack,
            _ => fills.nat,
        };
        let room = fill.has_room_for(entries.len() as u64);
        let (mut new, mut full, mut failed) = (0, 0, 0);
        for entry in &entries {
            match write(entry, room, fills, maps) {
                Ok(One::New) => new += 1,
                Ok(One::Refreshed) => {}
                Ok(One::Full) => full += 1,
                Err(error) => {
                    failed += 1;
                    first_error.get_or_insert(error);
                }
            }
        }
        if failed > 0 {
            outcome.failed += 1;
        } else if full > 0 {
            outcome.table_full += 1;
        } else if new > 0 {
            outcome.new += 1;
        } else {
            outcome.refreshed += 1;
        }
    }
    (outcome, first_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvs::sync::{
        entries::tests_support::{directory, nat},
        wire::Forward,
    };
    use vrrp_common::lvs::{Flow, FlowKey, NatReverse};

    #[derive(Default)]
    struct FakeMaps {
        nat: Vec<(FlowKey, NatReverse)>,
        conntrack: Vec<(FlowKey, Flow)>,
        fail: bool,
    }

    fn put<V: Copy>(table: &mut Vec<(FlowKey, V)>, key: FlowKey, value: V, want_present: bool) -> Written {
        match table.iter().position(|(k, _)| *k == key) {
            Some(at) if want_present => {
                table[at].1 = value;
                Written::Yes
            }
            None if !want_present => {
                table.push((key, value));
                Written::Yes
            }
            _ => Written::No,
        }
    }

    impl SyncMaps for FakeMaps {
        fn insert_new(&mut self, entry: &Entry) -> anyhow::Result<Written> {
            if self.fail {
                anyhow::bail!("EPERM");
            }
            Ok(match *entry {
                Entry::Nat(k, v) => put(&mut self.nat, k, v, false),
                Entry::Conntrack(k, v) => put(&mut self.conntrack, k, v, false),
            })
        }
        fn overwrite_existing(&mut self, entry: &Entry) -> anyhow::Result<Written> {
            Ok(match *entry {
                Entry::Nat(k, v) => put(&mut self.nat, k, v, true),
                Entry::Conntrack(k, v) => put(&mut self.conntrack, k, v, true),
            })
        }
        fn count(&self) -> anyhow::Result<(u64, u64)> {
            Ok((self.nat.len() as u64, self.conntrack.len() as u64))
        }
        fn read_all(&self) -> anyhow::Result<(Vec<(FlowKey, NatReverse)>, Vec<(FlowKey, Flow)>)> {
            Ok((self.nat.clone(), self.conntrack.clone()))
        }
    }

    fn fills(nat: u64) -> Fills {
        Fills { nat: Fill { capacity: nat, used: 0 }, conntrack: Fill { capacity: 10, used: 0 } }
    }

    #[test]
    fn new_connections_are_written_twice_for_nat_and_a_repeat_is_a_refresh() {
        let mut maps = FakeMaps::default();
        let mut fills = fills(100);
        let (outcome, error) = install(&[nat(40000, 5001), nat(40001, 5002)], &directory(), &mut fills, &mut maps);
        assert!(error.is_none());
        assert_eq!(outcome, Installed { new: 2, ..Installed::default() });
        assert_eq!((maps.nat.len(), fills.nat.used), (4, 4));
        let (again, _) = install(&[nat(40000, 5001)], &directory(), &mut fills, &mut maps);
        assert_eq!(again, Installed { refreshed: 1, ..Installed::default() });
        assert_eq!(fills.nat.used, 4);
        assert_eq!(maps.count().unwrap(), (4, 0));
    }

    #[test]
    fn a_full_table_refuses_new_connections_keeps_refreshing_old_ones_and_counts() {
        let mut maps = FakeMaps::default();
        let mut fills = fills(3);
        let conns: Vec<Conn> = (0..3).map(|p| nat(40000 + p, 5001)).collect();
        let (outcome, _) = install(&conns, &directory(), &mut fills, &mut maps);
        // 3 slots: the first connection's two entries; the second's do not both fit, so
        // neither is written.
        assert_eq!(outcome, Installed { new: 1, table_full: 2, ..Installed::default() });
        assert_eq!((maps.nat.len(), fills.nat.used), (2, 2));
        let (again, _) = install(&conns[..1], &directory(), &mut fills, &mut maps);
        assert_eq!(again, Installed { refreshed: 1, ..Installed::default() });
    }

    #[test]
    fn unknown_services_templates_and_map_errors_are_counted_apart() {
        let mut maps = FakeMaps::default();
        let mut fills = fills(100);
        let template = Conn { template: true, ..nat(1, 5001) };
        let dr = Conn { forward: Forward::Dr, ..nat(2, 5001) };
        let (outcome, _) = install(&[nat(3, 9999), template, dr], &directory(), &mut fills, &mut maps);
        assert_eq!(outcome, Installed { unknown_service: 2, unsupported: 1, ..Installed::default() });
        maps.fail = true;
        let (outcome, error) = install(&[nat(4, 5001)], &directory(), &mut fills, &mut maps);
        assert_eq!(outcome.failed, 1);
        assert!(error.unwrap().to_string().contains("EPERM"));
        assert!(maps.read_all().unwrap().0.is_empty());
    }
}
