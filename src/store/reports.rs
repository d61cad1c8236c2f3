//! Stored reports: what was gathered (JSON) and what was sent (text), one row per report.

use serde::Serialize;

use super::{Store, on_reader, on_writer};

/// A report to store. `occurrence_ms` is the schedule occurrence it was made for, `None` when
/// an operator ran it by hand.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub host: &'a str,
    pub kind: &'a str,
    pub created_ms: i64,
    pub occurrence_ms: Option<i64>,
    pub summary: &'a str,
    pub body: &'a serde_json::Value,
    pub text: &'a str,
}

/// One line of the report list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReportSummary {
    pub id: i64,
    pub host: String,
    pub kind: String,
    pub created_ms: i64,
    pub summary: String,
}

/// A whole stored report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredReport {
    pub id: i64,
    pub host: String,
    pub kind: String,
    pub created_ms: i64,
    pub occurrence_ms: Option<i64>,
    pub summary: String,
    /// What was gathered, as the report kind shapes it.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub text: String,
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: i64,
    host: String,
    kind: String,
    created_ms: i64,
    occurrence_ms: Option<i64>,
    summary: String,
    body: String,
    text: String,
}

impl Store {
    /// Stores a report and returns its id, or `None` when a report for the same scheduled
    /// occurrence already exists (a scheduled report never goes out twice).
    pub async fn insert_report(&self, report: &NewReport<'_>) -> anyhow::Result<Option<i64>> {
        let body = serde_json::to_string(report.body)?;
        let id: Option<(i64,)> = on_writer!(self, |pool| sqlx::query_as(
            "INSERT INTO reports (host, kind, created_ms, occurrence_ms, summary, body, text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id"
        )
        .bind(report.host)
        .bind(report.kind)
        .bind(report.created_ms)
        .bind(report.occurrence_ms)
        .bind(report.summary)
        .bind(&body)
        .bind(report.text)
        .fetch_optional(pool)
        .await)?;
        Ok(id.map(|(id,)| id))
    }

    /// Reports created in `[since_ms, until_ms)`, newest first, at most `limit`.
    pub async fn list_reports(
        &self,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<ReportSummary>> {
        self.list_reports_page(since_ms, (until_ms - 1, i64::MAX), limit)
            .await
    }

    /// Reports created from `since_ms` up to `newest` = `(time, id)` inclusive, ordered by
    /// `(created_ms, id)` newest first: a page that the next one resumes exactly after.
    pub async fn list_reports_page(
        &self,
        since_ms: i64,
        newest: (i64, i64),
        limit: i64,
    ) -> anyhow::Result<Vec<ReportSummary>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, host, kind, created_ms, summary FROM reports \
             WHERE created_ms >= $1 AND created_ms <= $2 AND (created_ms < $2 OR id <= $3) \
             ORDER BY created_ms DESC, id DESC LIMIT $4"
        )
        .bind(since_ms)
        .bind(newest.0)
        .bind(newest.1)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// One report by id.
    pub async fn find_report(&self, id: i64) -> anyhow::Result<Option<StoredReport>> {
        let row: Option<ReportRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, host, kind, created_ms, occurrence_ms, summary, body, text \
             FROM reports WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        row.map(|r| {
            Ok(StoredReport {
                id: r.id,
                host: r.host,
                kind: r.kind,
                created_ms: r.created_ms,
                occurrence_ms: r.occurrence_ms,
                summary: r.summary,
                body: serde_json::from_str(&r.body)?,
                text: r.text,
            })
        })
        .transpose()
    }
}
