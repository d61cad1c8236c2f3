//! Read-only queries the scheduled reports make over a time window.

use serde::Serialize;

use super::{Store, on_reader};

/// An incident of a check that overlaps a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IncidentInWindow {
    pub check_name: String,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub cause: String,
}

/// A warning counted into a digest during a window (a threshold crossed).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WarningInWindow {
    pub source: String,
    pub title: String,
    pub count: i64,
    pub worst: Option<f64>,
    pub unit: Option<String>,
}

impl Store {
    /// Incidents open at any moment of `[since, until)`, oldest first.
    pub async fn incidents_between(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<IncidentInWindow>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT c.name AS check_name, i.opened_ms, i.resolved_ms, i.cause \
             FROM incidents i JOIN checks c ON c.id = i.check_id \
             WHERE i.opened_ms < $2 AND (i.resolved_ms IS NULL OR i.resolved_ms >= $1) \
             ORDER BY i.opened_ms"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// Alerts raised in `[since, until)` per severity (reports and digests left out: they are
    /// about alerts, not alerts themselves).
    pub async fn alert_counts_by_severity(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT severity, COUNT(*) FROM alerts WHERE created_ms >= $1 AND created_ms < $2 \
             AND kind NOT IN ('report', 'digest') GROUP BY severity ORDER BY severity"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// Warnings seen in `[since, until)`, the most frequent first.
    pub async fn warnings_between(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<WarningInWindow>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT source, title, SUM(count) AS count, MAX(worst) AS worst, MAX(unit) AS unit \
             FROM digest_items WHERE last_ms >= $1 AND first_ms < $2 \
             GROUP BY source, title ORDER BY SUM(count) DESC, source LIMIT 50"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// Critical alerts raised in `[since, until)`: (source, title), oldest first.
    pub async fn critical_alerts_between(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<(String, String)>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT source, title FROM alerts WHERE created_ms >= $1 AND created_ms < $2 \
             AND severity = 'critical' ORDER BY id LIMIT 50"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// The certificate expiry the latest result of check `name` saw, if any.
    pub async fn latest_cert_expiry(&self, name: &str) -> anyhow::Result<Option<(i64, i64)>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT r.at_ms, r.cert_expires_ms FROM check_results r JOIN checks c ON c.id = r.check_id \
             WHERE c.name = $1 AND r.cert_expires_ms IS NOT NULL ORDER BY r.at_ms DESC LIMIT 1"
        )
        .bind(name)
        .fetch_optional(pool)
        .await
        })?)
    }
}
