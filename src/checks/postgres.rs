//! Health facts of the app's PostgreSQL, read over one connection (see `app_db`). Every fact
//! is read by its own query; a query refused for lack of privilege (a `pg_monitor` role cannot
//! read everything) leaves that fact out and names it in `unreadable` instead of failing the
//! whole report. Queries and facts as verified in shared/reference/postgres. Knows nothing of
//! thresholds or the store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::{PgConnection, PgRow};

use super::app_db::{quote_ident, reason};

/// Largest value an `xid` age can reach before wraparound shuts writes down (2^31 - 1).
pub const XID_LIMIT: i64 = 2_147_483_647;
/// Unused indexes smaller than this are not worth a line.
const UNUSED_INDEX_MIN_BYTES: i64 = 10 * 1024 * 1024;
/// Sequences are listed from this share of their maximum on.
const SEQUENCE_LIST_PCT: f64 = 80.0;
/// Round trips timed for the latency fact (its median is reported).
const LATENCY_PROBES: usize = 5;
/// At most this many rows per list fact (the report stays short; the count is exact).
const LIST_LIMIT: i64 = 50;

/// What to read and what counts as long.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dead_tuples_warn: i64,
    /// A query running (or a transaction idle) longer than this is listed.
    pub long_query: Duration,
    /// `schema.table` or `table` of the app's own migrations, when not a common one.
    pub migrations_table: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub database: Option<String>,
    pub server_version: Option<String>,
    /// Connecting (TCP, TLS, authentication) took this long.
    pub connect_ms: f64,
    /// Median of five `SELECT 1` round trips on the open connection.
    pub latency_ms: Option<f64>,
    pub connections: Option<Connections>,
    pub size_bytes: Option<i64>,
    pub tables_without_pk: Option<Vec<String>>,
    /// Tables over `dead_tuples_warn` dead tuples.
    pub dead_tuples: Option<Vec<DeadTuples>>,
    pub dead_tuples_total: Option<i64>,
    /// Active queries running longer than `long_query`.
    pub long_queries: Option<Vec<Session>>,
    /// Sessions idle in a transaction longer than `long_query`.
    pub idle_in_transaction: Option<Vec<Session>>,
    pub cache: Option<Cache>,
    /// Transaction ID age per database, oldest first.
    pub wraparound: Option<Vec<XidAge>>,
    /// Sequences over 80 % of their maximum.
    pub sequences: Option<Vec<SequenceUse>>,
    pub invalid_indexes: Option<Vec<String>>,
    /// Each entry: the table and its identical indexes.
    pub duplicate_indexes: Option<Vec<DuplicateIndexes>>,
    /// Never-scanned indexes over 10 MiB that enforce nothing.
    pub unused_indexes: Option<Vec<UnusedIndex>>,
    pub replication: Option<Replication>,
    /// `None` inside: `pg_stat_statements` is not installed.
    pub slowest_statements: Option<Option<Vec<SlowStatement>>>,
    pub migrations: Option<Vec<Migrations>>,
    /// Fact → why it could not be read (the database's message).
    pub unreadable: BTreeMap<String, String>,
    /// The load this report put on the database.
    pub load: Load,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Load {
    pub queries: u32,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    pub max_connections: i64,
    /// Reserved for superusers (and from PG 16 `reserved_connections`).
    pub reserved: i64,
    /// Client backends now.
    pub used: i64,
    /// Client backends by state (`active`, `idle`, `idle in transaction`, ...).
    pub by_state: Vec<(String, i64)>,
    pub idle_in_transaction: i64,
    /// How long the oldest idle-in-transaction session has been so, seconds.
    pub longest_idle_in_transaction_s: Option<f64>,
}

