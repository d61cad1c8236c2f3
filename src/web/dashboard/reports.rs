//! `/reports` and `/reports/{id}`: the stored daily, weekly, security and database reports.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};

use super::{Meta, PageError, fmt_time};
use crate::daemon::state::AppState;
use crate::store::now_ms;

const LIST_ROWS: i64 = 200;

struct ReportLine {
    id: i64,
    kind: String,
    at: String,
    summary: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "reports.html")]
pub struct ListPage {
    meta: Meta,
    reports: Vec<ReportLine>,
}

pub async fn list(State(app): State<AppState>) -> Result<ListPage, PageError> {
    let now = now_ms();
    let reports = app
        .store
        .list_reports(0, now + 1, LIST_ROWS)
        .await?
        .into_iter()
        .map(|r| ReportLine {
            id: r.id,
            kind: r.kind,
            at: fmt_time(r.created_ms),
            summary: r.summary,
        })
        .collect();
    Ok(ListPage {
        meta: Meta::new("/reports", "/api/v1/reports", now),
        reports,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "report.html")]
pub struct OnePage {
    meta: Meta,
    id: i64,
    kind: String,
    at: String,
    report_host: String,
    summary: String,
    text: String,
}

pub async fn one(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<OnePage, PageError> {
    let now = now_ms();
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::NotFound(format!("no report {id:?}: report ids are numbers")))?;
    let r = app
        .store
        .find_report(id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no report {id}")))?;
    Ok(OnePage {
        meta: Meta::new("/reports", format!("/api/v1/reports/{id}"), now),
        id: r.id,
        kind: r.kind,
        at: fmt_time(r.created_ms),
        report_host: r.host,
        summary: r.summary,
        text: r.text,
    })
}
