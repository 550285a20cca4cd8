//! keepalived.conf tokens: words, quoted strings and braces, with `#` and `!` comments to the
//! end of the line. Braces are tokens of their own even when glued to a word
//! (`vrrp_instance VI_1{`), as keepalived accepts. Every token keeps its file:line:col.
use super::{
    diagnostic::{Diagnostics, Pos},
    source::SourceLine,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub pos: Pos,
    /// Tokens of one logical line (physical lines joined by `\`) share this id.
    pub logical: usize,
    /// Was written in double quotes (so `{` inside is text, not a brace).
    pub quoted: bool,
}

impl Token {
    pub fn is_open(&self) -> bool {
        !self.quoted && self.text == "{"
    }
    pub fn is_close(&self) -> bool {
        !self.quoted && self.text == "}"
    }
}

pub fn tokenize(lines: &[SourceLine], diagnostics: &mut Diagnostics) -> Vec<Token> {
    let mut tokens = Vec::new();
    for line in lines {
        let chars: Vec<char> = line.text.chars().collect();
        let pos = |at: usize| Pos { file: line.file.clone(), line: line.number, column: at + 1 };
        let mut at = 0;
        while at < chars.len() {
            let c = chars[at];
            if c.is_whitespace() {
                at += 1;
            } else if c == '#' || c == '!' {
                break;
            } else if c == '{' || c == '}' {
                tokens.push(Token { text: c.to_string(), pos: pos(at), logical: line.logical, quoted: false });
                at += 1;
            } else if c == '"' {
                let start = at + 1;
                let Some(length) = chars[start..].iter().position(|&q| q == '"') else {
                    diagnostics.error(&pos(at), "unterminated quoted string");
                    let text = chars[start..].iter().collect();
                    tokens.push(Token { text, pos: pos(at), logical: line.logical, quoted: true });
                    break;
                };
                let text = chars[start..start + length].iter().collect();
                tokens.push(Token { text, pos: pos(at), logical: line.logical, quoted: true });
                at = start + length + 1;
            } else {
                let start = at;
                while at < chars.len() && !chars[at].is_whitespace() && !matches!(chars[at], '{' | '}' | '"') {
                    at += 1;
                }
                let text = chars[start..at].iter().collect();
                tokens.push(Token { text, pos: pos(start), logical: line.logical, quoted: false });
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::source::read_source_text;

    fn lex(source: &str) -> (Vec<Token>, Diagnostics) {
        let mut diagnostics = Diagnostics::default();
        let lines = read_source_text(Path::new("t.conf"), source, "", &mut diagnostics);
        let tokens = tokenize(&lines, &mut diagnostics);
        (tokens, diagnostics)
    }

    fn texts(source: &str) -> Vec<(String, usize, usize)> {
        lex(source).0.into_iter().map(|t| (t.text, t.pos.line, t.pos.column)).collect()
    }

    #[test]
    fn comments_run_to_the_end_of_the_line_with_hash_or_bang() {
        assert_eq!(texts("a b # c\n! d\n  e"), vec![("a".into(), 1, 1), ("b".into(), 1, 3), ("e".into(), 3, 3)]);
    }

    #[test]
    fn braces_are_tokens_even_when_glued_to_words() {
        let got: Vec<String> = texts("vrrp_instance VI_1{\n}").into_iter().map(|t| t.0).collect();
        assert_eq!(got, ["vrrp_instance", "VI_1", "{", "}"]);
    }

    #[test]
    fn quoted_strings_keep_spaces_braces_and_comment_marks() {
        let (tokens, _) = lex(r#"script "/bin/x { arg # 1""#);
        assert_eq!(tokens[1].text, "/bin/x { arg # 1");
        assert!(tokens[1].quoted && !tokens[1].is_open());
    }

    #[test]
    fn an_unterminated_quote_is_an_error_at_its_position() {
        let (_, diagnostics) = lex("a\n  notify \"/bin/x");
        assert_eq!(diagnostics.items[0].to_string(), "t.conf:2:10: error: unterminated quoted string");
    }
}
