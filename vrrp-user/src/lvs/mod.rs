//! The load balancer's control side: which services the configuration asks for (`plan`),
//! Maglev rings (`maglev`), keepalived's quorum rules (`quorum`), the controller's picture
//! of the XDP maps (`tables`), what forwards them (`dataplane`: XDP or IPVS) and the kernel
//! IPVS over generic netlink (`ipvs`, `ipvs_dataplane`), and the NAT state sync daemon's
//! logic (`sync`).
pub mod dataplane;
pub mod ipvs;
pub mod ipvs_dataplane;
pub mod maglev;
pub mod limits;
pub mod plan;
pub mod quorum;
pub mod reverse;
pub mod sync;
pub mod tables;
#[cfg(test)]
mod tables_tests;

pub use dataplane::{LvsDataplane, XdpLvs};
pub use ipvs_dataplane::{IpvsLvs, IpvsOps};
pub use plan::{BackendPlan, ServiceKey, ServicePlan, plan};
pub use tables::{DrainTarget, LvsTables, QuorumChange, ServiceView};
