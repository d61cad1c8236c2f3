//! `config check --connect`: try each store, database, channel and endpoint once and say, per
//! item, whether it answered. Never prints a secret: URLs are shown redacted.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(config: &Config) -> ExitCode {
    let mut failures = 0;
    let mut report = |item: String, outcome: Result<(), String>| match outcome {
        Ok(()) => println!("ok    {item}"),
        Err(why) => {
            failures += 1;
            println!("FAIL  {item}: {why}");
        }
    };
    report(
        format!("storage {}", config.storage.url),
        try_store(config.storage.url.expose()).await,
    );
    if let Some(db) = &config.database {
        report(
            format!("database {}", db.url),
            try_postgres(db.url.expose()).await,
        );
    }
    if let Some(t) = &config.telegram {
        let outcome = match crate::notify::telegram::TelegramChannel::new(t, CONNECT_TIMEOUT) {
            Ok(channel) => channel
                .get_me()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        report(format!("telegram {}", t.api_base), outcome);
    }
    for check in crate::checks::configured(config) {
        let seen = check.probe().await;
        let outcome = match seen.failure {
            None => Ok(()),
            Some(f) => Err(f.text),
        };
        report(
            format!("{} {} {}", check.kind(), check.name(), check.target_line()),
            outcome,
        );
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn try_store(url: &str) -> Result<(), String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, crate::store::Store::connect(url)).await {
        Ok(Ok(store)) => {
            store.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("timed out".to_owned()),
    }
}

async fn try_postgres(url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Database(db))) => Err(db.message().to_owned()),
        Ok(Err(sqlx::Error::Io(io))) => Err(io.to_string()),
        Ok(Err(_)) => Err("cannot connect".to_owned()),
        Err(_) => Err("timed out".to_owned()),
    }
}
