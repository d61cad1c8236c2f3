//! Threshold conditions, the warning digest and silences.

use serde::Serialize;
use sqlx::FromRow;

use super::{NewAlert, Store, insert_alert, on_reader, on_writer};
use crate::rules::condition::Level;

/// Where one watched condition stands.
#[derive(Debug, Clone, FromRow, PartialEq, Serialize)]
pub struct ConditionRow {
    pub key: String,
    pub level: Level,
    pub since_ms: i64,
    pub value: Option<f64>,
    pub notified: bool,
    pub updated_ms: i64,
}

/// A warning seen now, to be counted into the next digest.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningSeen {
    pub source: String,
    pub kind: String,
    pub title: String,
    pub detail: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, FromRow, PartialEq, Serialize)]
pub struct DigestItem {
    pub id: i64,
    pub key: String,
    pub source: String,
    pub kind: String,
    pub title: String,
    pub detail: Option<String>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: i64,
    pub worst: Option<f64>,
    pub unit: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SilenceRow {
    pub id: i64,
    pub check_name: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    pub created_by: String,
    pub created_ms: i64,
}

/// A silence about to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    pub check_name: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    pub created_by: String,
}

/// One evaluation of a condition, stored at once.
#[derive(Debug, Clone, Default)]
pub struct ConditionUpdate {
    pub key: String,
    pub level: Level,
    pub value: Option<f64>,
    /// Whether the alert of this level went out (false: held by a silence).
    pub notified: bool,
    /// Sent now (critical, resolved, info).
    pub alert: Option<NewAlert>,
    /// Counted into the next digest.
    pub warning: Option<WarningSeen>,
}

const DIGEST_COLUMNS: &str =
    "id, key, source, kind, title, detail, first_ms, last_ms, count, worst, unit, active";

impl Store {
    pub async fn find_condition(&self, key: &str) -> anyhow::Result<Option<ConditionRow>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT key, level, since_ms, value, notified, updated_ms FROM conditions \
             WHERE host = $1 AND key = $2",
            )
            .bind(&*self.host)
            .bind(key)
            .fetch_optional(pool)
            .await
        })?)
    }

    pub async fn list_conditions(&self) -> anyhow::Result<Vec<ConditionRow>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT key, level, since_ms, value, notified, updated_ms FROM conditions \
             WHERE host = $1 ORDER BY key"
        )
        .bind(&*self.host)
        .fetch_all(pool)
        .await)?)
    }

    /// Stores a condition's level, the alert a change raised and the warning it counts, in
    /// one transaction. A condition that is no longer warning marks its digest line cleared.
    pub async fn record_condition(
        &self,
        update: &ConditionUpdate,
        channels: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Option<i64>> {
        Ok(on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO conditions (host, key, level, since_ms, value, notified, updated_ms) \
                 VALUES ($6, $1, $2, $3, $4, $5, $3) ON CONFLICT (host, key) DO UPDATE SET \
                 since_ms = CASE WHEN conditions.level = excluded.level THEN conditions.since_ms \
                                 ELSE excluded.since_ms END, \
                 level = excluded.level, value = excluded.value, notified = excluded.notified, \
                 updated_ms = excluded.updated_ms",
            )
            .bind(&update.key)
            .bind(update.level.as_str())
            .bind(now_ms)
            .bind(update.value)
            .bind(update.notified)
            .bind(&*self.host)
            .execute(&mut *tx)
            .await?;
            match &update.warning {
                Some(w) => {
                    sqlx::query(
                        "INSERT INTO digest_items (key, title, detail, first_ms, last_ms, count, worst, unit, active, source, kind) \
                         VALUES ($1, $2, $3, $4, $4, 1, $5, $6, TRUE, $7, $8) \
                         ON CONFLICT (key) WHERE digest_alert_id IS NULL DO UPDATE SET \
                         title = excluded.title, detail = excluded.detail, last_ms = excluded.last_ms, \
                         count = digest_items.count + 1, active = TRUE, \
                         worst = CASE WHEN digest_items.worst IS NULL OR excluded.worst > digest_items.worst \
                                      THEN excluded.worst ELSE digest_items.worst END",
                    )
                    .bind(&update.key)
                    .bind(&w.title)
                    .bind(&w.detail)
                    .bind(now_ms)
                    .bind(w.value)
                    .bind(&w.unit)
                    .bind(&w.source)
                    .bind(&w.kind)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "UPDATE digest_items SET active = FALSE WHERE key = $1 AND digest_alert_id IS NULL",
                    )
                    .bind(&update.key)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let id = match &update.alert {
                Some(alert) => {
                    insert_alert!(&mut *tx, alert, None::<i64>, channels, now_ms).await?
                }
                None => None,
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?)
    }

    /// Warnings not yet sent in a digest.
    pub async fn pending_digest_items(&self) -> anyhow::Result<Vec<DigestItem>> {
        let sql = format!(
            "SELECT {DIGEST_COLUMNS} FROM digest_items WHERE digest_alert_id IS NULL ORDER BY first_ms, id"
        );
        Ok(on_writer!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)?)
    }

    /// Records the digest alert for `items` and marks them sent with it, in one transaction.
    /// `None` if this digest (its dedup key) was already recorded.
    pub async fn record_digest(
        &self,
        alert: &NewAlert,
        item_ids: &[i64],
        channels: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Option<i64>> {
        Ok(on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = insert_alert!(&mut *tx, alert, None::<i64>, channels, now_ms).await?;
            if let Some(id) = id {
                for item in item_ids {
                    sqlx::query("UPDATE digest_items SET digest_alert_id = $1 WHERE id = $2")
                        .bind(id)
                        .bind(*item)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?)
    }

    pub async fn create_silence(&self, s: &NewSilence, now_ms: i64) -> anyhow::Result<SilenceRow> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as(
            "INSERT INTO silences (check_name, kind, severity, starts_ms, ends_ms, comment, created_by, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, check_name, kind, severity, starts_ms, ends_ms, comment, created_by, created_ms"
        )
        .bind(&s.check_name)
        .bind(&s.kind)
        .bind(&s.severity)
        .bind(s.starts_ms)
        .bind(s.ends_ms)
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(now_ms)
        .fetch_one(pool)
        .await
        })?)
    }

    /// Silences that have not ended by `now_ms` (including ones that start later).
    pub async fn current_silences(&self, now_ms: i64) -> anyhow::Result<Vec<SilenceRow>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT id, check_name, kind, severity, starts_ms, ends_ms, comment, created_by, created_ms \
             FROM silences WHERE ends_ms > $1 ORDER BY starts_ms, id"
        )
        .bind(now_ms)
        .fetch_all(pool)
        .await
        })?)
    }

    /// Ends a silence now. False if there is no such silence.
    pub async fn expire_silence(&self, id: i64, now_ms: i64) -> anyhow::Result<bool> {
        let n = on_writer!(self, |pool| sqlx::query(
            "UPDATE silences SET ends_ms = $1 WHERE id = $2 AND ends_ms > $1"
        )
        .bind(now_ms)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
