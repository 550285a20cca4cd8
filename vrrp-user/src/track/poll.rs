//! Trackers read by polling: interface link state (SIOCGIFFLAGS) and track_file values.
use std::{os::fd::AsRawFd, path::Path, time::Duration};

use tokio::sync::watch;

use super::priority::Reading;

/// How often polled objects are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Up when the interface is administratively up and has carrier (IFF_UP | IFF_RUNNING).
pub fn link_up(interface: &str) -> Option<bool> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).ok()?;
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(interface.bytes()) {
        *slot = byte as libc::c_char;
    }
    let result = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) };
    if result < 0 {
        return None;
    }
    let flags = unsafe { request.ifr_ifru.ifru_flags } as libc::c_int;
    Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
}

/// keepalived's track_file value: the first number in the file; a missing or empty file
/// reads as 0.
pub fn file_value(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|word| word.parse().ok()))
        .unwrap_or(0)
}

pub async fn interface(name: String, reading: watch::Sender<Reading>) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    loop {
        ticker.tick().await;
        let now = match link_up(&name) {
            Some(true) => Reading::Up,
            // A vanished interface is down.
            _ => Reading::Down,
        };
        if reading.send_if_modified(|old| std::mem::replace(old, now) != now) {
            tracing::info!(interface = name, ?now, "tracked interface changed");
        }
    }
}

pub async fn file(name: String, path: String, reading: watch::Sender<Reading>) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    loop {
        ticker.tick().await;
        let now = Reading::Value(file_value(Path::new(&path)));
        if reading.send_if_modified(|old| std::mem::replace(old, now) != now) {
            tracing::info!(track_file = name, ?now, "tracked file changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_a_missing_interface_is_unknown() {
        assert_eq!(link_up("lo"), Some(true));
        assert_eq!(link_up("kx-no-such0"), None);
    }

    #[test]
    fn file_values_read_the_first_number_or_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(file_value(&path), 0, "missing");
        std::fs::write(&path, " -12\nrest").unwrap();
        assert_eq!(file_value(&path), -12);
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(file_value(&path), 0);
    }
}
