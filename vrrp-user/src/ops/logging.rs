//! Where keepxdp's log goes and how much of it: stderr (journald under systemd; colours only
//! on a terminal), syslog with keepalived's `-S FACILITY`; `RUST_LOG` or keepalived's `-D`
//! for more. aya's loader chatter stays at warn unless `RUST_LOG` names aya.
use std::{ffi::CString, io};

use tracing::{Level, Metadata};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt};

use super::keepalived_args::KeepalivedFlags;

/// The filter: `rust_log` (RUST_LOG) if given, else info (debug for keepxdp's own targets with
/// -D); aya's crates at warn unless `rust_log` mentions them.
pub fn filter(rust_log: Option<&str>, detail: bool) -> EnvFilter {
    let base = match rust_log {
        Some(directives) => directives.to_string(),
        None if detail => "info,keepxdp=debug".into(),
        None => "info".into(),
    };
    let mut filter = EnvFilter::try_new(&base).unwrap_or_else(|_| EnvFilter::new("info"));
    if !base.contains("aya") {
        for quiet in ["aya=warn", "aya_obj=warn", "aya_log=warn"] {
            filter = filter.add_directive(quiet.parse().expect("a valid directive"));
        }
    }
    filter
}

/// One log line for syslog(3), sent when the writer is dropped (tracing writes a line per
/// event through one writer).
pub struct SyslogLine {
    priority: libc::c_int,
    buffer: Vec<u8>,
}

impl io::Write for SyslogLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let Ok(line) = CString::new(text.trim_end().replace('\0', " ")) else { return };
        // SAFETY: a constant format with one NUL-terminated string argument.
        unsafe { libc::syslog(self.priority, c"%s".as_ptr(), line.as_ptr()) };
    }
}

pub struct Syslog;

impl Syslog {
    /// openlog(3) as `keepxdp[PID]` with `facility`.
    pub fn open(facility: libc::c_int) -> Syslog {
        // SAFETY: the ident is a static C string, as openlog keeps the pointer.
        unsafe { libc::openlog(c"keepxdp".as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
        Syslog
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine { priority: libc::LOG_INFO, buffer: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogLine {
        let priority = match *meta.level() {
            Level::ERROR => libc::LOG_ERR,
            Level::WARN => libc::LOG_WARNING,
            Level::INFO => libc::LOG_INFO,
            _ => libc::LOG_DEBUG,
        };
        SyslogLine { priority, buffer: Vec::new() }
    }
}

/// Installs the subscriber for `flags` (stderr unless -S without -l; syslog with -S unless -G).
pub fn init(flags: &KeepalivedFlags) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let stderr = (flags.log_facility.is_none() || flags.log_console).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
    });
    let syslog = flags.log_facility.filter(|_| !flags.no_syslog).map(|facility| {
        tracing_subscriber::fmt::layer().with_writer(Syslog::open(facility.0)).with_ansi(false).without_time().with_level(false)
    });
    let _ = tracing_subscriber::registry().with(filter(rust_log.as_deref(), flags.log_detail)).with(stderr).with(syslog).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aya_is_quiet_unless_asked_for() {
        let quiet = filter(Some("debug"), false).to_string();
        assert!(quiet.contains("aya=warn") && quiet.contains("aya_obj=warn"), "{quiet}");
        let asked = filter(Some("debug,aya=trace"), false).to_string();
        assert!(!asked.contains("aya=warn"), "{asked}");
        assert!(filter(None, true).to_string().contains("keepxdp=debug"));
    }
}
