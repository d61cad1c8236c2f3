//! `/disputes`: the disputes of the application (DISPUTE alerts). Until the disputes store
//! lands this page says honestly where disputes would come from; [`recent_disputes`] is the
//! one place to fill in.

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

/// Disputes seen since `since_ms`, newest first.
///
/// Empty until the disputes issue stores them: read its table here (on the read pool) and
/// both this page and the overview show them.
pub async fn recent_disputes(_app: &AppState, _since_ms: i64) -> anyhow::Result<Vec<DisputeLine>> {
    Ok(Vec::new())
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
