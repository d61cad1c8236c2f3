//! opswatch's own history: SQLite by default, PostgreSQL when the storage URL says so.
//!
//! # Portability decisions
//! - **One set of SQL for both backends.** Queries are written once, in the subset both
//!   dialects share: `$1` placeholders (SQLite reads `$N` as positional), `ON CONFLICT ... DO
//!   UPDATE`, `RETURNING`, partial indexes. Only DDL differs, in `migrations/{sqlite,postgres}`.
//!   A query that cannot be shared branches on [`Backend`] where it is written.
//! - **Timestamps are `i64` unix epoch milliseconds, UTC.** Portable, cheap to index and
//!   compare, no time-zone or `TIMESTAMP` type differences between the dialects; converted to
//!   human time only at the edges (API, dashboard, messages).
//! - **Integers are `i64`** (PostgreSQL `BIGINT`), booleans are `bool` (SQLite stores 0/1).
//! - **SQLite runs in WAL mode with one writer connection** (writes queue inside the process
//!   instead of failing with "database is locked") and a small read pool, so a page or an API
//!   call never waits behind a write, and a write never turns into a false DOWN.
//! - Runtime `query`/`query_as` (no compile-time `query!`, which checks against one database).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::ConnectOptions as _;

mod alerts;
mod checks;
mod conditions;
mod dashboard;
mod disputes;
mod facts;
mod job_runs;
mod pending;
mod report_queries;
mod report_state;
mod reports;
pub mod rollups;
mod samples;
pub mod series;
mod sessions;

pub use alerts::*;
pub use checks::*;
pub use conditions::*;
pub use dashboard::*;
pub use disputes::*;
pub use facts::*;
pub use job_runs::*;
pub use report_queries::*;
pub use report_state::*;
pub use reports::*;
pub use samples::*;
pub use sessions::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

/// How long a write may wait for SQLite's lock before it fails (another process, such as
/// `opswatch check`, may hold it briefly).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers for the dashboard and API; SQLite WAL lets them run beside the writer.
const SQLITE_READERS: u32 = 4;
/// Page cache of each reader connection, KiB (SQLite's default is 2,000 per connection). The
/// file's pages are in the kernel's page cache already; with the default, each of the four
/// readers may fill 2 MiB of its own with copies of them as pages and API calls read different
/// ranges, so the daemon's RSS would creep up by up to 8 MiB. The dashboard's reads touch few
/// pages each (roll-up tiers, grouped in SQL); BENCHMARKS.md, issue 14.
const SQLITE_READER_CACHE_KIB: u32 = 256;
const POSTGRES_CONNECTIONS: u32 = 8;

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
enum Pool {
    Sqlite {
        /// The only connection that writes.
        writer: SqlitePool,
        reader: SqlitePool,
        file: SqliteFile,
    },
    Postgres(PgPool),
}

/// The database file and its identity when opened, so the probe notices it was deleted or
/// replaced under us (open descriptors would otherwise keep writing to a ghost).
#[derive(Clone, Debug)]
struct SqliteFile {
    path: PathBuf,
    dev_ino: Option<(u64, u64)>,
}

/// Cheap to clone: the pools inside are reference-counted.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Series name → id, so a sample does not cost a lookup per value.
    series_cache: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    /// Check results waiting to be written (see `pending.rs`).
    pending: std::sync::Arc<pending::PendingResults>,
    /// The host whose facts this store reads and writes (checks, series, conditions, the
    /// probe): the config's `host`.
    host: std::sync::Arc<str>,
}

