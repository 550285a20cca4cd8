//! Reading keepalived.conf.
//!
//! This is the first slice: a lexer that keeps every token's file:line:col, and a reader that
//! extracts what the VRRP guard needs from each `vrrp_instance` (interface, VRID, address
//! family, unicast peers). The full typed model and validation replace `instances` later.
mod error;
mod instances;
mod lexer;

pub use error::ConfigError;
pub use instances::{Family, InstanceSpec, read_instances, read_instances_from_str};
pub use lexer::{Token, tokenize};
