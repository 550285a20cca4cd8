//! The balancer (`lvs_balancer`), loaded into the kernel and run alone on crafted frames with
//! BPF_PROG_TEST_RUN. The maps are written directly through `LvsMaps`, with rings of 13 slots
//! that each test fills itself, so every test decides which backend every slot names.
//! Each test reads like the behaviour it checks.
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{HashMap, MapData, PerCpuArray};
use keepxdp::bpf::{Dataplane, LoadOptions, LvsLimits, LvsMaps};
use keepxdp_lab::packets::{
    ACK, Headers, L4, PSH, Packet, SYN, check_checksums, check_ipv4_header, check_l4_checksum, write_pcap,
};
use vrrp_common::{
    lvs::{
        BACKEND_ALIVE, BACKEND_RESOLVED, Backend, BackendStats, FWD_DR, FWD_MASK, FWD_NAT, FWD_TUN, Flow, FlowKey,
        IPPROTO_TCP, IPPROTO_UDP, LvsConfig, LvsReason, NO_BACKEND, SERVICE_PERSISTENT, SERVICE_SLOTS, Service,
        ServiceStats, ring_slot, service_slot_hash,
    },
    pins::{MAP_LVS_BACKEND_STATS, MAP_LVS_CONNTRACK, MAP_LVS_SERVICE_STATS},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

/// Every service's ring: a small prime, filled slot by slot by the tests.
const RING: u32 = 13;
/// The client's frames: from its router's MAC to ours (what `Packet` crafts by default).
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x01];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Our MAC on the backends' side.
const LB_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0x01];
const TUN_SRC4: [u8; 4] = [192, 168, 1, 1];
const TUN_SRC6: &str = "fd00:1::1";

/// Backend `index`'s MAC: its last byte is the index, so a frame's destination MAC says
/// which backend it was sent to.
fn backend_mac(index: u32) -> [u8; 6] {
    [0x02, 0xbe, 0, 0, (index >> 8) as u8, index as u8]
}

/// Which backend a forwarded frame went to (by its destination MAC).
fn sent_to(out: &[u8]) -> u32 {
    assert_eq!(&out[..4], &[0x02, 0xbe, 0, 0], "not sent to a backend: {:02x?}", &out[..6]);
    u32::from(out[4]) << 8 | u32::from(out[5])
}

fn addr16(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { vrrp_common::guard::FAMILY_IPV4 } else { vrrp_common::guard::FAMILY_IPV6 }
}

/// `frame` with its Ethernet addresses replaced: what DR sends.
fn with_macs(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out
}

/// The balancer alone, with its maps written by the test.
struct Lvs {
    dataplane: Dataplane,
    config: LvsConfig,
    used_slots: Vec<u32>,
}

impl Lvs {
    fn new() -> Result<Lvs> {
        Lvs::with_tables(1024, 1024)
    }

    /// With flow tables of these sizes (conntrack, NAT).
    fn with_tables(conntrack_entries: u32, nat_entries: u32) -> Result<Lvs> {
        keepxdp_lab::require_root()?;
        pin_to_one_cpu()?;
        let limits = LvsLimits { max_services: 8, maglev_size: RING, conntrack_entries, nat_entries };
        let mut dataplane = Dataplane::load_with(&LoadOptions { limits, state_pin_dir: None })?;
        let config = LvsConfig {
            nat_services: 0,
            tun_src4: TUN_SRC4,
            tun_src6: addr16(TUN_SRC6.parse()?),
            sync: 0,
        };
        dataplane.put_config(&config)?;
        Ok(Lvs { dataplane, config, used_slots: Vec::new() })
    }

    /// Service `index` on `vip` (ip:port): Master, its ring all NO_BACKEND, no sorry server.
    fn service(&mut self, index: u32, vip: &str, proto: u8, flags: u32) -> Result<Service> {
        let vip: SocketAddr = vip.parse()?;
        let addr = addr16(vip.ip());
        let port = vip.port().to_be();
        let mut slot = service_slot_hash(&addr, port, proto, vip.is_ipv6());
        // Open addressing: the next slot when another test service already sits there.
        while self.used_slots.contains(&slot) {
            slot = (slot + 1) % SERVICE_SLOTS;
        }
        self.used_slots.push(slot);
        let service = Service {
            addr,
            port,
            proto,
            family: family(vip.ip()),
            index,
            ring_base: index * RING,
            ring_size: RING,
            vip_index: index,
            flags,
            persistence_seconds: 0,
            sorry_backend: NO_BACKEND,
        };
        self.put_service(&service)?;
        self.dataplane.put_vip_state(index, true)?;
        self.fill_ring(&service, ring_slot(NO_BACKEND, NO_BACKEND))?;
        if flags & FWD_MASK == FWD_NAT {
            self.config.nat_services += 1;
            self.dataplane.put_config(&self.config)?;
        }
        Ok(service)
    }

    /// Rewrites a service in its slot (after changing a field).
    fn put_service(&mut self, service: &Service) -> Result<()> {
        let ipv6 = service.family == vrrp_common::guard::FAMILY_IPV6;
        let mut slot = service_slot_hash(&service.addr, service.port, service.proto, ipv6);
        for _ in 0..vrrp_common::lvs::SERVICE_PROBES {
            if self.used_slots.contains(&slot) {
                // Ours or another test service's: the kernel side tells which by the key.
                let existing = self.dataplane_service(slot)?;
                if existing.family == 0 || (existing.addr, existing.port, existing.proto) == (service.addr, service.port, service.proto) {
                    return self.dataplane.put_service(slot, service);
                }
            }
            slot = (slot + 1) % SERVICE_SLOTS;
        }
        bail!("no slot for service {}", service.index)
    }

    fn dataplane_service(&self, slot: u32) -> Result<Service> {
        let map = self.dataplane.balancer().map(vrrp_common::pins::MAP_LVS_SERVICES).ok_or_else(|| anyhow!("no services map"))?;
        let array: aya::maps::Array<&MapData, Service> = aya::maps::Array::try_from(map)?;
        Ok(array.get(&slot, 0)?)
    }

    /// Backend `index` of `service` at `addr` (ip:port): alive, resolved, out the ingress.
    fn backend(&mut self, service: &Service, index: u32, addr: &str) -> Result<Backend> {
        let addr: SocketAddr = addr.parse()?;
        let backend = Backend {
            addr: addr16(addr.ip()),
            port: addr.port().to_be(),
            family: family(addr.ip()),
            flags: BACKEND_ALIVE | BACKEND_RESOLVED,
            service: service.index,
            weight: 1,
            ifindex: 0,
            mac: backend_mac(index),
            src_mac: LB_MAC,
        };
        self.dataplane.put_backend(index, &backend)?;
        Ok(backend)
    }

    /// Every slot of the service's ring holds `value` (a `ring_slot(current, previous)`).
    fn fill_ring(&mut self, service: &Service, value: u32) -> Result<()> {
        for slot in 0..service.ring_size {
            self.dataplane.put_ring_slot(service.ring_base + slot, value)?;
        }
        Ok(())
    }

