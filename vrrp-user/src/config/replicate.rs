//! keepalived's line replication: a line starting `~SEQ(VAR, [START,] [STEP,] END)`,
//! `~SEQx(...)` (the value in hexadecimal) or `~LST(VAR, V1, V2, ...)` /
//! `~LST({A, B}, {1, 2}, {3, 4})` is read once per value with `$VAR` set; what follows may be
//! another `~SEQ`/`~LST`. Pure: `header` splits a line's directive off, `assignments` lists
//! the variable values it stands for (parameters in its arguments already substituted).

/// `~SEQ`, `~SEQx` or `~LST` at the start of `text` (leading spaces stripped by the caller):
/// the directive's name, the text between its parentheses and the byte length of the whole
/// directive (so the rest of the line starts there).
pub fn header(text: &str) -> Option<(&str, &str, usize)> {
    let kind = ["~SEQx(", "~SEQ(", "~LST("].into_iter().find(|k| text.starts_with(k))?;
    let open = kind.len();
    let mut depth = 0usize;
    for (at, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ')' if depth == 0 => return Some((&kind[..kind.len() - 1], &text[open..open + at], open + at + 1)),
            _ => {}
        }
    }
    None
}

/// At most this many lines from one directive (keepalived has no limit; a typo such as
/// `~SEQ(N, 1, 1000000000)` should not hang `check`).
pub const MAX_VALUES: usize = 100_000;

/// One assignment per replica: (variable, value) pairs.
pub type Assignments = Vec<Vec<(String, String)>>;

pub fn assignments(kind: &str, arguments: &str) -> Result<Assignments, String> {
    match kind {
        "~SEQ" | "~SEQx" => sequence(arguments, kind == "~SEQx"),
        _ => list(arguments),
    }
}

fn number(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("`{text}` is not a number in ~SEQ"))?;
    Ok(if negative { -value } else { value })
}

fn sequence(arguments: &str, hex: bool) -> Result<Assignments, String> {
    let parts: Vec<&str> = arguments.split(',').map(str::trim).collect();
    let variable = parts[0];
    if !valid_name(variable) {
        return Err(format!("~SEQ needs a variable name first, not `{variable}`"));
    }
    let numbers = parts[1..].iter().map(|p| number(p)).collect::<Result<Vec<i64>, String>>()?;
    let (start, step, end) = match numbers[..] {
        [end] => (if end < 0 { -1 } else { 1 }, None, end),
        [start, end] => (start, None, end),
        [start, step, end] => (start, Some(step), end),
        _ => return Err(format!("~SEQ takes a variable and 1 to 3 numbers, not `{arguments}`")),
    };
    let step = step.unwrap_or(if end < start { -1 } else { 1 });
    if step == 0 {
        return Err("~SEQ step 0 never ends".into());
    }
    let mut out = Vec::new();
    let mut value = start;
    while (step > 0 && value <= end) || (step < 0 && value >= end) {
        if out.len() >= MAX_VALUES {
            return Err(format!("~SEQ({arguments}) makes more than {MAX_VALUES} lines"));
        }
        let text = if hex { format!("{value:x}") } else { value.to_string() };
        out.push(vec![(variable.to_string(), text)]);
        value += step;
    }
    Ok(out)
}

/// Splits on commas outside braces.
fn top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

fn braced(text: &str) -> Vec<String> {
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    match inner {
        Some(inner) => inner.split(',').map(|v| v.trim().to_string()).collect(),
        None => vec![text.trim().to_string()],
    }
}

fn list(arguments: &str) -> Result<Assignments, String> {
    let parts = top_level(arguments);
    let variables = braced(parts[0]);
    if let Some(bad) = variables.iter().find(|v| !valid_name(v)) {
        return Err(format!("~LST needs variable names first, not `{bad}`"));
    }
    parts[1..]
        .iter()
        .map(|values| {
            let values = braced(values);
            if values.len() > variables.len() {
                return Err(format!("~LST has more values in `{}` than variables in `{}`", values.join(", "), parts[0]));
            }
            // Missing values are blank.
            Ok(variables.iter().enumerate().map(|(i, v)| (v.clone(), values.get(i).cloned().unwrap_or_default())).collect())
        })
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: &str, arguments: &str) -> Vec<String> {
        assignments(kind, arguments).unwrap().into_iter().map(|a| a.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")).collect()
    }

    #[test]
    fn headers_split_off_the_directive_and_leave_the_rest() {
        let line = "~LST({A, B}, {1,2}) ~SEQ(N, 3) x ${N}";
        let (kind, arguments, length) = header(line).unwrap();
        assert_eq!((kind, arguments, &line[length..]), ("~LST", "{A, B}, {1,2}", " ~SEQ(N, 3) x ${N}"));
        assert_eq!(header("~SEQx(H, 1)").unwrap().0, "~SEQx");
        assert_eq!(header("10.0.0.1"), None);
    }

    #[test]
    fn sequences_as_the_man_page_describes_them() {
        assert_eq!(values("~SEQ", "S, 0, 3"), ["S=0", "S=1", "S=2", "S=3"]);
        assert_eq!(values("~SEQ", "M, 3"), ["M=1", "M=2", "M=3"]);
        assert_eq!(values("~SEQ", "M, -2"), ["M=-1", "M=-2"]);
        assert_eq!(values("~SEQ", "D, 30, -10, 10"), ["D=30", "D=20", "D=10"]);
        assert_eq!(values("~SEQ", "D, 3, 1"), ["D=3", "D=2", "D=1"]);
        assert_eq!(values("~SEQx", "H, 0x90, 0x10, 0xc0"), ["H=90", "H=a0", "H=b0", "H=c0"]);
        assert!(assignments("~SEQ", "N, 1, 0, 5").is_err());
        assert!(assignments("~SEQ", "N, x").is_err());
        assert!(assignments("~SEQ", "N, 1, 10000000").is_err());
    }

    #[test]
    fn lists_of_single_values_and_of_tuples_with_missing_values_blank() {
        assert_eq!(values("~LST", "IP, 1, 2"), ["IP=1", "IP=2"]);
        assert_eq!(values("~LST", "{V, OPT}, {a, b}, {c}"), ["V=a OPT=b", "V=c OPT="]);
        assert!(assignments("~LST", "{V W}, 1").is_err());
        assert!(assignments("~LST", "{A, B}, {1, 2, 3}").is_err());
    }
}
