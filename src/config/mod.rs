//! Configuration: one TOML file, `${VAR}` expansion, defaults from the operators' runbooks,
//! validation that names file, key and reason.
//!
//! Loading runs in fixed steps, each collecting every problem it can before the next:
//! 1. read and parse the file (syntax errors carry their span),
//! 2. load `env_file`, then expand `${VAR}` in every string of the document,
//! 3. deserialize into the typed schema (`deny_unknown_fields`; durations and cron strings
//!    are parsed here, so a bad one is reported with its key),
//! 4. check what types cannot say (ranges, unique names, URL schemes).
//!
//! Positions are found by walking the spanned parse of the original text with the key path,
//! so an error after expansion still points at the line the operator wrote.

mod duration;
mod error;
mod expand;
mod net;
mod reports_schema;
mod schedule;
mod schema;
mod secret;
mod validate;

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use duration::{DurationError, HumanDuration};
pub use error::{ConfigError, Problem};
pub use net::IpRange;
pub use reports_schema::*;
pub use schedule::Schedule;
pub use schema::*;
pub use secret::{DbUrl, REDACTED, Secret, redact_url};

impl Config {
    /// Loads the file at `path`, or the built-in defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Ok(Self::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    file: path.to_owned(),
                    problems: vec![Problem {
                        position: None,
                        key: String::new(),
                        reason: format!("cannot read the config file: {}", expand::io_reason(&e)),
                    }],
                })?;
                Self::from_toml(path, &text)
            }
        }
    }

    /// Parses config text; `file` names it in errors and anchors a relative `env_file`.
    pub fn from_toml(file: &Path, text: &str) -> Result<Self, ConfigError> {
        // Every string `${VAR}` changed, as (expanded, as written): a reason that quotes an
        // expanded value quotes what the file says instead, so no secret reaches an error.
        let expansions = std::cell::RefCell::new(Vec::<(String, String)>::new());
        let fail = |problems: Vec<Problem>| ConfigError {
            file: file.to_owned(),
            problems: problems
                .into_iter()
                .map(|p| Problem {
                    reason: error::tidy_reason(&p.reason, &expansions.borrow()),
                    ..p
                })
                .collect(),
        };
        let spanned = DeTable::parse(text).map_err(|e| {
            fail(vec![Problem {
                position: e.span().map(|s| error::line_col(text, s.start)),
                key: String::new(),
                reason: format!("TOML syntax: {}", e.message().trim_end()),
            }])
        })?;
        let locate = |key: &[PathSeg]| locate(text, spanned.get_ref(), key);
        let problem = |key: Vec<PathSeg>, reason: String| Problem {
            position: locate(&key),
            key: format_path(&key),
            reason,
        };

        let mut doc: toml::Table = toml::from_str(text)
            .map_err(|e| fail(vec![problem(Vec::new(), e.message().to_owned())]))?;

        let vars = match doc.get("env_file") {
            None => expand::Vars::default(),
            Some(toml::Value::String(raw)) => {
                let key = vec![PathSeg::Key("env_file".into())];
                let expanded = expand::Vars::default()
                    .expand(raw)
                    .map_err(|why| fail(vec![problem(key.clone(), why)]))?;
                let env_path = resolve_beside(file, Path::new(&expanded));
                let map = expand::read_env_file(&env_path)
                    .map_err(|why| fail(vec![problem(key, why)]))?;
                expand::Vars::with_file(map)
            }
            Some(_) => {
                return Err(fail(vec![problem(
                    vec![PathSeg::Key("env_file".into())],
                    "expected a path string".into(),
                )]));
            }
        };

        let mut problems = Vec::new();
        expand_strings(
            &vars,
            &mut doc,
            &mut Vec::new(),
            &mut expansions.borrow_mut(),
            &mut |key, why| {
                problems.push(problem(key, why));
            },
        );
        if !problems.is_empty() {
            return Err(fail(problems));
        }

        // An [[http]] block without `timeout` gets the default, but never more than its own
        // interval (a timeout longer than the interval is refused when written).
        let timeout_written: Vec<bool> = match doc.get("http") {
            Some(toml::Value::Array(blocks)) => {
                blocks.iter().map(|b| b.get("timeout").is_some()).collect()
            }
            _ => Vec::new(),
        };
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(doc))
            .map_err(|e| {
                let mut key = segments(e.path());
                let mut reason = e.inner().message().to_owned();
                if let Some(name) = unknown_field(&reason) {
                    // Point at the unknown key itself, not at the table that holds it.
                    if key.last() != Some(&PathSeg::Key(name.to_owned())) {
                        key.push(PathSeg::Key(name.to_owned()));
                    }
                    reason = reason.replacen("unknown field", "unknown key", 1);
                }
                fail(vec![problem(key, reason)])
            })?;
        if let Some(env_file) = &config.env_file {
            config.env_file = Some(resolve_beside(file, env_file));
        }
        for (h, written) in config.http.iter_mut().zip(&timeout_written) {
            if !written {
                h.timeout = h.timeout.min(h.every);
            }
        }

        let problems: Vec<Problem> = validate::validate(&config)
            .into_iter()
            .map(|found| {
                let mut reason = found.reason;
                if let Some(other) = found.also {
                    reason.push_str(&format!("; also at key {other}"));
                    if let Some((line, col)) = locate(&parse_path(&other)) {
                        reason.push_str(&format!(" ({}:{line}:{col})", file.display()));
                    }
                }
                problem(parse_path(&found.key), reason)
            })
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// The effective config (defaults filled in) as TOML, every secret replaced by
    /// `<redacted>`: what `config check` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot show the config: {e}\n"))
    }
}

