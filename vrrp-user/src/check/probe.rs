//! One checker ready to run, built from the config (the settings it inherits are resolved by
//! `inherit`), and TCP_CHECK. The other checkers' protocols live in their own modules.
use std::path::Path;

use super::{
    connection::{Connection, connect},
    dns::DnsProbe,
    http::{HttpProbe, UrlProbe},
    inherit,
    misc::MiscProbe,
    outcome::Outcome,
    ping::ping,
    retry::Timing,
    smtp::{DEFAULT_HELO_NAME, SmtpProbe},
    udp::{ReplyPattern, UdpProbe, parse_hex},
};
use crate::config::model::{Checker, CheckerCommon, HttpCheck, RealServer, UdpCheck, VirtualServer};
use crate::track::script;

#[derive(Debug, Clone)]
pub enum ProbeKind {
    Tcp(Connection),
    Http(Connection, HttpProbe),
    Ssl(Connection, HttpProbe),
    Misc(MiscProbe),
    Dns(Connection, DnsProbe),
    /// The SMTP_CHECK's own server, then one per deprecated `host { }` block.
    Smtp(Vec<Connection>, SmtpProbe),
    Udp(Connection, UdpProbe),
    /// The connection's port is unused.
    Ping(Connection),
}

/// One checker, ready to run.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `TCP_CHECK at file:line`, for logs.
    pub name: String,
    pub kind: ProbeKind,
    pub timing: Timing,
    pub alpha: bool,
}

impl Probe {
    /// What it does, without where it was written (`name` holds the line).
    pub fn definition(&self) -> String {
        format!("{:?} {:?} alpha={}", self.kind, self.timing, self.alpha)
    }

    /// Resolves checker `index` of `real`. Err: why the checker cannot run (not implemented,
    /// no port to connect to, refused by `enable_script_security`).
    pub fn from_config(
        virtual_server: &VirtualServer,
        real: &RealServer,
        checker: &Checker,
        script_security: bool,
    ) -> Result<Probe, String> {
        let (common, name, at) = match checker {
            Checker::TcpCheck(c) => (&c.common, "TCP_CHECK", &c.at),
            Checker::HttpGet(c) => (&c.common, "HTTP_GET", &c.at),
            Checker::SslGet(c) => (&c.common, "SSL_GET", &c.at),
            Checker::MiscCheck(c) => (&c.common, "MISC_CHECK", &c.at),
            Checker::DnsCheck(c) => (&c.common, "DNS_CHECK", &c.at),
            Checker::SmtpCheck(c) => (&c.common, "SMTP_CHECK", &c.at),
            Checker::UdpCheck(c) => (&c.common, "UDP_CHECK", &c.at),
            Checker::PingCheck(c) => (&c.common, "PING_CHECK", &c.at),
            Checker::FileCheck(k) | Checker::BfdCheck(k) => {
                return Err(format!("{k:?} is not implemented"));
            }
        };
        let name = format!("{name} at {at}");
        let timing = inherit::timing(virtual_server, real, checker);
        let alpha = inherit::alpha(virtual_server, real, checker);
        let default_port = inherit::default_port(checker);
        let connect = |common: &CheckerCommon| {
            inherit::connection(virtual_server, real, common, default_port).map_err(|e| format!("{name}: {e}"))
        };
        let kind = match checker {
            Checker::TcpCheck(_) => ProbeKind::Tcp(connect(common)?),
            Checker::HttpGet(c) | Checker::SslGet(c) => {
                let connection = connect(common)?;
                let http = http_probe(virtual_server, real, c);
                if matches!(checker, Checker::SslGet(_)) {
                    ProbeKind::Ssl(connection, http)
                } else {
                    ProbeKind::Http(connection, http)
                }
            }
            Checker::MiscCheck(c) => {
                let argv = script::argv(&c.misc_path);
                if script_security && let Some(program) = argv.first() {
                    script::check_security(Path::new(program))
                        .map_err(|e| format!("{name}: {e:#}"))?;
                }
                let timeout = inherit::misc_timeout(c, &timing);
                let run_as = match &c.user {
                    Some(user) => Some(script::RunAs::resolve(user).map_err(|e| format!("{name}: {e}"))?),
                    None => None,
                };
                ProbeKind::Misc(MiscProbe {
                    argv,
                    timeout,
                    dynamic: c.misc_dynamic,
                    run_as,
                })
            }
            Checker::DnsCheck(c) => {
                let dns = DnsProbe {
                    query_type: c.dns_type,
                    name: c.name.clone(),
                };
                super::dns::encode_query(0, &dns.name, dns.query_type)
                    .map_err(|e| format!("{name}: {e}"))?;
                ProbeKind::Dns(connect(common)?, dns)
            }
            Checker::SmtpCheck(c) => {
                let servers = inherit::smtp_servers(c)
                    .iter()
                    .map(connect)
                    .collect::<Result<_, _>>()?;
                let helo_name = c.helo_name.as_deref().unwrap_or(DEFAULT_HELO_NAME);
                ProbeKind::Smtp(
                    servers,
                    SmtpProbe {
                        helo_name: helo_name.into(),
                    },
                )
            }
            Checker::UdpCheck(c) => ProbeKind::Udp(
                connect(common)?,
                udp_probe(c).map_err(|e| format!("{name}: {e}"))?,
            ),
            Checker::PingCheck(_) => ProbeKind::Ping(connect(common)?),
            Checker::FileCheck(_) | Checker::BfdCheck(_) => unreachable!("returned above"),
        };
        Ok(Probe {
            name,
            kind,
            timing,
            alpha,
        })
    }

