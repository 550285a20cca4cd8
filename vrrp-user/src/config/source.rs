//! Reading the configuration as keepalived does before it parses: `include` (globs, relative
//! to the including file), `@name` / `@^name` conditional lines, `$NAME=value` parameters and
//! their use as `$NAME` or `${NAME}`, and lines continued with a trailing `\`.
//!
//! The output is a list of physical lines with their file and number; lines a conditional
//! turns off are blank, and a `@name ` prefix becomes spaces, so columns stay those of the
//! file.
use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::diagnostic::{Diagnostics, Pos};

/// One physical line, ready for the lexer.
#[derive(Debug, Clone)]
pub struct SourceLine {
    pub file: Arc<PathBuf>,
    pub number: usize,
    pub text: String,
    /// Lines joined by a trailing `\` share one logical line id.
    pub logical: usize,
}

pub struct Reader<'d> {
    /// `-i` / `--config-id`: selects `@name` lines.
    config_id: String,
    parameters: HashMap<String, String>,
    stack: Vec<PathBuf>,
    lines: Vec<SourceLine>,
    logical: usize,
    diagnostics: &'d mut Diagnostics,
}

/// Maximum include depth, as a guard against pathological (non-looping) nesting.
const MAX_INCLUDE_DEPTH: usize = 32;

pub fn read_sources(path: &Path, config_id: &str, diagnostics: &mut Diagnostics) -> Vec<SourceLine> {
    let mut reader = Reader::new(config_id, diagnostics);
    match fs::read_to_string(path) {
        Ok(text) => reader.file(path, &text),
        Err(error) => reader
            .diagnostics
            .fatal(&Pos::file_only(Arc::new(path.to_path_buf())), format!("cannot read the configuration file: {error}")),
    }
    reader.lines
}

/// Reads configuration text that is not in a file (tests, fuzzing); `include` is resolved
/// relative to `path`'s directory.
pub fn read_source_text(path: &Path, text: &str, config_id: &str, diagnostics: &mut Diagnostics) -> Vec<SourceLine> {
    let mut reader = Reader::new(config_id, diagnostics);
    reader.file(path, text);
    reader.lines
}

impl<'d> Reader<'d> {
    fn new(config_id: &str, diagnostics: &'d mut Diagnostics) -> Reader<'d> {
        Reader {
            config_id: config_id.to_string(),
            parameters: HashMap::new(),
            stack: Vec::new(),
            lines: Vec::new(),
            logical: 0,
            diagnostics,
        }
    }

    fn file(&mut self, path: &Path, text: &str) {
        let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.stack.push(canonical);
        let file = Arc::new(path.to_path_buf());
        let mut continued = false;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let pos = |column: usize| Pos { file: file.clone(), line: number, column };
            let mut line = raw.replace('\t', " ");
            if !continued {
                self.logical += 1;
            }
            // `@name rest` / `@^name rest`: keep `rest` only when the config id matches (or,
            // for `@^`, does not).
            if let Some(after) = line.trim_start().strip_prefix('@') {
                let indent = line.len() - line.trim_start().len();
                let (negated, after) = match after.strip_prefix('^') {
                    Some(rest) => (true, rest),
                    None => (false, after),
                };
                let name_len = after.find(char::is_whitespace).unwrap_or(after.len());
                let name = &after[..name_len];
                let selected = (name == self.config_id) != negated;
                let prefix_len = indent + 1 + usize::from(negated) + name_len;
                line = if selected { format!("{}{}", " ".repeat(prefix_len), &line[prefix_len..]) } else { String::new() };
            }
            let trimmed = line.trim_start();
            // `$NAME=value` defines a parameter (the whole line).
            if let Some(definition) = trimmed.strip_prefix('$')
                && let Some((name, value)) = definition.split_once('=')
                    && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        self.parameters.insert(name.to_string(), value.trim().to_string());
                        self.push(&file, number, String::new());
                        continued = false;
                        continue;
                    }
            if line.contains('$') {
                line = self.substitute(&line, &pos(1));
            }
            continued = line.trim_end().ends_with('\\') && !comment_starts_before_end(&line);
            if continued {
                let cut = line.trim_end().len() - 1;
                line.truncate(cut);
            }
            let words: Vec<&str> = strip_comment(&line).split_whitespace().collect();
            if words.first() == Some(&"include") {
                let column = line.find("include").unwrap_or(0) + 1;
                match words.get(1) {
                    Some(pattern) => self.include(path, pattern.trim_matches('"'), &pos(column)),
                    None => self.diagnostics.error(&pos(column), "`include` needs a file name or pattern"),
                }
                self.push(&file, number, String::new());
                continue;
            }
            self.push(&file, number, line);
        }
        self.stack.pop();
    }

    fn push(&mut self, file: &Arc<PathBuf>, number: usize, text: String) {
        self.lines.push(SourceLine { file: file.clone(), number, text, logical: self.logical });
    }

    /// `$NAME` and `${NAME}`; an undefined name is an error and is left as written.
    fn substitute(&mut self, line: &str, pos: &Pos) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            };
            // `$1`, `$$`, `$?`... are the shell's (notify scripts), never parameters.
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                out.push('$');
                rest = after;
                continue;
            }
            match self.parameters.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    let column = line.len() - rest.len() + at + 1;
                    let here = Pos { column, ..pos.clone() };
                    self.diagnostics.warning(
                        &here,
                        format!("${name} is not a defined parameter and is left as written (define it with `${name}=value` to substitute it)"),
                    );
                    out.push_str(&rest[at..at + 1 + consumed]);
                }
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }

    fn include(&mut self, including: &Path, pattern: &str, pos: &Pos) {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diagnostics.fatal(pos, format!("include nesting deeper than {MAX_INCLUDE_DEPTH} files"));
            return;
        }
        let base = including.parent().unwrap_or(Path::new("."));
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => paths.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
            Err(error) => {
                self.diagnostics.error(pos, format!("bad include pattern `{pattern}`: {error}"));
                return;
            }
        };
        if matches.is_empty() {
            // keepalived -t accepts this too ("Config files missing").
            self.diagnostics.warning(pos, format!("include `{pattern}` matches no file"));
            return;
        }
        for path in matches {
            let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if self.stack.contains(&canonical) {
                self.diagnostics.fatal(pos, format!("include loop: {} includes itself", path.display()));
                continue;
            }
            match fs::read_to_string(&path) {
                Ok(text) => self.file(&path, &text),
                Err(error) => self.diagnostics.error(pos, format!("cannot read included file {}: {error}", path.display())),
            }
        }
    }
}

