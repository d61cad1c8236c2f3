//! One short-lived connection to the app's PostgreSQL (never a pool left open against it),
//! marked `application_name = 'opswatch'`, with a `statement_timeout` on every query and the
//! session in UTC. Errors carry the driver's reason and never the URL or its password.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// How long connecting (TCP, TLS, authentication) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppDbError {
    /// The database could not be reached or refused us (auth, unknown database).
    #[error("cannot connect to the app's database: {0}")]
    Unreachable(String),
    /// A query failed; the text is the database's message.
    #[error("{0}")]
    Query(String),
}

/// Opens the connection. `statement_timeout` applies to every statement of the session.
pub async fn connect(url: &str, statement_timeout: Duration) -> Result<PgConnection, AppDbError> {
    let timeout_ms = statement_timeout.as_millis().max(1).to_string();
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| AppDbError::Unreachable("the database URL is invalid".to_owned()))?
        .application_name("opswatch")
        .options([
            ("statement_timeout", timeout_ms.as_str()),
            ("TimeZone", "UTC"),
        ])
        .log_statements(tracing::log::LevelFilter::Trace)
        // A long VACUUM or report query is expected here, not worth a warning with its SQL.
        .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(1));
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(AppDbError::Unreachable(reason(&e))),
        Err(_) => Err(AppDbError::Unreachable(format!(
            "no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Closes the connection politely; a failure to say goodbye is not worth reporting.
pub async fn close(conn: PgConnection) {
    use sqlx::Connection as _;
    let _ = conn.close().await;
}

/// The driver's reason, safe to show: the database's message, the I/O error, or the kind of
/// failure, with any URL redacted.
pub fn reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(t) => format!("TLS: {}", crate::config::redact_url(&t.to_string())),
        sqlx::Error::Configuration(_) => "invalid connection settings".to_owned(),
        sqlx::Error::Protocol(p) => crate::config::redact_url(p),
        other => crate::config::redact_url(&other.to_string()),
    }
}

/// A query error as [`AppDbError`]: connection-level failures are `Unreachable`.
pub fn query_error(e: &sqlx::Error) -> AppDbError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            AppDbError::Unreachable(reason(e))
        }
        _ => AppDbError::Query(reason(e)),
    }
}

/// Quotes an identifier for SQL that cannot take it as a parameter (VACUUM, table names).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(super::quote_ident("orders"), "\"orders\"");
        assert_eq!(super::quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
