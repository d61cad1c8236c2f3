//! Values that must never be shown: they print as `<redacted>` in `Debug`, in logs and in
//! `config check`, and are read only through `expose()` where they are used.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

pub const REDACTED: &str = "<redacted>";

/// A secret string (bot token, API token, password hash, webhook URL).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// A connection URL that may carry a password (`postgres://user:pass@host/db`, or
/// `?password=` in the query). Shown with the password replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl(String);

impl DbUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (userinfo or query parameter) replaced by `<redacted>`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// Redacts the password of any URL-shaped string; a string that does not parse as a URL is
/// redacted whole rather than risk showing a secret.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return if raw.contains('@') || raw.contains("password") {
            REDACTED.to_owned()
        } else {
            raw.to_owned()
        };
    };
    if url.password().is_some() {
        // set_password fails only for URLs that cannot have credentials, checked above.
        let _ = url.set_password(Some(REDACTED));
    }
    let has_secret_param = url.query_pairs().any(|(k, _)| is_secret_param(&k));
    if has_secret_param {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // Url percent-encodes the angle brackets of the placeholder; show it as written.
    url.to_string().replace("%3Credacted%3E", REDACTED)
}

fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "pass", "secret", "token", "key", "sslpassword"]
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DbUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl Serialize for DbUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_in_userinfo_is_hidden() {
        let u = DbUrl::new("postgres://monitor:s3cr%40t@127.0.0.1:5432/app");
        assert_eq!(
            u.redacted(),
            "postgres://monitor:<redacted>@127.0.0.1:5432/app"
        );
        assert!(!format!("{u:?}").contains("s3cr"));
    }

    #[test]
    fn password_in_query_is_hidden() {
        let u = DbUrl::new("postgres://127.0.0.1/app?user=m&password=hunter2&sslmode=disable");
        let shown = u.redacted();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sslmode=disable"), "{shown}");
    }

    #[test]
    fn sqlite_urls_pass_through() {
        assert_eq!(
            redact_url("sqlite://./data/opswatch.db"),
            "sqlite://./data/opswatch.db"
        );
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("123:ABC");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
    }
}