    fn run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        self.dataplane.run_balancer(frame)
    }

    /// Runs `packet` and expects it forwarded out the ingress (XDP_TX): the output frame.
    fn transmit(&mut self, packet: &Packet) -> Result<Vec<u8>> {
        let (verdict, out) = self.run(&packet.frame())?;
        if verdict != XDP_TX {
            bail!("{} → {} was not transmitted: verdict {verdict}", packet.src, packet.dst);
        }
        Ok(out)
    }

    /// The backend a packet is sent to (by the output's destination MAC).
    fn backend_for(&mut self, packet: &Packet) -> Result<u32> {
        Ok(sent_to(&self.transmit(packet)?))
    }

    fn service_stats(&self, index: u32) -> Result<ServiceStats> {
        let map = self.dataplane.balancer().map(MAP_LVS_SERVICE_STATS).context("no lvs_svc_stats")?;
        let array: PerCpuArray<&MapData, ServiceStats> = PerCpuArray::try_from(map)?;
        Ok(array.get(&index, 0)?.iter().fold(ServiceStats::default(), |a, b| ServiceStats {
            no_backend: a.no_backend + b.no_backend,
            unresolved: a.unresolved + b.unresolved,
            not_master: a.not_master + b.not_master,
            malformed: a.malformed + b.malformed,
            encap_failed: a.encap_failed + b.encap_failed,
            sorry: a.sorry + b.sorry,
        }))
    }

    fn backend_stats(&self, index: u32) -> Result<BackendStats> {
        let map = self.dataplane.balancer().map(MAP_LVS_BACKEND_STATS).context("no lvs_be_stats")?;
        let array: PerCpuArray<&MapData, BackendStats> = PerCpuArray::try_from(map)?;
        Ok(array.get(&index, 0)?.iter().fold(BackendStats::default(), |a, b| BackendStats {
            packets: a.packets + b.packets,
            bytes: a.bytes + b.bytes,
            new_flows: a.new_flows + b.new_flows,
        }))
    }

    fn drops(&self, reason: LvsReason) -> Result<u64> {
        self.dataplane.balancer_reason_count(reason)
    }

    /// Entries in the conntrack.
    fn conntrack_entries(&self) -> Result<usize> {
        let map = self.dataplane.balancer().map(MAP_LVS_CONNTRACK).context("no lvs_conntrack")?;
        let conntrack: HashMap<&MapData, FlowKey, Flow> = HashMap::try_from(map)?;
        Ok(conntrack.keys().count())
    }
}

/// Counters are per CPU: the test thread stays on one CPU so that what one run
/// counts is what the next read sees on that CPU (BPF_PROG_TEST_RUN runs on the caller's CPU).
fn pin_to_one_cpu() -> Result<()> {
    use nix::{sched::{CpuSet, sched_getaffinity, sched_setaffinity}, unistd::Pid};
    let allowed = sched_getaffinity(Pid::from_raw(0))?;
    let cpu = (0..CpuSet::count()).find(|&cpu| allowed.is_set(cpu).unwrap_or(false)).context("no CPU allowed")?;
    let mut one = CpuSet::new();
    one.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &one)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_ring_slots_written_through_the_memory_map_are_the_slots_the_kernel_reads() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let slots = 8 * RING;
    for index in 0..slots {
        lvs.dataplane.put_ring_slot(index, ring_slot(index, index + 1000))?;
    }
    let map = lvs.dataplane.balancer().map(vrrp_common::pins::MAP_LVS_MAGLEV).context("no lvs_maglev")?;
    let array: aya::maps::Array<&MapData, u32> = aya::maps::Array::try_from(map)?;
    for index in 0..slots {
        assert_eq!(array.get(&index, 0)?, ring_slot(index, index + 1000), "slot {index} as BPF_MAP_LOOKUP_ELEM reads it");
        assert_eq!(lvs.dataplane.ring_slot(index)?, ring_slot(index, index + 1000));
    }
    assert!(lvs.dataplane.put_ring_slot(slots, 0).is_err(), "past the end of the map");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// DR
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_dr_ipv4_syn_to_the_vip_is_sent_back_out_with_only_the_macs_changed() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    let (verdict, out) = lvs.run(&frame)?;
    assert_eq!(verdict, XDP_TX);
    assert_eq!(&out[..6], &backend_mac(1), "destination: the backend's MAC");
    assert_eq!(&out[6..12], &LB_MAC, "source: our MAC toward the backend");
    assert_eq!(out[12..], frame[12..], "the IP packet is untouched");
    assert_eq!(lvs.conntrack_entries()?, 0, "a slot that never changed needs no state");
    Ok(())
}

#[test]
fn bpf_dr_ipv6_syn_to_the_vip_is_sent_back_out_with_only_the_macs_changed() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "[fd00::100]:443", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 2, "[fd00:1::12]:443")?;
    lvs.fill_ring(&service, ring_slot(2, 2))?;
    let frame = Packet::tcp("[fd00::1]:40000", "[fd00::100]:443", SYN).frame();
    let (verdict, out) = lvs.run(&frame)?;
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, with_macs(&frame, backend_mac(2), LB_MAC));
    Ok(())
}

#[test]
fn bpf_dr_udp_is_balanced_like_tcp() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:53", IPPROTO_UDP, FWD_DR)?;
    lvs.backend(&service, 3, "192.168.1.13:53")?;
    lvs.fill_ring(&service, ring_slot(3, 3))?;
    let frame = Packet::udp("10.0.0.1:40000", "10.0.0.100:53").frame();
    let (verdict, out) = lvs.run(&frame)?;
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, with_macs(&frame, backend_mac(3), LB_MAC));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// NAT
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_nat_ipv4_tcp_request_gets_the_backends_address_and_port_with_valid_checksums() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:8080")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let request = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN);
    let out = lvs.transmit(&request)?;
    let headers = Headers::parse(&out)?;
    assert_eq!(headers.endpoints(&out), ("10.0.0.1:40000".parse()?, "192.168.1.11:8080".parse()?));
    check_ipv4_header(&out[14..])?;
    check_l4_checksum(&out[14..])?;
    // Byte for byte what a host would have sent to the backend directly.
    let mut direct = request.clone().macs(backend_mac(1), LB_MAC);
    direct.dst = "192.168.1.11:8080".parse()?;
    assert_eq!(out, direct.frame());
    Ok(())
}

#[test]
fn bpf_nat_ipv4_udp_request_is_rewritten_and_a_datagram_without_checksum_keeps_checksum_0() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:53", IPPROTO_UDP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:5353")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;

    let request = Packet::udp("10.0.0.1:40000", "10.0.0.100:53");
    let out = lvs.transmit(&request)?;
    check_checksums(&out)?;
    let mut direct = request.clone().macs(backend_mac(1), LB_MAC);
    direct.dst = "192.168.1.11:5353".parse()?;
    assert_eq!(out, direct.frame());

    let mut no_checksum = Packet::udp("10.0.0.2:40000", "10.0.0.100:53");
    no_checksum.l4 = L4::Udp { checksum: false };
    let out = lvs.transmit(&no_checksum)?;
    assert_eq!(&out[14 + 20 + 6..14 + 20 + 8], &[0, 0], "no checksum stays no checksum");
    check_ipv4_header(&out[14..])?;
    let mut direct = no_checksum.clone().macs(backend_mac(1), LB_MAC);
    direct.dst = "192.168.1.11:5353".parse()?;
    assert_eq!(out, direct.frame());
    Ok(())
}

