//! Reading the configuration as keepalived 2.2.7 does before it parses: `include` (globs,
//! relative to the including file), `@name` / `@^name` conditional lines (also when a
//! parameter produced the `@`), `$NAME=value` parameters, over several lines with a trailing
//! `\` (a blank line ends them), their use as `$NAME` or `${NAME}` (substituted when used, so
//! a definition may name parameters defined later; a multi-line one ending a line gives its
//! lines, which may themselves define parameters), the built-ins `${_PWD}`, `${_INSTANCE}`,
//! `${_RANDOM [MIN [MAX]]}`, `${_HASH}`, `${_BANG}`, and `~SEQ`/`~SEQx`/`~LST` replication
//! (`replicate`).
//!
//! The output is a list of physical lines with their file and number; lines a conditional
//! turns off are blank, and a `@name ` prefix becomes spaces, so columns stay those of the
//! file (lines a parameter or ~SEQ produced carry the number of the line that used it).
use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    diagnostic::{Diagnostics, Pos},
    replicate,
};

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
    /// Each parameter's lines (one unless defined over several with `\\`).
    parameters: HashMap<String, Vec<String>>,
    stack: Vec<PathBuf>,
    lines: Vec<SourceLine>,
    logical: usize,
    diagnostics: &'d mut Diagnostics,
}

/// Parameters naming parameters: at most this deep (a definition naming itself stops here).
const MAX_SUBSTITUTION_DEPTH: usize = 16;

/// `NAME=value` after a `$`.
fn definition(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.strip_prefix('$')?.split_once('=')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some((name, value))
}

