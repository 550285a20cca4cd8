//! keepxdp check beside Debian's keepalived 2.2.7 `-t` on the same files, in a namespace
//! whose interfaces (eth0..eth2) are the ones the files name: where keepalived accepts a
//! file, keepxdp must accept it too. The curated files in tests/configs must pass both.
use std::path::{Path, PathBuf};

use anyhow::Result;
use keepxdp_lab::{netns::Netns, require_root};
use keepxdp_tests::keepxdp_bin;

fn exit_code(netns: &Netns, program: &str, args: &[&str], via_ip_netns: bool) -> Result<i32> {
    // keepalived reads /sys for interfaces: give it the namespace's own (ip netns exec).
    let mut command = if via_ip_netns {
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &netns.name, program]);
        command
    } else {
        netns.command(program)
    };
    let output = command.args(args).output()?;
    Ok(output.status.code().unwrap_or(-1))
}

fn files_in(directory: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    // Files only: tests/configs/corpus/ (issue 17) is a directory beside the curated files.
    files.retain(|p| p.is_file() && p.file_name().unwrap().to_string_lossy().starts_with(prefix));
    files.sort();
    Ok(files)
}

#[test]
fn lab_where_keepalived_accepts_a_file_keepxdp_accepts_it_too() -> Result<()> {
    require_root()?;
    let netns = Netns::new("cfg")?;
    for (device, peer) in [("eth0", "p0"), ("eth1", "p1"), ("eth2", "p2")] {
        netns.ip(&["link", "add", "dev", device, "type", "veth", "peer", "name", peer])?;
        netns.ip(&["link", "set", device, "up"])?;
    }
    let keepxdp = keepxdp_bin()?;
    let curated = files_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs"), "")?;
    let samples = files_in(Path::new("/usr/share/doc/keepalived/samples"), "keepalived.conf")?;
    assert!(curated.len() >= 5 && samples.len() >= 20);
    let mut disagreements = Vec::new();
    println!("{:<45} {:>12} {:>14}", "file", "keepalived -t", "keepxdp check");
    for file in curated.iter().chain(&samples) {
        let path = file.to_str().unwrap();
        let theirs = exit_code(&netns, "keepalived", &["-t", "-l", "-f", path], true)?;
        let ours = exit_code(&netns, keepxdp.to_str().unwrap(), &["check", "-f", path], false)?;
        let name = file.file_name().unwrap().to_string_lossy();
        println!("{name:<45} {theirs:>12} {ours:>14}");
        let is_curated = curated.contains(file);
        if is_curated && theirs != 0 {
            disagreements.push(format!("{name}: curated file rejected by keepalived -t ({theirs})"));
        }
        if theirs == 0 && ours != 0 {
            disagreements.push(format!("{name}: keepalived -t accepts it, keepxdp check exits {ours}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    Ok(())
}