#[test]
fn bpf_nat_ipv4_reply_from_the_backend_goes_back_to_the_client_from_the_vip() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:8080")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    lvs.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN))?;

    let reply = Packet::tcp("192.168.1.11:8080", "10.0.0.1:40000", SYN | ACK).macs(LB_MAC, backend_mac(1));
    let (verdict, out) = lvs.run(&reply.frame())?;
    assert_eq!(verdict, XDP_TX);
    let headers = Headers::parse(&out)?;
    assert_eq!(headers.endpoints(&out), ("10.0.0.100:80".parse()?, "10.0.0.1:40000".parse()?));
    assert_eq!((headers.dst_mac, headers.src_mac), (CLIENT_MAC, OUR_MAC), "back the way the request came");
    check_checksums(&out)?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, OUR_MAC);
    from_vip.src = "10.0.0.100:80".parse()?;
    assert_eq!(out, from_vip.frame());
    assert_eq!(lvs.drops(LvsReason::NatReverse)?, 1);

    // The rest of the connection keeps its backend even when the ring moves on.
    lvs.backend(&service, 2, "192.168.1.12:8080")?;
    lvs.fill_ring(&service, ring_slot(2, 2))?;
    let out = lvs.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", ACK))?;
    assert_eq!(Headers::parse(&out)?.endpoints(&out).1, "192.168.1.11:8080".parse()?);
    // A reply for which no request was seen is not ours: to the stack, untouched.
    let stranger = Packet::tcp("192.168.1.11:8080", "10.0.0.9:40000", ACK).frame();
    assert_eq!(lvs.run(&stranger)?, (XDP_PASS, stranger));
    assert_eq!(lvs.drops(LvsReason::NatReverse)?, 1);
    Ok(())
}

#[test]
fn bpf_nat_ipv4_udp_reply_is_translated_back_with_a_valid_checksum() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:53", IPPROTO_UDP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:5353")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    lvs.transmit(&Packet::udp("10.0.0.1:40000", "10.0.0.100:53"))?;
    let reply = Packet::udp("192.168.1.11:5353", "10.0.0.1:40000").macs(LB_MAC, backend_mac(1));
    let out = lvs.transmit(&reply)?;
    check_checksums(&out)?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, OUR_MAC);
    from_vip.src = "10.0.0.100:53".parse()?;
    assert_eq!(out, from_vip.frame());
    Ok(())
}

#[test]
fn bpf_nat_ipv6_request_and_reply_are_translated_with_valid_checksums() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "[fd00::100]:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 4, "[fd00:1::14]:8080")?;
    lvs.fill_ring(&service, ring_slot(4, 4))?;

    let request = Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN);
    let out = lvs.transmit(&request)?;
    check_l4_checksum(&out[14..])?;
    let mut direct = request.clone().macs(backend_mac(4), LB_MAC);
    direct.dst = "[fd00:1::14]:8080".parse()?;
    assert_eq!(out, direct.frame());

    let reply = Packet::tcp("[fd00:1::14]:8080", "[fd00::1]:40000", SYN | ACK).macs(LB_MAC, backend_mac(4));
    let out = lvs.transmit(&reply)?;
    check_l4_checksum(&out[14..])?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, OUR_MAC);
    from_vip.src = "[fd00::100]:80".parse()?;
    assert_eq!(out, from_vip.frame());
    assert_eq!(lvs.drops(LvsReason::NatReverse)?, 1);

    // UDP over IPv6 (whose checksum is mandatory) both ways too.
    let udp = lvs.service(1, "[fd00::100]:53", IPPROTO_UDP, FWD_NAT)?;
    lvs.backend(&udp, 5, "[fd00:1::15]:5353")?;
    lvs.fill_ring(&udp, ring_slot(5, 5))?;
    let out = lvs.transmit(&Packet::udp("[fd00::1]:40001", "[fd00::100]:53"))?;
    check_l4_checksum(&out[14..])?;
    assert_eq!(Headers::parse(&out)?.endpoints(&out).1, "[fd00:1::15]:5353".parse()?);
    let out = lvs.transmit(&Packet::udp("[fd00:1::15]:5353", "[fd00::1]:40001"))?;
    check_l4_checksum(&out[14..])?;
    assert_eq!(Headers::parse(&out)?.endpoints(&out).0, "[fd00::100]:53".parse()?);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TUN
// ---------------------------------------------------------------------------------------

fn tun_ipv4_output(lvs: &mut Lvs) -> Result<(Vec<u8>, Vec<u8>)> {
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_TUN)?;
    lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    let out = lvs.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN))?;
    Ok((frame, out))
}

fn tun_ipv6_output(lvs: &mut Lvs) -> Result<(Vec<u8>, Vec<u8>)> {
    let service = lvs.service(1, "[fd00::100]:80", IPPROTO_TCP, FWD_TUN)?;
    lvs.backend(&service, 2, "[fd00:1::12]:80")?;
    lvs.fill_ring(&service, ring_slot(2, 2))?;
    let packet = Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN);
    Ok((packet.frame(), lvs.transmit(&packet)?))
}

#[test]
fn bpf_tun_ipv4_wraps_the_packet_in_ipip_from_the_tunnel_source_to_the_backend() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let (frame, out) = tun_ipv4_output(&mut lvs)?;
    assert_eq!(out.len(), frame.len() + 20, "one outer IPv4 header more");
    assert_eq!(&out[..6], &backend_mac(1));
    assert_eq!(&out[6..12], &LB_MAC);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let outer = &out[14..34];
    assert_eq!(outer[0], 0x45);
    assert_eq!(outer[9], 4, "protocol IPIP");
    assert_eq!(&outer[12..16], &TUN_SRC4, "source: lvs_config.tun_src4");
    assert_eq!(&outer[16..20], &[192, 168, 1, 11], "destination: the backend");
    assert_eq!(u16::from_be_bytes([outer[2], outer[3]]) as usize, frame.len() - 14 + 20, "total length: inner + 20");
    assert!(outer[8] > 1, "a usable TTL");
    check_ipv4_header(outer)?;
    assert_eq!(out[34..], frame[14..], "the inner packet is unchanged");
    Ok(())
}

#[test]
fn bpf_tun_ipv6_wraps_the_packet_in_ipv6_from_the_tunnel_source_to_the_backend() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let (frame, out) = tun_ipv6_output(&mut lvs)?;
    assert_eq!(out.len(), frame.len() + 40, "one outer IPv6 header more");
    assert_eq!(&out[..6], &backend_mac(2));
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let outer = &out[14..54];
    assert_eq!(outer[0] >> 4, 6);
    assert_eq!(outer[6], 41, "next header: IPv6");
    assert_eq!(u16::from_be_bytes([outer[4], outer[5]]) as usize, frame.len() - 14, "payload length: the inner packet");
    assert_eq!(outer[8..24], addr16(TUN_SRC6.parse()?), "source: lvs_config.tun_src6");
    assert_eq!(outer[24..40], addr16("fd00:1::12".parse()?), "destination: the backend");
    assert_eq!(out[54..], frame[14..], "the inner packet is unchanged");
    Ok(())
}