/// `line` without a trailing `\\`, and whether it had one.
fn continuation(line: &str) -> (&str, bool) {
    match line.trim_end().strip_suffix('\\') {
        Some(text) => (text, true),
        None => (line, false),
    }
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
        // A `$NAME=` definition continued with `\`: its name and lines so far.
        let mut defining: Option<(String, Vec<String>)> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.replace('\t', " ");
            if let Some((name, mut value)) = defining.take() {
                // A blank line ends a multi-line definition.
                if !line.trim().is_empty() {
                    let (text, more) = continuation(&line);
                    value.push(text.trim().to_string());
                    if more {
                        defining = Some((name, value));
                        self.push(&file, number, String::new());
                        continue;
                    }
                }
                self.parameters.insert(name, value);
                self.push(&file, number, String::new());
                continue;
            }
            let Some(line) = self.conditional(line) else {
                self.push(&file, number, String::new());
                continue;
            };
            // `$NAME=value` defines a parameter (the whole line); a trailing `\` continues
            // the value on the next lines.
            if let Some((name, value)) = definition(line.trim_start()) {
                let (text, more) = continuation(value);
                let first: Vec<String> = Some(text.trim().to_string()).filter(|t| !t.is_empty()).into_iter().collect();
                if more {
                    defining = Some((name.to_string(), first));
                } else {
                    self.parameters.insert(name.to_string(), first);
                }
                self.push(&file, number, String::new());
                continue;
            }
            self.expand(path, &file, number, line, 0);
        }
        if let Some((name, value)) = defining {
            self.parameters.insert(name, value);
        }
        self.stack.pop();
    }

    /// `@name rest` / `@^name rest`: `rest` (columns kept) when the config id matches (or,
    /// for `@^`, does not); None for a line turned off.
    fn conditional(&self, line: String) -> Option<String> {
        let Some(after) = line.trim_start().strip_prefix('@') else { return Some(line) };
        let indent = line.len() - line.trim_start().len();
        let (negated, after) = match after.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, after),
        };
        let name_len = after.find(char::is_whitespace).unwrap_or(after.len());
        let name = &after[..name_len];
        let selected = (name == self.config_id) != negated;
        let prefix_len = indent + 1 + usize::from(negated) + name_len;
        selected.then(|| format!("{}{}", " ".repeat(prefix_len), &line[prefix_len..]))
    }

    /// One line after conditionals and definitions: `~SEQ`/`~LST` replication, parameters
    /// (a multi-line one ending the line gives several lines), a conditional a parameter
    /// produced, `\` continuation, `include`.
    fn expand(&mut self, path: &Path, file: &Arc<PathBuf>, number: usize, line: String, depth: usize) {
        let pos = |column: usize| Pos { file: file.clone(), line: number, column };
        if depth > MAX_SUBSTITUTION_DEPTH {
            self.diagnostics.error(&pos(1), format!("parameters and ~SEQ/~LST nest more than {MAX_SUBSTITUTION_DEPTH} levels"));
            return;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // A definition a multi-line parameter's value holds (file() reads the others).
        if depth > 0
            && let Some((name, value)) = definition(trimmed)
        {
            self.parameters.insert(name.to_string(), vec![value.trim().to_string()]);
            return;
        }
        if let Some((kind, arguments, length)) = replicate::header(trimmed) {
            let arguments = self.substitute(arguments, &pos(indent + 1), 0).join(" ");
            let rest = format!("{}{}", " ".repeat(indent + length), &trimmed[length..]);
            match replicate::assignments(kind, &arguments) {
                Ok(replicas) => {
                    for assignment in replicas {
                        let saved: Vec<(String, Option<Vec<String>>)> = assignment
                            .iter()
                            .map(|(name, value)| (name.clone(), self.parameters.insert(name.clone(), vec![value.clone()])))
                            .collect();
                        self.expand(path, file, number, rest.clone(), depth + 1);
                        for (name, old) in saved {
                            match old {
                                Some(old) => self.parameters.insert(name, old),
                                None => self.parameters.remove(&name),
                            };
                        }
                    }
                }
                Err(error) => self.diagnostics.error(&pos(indent + 1), error),
            }
            return;
        }
        let produced = if line.contains('$') { self.substitute(&line, &pos(1), 0) } else { vec![line] };
        if produced.len() > 1 {
            // A multi-line parameter's lines: each read as a line of its own (they may define
            // parameters, start with ~SEQ/~LST, use parameters defined just before).
            for line in produced {
                self.expand(path, file, number, line, depth + 1);
            }
            return;
        }
        for line in produced {
            self.logical += 1;
            let Some(mut line) = (if line.trim_start().starts_with('@') { self.conditional(line) } else { Some(line) }) else {
                continue;
            };
            // keepalived continues only `$NAME=` definitions with a trailing `\\`; on any
            // other line it is dropped, and the next line is a line of its own.
            if line.trim_end().ends_with('\\') && !comment_starts_before_end(&line) {
                let cut = line.trim_end().len() - 1;
                self.diagnostics.warning(
                    &pos(cut + 1),
                    "a trailing `\\` continues only `$NAME=` definitions (keepalived 2.2.7); the next line is read on its own",
                );
                line.truncate(cut);
            }
            let words: Vec<&str> = strip_comment(&line).split_whitespace().collect();
            // `include` and its checking variants: `includea` (all checks) and `includem`
            // (must match) finding no file is an error, as keepalived's "Config files
            // missing"; the others (`includer`: what matches must be readable...) read as
            // `include`.
            if let Some(&keyword) = words.first()
                && matches!(keyword, "include" | "includea" | "includeb" | "includem" | "includer" | "includet" | "includew")
            {
                let column = line.find(keyword).unwrap_or(0) + 1;
                let required = matches!(keyword, "includea" | "includem");
                match words.get(1) {
                    Some(pattern) => self.include(path, pattern.trim_matches('"'), &pos(column), required),
                    None => self.diagnostics.error(&pos(column), "`include` needs a file name or pattern"),
                }
                self.push(file, number, String::new());
                continue;
            }
            self.push(file, number, line);
        }
    }

    fn push(&mut self, file: &Arc<PathBuf>, number: usize, text: String) {
        self.lines.push(SourceLine { file: file.clone(), number, text, logical: self.logical });
    }

    /// A built-in parameter (keepalived 2.2.7's parser): `_PWD`, the directory of the file
    /// being read; `_INSTANCE`, the config id; `_RANDOM [MIN [MAX]]`; `_HASH` and `_BANG`,
    /// `#` and `!` (comment marks again unless quoted). A `$NAME=` definition overrides them.
    fn builtin(&self, reference: &str) -> Option<String> {
        let mut words = reference.split_whitespace();
        let name = words.next()?;
        let arguments: Vec<&str> = words.collect();
        let plain = arguments.is_empty();
        match name {
            "_PWD" if plain => Some(
                self.stack.last().and_then(|f| f.parent()).map(|d| d.display().to_string()).unwrap_or_else(|| ".".into()),
            ),
            "_INSTANCE" if plain => Some(self.config_id.clone()),
            "_HASH" if plain => Some("#".into()),
            "_BANG" if plain => Some("!".into()),
            "_RANDOM" => {
                let numbers: Vec<u64> = arguments.iter().map(|a| a.parse().ok()).collect::<Option<_>>()?;
                let (min, max) = match numbers[..] {
                    [] => (0, 32767),
                    [min] => (min, 32767),
                    [min, max, ..] => (min, max),
                };
                let span = max.checked_sub(min)? + 1;
                let bytes: [u8; 8] = crate::check::random::random_bytes(8).try_into().ok()?;
                Some((u64::from_le_bytes(bytes) % span + min).to_string())
            }
            _ => None,
        }
    }

    /// `$NAME` and `${NAME}`, their values substituted in turn (a definition may name
    /// parameters defined after it). A multi-line parameter that ends the line gives one line
    /// per line of its value. An undefined name is a warning and is left as written.
    fn substitute(&mut self, line: &str, pos: &Pos, depth: usize) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (reference, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            };
            let name = reference.split_whitespace().next().unwrap_or_default();
            // `$1`, `$$`, `$?`... are the shell's (notify scripts), never parameters.
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                out.push('$');
                rest = after;
                continue;
            }
            let value = match self.parameters.get(name) {
                Some(value) if reference == name => Some(value.clone()),
                _ => self.builtin(reference).map(|v| vec![v]),
            };
            let column = line.len() - rest.len() + at + 1;
            rest = &after[consumed..];
            match value {
                Some(value) if depth >= MAX_SUBSTITUTION_DEPTH => {
                    let here = Pos { column, ..pos.clone() };
                    self.diagnostics.error(&here, format!("${name} refers to itself (more than {MAX_SUBSTITUTION_DEPTH} levels)"));
                    out.push_str(&value.join(" "));
                }
                // A multi-line value ending the line: its lines as they are (`expand` reads
                // each in turn, so a definition among them applies to the lines after it).
                Some(value) if value.len() > 1 && rest.trim().is_empty() => {
                    out.push_str(&value[0]);
                    lines.push(std::mem::take(&mut out));
                    lines.extend(value[1..].iter().cloned());
                    return lines;
                }
                Some(value) => {
                    let value: Vec<String> = value.iter().flat_map(|v| self.substitute(v, pos, depth + 1)).collect();
                    out.push_str(&value.join(" "));
                }
                None => {
                    let here = Pos { column, ..pos.clone() };
                    self.diagnostics.warning(
                        &here,
                        format!("${name} is not a defined parameter and is left as written (define it with `${name}=value` to substitute it)"),
                    );
                    let written = &line[column - 1..column + consumed];
                    out.push_str(written);
                }
            }
        }
        out.push_str(rest);
        lines.push(out);
        lines
    }

    fn include(&mut self, including: &Path, pattern: &str, pos: &Pos, required: bool) {
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
        if matches.is_empty() && required {
            self.diagnostics.error(pos, format!("include `{pattern}` matches no file (a checking include needs one)"));
            return;
        }
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
    fn a_trailing_backslash_on_an_ordinary_line_is_dropped_with_a_warning_as_keepalived_does() {
        let (lines, diagnostics) = read("a b \\\n  c\nd\n", "");
        assert_eq!(lines, ["a b ", "  c", "d"]);
        assert_eq!(diagnostics.items[0].to_string(), "/nonexistent/k.conf:1:5: warning: a trailing `\\` continues only `$NAME=` definitions (keepalived 2.2.7); the next line is read on its own");
    }

    #[test]
    fn builtin_parameters_pwd_instance_random_hash_bang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.conf");
        std::fs::write(&path, "a ${_PWD}/x\nb ${_INSTANCE}\nc ${_RANDOM 7 7} ${_RANDOM}\nd \"${_HASH}${_BANG}\"\n$_INSTANCE=mine\ne ${_INSTANCE}\n").unwrap();
        let mut diagnostics = Diagnostics::default();
        let lines: Vec<String> = read_sources(&path, "lb1", &mut diagnostics).into_iter().map(|l| l.text).collect();
        let dir = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(lines[0], format!("a {}/x", dir.display()));
        assert_eq!(lines[1], "b lb1");
        let random: Vec<&str> = lines[2].split(' ').collect();
        assert_eq!(random[1], "7");
        assert!(random[2].parse::<u32>().is_ok_and(|n| n <= 32767), "{random:?}");
        assert_eq!(lines[3], "d \"#!\"");
        assert_eq!(lines[5], "e mine");
        assert!(diagnostics.items.is_empty(), "{:?}", diagnostics.items);
    }

    #[test]
    fn a_multi_line_parameter_gives_its_lines_substituted_where_used() {
        let text = "$RS= \\\nreal_server ${IP} 80 { \\\n weight 1 \\\n}\n\nvs {\n $IP=10.0.0.1\n $RS\n $IP=10.0.0.2\n $RS\n}\n";
        let (lines, diagnostics) = read(text, "");
        let lines: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines, ["vs {", "real_server 10.0.0.1 80 {", "weight 1", "}", "real_server 10.0.0.2 80 {", "weight 1", "}", "}"]);
        assert!(diagnostics.items.is_empty(), "{:?}", diagnostics.items);
    }

    #[test]
    fn a_definition_may_name_a_parameter_defined_after_it() {
        let (lines, _) = read("$BASE=10.2.${SUB}\n$SUB=7\nip $BASE.1\n", "");
        assert_eq!(lines[2], "ip 10.2.7.1");
    }

    #[test]
    fn seq_and_lst_replicate_the_rest_of_the_line_and_nest() {
        let (lines, diagnostics) = read("  ~SEQ(N, 2) ~LST(X, a, b) v${N}${X}\n", "");
        let lines: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
        assert_eq!(lines, ["v1a", "v1b", "v2a", "v2b"]);
        assert!(diagnostics.items.is_empty(), "{:?}", diagnostics.items);
        let (_, diagnostics) = read("~SEQ(N, 1, 0, 3) x\n", "");
        assert_eq!(diagnostics.items[0].to_string(), "/nonexistent/k.conf:1:1: error: ~SEQ step 0 never ends");
    }

    #[test]
    fn a_conditional_a_parameter_produced_selects_its_line() {
        let (lines, _) = read("$ON=@lb1\n$OFF=@lb2\n$ON a\n$OFF b\n", "lb1");
        assert_eq!(lines[2].trim(), "a");
        assert_eq!(lines.len(), 3, "{lines:?}");
    }
}
