//! A VRRP flood: a mix of invalid adverts (each broken in one way the guard checks) and a
//! fast AF_PACKET sender for it (sendmmsg batches), bounded in frames and in time.
use std::{
    fs::File,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use nix::sched::{CloneFlags, setns};

use crate::{frames::Advert, netns::Netns};

/// What is wrong with a flood frame: the guard's drop reason it should be counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Broken {
    /// TTL 64 instead of 255 (RFC 3768 §7.1 / RFC 9568 §7.1).
    Ttl,
    /// A VRID nobody on the segment configured.
    UnknownVrid,
    /// Version 1, 4 or 15.
    Version,
    /// Type 2..15 (only 1, ADVERTISEMENT, exists).
    Type,
    /// The address count claims more addresses than the frame carries.
    Truncated,
}

impl Broken {
    pub const ALL: [Broken; 5] = [Broken::Ttl, Broken::UnknownVrid, Broken::Version, Broken::Type, Broken::Truncated];

    /// The reason's name in `keepxdp guard-stats --json`.
    pub fn guard_reason(self) -> &'static str {
        match self {
            Broken::Ttl => "bad_ttl",
            Broken::UnknownVrid => "unknown_vrid",
            Broken::Version => "bad_version",
            Broken::Type => "bad_type",
            Broken::Truncated => "truncated",
        }
    }
}

/// One flood frame and what is wrong with it.
#[derive(Debug, Clone)]
pub struct FloodFrame {
    pub broken: Broken,
    /// The VRID the frame carries (the guard counts per VRID).
    pub vrid: u8,
    pub bytes: Vec<u8>,
}

/// The mix, 64 frames, the same number of each kind (± 1), interleaved: adverts for `vrid`
/// (version `version`) with one thing wrong, or for another VRID, sent from `source` to the
/// VRRP group but to `dst_mac` (one host's MAC: the switch delivers them to that host only).
pub fn invalid_mix(vrid: u8, version: u8, source: &str, dst_mac: [u8; 6], vip: &str) -> Vec<FloodFrame> {
    let base = |v: u8| {
        let mut advert = if version == 3 { Advert::v3(v, source, &[vip]) } else { Advert::v2(v, source, &[vip]) };
        advert.priority = 200;
        advert.source_mac = [0x02, 0xf1, 0, 0, 0, 0x01];
        advert
    };
    let mut frames = Vec::new();
    for i in 0..64u8 {
        let broken = Broken::ALL[usize::from(i) % Broken::ALL.len()];
        let mut advert = base(vrid);
        match broken {
            Broken::Ttl => advert.ttl = 64,
            Broken::UnknownVrid => {
                // Spread over many VRIDs, never `vrid`.
                advert.vrid = 1 + (vrid.wrapping_add(1 + i * 3) % 254);
                if advert.vrid == vrid {
                    advert.vrid = vrid.wrapping_add(1).max(1);
                }
            }
            Broken::Version => advert.version = [1, 4, 15][usize::from(i) % 3],
            Broken::Type => advert.kind = 2 + i % 14,
            Broken::Truncated => advert.count_override = Some(2 + i % 8),
        }
        let mut bytes = advert.frame();
        bytes[..6].copy_from_slice(&dst_mac);
        frames.push(FloodFrame { broken, vrid: advert.vrid, bytes });
    }
    frames
}

/// How much to send at most, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    pub max_frames: u64,
    pub max_time: Duration,
    /// Frames per second to aim at; `None`: as fast as the machine goes.
    pub rate: Option<u64>,
}

/// What was sent.
#[derive(Debug, Clone)]
pub struct FloodReport {
    pub sent: u64,
    /// Frames sent per kind of breakage.
    pub per_kind: Vec<(Broken, u64)>,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn sent_of(&self, kind: Broken) -> u64 {
        self.per_kind.iter().filter(|(k, _)| *k == kind).map(|(_, n)| n).sum()
    }
}

const BATCH: usize = 64;

