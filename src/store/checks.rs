//! Check state, check results and incidents.

use sqlx::FromRow;

use super::{CheckState, NewAlert, Store, insert_alert, on_reader, on_writer};
use crate::checks::CheckKind;

/// A check as the store knows it: its identity and current state.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct CheckRow {
    pub id: i64,
    pub name: String,
    pub kind: CheckKind,
    pub state: CheckState,
    pub consecutive_failures: i64,
    /// Read from `check_results`; never written to the row.
    pub last_result_ms: Option<i64>,
    pub last_change_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// One stored probe result.
#[derive(Debug, Clone, FromRow, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ResultRow {
    pub at_ms: i64,
    pub ok: bool,
    pub latency_ms: Option<i64>,
    pub status_code: Option<i64>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub cert_expires_ms: Option<i64>,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: i64,
    pub check_id: i64,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub cause: String,
    pub last_reminded_ms: Option<i64>,
    pub reminders: i64,
    pub notified: bool,
}

const CHECK_COLUMNS: &str = "id, name, kind, state, consecutive_failures, \
     (SELECT MAX(r.at_ms) FROM check_results r WHERE r.check_id = checks.id) AS last_result_ms, \
     last_change_ms, last_error";
const INCIDENT_COLUMNS: &str =
    "id, check_id, opened_ms, resolved_ms, cause, last_reminded_ms, reminders, notified";

impl CheckRow {
    /// Whether the stored row would change going from `self` to `next`.
    fn same_stored_state(&self, next: &CheckRow) -> bool {
        self.state == next.state
            && self.consecutive_failures == next.consecutive_failures
            && self.last_change_ms == next.last_change_ms
            && self.last_error == next.last_error
    }
}

impl Store {
    /// Makes sure a configured check has its row; returns it with the state it left off in.
    pub async fn ensure_check(&self, name: &str, kind: CheckKind) -> anyhow::Result<CheckRow> {
        let sql = format!(
            "INSERT INTO checks (host, name, kind) VALUES ($1, $2, $3) \
             ON CONFLICT (host, name) DO UPDATE SET kind = excluded.kind RETURNING {CHECK_COLUMNS}"
        );
        Ok(on_writer!(self, |pool| sqlx::query_as(&sql)
            .bind(&*self.host)
            .bind(name)
            .bind(kind.as_str())
            .fetch_one(pool)
            .await)?)
    }

    pub async fn list_checks(&self) -> anyhow::Result<Vec<CheckRow>> {
        let sql = format!("SELECT {CHECK_COLUMNS} FROM checks WHERE host = $1 ORDER BY name");
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(&*self.host)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn find_check(&self, name: &str) -> anyhow::Result<Option<CheckRow>> {
        let sql = format!("SELECT {CHECK_COLUMNS} FROM checks WHERE host = $1 AND name = $2");
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(&*self.host)
            .bind(name)
            .fetch_optional(pool)
            .await)?)
    }

    /// Results of one check in `[since, until)`, newest first.
    pub async fn list_results(
        &self,
        check_id: i64,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<ResultRow>> {
        let sql = "SELECT at_ms, ok, latency_ms, status_code, error_kind, error, cert_expires_ms \
                   FROM check_results WHERE check_id = $1 AND at_ms >= $2 AND at_ms < $3 \
                   ORDER BY at_ms DESC LIMIT $4";
        Ok(on_reader!(self, |pool| sqlx::query_as(sql)
            .bind(check_id)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn open_incident(&self, check_id: i64) -> anyhow::Result<Option<IncidentRow>> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE check_id = $1 AND resolved_ms IS NULL"
        );
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(check_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// How many incidents of a check opened at or after `since_ms` (flap detection).
    pub async fn count_incidents_since(&self, check_id: i64, since_ms: i64) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM incidents WHERE check_id = $1 AND opened_ms >= $2";
        Ok(on_reader!(self, |pool| sqlx::query_scalar(sql)
            .bind(check_id)
            .bind(since_ms)
            .fetch_one(pool)
            .await)?)
    }
}

/// The `INSERT` of check results, one statement for any number of rows; a row already
/// stored (same check and time) is kept.
pub(crate) fn insert_results<'a, DB>(
    rows: impl IntoIterator<Item = (i64, &'a ResultRow)>,
) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO check_results (check_id, at_ms, ok, latency_ms, status_code, error_kind, \
         error, cert_expires_ms) ",
    );
    insert.push_values(rows, |mut row, (check_id, result)| {
        row.push_bind(check_id)
            .push_bind(result.at_ms)
            .push_bind(result.ok)
            .push_bind(result.latency_ms)
            .push_bind(result.status_code)
            .push_bind(result.error_kind.as_deref())
            .push_bind(result.error.as_deref())
            .push_bind(result.cert_expires_ms);
    });
    insert.push(" ON CONFLICT DO NOTHING");
    insert
}

