//! keepxdp run as keepalived is: every signal keepalived's users send leaves it running and
//! does what keepalived does (SIGUSR1 the data dump, SIGUSR2 the stats, SIGRTMIN+2 the JSON
//! dump, SIGHUP a reload), its state changes logged in keepalived's words.
use std::{path::Path, time::Duration};

use anyhow::{Context, Result, ensure};
use keepxdp_lab::{
    keepxdp::Keepxdp,
    process::wait_for,
    vrrp_lab::{VrrpLab, instance_config},
};
use keepxdp_tests::keepxdp_bin;

fn send(keepxdp: &Keepxdp, signal: i32) -> Result<()> {
    // SAFETY: kill(2) on our own child's pid.
    ensure!(unsafe { libc::kill(keepxdp.child.pid() as i32, signal) } == 0, "kill {signal}: {}", std::io::Error::last_os_error());
    Ok(())
}

/// Sends `signal`, waits for `file` to be (re)written, and checks keepxdp is still there.
fn dump(keepxdp: &mut Keepxdp, dir: &Path, signal: i32, file: &str) -> Result<String> {
    let path = dir.join(file);
    let _ = std::fs::remove_file(&path);
    send(keepxdp, signal)?;
    wait_for(&format!("{file} after signal {signal}"), Duration::from_secs(3), || Ok(path.exists()))
        .with_context(|| keepxdp.child.log_text())?;
    keepxdp.child.check_running()?;
    Ok(std::fs::read_to_string(&path)?)
}

#[test]
fn lab_keepalived_signals_write_dumps_and_leave_keepxdp_running() -> Result<()> {
    let lab = VrrpLab::new()?;
    let dumps = lab.dir.path().join("dumps");
    std::fs::create_dir(&dumps)?;
    let config = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let mut node = Keepxdp::start_with(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config, &["--dump-dir", dumps.to_str().unwrap()])?;
    wait_for("keepxdp Master, alone", Duration::from_secs(5), || lab.node_holds_vip())?;

    let data = dump(&mut node, &dumps, libc::SIGUSR1, "keepalived.data")?;
    ensure!(data.lines().any(|l| l == " VRRP Instance = VI_51") && data.lines().any(|l| l == "   State = MASTER"), "{data}");
    let stats = dump(&mut node, &dumps, libc::SIGUSR2, "keepalived.stats")?;
    ensure!(stats.starts_with("VRRP Instance: VI_51\n  Advertisements:\n"), "{stats}");
    let json: serde_json::Value = serde_json::from_str(&dump(&mut node, &dumps, libc::SIGRTMIN() + 2, "keepalived.json")?)?;
    ensure!(json[0]["data"]["iname"] == "VI_51" && json[0]["data"]["state"] == 2, "{json}");
    ensure!(json[0]["stats"]["advert_sent"].as_u64() > Some(0) && json[0]["stats"]["become_master"] == 1, "{json}");

    // A broken file is refused and counted apart, its reason kept.
    let good = std::fs::read_to_string(&node.config_path)?;
    std::fs::write(&node.config_path, "vrrp_instance VI_51 {\n  priority 999\n")?;
    send(&node, libc::SIGHUP)?;
    wait_for("the refused reload in status", Duration::from_secs(3), || {
        let status: serde_json::Value = serde_json::from_str(&node.status_json()?)?;
        Ok(status["reloads_refused"] == 1 && status["reloads"] == 0 && status["last_reload_refusal"].is_string())
    })?;
    ensure!(node.status_table()?.contains("reloads 0, refused 1"), "{}", node.status_table()?);
    std::fs::write(&node.config_path, good)?;
    // A user who is not root is told why `keepxdp status` cannot read the socket.
    let socket = node.control_socket.to_str().unwrap();
    let denied = std::process::Command::new("runuser").args(["-u", "nobody", "--", node.binary.to_str().unwrap(), "status", "--control-socket", socket]).output()?;
    let said = String::from_utf8_lossy(&denied.stderr);
    ensure!(!denied.status.success() && said.contains("permission denied: the control socket"), "{said}");

    // STATS_CLEAR and a reload: still running, still Master.
    send(&node, libc::SIGRTMAX() - 1)?;
    send(&node, libc::SIGHUP)?;
    wait_for("the reload logged", Duration::from_secs(3), || Ok(node.child.log_text().contains("configuration reloaded")))?;
    node.child.check_running()?;
    ensure!(lab.node_holds_vip()?, "the VIP went away");
    let log = node.child.log_text();
    ensure!(log.contains("(VI_51) Entering BACKUP STATE") && log.contains("(VI_51) Entering MASTER STATE"), "{log}");
    node.stop()
}

#[test]
fn lab_keepalived_command_line_writes_a_pid_file_and_a_second_keepxdp_is_refused_before_loading() -> Result<()> {
    let lab = VrrpLab::new()?;
    let pid_file = lab.dir.path().join("run/keepalived.pid");
    let config = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let binary = keepxdp_bin()?;
    let mut node = Keepxdp::start_with(&binary, &lab.node, lab.dir.path(), &config, &["-n", "-D", "-l", "-p", pid_file.to_str().unwrap()])?;
    let pid = node.child.pid().to_string();
    ensure!(std::fs::read_to_string(&pid_file)?.trim() == pid, "pid file");

    // keepalived's spelling, no subcommand, own pin dir and socket: the pid file stops it.
    let other_pins = lab.dir.path().join("pins-second");
    let mut second = lab.node.command(binary.to_str().unwrap());
    second.args(["--dont-fork", "-f", node.config_path.to_str().unwrap(), "-p", pid_file.to_str().unwrap(), "--pin-dir", other_pins.to_str().unwrap()]);
    second.args(["--control-socket", lab.dir.path().join("second.sock").to_str().unwrap()]);
    let out = second.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && stderr.contains(&format!("already running (pid {pid})")), "{stderr}");
    ensure!(!stderr.contains("XDP") && !other_pins.exists(), "loaded something before refusing: {stderr}");
    node.child.check_running()?;
    node.stop()?;
    ensure!(!pid_file.exists(), "the pid file outlived a clean stop");
    Ok(())
}

