//! Checks that types alone cannot express. Each returns `(key path, reason)` pairs so that all
//! problems are reported together.

use std::collections::HashSet;

use super::schema::Config;

type Found = Vec<(String, String)>;

pub(super) fn validate(c: &Config) -> Found {
    let mut found = Vec::new();
    storage(c, &mut found);
    telegram(c, &mut found);
    webhooks(c, &mut found);
    http(c, &mut found);
    system(c, &mut found);
    processes(c, &mut found);
    database(c, &mut found);
    auth(c, &mut found);
    silences(c, &mut found);
    history(c, &mut found);
    found
}

fn silences(c: &Config, found: &mut Found) {
    for (i, s) in c.silence.iter().enumerate() {
        let key = |k: &str| format!("silence[{i}].{k}");
        match (&s.until, &s.schedule, &s.duration) {
            (Some(until), None, None) => {
                if chrono::DateTime::parse_from_rfc3339(until).is_err() {
                    push(
                        found,
                        key("until"),
                        "must be an RFC 3339 time such as \"2026-12-01T06:00:00Z\"",
                    );
                }
            }
            (None, Some(_), Some(d)) => {
                if d.get().is_zero() {
                    push(found, key("duration"), "must be more than 0s");
                }
            }
            (None, Some(_), None) => push(found, key("duration"), "is needed with schedule"),
            (None, None, Some(_)) => push(found, key("schedule"), "is needed with duration"),
            _ => push(
                found,
                key("until"),
                "write either until, or schedule and duration",
            ),
        }
    }
}

fn push(found: &mut Found, key: impl Into<String>, reason: impl Into<String>) {
    found.push((key.into(), reason.into()));
}

fn storage(c: &Config, found: &mut Found) {
    let url = c.storage.url.expose();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        push(
            found,
            "storage.url",
            "must start with sqlite:// or postgres:// (e.g. \"sqlite://./data/opswatch.db\")",
        );
    }
}

fn telegram(c: &Config, found: &mut Found) {
    let Some(t) = &c.telegram else { return };
    if t.bot_token.is_empty() {
        push(found, "telegram.bot_token", "is empty");
    } else if !t.bot_token.expose().contains(':') {
        // Never echo the value: it is a secret even when malformed.
        push(
            found,
            "telegram.bot_token",
            "does not look like a bot token (expected \"123456:ABC...\" from @BotFather)",
        );
    }
    if t.chat_id.trim().is_empty() {
        push(found, "telegram.chat_id", "is empty");
    } else if !(t.chat_id.starts_with('@') || t.chat_id.parse::<i64>().is_ok()) {
        push(
            found,
            "telegram.chat_id",
            "must be a numeric chat id (e.g. -1001234567890) or @channelname",
        );
    }
    check_http_url(found, "telegram.api_base", &t.api_base);
}

fn webhooks(c: &Config, found: &mut Found) {
    let mut names = HashSet::new();
    for (i, w) in c.webhook.iter().enumerate() {
        check_name(found, &format!("webhook[{i}].name"), &w.name, &mut names);
        if url::Url::parse(w.url.expose()).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
        {
            push(
                found,
                format!("webhook[{i}].url"),
                "must be an http:// or https:// URL",
            );
        }
    }
}

fn http(c: &Config, found: &mut Found) {
    let mut names = HashSet::new();
    for (i, h) in c.http.iter().enumerate() {
        let key = |k: &str| format!("http[{i}].{k}");
        check_name(found, &key("name"), &h.name, &mut names);
        check_http_url(found, &key("url"), &h.url);
        if h.every.get() < std::time::Duration::from_secs(1) {
            push(found, key("every"), "must be at least 1s");
        }
        if h.timeout.get().is_zero() {
            push(found, key("timeout"), "must be more than 0s");
        }
        if h.failures == 0 {
            push(found, key("failures"), "must be at least 1");
        }
        if let Some(r) = h.remind_every
            && r.get() < std::time::Duration::from_secs(60)
        {
            push(found, key("remind_every"), "must be at least 1m");
        }
        if let Some(re) = &h.body_regex
            && let Err(e) = regex_lite::Regex::new(re)
        {
            push(
                found,
                key("body_regex"),
                format!("invalid regular expression: {e}"),
            );
        }
        for name in h.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                push(
                    found,
                    format!("http[{i}].headers.{name:?}"),
                    "is not a valid header name",
                );
            }
        }
    }
}