/// What a check result does to the check's incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentChange {
    None,
    /// The check just went DOWN. `notified` is false when the alert is held back (flapping,
    /// silence): the incident is recorded, its alerts are not sent.
    Open {
        cause: String,
        notified: bool,
    },
    /// Still down, and a reminder is due.
    Remind {
        incident_id: i64,
    },
    /// The check came back.
    Resolve {
        incident_id: i64,
    },
}

impl Store {
    /// Stores a check result, the check's new state, the incident change and the alert it
    /// raises, in one transaction: either all of it is recorded or none, so a crash can never
    /// leave a state change without its alert or an alert without its state change.
    ///
    /// `previous` is the check as stored before this result. When nothing but the result is
    /// new (the usual steady probe) the result is only queued, and goes in with the round's
    /// other results as one statement (`pending.rs`).
    ///
    /// Returns the id of the alert written to the outbox, if any.
    pub async fn record_check_outcome(
        &self,
        previous: &CheckRow,
        check: &CheckRow,
        result: &ResultRow,
        change: &IncidentChange,
        alert: Option<&NewAlert>,
        channels: &[String],
    ) -> anyhow::Result<Option<i64>> {
        if *change == IncidentChange::None && alert.is_none() && previous.same_stored_state(check) {
            self.queue_result(check.id, result).await?;
            return Ok(None);
        }
        let outcome = self
            .write_check_outcome(check, result, change, alert, channels)
            .await;
        if let Err(e) = &outcome
            && super::storage_fault(e).is_some()
        {
            // The state change is decided again on the next probe; the result itself is
            // history, kept to be written when the store takes writes again.
            self.keep_result_for_later(check.id, result);
        }
        outcome
    }

    /// The transaction of [`Self::record_check_outcome`].
    async fn write_check_outcome(
        &self,
        check: &CheckRow,
        result: &ResultRow,
        change: &IncidentChange,
        alert: Option<&NewAlert>,
        channels: &[String],
    ) -> anyhow::Result<Option<i64>> {
        let now = result.at_ms;
        let alert_id = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_results([(check.id, result)])
                .build()
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE checks SET state = $1, consecutive_failures = $2, last_change_ms = $3, \
                 last_error = $4 WHERE id = $5",
            )
            .bind(check.state.as_str())
            .bind(check.consecutive_failures)
            .bind(check.last_change_ms)
            .bind(&check.last_error)
            .bind(check.id)
            .execute(&mut *tx)
            .await?;
            let incident_id: Option<i64> = match change {
                IncidentChange::None => None,
                IncidentChange::Open { cause, notified } => Some(
                    sqlx::query_scalar(
                        "INSERT INTO incidents (check_id, opened_ms, cause, notified) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(check.id)
                    .bind(now)
                    .bind(cause)
                    .bind(*notified)
                    .fetch_one(&mut *tx)
                    .await?,
                ),
                IncidentChange::Remind { incident_id } => {
                    sqlx::query(
                        "UPDATE incidents SET last_reminded_ms = $1, reminders = reminders + 1 \
                         WHERE id = $2",
                    )
                    .bind(now)
                    .bind(*incident_id)
                    .execute(&mut *tx)
                    .await?;
                    Some(*incident_id)
                }
                IncidentChange::Resolve { incident_id } => {
                    sqlx::query("UPDATE incidents SET resolved_ms = $1 WHERE id = $2")
                        .bind(now)
                        .bind(*incident_id)
                        .execute(&mut *tx)
                        .await?;
                    Some(*incident_id)
                }
            };
            let alert_id = match alert {
                Some(alert) => insert_alert!(&mut *tx, alert, incident_id, channels, now).await?,
                None => None,
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(alert_id)
        })?;
        Ok(alert_id)
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::CheckKind;

    #[tokio::test]
    async fn an_unknown_state_or_kind_read_back_is_an_error_not_a_default() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        app.store
            .ensure_check("api", CheckKind::Http)
            .await
            .unwrap();
        for (sql, want) in [
            (
                "UPDATE checks SET state = 'sideways'",
                "unknown check state \"sideways\"",
            ),
            (
                "UPDATE checks SET state = 'up', kind = 'gopher'",
                "unknown check kind \"gopher\"",
            ),
        ] {
            super::on_writer!(app.store, |pool| sqlx::query(sql)
                .execute(pool)
                .await
                .map(|_| ()))
            .unwrap();
            let err = app.store.find_check("api").await.unwrap_err();
            assert!(format!("{err:#}").contains(want), "{err:#}");
        }
    }
}
