//! One run of a scheduled job: never beside another run of the same job, contained (an error,
//! a timeout or a panic is an outcome, not the end of the scheduler), recorded, and after
//! [`FAILURES_BEFORE_WARNING`] failed runs in a row, one WARNING (into the digest).
//!
//! What is stored: every run of a cron job (rare, and each one matters: a report, a restart).
//! Interval jobs (every check's probe sweep, host sampling, pollers) run every few seconds;
//! one store write per run doubled the writes of a probe and broke the CPU budget of the
//! checks (BENCHMARKS.md). Their latest run is kept in memory for `GET /api/v1/jobs`, and the
//! store gets only the runs that say something: every failed run and a run whose outcome
//! differs from the previous one (the recovery after a failure; the first run of a process).
//! The count of failed runs in a row is this process's, as before (a store read before each
//! job's first run would delay it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::daemon::scheduler::Job;
use crate::daemon::state::AppState;
use crate::rules::condition::{Assessment, Level};
use crate::store::{RunOutcome, now_ms};

/// Failed runs in a row before the job raises a WARNING.
pub const FAILURES_BEFORE_WARNING: u32 = 3;
/// Runs older than this are pruned (the latest run of each job is always kept).
const KEEP_RUNS_MS: i64 = 7 * 86_400_000;
/// Prune once every this many recorded runs of this process.
const PRUNE_EVERY_RUNS: u64 = 500;

tokio::task_local! {
    /// The cron occurrence the running job was started for.
    static OCCURRENCE: Option<DateTime<Utc>>;
}

/// Inside a job: the cron occurrence this run is for (`None` for interval jobs and runs by
/// hand). Reports name their occurrence with it, so one occurrence is never sent twice.
pub fn current_occurrence() -> Option<DateTime<Utc>> {
    OCCURRENCE.try_with(|o| *o).ok().flatten()
}

/// What one job looks like from outside, kept in memory for `GET /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobView {
    pub name: String,
    /// `every 5m` or the cron expression.
    pub schedule: String,
    pub next_run_ms: Option<i64>,
    pub running: bool,
    pub consecutive_failures: u32,
    /// The latest run of this process (`None` before its first run: the store has older ones).
    pub last_run: Option<LastRun>,
}

/// The latest run of a job, as `GET /api/v1/jobs` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastRun {
    pub started_ms: i64,
    /// `None` while it runs.
    pub finished_ms: Option<i64>,
    pub occurrence_ms: Option<i64>,
    pub outcome: RunOutcome,
    pub error: Option<String>,
}

/// Every scheduled job of this process and when it runs next.
#[derive(Debug, Default)]
pub struct JobBoard {
    jobs: RwLock<BTreeMap<String, JobView>>,
    recorded: std::sync::atomic::AtomicU64,
}

impl JobBoard {
    pub fn register(&self, name: &str, schedule: String) {
        if let Ok(mut jobs) = self.jobs.write() {
            jobs.insert(
                name.to_owned(),
                JobView {
                    name: name.to_owned(),
                    schedule,
                    next_run_ms: None,
                    running: false,
                    consecutive_failures: 0,
                    last_run: None,
                },
            );
        }
    }

