//! Job runs (start, end, outcome, error) and each cron job's last fired occurrence.

use serde::Serialize;

use super::{Store, on_reader, on_writer};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Running,
    Ok,
    Failed,
    Timeout,
    Panic,
    /// Refused because the previous run of the same job was still going.
    Skipped,
    /// Found still `running` at start: opswatch stopped in the middle of it.
    Interrupted,
}

super::stored_word!(RunOutcome, "job run outcome", {
    RunOutcome::Running => "running",
    RunOutcome::Ok => "ok",
    RunOutcome::Failed => "failed",
    RunOutcome::Timeout => "timeout",
    RunOutcome::Panic => "panic",
    RunOutcome::Skipped => "skipped",
    RunOutcome::Interrupted => "interrupted",
});

impl RunOutcome {
    /// Whether this outcome counts towards "failed runs in a row".
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Timeout | Self::Panic)
    }
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct JobRunRow {
    pub id: i64,
    pub job: String,
    pub occurrence_ms: Option<i64>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub outcome: String,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, occurrence_ms, started_ms, finished_ms, outcome, error";

impl Store {
    /// Records that a run began; returns its id for [`Store::finish_job_run`].
    pub async fn start_job_run(
        &self,
        host: &str,
        job: &str,
        occurrence_ms: Option<i64>,
        started_ms: i64,
    ) -> anyhow::Result<i64> {
        Ok(on_writer!(self, |pool| sqlx::query_scalar(
            "INSERT INTO job_runs (host, job, occurrence_ms, started_ms, outcome) \
             VALUES ($1, $2, $3, $4, 'running') RETURNING id"
        )
        .bind(host)
        .bind(job)
        .bind(occurrence_ms)
        .bind(started_ms)
        .fetch_one(pool)
        .await)?)
    }

    pub async fn finish_job_run(
        &self,
        id: i64,
        finished_ms: i64,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "UPDATE job_runs SET finished_ms = $1, outcome = $2, error = $3 WHERE id = $4"
        )
        .bind(finished_ms)
        .bind(outcome.as_str())
        .bind(error)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Records a whole run in one write (interval jobs: one row per run, no `running` row).
    pub async fn record_job_run(
        &self,
        host: &str,
        job: &str,
        started_ms: i64,
        finished_ms: i64,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "INSERT INTO job_runs (host, job, started_ms, finished_ms, outcome, error) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(host)
        .bind(job)
        .bind(started_ms)
        .bind(finished_ms)
        .bind(outcome.as_str())
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Runs of this host left `running` by a previous process become `interrupted`.
    pub async fn mark_interrupted_job_runs(&self, host: &str, now_ms: i64) -> anyhow::Result<u64> {
        Ok(on_writer!(self, |pool| sqlx::query(
            "UPDATE job_runs SET outcome = 'interrupted', finished_ms = $1, \
             error = 'opswatch stopped during the run' WHERE host = $2 AND outcome = 'running'"
        )
        .bind(now_ms)
        .bind(host)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The latest run of each job of this host.
    pub async fn latest_job_runs(&self, host: &str) -> anyhow::Result<Vec<JobRunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE id IN \
             (SELECT MAX(id) FROM job_runs WHERE host = $1 GROUP BY job) ORDER BY job"
        );
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(host)
            .fetch_all(pool)
            .await)?)
    }

    /// The runs of one job, newest first.
    pub async fn list_job_runs(
        &self,
        host: &str,
        job: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<JobRunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE host = $1 AND job = $2 \
             ORDER BY id DESC LIMIT $3"
        );
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(host)
            .bind(job)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Deletes runs that started before `before_ms`, keeping the latest run of every job.
    pub async fn prune_job_runs(&self, before_ms: i64) -> anyhow::Result<u64> {
        Ok(on_writer!(self, |pool| sqlx::query(
            "DELETE FROM job_runs WHERE started_ms < $1 AND id NOT IN \
             (SELECT MAX(id) FROM job_runs GROUP BY host, job)"
        )
        .bind(before_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The last occurrence a cron job fired for, if it was ever scheduled here.
    pub async fn job_last_occurrence(&self, host: &str, job: &str) -> anyhow::Result<Option<i64>> {
        Ok(on_writer!(self, |pool| sqlx::query_scalar(
            "SELECT last_occurrence_ms FROM job_schedule WHERE host = $1 AND job = $2"
        )
        .bind(host)
        .bind(job)
        .fetch_optional(pool)
        .await)?)
    }

    /// Moves a cron job's last occurrence forward (never back).
    pub async fn set_job_last_occurrence(
        &self,
        host: &str,
        job: &str,
        occurrence_ms: i64,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "INSERT INTO job_schedule (host, job, last_occurrence_ms, updated_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (host, job) DO UPDATE SET \
             last_occurrence_ms = excluded.last_occurrence_ms, updated_ms = excluded.updated_ms \
             WHERE job_schedule.last_occurrence_ms < excluded.last_occurrence_ms"
        )
        .bind(host)
        .bind(job)
        .bind(occurrence_ms)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RunOutcome;
    use crate::daemon::job_run::stored_failure_streak;

    #[tokio::test]
    async fn an_unknown_stored_outcome_starts_the_streak_at_zero_instead_of_being_skipped() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        for at in 0..3 {
            let id = app
                .store
                .start_job_run("h", "nightly", None, at)
                .await
                .unwrap();
            app.store
                .finish_job_run(id, at + 1, RunOutcome::Failed, Some("the database said no"))
                .await
                .unwrap();
        }
        assert_eq!(stored_failure_streak(&app, "h", "nightly").await, 3);
        // A word from a newer build (or a hand edit) in the oldest of the three.
        super::on_writer!(app.store, |pool| sqlx::query(
            "UPDATE job_runs SET outcome = 'sideways' \
             WHERE id = (SELECT MIN(id) FROM job_runs WHERE job = 'nightly')"
        )
        .execute(pool)
        .await
        .map(|_| ()))
        .unwrap();
        assert_eq!(stored_failure_streak(&app, "h", "nightly").await, 0);
    }
}
