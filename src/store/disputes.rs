//! Disputes of the app and the cursor of its SQL source.
//!
//! Exactly once: a dispute row, its DISPUTE alert with the outbox rows, and the SQL source's
//! cursor are written in one transaction. A crash before the commit leaves nothing (the next
//! run finds the same rows again); after it, the cursor has moved past them. The id is the
//! primary key, so the same dispute seen by both sources (or posted twice) alerts once.

use serde::Serialize;

use super::{NewAlert, Store, insert_alert, on_reader, on_writer};

/// A dispute as a source found it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDispute {
    pub id: String,
    /// `sql` or `http`.
    pub source: &'static str,
    /// The row or the posted body, a JSON object.
    pub fields: serde_json::Value,
    /// The DISPUTE alert for it, recorded only when the dispute is new.
    pub alert: NewAlert,
}

/// One stored dispute, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DisputeRow {
    pub id: String,
    pub source: String,
    pub fields: serde_json::Value,
    pub created_ms: i64,
    pub alert_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RawRow {
    id: String,
    source: String,
    fields: String,
    created_ms: i64,
    alert_id: Option<i64>,
}

impl Store {
    /// Records `disputes` (those not known yet, with their alerts) and, when given, moves the
    /// cursor `(name, value)`, all in one transaction. Returns, per dispute, whether it was new.
    pub async fn record_disputes(
        &self,
        disputes: &[NewDispute],
        cursor: Option<(&str, &str)>,
        channels: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Vec<bool>> {
        Ok(on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut fresh = Vec::with_capacity(disputes.len());
            for d in disputes {
                let fields = d.fields.to_string();
                let inserted = sqlx::query(
                    "INSERT INTO disputes (id, source, fields, created_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&d.id)
                .bind(d.source)
                .bind(&fields)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if inserted {
                    let alert_id =
                        insert_alert!(&mut *tx, &d.alert, None::<i64>, channels, now_ms).await?;
                    sqlx::query("UPDATE disputes SET alert_id = $1 WHERE id = $2")
                        .bind(alert_id)
                        .bind(&d.id)
                        .execute(&mut *tx)
                        .await?;
                }
                fresh.push(inserted);
            }
            if let Some((name, value)) = cursor {
                upsert_cursor!(&mut *tx, name, value, now_ms)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(fresh)
        })?)
    }

    /// The value of a named cursor, if it was ever written.
    pub async fn find_cursor(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(on_writer!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM cursors WHERE host = '' AND name = $1"
        )
        .bind(name)
        .fetch_optional(pool)
        .await)?)
    }

    /// Sets a named cursor on its own (a baseline, with no dispute to record).
    pub async fn set_cursor(&self, name: &str, value: &str, now_ms: i64) -> anyhow::Result<()> {
        on_writer!(self, |pool| upsert_cursor!(pool, name, value, now_ms))?;
        Ok(())
    }

    /// How many disputes were recorded in `[since_ms, until_ms)`.
    pub async fn count_disputes(&self, since_ms: i64, until_ms: i64) -> anyhow::Result<i64> {
        let (n,): (i64,) = on_reader!(self, |pool| sqlx::query_as(
            "SELECT COUNT(*) FROM disputes WHERE created_ms >= $1 AND created_ms < $2"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_one(pool)
        .await)?;
        Ok(n)
    }

    /// Disputes recorded in `[since_ms, until_ms)`, newest first, at most `limit`.
    pub async fn list_disputes(
        &self,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<DisputeRow>> {
        self.list_disputes_page(since_ms, (until_ms.saturating_sub(1), None), limit)
            .await
    }

    /// Disputes recorded from `since_ms` up to `newest` = `(time, id)`: that time inclusive,
    /// and within it only ids below `id` when given; ordered by `(created_ms, id)` newest
    /// first, so that the next page resumes exactly after the last row.
    pub async fn list_disputes_page(
        &self,
        since_ms: i64,
        newest: (i64, Option<String>),
        limit: i64,
    ) -> anyhow::Result<Vec<DisputeRow>> {
        let rows: Vec<RawRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, source, fields, created_ms, alert_id FROM disputes \
             WHERE created_ms >= $1 AND created_ms <= $2 \
             AND ($3 IS NULL OR created_ms < $2 OR id < $3) \
             ORDER BY created_ms DESC, id DESC LIMIT $4"
        )
        .bind(since_ms)
        .bind(newest.0)
        .bind(newest.1.as_deref())
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| DisputeRow {
                fields: serde_json::from_str(&r.fields).unwrap_or(serde_json::Value::Null),
                id: r.id,
                source: r.source,
                created_ms: r.created_ms,
                alert_id: r.alert_id,
            })
            .collect())
    }
}

/// Sets cursor `$name` to `$value` on `$conn` (a pool or a transaction).
macro_rules! upsert_cursor {
    ($conn:expr, $name:expr, $value:expr, $now:expr) => {
        sqlx::query(
            // Host '': the disputes of the app are one stream for every instance of a cluster.
            "INSERT INTO cursors (host, name, value, updated_ms) VALUES ('', $1, $2, $3) \
             ON CONFLICT (host, name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind($name)
        .bind($value)
        .bind($now)
        .execute($conn)
        .await
        .map(|_| ())
    };
}
use upsert_cursor;