#[test]
fn bpf_tun_output_is_decoded_by_tshark_as_ip_in_ip_with_the_inner_tcp_ports() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let (_, v4) = tun_ipv4_output(&mut lvs)?;
    let (_, v6) = tun_ipv6_output(&mut lvs)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tun.pcap");
    write_pcap(&path, &[&v4, &v6])?;
    let path = path.to_str().context("temp path")?;
    // tshark is a real peer here: missing, the test fails.
    let decoded = keepxdp_lab::run("tshark", &["-r", path, "-V", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
        .context("decoding the TUN output with tshark (apt install tshark)")?;
    let (first, second) = decoded.split_once("Frame 2:").context("tshark shows two frames")?;
    for needle in [
        "Protocol: IPIP (4)",
        "Src: 192.168.1.1, Dst: 192.168.1.11",
        "Src: 10.0.0.1, Dst: 10.0.0.100",
        "Source Port: 40000",
        "Destination Port: 80",
        "[Header checksum status: Good]",
        "[Checksum Status: Good]",
    ] {
        assert!(first.contains(needle), "tshark's IPIP decode lacks {needle:?}:\n{first}");
    }
    for needle in [
        "Next Header: IPv6 (41)",
        "Src: fd00:1::1, Dst: fd00:1::12",
        "Src: fd00::1, Dst: fd00::100",
        "Source Port: 40000",
        "Destination Port: 80",
        "[Checksum Status: Good]",
    ] {
        assert!(second.contains(needle), "tshark's IPv6-in-IPv6 decode lacks {needle:?}:\n{second}");
    }
    assert!(!decoded.contains("Malformed"), "tshark found a malformed packet:\n{decoded}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Egress
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_a_backend_behind_another_interface_is_redirected_there_and_the_ingress_one_is_tx() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    let mut backend = lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    backend.ifindex = 7;
    lvs.dataplane.put_backend(1, &backend)?;
    let (verdict, out) = lvs.run(&frame)?;
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(out, with_macs(&frame, backend_mac(1), LB_MAC), "rewritten before the redirect");
    // The interface the frame came in on (loopback under BPF_PROG_TEST_RUN): XDP_TX.
    backend.ifindex = keepxdp_tests::TEST_RUN_IFINDEX;
    lvs.dataplane.put_backend(1, &backend)?;
    assert_eq!(lvs.run(&frame)?.0, XDP_TX);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ring changes: second chance and conntrack
// ---------------------------------------------------------------------------------------

const A: u32 = 1;
const B: u32 = 2;
const C: u32 = 3;
const D: u32 = 4;

fn second_chance_lab() -> Result<(Lvs, Service)> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    for (index, addr) in [(A, "192.168.1.1:80"), (B, "192.168.1.2:80"), (C, "192.168.1.3:80"), (D, "192.168.1.4:80")] {
        lvs.backend(&service, index, addr)?;
    }
    Ok((lvs, service))
}

fn client(port: u16, flags: u8) -> Packet {
    Packet::tcp(&format!("10.0.0.1:{port}"), "10.0.0.100:80", flags)
}

#[test]
fn bpf_a_stable_slot_sends_every_packet_to_its_backend_without_state() -> Result<()> {
    let (mut lvs, service) = second_chance_lab()?;
    lvs.fill_ring(&service, ring_slot(A, A))?;
    assert_eq!(lvs.backend_for(&client(40000, SYN))?, A);
    assert_eq!(lvs.backend_for(&client(40000, ACK))?, A);
    assert_eq!(lvs.backend_for(&client(40001, ACK | PSH))?, A);
    assert_eq!(lvs.conntrack_entries()?, 0);
    Ok(())
}

#[test]
fn bpf_after_a_ring_change_old_flows_get_a_second_chance_and_new_ones_the_new_backend() -> Result<()> {
    let (mut lvs, service) = second_chance_lab()?;
    lvs.fill_ring(&service, ring_slot(A, A))?;
    assert_eq!(lvs.backend_for(&client(40000, SYN))?, A, "flow 1 starts on A");

    // The slot moves from A to B.
    lvs.fill_ring(&service, ring_slot(B, A))?;
    assert_eq!(lvs.backend_for(&client(40000, ACK))?, A, "a mid-flow ACK with no state: the previous backend");
    assert_eq!(lvs.backend_for(&client(40001, SYN))?, B, "a SYN: the current backend");
    assert_eq!(lvs.backend_for(&client(40001, ACK))?, B, "its ACK follows the state the SYN wrote, not the second chance");
    assert_eq!(lvs.conntrack_entries()?, 2, "both flows on the changed slot now have state");

    // It moves again, from B to C: flows with state stay where they are.
    lvs.fill_ring(&service, ring_slot(C, B))?;
    assert_eq!(lvs.backend_for(&client(40001, ACK))?, B, "the state keeps the flow on B");
    assert_eq!(lvs.backend_for(&client(40000, ACK))?, A, "and flow 1 on A, still alive");
    assert_eq!(lvs.backend_for(&client(40002, SYN))?, C, "a new connection takes C");
    assert_eq!(lvs.backend_for(&client(40003, ACK))?, B, "an unknown mid-flow ACK: the previous backend, now B");
    Ok(())
}

#[test]
fn bpf_a_previous_backend_that_is_not_alive_gets_no_second_chance() -> Result<()> {
    let (mut lvs, service) = second_chance_lab()?;
    let mut dead = lvs.dataplane.backend(D)?;
    dead.flags &= !BACKEND_ALIVE;
    lvs.dataplane.put_backend(D, &dead)?;
    lvs.fill_ring(&service, ring_slot(C, D))?;
    assert_eq!(lvs.backend_for(&client(40000, ACK))?, C);
    // A flow whose state names a backend that died moves on too.
    lvs.fill_ring(&service, ring_slot(B, A))?;
    assert_eq!(lvs.backend_for(&client(40001, ACK))?, A);
    let mut a = lvs.dataplane.backend(A)?;
    a.flags &= !BACKEND_ALIVE;
    lvs.dataplane.put_backend(A, &a)?;
    assert_eq!(lvs.backend_for(&client(40001, ACK))?, B);
    Ok(())
}

#[test]
fn bpf_udp_on_a_changed_slot_takes_the_current_backend() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:53", IPPROTO_UDP, FWD_DR)?;
    lvs.backend(&service, A, "192.168.1.1:53")?;
    lvs.backend(&service, B, "192.168.1.2:53")?;
    lvs.fill_ring(&service, ring_slot(B, A))?;
    assert_eq!(lvs.backend_for(&Packet::udp("10.0.0.1:40000", "10.0.0.100:53"))?, B);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Master state, empty rings, sorry server, other traffic
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_a_vip_this_node_is_not_master_for_passes_unchanged_and_is_counted() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(3, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    lvs.dataplane.put_vip_state(service.vip_index, false)?;
    let frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    assert_eq!(lvs.run(&frame)?, (XDP_PASS, frame.clone()));
    assert_eq!(lvs.service_stats(3)?.not_master, 1);
    assert_eq!(lvs.backend_stats(1)?.packets, 0);
    lvs.dataplane.put_vip_state(service.vip_index, true)?;
    assert_eq!(lvs.run(&frame)?.0, XDP_TX);
    assert_eq!(lvs.service_stats(3)?.not_master, 1);
    Ok(())
}

#[test]
fn bpf_an_empty_ring_drops_and_counts_no_backend() -> Result<()> {
    let mut lvs = Lvs::new()?;
    lvs.service(2, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    assert_eq!(lvs.run(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame())?.0, XDP_DROP);
    let stats = lvs.service_stats(2)?;
    assert_eq!((stats.no_backend, stats.sorry), (1, 0));
    Ok(())
}

#[test]
fn bpf_an_empty_ring_with_a_sorry_server_forwards_to_it_and_counts_sorry() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let mut service = lvs.service(2, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 9, "192.168.1.99:80")?;
    service.sorry_backend = 9;
    lvs.put_service(&service)?;
    let frame = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    let (verdict, out) = lvs.run(&frame)?;
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, with_macs(&frame, backend_mac(9), LB_MAC));
    let stats = lvs.service_stats(2)?;
    assert_eq!((stats.no_backend, stats.sorry), (0, 1));
    Ok(())
}

#[test]
fn bpf_a_nat_sorry_servers_reply_is_translated_back_to_the_vip() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let mut service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 9, "192.168.1.99:8080")?;
    service.sorry_backend = 9;
    lvs.put_service(&service)?;
    let out = lvs.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN))?;
    assert_eq!(Headers::parse(&out)?.endpoints(&out).1, "192.168.1.99:8080".parse()?);
    let reply = Packet::tcp("192.168.1.99:8080", "10.0.0.1:40000", SYN | ACK).macs(LB_MAC, backend_mac(9));
    let (verdict, out) = lvs.run(&reply.frame())?;
    assert_eq!(verdict, XDP_TX, "the sorry server's reply must not reach the client from its own address");
    let mut from_vip = reply.clone().macs(CLIENT_MAC, OUR_MAC);
    from_vip.src = "10.0.0.100:80".parse()?;
    assert_eq!(out, from_vip.frame());
    Ok(())
}

