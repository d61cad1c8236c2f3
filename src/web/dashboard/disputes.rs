//! `/disputes`: the disputes of the application (DISPUTE alerts), from either source (the SQL
//! query or `POST /api/v1/disputes`), newest first.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::{Meta, PageError};
use crate::daemon::state::AppState;
use crate::store::now_ms;

/// One dispute as the pages show it.
pub struct DisputeLine {
    pub id: String,
    pub at: String,
    pub fields: String,
}

/// At most this many disputes on a page; the API pages through the rest.
const MAX_LINES: i64 = 200;
/// A dispute's fields are cut to this many characters on a page.
const MAX_FIELDS_CHARS: usize = 300;

/// Disputes seen since `since_ms`, newest first (read pool only).
pub async fn recent_disputes(app: &AppState, since_ms: i64) -> anyhow::Result<Vec<DisputeLine>> {
    let rows = app
        .store
        .list_disputes(since_ms, i64::MAX, MAX_LINES)
        .await?;
    Ok(rows
        .into_iter()
        .map(|d| {
            let mut fields = match &d.fields {
                serde_json::Value::Object(map) => map
                    .iter()
                    .filter(|(k, _)| k.as_str() != "id")
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}: {s}"),
                        other => format!("{k}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            if let Some((cut, _)) = fields.char_indices().nth(MAX_FIELDS_CHARS) {
                fields.truncate(cut);
                fields.push('…');
            }
            DisputeLine {
                id: d.id,
                at: super::format::fmt_time(d.created_ms),
                fields,
            }
        })
        .collect())
}

/// What to say when there is nothing to list.
pub fn empty_state(app: &AppState) -> &'static str {
    if app.config.disputes.is_some() {
        "No disputes recorded."
    } else {
        "No disputes source configured: add a [disputes] query, or let the app POST to /api/v1/disputes."
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "disputes.html")]
pub struct DisputesPage {
    meta: Meta,
    disputes: Vec<DisputeLine>,
    empty: &'static str,
}

pub async fn page(State(app): State<AppState>) -> Result<DisputesPage, PageError> {
    let now = now_ms();
    Ok(DisputesPage {
        meta: Meta::new("/disputes", "/api/v1/disputes", now),
        disputes: recent_disputes(&app, now - 90 * 86_400_000).await?,
        empty: empty_state(&app),
    })
}
