//! Checks that types alone cannot express. Each returns `(key path, reason)` pairs so that all
//! problems are reported together.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::duration::HumanDuration;

use super::schema::Config;

/// One problem: the key it is about, why, and another key it clashes with, if any (both
/// places are named to the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub key: String,
    pub reason: String,
    pub also: Option<String>,
}

type Found = Vec<Finding>;

pub(super) fn validate(c: &Config) -> Found {
    let mut found = Vec::new();
    host(c, &mut found);
    storage(c, &mut found);
    telegram(c, &mut found);
    webhooks(c, &mut found);
    checks(c, &mut found);
    system(c, &mut found);
    processes(c, &mut found);
    database(c, &mut found);
    auth(c, &mut found);
    silences(c, &mut found);
    history(c, &mut found);
    heartbeat(c, &mut found);
    reports(c, &mut found);
    durations(c, &mut found);
    status_page(c, &mut found);
    found
}

fn heartbeat(c: &Config, found: &mut Found) {
    if let Some(h) = &c.heartbeat {
        // The reason never quotes the URL: it is a secret.
        check_http_url(found, "heartbeat.url", h.url.expose());
    }
}

/// Longest interval of anything that runs repeatedly: a check looked at less than once a day
/// is not being watched.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Longest reminder interval and flap window.
const MAX_REMIND: Duration = Duration::from_secs(30 * 86_400);
/// Longest shutdown grace: systemd gives up long before.
const MAX_GRACE: Duration = Duration::from_secs(600);

/// Durations that parse but make no sense: intervals over a day, a timeout longer than the
/// interval it runs in, waits longer than anything could use.
fn durations(c: &Config, found: &mut Found) {
    let at_most = |found: &mut Found, key: String, d: HumanDuration, max: Duration, what: &str| {
        if d.get() > max {
            push(
                found,
                key,
                format!(
                    "must be at most {} ({what})",
                    HumanDuration::from_millis(max.as_millis() as u64)
                ),
            );
        }
    };
    let interval = "a check looked at less often than daily is not watched";
    for (i, h) in c.http.iter().enumerate() {
        at_most(
            found,
            format!("http[{i}].every"),
            h.every,
            MAX_INTERVAL,
            interval,
        );
        if h.timeout > h.every {
            push(
                found,
                format!("http[{i}].timeout"),
                format!(
                    "must not be longer than http[{i}].every ({} > {}): probes would pile up",
                    h.timeout, h.every
                ),
            );
        }
        if let Some(r) = h.remind_every {
            at_most(
                found,
                format!("http[{i}].remind_every"),
                r,
                MAX_REMIND,
                "30 days",
            );
        }
    }
    for (key, d) in [
        ("system.every", c.system.every),
        ("system.sample_every", c.system.sample_every),
        ("system.sustain", c.system.sustain),
        ("pm2.every", c.pm2.every),
        ("systemd.every", c.systemd.every),
    ] {
        at_most(found, key.to_owned(), d, MAX_INTERVAL, interval);
    }
    if let Some(d) = &c.disputes {
        at_most(
            found,
            "disputes.every".to_owned(),
            d.every,
            MAX_INTERVAL,
            interval,
        );
    }
    at_most(
        found,
        "alerts.flap_window".to_owned(),
        c.alerts.flap_window,
        MAX_REMIND,
        "30 days",
    );
    at_most(
        found,
        "server.shutdown_grace".to_owned(),
        c.server.shutdown_grace,
        MAX_GRACE,
        "systemd stops waiting long before",
    );
}

/// The public status page may only list HTTP checks that exist: a typo would otherwise show
/// visitors a check that is never probed.
fn status_page(c: &Config, found: &mut Found) {
    for (i, name) in c.status_page.checks.iter().flatten().enumerate() {
        if !c.http.iter().any(|h| &h.name == name) {
            push(
                found,
                format!("status_page.checks[{i}]"),
                format!("no [[http]] check is named {name:?}"),
            );
        }
    }
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
    found.push(Finding {
        key: key.into(),
        reason: reason.into(),
        also: None,
    });
}

