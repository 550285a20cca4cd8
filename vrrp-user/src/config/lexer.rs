//! keepalived.conf tokens: words, quoted strings and braces, with `#` and `!` comments to the
//! end of the line. Braces are tokens of their own even when glued to a word (`vrrp_instance
//! VI_1{`), as keepalived accepts.
use std::path::Path;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// 1-based line and column of the token's first character.
    pub line: usize,
    pub column: usize,
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

pub fn tokenize(file: &Path, source: &str) -> Result<Vec<Token>, ConfigError> {
    let mut tokens = Vec::new();
    for (line_index, line) in source.lines().enumerate() {
        let line_number = line_index + 1;
        let chars: Vec<char> = line.chars().collect();
        let mut at = 0;
        while at < chars.len() {
            let c = chars[at];
            let column = at + 1;
            if c.is_whitespace() {
                at += 1;
            } else if c == '#' || c == '!' {
                break;
            } else if c == '{' || c == '}' {
                tokens.push(Token { text: c.to_string(), line: line_number, column, quoted: false });
                at += 1;
            } else if c == '"' {
                let start = at + 1;
                let Some(length) = chars[start..].iter().position(|&q| q == '"') else {
                    return Err(ConfigError {
                        file: file.to_path_buf(),
                        line: line_number,
                        column,
                        message: "unterminated quoted string".into(),
                    });
                };
                let text = chars[start..start + length].iter().collect();
                tokens.push(Token { text, line: line_number, column, quoted: true });
                at = start + length + 1;
            } else {
                let start = at;
                while at < chars.len()
                    && !chars[at].is_whitespace()
                    && !matches!(chars[at], '{' | '}' | '"')
                {
                    at += 1;
                }
                let text = chars[start..at].iter().collect();
                tokens.push(Token { text, line: line_number, column, quoted: false });
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<(String, usize, usize)> {
        tokenize(Path::new("t.conf"), source)
            .unwrap()
            .into_iter()
            .map(|t| (t.text, t.line, t.column))
            .collect()
    }

    #[test]
    fn comments_run_to_the_end_of_the_line_with_hash_or_bang() {
        assert_eq!(
            texts("a b # c\n! d\n  e"),
            vec![("a".into(), 1, 1), ("b".into(), 1, 3), ("e".into(), 3, 3)]
        );
    }

    #[test]
    fn braces_are_tokens_even_when_glued_to_words() {
        let got: Vec<String> = texts("vrrp_instance VI_1{\n}").into_iter().map(|t| t.0).collect();
        assert_eq!(got, ["vrrp_instance", "VI_1", "{", "}"]);
    }

    #[test]
    fn quoted_strings_keep_spaces_and_braces() {
        let tokens = tokenize(Path::new("t.conf"), r#"script "/bin/x { arg""#).unwrap();
        assert_eq!(tokens[1].text, "/bin/x { arg");
        assert!(tokens[1].quoted && !tokens[1].is_open());
    }

    #[test]
    fn an_unterminated_quote_is_an_error_at_its_position() {
        let error = tokenize(Path::new("k.conf"), "a\n  notify \"/bin/x").unwrap_err();
        assert_eq!(error.to_string(), "k.conf:2:10: error: unterminated quoted string");
    }
}
