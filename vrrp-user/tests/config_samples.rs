//! Every sample Debian's keepalived package ships parses with zero errors (warnings are
//! allowed: they name what keepxdp keeps but does not implement yet).
use std::path::Path;

use keepxdp::config::{LoadOptions, load};

const SAMPLES: &str = "/usr/share/doc/keepalived/samples";

#[test]
fn every_debian_keepalived_sample_parses_with_zero_errors() {
    let directory = Path::new(SAMPLES);
    assert!(
        directory.is_dir(),
        "{SAMPLES} is missing: install Debian's keepalived package (cargo xtask setup does)"
    );
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("keepalived.conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "expected Debian's ~25 samples, found {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        // The conditional sample is written for `-i high` / `-i low`.
        let options = LoadOptions { config_id: Some("high".into()), ..LoadOptions::default() };
        let loaded = load(file, &options);
        let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
        println!(
            "{}: {} error(s), {} warning(s)",
            file.file_name().unwrap().to_string_lossy(),
            errors.len(),
            loaded.diagnostics.warnings().count()
        );
        for warning in loaded.diagnostics.warnings() {
            println!("    {warning}");
        }
        if !errors.is_empty() {
            failures.push(errors.join("\n"));
        }
    }
    assert!(failures.is_empty(), "samples with errors:\n{}", failures.join("\n"));
}
