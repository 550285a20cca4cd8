//! The load balancer's control side: which services the configuration asks for (`plan`),
//! Maglev rings (`maglev`), the controller's picture of the XDP maps (`tables`), and the
//! kernel IPVS alternative over generic netlink (`ipvs`).
pub mod dataplane;
pub mod ipvs;
pub mod ipvs_dataplane;
pub mod maglev;
pub mod plan;
pub mod tables;
#[cfg(test)]
mod tables_tests;

pub use dataplane::{LvsDataplane, XdpLvs};
pub use ipvs_dataplane::{IpvsLvs, IpvsOps};
pub use plan::{BackendPlan, ServiceKey, ServicePlan, plan};
pub use tables::{LvsTables, ServiceView};
