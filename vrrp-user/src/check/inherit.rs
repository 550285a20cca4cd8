//! keepalived's inheritance rules for checker settings: the checker's own value, else its
//! real server's, else its virtual server's, else keepalived 2.2.7's default (which for
//! some settings depends on the checker's kind). Pure: from the config model to the values
//! `probe` builds a runnable checker from.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use super::{connection::Connection, retry::Timing};
use crate::config::model::{
    Checker, CheckerCommon, HttpCheck, MiscCheck, RealServer, SmtpCheck, Url, VirtualServer, VirtualServerKey,
};

/// The options every checker takes; None for the kinds that are not implemented.
pub fn common(checker: &Checker) -> Option<&CheckerCommon> {
    match checker {
        Checker::TcpCheck(c) | Checker::PingCheck(c) => Some(&c.common),
        Checker::HttpGet(c) | Checker::SslGet(c) => Some(&c.common),
        Checker::MiscCheck(c) => Some(&c.common),
        Checker::DnsCheck(c) => Some(&c.common),
        Checker::SmtpCheck(c) => Some(&c.common),
        Checker::UdpCheck(c) => Some(&c.common),
        Checker::FileCheck(_) | Checker::BfdCheck(_) => None,
    }
}

/// `delay_loop`, `delay_before_retry`, `retry` and `warmup`: checker, real server, virtual
/// server (which always has a delay_loop), then keepalived's defaults: delay_before_retry
/// 3 s for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, else 1 s; retry 0 for MISC_CHECK, 3 for
/// DNS_CHECK, else 1; warmup up to delay_loop.
pub fn timing(virtual_server: &VirtualServer, real: &RealServer, checker: &Checker) -> Timing {
    let none = CheckerCommon::default();
    let common = common(checker).unwrap_or(&none);
    let is_http = matches!(checker, Checker::HttpGet(_) | Checker::SslGet(_));
    let is_misc = matches!(checker, Checker::MiscCheck(_));
    let is_dns = matches!(checker, Checker::DnsCheck(_));
    let delay_loop = common.delay_loop.or(real.delay_loop).unwrap_or(virtual_server.delay_loop);
    let delay_before_retry = common
        .delay_before_retry
        .or(real.delay_before_retry)
        .or(virtual_server.delay_before_retry)
        .unwrap_or(if is_http {
            3.0
        } else if is_dns {
            delay_loop
        } else {
            1.0
        });
    let retry = common.retry.or(real.retry).or(virtual_server.retry).unwrap_or(if is_misc {
        0
    } else if is_dns {
        3
    } else {
        1
    });
    let warmup = common.warmup.or(real.warmup).or(virtual_server.warmup).unwrap_or(delay_loop);
    Timing {
        delay_loop: seconds(delay_loop),
        delay_before_retry: seconds(delay_before_retry),
        retry,
        warmup: seconds(warmup),
    }
}

/// `alpha` (start down until the first success): checker, real server, virtual server.
pub fn alpha(virtual_server: &VirtualServer, real: &RealServer, checker: &Checker) -> bool {
    common(checker)
        .and_then(|c| c.alpha)
        .or(real.alpha)
        .unwrap_or(virtual_server.alpha)
}

/// The port a checker of this kind connects to when neither it, the real server nor the
/// virtual server give one: DNS 53, SMTP 25; PING needs none (0).
pub fn default_port(checker: &Checker) -> Option<u16> {
    match checker {
        Checker::DnsCheck(_) => Some(53),
        Checker::SmtpCheck(_) => Some(25),
        Checker::PingCheck(_) => Some(0),
        _ => None,
    }
}

