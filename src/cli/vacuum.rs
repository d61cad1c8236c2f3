//! `opswatch db vacuum`: VACUUM (ANALYZE) now, whatever `[vacuum] enabled` says; prints the
//! before/after table report, stores it and sends it. Exit 0, or 1 when the app's database
//! cannot be reached.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

const DELIVERY_WITHIN: Duration = Duration::from_secs(60);

pub async fn run(config: Config) -> ExitCode {
    if config.database.is_none() {
        eprintln!("opswatch: no [database] url in the config: no database to vacuum");
        return ExitCode::from(2);
    }
    let Some((app, channels)) = super::db_report::open(config).await else {
        return ExitCode::from(1);
    };
    let code = match crate::jobs::vacuum::vacuum(&app).await {
        Ok(report) => {
            print!("{}", report.text());
            match crate::jobs::vacuum::store_and_send(&app, &report, None).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("opswatch db vacuum: the report could not be stored: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("opswatch db vacuum: {e}");
            ExitCode::from(1)
        }
    };
    crate::notify::dispatcher::deliver_due_now(&app, &channels, DELIVERY_WITHIN).await;
    app.store.close().await;
    code
}
