//! Runs jobs on their triggers: fixed intervals for checks, cron (UTC) for digests and
//! reports. Each job runs in its own task, so it never overlaps itself and a slow job never
//! delays another; a global semaphore bounds how many run at once; every run has a timeout.
//! Cron occurrences come from a [`CronCursor`] (fires each occurrence once, catches up a run
//! missed while opswatch was down); each run is contained and recorded ([`job_run`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Schedule;
use crate::daemon::cron::{Clock, CronCursor, Step, SystemClock};
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

pub struct Scheduler {
    jobs: Vec<Job>,
    /// The wall clock cron occurrences are read from (a hand-moved one in tests).
    clock: Arc<dyn Clock>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            jobs: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
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
        self.clock = clock;
        self
    }

    pub fn add(&mut self, job: Job) {
        self.jobs.push(job);
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Starts the heartbeat and every job on `tasks`; all stop when `shutdown` is cancelled.
    pub fn spawn(self, app: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
        let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_JOBS));
        for job in self.jobs {
            app.jobs.register(&job.name, job.trigger.describe());
            tasks.spawn(run_job(
                job,
                app.clone(),
                limit.clone(),
                self.clock.clone(),
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
    app: AppState,
    limit: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let host = crate::reports::this_host();
    let guard = Arc::new(RunGuard::default());
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
                }
                let started = tokio::time::Instant::now();
                run(None).await;
                // A run longer than the interval starts the next one at once, never a backlog.
                next = (started + *every).max(tokio::time::Instant::now());
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
                            _ = tokio::time::sleep(wait) => {}
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
}
