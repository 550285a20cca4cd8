//! Running keepxdp the way keepalived is run: its signals and dump files, its log wording.
pub mod dump;
pub mod dump_files;
pub mod log;
pub mod signals;
pub mod keepalived_args;
pub mod pidfile;
pub mod logging;
pub mod systemd;
pub mod generate;
