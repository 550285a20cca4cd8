//! The sync daemon's kernel side: the balancer's `lvs_sync_ring` (new NAT flows, read
//! asynchronously) and the flow tables it writes synced entries into and dumps
//! (`lvs_nat`, `lvs_conntrack`), each on a descriptor of its own. `SyncMaps` is the seam
//! `lvs::sync::install` writes through (faked in its tests).
use std::os::fd::AsFd;

use anyhow::{Context, Result, anyhow};
use aya::maps::{HashMap, Map, MapData, MapError, RingBuf};
use vrrp_common::{
    lvs::{Flow, FlowKey, NatReverse, SyncRecord},
    pins::{MAP_LVS_CONNTRACK, MAP_LVS_NAT, MAP_LVS_SYNC_RING},
};

use super::Dataplane;
use crate::lvs::sync::entries::Entry;

/// `bpf_map_update_elem` flags.
const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Yes,
    /// `insert_new`: the key was there already. `overwrite_existing`: it was not.
    No,
}

/// Every access of the sync daemon to the flow tables.
pub trait SyncMaps {
    /// Writes the entry only if its key is new.
    fn insert_new(&mut self, entry: &Entry) -> Result<Written>;
    /// Rewrites the entry only if its key exists.
    fn overwrite_existing(&mut self, entry: &Entry) -> Result<Written>;
    /// Entries in (`lvs_nat`, `lvs_conntrack`).
    fn count(&self) -> Result<(u64, u64)>;
    /// Every entry of both tables (a dump).
    fn read_all(&self) -> Result<(Vec<(FlowKey, NatReverse)>, Vec<(FlowKey, Flow)>)>;
}

pub struct XdpSyncMaps {
    nat: HashMap<MapData, FlowKey, NatReverse>,
    conntrack: HashMap<MapData, FlowKey, Flow>,
}

fn own(dataplane: &Dataplane, name: &str) -> Result<MapData> {
    let data = match dataplane.balancer().map(name) {
        Some(Map::LruHashMap(data) | Map::HashMap(data) | Map::RingBuf(data)) => data,
        _ => return Err(anyhow!("the balancer object has no map {name}")),
    };
    let fd = data.fd().as_fd().try_clone_to_owned().with_context(|| format!("duplicating {name}"))?;
    Ok(MapData::from_fd(fd)?)
}

impl XdpSyncMaps {
    pub fn of(dataplane: &Dataplane) -> Result<XdpSyncMaps> {
        Ok(XdpSyncMaps {
            nat: HashMap::try_from(Map::LruHashMap(own(dataplane, MAP_LVS_NAT)?))?,
            conntrack: HashMap::try_from(Map::LruHashMap(own(dataplane, MAP_LVS_CONNTRACK)?))?,
        })
    }
}

/// The ring of new NAT flows, on a descriptor of its own (poll it with tokio's `AsyncFd`).
pub fn sync_ring(dataplane: &Dataplane) -> Result<RingBuf<MapData>> {
    Ok(RingBuf::try_from(Map::RingBuf(own(dataplane, MAP_LVS_SYNC_RING)?))?)
}

/// One ring item as the record it holds (None: not one, never expected).
pub fn ring_record(bytes: &[u8]) -> Option<SyncRecord> {
    (bytes.len() >= size_of::<SyncRecord>()).then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const SyncRecord) })
}

fn outcome(result: Result<(), MapError>, absent_errno: i32) -> Result<Written> {
    match result {
        Ok(()) => Ok(Written::Yes),
        Err(MapError::SyscallError(error)) if error.io_error.raw_os_error() == Some(absent_errno) => Ok(Written::No),
        Err(error) => Err(error.into()),
    }
}

impl XdpSyncMaps {
    fn write(&mut self, entry: &Entry, flags: u64, refused: i32) -> Result<Written> {
        match entry {
            Entry::Nat(key, value) => outcome(self.nat.insert(key, value, flags), refused).context("writing lvs_nat"),
            Entry::Conntrack(key, value) => outcome(self.conntrack.insert(key, value, flags), refused).context("writing lvs_conntrack"),
        }
    }
}

impl SyncMaps for XdpSyncMaps {
    fn insert_new(&mut self, entry: &Entry) -> Result<Written> {
        self.write(entry, BPF_NOEXIST, libc::EEXIST)
    }

    fn overwrite_existing(&mut self, entry: &Entry) -> Result<Written> {
        self.write(entry, BPF_EXIST, libc::ENOENT)
    }

    fn count(&self) -> Result<(u64, u64)> {
        Ok((self.nat.keys().count() as u64, self.conntrack.keys().count() as u64))
    }

    fn read_all(&self) -> Result<(Vec<(FlowKey, NatReverse)>, Vec<(FlowKey, Flow)>)> {
        // Entries evicted while the keys are walked are skipped.
        Ok((self.nat.iter().filter_map(Result::ok).collect(), self.conntrack.iter().filter_map(Result::ok).collect()))
    }
}