    pub fn list(&self) -> Vec<JobView> {
        self.jobs
            .read()
            .map(|j| j.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The outcome of the latest run this process saw, if any.
    fn last_outcome(&self, name: &str) -> Option<RunOutcome> {
        self.jobs
            .read()
            .ok()?
            .get(name)?
            .last_run
            .as_ref()
            .map(|r| r.outcome)
    }

    pub fn set_next(&self, name: &str, next_ms: Option<i64>) {
        self.update(name, |v| v.next_run_ms = next_ms);
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut JobView)) {
        if let Ok(mut jobs) = self.jobs.write()
            && let Some(v) = jobs.get_mut(name)
        {
            f(v);
        }
    }
}

/// What a job carries between its runs.
#[derive(Default)]
pub struct RunGuard {
    /// Held while a run is going: a second run of the same job is refused.
    running: tokio::sync::Mutex<()>,
    failures: AtomicU32,
}

impl RunGuard {
    /// A guard whose run of failures goes on from `failures` (see [`stored_failure_streak`]).
    pub fn with_failures(failures: u32) -> Self {
        Self {
            running: Default::default(),
            failures: AtomicU32::new(failures),
        }
    }
}

/// How many of `job`'s latest stored runs failed in a row, so that a job that failed twice
/// before a restart or a reload warns at its next failure (not after three more), and one
/// that had warned is cleared by its next success. Skipped and interrupted runs neither count
/// nor break the run (as in `run_once`).
pub async fn stored_failure_streak(app: &AppState, host: &str, job: &str) -> u32 {
    // A few more rows than the warning needs, so skipped runs among the latest (a slow job
    // refused overlaps) do not hide the failures before them.
    const LOOK_BACK: i64 = 20;
    // A word this build does not know is an error, as everywhere the store is read: the count
    // then starts at 0 rather than on a guess.
    let outcomes = async {
        app.store
            .list_job_runs(host, job, LOOK_BACK)
            .await?
            .iter()
            .map(|r| Ok(r.outcome.parse::<RunOutcome>()?))
            .collect::<anyhow::Result<Vec<_>>>()
    };
    match outcomes.await {
        Ok(outcomes) => {
            let n = outcomes
                .into_iter()
                .filter(|o| !matches!(o, RunOutcome::Skipped | RunOutcome::Interrupted))
                .take_while(|o| o.is_failure())
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        Err(e) => {
            tracing::debug!(
                job,
                error = format!("{e:#}"),
                "cannot read the job's last runs; its failure count starts at 0"
            );
            0
        }
    }
}

/// Whether a run goes to the store: every cron run; an interval run when it failed or when
/// its outcome differs from the previous run's (see the module's doc).
fn stored(cron: bool, previous: Option<RunOutcome>, outcome: RunOutcome) -> bool {
    cron || outcome.is_failure() || previous != Some(outcome)
}

/// Runs `job` once for `occurrence` (cron) or now (interval), and records it. Returns how
/// it ended.
pub async fn run_once(
    app: &AppState,
    job: &Job,
    guard: &Arc<RunGuard>,
    host: &str,
    occurrence: Option<DateTime<Utc>>,
) -> RunOutcome {
    let occurrence_ms = occurrence.map(|o| o.timestamp_millis());
    let Ok(_running) = guard.running.try_lock() else {
        tracing::warn!(job = %job.name, "previous run still going; this one is skipped");
        let now = now_ms();
        let error = "the previous run was still going";
        let previous = app.jobs.last_outcome(&job.name);
        if stored(occurrence_ms.is_some(), previous, RunOutcome::Skipped) {
            record(
                app,
                host,
                &job.name,
                None,
                occurrence_ms,
                now,
                now,
                RunOutcome::Skipped,
                Some(error),
            )
            .await;
        }
        // The run still going stays the one shown.
        if previous != Some(RunOutcome::Running) {
            app.jobs.update(&job.name, |v| {
                v.last_run = Some(LastRun {
                    started_ms: now,
                    finished_ms: Some(now),
                    occurrence_ms,
                    outcome: RunOutcome::Skipped,
                    error: Some(error.to_owned()),
                });
            });
        }
        return RunOutcome::Skipped;
    };
    let previous_outcome = app.jobs.last_outcome(&job.name);
    let started = now_ms();
    app.jobs.update(&job.name, |v| {
        v.running = true;
        // A cron run shows as running (as its stored row does); an interval job keeps showing
        // its previous run until this one ends.
        if occurrence_ms.is_some() {
            v.last_run = Some(LastRun {
                started_ms: started,
                finished_ms: None,
                occurrence_ms,
                outcome: RunOutcome::Running,
                error: None,
            });
        }
    });
    // Cron runs are rare and matter: record the start, so a run cut short by a crash shows.
    let run_id = match occurrence_ms {
        Some(occ) => match app
            .store
            .start_job_run(host, &job.name, Some(occ), started)
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(job = %job.name, error = format!("{e:#}"), "cannot record the job start");
                None
            }
        },
        None => None,
    };
    let mut handle = tokio::spawn(OCCURRENCE.scope(occurrence, (job.run)(app.clone())));
    let (outcome, error) = match tokio::time::timeout(job.timeout, &mut handle).await {
        Ok(Ok(Ok(()))) => (RunOutcome::Ok, None),
        Ok(Ok(Err(e))) => {
            // A write the store refused for a storage reason (full disk, lock) shows in /health.
            if let Some(fault) = crate::store::storage_fault(&e) {
                app.health.record_write_fault(now_ms(), fault);
            }
            (RunOutcome::Failed, Some(format!("{e:#}")))
        }
        Ok(Err(join)) if join.is_panic() => (
            RunOutcome::Panic,
            Some(format!("panicked: {}", panic_message(join.into_panic()))),
        ),
        Ok(Err(_)) => (RunOutcome::Failed, Some("cancelled".to_owned())),
        Err(_) => {
            handle.abort();
            (
                RunOutcome::Timeout,
                Some(format!(
                    "still running after {}s; abandoned",
                    job.timeout.as_secs_f64()
                )),
            )
        }
    };
    let finished = now_ms();
    if let Some(e) = &error {
        tracing::warn!(job = %job.name, outcome = outcome.as_str(), error = %e, "job failed");
    }
    if occurrence_ms.is_some() {
        record(
            app,
            host,
            &job.name,
            run_id,
            occurrence_ms,
            started,
            finished,
            outcome,
            error.as_deref(),
        )
        .await;
    } else if stored(false, previous_outcome, outcome) {
        // Written beside the next run instead of delaying it.
        let (app, host, name, error) = (
            app.clone(),
            host.to_owned(),
            job.name.clone(),
            error.clone(),
        );
        tokio::spawn(async move {
            record(
                &app,
                &host,
                &name,
                None,
                None,
                started,
                finished,
                outcome,
                error.as_deref(),
            )
            .await;
        });
    }
    let previous = if outcome.is_failure() {
        guard.failures.fetch_add(1, Ordering::SeqCst)
    } else {
        guard.failures.swap(0, Ordering::SeqCst)
    };
    let failures = if outcome.is_failure() {
        previous + 1
    } else {
        0
    };
    app.jobs.update(&job.name, |v| {
        v.running = false;
        v.consecutive_failures = failures;
        v.last_run = Some(LastRun {
            started_ms: started,
            finished_ms: Some(finished),
            occurrence_ms,
            outcome,
            error: error.clone(),
        });
    });
    // One WARNING when the streak reaches the limit; cleared by the next success.
    let level = if failures == FAILURES_BEFORE_WARNING {
        Some(Level::Warning)
    } else if failures == 0 && previous >= FAILURES_BEFORE_WARNING {
        Some(Level::Ok)
    } else {
        None
    };
    if let Some(level) = level {
        let a = failing_job(&job.name, level, failures.max(previous), error.as_deref());
        if let Err(e) = crate::rules::condition::apply(app, a, finished).await {
            tracing::warn!(job = %job.name, error = format!("{e:#}"), "cannot record the job's failure condition");
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn record(
    app: &AppState,
    host: &str,
    job: &str,
    run_id: Option<i64>,
    occurrence_ms: Option<i64>,
    started: i64,
    finished: i64,
    outcome: RunOutcome,
    error: Option<&str>,
) {
    let written = match (run_id, occurrence_ms) {
        (Some(id), _) => app.store.finish_job_run(id, finished, outcome, error).await,
        (None, Some(occ)) => {
            async {
                let id = app
                    .store
                    .start_job_run(host, job, Some(occ), started)
                    .await?;
                app.store.finish_job_run(id, finished, outcome, error).await
            }
            .await
        }
        (None, None) => {
            app.store
                .record_job_run(host, job, started, finished, outcome, error)
                .await
        }
    };
    if let Err(e) = written {
        tracing::warn!(job, error = format!("{e:#}"), "cannot record the job run");
    }
    let n = app.jobs.recorded.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_multiple_of(PRUNE_EVERY_RUNS)
        && let Err(e) = app.store.prune_job_runs(finished - KEEP_RUNS_MS).await
    {
        tracing::warn!(error = format!("{e:#}"), "cannot prune old job runs");
    }
}

/// The message a panic was raised with (`panic!("...")`, an `unwrap` on `None`, ...).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

fn failing_job(name: &str, level: Level, failures: u32, error: Option<&str>) -> Assessment {
    Assessment {
        key: format!("job:{name}"),
        source: format!("job:{name}"),
        kind: "job",
        level,
        value: f64::from(failures),
        unit: "",
        title: format!("Job {name} failed {failures} times in a row"),
        value_text: format!(
            "{failures} failed runs; last error: {}",
            error.unwrap_or("none recorded")
        ),
        threshold_text: format!("{FAILURES_BEFORE_WARNING} failed runs in a row"),
        hint: format!(
            "See GET /api/v1/jobs and the opswatch log for job={name}; fix what the error names \
             (config, permissions, a database or command that is down). The warning clears on \
             the next successful run."
        ),
        body: None,
        resolved_title: format!("Job {name} runs again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::scheduler::Trigger;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn job(name: &str, run: crate::daemon::scheduler::JobFn) -> Job {
        Job {
            name: name.to_owned(),
            trigger: Trigger::Every(Duration::from_secs(60)),
            timeout: Duration::from_secs(30),
            run,
        }
    }

    fn occurrence(i: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(1_795_000_000_000 + i * 60_000)
    }

    #[tokio::test]
    async fn a_failing_job_is_recorded_and_warned_about_once_after_three_runs() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let j = job(
            "flaky",
            Arc::new(|_| Box::pin(async { anyhow::bail!("the database said no") })),
        );
        app.jobs.register("flaky", "every 1m".into());
        let guard = Arc::new(RunGuard::default());
        for i in 0..2 {
            let outcome = run_once(&app, &j, &guard, "h", occurrence(i)).await;
            assert_eq!(outcome, RunOutcome::Failed);
            assert!(
                app.store
                    .find_condition("job:flaky")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        run_once(&app, &j, &guard, "h", occurrence(2)).await;
        let cond = app
            .store
            .find_condition("job:flaky")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cond.level, crate::rules::condition::Level::Warning);
        // A fourth failure does not warn again.
        run_once(&app, &j, &guard, "h", occurrence(3)).await;
        let items = app.store.pending_digest_items().await.unwrap();
        let ours: Vec<_> = items.iter().filter(|i| i.key == "job:flaky").collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].count, 1, "one WARNING, not one per failed run");
        assert!(
            ours[0].title.contains("failed 3 times in a row"),
            "{}",
            ours[0].title
        );

        let runs = app.store.list_job_runs("h", "flaky", 10).await.unwrap();
        assert_eq!(runs.len(), 4);
        assert!(runs.iter().all(|r| r.outcome == "failed"
            && r.error.as_deref() == Some("the database said no")
            && r.finished_ms.is_some()));
        assert_eq!(app.jobs.list()[0].consecutive_failures, 4);

        // A fifth failure after a restart (a new guard) does not warn again either.
        let guard = Arc::new(RunGuard::with_failures(
            stored_failure_streak(&app, "h", "flaky").await,
        ));
        run_once(&app, &j, &guard, "h", occurrence(4)).await;
        let items = app.store.pending_digest_items().await.unwrap();
        assert_eq!(
            items.iter().filter(|i| i.key == "job:flaky").count(),
            1,
            "{items:?}"
        );

        // A success clears it.
        let ok = job("flaky", Arc::new(|_| Box::pin(async { Ok(()) })));
        assert_eq!(
            run_once(&app, &ok, &guard, "h", occurrence(5)).await,
            RunOutcome::Ok
        );
        let cond = app
            .store
            .find_condition("job:flaky")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cond.level, crate::rules::condition::Level::Ok);
    }

    #[tokio::test]
    async fn the_failure_streak_goes_on_across_a_restart() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let j = job(
            "nightly",
            Arc::new(|_| Box::pin(async { anyhow::bail!("the database said no") })),
        );
        app.jobs.register("nightly", "every 1m".into());
        let before = Arc::new(RunGuard::default());
        for i in 0..2 {
            run_once(&app, &j, &before, "h", occurrence(i)).await;
        }
        // opswatch restarts (or reloads): the job's guard is new, its stored runs are not.
        let after = Arc::new(RunGuard::with_failures(
            stored_failure_streak(&app, "h", "nightly").await,
        ));
        run_once(&app, &j, &after, "h", occurrence(2)).await;
        let cond = app.store.find_condition("job:nightly").await.unwrap();
        assert_eq!(
            cond.map(|c| c.level),
            Some(crate::rules::condition::Level::Warning),
            "the third failure in a row warns, counting the two before the restart"
        );
        // A success before the restart starts the count again.
        let ok = job("nightly", Arc::new(|_| Box::pin(async { Ok(()) })));
        run_once(&app, &ok, &after, "h", occurrence(3)).await;
        run_once(&app, &j, &after, "h", occurrence(4)).await;
        assert_eq!(stored_failure_streak(&app, "h", "nightly").await, 1);
    }

