//! Config errors as the operator reads them: `FILE:LINE:COL: key a.b.c: reason`, one line per
//! problem, every problem found in one go where the parser lets us.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column in the file, when the key could be found there.
    pub position: Option<(usize, usize)>,
    /// Dotted key path (`http[0].every`); empty for file-level problems such as syntax.
    pub key: String,
    pub reason: String,
}

/// Everything wrong with one config file. The CLI prints it to stderr and exits 2.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some((line, col)) = p.position {
                write!(f, ":{line}:{col}")?;
            }
            if p.key.is_empty() {
                write!(f, ": {}", p.reason)?;
            } else {
                write!(f, ": key {}: {}", p.key, p.reason)?;
            }
        }
        Ok(())
    }
}

/// A quoted value longer than this many characters is cut in an error message.
const MAX_QUOTED_CHARS: usize = 60;
/// A reason longer than this is cut (a message is one readable line).
const MAX_REASON_CHARS: usize = 300;

/// Makes a reason safe and readable: every value `${VAR}` expansion produced is replaced by
/// the text as written in the file (so an expanded secret is never shown), quoted values are
/// cut to [`MAX_QUOTED_CHARS`] and the whole to [`MAX_REASON_CHARS`].
///
/// `expansions` holds (expanded, as written) pairs. Values are looked for quoted as serde and
/// our own messages quote them (`"…"`, with Rust escapes), and bare when long enough not to
/// match a word of the message by chance.
pub fn tidy_reason(reason: &str, expansions: &[(String, String)]) -> String {
    let mut out = reason.to_owned();
    // Longest first, so a value containing another is replaced whole.
    let mut pairs: Vec<&(String, String)> = expansions.iter().collect();
    pairs.sort_by_key(|(expanded, _)| std::cmp::Reverse(expanded.len()));
    for (expanded, written) in pairs {
        if expanded.is_empty() {
            continue;
        }
        out = out.replace(&format!("{expanded:?}"), &format!("{written:?}"));
        if expanded.chars().count() >= 6 {
            out = out.replace(expanded.as_str(), written);
        }
    }
    cut(&cut_quoted(&out), MAX_REASON_CHARS)
}

/// Cuts every `"…"` literal (Rust escapes inside) longer than [`MAX_QUOTED_CHARS`].
fn cut_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_REASON_CHARS));
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    inner.push(c);
                    if let Some(next) = chars.next() {
                        inner.push(next);
                    }
                }
                '"' => {
                    closed = true;
                    break;
                }
                _ => inner.push(c),
            }
        }
        let n = inner.chars().count();
        if n > MAX_QUOTED_CHARS {
            let head: String = inner.chars().take(MAX_QUOTED_CHARS - 20).collect();
            out.push_str(&format!("{head}…[{n} characters]"));
        } else {
            out.push_str(&inner);
        }
        if closed {
            out.push('"');
        }
    }
    out
}

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// Turns a byte offset into a 1-based (line, column), counting columns in characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // toml reports spans on character boundaries; fall back to the whole text if not.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_file_line_col_key_reason() {
        let e = ConfigError {
            file: "/etc/opswatch.toml".into(),
            problems: vec![
                Problem {
                    position: Some((3, 9)),
                    key: "http[0].every".into(),
                    reason: "bad".into(),
                },
                Problem {
                    position: None,
                    key: String::new(),
                    reason: "cannot read".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "/etc/opswatch.toml:3:9: key http[0].every: bad\n/etc/opswatch.toml: cannot read"
        );
    }

    #[test]
    fn expanded_values_are_shown_as_written() {
        let secret = "123456:AAH-very-secret-token".to_owned();
        let reason = format!("invalid type: string {secret:?}, expected f64");
        let tidy = tidy_reason(
            &reason,
            &[(secret.clone(), "${TELEGRAM_BOT_TOKEN:-x}".to_owned())],
        );
        assert_eq!(
            tidy,
            "invalid type: string \"${TELEGRAM_BOT_TOKEN:-x}\", expected f64"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = "a".repeat(1_000_000);
        let tidy = tidy_reason(
            &format!("invalid duration {long:?}: expected a number"),
            &[],
        );
        assert!(tidy.chars().count() < 200, "{tidy}");
        assert!(tidy.contains("[1000000 characters]"), "{tidy}");
        assert!(tidy.ends_with(": expected a number"), "{tidy}");
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a = 1\nbb = 2", 6), (2, 1));
        assert_eq!(line_col("a = 1\nbb = 2", 11), (2, 6));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
