use std::{fmt, path::PathBuf};

/// A problem in a configuration file, located as `FILE:LINE:COL` (1-based). Line 0 means
/// the file as a whole (it could not be read).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: error: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}