#[test]
fn bpf_frames_for_no_service_pass_unchanged() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    // A NAT service elsewhere: frames for no service are also looked up as NAT replies.
    lvs.service(1, "10.0.0.200:80", IPPROTO_TCP, FWD_NAT)?;
    for frame in [
        Packet::tcp("10.0.0.1:40000", "10.0.0.101:80", SYN).frame(),
        Packet::tcp("10.0.0.1:40000", "10.0.0.100:81", SYN).frame(),
        Packet::udp("10.0.0.1:40000", "10.0.0.100:80").frame(),
        Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN).frame(),
    ] {
        assert_eq!(lvs.run(&frame)?, (XDP_PASS, frame.clone()));
    }
    // Neither IP nor L4 the balancer knows: ARP, ICMP.
    let mut arp = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(lvs.run(&arp)?, (XDP_PASS, arp.clone()));
    let mut icmp = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame();
    icmp[14 + 9] = 1;
    assert_eq!(lvs.run(&icmp)?, (XDP_PASS, icmp.clone()));
    for reason in LvsReason::ALL {
        assert_eq!(lvs.drops(reason)?, 0, "{} counted", reason.name());
    }
    assert_eq!(lvs.backend_stats(1)?.packets, 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Malformed frames
// ---------------------------------------------------------------------------------------

/// A DR service on 10.0.0.100:80 and [fd00::100]:80 with backend 1: the frames below would
/// be forwarded if they were well formed.
fn malformed_lab() -> Result<Lvs> {
    let mut lvs = Lvs::new()?;
    let v4 = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    let v6 = lvs.service(1, "[fd00::100]:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&v4, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&v4, ring_slot(1, 1))?;
    lvs.fill_ring(&v6, ring_slot(1, 1))?;
    Ok(lvs)
}

fn vip_frame() -> Vec<u8> {
    Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN).frame()
}

/// Recomputes an IPv4 header checksum after a field was changed.
fn fix_ipv4_checksum(frame: &mut [u8]) {
    let header_len = usize::from(frame[14] & 0x0f) * 4;
    frame[24..26].copy_from_slice(&[0, 0]);
    let checksum = keepxdp_lab::checksum::finish(keepxdp_lab::checksum::sum(&frame[14..14 + header_len], 0));
    frame[24..26].copy_from_slice(&checksum.to_be_bytes());
}

fn passes_counted(lvs: &mut Lvs, frame: &[u8], reason: LvsReason) -> Result<()> {
    let before = lvs.drops(reason)?;
    let (verdict, out) = lvs.run(frame)?;
    assert_eq!(verdict, XDP_PASS, "{} frame", reason.name());
    assert_eq!(out, frame, "passed unchanged");
    assert_eq!(lvs.drops(reason)?, before + 1, "counted as {}", reason.name());
    Ok(())
}

#[test]
fn bpf_a_truncated_ipv4_header_passes_counted_truncated() -> Result<()> {
    let mut lvs = malformed_lab()?;
    passes_counted(&mut lvs, &vip_frame()[..14 + 19], LvsReason::Truncated)
}

#[test]
fn bpf_an_ipv4_header_with_options_passes_counted_ip_options() -> Result<()> {
    let mut lvs = malformed_lab()?;
    let mut frame = vip_frame();
    frame.splice(34..34, [1, 1, 1, 0]); // NOP NOP NOP EOL
    frame[14] = 0x46;
    let total = u16::from_be_bytes([frame[16], frame[17]]) + 4;
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut frame);
    check_ipv4_header(&frame[14..])?;
    passes_counted(&mut lvs, &frame, LvsReason::IpOptions)
}

#[test]
fn bpf_ipv4_fragments_pass_counted_fragment() -> Result<()> {
    let mut lvs = malformed_lab()?;
    let mut first = vip_frame();
    first[14 + 6] |= 0x20; // more fragments
    fix_ipv4_checksum(&mut first);
    passes_counted(&mut lvs, &first, LvsReason::Fragment)?;
    let mut later = vip_frame();
    later[14 + 6] = 0;
    later[14 + 7] = 1; // offset 8 bytes
    fix_ipv4_checksum(&mut later);
    passes_counted(&mut lvs, &later, LvsReason::Fragment)?;
    let mut high_offset = vip_frame();
    high_offset[14 + 6] = 0x41; // DF and an offset of 2048 bytes
    fix_ipv4_checksum(&mut high_offset);
    passes_counted(&mut lvs, &high_offset, LvsReason::Fragment)?;
    // DF alone is no fragment: `Packet` sets it, and such frames are forwarded.
    assert_eq!(lvs.run(&vip_frame())?.0, XDP_TX);
    Ok(())
}

