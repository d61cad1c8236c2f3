//! Runs jobs on their triggers: fixed intervals for checks, cron (UTC) for digests and
//! reports. Each job runs in its own task, so it never overlaps itself and a slow job never
//! delays another; a global semaphore bounds how many run at once; every run has a timeout.
//! Cron occurrences come from a [`CronCursor`] (fires each occurrence once, catches up a run
//! missed while opswatch was down); each run is contained and recorded ([`job_run`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Schedule;
use crate::daemon::cron::{Clock, CronCursor, Step};
use crate::daemon::health::HEARTBEAT_EVERY;
use crate::daemon::job_run::{self, RunGuard};
use crate::daemon::state::AppState;
use crate::store::now_ms;

pub type JobFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
pub type JobFn = Arc<dyn Fn(AppState) -> JobFuture + Send + Sync>;

/// How many jobs may run at the same moment; the rest wait their turn. Probes mostly wait on
/// the network, so this is generous: a handful of hanging targets (each holding a slot until
/// its timeout) must never delay the others.
const MAX_CONCURRENT_JOBS: usize = 256;

/// When a job runs.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// At start, then every interval after the previous run began.
    Every(Duration),
    /// At each cron occurrence, in UTC.
    Cron(Box<Schedule>),
}

#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub trigger: Trigger,
    /// A run still going after this long is abandoned and logged.
    pub timeout: Duration,
    pub run: JobFn,
}

#[derive(Default)]
pub struct Scheduler {
    jobs: Vec<Job>,
    /// The wall clock cron occurrences are read from; the app's clock when unset, so a test
    /// that moves the app's clock also moves cron jobs.
    clock: Option<Arc<dyn Clock>>,
    /// Failed runs in a row each job starts with (see `resume_failure_streaks`).
    failures: HashMap<String, u32>,
}

impl Trigger {
    /// `every 5m`, or the cron expression.
    pub fn describe(&self) -> String {
        match self {
            Self::Every(d) => format!(
                "every {}",
                crate::config::HumanDuration::from_millis(d.as_millis() as u64)
            ),
            Self::Cron(s) => s.as_str().to_owned(),
        }
    }
}

impl Scheduler {
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn add(&mut self, job: Job) {
        self.jobs.push(job);
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Each job's run of failures goes on from its stored runs instead of starting at 0: read
    /// once before the jobs start, so no job's first run waits on the store.
    pub async fn resume_failure_streaks(&mut self, app: &AppState, host: &str) {
        for job in &self.jobs {
            let n = job_run::stored_failure_streak(app, host, &job.name).await;
            if n > 0 {
                self.failures.insert(job.name.clone(), n);
            }
        }
    }

    /// Starts the heartbeat and every job on `tasks`; all stop when `shutdown` is cancelled.
    pub fn spawn(self, app: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
        let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_JOBS));
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(app.clock.clone()) as Arc<dyn Clock>);
        for job in self.jobs {
            app.jobs.register(&job.name, job.trigger.describe());
            let guard = RunGuard::with_failures(self.failures.get(&job.name).copied().unwrap_or(0));
            tasks.spawn(run_job(
                job,
                guard,
                app.clone(),
                limit.clone(),
                clock.clone(),
                shutdown.clone(),
            ));
        }
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => app.health.record_heartbeat(now_ms()),
                }
            }
        });
    }
}

async fn run_job(
    job: Job,
    guard: RunGuard,
    app: AppState,
    limit: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let host = crate::reports::this_host();
    let guard = Arc::new(guard);
    let run = |occurrence: Option<DateTime<Utc>>| {
        let (job, app, limit, guard, host) = (&job, &app, &limit, &guard, &host);
        async move {
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            // Shutdown does not cut a run short: it finishes or times out (the grace period
            // of `serve` bounds the wait).
            job_run::run_once(app, job, guard, host, occurrence).await;
        }
    };
    match &job.trigger {
        Trigger::Every(every) => {
            let mut next = tokio::time::Instant::now();
            // A test's clock, moved past the next run, runs the job without the real wait.
            let mut moves = app.clock.watch_moves();
            let mut due_ms = app.clock.now_ms();
            loop {
                app.jobs.set_next(
                    &job.name,
                    Some(
                        now_ms()
                            + next
                                .saturating_duration_since(tokio::time::Instant::now())
                                .as_millis() as i64,
                    ),
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(next) => {}
                    _ = app.clock.moved_past(&mut moves, due_ms) => {}
                }
                let started = tokio::time::Instant::now();
                let started_ms = app.clock.now_ms();
                run(None).await;
                // A run longer than the interval starts the next one at once, never a backlog.
                next = (started + *every).max(tokio::time::Instant::now());
                due_ms =
                    started_ms.saturating_add(i64::try_from(every.as_millis()).unwrap_or(i64::MAX));
            }
        }
        Trigger::Cron(schedule) => {
            let mut cursor =
                CronCursor::new(last_occurrence(&app, &host, &job.name, clock.now()).await);
            loop {
                let now = clock.now();
                match cursor.poll(schedule, now) {
                    Step::Fire(at) => {
                        if let Err(e) = app
                            .store
                            .set_job_last_occurrence(
                                &host,
                                &job.name,
                                at.timestamp_millis(),
                                now_ms(),
                            )
                            .await
                        {
                            tracing::warn!(job = %job.name, error = format!("{e:#}"), "cannot record the occurrence");
                        }
                        run(Some(at)).await;
                    }
                    Step::Sleep(wait) => {
                        app.jobs
                            .set_next(&job.name, cursor.next().map(|n| n.timestamp_millis()));
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(clock.max_sleep().map_or(wait, |cap| wait.min(cap))) => {}
                        }
                    }
                    Step::Never => {
                        app.jobs.set_next(&job.name, None);
                        return;
                    }
                }
            }
        }
    }
}

