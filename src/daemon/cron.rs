//! When a cron job fires, as pure logic over an injected wall clock.
//!
//! The scheduler sleeps on the monotonic clock, but occurrences are wall-clock times. Asking
//! croner for "the next occurrence after now" right after waking is wrong when the wall clock
//! is slightly behind the monotonic one (slew, a step back, a VM resume): at 08:59:59.998 the
//! next occurrence is 09:00:00 *again*, so the 09:00 report would go out twice. The cursor
//! remembers the last occurrence it fired and only ever asks for occurrences after the later
//! of that and now. Sleeps are capped (see [`MAX_SLEEP`]) so a clock step or a suspend delays
//! an occurrence by at most that much.
//!
//! Catch-up: when the latest occurrence at or before now has not fired yet and is less than
//! one period late (the gap to the occurrence after it), it fires once, so a daily report
//! missed by an hour of downtime still goes out, but a week of downtime is not a flood.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Schedule;

/// The longest the scheduler sleeps before it looks at the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Where "now" comes from; injected so tests can move time by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The longest a scheduler may sleep before reading this clock again: `None` for a clock
    /// that moves by itself (sleep until the next occurrence), a short poll for one that a
    /// test moves by hand (its jump is seen without waiting for the old occurrence).
    fn max_sleep(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The app's clock drives cron occurrences too.
impl Clock for crate::daemon::clock::Clock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_else(Utc::now)
    }

    fn max_sleep(&self) -> Option<std::time::Duration> {
        match self {
            Self::System => None,
            Self::Manual(_) => Some(std::time::Duration::from_millis(20)),
        }
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What the scheduler should do next for one cron job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run now for this occurrence.
    Fire(DateTime<Utc>),
    /// Nothing is due: look again after this long.
    Sleep(Duration),
    /// The schedule never fires again.
    Never,
}

/// One cron job's position: the last occurrence it fired for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronCursor {
    last: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
}

impl CronCursor {
    /// A cursor that considers everything up to `last` done. For a job never scheduled before,
    /// pass the moment it was first scheduled: occurrences before it are not caught up.
    pub fn new(last: DateTime<Utc>) -> Self {
        Self { last, next: None }
    }

    pub fn last(&self) -> DateTime<Utc> {
        self.last
    }

    /// The occurrence it waits for, known after a [`poll`](Self::poll) that slept.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.next
    }

    pub fn poll(&mut self, schedule: &Schedule, now: DateTime<Utc>) -> Step {
        if let Some(due) = schedule.last_at_or_before(now)
            && due > self.last
            && less_than_one_period_late(schedule, due, now)
        {
            self.last = due;
            self.next = None;
            return Step::Fire(due);
        }
        match schedule.next_after(self.last.max(now)) {
            Some(next) => {
                self.next = Some(next);
                let wait = (next - now).to_std().unwrap_or_default();
                Step::Sleep(wait.min(MAX_SLEEP))
            }
            None => {
                self.next = None;
                Step::Never
            }
        }
    }
}

