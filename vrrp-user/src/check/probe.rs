//! The settings one checker probes with, resolved from the config (checker, then real
//! server, then virtual server, then keepalived's defaults), and TCP_CHECK.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use socket2::SockRef;
use tokio::net::{TcpSocket, TcpStream};

use super::{
    http::{HttpProbe, UrlProbe},
    misc::MiscProbe,
    outcome::Outcome,
    retry::Timing,
};
use crate::config::model::{
    Checker, CheckerCommon, HttpCheck, RealServer, VirtualServer, VirtualServerKey,
};
use crate::track::script;

/// Where a checker connects from and to.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub connect: SocketAddr,
    /// `bindto` / `bind_port`.
    pub bind: Option<SocketAddr>,
    /// `bind_if`.
    pub bind_if: Option<String>,
    /// SO_MARK.
    pub fwmark: Option<u32>,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum ProbeKind {
    Tcp(Connection),
    Http(Connection, HttpProbe),
    Ssl(Connection, HttpProbe),
    Misc(MiscProbe),
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
            Checker::DnsCheck(c) => {
                return Err(format!("DNS_CHECK at {} is not implemented", c.at));
            }
            Checker::SmtpCheck(c) => {
                return Err(format!("SMTP_CHECK at {} is not implemented", c.at));
            }
            Checker::UdpCheck(c) => {
                return Err(format!("UDP_CHECK at {} is not implemented", c.at));
            }
            Checker::PingCheck(c) => {
                return Err(format!("PING_CHECK at {} is not implemented", c.at));
            }
            Checker::FileCheck(k) | Checker::BfdCheck(k) => {
                return Err(format!("{k:?} is not implemented"));
            }
        };
        let name = format!("{name} at {at}");
        let is_http = matches!(checker, Checker::HttpGet(_) | Checker::SslGet(_));
        let is_misc = matches!(checker, Checker::MiscCheck(_));
        let delay_loop = common
            .delay_loop
            .or(real.delay_loop)
            .unwrap_or(virtual_server.delay_loop);
        let timing = Timing {
            delay_loop: seconds(delay_loop),
            delay_before_retry: seconds(
                common
                    .delay_before_retry
                    .or(real.delay_before_retry)
                    .or(virtual_server.delay_before_retry)
                    .unwrap_or(if is_http { 3.0 } else { 1.0 }),
            ),
            retry: common
                .retry
                .or(real.retry)
                .or(virtual_server.retry)
                .unwrap_or(if is_misc { 0 } else { 1 }),
            warmup: seconds(
                common
                    .warmup
                    .or(real.warmup)
                    .or(virtual_server.warmup)
                    .unwrap_or(delay_loop),
            ),
        };
        let alpha = common.alpha.or(real.alpha).unwrap_or(virtual_server.alpha);
        let virtualhost = || {
            real.virtualhost
                .clone()
                .or_else(|| virtual_server.virtualhost.clone())
        };
        let kind = match checker {
            Checker::TcpCheck(_) => ProbeKind::Tcp(
                connection(virtual_server, real, common).map_err(|e| format!("{name}: {e}"))?,
            ),
            Checker::HttpGet(c) | Checker::SslGet(c) => {
                let connection =
                    connection(virtual_server, real, common).map_err(|e| format!("{name}: {e}"))?;
                let http = http_probe(c, virtualhost());
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
                let timeout = c
                    .misc_timeout
                    .map_or(timing.delay_loop, |s| Duration::from_secs(s.into()));
                ProbeKind::Misc(MiscProbe {
                    argv,
                    timeout,
                    dynamic: c.misc_dynamic,
                })
            }
            _ => unreachable!("returned above"),
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
        }
    }
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

fn connection(
    virtual_server: &VirtualServer,
    real: &RealServer,
    common: &CheckerCommon,
) -> Result<Connection, String> {
    let virtual_port = match virtual_server.key {
        VirtualServerKey::Address { port, .. } => port,
        _ => None,
    };
    let port = common
        .connect_port
        .or(real.port)
        .or(virtual_port)
        .ok_or("no port to connect to (set connect_port)")?;
    let ip = common.connect_ip.unwrap_or(real.ip);
    let bind = match (common.bindto, common.bind_port) {
        (None, None) => None,
        (bindto, port) => {
            let unspecified = if ip.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            };
            Some(SocketAddr::new(
                bindto.unwrap_or(unspecified),
                port.unwrap_or(0),
            ))
        }
    };
    let connect_timeout = common
        .connect_timeout
        .or(real.connect_timeout)
        .unwrap_or(virtual_server.connect_timeout);
    Ok(Connection {
        connect: SocketAddr::new(ip, port),
        bind,
        bind_if: common.bind_if.clone(),
        fwmark: common.fwmark,
        connect_timeout: seconds(connect_timeout),
    })
}

fn http_probe(check: &HttpCheck, inherited_virtualhost: Option<String>) -> HttpProbe {
    let checker_host = check.virtualhost.clone().or(inherited_virtualhost);
    let urls = check
        .urls
        .iter()
        .map(|url| UrlProbe {
            path: url.path.clone(),
            host: url.virtualhost.clone().or_else(|| checker_host.clone()),
            digest: url.digest.as_ref().map(|d| d.to_ascii_lowercase()),
            status_code: if url.status_code.is_empty() {
                vec![(200, 299)]
            } else {
                url.status_code.clone()
            },
        })
        .collect();
    HttpProbe {
        urls,
        protocol: check.http_protocol,
        enable_sni: check.enable_sni,
    }
}

/// TCP_CHECK's connect (and HTTP's): from `bind`, with SO_MARK and SO_BINDTODEVICE, within
/// `connect_timeout`.
pub async fn connect(connection: &Connection) -> Result<TcpStream, String> {
    let socket = if connection.connect.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let socket = socket.map_err(|e| format!("socket: {e}"))?;
    if let Some(mark) = connection.fwmark {
        SockRef::from(&socket)
            .set_mark(mark)
            .map_err(|e| format!("SO_MARK {mark}: {e}"))?;
    }
    if let Some(interface) = &connection.bind_if {
        SockRef::from(&socket)
            .bind_device(Some(interface.as_bytes()))
            .map_err(|e| format!("bind to device {interface}: {e}"))?;
    }
    if let Some(bind) = connection.bind {
        socket
            .bind(bind)
            .map_err(|e| format!("bind to {bind}: {e}"))?;
    }
    match tokio::time::timeout(
        connection.connect_timeout,
        socket.connect(connection.connect),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect to {}: {e}", connection.connect)),
        Err(_) => Err(format!(
            "connect to {}: timed out after {:?}",
            connection.connect, connection.connect_timeout
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn local(port: u16) -> Connection {
        Connection {
            connect: SocketAddr::from(([127, 0, 0, 1], port)),
            bind: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Duration::from_secs(1),
        }
    }

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
        let (server, real) = (&servers[0], &servers[0].real_servers[0]);
        let probes: Vec<Probe> = real
            .checkers
            .iter()
            .map(|c| Probe::from_config(server, real, c, false).unwrap())
            .collect();

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

    #[tokio::test]
    async fn tcp_check_binds_to_bindto_and_bind_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bind_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let connection = Connection {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], bind_port))),
            ..local(port)
        };
        let stream = connect(&connection).await.unwrap();
        assert_eq!(stream.local_addr().unwrap().port(), bind_port);
    }
}
