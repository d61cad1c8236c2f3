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
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a = 1\nbb = 2", 6), (2, 1));
        assert_eq!(line_col("a = 1\nbb = 2", 11), (2, 6));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
