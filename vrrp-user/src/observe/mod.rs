//! Views of the running balancer for people and scrapers, computed from what `bpf` reads
//! (pinned maps) and what the daemon serves (status): `keepxdp lvs --rate`,
//! `keepxdp lvs --connections`, and the checker/data-plane agreement `keepxdp lvs` waits for.
pub mod agree;
pub mod command;
pub mod connections;
pub mod rates;
pub mod drain;
pub mod tables;
