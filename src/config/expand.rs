//! `${VAR}` expansion in config strings and the optional env file that feeds it.
//!
//! A variable is looked up in the env file first, then in the process environment, so that a
//! deployment can keep its secrets in the app's own `.env`. `$${` writes a literal `${`, and
//! `${VAR:-fallback}` gives a value for when `VAR` is unset or empty.

use std::collections::HashMap;
use std::path::Path;

/// Where `${VAR}` values come from.
#[derive(Default, Debug)]
pub struct Vars {
    file: HashMap<String, String>,
}

impl Vars {
    pub fn with_file(file: HashMap<String, String>) -> Self {
        Self { file }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.file
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }

    /// Expands every `${VAR}` in `input`; on failure says which variable and why.
    pub fn expand(&self, input: &str) -> Result<String, String> {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let end = tail.find('}').ok_or_else(|| {
                    "`${` is not closed by `}` (write `$${` for a literal `${`)".to_owned()
                })?;
                let inner = &tail[..end];
                let (name, fallback) = match inner.split_once(":-") {
                    Some((n, f)) => (n, Some(f)),
                    None => (inner, None),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("`${{{inner}}}` is not a variable name"));
                }
                match (self.get(name), fallback) {
                    (Some(v), Some(f)) if v.is_empty() => out.push_str(f),
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(f)) => out.push_str(f),
                    (None, None) => {
                        return Err(format!(
                            "environment variable {name} is not set (looked in env_file and the environment)"
                        ));
                    }
                }
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Reads a `.env`-style file: `KEY=value` lines, `export ` allowed, `#` comments, values
/// optionally in single (literal) or double quotes (with `\n`, `\"`, `\\` escapes).
pub fn read_env_file(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read env file {}: {}", path.display(), io_reason(&e)))?;
    parse_env(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn parse_env(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut vars = HashMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((idx + 1, "expected KEY=value".to_owned()));
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err((idx + 1, format!("{key:?} is not a variable name")));
        }
        vars.insert(key.to_owned(), unquote(value.trim()));
    }
    Ok(vars)
}

fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        return value[1..value.len() - 1].to_owned();
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let inner = &value[1..value.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    // An unquoted value ends at a ` #` comment, as in shells.
    match value.find(" #") {
        Some(pos) => value[..pos].trim_end().to_owned(),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::with_file(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn expands_from_the_file_first() {
        let v = vars(&[("TOKEN", "abc"), ("PATH", "from-file")]);
        assert_eq!(v.expand("x ${TOKEN} y").unwrap(), "x abc y");
        assert_eq!(v.expand("${PATH}").unwrap(), "from-file");
    }

    #[test]
    fn escapes_and_fallbacks() {
        let v = vars(&[("EMPTY", "")]);
        assert_eq!(v.expand("$${HOME} costs $5").unwrap(), "${HOME} costs $5");
        assert_eq!(v.expand("${OPSWATCH_SURELY_UNSET_X:-def}").unwrap(), "def");
        assert_eq!(v.expand("${EMPTY:-def}").unwrap(), "def");
    }

    #[test]
    fn unset_and_malformed_are_errors() {
        let v = vars(&[]);
        let e = v.expand("${OPSWATCH_SURELY_UNSET_Y}").unwrap_err();
        assert!(e.contains("OPSWATCH_SURELY_UNSET_Y"), "{e}");
        assert!(v.expand("${OPEN").is_err());
        assert!(v.expand("${not-a-name}").is_err());
    }

    #[test]
    fn env_file_syntax() {
        let vars =
            parse_env("# comment\nexport A=1\nB='lit $x'\nC=\"a\\nb\"\nD=plain # note\n\nE=\n")
                .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "lit $x");
        assert_eq!(vars["C"], "a\nb");
        assert_eq!(vars["D"], "plain");
        assert_eq!(vars["E"], "");
        assert_eq!(parse_env("novalue\n").unwrap_err().0, 1);
    }
}