#[test]
fn bpf_a_truncated_tcp_header_passes_counted_truncated() -> Result<()> {
    let mut lvs = malformed_lab()?;
    passes_counted(&mut lvs, &vip_frame()[..14 + 20 + 19], LvsReason::Truncated)?;
    let v6 = Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN).frame();
    passes_counted(&mut lvs, &v6[..14 + 40 + 12], LvsReason::Truncated)?;
    passes_counted(&mut lvs, &v6[..14 + 39], LvsReason::Truncated)
}

#[test]
fn bpf_ipv6_with_a_hop_by_hop_header_passes_counted_ipv6_extension() -> Result<()> {
    let mut lvs = malformed_lab()?;
    let mut frame = Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN).frame();
    // Hop-by-hop options (next header 0), 8 bytes: next = TCP, length 0, PadN of 4.
    frame.splice(54..54, [6, 0, 1, 4, 0, 0, 0, 0]);
    frame[14 + 6] = 0;
    let payload = u16::from_be_bytes([frame[18], frame[19]]) + 8;
    frame[18..20].copy_from_slice(&payload.to_be_bytes());
    passes_counted(&mut lvs, &frame, LvsReason::Ipv6Extension)
}

#[test]
fn bpf_every_prefix_of_a_vip_frame_gets_a_valid_verdict() -> Result<()> {
    let mut lvs = malformed_lab()?;
    let mut v4 = Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN);
    v4.payload = vec![0x5a; 40];
    let mut v6 = Packet::tcp("[fd00::1]:40000", "[fd00::100]:80", SYN);
    v6.payload = vec![0x5a; 40];
    for full in [v4.frame(), v6.frame()] {
        assert!(full.len() > 80);
        for length in 0..=80 {
            let frame = &full[..length];
            match lvs.run(frame) {
                // The kernel refuses to run XDP on less than an Ethernet header (EINVAL).
                Err(_) if length < 14 => continue,
                Err(error) => return Err(error.context(format!("running a {length}-byte prefix"))),
                Ok(_) if length < 14 => bail!("the kernel ran XDP on a {length}-byte frame"),
                Ok((verdict, out)) => {
                    assert!(matches!(verdict, XDP_PASS | XDP_DROP | XDP_TX), "{length} bytes: verdict {verdict}");
                    let l4 = if full[12] == 0x08 { 34 } else { 54 };
                    if length >= l4 + 20 {
                        assert_eq!(verdict, XDP_TX, "{length} bytes hold every header: forwarded");
                        assert_eq!(out, with_macs(frame, backend_mac(1), LB_MAC));
                    } else {
                        assert_eq!((verdict, out.as_slice()), (XDP_PASS, frame), "{length} bytes: to the stack as they are");
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Persistence and counters
// ---------------------------------------------------------------------------------------

#[test]
fn bpf_a_persistent_service_keeps_a_client_on_its_backend_across_connections_and_ring_changes() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let mut service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR | SERVICE_PERSISTENT)?;
    service.persistence_seconds = 300;
    lvs.put_service(&service)?;
    lvs.backend(&service, A, "192.168.1.1:80")?;
    lvs.backend(&service, B, "192.168.1.2:80")?;
    lvs.fill_ring(&service, ring_slot(A, A))?;

    let syn = client(40000, SYN);
    let length = syn.frame().len() as u64;
    assert_eq!(lvs.backend_for(&syn)?, A);
    assert_eq!(lvs.backend_for(&client(40000, ACK))?, A);
    // The client's slot now names B: the client's state (not its port) decides.
    lvs.fill_ring(&service, ring_slot(B, B))?;
    assert_eq!(lvs.backend_for(&client(40001, SYN))?, A, "a second connection, another source port: same backend");
    assert_eq!(lvs.backend_for(&client(40001, ACK))?, A);
    let other = Packet::tcp("10.0.0.2:40000", "10.0.0.100:80", SYN);
    assert_eq!(lvs.backend_for(&other)?, B, "another client follows the ring");

    let a = lvs.backend_stats(A)?;
    assert_eq!((a.packets, a.bytes, a.new_flows), (4, 4 * length, 2), "two connections of two packets on A");
    let b = lvs.backend_stats(B)?;
    assert_eq!((b.packets, b.bytes, b.new_flows), (1, length, 1));
    Ok(())
}

#[test]
fn bpf_backend_counters_add_up_packets_bytes_and_new_flows() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_DR)?;
    lvs.backend(&service, 1, "192.168.1.11:80")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let mut total = 0;
    for port in 40000..40005u16 {
        let mut data = client(port, ACK | PSH);
        data.payload = vec![0; usize::from(port - 40000) * 100];
        for packet in [client(port, SYN), client(port, ACK), data] {
            total += packet.frame().len() as u64;
            lvs.transmit(&packet)?;
        }
    }
    let stats = lvs.backend_stats(1)?;
    assert_eq!((stats.packets, stats.bytes, stats.new_flows), (15, total, 5));
    Ok(())
}


// ---------------------------------------------------------------------------------------
// Replies routed by the FIB: stateless reverse translation (`lvs_nat_rs`) and synced
// reply entries (`NAT_ROUTE_BY_FIB`)
// ---------------------------------------------------------------------------------------

/// Our MAC toward the clients in the FIB namespace (the veth `cl0`).
const FIB_OUR_MAC: [u8; 6] = [0x02, 0xf1, 0, 0, 0, 0x01];

/// The test thread moved into a namespace of its own whose FIB routes the clients
/// (10.0.0.0/24, fd00::/64) out `cl0` (ours: 10.0.0.2, fd00::2) to neighbour CLIENT_MAC,
/// forwarding on. BPF_PROG_TEST_RUN runs on the caller's namespace's loopback, so
/// `bpf_fib_lookup` sees this FIB.
fn fib_netns() -> Result<(keepxdp_lab::netns::Netns, u32)> {
    let netns = keepxdp_lab::netns::Netns::new("fib")?;
    let mac = FIB_OUR_MAC.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let client = CLIENT_MAC.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    for args in [
        vec!["link", "add", "cl0", "address", mac.as_str(), "type", "veth", "peer", "name", "cl1"],
        vec!["link", "set", "cl0", "up"],
        vec!["link", "set", "cl1", "up"],
        vec!["addr", "add", "10.0.0.2/24", "dev", "cl0"],
        vec!["addr", "add", "fd00::2/64", "dev", "cl0", "nodad"],
        vec!["neigh", "replace", "10.0.0.1", "lladdr", client.as_str(), "dev", "cl0", "nud", "permanent"],
        vec!["neigh", "replace", "fd00::1", "lladdr", client.as_str(), "dev", "cl0", "nud", "permanent"],
    ] {
        netns.ip(&args)?;
    }
    netns.run("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1"])?;
    let ifindex = netns.ifindex("cl0")?;
    netns.enter_current_thread()?;
    Ok((netns, ifindex))
}