/// Sends `frames` round and round out of `device` in `netns` (AF_PACKET, qdisc bypassed,
/// `sendmmsg` batches of 64) until a limit is reached. Runs on a thread that enters the
/// namespace; returns when done.
pub fn flood(netns: &Netns, device: &str, frames: Vec<FloodFrame>, limits: FloodLimits) -> Result<FloodReport> {
    ensure!(!frames.is_empty() && frames.len() % BATCH == 0, "the mix is sent in whole batches of {BATCH}");
    let ifindex = netns.ifindex(device)?;
    let path = netns.path();
    std::thread::spawn(move || -> Result<FloodReport> {
        setns(File::open(&path)?, CloneFlags::CLONE_NEWNET)?;
        // SAFETY: plain socket calls on a descriptor this thread owns; every pointer handed to
        // the kernel points into `frames`, `address`, `iovecs` or `headers`, alive until close.
        unsafe {
            let socket = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            ensure!(socket >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let one: libc::c_int = 1;
            // Not fatal: without it frames go through the (noqueue) qdisc layer, a little slower.
            libc::setsockopt(socket, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, (&one as *const libc::c_int).cast(), 4);
            let mut address: libc::sockaddr_ll = std::mem::zeroed();
            address.sll_family = libc::AF_PACKET as u16;
            address.sll_ifindex = ifindex as i32;
            address.sll_halen = 6;
            address.sll_addr[..6].copy_from_slice(&frames[0].bytes[..6]);
            let mut iovecs: Vec<libc::iovec> =
                frames.iter().map(|f| libc::iovec { iov_base: f.bytes.as_ptr() as *mut _, iov_len: f.bytes.len() }).collect();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .map(|iov| {
                    let mut header: libc::mmsghdr = std::mem::zeroed();
                    header.msg_hdr.msg_name = (&mut address as *mut libc::sockaddr_ll).cast();
                    header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
                    header.msg_hdr.msg_iov = iov;
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            let mut per_frame = vec![0u64; frames.len()];
            let started = Instant::now();
            let mut sent = 0u64;
            let mut at = 0usize;
            let mut error = None;
            while sent < limits.max_frames && started.elapsed() < limits.max_time {
                if let Some(rate) = limits.rate {
                    // Paced: never ahead of `rate`.
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait.min(Duration::from_millis(5)));
                        continue;
                    }
                }
                let want = (BATCH as u64).min(limits.max_frames - sent) as u32;
                let n = libc::sendmmsg(socket, headers[at..].as_mut_ptr(), want.min((frames.len() - at) as u32), 0);
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    // A full device queue: try again, the limits still bound the loop.
                    if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
                        continue;
                    }
                    error = Some(e);
                    break;
                }
                for slot in &mut per_frame[at..at + n as usize] {
                    *slot += 1;
                }
                sent += n as u64;
                at = (at + n as usize) % frames.len();
            }
            let elapsed = started.elapsed();
            libc::close(socket);
            if let Some(e) = error {
                anyhow::bail!("sendmmsg on ifindex {ifindex}: {e}");
            }
            let mut per_kind: Vec<(Broken, u64)> = Broken::ALL.iter().map(|k| (*k, 0)).collect();
            for (frame, count) in frames.iter().zip(per_frame) {
                per_kind.iter_mut().find(|(k, _)| *k == frame.broken).unwrap().1 += count;
            }
            Ok(FloodReport { sent, per_kind, elapsed })
        }
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the flood thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_kind_and_only_one_fault_per_frame() {
        let frames = invalid_mix(51, 3, "10.77.0.3", [2, 0, 0, 0, 0, 2], "10.77.0.100");
        assert_eq!(frames.len(), 64);
        for kind in Broken::ALL {
            let n = frames.iter().filter(|f| f.broken == kind).count();
            assert!((12..=13).contains(&n), "{kind:?}: {n}");
        }
        for frame in &frames {
            let b = &frame.bytes;
            assert_eq!(&b[..6], &[2, 0, 0, 0, 0, 2], "to the one host");
            assert_eq!(&b[30..34], &[224, 0, 0, 18]);
            let (ttl, version, kind, vrid, count) = (b[22], b[34] >> 4, b[34] & 0x0f, b[35], b[37]);
            let faults = [ttl != 255, vrid != 51, version != 3, kind != 1, count != 1];
            assert_eq!(faults.iter().filter(|f| **f).count(), 1, "{frame:?}");
            assert_eq!(frame.vrid, vrid);
            assert_ne!(vrid, 0);
        }
    }
}