impl Connections {
    /// Share of the connections the app can use, percent.
    pub fn used_pct(&self) -> f64 {
        let usable = (self.max_connections - self.reserved).max(1);
        100.0 * self.used as f64 / usable as f64
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadTuples {
    pub table: String,
    pub live: i64,
    pub dead: i64,
    pub last_vacuum: Option<String>,
    pub last_autovacuum: Option<String>,
    pub last_analyze: Option<String>,
    pub last_autoanalyze: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Session {
    pub pid: i64,
    pub user: String,
    pub database: String,
    pub state: String,
    pub for_s: f64,
    pub query: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cache {
    pub blks_hit: i64,
    pub blks_read: i64,
    /// Cumulative since the statistics were reset.
    pub hit_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct XidAge {
    pub database: String,
    pub age: i64,
    pub freeze_max_age: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SequenceUse {
    pub sequence: String,
    pub last_value: i64,
    pub max_value: i64,
    pub pct: f64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DuplicateIndexes {
    pub table: String,
    pub indexes: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UnusedIndex {
    pub index: String,
    pub table: String,
    pub bytes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    /// This server is a replica.
    pub in_recovery: bool,
    /// On a replica: seconds since the last replayed transaction.
    pub replay_delay_s: Option<f64>,
    /// On a primary: one entry per connected replica.
    pub replicas: Vec<Replica>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Replica {
    pub name: String,
    pub client: String,
    pub state: String,
    pub replay_lag_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SlowStatement {
    pub query: String,
    pub calls: i64,
    pub mean_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Migrations {
    pub table: String,
    pub framework: &'static str,
    /// Applied migrations; `None` where the table holds only the current version
    /// (golang-migrate, alembic).
    pub applied: Option<i64>,
    /// Failed, dirty or unfinished migrations.
    pub failed: i64,
    pub latest: Option<String>,
}

/// Runs the queries and keeps count of them.
struct Reader<'c> {
    conn: &'c mut PgConnection,
    facts: Facts,
}

impl Reader<'_> {
    async fn rows<T>(&mut self, fact: &str, sql: &str) -> Option<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let started = Instant::now();
        let result = sqlx::query_as::<_, T>(sql).fetch_all(&mut *self.conn).await;
        self.facts.load.queries += 1;
        self.facts.load.total_ms += started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(rows) => Some(rows),
            Err(e) => {
                let why = reason(&e);
                tracing::debug!(fact, error = %why, "app database fact not readable");
                self.facts.unreadable.entry(fact.to_owned()).or_insert(why);
                None
            }
        }
    }

    async fn one<T>(&mut self, fact: &str, sql: &str) -> Option<T>
    where
        T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.rows(fact, sql).await?.into_iter().next()
    }
}

/// Reads every fact. `connect_ms` is how long opening `conn` took.
pub async fn gather(conn: &mut PgConnection, settings: &Settings, connect_ms: f64) -> Facts {
    let mut r = Reader {
        conn,
        facts: Facts {
            connect_ms,
            ..Facts::default()
        },
    };
    let long_s = settings.long_query.as_secs_f64();

    let mut samples = Vec::with_capacity(LATENCY_PROBES);
    for _ in 0..LATENCY_PROBES {
        let started = Instant::now();
        if r.one::<(i32,)>("latency", "SELECT 1").await.is_none() {
            break;
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if samples.len() == LATENCY_PROBES {
        samples.sort_by(f64::total_cmp);
        r.facts.latency_ms = Some(samples[LATENCY_PROBES / 2]);
    }

    if let Some((db, version, size)) = r
        .one::<(String, String, i64)>(
            "size",
            "SELECT current_database()::text, current_setting('server_version'), \
             pg_database_size(current_database())::int8",
        )
        .await
    {
        r.facts.database = Some(db);
        r.facts.server_version = Some(version);
        r.facts.size_bytes = Some(size);
    }

    let totals = r
        .one::<(i64, i64, i64, i64, i64, Option<f64>)>(
            "connections",
            "SELECT current_setting('max_connections')::int8, \
             current_setting('superuser_reserved_connections')::int8 \
               + coalesce(nullif(current_setting('reserved_connections', true), '')::int8, 0), \
             count(*) FILTER (WHERE backend_type = 'client backend'), \
             count(*) FILTER (WHERE backend_type = 'client backend' AND state IS NULL), \
             count(*) FILTER (WHERE state LIKE 'idle in transaction%'), \
             extract(epoch FROM max(now() - state_change) \
               FILTER (WHERE state LIKE 'idle in transaction%'))::float8 \
             FROM pg_stat_activity",
        )
        .await;
    let by_state = r
        .rows::<(String, i64)>(
            "connections",
            "SELECT coalesce(state, 'not visible'), count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        .await;
    if let (Some((max, reserved, used, hidden, idle_tx, longest)), Some(by_state)) =
        (totals, by_state)
    {
        if hidden > 0 {
            r.facts.unreadable.insert(
                "sessions of other roles".to_owned(),
                format!(
                    "{hidden} session(s) show no state or query: grant pg_monitor to this role"
                ),
            );
        }
        r.facts.connections = Some(Connections {
            max_connections: max,
            reserved,
            used,
            by_state,
            idle_in_transaction: idle_tx,
            longest_idle_in_transaction_s: longest,
        });
    }

    let sessions = format!(
        "SELECT pid::int8 AS pid, coalesce(usename::text, '') AS \"user\", \
         coalesce(datname::text, '') AS \"database\", state, \
         extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start \
           ELSE coalesce(xact_start, state_change) END)::float8 AS for_s, \
         left(query, 200) AS \"query\" \
         FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND {{which}} \
         ORDER BY for_s DESC LIMIT {LIST_LIMIT}"
    );
    r.facts.long_queries = r
        .rows(
            "long-running queries",
            &sessions.replace(
                "{which}",
                &format!(
                    "state = 'active' AND now() - query_start > make_interval(secs => {long_s})"
                ),
            ),
        )
        .await;
    r.facts.idle_in_transaction = r
        .rows(
            "idle in transaction",
            &sessions.replace(
                "{which}",
                &format!(
                    "state LIKE 'idle in transaction%' \
                     AND now() - coalesce(xact_start, state_change) > make_interval(secs => {long_s})"
                ),
            ),
        )
        .await;

    r.facts.tables_without_pk = r
        .rows::<(String,)>(
            "tables without a primary key",
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') \
             ORDER BY 1",
        )
        .await
        .map(|rows| rows.into_iter().map(|(t,)| t).collect());

    r.facts.dead_tuples = r
        .rows(
            "dead tuples",
            &format!(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS \"table\", \
                 n_live_tup AS live, n_dead_tup AS dead, last_vacuum::text AS last_vacuum, \
                 last_autovacuum::text AS last_autovacuum, last_analyze::text AS last_analyze, \
                 last_autoanalyze::text AS last_autoanalyze \
                 FROM pg_stat_user_tables WHERE n_dead_tup > {} \
                 ORDER BY n_dead_tup DESC LIMIT {LIST_LIMIT}",
                settings.dead_tuples_warn
            ),
        )
        .await;
    r.facts.dead_tuples_total = r
        .one::<(i64,)>(
            "dead tuples",
            "SELECT coalesce(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables",
        )
        .await
        .map(|(n,)| n);

    r.facts.cache = r
        .one::<(i64, i64)>(
            "cache hit ratio",
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
        )
        .await
        .map(|(hit, read)| Cache {
            blks_hit: hit,
            blks_read: read,
            hit_pct: (hit + read > 0).then(|| 100.0 * hit as f64 / (hit + read) as f64),
        });

    r.facts.wraparound = r
        .rows(
            "transaction ID age",
            "SELECT datname::text AS \"database\", age(datfrozenxid)::int8 AS age, \
             current_setting('autovacuum_freeze_max_age')::int8 AS freeze_max_age \
             FROM pg_database ORDER BY 2 DESC",
        )
        .await;

    r.facts.sequences = r
        .rows(
            "sequences",
            &format!(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) AS \"sequence\", \
                 last_value, max_value, (100.0 * last_value / max_value)::float8 AS pct \
                 FROM pg_sequences \
                 WHERE last_value IS NOT NULL AND increment_by > 0 AND max_value > 0 \
                   AND 100.0 * last_value / max_value > {SEQUENCE_LIST_PCT} \
                 ORDER BY pct DESC LIMIT {LIST_LIMIT}"
            ),
        )
        .await;

    r.facts.invalid_indexes = r
        .rows::<(String,)>(
            "invalid indexes",
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid ORDER BY 1",
        )
        .await
        .map(|rows| rows.into_iter().map(|(t,)| t).collect());

    r.facts.duplicate_indexes = r
        .rows(
            "duplicate indexes",
            &format!(
                "SELECT i.indrelid::regclass::text AS \"table\", \
                 string_agg(i.indexrelid::regclass::text, ', ' ORDER BY i.indexrelid::regclass::text) AS indexes \
                 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
                 GROUP BY i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text, \
                   coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), \
                   coalesce(pg_get_expr(i.indpred, i.indrelid), '') \
                 HAVING count(*) > 1 ORDER BY 1 LIMIT {LIST_LIMIT}"
            ),
        )
        .await;

    r.facts.unused_indexes = r
        .rows(
            "unused indexes",
            &format!(
                "SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS \"index\", \
                 quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS \"table\", \
                 pg_relation_size(s.indexrelid)::int8 AS bytes \
                 FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid \
                 WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary \
                   AND pg_relation_size(s.indexrelid) > {UNUSED_INDEX_MIN_BYTES} \
                 ORDER BY bytes DESC LIMIT {LIST_LIMIT}"
            ),
        )
        .await;

    let recovery = r
        .one::<(bool, Option<f64>)>(
            "replication",
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN \
             extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END",
        )
        .await;
    let replicas = r
        .rows::<Replica>(
            "replication",
            "SELECT coalesce(application_name, '') AS name, coalesce(client_addr::text, '') AS client, \
             coalesce(state, '') AS \"state\", extract(epoch FROM replay_lag)::float8 AS replay_lag_s \
             FROM pg_stat_replication ORDER BY 1",
        )
        .await;
    if let (Some((in_recovery, replay_delay_s)), Some(replicas)) = (recovery, replicas) {
        r.facts.replication = Some(Replication {
            in_recovery,
            replay_delay_s,
            replicas,
        });
    }

    let installed = r
        .one::<(bool,)>(
            "slowest statements",
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')",
        )
        .await;
    r.facts.slowest_statements = match installed {
        Some((true,)) => r
            .rows(
                "slowest statements",
                "SELECT left(query, 200) AS \"query\", calls, mean_exec_time::float8 AS mean_ms, \
                 total_exec_time::float8 AS total_ms FROM pg_stat_statements \
                 ORDER BY mean_exec_time DESC LIMIT 5",
            )
            .await
            .map(Some),
        Some((false,)) => Some(None),
        None => None,
    };

    r.facts.migrations = migrations(&mut r, settings.migrations_table.as_deref()).await;
    r.facts
}

/// The migration tables of the common frameworks (and the configured one) on the search
/// path, recognised by name and columns (several frameworks share `schema_migrations` and
/// `migrations`).
async fn migrations(r: &mut Reader<'_>, configured: Option<&str>) -> Option<Vec<Migrations>> {
    const KNOWN: &[&str] = &[
        "_sqlx_migrations",
        "schema_migrations",
        "knex_migrations",
        "__diesel_schema_migrations",
        "_prisma_migrations",
        "alembic_version",
        "flyway_schema_history",
        "migrations",
    ];
    let (conf_schema, conf_table) = match configured.map(|c| c.split_once('.')) {
        Some(Some((s, t))) => (s.to_owned(), t.to_owned()),
        Some(None) => (String::new(), configured.unwrap_or_default().to_owned()),
        None => (String::new(), String::new()),
    };
    let names: Vec<String> = KNOWN
        .iter()
        .map(|s| (*s).to_owned())
        .chain((conf_schema.is_empty() && !conf_table.is_empty()).then(|| conf_table.clone()))
        .collect();
    let started = Instant::now();
    let found = sqlx::query_as::<_, (String, String, Vec<String>)>(
        "SELECT n.nspname::text, c.relname::text, array_agg(a.attname::text ORDER BY a.attnum) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         WHERE c.relkind IN ('r', 'p') AND ( \
           (n.nspname = ANY (current_schemas(false)) AND c.relname = ANY ($1)) \
           OR (n.nspname = $2 AND c.relname = $3)) \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(&names)
    .bind(&conf_schema)
    .bind(&conf_table)
    .fetch_all(&mut *r.conn)
    .await;
    r.facts.load.queries += 1;
    r.facts.load.total_ms += started.elapsed().as_secs_f64() * 1000.0;
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            r.facts
                .unreadable
                .insert("migrations".to_owned(), reason(&e));
            return None;
        }
    };
    let mut out = Vec::new();
    for (schema, table, columns) in found {
        let has = |c: &str| columns.iter().any(|x| x == c);
        let is_configured =
            table == conf_table && (conf_schema.is_empty() || conf_schema == schema);
        let t = format!("{}.{}", quote_ident(&schema), quote_ident(&table));
        let (framework, sql) = match table.as_str() {
            _ if is_configured => (
                "configured",
                format!("SELECT count(*), 0::int8, NULL::text FROM {t}"),
            ),
            "_sqlx_migrations" if has("success") => (
                "sqlx",
                format!(
                    "SELECT count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success), \
                     (SELECT version::text || ' ' || description FROM {t} ORDER BY version DESC LIMIT 1) FROM {t}"
                ),
            ),
            "schema_migrations" if has("dirty") => (
                "golang-migrate",
                format!(
                    "SELECT count(*), count(*) FILTER (WHERE dirty), max(version)::text FROM {t}"
                ),
            ),
            "schema_migrations" if has("version") => (
                "rails",
                format!("SELECT count(*), 0::int8, max(version)::text FROM {t}"),
            ),
            "knex_migrations" if has("name") => (
                "knex",
                format!(
                    "SELECT count(*), 0::int8, (SELECT name FROM {t} ORDER BY id DESC LIMIT 1) FROM {t}"
                ),
            ),
            "__diesel_schema_migrations" if has("version") => (
                "diesel",
                format!("SELECT count(*), 0::int8, max(version)::text FROM {t}"),
            ),
            "_prisma_migrations" if has("finished_at") => (
                "prisma",
                format!(
                    "SELECT count(*) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL), \
                     count(*) FILTER (WHERE finished_at IS NULL AND rolled_back_at IS NULL), \
                     (SELECT migration_name FROM {t} WHERE finished_at IS NOT NULL \
                      ORDER BY finished_at DESC LIMIT 1) FROM {t}"
                ),
            ),
            "alembic_version" if has("version_num") => (
                "alembic",
                format!("SELECT count(*), 0::int8, string_agg(version_num, ', ') FROM {t}"),
            ),
            "flyway_schema_history" if has("success") => (
                "flyway",
                format!(
                    "SELECT count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success), \
                     (SELECT coalesce(version, '') || ' ' || description FROM {t} \
                      ORDER BY installed_rank DESC LIMIT 1) FROM {t}"
                ),
            ),
            "migrations" if has("timestamp") && has("name") => (
                "typeorm",
                format!(
                    "SELECT count(*), 0::int8, (SELECT name FROM {t} ORDER BY \"timestamp\" DESC LIMIT 1) FROM {t}"
                ),
            ),
            "migrations" if has("migration") && has("batch") => (
                "laravel",
                format!(
                    "SELECT count(*), 0::int8, (SELECT migration FROM {t} ORDER BY id DESC LIMIT 1) FROM {t}"
                ),
            ),
            _ => continue,
        };
        let label = format!("migrations ({schema}.{table})");
        if let Some((count, failed, latest)) =
            r.one::<(i64, i64, Option<String>)>(&label, &sql).await
        {
            out.push(Migrations {
                table: format!("{schema}.{table}"),
                framework,
                // These tables hold the current version, not one row per migration.
                applied: (!matches!(framework, "golang-migrate" | "alembic")).then_some(count),
                failed,
                latest,
            });
        }
    }
    Some(out)
}
