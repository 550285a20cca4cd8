//! Generated and mutated configurations never make the reader panic. Runs for
//! KEEPXDP_FUZZ_SECONDS (default 3 s; the note reports a 300 s run) and prints how many
//! inputs it tried. Inputs come from a seeded generator, so a failure names its seed.
use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    time::{Duration, Instant},
};

use keepxdp::config::{LoadOptions, load_str};

/// xorshift64*: small, seedable, good enough to pick words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

const WORDS: &[&str] = &[
    "global_defs", "vrrp_instance", "vrrp_sync_group", "vrrp_script", "vrrp_track_process", "vrrp_track_file",
    "virtual_server", "virtual_server_group", "real_server", "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK",
    "DNS_CHECK", "SMTP_CHECK", "UDP_CHECK", "PING_CHECK", "url", "path", "digest", "status_code", "host",
    "interface", "virtual_router_id", "priority", "advert_int", "version", "state", "MASTER", "BACKUP",
    "authentication", "auth_type", "auth_pass", "PASS", "AH", "virtual_ipaddress", "virtual_ipaddress_excluded",
    "unicast_peer", "unicast_src_ip", "track_script", "track_interface", "weight", "reverse", "nopreempt",
    "notify", "script", "interval", "rise", "fall", "group", "fwmark", "lb_algo", "lb_kind", "NAT", "DR", "TUN",
    "rr", "wlc", "delay_loop", "protocol", "TCP", "UDP", "persistence_timeout", "sorry_server", "quorum",
    "connect_timeout", "connect_port", "retry", "nb_get_retry", "misc_path", "misc_dynamic", "type", "name",
    "brd", "dev", "scope", "label", "static_ipaddress", "static_routes", "include /nonexistent/k*.conf",
    "router_id", "vrrp_mcast_group4", "use_vmac", "native_ipv6", "dev", "eth0", "lo", "x",
    "0", "1", "51", "255", "256", "-1", "-253", "99999999999999999999", "0.5", "40.96", "1e308", "nan", "-0",
    "10.0.0.1", "10.0.0.1/24", "10.0.0.300", "10.0.0.1/33", "fd00::1", "fd00::1/129", "::", "224.0.0.18",
    "192.168.1.1-10", "80", "65536", "200-299", "9b3a0c85a887a256d6939da88aabd8cd", "/bin/true",
    "{", "}", "{", "}", "\"quoted word\"", "\"unterminated", "#comment", "!comment", "\\", "$P", "${P}", "$P=eth0",
    "@high", "@^high", "@", "$", "é", "\u{0}",
];

fn generated(rng: &mut Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.below(200) {
        text.push_str(rng.pick(WORDS));
        text.push(if rng.below(4) == 0 { '\n' } else { ' ' });
    }
    text
}

fn mutated(rng: &mut Rng, base: &str) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(8) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => {
                bytes.remove(at);
            }
            1 => bytes.insert(at, b"{}\"\\$@#!\n 0.9/-"[rng.below(15)]),
            _ => bytes[at] = (rng.next() & 0x7f) as u8,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const BASE: &str = "global_defs {\n router_id R\n}\nvrrp_script chk {\n script \"/bin/true\"\n weight -2\n}\nvrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 100\n advert_int 1\n authentication {\n  auth_type PASS\n  auth_pass 1111\n }\n unicast_peer {\n  10.0.0.2\n }\n track_script {\n  chk weight 5\n }\n virtual_ipaddress {\n  10.0.0.10/24 dev eth0\n }\n}\nvirtual_server 10.0.0.10 80 {\n delay_loop 6\n lb_algo wlc\n lb_kind DR\n protocol TCP\n real_server 10.0.0.21 80 {\n  weight 1\n  HTTP_GET {\n   url {\n    path /\n    status_code 200-299\n   }\n   connect_timeout 3\n  }\n }\n}\n";

#[test]
fn generated_and_mutated_configurations_never_panic() {
    let seconds: u64 = std::env::var("KEEPXDP_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let options = LoadOptions { config_id: Some("high".into()), ..LoadOptions::default() };
    let mut inputs = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while Instant::now() < deadline {
        seed = seed.wrapping_add(1);
        let mut rng = Rng(seed);
        let text = if rng.below(2) == 0 { generated(&mut rng) } else { mutated(&mut rng, BASE) };
        let outcome = catch_unwind(AssertUnwindSafe(|| load_str(Path::new("fuzz.conf"), &text, &options)));
        assert!(outcome.is_ok(), "the reader panicked on seed {seed:#x}, input:\n{text}");
        inputs += 1;
    }
    println!("config fuzz: {inputs} inputs in {seconds} s, no panic");
    assert!(inputs > 100, "too few inputs ran ({inputs})");
}
