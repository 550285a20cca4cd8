//! virtual_routes / virtual_rules through rtnetlink: the seam (`RouteTable`) and its netlink
//! implementation. Routes go in after the addresses they may use as source, and out before.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::{
        route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType},
        rule::RuleMessage,
    },
};

use super::{
    Netlink, RecordingTable,
    route_spec::{RouteKind, RouteSpec, RuleSpec},
};

pub trait RouteTable: Send + Sync {
    /// `ifindex`: the route's `dev`, resolved (or the instance's interface).
    fn add_route(&self, ifindex: u32, route: &RouteSpec) -> impl Future<Output = Result<()>> + Send;
    fn remove_route(&self, ifindex: u32, route: &RouteSpec) -> impl Future<Output = Result<()>> + Send;
    fn add_rule(&self, rule: &RuleSpec) -> impl Future<Output = Result<()>> + Send;
    fn remove_rule(&self, rule: &RuleSpec) -> impl Future<Output = Result<()>> + Send;
}

fn route_message(ifindex: u32, route: &RouteSpec) -> RouteMessage {
    let mut message = if route.is_ipv6() {
        let mut builder = RouteMessageBuilder::<Ipv6Addr>::new();
        if let Some(destination) = route.destination
            && let IpAddr::V6(address) = destination.address {
                builder = builder.destination_prefix(address, destination.length);
            }
        if let Some(IpAddr::V6(source)) = route.src {
            builder = builder.pref_source(source);
        }
        builder.build()
    } else {
        let mut builder = RouteMessageBuilder::<Ipv4Addr>::new();
        if let Some(destination) = route.destination
            && let IpAddr::V4(address) = destination.address {
                builder = builder.destination_prefix(address, destination.length);
            }
        if let Some(IpAddr::V4(source)) = route.src {
            builder = builder.pref_source(source);
        }
        builder.build()
    };
    if let Some(via) = route.via {
        let gateway = match via {
            IpAddr::V4(v4) => RouteAddress::Inet(v4),
            IpAddr::V6(v6) => RouteAddress::Inet6(v6),
        };
        message.attributes.push(RouteAttribute::Gateway(gateway));
    }
    message.header.kind = match route.kind {
        RouteKind::Unicast => {
            // 0: no device given, the kernel finds it from `via`.
            if ifindex != 0 {
                message.attributes.push(RouteAttribute::Oif(ifindex));
            }
            RouteType::Unicast
        }
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    };
    if let Some(table) = route.table {
        if table < 256 {
            message.header.table = table as u8;
        } else {
            message.header.table = 252; // RT_TABLE_COMPAT: the real id is the attribute
        }
        message.attributes.push(RouteAttribute::Table(table));
    }
    if let Some(metric) = route.metric {
        message.attributes.push(RouteAttribute::Priority(metric));
    }
    message.header.scope = match route.scope.as_deref() {
        Some("link") => RouteScope::Link,
        Some("host") => RouteScope::Host,
        Some("nowhere") => RouteScope::NoWhere,
        _ if route.via.is_none() && route.kind == RouteKind::Unicast => RouteScope::Link,
        _ => RouteScope::Universe,
    };
    if route.onlink {
        message.header.flags |= rtnetlink::packet_route::route::RouteFlags::Onlink;
    }
    message
}

impl Netlink {
    fn rule_message(&self, rule: &RuleSpec) -> RuleMessage {
        let request = self.handle.rule().add();
        let request = match rule.table {
            Some(table) => request.table_id(table),
            None => request,
        };
        let request = match rule.priority {
            Some(priority) => request.priority(priority),
            None => request,
        };
        let request = match rule.fwmark {
            Some(mark) => request.fw_mark(mark),
            None => request,
        };
        let request = match &rule.iif {
            Some(iif) => request.input_interface(iif.clone()),
            None => request,
        };
        let request = match &rule.oif {
            Some(oif) => request.output_interface(oif.clone()),
            None => request,
        };
        if rule.is_ipv6() {
            let mut request = request.v6();
            if let Some(from) = rule.from.filter(|p| p.address.is_ipv6())
                && let IpAddr::V6(a) = from.address {
                    request = request.source_prefix(a, from.length);
                }
            if let Some(to) = rule.to.filter(|p| p.address.is_ipv6())
                && let IpAddr::V6(a) = to.address {
                    request = request.destination_prefix(a, to.length);
                }
            request.message_mut().clone()
        } else {
            let mut request = request.v4();
            if let Some(from) = rule.from
                && let IpAddr::V4(a) = from.address {
                    request = request.source_prefix(a, from.length);
                }
            if let Some(to) = rule.to
                && let IpAddr::V4(a) = to.address {
                    request = request.destination_prefix(a, to.length);
                }
            request.message_mut().clone()
        }
    }
}

