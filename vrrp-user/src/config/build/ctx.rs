//! The toolkit every block builder uses: typed reads of a statement's arguments, each
//! reporting a located diagnostic and returning None on bad input, so one bad value never
//! hides the rest of the file.
use std::{net::IpAddr, str::FromStr};

use crate::config::{
    diagnostic::{Diagnostics, Pos},
    lexer::Token,
    model::Kept,
    tree::Node,
};

pub struct Ctx<'d> {
    pub diagnostics: &'d mut Diagnostics,
}

impl Ctx<'_> {
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.diagnostics.error(pos, message);
    }

    pub fn warning(&mut self, pos: &Pos, message: impl Into<String>) {
        self.diagnostics.warning(pos, message);
    }

    /// The first argument, or an error naming the keyword. Extra arguments are warned about.
    pub fn arg<'n>(&mut self, node: &'n Node) -> Option<&'n Token> {
        match node.args.first() {
            None => {
                self.error(&node.name.pos, format!("`{}` needs a value", node.keyword()));
                None
            }
            Some(first) => {
                if let Some(extra) = node.args.get(1) {
                    self.warning(&extra.pos, format!("`{}` takes one value; `{}` and what follows are ignored", node.keyword(), extra.text));
                }
                Some(first)
            }
        }
    }

    /// The first argument; later ones are the caller's business (no warning).
    pub fn arg_first(&mut self, node: &Node) -> Option<String> {
        match node.args.first() {
            Some(first) => Some(first.text.clone()),
            None => {
                self.error(&node.name.pos, format!("`{}` needs a value", node.keyword()));
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node) -> Option<String> {
        self.arg(node).map(|t| t.text.clone())
    }

    /// All arguments joined by spaces (scripts with their arguments, `user [group]`).
    pub fn rest(&mut self, node: &Node) -> Option<String> {
        if node.args.is_empty() {
            self.error(&node.name.pos, format!("`{}` needs a value", node.keyword()));
            return None;
        }
        Some(node.args.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" "))
    }

    /// An integer in `min..=max`, keepalived's message when outside.
    pub fn int_token<T>(&mut self, token: &Token, min: i64, max: i64) -> Option<T>
    where
        T: TryFrom<i64>,
    {
        let Ok(value) = token.text.parse::<i64>() else {
            self.error(&token.pos, format!("`{}` is not a number", token.text));
            return None;
        };
        if value < min || value > max {
            self.error(&token.pos, format!("number {value} is outside the range [{min}, {max}]"));
            return None;
        }
        T::try_from(value).ok()
    }

    pub fn int<T: TryFrom<i64>>(&mut self, node: &Node, min: i64, max: i64) -> Option<T> {
        let token = self.arg(node)?;
        self.int_token(token, min, max)
    }

    /// A decimal number of seconds (or any real) in `min..=max`.
    pub fn real(&mut self, node: &Node, min: f64, max: f64) -> Option<f64> {
        let token = self.arg(node)?;
        self.real_token(token, min, max)
    }

    pub fn real_token(&mut self, token: &Token, min: f64, max: f64) -> Option<f64> {
        let Ok(value) = token.text.parse::<f64>() else {
            self.error(&token.pos, format!("`{}` is not a number", token.text));
            return None;
        };
        if !(min..=max).contains(&value) || !value.is_finite() {
            self.error(&token.pos, format!("number {} is outside the range [{min}, {max}]", token.text));
            return None;
        }
        Some(value)
    }

    pub fn ip_token(&mut self, token: &Token) -> Option<IpAddr> {
        match IpAddr::from_str(&token.text) {
            Ok(address) => Some(address),
            Err(_) => {
                self.error(&token.pos, format!("`{}` is not an IP address", token.text));
                None
            }
        }
    }

    pub fn ip(&mut self, node: &Node) -> Option<IpAddr> {
        let token = self.arg(node)?;
        self.ip_token(token)
    }

    /// A keyword that takes no value; a value is ignored with a warning.
    pub fn flag(&mut self, node: &Node) -> bool {
        if let Some(extra) = node.args.first() {
            self.warning(&extra.pos, format!("`{}` takes no value; `{}` is ignored", node.keyword(), extra.text));
        }
        true
    }

    /// A `{ }` block's statements, or an error when the keyword has none.
    pub fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        match &node.block {
            Some(children) => children,
            None => {
                self.error(&node.name.pos, format!("`{}` needs a `{{ ... }}` block", node.keyword()));
                &[]
            }
        }
    }

    /// Statements of a list block (`unicast_peer { ... }`), or, for keywords that also take
    /// their list inline, the arguments.
    pub fn list_tokens<'n>(&mut self, node: &'n Node) -> Vec<&'n Token> {
        match &node.block {
            Some(children) => children.iter().flat_map(|child| child.words()).collect(),
            None if !node.args.is_empty() => node.args.iter().collect(),
            None => {
                self.error(&node.name.pos, format!("`{}` needs a `{{ ... }}` block", node.keyword()));
                Vec::new()
            }
        }
    }

    /// A keyword keepalived knows that keepxdp does not implement yet: kept, and warned about.
    pub fn not_implemented(&mut self, node: &Node, block: &str) -> Kept {
        self.warning(
            &node.name.pos,
            format!("`{}` in {block} is recognized but not implemented by keepxdp yet; it is kept and has no effect", node.keyword()),
        );
        Kept::of(node)
    }

    /// The known keyword closest to `word`, if it is close enough to be a misspelling.
    pub fn suggestion<'k>(word: &str, known: &[&[&'k str]]) -> Option<&'k str> {
        known
            .iter()
            .flat_map(|list| list.iter())
            .map(|candidate| (strsim::damerau_levenshtein(word, candidate), *candidate))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
            .min()
            .map(|(_, candidate)| candidate)
    }

    pub fn near_any(word: &str, known: &[&[&str]]) -> bool {
        Self::suggestion(word, known).is_some()
    }

    /// A keyword nobody knows in this block: an error, with a suggestion when one is close.
    pub fn unknown(&mut self, node: &Node, block: &str, known: &[&[&str]]) {
        let word = node.keyword();
        let message = match Self::suggestion(word, known) {
            Some(suggestion) => format!("unknown keyword `{word}` in {block}; did you mean `{suggestion}`?"),
            None => format!("unknown keyword `{word}` in {block}"),
        };
        self.error(&node.name.pos, message);
    }

    /// The block's name argument (`vrrp_instance NAME {`), or an error.
    pub fn name(&mut self, node: &Node) -> Option<String> {
        match node.args.first() {
            Some(name) => Some(name.text.clone()),
            None => {
                self.error(&node.name.pos, format!("`{}` needs a name", node.keyword()));
                None
            }
        }
    }

    /// `weight N [reverse]` after a tracked object's name, as keepalived reads it.
    pub fn weight_spec(&mut self, tokens: &[&Token]) -> (Option<i32>, bool) {
        let mut weight = None;
        let mut reverse = false;
        let mut index = 0;
        while index < tokens.len() {
            match tokens[index].text.as_str() {
                "weight" => match tokens.get(index + 1) {
                    Some(value) => {
                        weight = self.int_token(value, -253, 253);
                        index += 1;
                    }
                    None => self.error(&tokens[index].pos, "`weight` needs a value"),
                },
                "reverse" => reverse = true,
                other => self.warning(&tokens[index].pos, format!("`{other}` is not understood here and is ignored")),
            }
            index += 1;
        }
        (weight, reverse)
    }
}
