//! keepalived.conf: read (includes, conditionals, parameters) → tokens (file:line:col) →
//! statement tree → typed model (keepalived's defaults) → validation. Every problem is a
//! located diagnostic; nothing is silently ignored: keywords keepalived knows but keepxdp
//! does not implement are kept and warned about, unknown ones are errors with a suggestion.
mod build;
pub mod diagnostic;
pub mod keyword_table;
mod keywords;
pub mod lexer;
pub mod model;
mod replicate;
pub mod source;
pub mod tree;
mod validate;

use std::path::{Path, PathBuf};

pub use build::Ctx;
pub use diagnostic::{Diagnostic, Diagnostics, Pos, Severity};
pub use model::{Config, Family};
pub use validate::{Environment, system_interfaces};

/// How to read a configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// keepalived's `-i` / `--config-id`: selects `@NAME` lines. keepalived's default is the
    /// host name's first label.
    pub config_id: Option<String>,
    pub environment: Environment,
}

/// The model (absent only when the file could not be read at all) and the diagnostics.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Option<Config>,
    pub diagnostics: Diagnostics,
}

impl Loaded {
    /// Usable: it may have warnings and even errors keepalived would run with, but nothing
    /// fatal.
    pub fn runnable(&self) -> Option<&Config> {
        if self.diagnostics.fatal { None } else { self.config.as_ref() }
    }
}

pub fn default_config_id() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|name| name.to_string_lossy().split('.').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

pub fn load(path: &Path, options: &LoadOptions) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let config_id = options.config_id.clone().unwrap_or_else(default_config_id);
    let lines = source::read_sources(path, &config_id, &mut diagnostics);
    finish(lines, options, diagnostics)
}

/// As `load`, for text that is not in a file; `include` is relative to `path`'s directory.
pub fn load_str(path: &Path, text: &str, options: &LoadOptions) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let config_id = options.config_id.clone().unwrap_or_else(default_config_id);
    let lines = source::read_source_text(path, text, &config_id, &mut diagnostics);
    finish(lines, options, diagnostics)
}

fn finish(lines: Vec<source::SourceLine>, options: &LoadOptions, mut diagnostics: Diagnostics) -> Loaded {
    if diagnostics.fatal && lines.is_empty() {
        return Loaded { config: None, diagnostics };
    }
    let tokens = lexer::tokenize(&lines, &mut diagnostics);
    let nodes = tree::parse_tree(&tokens, &mut diagnostics);
    let mut config = build::build(&nodes, &mut diagnostics);
    validate::validate(&mut config, &options.environment, &mut diagnostics);
    Loaded { config: Some(config), diagnostics }
}

/// The path keepalived reads by default.
pub fn default_path() -> PathBuf {
    PathBuf::from("/etc/keepalived/keepalived.conf")
}