/// Relative paths in the config are relative to the config file, not to the working directory.
fn resolve_beside(config_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        config_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(path)
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn format_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if k.is_empty() || k.contains(['.', ' ', '"', '[', ']', '/']) {
                    out.push_str(&format!("{k:?}"));
                } else {
                    out.push_str(k);
                }
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The inverse of `format_path`, for the keys validators name.
fn parse_path(key: &str) -> Vec<PathSeg> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('[') {
            let end = tail.find(']').unwrap_or(tail.len());
            if let Ok(i) = tail[..end].parse() {
                out.push(PathSeg::Index(i));
            }
            rest = tail.get(end + 1..).unwrap_or("");
        } else if let Some(tail) = rest.strip_prefix('"') {
            let end = tail.find('"').unwrap_or(tail.len());
            out.push(PathSeg::Key(tail[..end].to_owned()));
            rest = tail.get(end + 1..).unwrap_or("");
        } else if let Some(tail) = rest.strip_prefix('.') {
            rest = tail;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(PathSeg::Key(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    out
}

fn segments(path: &serde_path_to_error::Path) -> Vec<PathSeg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(PathSeg::Index(*index)),
            Segment::Map { key } => Some(PathSeg::Key(key.clone())),
            Segment::Enum { variant } => Some(PathSeg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// Expands `${VAR}` in every string of the document, reporting each failure with its key.
fn expand_strings(
    vars: &expand::Vars,
    table: &mut toml::Table,
    path: &mut Vec<PathSeg>,
    expansions: &mut Vec<(String, String)>,
    report: &mut dyn FnMut(Vec<PathSeg>, String),
) {
    for (key, value) in table.iter_mut() {
        path.push(PathSeg::Key(key.clone()));
        expand_value(vars, value, path, expansions, report);
        path.pop();
    }
}

fn expand_value(
    vars: &expand::Vars,
    value: &mut toml::Value,
    path: &mut Vec<PathSeg>,
    expansions: &mut Vec<(String, String)>,
    report: &mut dyn FnMut(Vec<PathSeg>, String),
) {
    match value {
        toml::Value::String(s) if s.contains('$') => match vars.expand(s) {
            Ok(expanded) => {
                if expanded != *s {
                    expansions.push((expanded.clone(), std::mem::take(s)));
                }
                *s = expanded;
            }
            Err(why) => report(path.clone(), why),
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                expand_value(vars, item, path, expansions, report);
                path.pop();
            }
        }
        toml::Value::Table(t) => expand_strings(vars, t, path, expansions, report),
        _ => {}
    }
}

/// Finds where `path` is written: the key's position when it exists, else the closest
/// enclosing table's.
fn locate(text: &str, root: &DeTable<'_>, path: &[PathSeg]) -> Option<(usize, usize)> {
    let mut table = root;
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    let mut best = None;
    for seg in path {
        let value: &Spanned<DeValue<'_>> = match (seg, array) {
            (PathSeg::Index(i), Some(items)) => {
                let item = items.get(*i)?;
                best = Some(error::line_col(text, item.span().start));
                item
            }
            (PathSeg::Key(k), None) => {
                let (key, value) = table.iter().find(|(key, _)| key.get_ref().as_ref() == k)?;
                best = Some(error::line_col(text, key.span().start));
                value
            }
            _ => return best,
        };
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            DeValue::Array(items) => array = Some(items),
            _ => {
                if best.is_none() {
                    best = Some(error::line_col(text, value.span().start));
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests;
