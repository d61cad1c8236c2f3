//! `opswatch report db [--send]`: the app database's health report now, printed as text and
//! stored; `--send` also raises its alerts and sends it. Exit 0, or 1 when the database
//! cannot be reached (with the driver's reason, never the password).

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::daemon::state::AppState;
use crate::jobs::db_report::DbReportError;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;

const DELIVERY_WITHIN: Duration = Duration::from_secs(60);

pub async fn run(config: Config, send: bool) -> ExitCode {
    if config.database.is_none() {
        eprintln!("opswatch: no [database] url in the config: no database to report on");
        return ExitCode::from(2);
    }
    let Some((app, channels)) = open(config).await else {
        return ExitCode::from(1);
    };
    let code = match crate::jobs::db_report::run(&app, None, send).await {
        Ok(outcome) => {
            print!("{}", outcome.text);
            ExitCode::SUCCESS
        }
        Err(DbReportError::Unreachable(why)) => {
            eprintln!("opswatch report db: cannot connect to the app's database: {why}");
            ExitCode::from(1)
        }
        Err(DbReportError::Store(e)) => {
            eprintln!("opswatch report db: {e:#}");
            ExitCode::from(1)
        }
    };
    if send {
        crate::notify::dispatcher::deliver_due_now(&app, &channels, DELIVERY_WITHIN).await;
    }
    app.store.close().await;
    code
}

/// The store and channels a run-now command records and sends through.
pub(super) async fn open(config: Config) -> Option<(AppState, Vec<Channel>)> {
    let store = match crate::store::Store::open(config.storage.url.expose()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return None;
        }
    };
    let channels = match Channel::all_from(&config, DEFAULT_REQUEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return None;
        }
    };
    Some((AppState::new(config, store), channels))
}
