//! keepalived's email alerts: a mail on each VRRP instance's and sync group's state change and
//! on each checker verdict that changes a real server's checker (`notification_email`,
//! `notification_email_from`, `smtp_server`, `smtp_helo_name`, `smtp_connect_timeout`,
//! `smtp_alert`, `smtp_alert_vrrp`, `smtp_alert_checker`, per-instance, per-group and
//! per-real-server `smtp_alert`), with keepalived 2.2.7's subjects, bodies and headers.
//!
//! The state machines only put a mail on a bounded queue (`queue`): one task sends them in
//! order over SMTP (`smtp`, a small hand-written client of keepalived's dialogue). A full
//! queue or a failed send is logged and counted, never waited for.
pub mod message;
pub mod plan;
pub mod queue;
pub mod smtp;

pub use queue::{AlertCounts, checker_changed, counts, drain, group_state, instance_state, start};
