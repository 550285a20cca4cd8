//! The .deb from `cargo xtask deb`, installed as an operator installs it: a real `dpkg -i` on
//! this machine (a `dpkg --root` chroot has no systemd, man-db or bash-completion to judge the
//! files with), checked from the installed paths only, then purged. `cargo xtask test` builds
//! the package and sets KEEPXDP_DEB.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use keepxdp_lab::{
    keepxdp::Keepxdp,
    process::wait_for,
    require_root, run,
    vrrp_lab::{VrrpLab, instance_config},
};

const SBIN: &str = "/usr/sbin/keepxdp";

fn deb_path() -> Result<PathBuf> {
    let path = std::env::var_os("KEEPXDP_DEB").map(PathBuf::from).ok_or_else(|| {
        anyhow::anyhow!("KEEPXDP_DEB is not set: run this test with `cargo xtask test`, which builds the package (`cargo xtask deb`) and sets it")
    })?;
    ensure!(path.is_file(), "KEEPXDP_DEB={} does not exist", path.display());
    Ok(path)
}

fn package_state() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", "keepxdp"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The installed package; purged on drop (also when an assertion failed on the way).
struct Installed;

impl Installed {
    fn new(deb: &Path) -> Result<Installed> {
        let state = package_state();
        ensure!(
            state.is_empty() || state == "not-installed" || state == "config-files",
            "a keepxdp package is already here ({state}); this test installs and purges its own: `dpkg --purge keepxdp` first"
        );
        let installed = Installed;
        run("dpkg", &["-i", deb.to_str().unwrap()])?;
        Ok(installed)
    }

    fn purge(self) -> Result<()> {
        std::mem::forget(self);
        run("dpkg", &["--purge", "keepxdp"])?;
        Ok(())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "keepxdp"]).output();
    }
}

fn output(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<std::process::Output> {
    Command::new(program).args(args).envs(env.iter().copied()).output().with_context(|| format!("starting {program}"))
}

#[test]
fn lab_the_deb_installs_runs_from_the_installed_paths_and_purges() -> Result<()> {
    require_root()?;
    let deb = deb_path()?;
    let listing = run("dpkg-deb", &["-c", deb.to_str().unwrap()])?;
    let unit_path = ["./lib/systemd/system/keepxdp.service", "./usr/lib/systemd/system/keepxdp.service"]
        .into_iter()
        .find(|p| listing.contains(p))
        .with_context(|| format!("no keepxdp.service in the package:\n{listing}"))?
        .trim_start_matches('.');
    for path in [
        "./usr/sbin/keepxdp",
        "./etc/default/keepxdp",
        "./usr/share/man/man8/keepxdp.8.gz",
        "./usr/share/man/man8/keepxdp-run.8.gz",
        "./usr/share/man/man8/keepxdp-check.8.gz",
        "./usr/share/bash-completion/completions/keepxdp",
        "./usr/share/zsh/vendor-completions/_keepxdp",
        "./usr/share/fish/vendor_completions.d/keepxdp.fish",
        "./usr/share/doc/keepxdp/README.md",
        "./usr/share/doc/keepxdp/copyright",
        "./usr/share/doc/keepxdp/docs/metrics.md",
        "./usr/share/doc/keepxdp/examples/keepalived.conf",
    ] {
        ensure!(listing.lines().any(|l| l.ends_with(path)), "{path} missing from the package:\n{listing}");
    }
    let fields = run("dpkg-deb", &["-f", deb.to_str().unwrap(), "Package", "Version", "Section"])?;
    ensure!(fields.contains("Package: keepxdp") && fields.contains(&format!("Version: {}-1", env!("CARGO_PKG_VERSION"))), "{fields}");

    let installed = Installed::new(&deb)?;
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "keepxdp"])?;
    ensure!(conffiles.contains("/etc/default/keepxdp"), "conffiles: {conffiles}");

    let version = run(SBIN, &["--version"])?;
    ensure!(version.trim() == format!("keepxdp {}", env!("CARGO_PKG_VERSION")), "{version}");
    // keepalived's -t on the shipped example (what the unit's ExecStartPre runs).
    let check = output(SBIN, &["-t", "-f", "/usr/share/doc/keepxdp/examples/keepalived.conf"], &[])?;
    ensure!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    // man renders the pages from where they were installed; groff (with preconv, as man-db
    // runs it: the help texts have UTF-8) finds no roff mistakes.
    for (page, expect) in [("keepxdp", "keepxdp-run(8)"), ("keepxdp-run", "--use-file")] {
        let path = format!("/usr/share/man/man8/{page}.8.gz");
        let man = output("man", &["-l", &path], &[("MANPAGER", "cat"), ("MANWIDTH", "100")])?;
        let text = String::from_utf8_lossy(&man.stdout);
        ensure!(man.status.success() && text.contains(expect), "man -l {path}: {text}{}", String::from_utf8_lossy(&man.stderr));
        let groff = output("sh", &["-c", &format!("zcat {path} | groff -k -man -ww -z")], &[])?;
        ensure!(groff.status.success() && groff.stderr.is_empty(), "groff on {path}: {}", String::from_utf8_lossy(&groff.stderr));
    }
    // The unit as installed, its man:keepxdp(8) looked up too (--man=yes).
    let verify = output("systemd-analyze", &["verify", "--man=yes", unit_path], &[])?;
    ensure!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify {unit_path}: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // bash completes the subcommands from the installed completion.
    let completed = run(
        "bash",
        &["-c", "source /usr/share/bash-completion/completions/keepxdp; COMP_WORDS=(keepxdp st); COMP_CWORD=1; COMP_LINE='keepxdp st'; _keepxdp keepxdp st keepxdp; echo \"${COMPREPLY[@]}\""],
    )?;
    ensure!(completed.split_whitespace().any(|w| w == "status"), "bash completion of `keepxdp st`: {completed:?}");

    // The installed binary alone runs the data plane (the XDP objects are inside it): a
    // lone instance becomes Master and its guard counts the adverts it sends.
    let lab = VrrpLab::new()?;
    let config = instance_config("kxnode", 3, 100, "0.1", "BACKUP", "");
    let mut node = Keepxdp::start(Path::new(SBIN), &lab.node, lab.dir.path(), &config)?;
    wait_for("the installed keepxdp Master with the VIP", Duration::from_secs(5), || {
        node.child.check_running()?;
        let status: serde_json::Value = serde_json::from_str(&node.status_json()?)?;
        Ok(status["vrrp"][0]["state"] == "Master" && lab.node_holds_vip()?)
    })
    .with_context(|| node.child.log_text())?;
    node.stop()?;

    installed.purge()?;
    ensure!(package_state().is_empty() || package_state() == "not-installed", "after purge: {}", package_state());
    for gone in [SBIN, "/etc/default/keepxdp", unit_path, "/usr/share/man/man8/keepxdp.8.gz"] {
        if Path::new(gone).exists() {
            bail!("{gone} is still there after dpkg --purge");
        }
    }
    Ok(())
}
