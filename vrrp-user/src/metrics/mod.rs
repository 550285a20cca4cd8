//! Prometheus text exposition on `keepxdp run --metrics-listen ADDR` (off by default). Names
//! follow keepalived's exporters for VRRP and node_exporter's IPVS collector for labels, so
//! dashboards port (the mapping is in docs/metrics.md). Families are built with the
//! `prometheus` crate's data model and encoded by its `TextEncoder` (the classic text format
//! `promtool check metrics` reads).
mod families;
mod exposition;
mod server;

pub use exposition::{Snapshot, encode, families};
pub use server::{MetricsServer, serve};
