//! What deployment relies on: the example config (`deploy/opswatch.example.toml`) shows every
//! key of the schema (that its keys exist and load is `spine::the_example_config_documents_valid_keys`),
//! and `--version` names the revision.
//!
//! The schema's keys are read from the schema itself: a probing deserializer hands
//! `Config::deserialize` plausible values and records every struct field serde asks about, so
//! a key added to the schema fails this test until the example shows it.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use opswatch::config::Config;

const EXAMPLE: &str = include_str!("../../deploy/opswatch.example.toml");

type Path = Vec<String>;
type Seen = Rc<RefCell<Vec<Path>>>;

#[derive(Debug)]
struct ProbeError(String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Deserializes any type at `path`, recording the fields of every struct on the way.
struct Probe {
    path: Path,
    seen: Seen,
}

impl Probe {
    fn at(&self, seg: &str) -> Self {
        let mut path = self.path.clone();
        path.push(seg.to_owned());
        Self {
            path,
            seen: self.seen.clone(),
        }
    }

    /// A string the key's type accepts: most strings are free text or durations ("1s" is
    /// both); a few keys need their own shape.
    fn text(&self) -> &'static str {
        let key = self.path.last().map_or("", String::as_str);
        if key == "listen" {
            "127.0.0.1:7070"
        } else if self.path.iter().any(|k| k == "trusted_proxies") {
            "10.0.0.0/8"
        } else if key.contains("schedule") {
            "0 * * * *"
        } else {
            "1s"
        }
    }
}

/// One-entry maps and one-element sequences, so that the value type is probed too.
struct One {
    probe: Option<Probe>,
    key: Option<&'static str>,
}

impl<'de> SeqAccess<'de> for One {
    type Error = ProbeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        self.probe.take().map(|p| seed.deserialize(p)).transpose()
    }
}

impl<'de> MapAccess<'de> for One {
    type Error = ProbeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        match (&self.probe, self.key) {
            (Some(_), Some(k)) => seed.deserialize(k.into_deserializer()).map(Some),
            _ => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let probe = self
            .probe
            .take()
            .ok_or_else(|| ProbeError("no value".into()))?;
        seed.deserialize(probe)
    }
}

/// A struct's fields, each probed in turn.
struct Fields {
    probe: Probe,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = ProbeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        self.current = self.fields.next().copied();
        self.current
            .map(|f| seed.deserialize(f.into_deserializer()))
            .transpose()
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        seed.deserialize(self.probe.at(self.current.unwrap_or_default()))
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        // Untagged enums (a status code or a range) land here.
        v.visit_u64(200)
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_bool(true)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_i64(1)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_u64(1)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_f64(1.0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_str(self.text())
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_str(self.text())
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        v.visit_some(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        let element = self.at("[]");
        v.visit_seq(One {
            probe: Some(element),
            key: None,
        })
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProbeError> {
        let value = self.at("*");
        v.visit_map(One {
            probe: Some(value),
            key: Some("*"),
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        for f in fields {
            let mut path = self.path.clone();
            path.push((*f).to_owned());
            self.seen.borrow_mut().push(path);
        }
        v.visit_map(Fields {
            probe: self,
            fields: fields.iter(),
            current: None,
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ProbeError> {
        v.visit_enum(variants[0].into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u128 f32 char bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct identifier ignored_any
    }
}

/// Every key path of the schema (`http.[].name`, `system.mounts.*.disk_warn`).
fn schema_keys() -> Vec<Path> {
    let seen = Seen::default();
    Config::deserialize(Probe {
        path: Vec::new(),
        seen: seen.clone(),
    })
    .unwrap_or_else(|e| panic!("probing the schema failed (extend Probe::text?): {e}"));
    seen.take()
}

/// Every key path the example shows, arrays of tables as `[]`: the keys it sets, and the
/// keys it documents commented out (`# key = value` under a table header).
fn example_keys() -> Vec<Path> {
    fn walk(table: &toml::Table, path: &Path, out: &mut Vec<Path>) {
        for (key, value) in table {
            let mut p = path.clone();
            p.push(key.clone());
            out.push(p.clone());
            match value {
                toml::Value::Table(t) => walk(t, &p, out),
                toml::Value::Array(items) => {
                    p.push("[]".to_owned());
                    for item in items {
                        if let toml::Value::Table(t) = item {
                            walk(t, &p, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let doc: toml::Table = toml::from_str(EXAMPLE).expect("the example is TOML");
    let mut out = Vec::new();
    walk(&doc, &Vec::new(), &mut out);

    let mut table: Path = Vec::new();
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            table = header_path(header);
            table.push("[]".to_owned());
        } else if let Some(header) = line.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = header_path(header);
        } else if let Some(commented) = line.strip_prefix('#')
            && let Some((key, _)) = commented.split_once('=')
            && let key = key.trim()
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let mut p = table.clone();
            p.push(key.to_owned());
            out.push(p);
        }
    }
    out
}

/// `a.b."/var"` → `["a", "b", "/var"]` (no dots inside quoted keys in the example).
fn header_path(header: &str) -> Path {
    header
        .split('.')
        .map(|part| part.trim().trim_matches('"').to_owned())
        .collect()
}

fn matches(schema: &Path, example: &Path) -> bool {
    schema.len() == example.len() && schema.iter().zip(example).all(|(s, e)| s == "*" || s == e)
}

#[test]
fn the_example_config_shows_every_key_of_the_schema() {
    let example = example_keys();
    let missing: Vec<String> = schema_keys()
        .iter()
        .filter(|k| !example.iter().any(|e| matches(k, e)))
        .map(|k| k.join("."))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/opswatch.example.toml does not show: {missing:#?}"
    );
}

#[test]
fn version_names_the_git_revision() {
    let out = crate::support::run_cli(std::path::Path::new("."), &["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    // "opswatch 0.1.0 (1a2b3c4d5e6f)"; "(unknown)" only when built outside a git checkout
    // without OPSWATCH_GIT_REV.
    let expected = format!("opswatch {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        text.starts_with(&expected) && text.trim_end().ends_with(')'),
        "{text}"
    );
    let rev = &text.trim_end()[expected.len()..text.trim_end().len() - 1];
    assert!(!rev.is_empty() && !rev.contains(' '), "{text}");
}