    /// Runs the probe once.
    pub async fn run(&self) -> Outcome {
        match &self.kind {
            ProbeKind::Tcp(connection) => match connect(connection).await {
                Ok(_) => Outcome::Up,
                Err(reason) => Outcome::Down { reason },
            },
            ProbeKind::Http(connection, http) => http.run(connection, false).await,
            ProbeKind::Ssl(connection, http) => http.run(connection, true).await,
            ProbeKind::Misc(misc) => misc.run().await,
            ProbeKind::Dns(connection, dns) => dns.run(connection).await,
            ProbeKind::Smtp(servers, smtp) => smtp.run(servers).await,
            ProbeKind::Udp(connection, udp) => udp.run(connection).await,
            ProbeKind::Ping(connection) => ping(connection).await,
        }
    }
}

fn udp_probe(check: &UdpCheck) -> Result<UdpProbe, String> {
    Ok(UdpProbe {
        payload: check
            .payload
            .as_deref()
            .map(|hex| parse_hex(hex, false).map(|(data, _)| data))
            .transpose()?,
        require_reply: check.require_reply,
        reply: check
            .reply_data
            .as_deref()
            .map(ReplyPattern::parse)
            .transpose()?,
        min_reply_length: check.min_reply_length,
        max_reply_length: check.max_reply_length,
    })
}

