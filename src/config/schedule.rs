//! Cron schedules in UTC: five fields as in a crontab line, or six with seconds first.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated cron expression; evaluated in UTC only, so a server's local time zone or a
/// daylight-saving switch never moves a report.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid cron schedule {input:?}: {why} (5 fields \"min hour day month weekday\", or 6 with seconds first)"
)]
pub struct ScheduleError {
    input: String,
    why: String,
}

impl Schedule {
    /// The first time strictly after `after` that the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The last time at or before `at` that the schedule fired.
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&at, true).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why: String| ScheduleError {
            input: input.to_owned(),
            why,
        };
        let fields = input.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(err(format!("it has {fields} fields")));
        }
        let cron = Cron::from_str(input).map_err(|e| err(e.to_string()))?;
        // A pattern such as "0 0 31 2 *" parses but never fires; catch it now, not in February.
        if cron.find_next_occurrence(&Utc::now(), false).is_err() {
            return Err(err("it never fires".to_owned()));
        }
        Ok(Self {
            text: input.split_whitespace().collect::<Vec<_>>().join(" "),
            cron,
        })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_fire_in_utc() {
        let s: Schedule = "30 1 * * *".parse().unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
        assert_eq!(
            s.next_after(from),
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 1, 30, 0).unwrap())
        );
    }

    #[test]
    fn six_fields_take_seconds_first() {
        let s: Schedule = "15 0 */4 * * *".parse().unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
        assert_eq!(
            s.next_after(from),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 4, 0, 15).unwrap())
        );
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in ["", "* * *", "61 * * * *", "* * * * * * *", "every day"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} was accepted");
        }
    }
}
