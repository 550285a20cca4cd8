//! The load balancer's control side: which services the configuration asks for (`plan`),
//! Maglev rings (`maglev`), keepalived's quorum rules (`quorum`), the controller's picture
//! of the XDP maps (`tables`), and the kernel IPVS alternative over generic netlink (`ipvs`).
pub mod ipvs;
pub mod maglev;
pub mod plan;
pub mod quorum;
pub mod tables;
#[cfg(test)]
mod tables_tests;

pub use plan::{BackendPlan, ServiceKey, ServicePlan, plan};
pub use tables::{LvsTables, QuorumChange, ServiceView};