/// The last occurrence `job` fired for, from the store; a job never scheduled before starts
/// from `now` (nothing before it is caught up), and so does one whose store cannot be read.
async fn last_occurrence(
    app: &AppState,
    host: &str,
    job: &str,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match app.store.job_last_occurrence(host, job).await {
        Ok(Some(ms)) => DateTime::from_timestamp_millis(ms).unwrap_or(now),
        Ok(None) => {
            if let Err(e) = app
                .store
                .set_job_last_occurrence(host, job, now.timestamp_millis(), now_ms())
                .await
            {
                tracing::warn!(
                    job,
                    error = format!("{e:#}"),
                    "cannot record the job's schedule"
                );
            }
            now
        }
        Err(e) => {
            tracing::warn!(
                job,
                error = format!("{e:#}"),
                "cannot read the job's last run; no catch-up"
            );
            now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting_job(name: &str, every: Duration, runs: Arc<AtomicUsize>, takes: Duration) -> Job {
        Job {
            name: name.to_owned(),
            trigger: Trigger::Every(every),
            timeout: Duration::from_secs(60),
            run: Arc::new(move |_| {
                let runs = runs.clone();
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(takes).await;
                    Ok(())
                })
            }),
        }
    }

    #[tokio::test]
    async fn a_slow_job_never_overlaps_itself_nor_delays_another() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        tokio::time::pause();
        let slow = Arc::new(AtomicUsize::new(0));
        let fast = Arc::new(AtomicUsize::new(0));
        let mut s = Scheduler::default();
        s.add(counting_job(
            "slow",
            Duration::from_secs(1),
            slow.clone(),
            Duration::from_secs(10),
        ));
        s.add(counting_job(
            "fast",
            Duration::from_secs(1),
            fast.clone(),
            Duration::ZERO,
        ));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        s.spawn(&app, &shutdown, &mut tasks);
        tokio::time::sleep(Duration::from_millis(20_500)).await;
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        // slow: runs at 0, 10, 20 (each 10 s long, never two at once); fast: every second.
        assert_eq!(slow.load(Ordering::SeqCst), 3);
        assert_eq!(fast.load(Ordering::SeqCst), 21);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_job_is_contained_recorded_and_warned_about_once_while_opswatch_serves() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let others = Arc::new(AtomicUsize::new(0));
        let mut s = Scheduler::default();
        s.add(Job {
            name: "boom".to_owned(),
            trigger: Trigger::Every(Duration::from_millis(100)),
            timeout: Duration::from_secs(10),
            run: Arc::new(|_| {
                Box::pin(async {
                    let empty: Vec<u8> = Vec::new();
                    let i = empty.len();
                    // An index out of bounds, as a bug would have it.
                    let _ = std::hint::black_box(&empty)[i];
                    Ok(())
                })
            }),
        });
        s.add(counting_job(
            "other",
            Duration::from_millis(100),
            others.clone(),
            Duration::ZERO,
        ));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        s.spawn(&app, &shutdown, &mut tasks);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let web = tokio::spawn(crate::web::serve_router(
            app.clone(),
            crate::web::router(app.clone()),
            listener,
            {
                let shutdown = shutdown.clone();
                async move { shutdown.cancelled().await }
            },
        ));
        let host = crate::reports::this_host();
        for _ in 0..500 {
            if app
                .store
                .list_job_runs(&host, "boom", 10)
                .await
                .unwrap()
                .len()
                >= 4
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Still serving, and the API shows the panic as the job's last outcome.
        let jobs: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/jobs"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        shutdown.cancel();
        while let Some(done) = tasks.join_next().await {
            assert!(done.is_ok(), "a scheduler task ended badly: {done:?}");
        }
        web.await.unwrap().unwrap();

        let boom = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "boom")
            .unwrap();
        assert_eq!(boom["last_outcome"], "panic", "{boom}");
        let runs = app.store.list_job_runs(&host, "boom", 100).await.unwrap();
        assert!(runs.len() >= 4, "{runs:?}");
        for r in &runs {
            assert_eq!(r.outcome, "panic");
            assert!(
                r.error.as_deref().unwrap().contains("index out of bounds"),
                "{r:?}"
            );
        }
        let items = app.store.pending_digest_items().await.unwrap();
        let ours: Vec<_> = items.iter().filter(|i| i.key == "job:boom").collect();
        assert_eq!(ours.len(), 1, "{items:?}");
        assert_eq!(
            ours[0].count, 1,
            "one WARNING after 3 panics, not one per run"
        );
        assert!(
            others.load(Ordering::SeqCst) >= 4,
            "the other job kept running"
        );
    }

    /// The tests above run with unwinding (the test harness needs it); the daemon runs the
    /// release profile, which must unwind too, or a job's panic would end opswatch.
    #[test]
    fn the_release_profile_unwinds() {
        let manifest: toml::Table =
            toml::from_str(include_str!("../../Cargo.toml")).expect("Cargo.toml parses");
        let release = &manifest["profile"]["release"];
        assert_ne!(
            release.get("panic").and_then(|p| p.as_str()),
            Some("abort"),
            "panic = \"abort\" in [profile.release] makes a job's panic end the daemon"
        );
    }

    /// A wall clock that stays where the test puts it.
    struct FixedClock(std::sync::Mutex<DateTime<Utc>>);

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    fn cron_job(name: &str, schedule: &str, runs: Arc<AtomicUsize>) -> Job {
        Job {
            name: name.to_owned(),
            trigger: Trigger::Cron(Box::new(schedule.parse().unwrap())),
            timeout: Duration::from_secs(60),
            run: Arc::new(move |_| {
                let runs = runs.clone();
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            }),
        }
    }

    async fn wait_for(runs: &AtomicUsize, n: usize) {
        for _ in 0..200 {
            if runs.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{n} runs never happened");
    }

    #[tokio::test]
    async fn a_run_missed_while_down_is_caught_up_once_also_across_restarts() {
        use chrono::TimeZone;
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let host = crate::reports::this_host();
        let today_9 = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        // Last fired yesterday at 09:00; opswatch comes back at 10:00 today.
        app.store
            .set_job_last_occurrence(
                &host,
                "daily",
                (today_9 - chrono::Duration::days(1)).timestamp_millis(),
                0,
            )
            .await
            .unwrap();
        let clock = Arc::new(FixedClock(std::sync::Mutex::new(
            today_9 + chrono::Duration::hours(1),
        )));
        let runs = Arc::new(AtomicUsize::new(0));
        for start in 0..2 {
            let mut s = Scheduler::default().with_clock(clock.clone());
            s.add(cron_job("daily", "0 9 * * *", runs.clone()));
            let shutdown = CancellationToken::new();
            let mut tasks = JoinSet::new();
            s.spawn(&app, &shutdown, &mut tasks);
            if start == 0 {
                wait_for(&runs, 1).await;
            }
            // The job's next run is tomorrow 09:00, whatever the restart.
            for _ in 0..200 {
                if app.jobs.list().iter().any(|j| j.next_run_ms.is_some()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let view = app
                .jobs
                .list()
                .into_iter()
                .find(|j| j.name == "daily")
                .unwrap();
            assert_eq!(
                view.next_run_ms,
                Some((today_9 + chrono::Duration::days(1)).timestamp_millis())
            );
            shutdown.cancel();
            while tasks.join_next().await.is_some() {}
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "caught up once, not again after a restart"
        );
        let recorded = app.store.list_job_runs(&host, "daily", 10).await.unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].occurrence_ms, Some(today_9.timestamp_millis()));
        assert_eq!(recorded[0].outcome, "ok");
    }

    #[tokio::test]
    async fn a_new_cron_job_does_not_run_at_start() {
        use chrono::TimeZone;
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let clock = Arc::new(FixedClock(std::sync::Mutex::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        )));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut s = Scheduler::default().with_clock(clock);
        s.add(cron_job("weekly", "0 9 * * *", runs.clone()));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        s.spawn(&app, &shutdown, &mut tasks);
        for _ in 0..200 {
            if app.jobs.list().iter().any(|j| j.next_run_ms.is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        let host = crate::reports::this_host();
        assert!(
            app.store
                .job_last_occurrence(&host, "weekly")
                .await
                .unwrap()
                .is_some()
        );
    }
}
