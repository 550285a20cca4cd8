//! virtual_routes / virtual_rules lines (ip-route / ip-rule grammar, the part keepalived
//! users write), parsed into what netlink needs. Pure: no kernel here.
use std::net::IpAddr;

use serde::Serialize;

/// An address with a prefix length (`10.0.0.0/8`, `fd00::/64`, or a plain address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Prefix {
    pub address: IpAddr,
    pub length: u8,
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let (address, length) = match text.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an address or prefix"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let length = match length {
            None => max,
            Some(length) => length.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("prefix length in `{text}` is not in 0..={max}"))?,
        };
        Ok(Prefix { address, length })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteSpec {
    pub kind: RouteKind,
    /// None: `default`.
    pub destination: Option<Prefix>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    /// `scope link|host|global|N`.
    pub scope: Option<String>,
    pub onlink: bool,
}

fn value<'a>(words: &'a [String], index: usize, option: &str) -> Result<&'a str, String> {
    words.get(index + 1).map(String::as_str).ok_or_else(|| format!("`{option}` needs a value"))
}

fn number(text: &str, option: &str) -> Result<u32, String> {
    match text {
        "main" if option == "table" => Ok(254),
        "local" if option == "table" => Ok(255),
        "default" if option == "table" => Ok(253),
        _ => text.parse().map_err(|_| format!("`{option} {text}`: not a number")),
    }
}

impl RouteSpec {
    pub fn parse(words: &[String]) -> Result<RouteSpec, String> {
        let mut route = RouteSpec {
            kind: RouteKind::Unicast,
            destination: None,
            via: None,
            dev: None,
            src: None,
            table: None,
            metric: None,
            scope: None,
            onlink: false,
        };
        let mut destination_seen = false;
        let mut index = 0;
        while index < words.len() {
            let option = words[index].as_str();
            match option {
                "blackhole" | "unreachable" | "prohibit" if !destination_seen => {
                    route.kind = match option {
                        "blackhole" => RouteKind::Blackhole,
                        "unreachable" => RouteKind::Unreachable,
                        _ => RouteKind::Prohibit,
                    };
                    index += 1;
                    continue;
                }
                "via" | "gw" => route.via = Some(value(words, index, option)?.parse().map_err(|_| format!("`via {}` is not an address", words[index + 1]))?),
                "dev" | "oif" => route.dev = Some(value(words, index, option)?.to_string()),
                // keepalived also takes `src` before the destination.
                "src" => route.src = Some(value(words, index, option)?.parse().map_err(|_| format!("`src {}` is not an address", words[index + 1]))?),
                "table" => route.table = Some(number(value(words, index, option)?, option)?),
                "metric" | "preference" | "priority" => route.metric = Some(number(value(words, index, option)?, option)?),
                "scope" => route.scope = Some(value(words, index, option)?.to_string()),
                "onlink" => {
                    route.onlink = true;
                    index += 1;
                    continue;
                }
                destination if !destination_seen => {
                    destination_seen = true;
                    route.destination = if destination == "default" { None } else { Some(Prefix::parse(destination)?) };
                    index += 1;
                    continue;
                }
                other => return Err(format!("`{other}` is not a route option keepxdp applies (via, dev, src, table, metric, scope, onlink)")),
            }
            index += 2;
        }
        if !destination_seen {
            return Err("a route needs a destination".into());
        }
        let family = route.destination.map(|d| d.address.is_ipv4());
        for address in [route.via, route.src].into_iter().flatten() {
            if family.is_some_and(|v4| v4 != address.is_ipv4()) {
                return Err(format!("{address} is not of the destination's address family"));
            }
        }
        Ok(route)
    }

