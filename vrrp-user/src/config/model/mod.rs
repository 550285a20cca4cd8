//! The typed configuration: what keepxdp understood of a keepalived.conf, with keepalived's
//! defaults applied. `keepxdp check --dump` prints it as JSON.
mod global;
mod lvs;
mod vrrp;

use serde::Serialize;

pub use global::{GlobalDefs, LvsSyncDaemon, SmtpServer};
pub use lvs::*;
pub use vrrp::*;

use super::tree::Node;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    pub global_defs: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_track_processes: Vec<TrackProcess>,
    pub vrrp_track_files: Vec<TrackFile>,
    pub vrrp_sync_groups: Vec<SyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub static_ipaddress: Vec<VirtualAddress>,
    pub static_routes: Vec<RawEntry>,
    pub static_rules: Vec<RawEntry>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// Top-level keywords keepalived knows that keepxdp does not implement yet.
    pub not_implemented: Vec<Kept>,
}

/// A statement keepxdp recognized and kept without acting on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub keyword: String,
    pub args: Vec<String>,
    /// `FILE:LINE:COL` of the keyword.
    pub at: String,
    pub has_block: bool,
}

impl Kept {
    pub fn of(node: &Node) -> Kept {
        Kept {
            keyword: node.keyword().to_string(),
            args: node.args.iter().map(|t| t.text.clone()).collect(),
            at: node.name.pos.to_string(),
            has_block: node.block.is_some(),
        }
    }
}

/// One line of a block keepxdp keeps as written (routes and rules: their grammar is
/// ip-route's, applied by the netlink layer of a later slice).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawEntry {
    pub words: Vec<String>,
    pub at: String,
}

impl RawEntry {
    pub fn of(node: &Node) -> RawEntry {
        RawEntry { words: node.words().map(|t| t.text.clone()).collect(), at: node.name.pos.to_string() }
    }
}