/// Where a checker connects from and to: `connect_ip` else the real server's address;
/// `connect_port` else the real server's port, the virtual server's, `default_port`;
/// `bindto`/`bind_port` (the unspecified address of the target's family when only the port
/// is given); `connect_timeout` from the checker, real server, virtual server.
pub fn connection(
    virtual_server: &VirtualServer,
    real: &RealServer,
    common: &CheckerCommon,
    default_port: Option<u16>,
) -> Result<Connection, String> {
    let virtual_port = match virtual_server.key {
        VirtualServerKey::Address { port, .. } => port,
        _ => None,
    };
    let port = common
        .connect_port
        .or(real.port)
        .or(virtual_port)
        .or(default_port)
        .ok_or("no port to connect to (set connect_port)")?;
    let ip = common.connect_ip.unwrap_or(real.ip);
    let bind = match (common.bindto, common.bind_port) {
        (None, None) => None,
        (bindto, port) => {
            let unspecified = if ip.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
            Some(SocketAddr::new(bindto.unwrap_or(unspecified), port.unwrap_or(0)))
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

/// The servers an SMTP_CHECK talks to: its own, then each `host { }` block's, which
/// inherits the checker's connection options (keepalived makes each host a checker).
pub fn smtp_servers(check: &SmtpCheck) -> Vec<CheckerCommon> {
    let main = &check.common;
    let hosts = check.hosts.iter().map(|host| {
        let own = &host.common;
        CheckerCommon {
            connect_ip: own.connect_ip.or(main.connect_ip),
            connect_port: own.connect_port.or(main.connect_port),
            bindto: own.bindto.or(main.bindto),
            bind_port: own.bind_port.or(main.bind_port),
            bind_if: own.bind_if.clone().or_else(|| main.bind_if.clone()),
            connect_timeout: own.connect_timeout.or(main.connect_timeout),
            fwmark: own.fwmark.or(main.fwmark),
            ..main.clone()
        }
    });
    std::iter::once(main.clone()).chain(hosts).collect()
}

/// An HTTP_GET/SSL_GET url's `Host:`: the url's `virtualhost`, else the checker's, the real
/// server's, the virtual server's; None: the connection's address.
pub fn url_host(virtual_server: &VirtualServer, real: &RealServer, check: &HttpCheck, url: &Url) -> Option<String> {
    url.virtualhost
        .clone()
        .or_else(|| check.virtualhost.clone())
        .or_else(|| real.virtualhost.clone())
        .or_else(|| virtual_server.virtualhost.clone())
}

/// The status codes a url accepts: its `status_code`s, else keepalived's 200-299.
pub fn status_codes(url: &Url) -> Vec<(u16, u16)> {
    if url.status_code.is_empty() { vec![(200, 299)] } else { url.status_code.clone() }
}

/// MISC_CHECK's time limit: `misc_timeout`, else the checker's delay_loop.
pub fn misc_timeout(check: &MiscCheck, timing: &Timing) -> Duration {
    check.misc_timeout.map_or(timing.delay_loop, |s| Duration::from_secs(s.into()))
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Vec<VirtualServer> {
        let loaded = crate::config::load_str(Path::new("keepalived.conf"), text, &Default::default());
        loaded.runnable().expect("a runnable config").virtual_servers.clone()
    }

    /// (virtual server, real server, its checkers) of the first real server.
    fn first(servers: &[VirtualServer]) -> (&VirtualServer, &RealServer, &[Checker]) {
        let real = &servers[0].real_servers[0];
        (&servers[0], real, &real.checkers)
    }

    #[test]
    fn each_setting_comes_from_the_checker_then_the_real_server_then_the_virtual_server() {
        let servers = parse(
            "virtual_server 10.0.0.1 80 {\n delay_loop 20\n retry 5\n delay_before_retry 4\n warmup 9\n connect_timeout 7\n protocol TCP\n\
             real_server 10.0.0.2 8080 {\n retry 4\n delay_loop 10\n alpha\n\
               TCP_CHECK {\n }\n\
               TCP_CHECK {\n retry 2\n delay_loop 3\n delay_before_retry 0.5\n warmup 0\n connect_timeout 1\n }\n }\n}\n",
        );
        let (vs, real, checkers) = first(&servers);
        assert_eq!(
            timing(vs, real, &checkers[0]),
            Timing {
                delay_loop: Duration::from_secs(10),
                delay_before_retry: Duration::from_secs(4),
                retry: 4,
                warmup: Duration::from_secs(9)
            },
            "real server's delay_loop and retry, the virtual server's delay_before_retry and warmup"
        );
        assert_eq!(
            timing(vs, real, &checkers[1]),
            Timing {
                delay_loop: Duration::from_secs(3),
                delay_before_retry: Duration::from_millis(500),
                retry: 2,
                warmup: Duration::ZERO
            }
        );
        assert!(alpha(vs, real, &checkers[0]), "the real server's alpha");
        let connect = |checker: &Checker| connection(vs, real, common(checker).unwrap(), None).unwrap().connect_timeout;
        assert_eq!(connect(&checkers[0]), Duration::from_secs(7), "the virtual server's connect_timeout");
        assert_eq!(connect(&checkers[1]), Duration::from_secs(1));
    }

    #[test]
    fn keepalived_defaults_depend_on_the_checkers_kind() {
        let servers = parse(
            "virtual_server fwmark 1 {\n delay_loop 30\n\
             real_server 10.0.0.2 {\n\
               TCP_CHECK {\n connect_port 1\n }\n HTTP_GET {\n connect_port 1\n url {\n path /\n }\n }\n\
               MISC_CHECK {\n misc_path /bin/true\n }\n DNS_CHECK {\n name example.com\n }\n }\n}\n",
        );
        let (vs, real, checkers) = first(&servers);
        let defaults: Vec<_> = checkers
            .iter()
            .map(|c| {
                let t = timing(vs, real, c);
                (t.retry, t.delay_before_retry.as_secs(), t.warmup.as_secs())
            })
            .collect();
        assert_eq!(defaults, [(1, 1, 30), (1, 3, 30), (0, 1, 30), (3, 30, 30)], "TCP, HTTP, MISC, DNS");
        assert!(!alpha(vs, real, &checkers[0]));
        let Checker::MiscCheck(misc) = &checkers[2] else { panic!("{:?}", checkers[2]) };
        assert_eq!(misc_timeout(misc, &timing(vs, real, &checkers[2])), Duration::from_secs(30));
        let ports: Vec<_> = checkers.iter().map(default_port).collect();
        assert_eq!(ports, [None, None, None, Some(53)]);
    }

    #[test]
    fn the_port_comes_from_connect_port_then_the_real_server_then_the_virtual_server() {
        let servers = parse(
            "virtual_server 10.0.0.1 80 {\n protocol TCP\n\
             real_server 10.0.0.2 {\n TCP_CHECK {\n }\n TCP_CHECK {\n connect_ip 10.0.0.3\n connect_port 81\n bind_port 5000\n }\n }\n\
             real_server 10.0.0.4 8080 {\n TCP_CHECK {\n bindto 10.0.0.1\n }\n }\n}\n\
             virtual_server fwmark 2 {\n real_server 10.0.0.5 {\n TCP_CHECK {\n }\n }\n}\n",
        );
        let target = |vs: usize, real: usize, checker: usize, default_port: Option<u16>| {
            let (vs, real) = (&servers[vs], &servers[vs].real_servers[real]);
            connection(vs, real, common(&real.checkers[checker]).unwrap(), default_port).map(|c| (c.connect, c.bind))
        };
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(target(0, 0, 0, None), Ok((at("10.0.0.2:80"), None)), "the virtual server's port");
        assert_eq!(
            target(0, 0, 1, None),
            Ok((at("10.0.0.3:81"), Some(at("0.0.0.0:5000")))),
            "connect_ip and connect_port; bind_port alone binds the unspecified address"
        );
        assert_eq!(target(0, 1, 0, None), Ok((at("10.0.0.4:8080"), Some(at("10.0.0.1:0")))));
        assert!(target(1, 0, 0, None).unwrap_err().contains("no port"), "fwmark: no port anywhere");
        assert_eq!(target(1, 0, 0, Some(53)), Ok((at("10.0.0.5:53"), None)), "the kind's default port");
    }

    #[test]
    fn a_urls_host_comes_from_the_url_then_the_checker_then_the_real_then_the_virtual_server() {
        let servers = parse(
            "virtual_server 10.0.0.1 80 {\n protocol TCP\n virtualhost vs.example\n\
             real_server 10.0.0.2 80 {\n\
               HTTP_GET {\n url {\n path /a\n }\n url {\n path /b\n virtualhost url.example\n status_code 301\n }\n }\n\
               HTTP_GET {\n virtualhost checker.example\n url {\n path /\n }\n }\n }\n\
             real_server 10.0.0.3 80 {\n virtualhost rs.example\n HTTP_GET {\n url {\n path /\n }\n }\n }\n}\n",
        );
        let hosts: Vec<Vec<Option<String>>> = servers[0]
            .real_servers
            .iter()
            .flat_map(|real| real.checkers.iter().map(move |c| (real, c)))
            .map(|(real, checker)| {
                let Checker::HttpGet(http) = checker else { panic!("{checker:?}") };
                http.urls.iter().map(|url| url_host(&servers[0], real, http, url)).collect()
            })
            .collect();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            hosts,
            [vec![some("vs.example"), some("url.example")], vec![some("checker.example")], vec![some("rs.example")]]
        );
        let Checker::HttpGet(http) = &servers[0].real_servers[0].checkers[0] else { unreachable!() };
        assert_eq!(status_codes(&http.urls[0]), [(200, 299)]);
        assert_eq!(status_codes(&http.urls[1]), [(301, 301)]);
    }
}
