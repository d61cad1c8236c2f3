//! `opswatch disputes check`: reads the SQL source once now, alerts each new dispute (through
//! the outbox, so a running `serve` never sends it a second time), prints them. Exit 0, or 1
//! when the app's database cannot be reached or the query fails.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::daemon::state::AppState;
use crate::jobs::disputes::RunError;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;

/// How long the command waits for the channels to take its alerts.
const DELIVERY_WITHIN: Duration = Duration::from_secs(60);

pub async fn check(config: Config) -> ExitCode {
    if config
        .disputes
        .as_ref()
        .and_then(|d| d.query.as_ref())
        .is_none()
    {
        eprintln!("opswatch: no [disputes] query in the config: nothing to check");
        return ExitCode::from(2);
    }
    let store = match crate::store::Store::open(config.storage.url.expose()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return ExitCode::from(1);
        }
    };
    let channels = match Channel::all_from(&config, DEFAULT_REQUEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return ExitCode::from(1);
        }
    };
    let app = AppState::new(config, store);
    let code = match crate::jobs::disputes::check_sql(&app).await {
        Ok(new) => {
            if new.is_empty() {
                println!("no new dispute");
            }
            for d in &new {
                let fields: Vec<String> = d
                    .fields
                    .iter()
                    .filter(|(name, _)| name != "id")
                    .map(|(name, v)| match v {
                        serde_json::Value::String(s) => format!("{name}={s}"),
                        other => format!("{name}={other}"),
                    })
                    .collect();
                println!("dispute {}  {}", d.id, fields.join("  "));
            }
            ExitCode::SUCCESS
        }
        Err(RunError::Db(e)) => {
            eprintln!("opswatch disputes check: {e}");
            ExitCode::from(1)
        }
        Err(RunError::Store(e)) => {
            eprintln!("opswatch disputes check: the store failed: {e:#}");
            ExitCode::from(1)
        }
    };
    crate::notify::dispatcher::deliver_due_now(&app, &channels, DELIVERY_WITHIN).await;
    app.store.close().await;
    code
}
