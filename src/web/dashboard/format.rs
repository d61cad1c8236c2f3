//! How numbers and times read on the pages.

use chrono::{DateTime, Utc};

/// `2026-11-28 08:15 UTC`
pub fn fmt_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The same time as an ISO string for `<time datetime>`.
pub fn iso_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A duration in the two largest units that matter: `3 d 4 h`, `2 h 05 min`, `42 s`.
pub fn fmt_duration(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

/// `1.5 GiB`
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// An uptime: `99.95 %`, or `no data`.
pub fn fmt_uptime(pct: Option<f64>) -> String {
    match pct {
        None => "no data".to_owned(),
        Some(p) if p >= 100.0 => "100 %".to_owned(),
        Some(p) => format!("{p:.2} %"),
    }
}

/// A state word and the CSS class that colours it (the word carries the meaning).
pub fn state_class(state: &str) -> &'static str {
    match state {
        "up" | "ok" | "online" | "active" | "sent" | "resolved" => "ok",
        "warning" | "pending" | "restarting" | "launching" | "activating" | "reloading" => "warn",
        "down" | "critical" | "errored" | "failed" | "stopped" | "crash loop" | "inactive" => "bad",
        _ => "muted",
    }
}

/// Percent-encodes `s` for one path segment of a link (`/endpoints/{name}`).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(42_000), "42 s");
        assert_eq!(fmt_duration(5 * 60_000), "5 min");
        assert_eq!(fmt_duration(2 * 3_600_000 + 5 * 60_000), "2 h 05 min");
        assert_eq!(fmt_duration(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
        assert_eq!(fmt_bytes(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(fmt_uptime(Some(99.951)), "99.95 %");
    }
}
