//! The load balancer's control side: which services the configuration asks for (`plan`),
//! Maglev rings (`maglev`), and the controller's picture of the XDP maps (`tables`).
pub mod maglev;
pub mod plan;
pub mod tables;

pub use plan::{BackendPlan, ServiceKey, ServicePlan, plan};
pub use tables::{LvsTables, ServiceView};
