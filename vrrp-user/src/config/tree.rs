//! The block structure of a configuration: statements (`keyword args...`) and `{ }` blocks,
//! before any meaning is given to keywords.
use super::{diagnostic::Diagnostics, lexer::Token};

#[derive(Debug, Clone)]
pub struct Node {
    pub name: Token,
    /// The other tokens of the statement's logical line, up to a brace.
    pub args: Vec<Token>,
    /// The `{ ... }` block the statement opens, if any.
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        &self.name.text
    }

    /// The statement's words: its name followed by its arguments (list blocks use all).
    pub fn words(&self) -> impl Iterator<Item = &Token> {
        std::iter::once(&self.name).chain(self.args.iter())
    }
}

/// Builds the statement tree; unbalanced braces are fatal errors.
pub fn parse_tree(tokens: &[Token], diagnostics: &mut Diagnostics) -> Vec<Node> {
    let mut at = 0;
    let mut nodes = Vec::new();
    while at < tokens.len() {
        if tokens[at].is_close() {
            diagnostics.fatal(&tokens[at].pos, "unexpected `}` with no open block");
            at += 1;
            continue;
        }
        let (node, next) = statement(tokens, at, diagnostics);
        nodes.push(node);
        at = next;
    }
    nodes
}

/// One statement starting at `at`; returns it and the index after it.
fn statement(tokens: &[Token], at: usize, diagnostics: &mut Diagnostics) -> (Node, usize) {
    let name = tokens[at].clone();
    let mut index = at + 1;
    let mut args = Vec::new();
    if !name.is_open() {
        while index < tokens.len()
            && tokens[index].logical == name.logical
            && !tokens[index].is_open()
            && !tokens[index].is_close()
        {
            args.push(tokens[index].clone());
            index += 1;
        }
    }
    // A block opens on the statement's line, or with a `{` standing first on the next line.
    let opens = if name.is_open() {
        Some(at)
    } else {
        tokens.get(index).filter(|t| t.is_open()).map(|_| index)
    };
    let Some(open) = opens else {
        return (Node { name, args, block: None }, index);
    };
    let mut children = Vec::new();
    let mut index = open + 1;
    loop {
        match tokens.get(index) {
            None => {
                diagnostics.fatal(&tokens[open].pos, "this `{` is never closed");
                return (Node { name, args, block: Some(children) }, index);
            }
            Some(token) if token.is_close() => {
                return (Node { name, args, block: Some(children) }, index + 1);
            }
            Some(_) => {
                let (child, next) = statement(tokens, index, diagnostics);
                children.push(child);
                index = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{lexer::tokenize, source::read_source_text};

    fn tree(source: &str) -> (Vec<Node>, Diagnostics) {
        let mut diagnostics = Diagnostics::default();
        let lines = read_source_text(Path::new("t.conf"), source, "", &mut diagnostics);
        let tokens = tokenize(&lines, &mut diagnostics);
        let nodes = parse_tree(&tokens, &mut diagnostics);
        (nodes, diagnostics)
    }

    #[test]
    fn statements_blocks_and_lists() {
        let (nodes, diagnostics) = tree("global_defs {\n router_id R1\n}\nvrrp_instance V\n{\n virtual_ipaddress { 10.0.0.1/24 dev eth0\n 10.0.0.2 }\n}\n");
        assert!(diagnostics.items.is_empty(), "{diagnostics:?}");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].block.as_ref().unwrap()[0].args[0].text, "R1");
        let vips = nodes[1].block.as_ref().unwrap()[0].block.as_ref().unwrap();
        assert_eq!(vips.len(), 2);
        assert_eq!(vips[0].words().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["10.0.0.1/24", "dev", "eth0"]);
    }

    #[test]
    fn a_trailing_backslash_does_not_join_lines_as_in_keepalived() {
        let (nodes, _) = tree("notify \"/bin/x\" \\\n   arg2\nnext 1\n");
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].args.len(), 1);
    }

    #[test]
    fn a_stray_close_and_an_unclosed_open_are_fatal() {
        let (_, diagnostics) = tree("}\nvrrp_instance A {\n");
        assert!(diagnostics.fatal);
        let messages: Vec<String> = diagnostics.items.iter().map(|d| d.to_string()).collect();
        assert_eq!(messages, ["t.conf:1:1: error: unexpected `}` with no open block", "t.conf:2:17: error: this `{` is never closed"]);
    }
}
