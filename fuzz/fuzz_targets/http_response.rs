#![no_main]
// One of keepxdp::fuzzing::TARGETS; see vrrp-user/src/fuzzing.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| keepxdp::fuzzing::http_response(data));
