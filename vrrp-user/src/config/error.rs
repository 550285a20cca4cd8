use std::path::PathBuf;

/// A problem in a configuration file, located as `FILE:LINE:COL` (1-based).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}:{line}:{column}: error: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}
