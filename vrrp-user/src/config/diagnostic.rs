//! Diagnostics: `FILE:LINE:COL: error|warning: message`, as compilers print them.
use std::{fmt, path::PathBuf, sync::Arc};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Where something is: 1-based line and column in a file. Line 0 means the file as a whole.
/// Serialized as `FILE:LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn file_only(file: Arc<PathBuf>) -> Pos {
        Pos { file, line: 0, column: 0 }
    }
}

impl Serialize for Pos {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {severity}: {}", self.pos, self.message)
    }
}

/// What a check found, in the order found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    /// Set by errors after which the configuration cannot be used at all (unreadable file,
    /// unbalanced braces, include loop).
    pub fatal: bool,
}

impl Diagnostics {
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.items.push(Diagnostic { severity: Severity::Error, pos: pos.clone(), message: message.into() });
    }

    pub fn fatal(&mut self, pos: &Pos, message: impl Into<String>) {
        self.fatal = true;
        self.error(pos, message);
    }

    pub fn warning(&mut self, pos: &Pos, message: impl Into<String>) {
        self.items.push(Diagnostic { severity: Severity::Warning, pos: pos.clone(), message: message.into() });
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// `keepxdp check`'s exit code: 0 usable (warnings allowed), 4 errors but keepxdp would
    /// run with the bad parts skipped, 3 cannot run at all.
    pub fn exit_code(&self) -> i32 {
        if self.fatal {
            3
        } else if self.has_errors() {
            4
        } else {
            0
        }
    }
}
