//! `keepxdp check` (and keepalived's spelling `keepxdp -t`) as a user runs it: diagnostics
//! on stderr as FILE:LINE:COL, the model on stdout with --dump, and the documented exit codes.
use std::process::{Command, Output};

fn check(args: &[&str], text: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keepalived.conf");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_keepxdp"))
        .args(args)
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");
    (output, stderr)
}

const GOOD: &str = "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n";

#[test]
fn a_good_file_exits_0_and_dumps_the_model() {
    let (output, stderr) = check(&["check", "--dump"], GOOD);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("FILE: 0 error(s), 0 warning(s): usable"), "{stderr}");
    let model: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(model["vrrp_instances"][0]["virtual_router_id"], 51);
    assert_eq!(model["vrrp_instances"][0]["priority"], 100);
}

#[test]
fn keepalived_spelling_dash_t_works_the_same() {
    let (output, _) = check(&["-t"], GOOD);
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn errors_keepxdp_would_run_with_exit_4() {
    let (output, stderr) = check(&["check"], &GOOD.replace("virtual_router_id 51", "virtual_router_id 51\n  priorty 10"));
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("FILE:4:3: error: unknown keyword `priorty` in vrrp_instance; did you mean `priority`?"), "{stderr}");
}

#[test]
fn a_file_that_cannot_be_used_exits_3() {
    let (output, stderr) = check(&["check"], "vrrp_instance VI_1 {\n  interface lo\n");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("FILE:1:20: error: this `{` is never closed"), "{stderr}");
    assert!(stderr.contains("cannot be used"), "{stderr}");
}

#[test]
fn an_interface_that_does_not_exist_is_a_warning_as_in_keepalived() {
    let (output, stderr) = check(&["check"], &GOOD.replace("interface lo", "interface kx-no-such0"));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("FILE:1:1: warning: (VI_1) interface kx-no-such0 does not exist on this system (yet)"), "{stderr}");
}