fn put_nat_rs(lvs: &mut Lvs, real: &str, vip: &str, service: u32, vip_index: u32) -> Result<()> {
    let real: SocketAddr = real.parse()?;
    let vip: SocketAddr = vip.parse()?;
    let key = vrrp_common::lvs::RealServerKey {
        addr: vrrp_common::lvs::addr_words(&addr16(real.ip())),
        port: real.port().to_be(),
        proto: IPPROTO_TCP,
        family: family(real.ip()),
    };
    let target = vrrp_common::lvs::RealServerVip {
        vip: addr16(vip.ip()),
        vip_port: vip.port().to_be(),
        family: family(vip.ip()),
        _pad: 0,
        service,
        vip_index,
    };
    lvs.dataplane.put_nat_rs(&key, Some(&target))
}

#[test]
fn bpf_a_reply_with_no_state_from_a_real_server_of_one_nat_service_is_translated_and_routed_by_the_fib() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let (_netns, cl0) = fib_netns()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:8080")?;
    put_nat_rs(&mut lvs, "192.168.1.11:8080", "10.0.0.100:80", 0, service.vip_index)?;

    // A server-first stream after a failover: this node never saw the request.
    let mut reply = Packet::tcp("192.168.1.11:8080", "10.0.0.1:40000", PSH | ACK).macs(LB_MAC, backend_mac(1));
    reply.payload = b"pushed by the server\n".to_vec();
    let (verdict, out) = lvs.run(&reply.frame())?;
    assert_eq!(verdict, XDP_REDIRECT, "routed out cl0 (ifindex {cl0}), not the ingress");
    check_checksums(&out)?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, FIB_OUR_MAC);
    from_vip.src = "10.0.0.100:80".parse()?;
    assert_eq!(out, from_vip.frame(), "source VIP:port, the FIB's MACs, nothing else changed");
    assert_eq!(lvs.drops(LvsReason::NatStateless)?, 1);

    // IPv6 the same way.
    let v6 = lvs.service(1, "[fd00::100]:80", IPPROTO_TCP, FWD_NAT)?;
    put_nat_rs(&mut lvs, "[fd00:1::14]:8080", "[fd00::100]:80", 1, v6.vip_index)?;
    let reply6 = Packet::tcp("[fd00:1::14]:8080", "[fd00::1]:40000", ACK).macs(LB_MAC, backend_mac(4));
    let (verdict, out) = lvs.run(&reply6.frame())?;
    assert_eq!(verdict, XDP_REDIRECT);
    check_l4_checksum(&out[14..])?;
    let mut from_vip6 = reply6.clone().macs(CLIENT_MAC, FIB_OUR_MAC);
    from_vip6.src = "[fd00::100]:80".parse()?;
    assert_eq!(out, from_vip6.frame());
    assert_eq!(lvs.drops(LvsReason::NatStateless)?, 2);
    Ok(())
}

#[test]
fn bpf_a_stateless_reply_to_this_host_or_while_backup_passes_unchanged() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let _netns = fib_netns()?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    put_nat_rs(&mut lvs, "192.168.1.11:8080", "10.0.0.100:80", 0, service.vip_index)?;

    // A health checker's connection: the real server answers this host's own address.
    let to_us = Packet::tcp("192.168.1.11:8080", "10.0.0.2:50000", SYN | ACK).frame();
    assert_eq!(lvs.run(&to_us)?, (XDP_PASS, to_us.clone()), "the FIB says local: the stack's");
    assert_eq!(lvs.drops(LvsReason::NatFibPassed)?, 1);
    // No route to the client: unchanged, counted.
    let unroutable = Packet::tcp("192.168.1.11:8080", "172.16.9.9:40000", ACK).frame();
    assert_eq!(lvs.run(&unroutable)?, (XDP_PASS, unroutable.clone()));
    assert_eq!(lvs.drops(LvsReason::NatFibPassed)?, 2);
    // Not Master for the VIP: the Master translates, this node does not.
    lvs.dataplane.put_vip_state(service.vip_index, false)?;
    let reply = Packet::tcp("192.168.1.11:8080", "10.0.0.1:40000", ACK).frame();
    assert_eq!(lvs.run(&reply)?, (XDP_PASS, reply.clone()));
    // Another port of the same real server is not the service's.
    lvs.dataplane.put_vip_state(service.vip_index, true)?;
    let other_port = Packet::tcp("192.168.1.11:22", "10.0.0.1:40000", ACK).frame();
    assert_eq!(lvs.run(&other_port)?, (XDP_PASS, other_port.clone()));
    assert_eq!(lvs.drops(LvsReason::NatStateless)?, 0);
    assert_eq!(lvs.drops(LvsReason::NatFibPassed)?, 2);
    Ok(())
}

#[test]
fn bpf_a_synced_reply_entry_with_no_interface_is_routed_by_the_fib() -> Result<()> {
    let mut lvs = Lvs::new()?;
    let _netns = fib_netns()?;
    lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    // What the sync daemon installs: the reply key, the VIP, no interface or MACs.
    let key = FlowKey {
        src: vrrp_common::lvs::addr_words(&addr16("192.168.1.11".parse()?)),
        dst: vrrp_common::lvs::addr_words(&addr16("10.0.0.1".parse()?)),
        src_port: 8080u16.to_be(),
        dst_port: 40000u16.to_be(),
        proto: IPPROTO_TCP,
        family: 4,
        flags: 0,
    };
    let entry = vrrp_common::lvs::NatReverse {
        vip: addr16("10.0.0.100".parse()?),
        vip_port: 80u16.to_be(),
        family: 4,
        flags: vrrp_common::lvs::NAT_ROUTE_BY_FIB,
        ..Default::default()
    };
    let map = lvs.dataplane.balancer_object().map_mut(vrrp_common::pins::MAP_LVS_NAT).context("no lvs_nat")?;
    let mut nat: HashMap<&mut MapData, FlowKey, vrrp_common::lvs::NatReverse> = HashMap::try_from(map)?;
    nat.insert(key, entry, 0)?;

    let reply = Packet::tcp("192.168.1.11:8080", "10.0.0.1:40000", ACK).macs(LB_MAC, backend_mac(1));
    let (verdict, out) = lvs.run(&reply.frame())?;
    assert_eq!(verdict, XDP_REDIRECT);
    check_checksums(&out)?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, FIB_OUR_MAC);
    from_vip.src = "10.0.0.100:80".parse()?;
    assert_eq!(out, from_vip.frame());
    assert_eq!(lvs.drops(LvsReason::NatReverse)?, 1, "a state hit, not a stateless one");
    assert_eq!(lvs.drops(LvsReason::NatStateless)?, 0);
    Ok(())
}

