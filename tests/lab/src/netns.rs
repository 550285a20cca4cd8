//! Network namespaces owned by one lab, removed (with their links) on drop.
use std::{
    fs::File,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};

use crate::run;

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace named `kx<pid>-<n><tag>`, with loopback up and no route out.
    pub fn new(tag: &str) -> Result<Netns> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("kx{}-{id}{tag}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `program` run inside the namespace by nsenter: network namespace only, so the mounts
    /// (bpffs pins) stay those of the caller (`ip netns exec` would remount /sys).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net={}", self.path())).arg("--").arg(program);
        command
    }

    /// Runs a command in the namespace, failing with its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec![format!("--net={}", self.path()), "--".into(), program.into()];
        full.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run("nsenter", &refs)
    }

    pub fn ip(&self, args: &[&str]) -> Result<String> {
        self.run("ip", args)
    }

    /// SIGKILL to every process in the namespace (a host crash: keepalived's children too).
    pub fn kill_all(&self) -> Result<()> {
        for pid in run("ip", &["netns", "pids", &self.name])?.split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        Ok(())
    }

    /// Moves the calling thread into the namespace (sockets it opens then live there).
    pub fn enter_current_thread(&self) -> Result<()> {
        let file = File::open(self.path()).with_context(|| format!("opening {}", self.path()))?;
        setns(file, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {}", self.name))?;
        Ok(())
    }

    /// The interface index of `device` in this namespace.
    pub fn ifindex(&self, device: &str) -> Result<u32> {
        // /sys is the caller's under nsenter: ask ip, which uses netlink.
        let output = self.ip(&["-o", "link", "show", "dev", device])?;
        let index = output.split(':').next().unwrap_or_default().trim();
        index.parse().with_context(|| format!("ifindex of {device} in {}: {output}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "delete", &self.name]);
    }
}

/// `cidr` on `device`; IPv6 addresses `nodad`, usable at once rather than tentative for a
/// second.
pub fn add_address(netns: &Netns, device: &str, cidr: &str) -> Result<()> {
    let mut args = vec!["addr", "add", cidr, "dev", device];
    if cidr.contains(':') {
        args.push("nodad");
    }
    netns.ip(&args)?;
    Ok(())
}

/// A veth pair `a_dev` (in `a`) <-> `b_dev` (in `b`), both up, with the given addresses.
pub fn veth_pair(a: &Netns, a_dev: &str, a_cidr: &str, b: &Netns, b_dev: &str, b_cidr: &str) -> Result<()> {
    run(
        "ip",
        &["link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev, "netns", &b.name],
    )?;
    for (netns, dev, cidr) in [(a, a_dev, a_cidr), (b, b_dev, b_cidr)] {
        add_address(netns, dev, cidr)?;
        netns.ip(&["link", "set", dev, "up"])?;
    }
    // Carrier comes up a moment later (link watch): wait, so nothing starts on a link that
    // still looks down.
    for (netns, dev) in [(a, a_dev), (b, b_dev)] {
        crate::process::wait_for(&format!("carrier on {dev}"), std::time::Duration::from_secs(5), || {
            Ok(netns.ip(&["link", "show", "dev", dev])?.contains("LOWER_UP"))
        })?;
    }
    Ok(())
}

/// Sends raw Ethernet `frames` out of `device` in `netns` (AF_PACKET), as a forger on the
/// segment would. Runs on a thread of its own that enters the namespace.
pub fn send_frames(netns: &Netns, device: &str, frames: Vec<Vec<u8>>) -> Result<()> {
    send_frames_paced(netns, device, frames, std::time::Duration::ZERO)
}

/// `send_frames`, `gap` apart (adverts at an advert interval).
pub fn send_frames_paced(netns: &Netns, device: &str, frames: Vec<Vec<u8>>, gap: std::time::Duration) -> Result<()> {
    let ifindex = netns.ifindex(device)?;
    let path = netns.path();
    let device = device.to_string();
    std::thread::spawn(move || -> Result<()> {
        let file = File::open(&path)?;
        setns(file, CloneFlags::CLONE_NEWNET)?;
        let socket = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        anyhow::ensure!(socket >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex as i32;
        address.sll_halen = 6;
        let mut result = Ok(());
        for (i, frame) in frames.iter().enumerate() {
            if i > 0 && !gap.is_zero() {
                std::thread::sleep(gap);
            }
            address.sll_addr[..6].copy_from_slice(&frame[..6]);
            let sent = unsafe {
                libc::sendto(
                    socket,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&address as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if sent < 0 {
                result = Err(anyhow::anyhow!("sending a frame on {device}: {}", std::io::Error::last_os_error()));
                break;
            }
        }
        unsafe { libc::close(socket) };
        result
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?
}

/// A Linux bridge in its own namespace: the lab's switch. Multicast snooping is off so VRRP's
/// 224.0.0.18 / ff02::12 flood like on a plain switch.
pub struct Switch {
    pub netns: Netns,
    ports: u32,
}

impl Switch {
    pub fn new() -> Result<Switch> {
        let netns = Netns::new("sw")?;
        netns.ip(&["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])?;
        netns.ip(&["link", "set", "br0", "up"])?;
        Ok(Switch { netns, ports: 0 })
    }

    /// Plugs `host` in: a veth `device` (with `cidr`) in `host`, its peer a bridge port.
    /// Returns the port's name (to unplug / replug it).
    pub fn plug(&mut self, host: &Netns, device: &str, cidr: &str) -> Result<String> {
        self.ports += 1;
        let port = format!("port{}", self.ports);
        run("ip", &["link", "add", device, "netns", &host.name, "type", "veth", "peer", "name", &port, "netns", &self.netns.name])?;
        self.netns.ip(&["link", "set", &port, "master", "br0", "up"])?;
        add_address(host, device, cidr)?;
        host.ip(&["link", "set", device, "up"])?;
        crate::process::wait_for(&format!("carrier on {device}"), std::time::Duration::from_secs(5), || {
            Ok(host.ip(&["link", "show", "dev", device])?.contains("LOWER_UP"))
        })?;
        Ok(port)
    }

    /// Takes the port out of the bridge: the host keeps its carrier but hears nobody (a
    /// partition, not a link failure).
    pub fn isolate(&self, port: &str) -> Result<()> {
        self.netns.ip(&["link", "set", port, "nomaster"])?;
        Ok(())
    }

    pub fn reconnect(&self, port: &str) -> Result<()> {
        self.netns.ip(&["link", "set", port, "master", "br0"])?;
        Ok(())
    }
}
