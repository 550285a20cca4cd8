//! The source address of a checker that has no `bindto`: never a VIP of this node. The
//! kernel's own choice is kept unless it is one of this node's VIPs (Linux's IPv6 source
//! selection picks a `/64` VIP, the newest address of the subnet, and then the real server's
//! reply goes to its own lo); then the checker binds to another address of the same
//! interface and family: one whose subnet holds the real server, else the first, never a VIP,
//! link-local only toward a link-local target.
//!
//! `choose` is the rule (pure); `source_for` asks the kernel (a connected UDP socket's
//! `getsockname`, no packet sent) and the interface's addresses (`getifaddrs`).
use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{Arc, RwLock},
};

/// An address of a local interface, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddress {
    pub ip: IpAddr,
    pub prefix: u8,
}

/// The address to bind, or None to let the kernel choose: the kernel's pick `kernel` unless
/// it is in `vips`, else the best of `interface` (the addresses of the interface that holds
/// `kernel`) for `target`. None too when the interface has nothing else to offer.
pub fn choose(target: IpAddr, kernel: IpAddr, interface: &[LocalAddress], vips: &[IpAddr]) -> Option<IpAddr> {
    if !vips.contains(&kernel) {
        return None;
    }
    let usable = |a: &&LocalAddress| {
        a.ip.is_ipv4() == target.is_ipv4()
            && !vips.contains(&a.ip)
            && !a.ip.is_unspecified()
            && (link_local(a.ip) == link_local(target))
    };
    let candidates: Vec<&LocalAddress> = interface.iter().filter(usable).collect();
    candidates
        .iter()
        .find(|a| contains(a, target))
        .or(candidates.first())
        .map(|a| a.ip)
}

fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// `target` is in `address`'s subnet.
fn contains(address: &LocalAddress, target: IpAddr) -> bool {
    match (address.ip, target) {
        (IpAddr::V4(a), IpAddr::V4(t)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(address.prefix.min(32))).unwrap_or(0);
            u32::from(a) & mask == u32::from(t) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(t)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(address.prefix.min(128))).unwrap_or(0);
            u128::from(a) & mask == u128::from(t) & mask
        }
        _ => false,
    }
}

/// This node's VIPs (every `virtual_ipaddress`, `virtual_ipaddress_excluded` and
/// `virtual_server` address), set by the daemon on each (re)load; checkers read it when they
/// open a socket, so a reload that changes only VIPs restarts no checker.
static VIPS: RwLock<Option<Arc<Vec<IpAddr>>>> = RwLock::new(None);

pub fn set_vips(vips: Vec<IpAddr>) {
    *VIPS.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(vips));
}

fn vips() -> Arc<Vec<IpAddr>> {
    VIPS.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

/// The address a checker toward `target` binds to when it has no `bindto`: see `choose`.
/// `prepare` applies the checker's SO_MARK / SO_BINDTODEVICE to the route lookup socket, so
/// the kernel picks as it will for the checker's own socket. Any failure: None (the kernel
/// chooses, as before).
pub fn source_for(target: SocketAddr, prepare: impl FnOnce(&socket2::Socket) -> Result<(), String>) -> Option<IpAddr> {
    let vips = vips();
    if vips.is_empty() {
        return None;
    }
    let kernel = kernel_source(target, prepare)?;
    if !vips.contains(&kernel) {
        return None;
    }
    let chosen = choose(target.ip(), kernel, &interface_addresses(kernel), &vips);
    if chosen.is_none() {
        tracing::debug!(%target, %kernel, "the kernel's source toward this real server is a VIP and its interface has no other address");
    }
    chosen
}

/// The source the kernel picks toward `target`: a UDP socket connected there (no packet).
fn kernel_source(target: SocketAddr, prepare: impl FnOnce(&socket2::Socket) -> Result<(), String>) -> Option<IpAddr> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(target), socket2::Type::DGRAM, None).ok()?;
    prepare(&socket).ok()?;
    let port = if target.port() == 0 { 9 } else { target.port() };
    socket.connect(&SocketAddr::new(target.ip(), port).into()).ok()?;
    let socket: UdpSocket = socket.into();
    socket.local_addr().ok().map(|a| a.ip())
}

