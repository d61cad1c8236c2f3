//! The alert log, the outbox (one delivery row per alert and channel) and channel health.
//!
//! Delivery is claimed by lease so that several dispatchers (several opswatch instances on
//! one PostgreSQL store) never send the same row at once, and is marked sent only after the
//! channel confirmed. Rows are delivered strictly in order per channel: the oldest pending row
//! is the only one that can be claimed, so a RESOLVED can never overtake its CRITICAL.

use serde::Serialize;
use sqlx::FromRow;

use super::{Store, on_reader, on_writer};
use crate::rules::alert::{Alert, Severity};

/// An alert about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Idempotency key: recording the same key twice records one alert.
    pub dedup_key: String,
    pub severity: Severity,
    pub source: String,
    pub kind: String,
    pub title: String,
    pub value: Option<String>,
    pub threshold: Option<String>,
    pub hint: Option<String>,
    pub body: Option<String>,
    /// Recorded in the alert log but not sent (silence, flap damping).
    pub silenced: bool,
}

/// Inserts `$alert` and, unless it is silenced, one outbox row per channel, on `$conn` (a
/// transaction). Evaluates to a future of the new alert's id, or `None` if its key was already
/// recorded: the caller awaits it and decides what an error does (no `?` hides in here).
macro_rules! insert_alert {
    ($conn:expr, $alert:expr, $incident:expr, $channels:expr, $now:expr) => {async {
        let alert: &$crate::store::NewAlert = $alert;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (dedup_key, created_ms, severity, source, kind, title, value, \
             threshold, hint, body, incident_id, silenced) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
        )
        .bind(&alert.dedup_key)
        .bind($now)
        .bind(alert.severity.as_str())
        .bind(&alert.source)
        .bind(&alert.kind)
        .bind(&alert.title)
        .bind(&alert.value)
        .bind(&alert.threshold)
        .bind(&alert.hint)
        .bind(&alert.body)
        .bind($incident)
        .bind(alert.silenced)
        .fetch_optional($conn)
        .await?;
        if let Some(id) = id {
            if !alert.silenced {
                for channel in $channels.iter() {
                    sqlx::query(
                        "INSERT INTO outbox (alert_id, channel, next_attempt_ms) VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(channel)
                    .bind($now)
                    .execute($conn)
                    .await?;
                }
            }
        }
        Ok::<Option<i64>, sqlx::Error>(id)
    }};
}
pub(crate) use insert_alert;

#[derive(Debug, Clone, FromRow)]
struct AlertRow {
    id: i64,
    created_ms: i64,
    severity: Severity,
    source: String,
    kind: String,
    title: String,
    value: Option<String>,
    threshold: Option<String>,
    hint: Option<String>,
    body: Option<String>,
    silenced: bool,
}

const ALERT_COLUMNS: &str =
    "id, created_ms, severity, source, kind, title, value, threshold, hint, body, silenced";

impl From<AlertRow> for Alert {
    fn from(r: AlertRow) -> Self {
        Alert {
            id: r.id,
            severity: r.severity,
            source: r.source,
            kind: r.kind,
            title: r.title,
            value: r.value,
            threshold: r.threshold,
            hint: r.hint,
            body: r.body,
            created_ms: r.created_ms,
        }
    }
}

/// A delivery claimed by one dispatcher.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub outbox_id: i64,
    /// Attempts including this one.
    pub attempts: i64,
    pub alert: Alert,
}

/// One delivery's state, as the API shows it.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeliveryRow {
    #[serde(skip)]
    pub alert_id: i64,
    pub channel: String,
    pub state: super::DeliveryState,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub sent_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// An alert of the log with its deliveries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoggedAlert {
    #[serde(flatten)]
    pub alert: Alert,
    pub silenced: bool,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, FromRow, Serialize, PartialEq, Eq)]
