//! Random bytes for probes: a DNS query ID, a raw ICMP socket's echo identifier,
//! UDP_CHECK's default payload.

/// `count` bytes from getrandom(2).
pub(crate) fn random_bytes(count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; count];
    let mut filled = 0;
    while filled < count {
        // SAFETY: writes at most `count - filled` bytes into the buffer's tail.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), count - filled, 0) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    bytes
}