    /// IPv6 when any address in the route says so.
    pub fn is_ipv6(&self) -> bool {
        self.destination.map(|d| d.address.is_ipv6()).or(self.via.map(|v| v.is_ipv6())).unwrap_or(false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSpec {
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    pub table: Option<u32>,
    pub priority: Option<u32>,
    pub fwmark: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
}

impl RuleSpec {
    pub fn parse(words: &[String]) -> Result<RuleSpec, String> {
        let mut rule = RuleSpec { from: None, to: None, table: None, priority: None, fwmark: None, iif: None, oif: None };
        let mut index = 0;
        while index < words.len() {
            let option = words[index].as_str();
            let text = value(words, index, option)?;
            match option {
                "from" => rule.from = if text == "all" { None } else { Some(Prefix::parse(text)?) },
                "to" => rule.to = if text == "all" { None } else { Some(Prefix::parse(text)?) },
                "table" | "lookup" => rule.table = Some(number(text, "table")?),
                "priority" | "pref" | "preference" => rule.priority = Some(number(text, option)?),
                "fwmark" => {
                    let mark = text.split('/').next().unwrap_or_default();
                    let parsed = match mark.strip_prefix("0x") {
                        Some(hex) => u32::from_str_radix(hex, 16),
                        None => mark.parse(),
                    };
                    rule.fwmark = Some(parsed.map_err(|_| format!("`fwmark {text}`: not a number"))?);
                }
                "iif" => rule.iif = Some(text.to_string()),
                "oif" => rule.oif = Some(text.to_string()),
                other => return Err(format!("`{other}` is not a rule option keepxdp applies (from, to, table, priority, fwmark, iif, oif)")),
            }
            index += 2;
        }
        if rule.table.is_none() {
            return Err("a rule needs a `table`".into());
        }
        Ok(rule)
    }

    pub fn is_ipv6(&self) -> bool {
        self.from.or(self.to).is_some_and(|p| p.address.is_ipv6())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_route_with_the_usual_options() {
        let route = RouteSpec::parse(&words("10.1.0.0/16 via 10.0.0.1 dev eth1 src 10.0.0.10 table 100 metric 5 scope global")).unwrap();
        assert_eq!(route.destination, Some(Prefix { address: "10.1.0.0".parse().unwrap(), length: 16 }));
        assert_eq!(route.via, Some("10.0.0.1".parse().unwrap()));
        assert_eq!((route.dev.as_deref(), route.table, route.metric), (Some("eth1"), Some(100), Some(5)));
        assert_eq!(route.kind, RouteKind::Unicast);
    }

    #[test]
    fn default_blackhole_and_ipv6_routes() {
        assert_eq!(RouteSpec::parse(&words("default via 10.0.0.1")).unwrap().destination, None);
        let blackhole = RouteSpec::parse(&words("blackhole 192.0.2.0/24 table main")).unwrap();
        assert_eq!((blackhole.kind, blackhole.table), (RouteKind::Blackhole, Some(254)));
        assert!(RouteSpec::parse(&words("fd00:1::/64 via fd00::1")).unwrap().is_ipv6());
        let sourced = RouteSpec::parse(&words("src 192.168.100.1 192.168.109.0/24 via 192.168.200.254 dev eth1")).unwrap();
        assert_eq!((sourced.src, sourced.destination.unwrap().length), (Some("192.168.100.1".parse().unwrap()), 24));
    }

    #[test]
    fn bad_routes_say_why() {
        assert_eq!(RouteSpec::parse(&words("10.1.0.0/33 dev e")).unwrap_err(), "prefix length in `10.1.0.0/33` is not in 0..=32");
        assert_eq!(RouteSpec::parse(&words("10.1.0.0/16 via")).unwrap_err(), "`via` needs a value");
        assert!(RouteSpec::parse(&words("10.1.0.0/16 via 1.2.3.4 or 1.2.3.5")).unwrap_err().contains("`or` is not a route option"));
        assert_eq!(RouteSpec::parse(&words("10.1.0.0/16 via fd00::1")).unwrap_err(), "fd00::1 is not of the destination's address family");
    }

    #[test]
    fn rules() {
        let rule = RuleSpec::parse(&words("from 10.0.0.10/32 table 100 priority 50 fwmark 0x10")).unwrap();
        assert_eq!((rule.table, rule.priority, rule.fwmark), (Some(100), Some(50), Some(16)));
        assert_eq!(rule.from.unwrap().length, 32);
        assert_eq!(RuleSpec::parse(&words("from all to 10.2.0.0/16")).unwrap_err(), "a rule needs a `table`");
    }
}