/// The addresses of the interface that holds `ip`, in the kernel's order.
fn interface_addresses(ip: IpAddr) -> Vec<LocalAddress> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let all: Vec<(String, LocalAddress)> = all
        .filter_map(|entry| {
            let address = entry.address?;
            let netmask = entry.netmask;
            let (ip, prefix) = if let Some(v4) = address.as_sockaddr_in() {
                let prefix = netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| u32::from(m.ip()).count_ones());
                (IpAddr::V4(v4.ip()), prefix.unwrap_or(32))
            } else if let Some(v6) = address.as_sockaddr_in6() {
                let prefix = netmask.as_ref().and_then(|m| m.as_sockaddr_in6()).map(|m| u128::from(m.ip()).count_ones());
                (IpAddr::V6(v6.ip()), prefix.unwrap_or(128))
            } else {
                return None;
            };
            Some((entry.interface_name, LocalAddress { ip, prefix: prefix as u8 }))
        })
        .collect();
    let Some((name, _)) = all.iter().find(|(_, a)| a.ip == ip) else { return Vec::new() };
    let name = name.clone();
    all.into_iter().filter(|(n, _)| *n == name).map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> LocalAddress {
        let (ip, prefix) = text.split_once('/').unwrap();
        LocalAddress { ip: ip.parse().unwrap(), prefix: prefix.parse().unwrap() }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_kernels_choice_stands_when_it_is_not_a_vip() {
        let interface = [at("10.0.0.1/24"), at("10.0.0.100/24")];
        assert_eq!(choose(ip("10.0.0.11"), ip("10.0.0.1"), &interface, &[ip("10.0.0.100")]), None);
    }

    #[test]
    fn an_ipv6_vip_picked_by_the_kernel_is_replaced_by_the_interfaces_own_address() {
        // Linux picks the newest /64 address: the VIP; addresses come newest first.
        let interface = [at("fd00:215::100/64"), at("fd00:215::1/64"), at("fe80::1/64")];
        let vips = [ip("fd00:215::100")];
        assert_eq!(choose(ip("fd00:215::11"), ip("fd00:215::100"), &interface, &vips), Some(ip("fd00:215::1")));
    }

    #[test]
    fn the_address_whose_subnet_holds_the_real_server_wins_then_the_first() {
        let interface = [at("fd00:1::1/64"), at("fd00:2::1/64"), at("fd00:2::100/64")];
        let vips = [ip("fd00:2::100")];
        assert_eq!(choose(ip("fd00:2::11"), ip("fd00:2::100"), &interface, &vips), Some(ip("fd00:2::1")));
        assert_eq!(choose(ip("fd00:9::11"), ip("fd00:2::100"), &interface, &vips), Some(ip("fd00:1::1")));
    }

    #[test]
    fn never_another_vip_a_link_local_or_the_other_family() {
        let interface = [at("fd00::100/64"), at("fd00::101/64"), at("fe80::1/64"), at("10.0.0.1/24")];
        let vips = [ip("fd00::100"), ip("fd00::101")];
        assert_eq!(choose(ip("fd00::11"), ip("fd00::100"), &interface, &vips), None);
    }

    #[test]
    fn toward_a_link_local_real_server_a_link_local_source() {
        let interface = [at("fe80::100/64"), at("fd00::1/64"), at("fe80::1/64")];
        let vips = [ip("fe80::100")];
        assert_eq!(choose(ip("fe80::11"), ip("fe80::100"), &interface, &vips), Some(ip("fe80::1")));
    }

    #[test]
    fn ipv4_vips_too() {
        let interface = [at("192.0.2.100/32"), at("192.0.2.1/24")];
        let vips = [ip("192.0.2.100")];
        assert_eq!(choose(ip("192.0.2.11"), ip("192.0.2.100"), &interface, &vips), Some(ip("192.0.2.1")));
    }

    /// In a fresh network namespace: a /64 VIP added after the interface's own address is
    /// what Linux picks toward the subnet; `source_for` binds the own address instead.
    #[test]
    fn source_for_avoids_a_vip_the_kernel_picks_in_a_namespace() {
        let chosen = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) needs root");
            for command in [
                "link add s0 type veth peer name s1",
                "link set s1 up",
                "link set s0 up",
                "addr add fd00:77::1/64 dev s0 nodad",
                "addr add fd00:77::100/64 dev s0 nodad",
            ] {
                let status = std::process::Command::new("ip").args(command.split_whitespace()).status().expect("ip");
                assert!(status.success(), "ip {command}");
            }
            let target: SocketAddr = "[fd00:77::11]:80".parse().unwrap();
            let kernel = kernel_source(target, |_| Ok(())).unwrap();
            set_vips(vec![ip("fd00:77::100")]);
            (kernel, source_for(target, |_| Ok(())))
        })
        .join()
        .unwrap();
        assert_eq!(chosen, (ip("fd00:77::100"), Some(ip("fd00:77::1"))));
    }
}
