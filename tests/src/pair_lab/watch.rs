//! When did a node come to hold its VIPs? A thread inside the node's namespace reads the
//! addresses every 5 ms (getifaddrs: netlink, no process per look, unlike `ip`).
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Result;
use keepxdp_lab::netns::Netns;

pub struct VipWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Option<Instant>>>,
}

impl VipWatch {
    /// Starts watching `netns` for all of `vips` (address, interface) present at once.
    pub fn start(netns: &Netns, vips: &[(&str, &str)]) -> Result<VipWatch> {
        let wanted: Vec<(String, Ipv4Addr)> = vips.iter().map(|(dev, ip)| Ok((dev.to_string(), ip.parse()?))).collect::<Result<_>>()?;
        let path = netns.path();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> Result<Option<Instant>> {
            nix::sched::setns(std::fs::File::open(&path)?, nix::sched::CloneFlags::CLONE_NEWNET)?;
            // Bounded: a minute at most.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let present: Vec<(String, IpAddr)> = nix::ifaddrs::getifaddrs()?
                    .filter_map(|a| {
                        let ip = a.address?.as_sockaddr_in()?.ip();
                        Some((a.interface_name, IpAddr::V4(ip)))
                    })
                    .collect();
                if wanted.iter().all(|(dev, ip)| present.iter().any(|(d, p)| d == dev && *p == IpAddr::V4(*ip))) {
                    return Ok(Some(Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None)
        });
        Ok(VipWatch { stop, thread })
    }

    /// Waits up to `timeout` for the VIPs: the instant they were all there, or None.
    pub fn wait(self, timeout: Duration) -> Result<Option<Instant>> {
        let deadline = Instant::now() + timeout;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("VIP watch thread panicked"))?
    }
}