/// A full NAT table: the LRU makes room by evicting, the data plane counts every insert, and
/// `keepxdp lvs`'s flow-table line shows inserts minus entries as evicted.
#[test]
fn bpf_a_full_nat_table_evicts_and_the_inserts_count_what_it_lost() -> Result<()> {
    let mut lvs = Lvs::with_tables(64, 64)?;
    let service = lvs.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    lvs.backend(&service, 1, "192.168.1.11:8080")?;
    lvs.fill_ring(&service, ring_slot(1, 1))?;
    let before = lvs.drops(LvsReason::NatInserted)?;
    for port in 0..200u16 {
        lvs.transmit(&Packet::tcp(&format!("10.0.0.1:{}", 20000 + port), "10.0.0.100:80", SYN))?;
    }
    let inserted = lvs.drops(LvsReason::NatInserted)? - before;
    let map = lvs.dataplane.balancer().map(vrrp_common::pins::MAP_LVS_NAT).context("no lvs_nat")?;
    let nat: HashMap<&MapData, FlowKey, vrrp_common::lvs::NatReverse> = HashMap::try_from(map)?;
    let entries = nat.keys().count() as u64;
    assert!(inserted >= 200, "every new connection's forward entry counted ({inserted})");
    assert!(entries <= 64, "the table holds at most its size ({entries})");
    let flows = keepxdp::bpf::FlowTables { nat_entries: entries, nat_capacity: 64, conntrack_capacity: 64, ..Default::default() };
    let (fill, _) = keepxdp::observe::tables::fill(&keepxdp::bpf::FlowInserts { nat: inserted, conntrack: 0 }, &flows);
    assert_eq!(fill.evicted, inserted - entries);
    assert!(fill.evicted >= 136, "{fill:?}");
    let line = keepxdp::observe::tables::format_fill(&keepxdp::bpf::FlowInserts { nat: inserted, conntrack: 0 }, &flows);
    assert!(line.contains("evicted (full: its LRU dropped state in use; raise --nat-entries)"), "{line}");
    assert_eq!(lvs.drops(LvsReason::ConntrackInserted)?, 0, "NAT flows need no conntrack entry");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The sync daemon's path: a new NAT flow reported in `lvs_sync_ring` on one node, sent,
// installed on another, whose balancer then translates the reply and keeps the flow's
// backend
// ---------------------------------------------------------------------------------------

/// The directory both nodes have for one NAT service 10.0.0.100:80 with real server
/// 192.168.1.11:8080 at backend index 1.
fn sync_directory() -> Result<keepxdp::lvs::sync::entries::Directory> {
    use keepxdp::{
        config::model::LbKind,
        lvs::{BackendPlan, ServiceKey, ServiceView, plan::ProtocolKey, tables::InstalledBackend},
    };
    let view = ServiceView {
        key: ServiceKey { addr: "10.0.0.100".parse()?, port: 80, protocol: ProtocolKey::Tcp },
        name: "10.0.0.100:80".into(),
        index: 0,
        forwarding: LbKind::Nat,
        scheduler: "wrr".into(),
        persistence: None,
        backends: vec![InstalledBackend {
            plan: BackendPlan { name: "192.168.1.11:8080".into(), addr: "192.168.1.11".parse()?, port: 8080, weight: 1, starts_down: false, inhibit_on_failure: false },
            index: 1,
            up: true,
            dynamic_weight: None,
            drained: false,
            checkers: Vec::new(),
        }],
        sorry_backend: None,
        quorum: 1,
        hysteresis: 0,
        up_weight: 1,
        quorum_up: true,
        sorry_in_use: false,
    };
    Ok(keepxdp::lvs::sync::entries::Directory::of(&[view]))
}

/// What the ring holds now, as connections.
fn ring_conns(lvs: &Lvs) -> Result<Vec<keepxdp::lvs::sync::wire::Conn>> {
    let mut ring = keepxdp::bpf::sync_ring(&lvs.dataplane)?;
    let mut conns = Vec::new();
    while let Some(item) = ring.next() {
        let record = keepxdp::bpf::ring_record(&item).context("a SyncRecord")?;
        conns.push(keepxdp::lvs::sync::entries::conn_of_record(&record));
    }
    Ok(conns)
}

#[test]
fn bpf_a_new_nat_flow_is_reported_only_with_sync_on_and_the_installed_copy_translates_its_reply_on_another_node() -> Result<()> {
    use keepxdp::lvs::sync::{decide::Installed, entries::Fill, install::{Fills, install}, wire};
    let mut master = Lvs::new()?;
    let service = master.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    master.backend(&service, 1, "192.168.1.11:8080")?;
    master.fill_ring(&service, ring_slot(1, 1))?;
    // Sync off: nothing reported.
    master.transmit(&Packet::tcp("10.0.0.1:39999", "10.0.0.100:80", SYN))?;
    assert!(ring_conns(&master)?.is_empty(), "sync is off: the ring stays empty");
    master.config.sync = 1;
    master.dataplane.put_config(&master.config)?;
    master.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", SYN))?;
    // The same flow's next packet is not new: reported once.
    master.transmit(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", ACK))?;
    let conns = ring_conns(&master)?;
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!((conns[0].client, conns[0].virtual_service, conns[0].destination), ("10.0.0.1:40000".parse()?, "10.0.0.100:80".parse()?, "192.168.1.11:8080".parse()?));

    // On the wire and back.
    let datagrams = wire::encode_conns(51, &conns, 1472);
    let Ok(wire::Message::Conns { conns: received, .. }) = wire::decode(&datagrams[0]) else { bail!("decoding") };

    // The other node: same configuration, its own maps; the thread in a FIB namespace.
    let mut backup = Lvs::new()?;
    let _netns = fib_netns()?;
    let service = backup.service(0, "10.0.0.100:80", IPPROTO_TCP, FWD_NAT)?;
    backup.backend(&service, 1, "192.168.1.11:8080")?;
    // Its ring names no backend: only the synced forward entry can keep the flow on 1.
    let directory = sync_directory()?;
    let mut maps = keepxdp::bpf::XdpSyncMaps::of(&backup.dataplane)?;
    let mut fills = Fills { nat: Fill { capacity: 1024, used: 0 }, conntrack: Fill { capacity: 1024, used: 0 } };
    let (outcome, error) = install(&received, &directory, &mut fills, &mut maps);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(outcome, Installed { new: 1, ..Installed::default() });
    let (again, _) = install(&received, &directory, &mut fills, &mut maps);
    assert_eq!(again, Installed { refreshed: 1, ..Installed::default() }, "the real map says the keys exist");

    // The server speaks: translated from the synced entry, routed by the FIB.
    let reply = Packet::tcp("192.168.1.11:8080", "10.0.0.1:40000", PSH | ACK).macs(LB_MAC, backend_mac(1));
    let (verdict, out) = backup.run(&reply.frame())?;
    assert_eq!(verdict, XDP_REDIRECT);
    check_checksums(&out)?;
    let mut from_vip = reply.clone().macs(CLIENT_MAC, FIB_OUR_MAC);
    from_vip.src = "10.0.0.100:80".parse()?;
    assert_eq!(out, from_vip.frame());
    assert_eq!(backup.drops(LvsReason::NatReverse)?, 1);
    // The client's next packet keeps its backend though the ring names none.
    assert_eq!(backup.backend_for(&Packet::tcp("10.0.0.1:40000", "10.0.0.100:80", ACK))?, 1);

    // A full table refuses another flow and says so.
    let mut full = Fills { nat: Fill { capacity: fills.nat.used, used: fills.nat.used }, ..fills };
    let other = wire::Conn { client: "10.0.0.1:40001".parse()?, ..received[0] };
    let (outcome, _) = install(&[other], &directory, &mut full, &mut maps);
    assert_eq!(outcome, Installed { table_full: 1, ..Installed::default() });
    Ok(())
}
