//! keepalived's signals: what each does, and its number (`keepalived --signum=NAME`).
//! keepalived 2.2.7 (lib/signals.h, keepalived/core/main.c): RELOAD SIGHUP, DATA SIGUSR1,
//! STATS SIGUSR2, STATS_CLEAR SIGRTMAX-1, JSON SIGRTMIN+2, STOP SIGTERM.
use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// A signal keepalived's users send, by what it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reload,
    /// The data dump (/tmp/keepalived.data).
    Data,
    /// The statistics dump (/tmp/keepalived.stats).
    Stats,
    /// Clear the statistics (keepxdp keeps its counters, and says so).
    StatsClear,
    /// The JSON dump (/tmp/keepalived.json).
    Json,
    Stop,
}

impl Request {
    const ALL: [Request; 6] = [Request::Reload, Request::Data, Request::Stats, Request::StatsClear, Request::Json, Request::Stop];

    /// The name `--signum` takes.
    pub fn name(self) -> &'static str {
        match self {
            Request::Reload => "RELOAD",
            Request::Data => "DATA",
            Request::Stats => "STATS",
            Request::StatsClear => "STATS_CLEAR",
            Request::Json => "JSON",
            Request::Stop => "STOP",
        }
    }

    /// The signal number on this system (the real-time ones depend on the C library).
    pub fn number(self) -> i32 {
        match self {
            Request::Reload => libc::SIGHUP,
            Request::Data => libc::SIGUSR1,
            Request::Stats => libc::SIGUSR2,
            Request::StatsClear => libc::SIGRTMAX() - 1,
            Request::Json => libc::SIGRTMIN() + 2,
            Request::Stop => libc::SIGTERM,
        }
    }

    pub fn from_name(name: &str) -> Option<Request> {
        Request::ALL.into_iter().find(|request| request.name().eq_ignore_ascii_case(name))
    }
}

/// `--signum=NAME`: the number, or keepalived's own complaint.
pub fn signum(name: &str) -> Result<i32> {
    Request::from_name(name).map(Request::number).ok_or_else(|| {
        let names: Vec<&str> = Request::ALL.iter().map(|r| r.name()).collect();
        anyhow::anyhow!("Unknown sigfunc {name} (known: {})", names.join(", "))
    })
}

/// The daemon's signal handlers: none of keepalived's signals kills keepxdp (their default
/// action would, for SIGUSR1/2 and the real-time ones).
pub struct Signals {
    handlers: Vec<(Request, Signal)>,
    interrupt: Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        let mut handlers = Vec::new();
        for request in Request::ALL {
            handlers.push((request, signal(SignalKind::from_raw(request.number()))?));
        }
        Ok(Signals { handlers, interrupt: signal(SignalKind::interrupt())? })
    }

    pub async fn next(&mut self) -> Request {
        let interrupt = self.interrupt.recv();
        let any = futures_util::future::select_all(self.handlers.iter_mut().map(|(request, handler)| {
            let request = *request;
            Box::pin(async move {
                handler.recv().await;
                request
            })
        }));
        tokio::select! {
            _ = interrupt => { tracing::info!("SIGINT: stopping"); Request::Stop }
            (request, _, _) = any => {
                tracing::info!(signal = request.number(), "{} signal received", request.name());
                request
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signum_gives_keepalived_numbers_on_glibc() {
        assert_eq!(signum("RELOAD").unwrap(), 1);
        assert_eq!(signum("DATA").unwrap(), 10);
        assert_eq!(signum("STATS").unwrap(), 12);
        assert_eq!(signum("JSON").unwrap(), 36);
        assert_eq!(signum("STATS_CLEAR").unwrap(), 63);
        assert_eq!(signum("stop").unwrap(), 15);
        assert!(signum("TDATA").unwrap_err().to_string().contains("Unknown sigfunc TDATA"));
    }
}