/// The part of a line before a `#` or `!` comment (outside double quotes).
pub fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (index, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return &line[..index],
            _ => {}
        }
    }
    line
}

fn comment_starts_before_end(line: &str) -> bool {
    strip_comment(line).len() < line.trim_end().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, id: &str) -> (Vec<String>, Diagnostics) {
        let mut diagnostics = Diagnostics::default();
        let lines = read_source_text(Path::new("/nonexistent/k.conf"), text, id, &mut diagnostics);
        (lines.into_iter().map(|l| l.text).collect(), diagnostics)
    }

    #[test]
    fn conditional_lines_keep_their_columns_and_only_the_selected_ones() {
        let (lines, _) = read("@high priority 170\n@low priority 85\n@^low x 1\n", "high");
        assert_eq!(lines, ["      priority 170", "", "      x 1"]);
    }

    #[test]
    fn parameters_are_substituted_plain_and_braced() {
        let (lines, diagnostics) = read("$IF=eth0\ninterface $IF\ndev ${IF}x\n", "");
        assert_eq!(lines[1], "interface eth0");
        assert_eq!(lines[2], "dev eth0x");
        assert!(!diagnostics.has_errors());
    }

    #[test]
    fn an_undefined_parameter_is_left_as_written_with_a_warning_at_its_dollar() {
        let (lines, diagnostics) = read("interface $NOPE\n", "");
        assert_eq!(lines[0], "interface $NOPE");
        assert_eq!(diagnostics.items[0].to_string(), "/nonexistent/k.conf:1:11: warning: $NOPE is not a defined parameter and is left as written (define it with `$NOPE=value` to substitute it)");
    }

    #[test]
    fn shell_positional_parameters_in_scripts_are_not_parameters() {
        let (lines, diagnostics) = read("notify \"/bin/sh -c 'echo $2 $$'\"\n", "");
        assert_eq!(lines[0], "notify \"/bin/sh -c 'echo $2 $$'\"");
        assert!(diagnostics.items.is_empty());
    }

    #[test]
    fn a_trailing_backslash_continues_the_logical_line() {
        let mut diagnostics = Diagnostics::default();
        let lines = read_source_text(Path::new("k.conf"), "a b \\\n  c\nd\n", "", &mut diagnostics);
        assert_eq!(lines[0].logical, lines[1].logical);
        assert_ne!(lines[1].logical, lines[2].logical);
        assert_eq!(lines[0].text, "a b ");
    }
}
