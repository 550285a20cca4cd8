//! From the statement tree to the typed model: one builder per block kind, each reading its
//! keywords with `Ctx` and reporting what it cannot use.
mod ctx;
mod global;
mod lvs;
mod vrrp;

pub use ctx::Ctx;

use std::{path::PathBuf, sync::Arc};

use super::diagnostic::Pos;

/// The position a model item recorded as `FILE:LINE:COL` (its `at`), for later diagnostics.
pub fn pos_of(at: &str) -> Pos {
    let mut parts = at.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok());
    let line = parts.next().and_then(|l| l.parse().ok());
    match (parts.next(), line, column) {
        (Some(file), Some(line), Some(column)) => Pos { file: Arc::new(PathBuf::from(file)), line, column },
        _ => Pos::file_only(Arc::new(PathBuf::from(at))),
    }
}

use super::{diagnostic::Diagnostics, model::Config, tree::Node};

const TOP_IMPLEMENTED: &[&str] = &[
    "global_defs",
    "vrrp_script",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "vrrp_sync_group",
    "vrrp_instance",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "virtual_server_group",
    "virtual_server",
];

pub fn build(nodes: &[Node], diagnostics: &mut Diagnostics) -> Config {
    let mut ctx = Ctx { diagnostics };
    let mut config = Config::default();
    for node in nodes {
        match node.keyword() {
            "global_defs" => global::global_defs(&mut ctx, node, &mut config.global_defs),
            "vrrp_script" => config.vrrp_scripts.extend(vrrp::script(&mut ctx, node)),
            "vrrp_track_process" => config.vrrp_track_processes.extend(vrrp::track_process(&mut ctx, node)),
            // keepalived 2.2.7 names the block `track_file`; `vrrp_track_file` is its older name.
            "vrrp_track_file" | "track_file" => config.vrrp_track_files.extend(vrrp::track_file(&mut ctx, node)),
            "vrrp_sync_group" => config.vrrp_sync_groups.extend(vrrp::sync_group(&mut ctx, node)),
            "vrrp_instance" => {
                let default_version = config.global_defs.vrrp_version;
                config.vrrp_instances.extend(vrrp::instance(&mut ctx, node, default_version))
            }
            "static_ipaddress" => {
                for child in ctx.block(node) {
                    config.static_ipaddress.extend(vrrp::virtual_address(&mut ctx, child));
                }
            }
            "static_routes" => config.static_routes.extend(ctx.block(node).iter().map(super::model::RawEntry::of)),
            "static_rules" => config.static_rules.extend(ctx.block(node).iter().map(super::model::RawEntry::of)),
            "virtual_server_group" => config.virtual_server_groups.extend(lvs::virtual_server_group(&mut ctx, node)),
            "virtual_server" => config.virtual_servers.extend(lvs::virtual_server(&mut ctx, node)),
            keyword if super::keywords::TOP_LEVEL.contains(&keyword) => {
                let kept = ctx.not_implemented(node, "the top level");
                config.not_implemented.push(kept);
            }
            _ => ctx.unknown(node, "the top level", &[TOP_IMPLEMENTED, super::keywords::TOP_LEVEL]),
        }
    }
    config
}