/// The states keepxdp sent to a fake systemd's notify socket so far.
fn notified(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buffer) {
        seen.extend(String::from_utf8_lossy(&buffer[..n]).lines().filter(|l| !l.starts_with("STATUS=") && !l.starts_with("MONOTONIC_USEC=")).map(String::from));
    }
    seen
}

#[test]
fn lab_systemd_hears_ready_reloading_ready_watchdog_and_stopping() -> Result<()> {
    let lab = VrrpLab::new()?;
    let path = lab.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path)?;
    socket.set_nonblocking(true)?;
    let config = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let env = [("NOTIFY_SOCKET", path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")];
    let mut node = Keepxdp::start_with_env(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config, &[], &env)?;
    let mut seen = Vec::new();
    wait_for("READY=1", Duration::from_secs(3), || {
        seen.extend(notified(&socket));
        Ok(seen.iter().any(|s| s == "READY=1"))
    })?;
    send(&node, libc::SIGHUP)?;
    wait_for("RELOADING=1 then READY=1, and WATCHDOG=1", Duration::from_secs(3), || {
        seen.extend(notified(&socket));
        Ok(seen.iter().filter(|s| *s == "READY=1").count() == 2 && seen.iter().any(|s| s == "WATCHDOG=1"))
    })
    .with_context(|| format!("{seen:?}"))?;
    node.stop()?;
    seen.extend(notified(&socket));
    let order: Vec<&str> = seen.iter().map(String::as_str).filter(|s| *s != "WATCHDOG=1").collect();
    ensure!(order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], "{seen:?}");
    Ok(())
}

#[test]
fn lab_the_unit_file_passes_systemd_analyze_verify() -> Result<()> {
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/keepxdp.service"))?;
    for line in ["Type=notify", "Restart=always", "ExecStartPre=/usr/sbin/keepxdp -t $DAEMON_ARGS", "ExecReload=/bin/kill -HUP $MAINPID", "Conflicts=keepalived.service", "WatchdogSec=10s"] {
        ensure!(unit.lines().any(|l| l == line), "{line} missing");
    }
    let dir = tempfile::tempdir()?;
    let verify = |text: &str| -> Result<std::process::Output> {
        let path = dir.path().join("keepxdp.service");
        std::fs::write(&path, text)?;
        // The man page is checked by the .deb's test, where it is installed.
        Ok(std::process::Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output()?)
    };
    let out = verify(&unit.replace("/usr/sbin/keepxdp", keepxdp_bin()?.to_str().unwrap()))?;
    ensure!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // The verifier judges: a missing binary fails.
    ensure!(!verify(&unit.replace("/usr/sbin/keepxdp", "/nonexistent/keepxdp"))?.status.success(), "verify passed a missing binary");
    Ok(())
}

#[test]
fn lab_the_control_socket_is_root_only_and_bad_clients_do_not_hold_up_status() -> Result<()> {
    use std::{
        io::{Read, Write},
        os::unix::{fs::MetadataExt, net::UnixStream},
        time::Instant,
    };
    let lab = VrrpLab::new()?;
    let config = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let mut node = Keepxdp::start(&keepxdp_bin()?, &lab.node, lab.dir.path(), &config)?;
    let meta = std::fs::metadata(&node.control_socket)?;
    ensure!(meta.mode() & 0o7777 == 0o600 && meta.uid() == 0, "mode {:o}, uid {}", meta.mode() & 0o7777, meta.uid());

    // Clients that connect and never send, that send and never read, garbage, 1 MiB.
    let mut stuck = Vec::new();
    for i in 0..24 {
        let mut stream = UnixStream::connect(&node.control_socket)?;
        if i % 2 == 0 {
            stream.write_all(b"status\n")?;
        }
        stuck.push(stream);
    }
    let exchange = |bytes: &[u8]| -> Result<serde_json::Value> {
        let mut stream = UnixStream::connect(&node.control_socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = stream.write_all(bytes); // the server may refuse before reading it all
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(serde_json::from_str(&answer).with_context(|| format!("answer {answer:?}"))?)
    };
    let garbage = exchange(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 GET /status HTTP/1.1\r\n")?;
    ensure!(garbage["error"].as_str().is_some_and(|e| e.starts_with("unknown request")), "{garbage}");
    let oversized = exchange(&vec![b'{'; 1 << 20])?;
    ensure!(oversized["error"].as_str().is_some_and(|e| e.contains("longer than")), "{oversized}");

    // `keepxdp status` answers while they hang on, in well under the time the silent ones get.
    let started = Instant::now();
    let status: serde_json::Value = serde_json::from_str(&node.status_json()?)?;
    let took = started.elapsed();
    ensure!(status["pid"].as_u64() == Some(u64::from(node.child.pid())), "{status}");
    ensure!(took < Duration::from_millis(1500), "keepxdp status took {took:?} beside 24 stuck clients");
    drop(stuck);
    node.child.check_running()?;
    // And it still runs VRRP: alone, it became Master.
    wait_for("keepxdp Master, alone", Duration::from_secs(5), || lab.node_holds_vip())?;
    node.stop()
}