fn host(c: &Config, found: &mut Found) {
    let h = c.host.trim();
    if h.is_empty() {
        push(found, "host", "is empty");
    } else if h.len() > 253
        || c.host
            .contains(|ch: char| ch.is_whitespace() || ch.is_control())
    {
        push(
            found,
            "host",
            "must be a host name such as \"web-1\" (no spaces, at most 253 characters)",
        );
    }
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

/// Every up/down check, whatever its kind: a name unique across all kinds, sane timing, and
/// what the kind itself finds wrong with its block.
fn checks(c: &Config, found: &mut Found) {
    use std::time::Duration;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut index: HashMap<crate::checks::CheckKind, usize> = HashMap::new();
    for check in crate::checks::configured(c) {
        let kind = check.kind();
        let slot = index.entry(kind).or_default();
        let i = *slot;
        *slot += 1;
        let key = |k: &str| format!("{kind}[{i}].{k}");
        let name = check.name();
        if name.trim().is_empty() {
            push(found, key("name"), "is empty");
        } else if let Some(first) = names.get(name) {
            found.push(Finding {
                key: key("name"),
                reason: format!("{name:?} is used twice"),
                also: Some(first.clone()),
            });
        } else {
            names.insert(name.to_owned(), key("name"));
        }
        let t = check.timing();
        if t.every.get() < Duration::from_secs(1) {
            push(found, key("every"), "must be at least 1s");
        }
        if t.timeout.get().is_zero() {
            push(found, key("timeout"), "must be more than 0s");
        }
        if t.failures == 0 {
            push(found, key("failures"), "must be at least 1");
        }
        if let Some(r) = t.remind_every
            && r.get() < Duration::from_secs(60)
        {
            push(found, key("remind_every"), "must be at least 1m");
        }
        for (k, why) in check.problems() {
            push(found, key(&k), why);
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
        if let Some(q) = &d.query
            && !q.contains("$1")
        {
            push(
                found,
                "disputes.query",
                "must compare its first column with $1 (e.g. \"... WHERE id > $1 ORDER BY id\")",
            );
        }
    }
    if let Some(db) = &c.database {
        if db.dead_tuples_warn < 1 {
            push(found, "database.dead_tuples_warn", "must be at least 1");
        }
        if db.statement_timeout.get() < std::time::Duration::from_secs(1) {
            push(found, "database.statement_timeout", "must be at least 1s");
        }
        if db.long_query.get() < std::time::Duration::from_secs(1) {
            push(found, "database.long_query", "must be at least 1s");
        }
        if let Some(t) = &db.migrations_table
            && (t.is_empty() || t.split('.').count() > 2 || t.split('.').any(str::is_empty))
        {
            push(
                found,
                "database.migrations_table",
                "must be a table name, optionally with its schema (\"public.versions\")",
            );
        }
    }
    if c.vacuum.enabled && c.database.is_none() {
        push(
            found,
            "vacuum.enabled",
            "needs [database] url to run against",
        );
    }
    if c.vacuum.lock_timeout.get().is_zero() {
        push(found, "vacuum.lock_timeout", "must be more than 0s");
    }
    if c.vacuum.statement_timeout.get() < std::time::Duration::from_secs(1) {
        push(found, "vacuum.statement_timeout", "must be at least 1s");
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

fn reports(c: &Config, found: &mut Found) {
    if let Some(url) = &c.server.public_url
        && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        push(
            found,
            "server.public_url",
            "must be an http:// or https:// URL",
        );
    }
    let daily = &c.reports.daily;
    if !daily.stats.is_empty() && c.database.is_none() {
        push(
            found,
            "reports.daily.stats",
            "needs [database] url to run against",
        );
    }
    let mut names = HashSet::new();
    for (i, s) in daily.stats.iter().enumerate() {
        check_name(
            found,
            &format!("reports.daily.stats[{i}].name"),
            &s.name,
            &mut names,
        );
        if s.sql.trim().is_empty() {
            push(
                found,
                format!("reports.daily.stats[{i}].sql"),
                "must not be empty",
            );
        }
    }
    for (i, p) in c.reports.weekly.patterns.iter().enumerate() {
        if p.is_empty() {
            push(
                found,
                format!("reports.weekly.patterns[{i}]"),
                "must not be empty",
            );
        }
    }
    if c.reports.weekly.scan_limit_mib == 0 {
        push(found, "reports.weekly.scan_limit_mib", "must be at least 1");
    }
    let sec = &c.reports.security;
    if sec.tls_crit_days > sec.tls_warn_days {
        push(
            found,
            "reports.security.tls_crit_days",
            "must not be more than tls_warn_days",
        );
    }
    let r = &c.restart;
    for (i, name) in r.pm2.iter().enumerate() {
        if name.trim().is_empty() {
            push(
                found,
                format!("restart.pm2[{i}]"),
                "must be \"all\" or an app name",
            );
        }
    }
    for (i, unit) in r.units.iter().enumerate() {
        if unit.trim().is_empty() || unit.starts_with('-') {
            push(found, format!("restart.units[{i}]"), "must be a unit name");
        }
    }
    if r.enabled && r.pm2.is_empty() && r.units.is_empty() {
        push(
            found,
            "restart.pm2",
            "restart is enabled but names no PM2 app and no unit",
        );
    }
}
