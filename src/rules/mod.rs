//! Rules: turn stored observations into alerts. They know nothing of channels.

pub mod alert;
pub mod app_db;
pub mod condition;
pub mod digest;
pub mod disputes;
pub mod host;
pub mod processes;
pub mod silence;
pub mod store_disk;
pub mod updown;

/// "1h 5m", "12m 30s", "45s": how long something lasted, for people.
pub fn human_duration(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_for_people() {
        assert_eq!(super::human_duration(45_000), "45s");
        assert_eq!(super::human_duration(750_000), "12m 30s");
        assert_eq!(super::human_duration(3_900_000), "1h 5m");
        assert_eq!(super::human_duration(93_600_000), "1d 2h");
    }
}