fn system(c: &Config, found: &mut Found) {
    let s = &c.system;
    for (k, v) in [
        ("disk_warn", s.disk_warn),
        ("disk_crit", s.disk_crit),
        ("inode_warn", s.inode_warn),
        ("memory_warn", s.memory_warn),
        ("memory_crit", s.memory_crit),
        ("swap_warn", s.swap_warn),
        ("swap_crit", s.swap_crit),
    ] {
        if !(0.0..=100.0).contains(&v) {
            push(
                found,
                format!("system.{k}"),
                "is a percentage: must be between 0 and 100",
            );
        }
    }
    for (k, v) in [("load_warn", s.load_warn), ("load_crit", s.load_crit)] {
        if !(v > 0.0 && v.is_finite()) {
            push(found, format!("system.{k}"), "must be a positive number");
        }
    }
    for (warn, crit, a, b) in [
        ("disk_warn", "disk_crit", s.disk_warn, s.disk_crit),
        ("memory_warn", "memory_crit", s.memory_warn, s.memory_crit),
        ("swap_warn", "swap_crit", s.swap_warn, s.swap_crit),
        ("load_warn", "load_crit", s.load_warn, s.load_crit),
    ] {
        if a > b {
            push(
                found,
                format!("system.{warn}"),
                format!("is above system.{crit} ({a} > {b})"),
            );
        }
    }
    if s.every.get() < std::time::Duration::from_secs(1) {
        push(found, "system.every", "must be at least 1s");
    }
    if !(0.0..50.0).contains(&s.hysteresis) {
        push(
            found,
            "system.hysteresis",
            "is a percent of the threshold: must be from 0 to under 50",
        );
    }
    if s.sample_every.get() < std::time::Duration::from_secs(1) {
        push(found, "system.sample_every", "must be at least 1s");
    }
    for (mount, t) in &s.mounts {
        for (k, v) in [("disk_warn", t.disk_warn), ("disk_crit", t.disk_crit)] {
            if v.is_some_and(|v| !(0.0..=100.0).contains(&v)) {
                push(
                    found,
                    format!("system.mounts.{mount:?}.{k}"),
                    "is a percentage: must be between 0 and 100",
                );
            }
        }
    }
}

fn history(c: &Config, found: &mut Found) {
    let h = &c.history;
    if h.raw.get() < std::time::Duration::from_secs(3600) {
        push(found, "history.raw", "must be at least 1h");
    }
    if h.five_minute < h.raw {
        push(
            found,
            "history.five_minute",
            "must not be shorter than history.raw",
        );
    }
    if h.hourly < h.five_minute {
        push(
            found,
            "history.hourly",
            "must not be shorter than history.five_minute",
        );
    }
}

fn processes(c: &Config, found: &mut Found) {
    if c.pm2.every.get() < std::time::Duration::from_secs(1) {
        push(found, "pm2.every", "must be at least 1s");
    }
    if c.systemd.every.get() < std::time::Duration::from_secs(1) {
        push(found, "systemd.every", "must be at least 1s");
    }
    for (i, u) in c.systemd.units.iter().enumerate() {
        if u.trim().is_empty() || u.contains(char::is_whitespace) {
            push(
                found,
                format!("systemd.units[{i}]"),
                "must be a unit name such as \"nginx.service\"",
            );
        }
    }
}

fn database(c: &Config, found: &mut Found) {
    if let Some(db) = &c.database {
        let url = db.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            push(found, "database.url", "must be a postgres:// URL");
        }
    }
    if let Some(d) = &c.disputes {
        if d.query.is_some() && c.database.is_none() {
            push(
                found,
                "disputes.query",
                "needs [database] url to run against",
            );
        }
        if d.every.get() < std::time::Duration::from_secs(1) {
            push(found, "disputes.every", "must be at least 1s");
        }
    }
}

fn auth(c: &Config, found: &mut Found) {
    if let Some(u) = &c.server.public_url {
        check_http_url(found, "server.public_url", u);
    }
    if c.auth.session_idle.get() < std::time::Duration::from_secs(60) {
        push(found, "auth.session_idle", "must be at least 1m");
    }
    if c.auth.session_lifetime.get() < c.auth.session_idle.get() {
        push(
            found,
            "auth.session_lifetime",
            "must be at least auth.session_idle",
        );
    }
    let mut names = HashSet::new();
    for (i, u) in c.auth.users.iter().enumerate() {
        check_name(found, &format!("auth.users[{i}].name"), &u.name, &mut names);
        if !u.password_hash.expose().starts_with("$argon2") {
            push(
                found,
                format!("auth.users[{i}].password_hash"),
                "must be an argon2 hash as printed by `opswatch user hash`",
            );
        }
    }
    let mut names = HashSet::new();
    let mut tokens = HashSet::new();
    for (i, t) in c.auth.tokens.iter().enumerate() {
        check_name(
            found,
            &format!("auth.tokens[{i}].name"),
            &t.name,
            &mut names,
        );
        if t.token.is_empty() {
            push(found, format!("auth.tokens[{i}].token"), "is empty");
        } else if !tokens.insert(t.token.expose().to_owned()) {
            push(
                found,
                format!("auth.tokens[{i}].token"),
                "is the same as another token's",
            );
        }
    }
}

fn check_name(found: &mut Found, key: &str, name: &str, seen: &mut HashSet<String>) {
    if name.trim().is_empty() {
        push(found, key, "is empty");
    } else if !seen.insert(name.to_owned()) {
        push(found, key, format!("{name:?} is used twice"));
    }
}

fn check_http_url(found: &mut Found, key: &str, raw: &str) {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(_) => push(found, key, "must be an http:// or https:// URL with a host"),
        Err(e) => push(found, key, format!("is not a URL: {e}")),
    }
}
