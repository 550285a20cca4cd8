//! keepalived's dump signals (SIGUSR1 data, SIGUSR2 stats, SIGJSON): the daemon's state
//! written where keepalived writes it; keepxdp keeps running whatever happens.
use super::Daemon;
use crate::ops::{dump::DumpInput, dump_files, signals::Request};

impl Daemon {
    pub(super) fn dump(&self, request: Request) {
        if request == Request::StatsClear {
            tracing::warn!("STATS_CLEAR: keepxdp does not clear its counters (they feed `keepxdp status`); nothing done");
            return;
        }
        let instances = self.vrrp.specs_and_statuses();
        let services = self.balancer.views();
        let input = DumpInput {
            pid: std::process::id(),
            config: &self.options.config,
            started_at: self.started_at,
            instances: &instances,
            services: &services,
        };
        match dump_files::write(request, &self.options.dump_dir, &input) {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "Printing {} on signal", request.name()),
            Ok(None) => {}
            Err(error) => tracing::error!("writing the {} dump: {error:#}", request.name()),
        }
    }
}