    /// The stored outcomes of `name`, oldest first, once at least `n` are there (interval
    /// records are written by a task beside the next run).
    async fn stored_runs(app: &AppState, name: &str, n: usize) -> Vec<String> {
        for _ in 0..500 {
            let runs = app.store.list_job_runs("h", name, 100).await.unwrap();
            if runs.len() >= n {
                return runs.into_iter().rev().map(|r| r.outcome).collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} runs of {name} were stored");
    }

    #[tokio::test]
    async fn interval_runs_are_stored_only_when_they_fail_or_change_and_shown_from_memory() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let fail = Arc::new(AtomicBool::new(false));
        let f = fail.clone();
        let j = job(
            "probe",
            Arc::new(move |_| {
                let f = f.clone();
                Box::pin(async move {
                    if f.load(Ordering::SeqCst) {
                        anyhow::bail!("connection refused");
                    }
                    Ok(())
                })
            }),
        );
        app.jobs.register("probe", "every 1m".into());
        let guard = Arc::new(RunGuard::default());
        let stored = |app: AppState, n: usize| async move { stored_runs(&app, "probe", n).await };
        for _ in 0..5 {
            assert_eq!(run_once(&app, &j, &guard, "h", None).await, RunOutcome::Ok);
        }
        assert_eq!(stored(app.clone(), 1).await, ["ok"], "the first run only");
        let view = &app.jobs.list()[0];
        let last = view.last_run.as_ref().expect("the last run is in memory");
        assert_eq!(last.outcome, RunOutcome::Ok);
        assert!(last.finished_ms.is_some());

        fail.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            run_once(&app, &j, &guard, "h", None).await;
        }
        fail.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            run_once(&app, &j, &guard, "h", None).await;
        }
        assert_eq!(
            stored(app.clone(), 4).await,
            ["ok", "failed", "failed", "ok"],
            "each failure and the recovery, not the runs that said nothing new"
        );
        let last = app.jobs.list()[0].last_run.clone().unwrap();
        assert_eq!(last.outcome, RunOutcome::Ok);
    }

    #[tokio::test]
    async fn a_panic_is_contained_and_recorded() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let j = job(
            "boom",
            Arc::new(|_| Box::pin(async { panic!("index out of bounds") })),
        );
        let guard = Arc::new(RunGuard::default());
        assert_eq!(
            run_once(&app, &j, &guard, "h", occurrence(0)).await,
            RunOutcome::Panic
        );
        let runs = app.store.list_job_runs("h", "boom", 10).await.unwrap();
        assert_eq!(runs[0].outcome, "panic");
        assert!(
            runs[0]
                .error
                .as_deref()
                .unwrap()
                .contains("index out of bounds")
        );
    }

    #[tokio::test]
    async fn a_second_run_of_a_job_still_running_is_refused() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let release = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(tokio::sync::Notify::new());
        let (r, s) = (release.clone(), started.clone());
        let j = job(
            "slow",
            Arc::new(move |_| {
                let (r, s) = (r.clone(), s.clone());
                Box::pin(async move {
                    s.notify_one();
                    r.notified().await;
                    Ok(())
                })
            }),
        );
        let guard = Arc::new(RunGuard::default());
        let first = {
            let (app, j, guard) = (app.clone(), j.clone(), guard.clone());
            tokio::spawn(async move { run_once(&app, &j, &guard, "h", occurrence(0)).await })
        };
        started.notified().await;
        assert_eq!(
            run_once(&app, &j, &guard, "h", occurrence(1)).await,
            RunOutcome::Skipped
        );
        release.notify_one();
        assert_eq!(first.await.unwrap(), RunOutcome::Ok);
        let runs = app.store.list_job_runs("h", "slow", 10).await.unwrap();
        let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(outcomes, ["skipped", "ok"], "newest first");
    }
}
