//! Health checkers: keepalived's TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, DNS_CHECK,
//! SMTP_CHECK, UDP_CHECK and PING_CHECK, probing real servers and publishing their health.
//!
//! - `outcome`: what one probe found
//! - `connection`: where a checker connects from and to, and the sockets it opens (a leaf)
//! - `source`: the source address of a checker without `bindto` (never a VIP of this node)
//! - `random`: random bytes for probes
//! - `inherit`: keepalived's rules for the settings a checker inherits (pure)
//! - `probe`: one checker ready to run, built from the config, and TCP_CHECK
//! - `http`: HTTP_GET and SSL_GET (a minimal HTTP/1.x client, TLS without verification)
//! - `misc`: MISC_CHECK
//! - `dns`: DNS_CHECK (one query over UDP, judged by its header)
//! - `smtp`: SMTP_CHECK (greeting, HELO, QUIT)
//! - `udp`: UDP_CHECK
//! - `ping`: PING_CHECK (ICMP echo)
//! - `retry`: the pure retry/up/down state machine
//! - `notify`: when a real server's notify_up / notify_down runs (pure)
//! - `status`: each checker's state, last error, latency and flips, shared for status
//! - `scheduler`: one task per checker, bounded concurrency, a real server's health
//! - `running`: the running checkers across reloads (unchanged ones keep their state)
//!
//! FILE_CHECK and BFD_CHECK are not implemented: such checkers are skipped with a warning.
pub mod connection;
pub mod dns;
pub mod http;
pub mod inherit;
pub mod misc;
pub mod notify;
pub mod outcome;
pub mod ping;
pub mod probe;
pub mod random;
pub mod retry;
pub mod running;
pub mod scheduler;
pub mod source;
pub mod smtp;
pub mod status;
pub mod udp;

pub use outcome::Outcome;
pub use probe::{Probe, ProbeKind};
pub use retry::{Action, RetryState, Timing};
pub use scheduler::{CheckerTask, HealthSink, RunProbe, spawn, tasks_from_config};
pub use running::{Reconciled, RunningCheckers};
pub use status::{CheckerBoard, CheckerStatus};
