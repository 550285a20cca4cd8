//! Between sync entries and this node's flow tables, pure: a synced connection becomes the
//! map entries the balancer would have written had it seen the flow's first packet (with
//! this node's service and real server indexes), and the tables' entries become connections
//! for a dump. `Fill` keeps count of the table so a full one refuses instead of evicting.
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use vrrp_common::{
    guard::{FAMILY_IPV4, FAMILY_IPV6},
    lvs::{FLOW_NAT_FORWARD, FLOW_PERSISTENCE, Flow, FlowKey, NAT_ROUTE_BY_FIB, NatReverse, SyncRecord, addr_words},
};

use super::wire::{Conn, Forward, TCP_ESTABLISHED};
use crate::{
    config::model::LbKind,
    lvs::{ServiceView, reverse::bytes},
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ServiceEntry {
    index: u32,
    forward: Option<Forward>,
    /// Real server address:port → backend index.
    backends: BTreeMap<SocketAddr, u32>,
}

/// This node's services and real servers by address, and backends by index (rebuilt when
/// the configuration is applied; health changes keep indexes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    services: BTreeMap<(u8, SocketAddr), ServiceEntry>,
    /// Backend index → (protocol, VIP:port, real server address:port).
    backends: BTreeMap<u32, (u8, SocketAddr, SocketAddr)>,
}

fn forward_of(kind: LbKind) -> Forward {
    match kind {
        LbKind::Nat => Forward::Nat,
        LbKind::Dr => Forward::Dr,
        LbKind::Tun => Forward::Tun,
    }
}

impl Directory {
    pub fn of(views: &[ServiceView]) -> Directory {
        let mut directory = Directory::default();
        for view in views {
            let protocol = view.key.protocol.number();
            let vip = SocketAddr::new(view.key.addr, view.key.port);
            let mut entry = ServiceEntry { index: view.index, forward: Some(forward_of(view.forwarding)), backends: BTreeMap::new() };
            for backend in &view.backends {
                let real = SocketAddr::new(backend.plan.addr, backend.plan.port);
                entry.backends.insert(real, backend.index);
                directory.backends.insert(backend.index, (protocol, vip, real));
            }
            directory.services.insert((protocol, vip), entry);
        }
        directory
    }

    fn service(&self, protocol: u8, vip: SocketAddr) -> Option<&ServiceEntry> {
        self.services.get(&(protocol, vip))
    }
}

/// One map write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Nat(FlowKey, NatReverse),
    Conntrack(FlowKey, Flow),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No such service or real server here.
    UnknownService,
    /// Persistence templates, forwarding methods without state here.
    Unsupported,
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { FAMILY_IPV4 } else { FAMILY_IPV6 }
}

fn flow_key(conn: &Conn, flags: u16) -> FlowKey {
    FlowKey {
        src: addr_words(&bytes(conn.client.ip())),
        dst: addr_words(&bytes(conn.virtual_service.ip())),
        src_port: conn.client.port().to_be(),
        dst_port: conn.virtual_service.port().to_be(),
        proto: conn.protocol,
        family: family(conn.client.ip()),
        flags,
    }
}