/// Runs `$body` with `$p` bound to the pool that takes writes.
macro_rules! on_writer {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { writer: $p, .. } => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$p` bound to a pool for reads (never blocked by the SQLite writer).
macro_rules! on_reader {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite { reader: $p, .. } => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use {on_reader, on_writer};

impl Store {
    /// Opens the store named by `url` for this machine's hostname (the default `host`) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_as(url, &crate::config::default_host()).await
    }

    /// Opens the store named by `url` for `host`, applies pending migrations, and claims the
    /// rows that no host owns yet (those from before the host column) for `host`.
    pub async fn open_as(url: &str, host: &str) -> anyhow::Result<Self> {
        let mut store = Self::connect(url).await?;
        store.host = host.into();
        store.migrate().await?;
        store.claim_unowned_rows().await?;
        Ok(store)
    }

    /// The host whose facts this store reads and writes.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Gives the rows migrated without a host (host `''`) to this store's host. Roll-up
    /// cursors stay store-wide (see `rollups.rs`).
    async fn claim_unowned_rows(&self) -> anyhow::Result<()> {
        for (table, key) in [
            ("checks", "name"),
            ("series", "name"),
            ("conditions", "key"),
            ("store_probe", "host"),
        ] {
            // A row this host already has wins over an unowned one of the same key.
            let sql = format!(
                "UPDATE {table} SET host = $1 WHERE host = '' AND NOT EXISTS \
                 (SELECT 1 FROM {table} mine WHERE mine.host = $1 AND mine.{key} = {table}.{key})"
            );
            on_writer!(self, |pool| sqlx::query(&sql)
                .bind(&*self.host)
                .execute(pool)
                .await
                .map(|_| ()))
            .with_context(|| format!("cannot give the {table} rows their host"))?;
        }
        Ok(())
    }

    /// Opens the store without touching its schema.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .context("invalid PostgreSQL URL")?
                .application_name("opswatch")
                .log_statements(tracing::log::LevelFilter::Trace);
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .min_connections(0)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .idle_timeout(Duration::from_secs(300))
                .connect_with(options)
                .await
                .map_err(redact_db_error)
                .context("cannot connect to the PostgreSQL store")?;
            return Ok(Self {
                pool: Pool::Postgres(pool),
                series_cache: Default::default(),
                pending: Default::default(),
                host: crate::config::default_host().into(),
            });
        }
        let path = sqlite_path(url)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the data folder {}", parent.display()))?;
        }
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .log_statements(tracing::log::LevelFilter::Trace);
        // Incremental auto-vacuum lets retention hand space back without a blocking VACUUM;
        // it only takes effect on a new database file, so it is set from the first open.
        let writer_opts = base
            .clone()
            .create_if_missing(true)
            .auto_vacuum(SqliteAutoVacuum::Incremental);
        // No ping before each acquire: a SQLite connection is a file handle with no far end
        // to hang up, and the ping is a round trip to its worker thread per statement.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(writer_is_clean(conn)))
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .connect_with(writer_opts)
            .await
            .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(SQLITE_READERS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(
                base.read_only(true)
                    .pragma("cache_size", format!("-{SQLITE_READER_CACHE_KIB}")),
            );
        let dev_ino = file_identity(&path);
        Ok(Self {
            pool: Pool::Sqlite {
                writer,
                reader,
                file: SqliteFile { path, dev_ino },
            },
            series_cache: Default::default(),
            pending: Default::default(),
            host: crate::config::default_host().into(),
        })
    }

    /// The folder holding the SQLite file; `None` on PostgreSQL.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.pool {
            Pool::Sqlite { file, .. } => Some(
                file.path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ),
            Pool::Postgres(_) => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations of this backend. Safe to run from several processes at
    /// once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite { writer, .. } => {
                // Migrations that rebuild a table (SQLite cannot alter a constraint) drop it
                // first; with foreign keys on, that would cascade into every row referencing
                // it. The pragma cannot change inside the migration's transaction, so it is
                // turned off around them, on the one writer connection, and the references
                // are checked before it is turned back on.
                let mut conn = writer.acquire().await?;
                sqlx::query("PRAGMA foreign_keys = OFF")
                    .execute(&mut *conn)
                    .await?;
                let migrated = sqlx::migrate!("migrations/sqlite").run(&mut *conn).await;
                let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap_or_default();
                sqlx::query("PRAGMA foreign_keys = ON")
                    .execute(&mut *conn)
                    .await?;
                migrated.context("cannot apply the store migrations")?;
                anyhow::ensure!(
                    broken.is_empty(),
                    "the store migrations left broken references in {broken:?}"
                );
                Ok(())
            }
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres")
                .run(pool)
                .await
                .context("cannot apply the store migrations"),
        }
    }

    /// Proves the store is usable: a real write, and for SQLite that the file on disk is still
    /// the one we opened.
    pub async fn probe(&self, now_ms: i64) -> anyhow::Result<()> {
        if let Pool::Sqlite { file, .. } = &self.pool {
            let now = file_identity(&file.path);
            if now.is_none() || now != file.dev_ino {
                anyhow::bail!(
                    "the SQLite file {} is gone or was replaced",
                    file.path.display()
                );
            }
        }
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO store_probe (host, at_ms) VALUES ($1, $2) \
                 ON CONFLICT (host) DO UPDATE SET at_ms = excluded.at_ms",
            )
            .bind(&*self.host)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(redact_db_error)
        })?;
        Ok(())
    }

    /// Closes every connection, waiting for queries in flight (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Whether the writer connection may go back to the pool, or must be closed and replaced.
///
/// sqlx 0.8 counts transaction depth itself and only lowers the count when its `COMMIT` or
/// `ROLLBACK` statement succeeds. When SQLite fails a `COMMIT` with "database or disk is full"
/// it rolls the transaction back on its own; the `ROLLBACK` sqlx then queues (the dropped
/// `Transaction`) fails with "no transaction is active", and the connection keeps a depth of 1
/// with no transaction open. Its next `begin()` is then a `SAVEPOINT`, which opens a real
/// transaction, and the first transaction that fails after that is undone with `ROLLBACK TO
/// SAVEPOINT`, which leaves the outer transaction open: from then on every write of the
/// process runs inside a transaction that is never committed (the writer sees its own rows,
/// other connections get "database is locked", a restart loses it all). A connection whose
/// depth is still above zero once nothing holds it is in that state: close it, and the pool
/// opens a clean one (closing also rolls back whatever SQLite still has open).
async fn writer_is_clean(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A dropped transaction queues its ROLLBACK on the connection's worker; a round trip lets
    // it run before the depth is read again.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!(
            "the store's writer connection lost track of a failed transaction; replacing it"
        );
        return Ok(false);
    }
    Ok(true)
}

