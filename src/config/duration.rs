//! Human durations as written in the config file: `"500ms"`, `"30s"`, `"5m"`, `"4h"`, `"7d"`,
//! and sums of them such as `"1h30m"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration parsed from the config's string form.
///
/// Kept as its own type so that the canonical spelling round-trips through `config check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    // A year of 365 days: retention periods, not calendar arithmetic.
    ("y", 31_536_000_000),
];

/// The longest duration the config takes: 100 years. Far beyond any sensible period, and far
/// from where adding it to a clock overflows (`Instant + u64::MAX ms` panics; epoch
/// milliseconds are `i64`).
pub const MAX_MS: u64 = 100 * 31_536_000_000;

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

/// Why a duration string was refused; the message is shown to the operator as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {input:?}: {why} (write e.g. \"500ms\", \"30s\", \"5m\", \"4h\", \"7d\")"
)]
pub struct DurationError {
    input: String,
    why: &'static str,
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why| DurationError {
            input: input.to_owned(),
            why,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let mut total_ms: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| err("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(err("a unit is missing after the number"));
            }
            let unit = &rest[..unit_len];
            let factor = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| err("unknown unit (use ms, s, m, h, d, w or y)"))?;
            total_ms = number
                .checked_mul(factor)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| err("too large"))?;
            rest = &rest[unit_len..];
        }
        if total_ms > MAX_MS {
            return Err(err("too large (at most 100y)"));
        }
        Ok(Self(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for HumanDuration {
    /// Writes the shortest exact spelling, largest units first (`90m` → `1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, factor) in UNITS.iter().rev() {
            if ms >= *factor {
                write!(f, "{}{}", ms / factor, name)?;
                ms %= factor;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u128 {
        s.parse::<HumanDuration>().unwrap().get().as_millis()
    }

    #[test]
    fn parses_every_unit_and_sums() {
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("5m"), 300_000);
        assert_eq!(ms("4h"), 14_400_000);
        assert_eq!(ms("7d"), 604_800_000);
        assert_eq!(ms("1w"), 604_800_000);
        assert_eq!(ms("2y"), 63_072_000_000);
        assert_eq!(ms("1h30m"), 5_400_000);
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "-5s",
            "5 s",
            "1.5h",
            "99999999999999999999s",
        ] {
            assert!(
                bad.parse::<HumanDuration>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        for (input, shown) in [
            ("90m", "1h30m"),
            ("500ms", "500ms"),
            ("7d", "1w"),
            ("0s", "0s"),
        ] {
            assert_eq!(input.parse::<HumanDuration>().unwrap().to_string(), shown);
        }
    }
}