fn http_probe(virtual_server: &VirtualServer, real: &RealServer, check: &HttpCheck) -> HttpProbe {
    let urls = check
        .urls
        .iter()
        .map(|url| UrlProbe {
            path: url.path.clone(),
            host: inherit::url_host(virtual_server, real, check, url),
            digest: url.digest.as_ref().map(|d| d.to_ascii_lowercase()),
            status_code: inherit::status_codes(url),
        })
        .collect();
    HttpProbe {
        urls,
        protocol: check.http_protocol,
        enable_sni: check.enable_sni,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        net::{IpAddr, SocketAddr},
        time::Duration,
    };

    use super::*;
    use crate::check::connection::tests::local;

    fn tcp(connection: Connection) -> Probe {
        let timing = Timing {
            delay_loop: Duration::from_secs(1),
            delay_before_retry: Duration::from_secs(1),
            retry: 0,
            warmup: Duration::ZERO,
        };
        Probe {
            name: "TCP_CHECK".into(),
            kind: ProbeKind::Tcp(connection),
            timing,
            alpha: false,
        }
    }

    fn parse(text: &str) -> Vec<VirtualServer> {
        let loaded =
            crate::config::load_str(Path::new("keepalived.conf"), text, &Default::default());
        loaded
            .runnable()
            .expect("a runnable config")
            .virtual_servers
            .clone()
    }

    #[test]
    fn settings_inherit_from_real_server_then_virtual_server_then_keepalived_defaults() {
        let servers = parse(
            "virtual_server 10.0.0.1 80 {\n delay_loop 20\n protocol TCP\n connect_timeout 7\n virtualhost vs.example\n\
             real_server 10.0.0.2 8080 {\n retry 4\n\
               HTTP_GET {\n url {\n path /a\n }\n url {\n path /b\n virtualhost url.example\n status_code 200 301-302\n }\n }\n\
               TCP_CHECK {\n connect_port 9000\n alpha\n delay_before_retry 2\n }\n\
               MISC_CHECK {\n misc_path \"/bin/sh -c 'exit 0'\"\n misc_dynamic\n }\n }\n}\n",
        );
        let probes = first_real_servers_probes(&servers);

        let http = &probes[0];
        assert_eq!(
            http.timing,
            Timing {
                delay_loop: Duration::from_secs(20),
                delay_before_retry: Duration::from_secs(3),
                retry: 4,
                warmup: Duration::from_secs(20)
            }
        );
        assert!(!http.alpha);
        let ProbeKind::Http(connection, get) = &http.kind else {
            panic!("{:?}", http.kind)
        };
        assert_eq!(connection.connect, SocketAddr::from(([10, 0, 0, 2], 8080)));
        assert_eq!(connection.connect_timeout, Duration::from_secs(7));
        assert_eq!(
            get.urls[0].host.as_deref(),
            Some("vs.example"),
            "the virtual server's virtualhost"
        );
        assert_eq!(get.urls[0].status_code, [(200, 299)]);
        assert_eq!(get.urls[1].host.as_deref(), Some("url.example"));
        assert_eq!(get.urls[1].status_code, [(200, 200), (301, 302)]);

        let tcp = &probes[1];
        assert!(tcp.alpha);
        assert_eq!(tcp.timing.delay_before_retry, Duration::from_secs(2));
        let ProbeKind::Tcp(connection) = &tcp.kind else {
            panic!("{:?}", tcp.kind)
        };
        assert_eq!(connection.connect, SocketAddr::from(([10, 0, 0, 2], 9000)));

        let ProbeKind::Misc(misc) = &probes[2].kind else {
            panic!("{:?}", probes[2].kind)
        };
        assert_eq!(misc.argv, ["/bin/sh", "-c", "exit 0"]);
        assert_eq!(
            misc.timeout,
            Duration::from_secs(20),
            "misc_timeout defaults to delay_loop"
        );
        assert!(misc.dynamic);
    }

    #[test]
    fn dns_smtp_udp_and_ping_checks_resolve_with_keepalived_defaults() {
        let servers = parse(
            "virtual_server fwmark 1 {\n delay_loop 30\n\
             real_server 10.0.0.2 {\n\
               DNS_CHECK {\n type A\n name example.com\n }\n\
               SMTP_CHECK {\n connect_timeout 4\n host {\n connect_ip 10.0.0.9\n connect_port 2525\n }\n }\n\
               UDP_CHECK {\n connect_port 5000\n payload 0a bc\n require_reply 0x ff\n min_reply_length 2\n }\n\
               PING_CHECK {\n bindto 10.0.0.1\n }\n }\n}\n",
        );
        let probes = first_real_servers_probes(&servers);

        let dns = &probes[0];
        assert_eq!(dns.timing.retry, 3, "DNS_CHECK retries 3 times");
        assert_eq!(
            dns.timing.delay_before_retry,
            Duration::from_secs(30),
            "DNS_CHECK's delay_before_retry is delay_loop"
        );
        let ProbeKind::Dns(connection, query) = &dns.kind else {
            panic!("{:?}", dns.kind)
        };
        assert_eq!(connection.connect, SocketAddr::from(([10, 0, 0, 2], 53)));
        assert_eq!(query.name, "example.com");

        let smtp = &probes[1];
        assert_eq!(smtp.timing.retry, 1);
        let ProbeKind::Smtp(servers, dialogue) = &smtp.kind else {
            panic!("{:?}", smtp.kind)
        };
        assert_eq!(dialogue.helo_name, "smtpchecker.keepalived.org");
        let targets: Vec<_> = servers
            .iter()
            .map(|s| (s.connect, s.connect_timeout))
            .collect();
        assert_eq!(
            targets,
            [
                (
                    SocketAddr::from(([10, 0, 0, 2], 25)),
                    Duration::from_secs(4)
                ),
                (
                    SocketAddr::from(([10, 0, 0, 9], 2525)),
                    Duration::from_secs(4)
                ),
            ],
            "the checker's own server, then the host block inheriting connect_timeout"
        );

        let ProbeKind::Udp(connection, udp) = &probes[2].kind else {
            panic!("{:?}", probes[2].kind)
        };
        assert_eq!(connection.connect, SocketAddr::from(([10, 0, 0, 2], 5000)));
        assert_eq!(udp.payload.as_deref(), Some(&[0x0a, 0xbc][..]));
        assert!(udp.require_reply);
        let pattern = udp.reply.as_ref().unwrap();
        assert_eq!(
            (&pattern.data[..], &pattern.wildcard[..]),
            (&[0x00, 0xff][..], &[0x0f, 0x00][..])
        );
        assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 255));

        let ProbeKind::Ping(connection) = &probes[3].kind else {
            panic!("{:?}", probes[3].kind)
        };
        assert_eq!(connection.connect.ip(), IpAddr::from([10, 0, 0, 2]));
        assert_eq!(
            connection.bind.map(|b| b.ip()),
            Some(IpAddr::from([10, 0, 0, 1]))
        );
    }

    #[tokio::test]
    async fn tcp_check_is_up_when_something_listens() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(tcp(local(port)).run().await, Outcome::Up);
    }

    #[tokio::test]
    async fn tcp_check_is_down_when_nothing_listens() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let outcome = tcp(local(port)).run().await;
        assert!(
            matches!(&outcome, Outcome::Down { reason } if reason.contains("connect")),
            "{outcome:?}"
        );
    }

    /// Every checker of the first real server of the first virtual server, resolved.
    fn first_real_servers_probes(servers: &[VirtualServer]) -> Vec<Probe> {
        let (server, real) = (&servers[0], &servers[0].real_servers[0]);
        real.checkers.iter().map(|c| Probe::from_config(server, real, c, false).unwrap()).collect()
    }
}