impl Netlink {
    /// The interface the kernel would send a packet to `destination` out of (`ip route get`),
    /// None when it has no route (or the route is local).
    pub async fn route_interface(&self, destination: IpAddr) -> Result<Option<u32>> {
        use futures_util::TryStreamExt;
        let mut message = match destination {
            IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(v4, 32).build(),
            IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new().destination_prefix(v6, 128).build(),
        };
        // A lookup, not a table entry: no table, protocol or scope of ours.
        message.header.table = 0;
        message.header.protocol = Default::default();
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unspec;
        let mut request = self.handle.route().get(message);
        request.message_mut().attributes.retain(|a| matches!(a, RouteAttribute::Destination(_)));
        let mut replies = request.execute();
        match replies.try_next().await {
            Ok(Some(route)) => Ok(if route.header.kind == RouteType::Local {
                None
            } else {
                route.attributes.iter().find_map(|a| if let RouteAttribute::Oif(index) = a { Some(*index) } else { None })
            }),
            Ok(None) => Ok(None),
            // ENETUNREACH / EHOSTUNREACH: no route.
            Err(rtnetlink::Error::NetlinkError(error))
                if [-libc::ENETUNREACH, -libc::EHOSTUNREACH].contains(&error.raw_code()) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("looking up the route to {destination}")),
        }
    }
}

impl RouteTable for Netlink {
    async fn add_route(&self, ifindex: u32, route: &RouteSpec) -> Result<()> {
        self.handle.route().add(route_message(ifindex, route)).replace().execute().await.with_context(|| format!("adding route {route:?}"))
    }

    async fn remove_route(&self, ifindex: u32, route: &RouteSpec) -> Result<()> {
        match self.handle.route().del(route_message(ifindex, route)).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(error)) if error.raw_code() == -libc::ESRCH => Ok(()),
            Err(error) => Err(error).with_context(|| format!("removing route {route:?}")),
        }
    }

    async fn add_rule(&self, rule: &RuleSpec) -> Result<()> {
        let mut request = self.handle.rule().add();
        *request.message_mut() = self.rule_message(rule);
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(error)) if error.raw_code() == -libc::EEXIST => Ok(()),
            Err(error) => Err(error).with_context(|| format!("adding rule {rule:?}")),
        }
    }

    async fn remove_rule(&self, rule: &RuleSpec) -> Result<()> {
        match self.handle.rule().del(self.rule_message(rule)).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(error)) if error.raw_code() == -libc::ENOENT => Ok(()),
            Err(error) => Err(error).with_context(|| format!("removing rule {rule:?}")),
        }
    }
}

impl RouteTable for RecordingTable {
    async fn add_route(&self, ifindex: u32, route: &RouteSpec) -> Result<()> {
        self.calls.lock().unwrap().push(format!("add route {ifindex} {:?}", route.destination));
        Ok(())
    }
    async fn remove_route(&self, ifindex: u32, route: &RouteSpec) -> Result<()> {
        self.calls.lock().unwrap().push(format!("remove route {ifindex} {:?}", route.destination));
        Ok(())
    }
    async fn add_rule(&self, rule: &RuleSpec) -> Result<()> {
        self.calls.lock().unwrap().push(format!("add rule {:?}", rule.table));
        Ok(())
    }
    async fn remove_rule(&self, rule: &RuleSpec) -> Result<()> {
        self.calls.lock().unwrap().push(format!("remove rule {:?}", rule.table));
        Ok(())
    }
}
