//! `keepxdp check` against keepalived 2.2.7's own verdicts, file by file, on the corpus in
//! tests/configs/corpus (keepalived's samples, the man page's examples, one file per
//! preprocessor feature, files keepalived rejects; `keepalived -t` recorded beside each by
//! record-verdicts.sh, with the config id `kxcorpus` and only eth0..eth2 present).
//!
//! Agreement, by keepalived's exit code (verdicts.tsv):
//! - 0 (nothing reported): keepxdp reports no error.
//! - 5 (it reported problems, warnings and deprecations included, and would run the file):
//!   keepxdp reports at least one problem at file:line:col, warning or error.
//! - any other (missing parameter, fatal, failed include check): keepxdp reports an error at
//!   file:line:col and its exit code is not 0.
//!
//! What `check` does is what this test does: load (with the recorder's interfaces and config
//! id) and the balancer's plan warnings (what `run` skips or treats differently).
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use keepxdp::config::{Environment, LoadOptions, Severity, load};

/// Files keepxdp does not agree on yet, and why.
const KNOWN: &[(&str, &str)] = &[(
    "samples-vrrp.static_ipaddress.conf",
    "keepalived warns that a static route with no interface is not tracked; keepxdp never tracks static routes and says nothing",
)];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs/corpus")
}

/// (file, keepalived's exit code) from verdicts.tsv.
fn verdicts() -> Vec<(String, i32)> {
    let text = std::fs::read_to_string(corpus().join("verdicts.tsv")).expect("verdicts.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[0].to_string(), fields[1].parse().expect("exit code"))
        })
        .collect()
}

#[test]
fn keepxdp_check_agrees_with_keepalived_on_every_corpus_file_but_the_known_ones() {
    let options = LoadOptions {
        config_id: Some("kxcorpus".into()),
        environment: Environment { interfaces: Some(["lo", "eth0", "eth1", "eth2"].map(String::from).into()) },
    };
    let verdicts = verdicts();
    assert!(verdicts.len() >= 80, "the corpus has {} files", verdicts.len());
    let mut disagree = BTreeSet::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (name, theirs) in &verdicts {
        let path = corpus().join(name);
        assert_eq!(
            std::fs::read_to_string(path.with_extension("verdict")).unwrap().lines().next(),
            Some(if *theirs == 0 { "accept" } else { "reject" }),
            "{name}: verdict file and verdicts.tsv differ"
        );
        let started = Instant::now();
        let loaded = load(&path, &options);
        let balancer = loaded.runnable().map(|model| keepxdp::lvs::plan(model).1).unwrap_or_default();
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, name.clone());
        }
        let located = |d: &&keepxdp::config::Diagnostic| d.pos.line > 0 && d.pos.column > 0;
        let errors = loaded.diagnostics.items.iter().filter(|d| d.severity == Severity::Error).filter(located).count();
        let problems = loaded.diagnostics.items.iter().filter(located).count() + balancer.len();
        let agrees = match theirs {
            0 => !loaded.diagnostics.has_errors(),
            5 => problems > 0,
            _ => errors > 0 && loaded.diagnostics.exit_code() != 0,
        };
        let first = loaded.diagnostics.items.first().map(|d| d.to_string()).or(balancer.first().cloned()).unwrap_or_default();
        println!("{name:<42} keepalived {theirs} keepxdp {:>2} {:>4} µs {}", loaded.diagnostics.exit_code(), took.as_micros(), if agrees { "agree" } else { "DISAGREE" });
        if !agrees {
            println!("    {first}");
            disagree.insert(name.as_str());
        }
    }
    let agreed = verdicts.len() - disagree.len();
    println!("agreement {agreed}/{}; slowest {} in {:?}", verdicts.len(), slowest.1, slowest.0);
    let known: BTreeSet<&str> = KNOWN.iter().map(|(name, _)| *name).collect();
    assert_eq!(disagree, known, "disagreements changed: fix the new ones, or take fixed ones out of KNOWN");
    // `check` reads every corpus file in well under 100 ms (a debug build; release is faster).
    assert!(slowest.0 < Duration::from_millis(100), "{} took {:?}", slowest.1, slowest.0);
}