/// The map entries for one synced connection on this node. NAT: the request's entry (its
/// backend) and the reply's (what to write back, routed by the FIB: the other node's
/// interfaces and MACs mean nothing here). DR/TUN: a conntrack entry pinning the backend
/// (the flow may sit on a ring slot that changed).
pub fn entries_for(conn: &Conn, directory: &Directory) -> Result<Vec<Entry>, Skip> {
    if conn.template {
        return Err(Skip::Unsupported);
    }
    let service = directory.service(conn.protocol, conn.virtual_service).ok_or(Skip::UnknownService)?;
    let backend = *service.backends.get(&conn.destination).ok_or(Skip::UnknownService)?;
    if service.forward != Some(conn.forward) {
        return Err(Skip::UnknownService);
    }
    match conn.forward {
        Forward::Nat => {
            let forward = NatReverse { backend, service: service.index, ..NatReverse::default() };
            let reply_key = FlowKey {
                src: addr_words(&bytes(conn.destination.ip())),
                dst: addr_words(&bytes(conn.client.ip())),
                src_port: conn.destination.port().to_be(),
                dst_port: conn.client.port().to_be(),
                proto: conn.protocol,
                family: family(conn.client.ip()),
                flags: 0,
            };
            let reply = NatReverse {
                vip: bytes(conn.virtual_service.ip()),
                vip_port: conn.virtual_service.port().to_be(),
                family: family(conn.client.ip()),
                flags: NAT_ROUTE_BY_FIB,
                ifindex: 0,
                last_seen: 0,
                client_mac: [0; 6],
                our_mac: [0; 6],
                service: service.index,
                backend,
            };
            Ok(vec![Entry::Nat(flow_key(conn, FLOW_NAT_FORWARD), forward), Entry::Nat(reply_key, reply)])
        }
        Forward::Dr | Forward::Tun => Ok(vec![Entry::Conntrack(flow_key(conn, 0), Flow { backend, last_seen: 0 })]),
    }
}

fn socket(words: &[u32; 4], port: u16, fam: u8) -> SocketAddr {
    let mut raw = [0u8; 16];
    for (chunk, word) in raw.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let ip = if fam == FAMILY_IPV6 {
        IpAddr::from(raw)
    } else {
        IpAddr::from([raw[0], raw[1], raw[2], raw[3]])
    };
    SocketAddr::new(ip, u16::from_be(port))
}

fn protocol_state(protocol: u8) -> u16 {
    if protocol == vrrp_common::lvs::IPPROTO_TCP { TCP_ESTABLISHED } else { 0 }
}

/// A ring record (a new NAT flow) as a connection to send.
pub fn conn_of_record(record: &SyncRecord) -> Conn {
    let mut backend_words = [0u32; 4];
    for (word, chunk) in backend_words.iter_mut().zip(record.backend.chunks_exact(4)) {
        *word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Conn {
        protocol: record.proto,
        client: socket(&record.client, record.client_port, record.family),
        virtual_service: socket(&record.vip, record.vip_port, record.family),
        destination: socket(&backend_words, record.backend_port, record.family),
        forward: Forward::Nat,
        template: false,
        state: protocol_state(record.proto),
        timeout: 0,
    }
}

/// The connections a dump sends: every NAT connection (its request entry) and every
/// conntrack flow of a DR/TUN service, with this node's backend indexes resolved to
/// addresses. Persistence templates and entries naming a backend no service has any more
/// are left out.
pub fn dump_conns(
    nat: impl IntoIterator<Item = (FlowKey, NatReverse)>,
    conntrack: impl IntoIterator<Item = (FlowKey, Flow)>,
    directory: &Directory,
) -> Vec<Conn> {
    let nat = nat.into_iter().filter(|(k, _)| k.flags == FLOW_NAT_FORWARD).map(|(k, v)| (k, v.backend));
    let conntrack = conntrack.into_iter().filter(|(k, _)| k.flags & FLOW_PERSISTENCE == 0).map(|(k, v)| (k, v.backend));
    nat.chain(conntrack)
        .filter_map(|(key, backend)| {
            let (protocol, vip, real) = directory.backends.get(&backend)?;
            let client = socket(&key.src, key.src_port, key.family);
            let virtual_service = socket(&key.dst, key.dst_port, key.family);
            if *protocol != key.proto || *vip != virtual_service {
                return None;
            }
            let forward = directory.service(*protocol, *vip)?.forward?;
            Some(Conn {
                protocol: key.proto,
                client,
                virtual_service,
                destination: *real,
                forward,
                template: false,
                state: protocol_state(key.proto),
                timeout: 0,
            })
        })
        .collect()
}

/// How full a flow table is, as far as this node knows: counted when the sync daemon starts
/// and whenever the node stops being Master (the only times others write it), then kept up
/// to date with the new keys the sync daemon writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub capacity: u64,
    pub used: u64,
}

