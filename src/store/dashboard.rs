//! Read queries only the dashboard needs. Every one runs on the read pool: a page never waits
//! behind the writer.

use serde::Serialize;
use sqlx::FromRow;

use super::{DigestItem, Store, on_reader};

/// An incident with the name of its check.
#[derive(Debug, Clone, FromRow, Serialize, PartialEq, Eq)]
pub struct IncidentView {
    pub id: i64,
    pub check_name: String,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub cause: String,
}

/// One successful result's latency, for percentile bands.
#[derive(Debug, Clone, Copy, FromRow, PartialEq, Eq)]
pub struct LatencySample {
    pub at_ms: i64,
    pub latency_ms: i64,
}

const INCIDENT_VIEW: &str = "SELECT i.id, c.name AS check_name, i.opened_ms, i.resolved_ms, i.cause \
     FROM incidents i JOIN checks c ON c.id = i.check_id";

impl Store {
    /// Incidents still open, oldest first.
    pub async fn list_open_incidents(&self) -> anyhow::Result<Vec<IncidentView>> {
        let sql = format!("{INCIDENT_VIEW} WHERE i.resolved_ms IS NULL ORDER BY i.opened_ms, i.id");
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)?)
    }

    /// Incidents of one check that were open at some time at or after `since_ms`, newest
    /// first.
    pub async fn list_check_incidents(
        &self,
        check_id: i64,
        since_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<IncidentView>> {
        let sql = format!(
            "{INCIDENT_VIEW} WHERE i.check_id = $1 \
             AND (i.resolved_ms IS NULL OR i.resolved_ms >= $2) \
             ORDER BY i.opened_ms DESC, i.id DESC LIMIT $3"
        );
        Ok(on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(check_id)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Warnings waiting for the next digest (the writer-side twin is
    /// [`Store::pending_digest_items`]).
    pub async fn preview_digest_items(&self) -> anyhow::Result<Vec<DigestItem>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, key, source, kind, title, detail, first_ms, last_ms, count, worst, unit, \
             active FROM digest_items WHERE digest_alert_id IS NULL ORDER BY first_ms, id"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Latency of the successful raw results of a check in `[since, until)`, oldest first, at
    /// most `limit`.
    pub async fn list_latencies(
        &self,
        check_id: i64,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<LatencySample>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT at_ms, latency_ms FROM check_results WHERE check_id = $1 AND at_ms >= $2 \
             AND at_ms < $3 AND ok = $4 AND latency_ms IS NOT NULL ORDER BY at_ms LIMIT $5"
        )
        .bind(check_id)
        .bind(since_ms)
        .bind(until_ms)
        .bind(true)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// When the certificate seen by the newest result that saw one expires.
    pub async fn last_cert_expiry(&self, check_id: i64) -> anyhow::Result<Option<i64>> {
        Ok(on_reader!(self, |pool| sqlx::query_scalar(
            "SELECT cert_expires_ms FROM check_results WHERE check_id = $1 \
             AND cert_expires_ms IS NOT NULL ORDER BY at_ms DESC LIMIT 1"
        )
        .bind(check_id)
        .fetch_optional(pool)
        .await)?
        .flatten())
    }
}
