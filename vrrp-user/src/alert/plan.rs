//! Who gets mail, from whom, through which server, for which instance, group and real server:
//! keepalived 2.2.7's defaults (core/global_data.c, vrrp/vrrp.c, check/check_data.c), resolved
//! from the configuration. Pure: the host and user names come in.
use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use crate::{
    check::scheduler::{real_name, service_name},
    config::{
        Config,
        model::{Protocol, RealServer, VirtualServer, VirtualServerKey},
    },
};

/// keepalived's smtp_connect_timeout default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub helo_name: String,
    /// For the connection and each reply (keepalived's smtp_connect_timeout).
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertPlan {
    /// None: no `smtp_server` or no `notification_email`, so nothing is sent (as keepalived).
    pub server: Option<Server>,
    pub router_id: String,
    pub from: String,
    pub to: Vec<String>,
    /// `no_email_faults`: no mail on entering FAULT.
    pub no_email_faults: bool,
    /// `no_checker_emails`: a checker's change is mailed only when it changes the real
    /// server's combined state.
    pub no_checker_emails: bool,
    /// Instances and sync groups whose `smtp_alert` resolved to on.
    instances: BTreeSet<String>,
    groups: BTreeSet<String>,
    /// (service, real server) as the checkers name them → (virtual server, real server) as
    /// keepalived writes them, for the real servers whose `smtp_alert` resolved to on.
    real_servers: HashMap<(String, String), (String, String)>,
}

impl AlertPlan {
    /// `host`: this machine's name (keepalived's default router_id, HELO name and sender
    /// domain); `user`: the running user's name (the sender's local part).
    pub fn of(model: &Config, host: &str, user: &str) -> AlertPlan {
        let global = &model.global_defs;
        let vrrp_default = global.smtp_alert_vrrp.or(global.smtp_alert).unwrap_or(false);
        // Real servers default to on when nothing is said (keepalived keeps that for
        // backward compatibility, unlike every other smtp_alert).
        let checker_default = global.smtp_alert_checker.or(global.smtp_alert).unwrap_or(true);
        let mut real_servers = HashMap::new();
        for vs in &model.virtual_servers {
            for real in vs.real_servers.iter().filter(|r| r.smtp_alert.unwrap_or(checker_default)) {
                real_servers.insert((service_name(&vs.key), real_name(real)), (format_vs(vs), format_rs(vs, real)));
            }
        }
        let server = match (&global.smtp_server, global.notification_email.is_empty()) {
            (Some(server), false) => Some(Server {
                host: server.host.clone(),
                port: server.port,
                helo_name: global.smtp_helo_name.clone().unwrap_or_else(|| host.to_string()),
                timeout: global.smtp_connect_timeout.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s.into())),
            }),
            _ => None,
        };
        AlertPlan {
            server,
            router_id: global.router_id.clone().unwrap_or_else(|| host.to_string()),
            from: global.notification_email_from.clone().unwrap_or_else(|| format!("{user}@{host}")),
            to: global.notification_email.clone(),
            no_email_faults: global.no_email_faults,
            no_checker_emails: global.no_checker_emails,
            instances: model.vrrp_instances.iter().filter(|i| i.smtp_alert.unwrap_or(vrrp_default)).map(|i| i.name.clone()).collect(),
            groups: model.vrrp_sync_groups.iter().filter(|g| g.smtp_alert.unwrap_or(vrrp_default)).map(|g| g.name.clone()).collect(),
            real_servers,
        }
    }

    pub fn sends(&self) -> bool {
        self.server.is_some()
    }

    pub fn instance(&self, name: &str) -> bool {
        self.sends() && self.instance_alert_on(name)
    }

    /// The instance's `smtp_alert` as resolved, a server configured or not.
    pub fn instance_alert_on(&self, name: &str) -> bool {
        self.instances.contains(name)
    }

    pub fn group(&self, name: &str) -> bool {
        self.sends() && self.groups.contains(name)
    }

    /// keepalived's names of the virtual and real server, when this real server alerts.
    pub fn real_server(&self, service: &str, real: &str) -> Option<&(String, String)> {
        if !self.sends() {
            return None;
        }
        self.real_servers.get(&(service.to_string(), real.to_string()))
    }
}

fn protocol(vs: &VirtualServer) -> &'static str {
    match vs.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// keepalived's FMT_VS: `[ADDRESS]:PROTO:PORT`, `FWM MARK` or `[GROUP]:0`.
pub fn format_vs(vs: &VirtualServer) -> String {
    match &vs.key {
        VirtualServerKey::Address { ip, port } => format!("[{ip}]:{}:{}", protocol(vs), port.unwrap_or(0)),
        VirtualServerKey::Fwmark { mark } => format!("FWM {mark}"),
        VirtualServerKey::Group { name } => format!("[{name}]:0"),
    }
}