pub struct ChannelRow {
    pub name: String,
    pub healthy: bool,
    pub last_error: Option<String>,
    pub updated_ms: i64,
    #[serde(skip)]
    pub chat_id_override: Option<String>,
}

impl Store {
    /// Records an alert outside any check transaction (digests, reports, test alerts).
    pub async fn record_alert(
        &self,
        alert: &NewAlert,
        channels: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Option<i64>> {
        Ok(on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = insert_alert!(&mut *tx, alert, None::<i64>, channels, now_ms).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?)
    }

    /// Claims the oldest pending delivery of `channel` if it is due and nobody holds it.
    pub async fn claim_next_delivery(
        &self,
        channel: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> anyhow::Result<Option<Claimed>> {
        // The outer conditions are re-checked on the row version PostgreSQL locks, so two
        // instances racing for the same row cannot both win.
        let claimed: Option<(i64, i64, i64)> = on_writer!(self, |pool| {
            sqlx::query_as(
                "UPDATE outbox SET lease_owner = $1, lease_until_ms = $2, attempts = attempts + 1 \
                 WHERE id = (SELECT id FROM outbox WHERE channel = $3 AND state = 'pending' \
                             ORDER BY id LIMIT 1) \
                   AND state = 'pending' AND next_attempt_ms <= $4 \
                   AND (lease_until_ms IS NULL OR lease_until_ms < $4) \
                 RETURNING id, alert_id, attempts",
            )
            .bind(owner)
            .bind(now_ms + lease_ms)
            .bind(channel)
            .bind(now_ms)
            .fetch_optional(pool)
            .await
        })?;
        let Some((outbox_id, alert_id, attempts)) = claimed else {
            return Ok(None);
        };
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let row: AlertRow = on_writer!(self, |pool| sqlx::query_as(&sql)
            .bind(alert_id)
            .fetch_one(pool)
            .await)?;
        Ok(Some(Claimed {
            outbox_id,
            attempts,
            alert: row.into(),
        }))
    }

    /// When the head of `channel`'s queue can next be tried, if anything is pending.
    pub async fn next_delivery_due(&self, channel: &str) -> anyhow::Result<Option<i64>> {
        let head: Option<(i64, Option<i64>)> = on_writer!(self, |pool| {
            sqlx::query_as(
                "SELECT next_attempt_ms, lease_until_ms FROM outbox \
                 WHERE channel = $1 AND state = 'pending' ORDER BY id LIMIT 1",
            )
            .bind(channel)
            .fetch_optional(pool)
            .await
        })?;
        Ok(head.map(|(next, lease)| next.max(lease.map_or(0, |l| l + 1))))
    }

    /// The channel confirmed: never send this row again. False if our lease was lost.
    pub async fn mark_delivered(
        &self,
        outbox_id: i64,
        owner: &str,
        now_ms: i64,
    ) -> anyhow::Result<bool> {
        let n = on_writer!(self, |pool| sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_ms = $1, last_error = NULL, \
             lease_owner = NULL, lease_until_ms = NULL WHERE id = $2 AND lease_owner = $3",
        )
        .bind(now_ms)
        .bind(outbox_id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Not delivered this time: try again at `next_ms`.
    pub async fn reschedule_delivery(
        &self,
        outbox_id: i64,
        owner: &str,
        next_ms: i64,
        error: &str,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "UPDATE outbox SET next_attempt_ms = $1, last_error = $2, lease_owner = NULL, \
             lease_until_ms = NULL WHERE id = $3 AND lease_owner = $4",
        )
        .bind(next_ms)
        .bind(error)
        .bind(outbox_id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The channel refuses this message for good (kept in the log, with the reason).
    pub async fn fail_delivery(
        &self,
        outbox_id: i64,
        owner: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "UPDATE outbox SET state = 'failed', last_error = $1, lease_owner = NULL, \
             lease_until_ms = NULL WHERE id = $2 AND lease_owner = $3",
        )
        .bind(error)
        .bind(outbox_id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Frees leases left by a dispatcher that died (SQLite: only one process dispatches).
    pub async fn release_all_leases(&self) -> anyhow::Result<u64> {
        Ok(on_writer!(self, |pool| sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE state = 'pending' AND lease_owner IS NOT NULL",
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Pending deliveries per channel.
    pub async fn outbox_depth(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT channel, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY channel"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Per channel with pending deliveries, when the oldest of them was queued (its alert's
    /// time): a channel that has kept one waiting 5 minutes counts as failing.
    pub async fn outbox_pending_since(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT o.channel, MIN(a.created_ms) FROM outbox o JOIN alerts a ON a.id = o.alert_id \
             WHERE o.state = 'pending' GROUP BY o.channel"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Alerts created in `[since, until)`, newest first, each with its deliveries.
    pub async fn list_alerts(
        &self,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<LoggedAlert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE created_ms >= $1 AND created_ms < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<AlertRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        self.with_deliveries(rows).await
    }

    /// One page of the alert log (the API's): alerts created from `since_ms` up to `newest`
    /// = `(time, id)` inclusive, ordered by `(created_ms, id)` newest first, so that the next
    /// page resumes exactly after the last row (keyset), also among alerts of one millisecond.
    pub async fn list_alerts_page(
        &self,
        since_ms: i64,
        newest: (i64, i64),
        limit: i64,
    ) -> anyhow::Result<Vec<LoggedAlert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE created_ms >= $1 AND created_ms <= $2 \
             AND (created_ms < $2 OR id <= $3) ORDER BY created_ms DESC, id DESC LIMIT $4"
        );
        let rows: Vec<AlertRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(since_ms)
            .bind(newest.0)
            .bind(newest.1)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        self.with_deliveries(rows).await
    }

    /// `rows` with each alert's deliveries.
    async fn with_deliveries(&self, rows: Vec<AlertRow>) -> anyhow::Result<Vec<LoggedAlert>> {
        let (Some(max), Some(min)) = (
            rows.iter().map(|r| r.id).max(),
            rows.iter().map(|r| r.id).min(),
        ) else {
            return Ok(Vec::new());
        };
        let deliveries: Vec<DeliveryRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT alert_id, channel, state, attempts, next_attempt_ms, sent_ms, last_error \
             FROM outbox WHERE alert_id >= $1 AND alert_id <= $2 ORDER BY alert_id, channel"
        )
        .bind(min)
        .bind(max)
        .fetch_all(pool)
        .await)?;
        let mut by_alert: std::collections::HashMap<i64, Vec<DeliveryRow>> =
            std::collections::HashMap::with_capacity(rows.len());
        for d in deliveries {
            by_alert.entry(d.alert_id).or_default().push(d);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let silenced = row.silenced;
                let deliveries = by_alert.remove(&row.id).unwrap_or_default();
                LoggedAlert {
                    alert: row.into(),
                    silenced,
                    deliveries,
                }
            })
            .collect())
    }

    pub async fn set_channel_health(
        &self,
        name: &str,
        healthy: bool,
        error: Option<&str>,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "INSERT INTO channels (name, healthy, last_error, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET healthy = excluded.healthy, \
             last_error = excluded.last_error, updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(healthy)
        .bind(error)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Remembers a Telegram group's new chat id so restarts keep following it.
    pub async fn set_chat_id_override(
        &self,
        name: &str,
        chat_id: &str,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| {
            sqlx::query(
            "INSERT INTO channels (name, healthy, updated_ms, chat_id_override) VALUES ($1, TRUE, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET chat_id_override = excluded.chat_id_override, \
             updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(now_ms)
        .bind(chat_id)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn list_channels(&self) -> anyhow::Result<Vec<ChannelRow>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT name, healthy, last_error, updated_ms, chat_id_override FROM channels ORDER BY name"
        )
        .fetch_all(pool)
        .await
        })?)
    }
}
