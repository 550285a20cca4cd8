//! The LVS scripts: a real server's `notify_up` / `notify_down` and a virtual server's
//! `quorum_up` / `quorum_down`. Which one to run is looked up here (pure); running it is a
//! background task with a time limit, checked like every script under
//! `enable_script_security`.
use std::{collections::HashMap, path::Path};

use crate::{
    check::scheduler::{real_name, service_name},
    config::Config,
    track::script::{self, Ended},
    vrrp::notify::NOTIFY_TIMEOUT,
};

/// A pair of scripts: (up, down).
type Pair = (Option<String>, Option<String>);

fn pick(pair: Option<&Pair>, up: bool) -> Option<&str> {
    let (on_up, on_down) = pair?;
    if up { on_up.as_deref() } else { on_down.as_deref() }
}

#[derive(Debug, Default)]
pub struct LvsScripts {
    /// (service name, real server name) → notify_up, notify_down.
    real: HashMap<(String, String), Pair>,
    /// Service name → quorum_up, quorum_down.
    quorum: HashMap<String, Pair>,
    security: bool,
}

impl LvsScripts {
    pub fn of(model: &Config) -> LvsScripts {
        let mut scripts = LvsScripts { security: model.global_defs.enable_script_security, ..LvsScripts::default() };
        for vs in &model.virtual_servers {
            let service = service_name(&vs.key);
            if vs.quorum_up.is_some() || vs.quorum_down.is_some() {
                scripts.quorum.insert(service.clone(), (vs.quorum_up.clone(), vs.quorum_down.clone()));
            }
            for real in vs.real_servers.iter().filter(|r| r.notify_up.is_some() || r.notify_down.is_some()) {
                scripts.real.insert((service.clone(), real_name(real)), (real.notify_up.clone(), real.notify_down.clone()));
            }
        }
        scripts
    }

    /// `notify_up` (up) or `notify_down` of a real server of a service.
    pub fn real_server(&self, service: &str, real: &str, up: bool) -> Option<&str> {
        pick(self.real.get(&(service.to_string(), real.to_string())), up)
    }

    /// `quorum_up` (up) or `quorum_down` of a service.
    pub fn quorum(&self, service: &str, up: bool) -> Option<&str> {
        pick(self.quorum.get(service), up)
    }

    /// Runs `command` in the background; `what` names it in logs.
    pub fn spawn(&self, command: &str, what: String) {
        let argv = script::argv(command);
        if self.security
            && let Some(program) = argv.first()
            && let Err(error) = script::check_security(Path::new(program))
        {
            tracing::error!(script = command, "{what}: {error:#}; not run");
            return;
        }
        tokio::spawn(async move {
            match script::run_command(&argv, NOTIFY_TIMEOUT).await {
                Ended::Exited(Some(0)) => {}
                Ended::Exited(code) => tracing::warn!(script = argv.join(" "), ?code, "{what} failed"),
                Ended::Failed(reason) => tracing::warn!(script = argv.join(" "), "{what}: {reason}"),
                Ended::TimedOut => tracing::warn!(script = argv.join(" "), "{what} timed out after {NOTIFY_TIMEOUT:?}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, LoadOptions};

    fn scripts(text: &str) -> LvsScripts {
        let loaded = config::load_str(Path::new("keepalived.conf"), text, &LoadOptions::default());
        LvsScripts::of(&loaded.config.expect("the test config loads"))
    }

    #[test]
    fn each_flip_and_quorum_change_picks_its_own_script() {
        let scripts = scripts(
            "virtual_server 10.0.0.100 80 {\n  protocol TCP\n  quorum_up /bin/echo up\n  quorum_down /bin/qdown\n  \
             real_server 10.0.1.1 80 {\n    notify_up /bin/rs-up\n    notify_down /bin/rs-down now\n    TCP_CHECK {\n    }\n  }\n  \
             real_server 10.0.1.2 80 {\n    notify_down /bin/only-down\n  }\n  real_server 10.0.1.3 80 {\n  }\n}\n",
        );
        let service = "10.0.0.100:80";
        assert_eq!(scripts.real_server(service, "10.0.1.1:80", true), Some("/bin/rs-up"));
        assert_eq!(scripts.real_server(service, "10.0.1.1:80", false), Some("/bin/rs-down now"));
        assert_eq!(scripts.real_server(service, "10.0.1.2:80", true), None, "no notify_up configured");
        assert_eq!(scripts.real_server(service, "10.0.1.2:80", false), Some("/bin/only-down"));
        assert_eq!(scripts.real_server(service, "10.0.1.3:80", false), None);
        assert_eq!(scripts.real_server("10.0.0.101:80", "10.0.1.1:80", false), None, "another service's real server");
        assert_eq!(scripts.quorum(service, true), Some("/bin/echo up"));
        assert_eq!(scripts.quorum(service, false), Some("/bin/qdown"));
        assert_eq!(scripts.quorum("10.0.0.101:80", false), None);
    }
}