/// Why `error` means the store cannot take writes (a full disk, an I/O error, a read-only or
/// vanished file, a lock held too long, no connection), or `None` for an error that is about
/// the write itself. Looks through the whole chain for the sqlx error.
pub fn storage_fault(error: &anyhow::Error) -> Option<String> {
    let db = error.chain().find_map(|e| e.downcast_ref::<sqlx::Error>());
    let Some(db) = db else {
        let text = format!("{error:#}");
        // Errors already redacted to text by `redact_db_error`.
        return [
            "disk is full",
            "I/O error",
            "timed out waiting for a connection",
            "database is locked",
            "readonly database",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        .then_some(text);
    };
    match db {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // SQLite primary codes (extended codes keep them in the low byte): 5 BUSY, 6
            // LOCKED, 8 READONLY, 10 IOERR, 13 FULL, 14 CANTOPEN. PostgreSQL: class 53
            // (insufficient resources: disk full, out of memory, too many connections), class
            // 58 (system error, I/O), 57P (the server is shutting down), 25006 (read-only).
            let sqlite = code.parse::<i64>().ok().map(|c| c & 0xff);
            let fault = matches!(sqlite, Some(5 | 6 | 8 | 10 | 13 | 14))
                || code.starts_with("53")
                || code.starts_with("58")
                || code.starts_with("57P")
                || code == "25006";
            fault.then(|| format!("database error: {}", d.message()))
        }
        sqlx::Error::Io(io) => Some(format!("I/O error: {io}")),
        sqlx::Error::PoolTimedOut => Some("timed out waiting for a connection".to_owned()),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some("the connection pool is closed".to_owned())
        }
        _ => None,
    }
}

/// `sqlite://./data/x.db` → `./data/x.db`; `sqlite:///var/lib/x.db` → `/var/lib/x.db`.
fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a sqlite: URL")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    anyhow::ensure!(!rest.is_empty(), "the sqlite URL names no file");
    Ok(PathBuf::from(rest))
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// sqlx's connection errors can quote the URL; keep only what is safe to log.
fn redact_db_error(e: sqlx::Error) -> anyhow::Error {
    let text = match &e {
        sqlx::Error::Database(db) => format!("database error: {}", db.message()),
        sqlx::Error::Io(io) => format!("I/O error: {io}"),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::Tls(_) => "TLS error".to_owned(),
        sqlx::Error::Configuration(_) => "invalid connection settings".to_owned(),
        other => crate::config::redact_url(&other.to_string()),
    };
    anyhow::anyhow!(text)
}

/// Milliseconds since the unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_map_to_paths() {
        assert_eq!(
            sqlite_path("sqlite://./data/o.db").unwrap(),
            PathBuf::from("./data/o.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/o.db").unwrap(),
            PathBuf::from("/var/lib/o.db")
        );
        assert_eq!(
            sqlite_path("sqlite:o.db?mode=rwc").unwrap(),
            PathBuf::from("o.db")
        );
        assert!(sqlite_path("sqlite://").is_err());
    }
}
