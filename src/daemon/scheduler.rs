//! Runs jobs on their triggers: fixed intervals for checks, cron (UTC) for digests and
//! reports. Each job runs in its own task, so it never overlaps itself and a slow job never
//! delays another; a global semaphore bounds how many run at once; every run has a timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Schedule;
use crate::daemon::health::HEARTBEAT_EVERY;
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
}

impl Scheduler {
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
            tasks.spawn(run_job(job, app.clone(), limit.clone(), shutdown.clone()));
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

async fn run_job(job: Job, app: AppState, limit: Arc<Semaphore>, shutdown: CancellationToken) {
    let mut next = tokio::time::Instant::now();
    loop {
        if let Trigger::Cron(schedule) = &job.trigger {
            let now = Utc::now();
            let Some(at) = schedule.next_after(now) else {
                return;
            };
            let wait = (at - now).to_std().unwrap_or_default();
            next = tokio::time::Instant::now() + wait;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        let started = tokio::time::Instant::now();
        tokio::select! {
            // Shutdown does not cut a run short: it finishes or times out (the grace
            // period of `serve` bounds the wait).
            outcome = tokio::time::timeout(job.timeout, (job.run)(app.clone())) => match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if let Some(fault) = crate::store::storage_fault(&e) {
                        app.health.record_write_fault(now_ms(), fault);
                    }
                    tracing::warn!(job = %job.name, error = format!("{e:#}"), "job failed");
                }
                Err(_) => tracing::warn!(job = %job.name, timeout_s = job.timeout.as_secs_f64(), "job timed out"),
            },
        }
        if let Trigger::Every(every) = job.trigger {
            next = started + every;
            // A run longer than the interval starts the next one at once, never a backlog.
            next = next.max(tokio::time::Instant::now());
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
