//! `keepxdp generate man|completions DIR` (a packaging hook outside the documented CLI;
//! `cargo xtask deb` runs it): the man pages
//! and shell completions, rendered from the same clap command the binary parses with, so they
//! never drift from the options.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use clap_complete::Shell;

/// keepxdp is a daemon run by root: section 8, as keepalived(8) and the unit's
/// `Documentation=man:keepxdp(8)`.
pub const MAN_SECTION: &str = "8";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// keepxdp.8 and one page per subcommand (keepxdp-run.8, …), uncompressed roff.
    Man,
    /// bash (keepxdp), zsh (_keepxdp) and fish (keepxdp.fish) completions.
    Completions,
}

/// Writes what `what` names into `dir` (created if missing); returns the files written.
pub fn generate(command: clap::Command, what: Generated, dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let written = match what {
        Generated::Man => man_pages(command, dir),
        Generated::Completions => completions(command, dir),
    };
    written.with_context(|| format!("writing into {}", dir.display()))
}

fn man_pages(command: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.extend(man_pages(sub.clone(), dir)?);
    }
    let page = clap_mangen::Man::new(command).section(MAN_SECTION).manual("System Administration");
    written.push(page.generate_to(dir)?);
    Ok(written)
}

fn completions(mut command: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = command.get_name().to_string();
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| clap_complete::generate_to(shell, &mut command, &name, dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("keepxdp")
            .version("9.9")
            .about("about it")
            .subcommand(clap::Command::new("run").about("run it").arg(clap::Arg::new("use-file").short('f').long("use-file")))
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn man_pages_cover_each_visible_subcommand_in_section_8() {
        let dir = tempfile::tempdir().unwrap();
        let mut names: Vec<String> = generate(command(), Generated::Man, dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["keepxdp-run.8", "keepxdp.8"]);
        let run = fs::read_to_string(dir.path().join("keepxdp-run.8")).unwrap();
        assert!(run.contains(".TH keepxdp-run 8"), "{run}");
        assert!(run.contains("use\\-file"), "{run}");
    }

    #[test]
    fn completions_for_bash_zsh_and_fish() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(command(), Generated::Completions, dir.path()).unwrap();
        let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["keepxdp.bash", "_keepxdp", "keepxdp.fish"]);
        let bash = fs::read_to_string(dir.path().join("keepxdp.bash")).unwrap();
        assert!(bash.contains("--use-file"), "{bash}");
    }
}