/// Whether `now` is less than one period (the gap from `due` to the occurrence after it)
/// past `due`.
pub fn less_than_one_period_late(
    schedule: &Schedule,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    match schedule.next_after(due) {
        Some(following) => now - due < following - due,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32, ms: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
            + chrono::Duration::milliseconds(ms.into())
    }

    fn daily() -> Schedule {
        "0 9 * * *".parse().unwrap()
    }

    #[test]
    fn fires_once_when_the_wall_clock_is_slightly_behind_after_waking() {
        let s = daily();
        let mut c = CronCursor::new(at(8, 0, 0, 0));
        assert!(matches!(c.poll(&s, at(8, 0, 0, 0)), Step::Sleep(d) if d == MAX_SLEEP));
        // Woken by the monotonic clock at 09:00: fires.
        assert_eq!(c.poll(&s, at(9, 0, 0, 1)), Step::Fire(at(9, 0, 0, 0)));
        // Next look, the wall clock has been slewed back a little: 08:59:59.998. croner's
        // "next after now" would be 09:00 the same day; the cursor waits for tomorrow.
        let step = c.poll(&s, at(8, 59, 59, 998));
        assert_eq!(step, Step::Sleep(MAX_SLEEP));
        assert_eq!(c.next(), Some(at(9, 0, 0, 0) + chrono::Duration::days(1)));
        assert_eq!(c.poll(&s, at(9, 0, 0, 2)), Step::Sleep(MAX_SLEEP));
    }

    #[test]
    fn waking_a_little_early_sleeps_the_rest_then_fires() {
        let s = daily();
        let mut c = CronCursor::new(at(8, 0, 0, 0));
        assert_eq!(
            c.poll(&s, at(8, 59, 59, 998)),
            Step::Sleep(Duration::from_millis(2))
        );
        assert_eq!(c.poll(&s, at(9, 0, 0, 0)), Step::Fire(at(9, 0, 0, 0)));
    }

    #[test]
    fn sleeps_are_capped_so_a_clock_step_forward_is_noticed() {
        let s = daily();
        let mut c = CronCursor::new(at(1, 0, 0, 0));
        assert_eq!(c.poll(&s, at(1, 0, 0, 0)), Step::Sleep(MAX_SLEEP));
        // The wall clock jumped (suspend, NTP step) past 09:00 during that sleep.
        assert_eq!(c.poll(&s, at(9, 30, 0, 0)), Step::Fire(at(9, 0, 0, 0)));
    }

    #[test]
    fn a_run_missed_while_down_runs_once_at_start_when_less_than_a_period_late() {
        let s = daily();
        // Last fired yesterday 09:00; opswatch was down from 08:00 to 10:00 today.
        let yesterday = at(9, 0, 0, 0) - chrono::Duration::days(1);
        let mut c = CronCursor::new(yesterday);
        assert_eq!(c.poll(&s, at(10, 0, 0, 0)), Step::Fire(at(9, 0, 0, 0)));
        // Once only.
        assert!(matches!(c.poll(&s, at(10, 0, 0, 5)), Step::Sleep(_)));
    }

    #[test]
    fn a_run_missed_by_more_than_a_period_is_skipped() {
        let s = daily();
        // Down for three days: the latest occurrence (today 09:00) is caught up, the others
        // are not; and when even that is a period late, nothing is.
        let mut c = CronCursor::new(at(9, 0, 0, 0) - chrono::Duration::days(3));
        assert_eq!(c.poll(&s, at(10, 0, 0, 0)), Step::Fire(at(9, 0, 0, 0)));
        assert!(matches!(c.poll(&s, at(10, 0, 0, 1)), Step::Sleep(_)));

        let weekly: Schedule = "0 0 * * 1".parse().unwrap(); // 2026-11-23 is a Monday
        let mut c = CronCursor::new(at(0, 0, 0, 0) - chrono::Duration::days(14));
        // Monday 00:00 + 6 days 23 h: still less than a week late.
        let late = at(23, 0, 0, 0) + chrono::Duration::days(6);
        assert_eq!(c.poll(&weekly, late), Step::Fire(at(0, 0, 0, 0)));
    }

    #[test]
    fn a_new_job_does_not_catch_up_what_was_due_before_it_existed() {
        let s = daily();
        let mut c = CronCursor::new(at(10, 0, 0, 0));
        assert!(matches!(c.poll(&s, at(10, 0, 0, 0)), Step::Sleep(_)));
    }

    #[test]
    fn a_clock_stepped_far_back_never_repeats_an_occurrence() {
        let s = daily();
        let mut c = CronCursor::new(at(8, 0, 0, 0));
        assert_eq!(c.poll(&s, at(9, 0, 0, 0)), Step::Fire(at(9, 0, 0, 0)));
        // An hour back: 09:00 is not fired again when the clock reaches it a second time.
        assert!(matches!(c.poll(&s, at(8, 0, 0, 0)), Step::Sleep(_)));
        assert!(matches!(c.poll(&s, at(9, 0, 0, 0)), Step::Sleep(_)));
        assert!(matches!(c.poll(&s, at(9, 30, 0, 0)), Step::Sleep(_)));
    }
}
