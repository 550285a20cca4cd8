//! Entry points for `cargo xtask fuzz` (fuzz/fuzz_targets/*.rs call one each) and for the
//! regression test that replays every saved input (fuzz/regressions/TARGET/*). Each takes
//! arbitrary bytes and must return without panicking; what the parsers answer is not judged
//! here — their own unit tests do that.
use std::{net::IpAddr, path::Path};

/// The fuzz targets, by name (the directories of fuzz/corpus and fuzz/regressions).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("config", config),
    ("vrrp_advert", vrrp_advert),
    ("arp_na", arp_na),
    ("ipvs_netlink", ipvs_netlink),
    ("http_response", http_response),
    ("checker_replies", checker_replies),
    ("control_request", control_request),
];

/// The config reader end to end: source (with includes) → lexer → tree → build → validate.
/// The input is split at the first NUL into the main file and `inc.conf` beside it; includes
/// are confined to the temporary directory (an input naming an absolute path or `..` in an
/// include line is skipped).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (main, included) = text.split_once('\0').unwrap_or((&text, ""));
    let escapes = |text: &str| {
        text.lines().any(|line| {
            let line = line.trim_start().trim_start_matches('@').trim_start();
            line.starts_with("include") && (line.contains('/') || line.contains(".."))
        })
    };
    if escapes(main) || escapes(included) {
        return;
    }
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("keepxdp-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    });
    let _ = std::fs::write(dir.join("inc.conf"), included);
    let path = dir.join("keepalived.conf");
    let options = crate::config::LoadOptions { config_id: Some("fuzz".into()), ..Default::default() };
    let _ = crate::config::load_str(&path, main, &options);
}

/// VRRP v2/v3 over IPv4 and IPv6: the message as received (checksum as it is), and again
/// with its checksum made right so the parse goes past it; the IPv4 datagram form too.
pub fn vrrp_advert(data: &[u8]) {
    use crate::vrrp::wire::{ChecksumContext, Packet, Repr};
    let contexts = [
        ChecksumContext::new(IpAddr::from([192, 0, 2, 1]), IpAddr::from([224, 0, 0, 18])),
        ChecksumContext::new("fe80::1".parse().unwrap(), "ff02::12".parse().unwrap()),
        ChecksumContext::new(IpAddr::from([192, 0, 2, 1]), IpAddr::from([224, 0, 0, 18])).with_v3_ipv4_as_v2(true),
    ];
    for context in &contexts {
        if let Ok(packet) = Packet::new_checked(data) {
            let _ = Repr::parse(&packet, context);
        }
        let mut fixed = data.to_vec();
        if let Ok(mut packet) = Packet::new_checked(&mut fixed[..]) {
            if packet.fill_checksum(context).is_ok() {
                let packet = Packet::new_checked(&fixed[..]).expect("checked above");
                let _ = Repr::parse(&packet, context);
            }
        }
    }
    let _ = Repr::parse_ipv4_datagram(data);
}

/// Gratuitous ARP frames and IPv6 neighbour advertisements.
pub fn arp_na(data: &[u8]) {
    let _ = crate::vrrp::wire::arp::GratuitousArp::parse(data);
    let _ = crate::vrrp::wire::ndisc::NeighborAdvert::parse(data, "fe80::1".parse().unwrap(), "ff02::1".parse().unwrap());
}

/// IPVS generic netlink attributes: a service, and a destination of each family.
pub fn ipvs_netlink(data: &[u8]) {
    use crate::lvs::ipvs::{Family, decode_dest, decode_service};
    let _ = decode_service(data);
    let _ = decode_dest(data, Family::Inet);
    let _ = decode_dest(data, Family::Inet6);
}

/// HTTP_GET / SSL_GET responses: head, body (chunked or not), digest.
pub fn http_response(data: &[u8]) {
    crate::check::http::fuzz_response(data);
}

/// DNS_CHECK replies, SMTP_CHECK status lines, UDP_CHECK reply patterns against a reply.
pub fn checker_replies(data: &[u8]) {
    let _ = crate::check::dns::judge_reply(u16::from_be_bytes([data.first().copied().unwrap_or(0), data.get(1).copied().unwrap_or(0)]), data);
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = crate::check::smtp::status(line);
    }
    let (pattern, reply) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(pattern) = crate::check::udp::ReplyPattern::parse(pattern) {
        let _ = pattern.matches(reply.as_bytes());
    }
    let _ = crate::check::udp::parse_hex(pattern, true);
}

/// The control socket's request framing and line.
pub fn control_request(data: &[u8]) {
    let _ = crate::ctl::request::parse(data, false);
    let _ = crate::ctl::request::parse(data, true);
    if let Ok(line) = std::str::from_utf8(data) {
        if let Ok(request) = crate::ctl::ControlRequest::parse(line) {
            let again = crate::ctl::ControlRequest::parse(&request.to_line()).expect("a request's own line parses");
            assert_eq!(again, request, "a request survives its line");
        }
    }
}

/// Runs `target` on every file under `dir` (a corpus or the saved crashes); the count.
pub fn replay(target: fn(&[u8]), dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut count = 0;
    for entry in entries.flatten() {
        if let Ok(data) = std::fs::read(entry.path()) {
            target(&data);
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every saved crash (fuzz/regressions/TARGET/) and every seed (fuzz/seeds/TARGET/)
    /// runs through its target without a panic.
    #[test]
    fn saved_fuzz_inputs_replay_without_a_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut seeds = 0;
        for (name, target) in TARGETS {
            seeds += replay(*target, &root.join("seeds").join(name));
            replay(*target, &root.join("regressions").join(name));
        }
        assert!(seeds >= TARGETS.len(), "each target has seeds ({seeds} in all)");
    }
}