impl Fill {
    /// May `n` more new keys go in?
    pub fn has_room_for(&self, n: u64) -> bool {
        self.used + n <= self.capacity
    }

    pub fn add(&mut self) {
        self.used += 1;
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::lvs::{
        ServiceKey,
        plan::{BackendPlan, ProtocolKey},
        tables::InstalledBackend,
    };
    use vrrp_common::lvs::IPPROTO_TCP;

    fn view(vip: &str, port: u16, index: u32, kind: LbKind, reals: &[(&str, u16, u32)]) -> ServiceView {
        ServiceView {
            key: ServiceKey { addr: vip.parse().unwrap(), port, protocol: ProtocolKey::Tcp },
            name: format!("{vip} {port}"),
            index,
            forwarding: kind,
            scheduler: "wrr".into(),
            persistence: None,
            backends: reals
                .iter()
                .map(|(addr, port, index)| InstalledBackend {
                    plan: BackendPlan {
                        name: format!("{addr}:{port}"),
                        addr: addr.parse().unwrap(),
                        port: *port,
                        weight: 1,
                        starts_down: false,
                        inhibit_on_failure: false,
                    },
                    index: *index,
                    up: true,
                    dynamic_weight: None,
                    drained: false,
                    checkers: Vec::new(),
                })
                .collect(),
            sorry_backend: None,
            quorum: 1,
            hysteresis: 0,
            up_weight: 1,
            quorum_up: true,
            sorry_in_use: false,
        }
    }

    /// Two NAT services sharing real server 10.1.0.11:5001 (the case stateless reverse NAT
    /// cannot translate), and a DR service.
    pub fn directory() -> Directory {
        Directory::of(&[
            view("10.0.0.100", 5001, 0, LbKind::Nat, &[("10.1.0.11", 5001, 0), ("10.1.0.12", 5001, 1)]),
            view("10.0.0.100", 5002, 1, LbKind::Nat, &[("10.1.0.11", 5001, 2)]),
            view("10.0.0.200", 80, 2, LbKind::Dr, &[("10.0.0.21", 80, 3)]),
        ])
    }

    /// A NAT connection from 10.0.0.1:`cport` to 10.0.0.100:`vport` given 10.1.0.11:5001.
    pub fn nat(cport: u16, vport: u16) -> Conn {
        Conn {
            protocol: IPPROTO_TCP,
            client: SocketAddr::new("10.0.0.1".parse().unwrap(), cport),
            virtual_service: SocketAddr::new("10.0.0.100".parse().unwrap(), vport),
            destination: "10.1.0.11:5001".parse().unwrap(),
            forward: Forward::Nat,
            template: false,
            state: TCP_ESTABLISHED,
            timeout: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tests_support::directory, *};
    use vrrp_common::lvs::IPPROTO_TCP;

    fn nat(vport: u16) -> Conn {
        super::tests_support::nat(40000, vport)
    }

    #[test]
    fn a_nat_connection_becomes_its_request_entry_and_a_fib_routed_reply_entry_with_local_indexes() {
        let entries = entries_for(&nat(5002), &directory()).unwrap();
        let [Entry::Nat(forward_key, forward), Entry::Nat(reply_key, reply)] = entries[..] else { panic!("{entries:?}") };
        assert_eq!(forward_key.flags, FLOW_NAT_FORWARD);
        assert_eq!(forward_key.dst_port, 5002u16.to_be());
        assert_eq!((forward.backend, forward.service), (2, 1), "the second service's own backend entry");
        assert_eq!(reply_key.src, addr_words(&bytes("10.1.0.11".parse().unwrap())));
        assert_eq!((reply_key.src_port, reply_key.dst_port, reply_key.flags), (5001u16.to_be(), 40000u16.to_be(), 0));
        assert_eq!(reply.flags, NAT_ROUTE_BY_FIB);
        assert_eq!(reply.ifindex, 0);
        assert_eq!((&reply.vip[..4], u16::from_be(reply.vip_port)), (&[10, 0, 0, 100][..], 5002));
    }

    #[test]
    fn a_dr_connection_becomes_a_conntrack_entry() {
        let conn = Conn {
            virtual_service: "10.0.0.200:80".parse().unwrap(),
            destination: "10.0.0.21:80".parse().unwrap(),
            forward: Forward::Dr,
            ..nat(80)
        };
        assert_eq!(entries_for(&conn, &directory()).unwrap(), [Entry::Conntrack(flow_key(&conn, 0), Flow { backend: 3, last_seen: 0 })]);
    }

    #[test]
    fn unknown_services_real_servers_methods_and_templates_are_skipped() {
        let d = directory();
        assert_eq!(entries_for(&nat(9999), &d), Err(Skip::UnknownService));
        assert_eq!(entries_for(&Conn { destination: "10.1.0.99:5001".parse().unwrap(), ..nat(5001) }, &d), Err(Skip::UnknownService));
        assert_eq!(entries_for(&Conn { forward: Forward::Dr, ..nat(5001) }, &d), Err(Skip::UnknownService));
        assert_eq!(entries_for(&Conn { template: true, ..nat(5001) }, &d), Err(Skip::Unsupported));
    }

    #[test]
    fn a_dump_turns_the_tables_back_into_the_connections_that_made_them() {
        let d = directory();
        let conn = nat(5002);
        let dr = Conn { virtual_service: "10.0.0.200:80".parse().unwrap(), destination: "10.0.0.21:80".parse().unwrap(), forward: Forward::Dr, ..nat(80) };
        let mut nat_table = Vec::new();
        for entry in entries_for(&conn, &d).unwrap() {
            let Entry::Nat(k, v) = entry else { panic!() };
            nat_table.push((k, v));
        }
        // A persistence template and an entry naming a backend that is gone: not dumped.
        nat_table.push((flow_key(&conn, FLOW_NAT_FORWARD | FLOW_PERSISTENCE), NatReverse { backend: 2, ..NatReverse::default() }));
        nat_table.push((flow_key(&nat(5001), FLOW_NAT_FORWARD), NatReverse { backend: 77, ..NatReverse::default() }));
        let conntrack = vec![(flow_key(&dr, 0), Flow { backend: 3, last_seen: 0 })];
        assert_eq!(dump_conns(nat_table, conntrack, &d), [conn, dr]);
    }

    #[test]
    fn a_ring_record_reads_as_the_connection_it_reports() {
        let record = SyncRecord {
            client: addr_words(&bytes("10.0.0.1".parse().unwrap())),
            vip: addr_words(&bytes("10.0.0.100".parse().unwrap())),
            backend: bytes("10.1.0.11".parse().unwrap()),
            client_port: 40000u16.to_be(),
            vip_port: 5002u16.to_be(),
            backend_port: 5001u16.to_be(),
            proto: IPPROTO_TCP,
            family: FAMILY_IPV4,
        };
        assert_eq!(conn_of_record(&record), nat(5002));
        let v6 = SyncRecord {
            client: addr_words(&bytes("fd00::1".parse().unwrap())),
            vip: addr_words(&bytes("fd00::100".parse().unwrap())),
            backend: bytes("fd00:1::11".parse().unwrap()),
            family: FAMILY_IPV6,
            ..record
        };
        let conn = conn_of_record(&v6);
        assert_eq!(conn.client, "[fd00::1]:40000".parse().unwrap());
        assert_eq!(conn.destination, "[fd00:1::11]:5001".parse().unwrap());
    }

    #[test]
    fn a_full_table_has_no_room() {
        let mut fill = Fill { capacity: 3, used: 1 };
        assert!(fill.has_room_for(2));
        fill.add();
        assert!(fill.has_room_for(1) && !fill.has_room_for(2));
    }
}
