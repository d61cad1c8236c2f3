//! `opswatch report daily|weekly|security [--send]`: produces the report now, stores it,
//! prints its text; `--send` also sends its message through every channel, one per channel.
//! Exit 0, or 1 when the daily summary cannot reach the app's database (the report is still
//! printed) or a channel refused the message.

use std::process::ExitCode;

use crate::config::Config;
use crate::daemon::state::AppState;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;
use crate::reports::{Kind, this_host};
use crate::rules::alert::Alert;
use crate::store::{NewReport, Store, now_ms};

pub async fn run(config: Config, kind: Kind, send: bool) -> ExitCode {
    let store = match Store::open(config.storage.url.expose()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return ExitCode::from(1);
        }
    };
    let app = AppState::new(config, store);
    let code = produce_and_print(&app, kind, send).await;
    app.store.close().await;
    code
}

async fn produce_and_print(app: &AppState, kind: Kind, send: bool) -> ExitCode {
    let produced = match crate::jobs::reports::produce(app, kind, false).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("opswatch report {}: {e:#}", kind.as_str());
            return ExitCode::from(1);
        }
    };
    let report = &produced.report;
    let host = this_host();
    let id = match app
        .store
        .insert_report(&NewReport {
            host: &host,
            kind: kind.as_str(),
            created_ms: now_ms(),
            occurrence_ms: None,
            summary: &report.summary,
            body: &report.body,
            text: &report.text,
        })
        .await
    {
        Ok(id) => id,
        Err(e) => {
            eprintln!("opswatch: cannot store the report: {e:#}");
            None
        }
    };
    print!("{}", report.text);
    let mut code = ExitCode::SUCCESS;
    if let Some(failure) = &produced.failure {
        eprintln!("opswatch report {}: {failure}", kind.as_str());
        code = ExitCode::from(1);
    }
    if send && !send_now(app, report, &host, id).await {
        code = ExitCode::from(1);
    }
    code
}

/// Sends the message straight to each channel (no dispatcher runs in the CLI); true when
/// every channel took it.
async fn send_now(
    app: &AppState,
    report: &crate::reports::Report,
    host: &str,
    id: Option<i64>,
) -> bool {
    let channels = match Channel::all_from(&app.config, DEFAULT_REQUEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return false;
        }
    };
    if channels.is_empty() {
        eprintln!("opswatch: --send: no channel is configured ([telegram] or [[webhook]])");
        return false;
    }
    let m = report.message(host, id, app.config.server.public_url.as_deref());
    let alert = Alert {
        id: 0,
        severity: m.severity,
        source: m.source,
        kind: m.kind,
        title: m.title,
        value: m.value,
        threshold: m.threshold,
        hint: m.hint,
        body: m.body,
        created_ms: now_ms(),
    };
    let mut ok = true;
    for c in &channels {
        match c.send(&alert).await {
            Ok(_) => eprintln!("sent    {}", c.name()),
            Err(e) => {
                ok = false;
                eprintln!("FAIL    {}: {e}", c.name());
            }
        }
    }
    ok
}