/// keepalived's FMT_RS: `[ADDRESS]:PROTO:PORT`, with the virtual server's protocol.
pub fn format_rs(vs: &VirtualServer, real: &RealServer) -> String {
    format!("[{}]:{}:{}", real.ip, protocol(vs), real.port.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, LoadOptions};

    fn plan(text: &str) -> AlertPlan {
        let loaded = config::load_str(Path::new("keepalived.conf"), text, &LoadOptions::default());
        AlertPlan::of(&loaded.config.expect("the test config loads"), "lb1", "root")
    }

    const MAIL: &str = "  notification_email {\n    ops@example.com\n    oncall@example.com\n  }\n  smtp_server 192.0.2.25\n";

    fn instances(extra_global: &str, a: &str, b: &str) -> String {
        format!(
            "global_defs {{\n{MAIL}{extra_global}}}\n\
             vrrp_instance A {{\n  interface lo\n  virtual_router_id 1\n  priority 100\n{a}  virtual_ipaddress {{\n    192.0.2.1\n  }}\n}}\n\
             vrrp_instance B {{\n  interface lo\n  virtual_router_id 2\n  priority 100\n{b}  virtual_ipaddress {{\n    192.0.2.2\n  }}\n}}\n\
             vrrp_sync_group G {{\n  group {{\n    A\n    B\n  }}\n}}\n"
        )
    }

    #[test]
    fn keepalived_s_defaults_when_little_is_written() {
        let plan = plan(&instances("", "", ""));
        let server = plan.server.clone().unwrap();
        assert_eq!((server.host.as_str(), server.port, server.helo_name.as_str(), server.timeout), ("192.0.2.25", 25, "lb1", DEFAULT_TIMEOUT));
        assert_eq!((plan.router_id.as_str(), plan.from.as_str()), ("lb1", "root@lb1"));
        assert_eq!(plan.to, ["ops@example.com", "oncall@example.com"]);
        assert!(!plan.instance("A") && !plan.group("G"), "VRRP alerts are off unless asked for");
    }

    #[test]
    fn instance_over_smtp_alert_vrrp_over_smtp_alert() {
        let plan = plan(&instances("  smtp_alert\n  smtp_alert_vrrp off\n", "  smtp_alert\n", ""));
        assert!(plan.instance("A"), "its own smtp_alert wins");
        assert!(!plan.instance("B") && !plan.group("G"), "smtp_alert_vrrp off wins over smtp_alert");
        let plan = super::tests::plan(&instances("  smtp_alert\n", "  smtp_alert no\n", ""));
        assert!(!plan.instance("A") && plan.instance("B") && plan.group("G"));
    }

    #[test]
    fn nothing_is_sent_without_a_server_or_recipients() {
        let without_server = instances("  smtp_alert\n", "", "").replace("  smtp_server 192.0.2.25\n", "");
        assert!(!plan(&without_server).instance("A"));
        let without_recipients = instances("  smtp_alert\n", "", "").replace("    ops@example.com\n    oncall@example.com\n", "");
        assert!(!plan(&without_recipients).sends());
    }

    #[test]
    fn real_servers_alert_by_default_and_are_named_as_keepalived_names_them() {
        let text = format!(
            "global_defs {{\n{MAIL}  smtp_helo_name mx.lb1\n  smtp_connect_timeout 5\n  router_id LB_1\n  notification_email_from lb@example.com\n}}\n\
             virtual_server 10.0.0.100 80 {{\n  protocol TCP\n  real_server 10.0.1.1 80 {{\n  }}\n  real_server 10.0.1.2 80 {{\n    smtp_alert no\n  }}\n}}\n\
             virtual_server fd00::100 53 {{\n  protocol UDP\n  real_server fd00::1 53 {{\n  }}\n}}\n"
        );
        let plan = plan(&text);
        let server = plan.server.clone().unwrap();
        assert_eq!((server.helo_name.as_str(), server.timeout), ("mx.lb1", Duration::from_secs(5)));
        assert_eq!((plan.router_id.as_str(), plan.from.as_str()), ("LB_1", "lb@example.com"));
        assert_eq!(
            plan.real_server("10.0.0.100:80", "10.0.1.1:80"),
            Some(&("[10.0.0.100]:tcp:80".to_string(), "[10.0.1.1]:tcp:80".to_string()))
        );
        assert_eq!(plan.real_server("10.0.0.100:80", "10.0.1.2:80"), None, "smtp_alert no");
        assert_eq!(plan.real_server("[fd00::100]:53", "[fd00::1]:53").map(|(vs, _)| vs.as_str()), Some("[fd00::100]:udp:53"));
        let off = plan_with_checker_off(&text);
        assert_eq!(off.real_server("10.0.0.100:80", "10.0.1.1:80"), None, "smtp_alert_checker off");
        assert!(!plan.no_email_faults && !plan.no_checker_emails);
        let quiet = super::tests::plan(&text.replace("  router_id LB_1\n", "  router_id LB_1\n  no_email_faults\n  no_checker_emails\n"));
        assert!(quiet.no_email_faults && quiet.no_checker_emails);
    }

    fn plan_with_checker_off(text: &str) -> AlertPlan {
        plan(&text.replace("  router_id LB_1\n", "  router_id LB_1\n  smtp_alert_checker off\n"))
    }
}
