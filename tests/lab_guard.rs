//! Lab tests: real namespaces, veths, processes and packets. keepalived (Debian's 2.2.7)
//! advertises in one namespace; keepxdp's guard is attached in the other.
use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    keepalived,
    keepxdp::Keepxdp,
    netns::{Netns, veth_pair},
    process::wait_for,
    require_root,
};
use keepxdp_tests::keepxdp_bin;

fn start_keepxdp(netns: &Netns, dir: &Path, config: &str) -> Result<Keepxdp> {
    Keepxdp::start(&keepxdp_bin()?, netns, dir, config)
}

fn guard_stats(keepxdp: &Keepxdp, netns: &Netns) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&keepxdp.guard_stats_json(netns)?)?)
}

fn status(keepxdp: &Keepxdp) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&keepxdp.status_json()?)?)
}

fn count(stats: &serde_json::Value, vrid: u64, reason: &str) -> u64 {
    stats
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["vrid"] == vrid && row["family"] == "ipv4")
        .map(|row| row["counts"][reason].as_u64().unwrap_or(0))
        .sum()
}

/// Listens for IP protocol 112 on a raw socket inside `netns` (as keepalived / keepxdp's
/// VRRP engine do) and counts what reaches it per VRID, until `stop` is set.
fn raw_vrrp_listener(netns: &Netns, device: &str, stop: Arc<AtomicBool>) -> Result<thread::JoinHandle<Result<BTreeMap<u8, u32>>>> {
    let path = netns.path();
    let ifindex = netns.ifindex(device)?;
    Ok(thread::spawn(move || {
        let file = std::fs::File::open(&path)?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, 112) };
        ensure!(socket >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let group = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: u32::from(Ipv4Addr::new(224, 0, 0, 18)).to_be() },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as i32,
        };
        let timeout = libc::timeval { tv_sec: 0, tv_usec: 200_000 };
        let joined = unsafe {
            libc::setsockopt(socket, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, (&group as *const libc::ip_mreqn).cast(), size_of::<libc::ip_mreqn>() as u32)
        };
        ensure!(joined == 0, "joining 224.0.0.18: {}", std::io::Error::last_os_error());
        unsafe {
            libc::setsockopt(socket, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&timeout as *const libc::timeval).cast(), size_of::<libc::timeval>() as u32);
        }
        let mut seen = BTreeMap::new();
        let mut buffer = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let length = unsafe { libc::recv(socket, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if length <= 0 {
                continue;
            }
            // Raw IPv4 sockets deliver the IP header too.
            let header_len = usize::from(buffer[0] & 0x0f) * 4;
            if (length as usize) > header_len + 1 {
                *seen.entry(buffer[header_len + 1]).or_insert(0) += 1;
            }
        }
        unsafe { libc::close(socket) };
        Ok(seen)
    }))
}

fn guard_config(interface: &str, vrid: u8) -> String {
    format!(
        "vrrp_instance GUARDED {{\n  state BACKUP\n  interface {interface}\n  virtual_router_id {vrid}\n  priority 50\n  advert_int 1\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n"
    )
}

#[test]
fn lab_keepalived_adverts_are_accepted_and_unconfigured_vrids_never_reach_a_raw_socket() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let peer = Netns::new("k")?;
    let node = Netns::new("x")?;
    veth_pair(&peer, "kxpeer", "10.77.0.1/24", &node, "kxnode", "10.77.0.2/24")?;

    let mut keepxdp = start_keepxdp(&node, dir.path(), &guard_config("kxnode", 51))?;
    let status = status(&keepxdp)?;
    assert_eq!(status["attachments"][0]["interface"], "kxnode");
    assert_eq!(status["attachments"][0]["mode"], "native", "veth has native XDP");

    let stop = Arc::new(AtomicBool::new(false));
    let listener = raw_vrrp_listener(&node, "kxnode", stop.clone())?;
    let keepalived_config = keepalived::vrrp_config(&[
        ("VI_51", "kxpeer", 51, "10.77.0.100/24", 100),
        ("VI_52", "kxpeer", 52, "10.77.0.200/24", 100),
    ]);
    let mut peer_keepalived = keepalived::start(&peer, dir.path(), &keepalived_config)?;

    // keepalived sends an advert per instance per second once it is master (~3 s).
    let mut stats = serde_json::Value::Null;
    let waited = wait_for("3 accepted adverts for VRID 51 and 3 unknown_vrid for VRID 52", Duration::from_secs(15), || {
        peer_keepalived.check_running()?;
        stats = guard_stats(&keepxdp, &node)?;
        Ok(count(&stats, 51, "accepted") >= 3 && count(&stats, 52, "unknown_vrid") >= 3)
    });
    // bpftool reads the same pinned map while keepxdp runs.
    let dump = keepxdp_lab::run("bpftool", &["-j", "map", "dump", "pinned", keepxdp.pin_dir.join("guard_stats").to_str().unwrap()]);
    stop.store(true, Ordering::Relaxed);
    let seen = listener.join().unwrap()?;
    waited.with_context(|| format!("last guard-stats: {stats}\nkeepalived log:\n{}", peer_keepalived.log_text()))?;

    let dump: serde_json::Value = serde_json::from_str(&dump?)?;
    assert!(dump.as_array().is_some_and(|rows| rows.len() >= 2), "bpftool dump: {dump}");
    assert!(seen.get(&51).copied().unwrap_or(0) >= 1, "accepted adverts reach the raw socket: {seen:?}");
    assert_eq!(seen.get(&52), None, "an unconfigured VRID never reaches the stack: {seen:?}");
    assert_eq!(count(&stats, 51, "unknown_vrid"), 0);
    for reason in ["bad_ttl", "bad_version", "bad_type", "truncated", "foreign_source"] {
        assert_eq!(count(&stats, 51, reason) + count(&stats, 52, reason), 0, "{reason}: {stats}");
    }

    peer_keepalived.stop(Duration::from_secs(5))?;
    keepxdp.stop()?;
    let link = node.ip(&["link", "show", "dev", "kxnode"])?;
    assert!(!link.contains("xdp"), "the guard is detached after SIGTERM: {link}");
    Ok(())
}

#[test]
fn lab_two_keepxdp_processes_in_two_namespaces_do_not_clash() -> Result<()> {
    require_root()?;
    let dir = tempfile::tempdir()?;
    let left = Netns::new("l")?;
    let right = Netns::new("r")?;
    veth_pair(&left, "kxleft", "10.78.0.1/24", &right, "kxright", "10.78.0.2/24")?;
    let mut first = start_keepxdp(&left, dir.path(), &guard_config("kxleft", 7))?;
    let mut second = start_keepxdp(&right, dir.path(), &guard_config("kxright", 7))?;
    assert_ne!(first.pin_dir, second.pin_dir);
    assert_eq!(status(&first)?["attachments"][0]["interface"], "kxleft");
    assert_eq!(status(&second)?["attachments"][0]["interface"], "kxright");
    assert!(left.ip(&["link", "show", "dev", "kxleft"])?.contains("xdp"));
    assert!(right.ip(&["link", "show", "dev", "kxright"])?.contains("xdp"));
    first.stop()?;
    // The other one is unaffected.
    assert!(right.ip(&["link", "show", "dev", "kxright"])?.contains("xdp"));
    second.stop()?;
    Ok(())
}
