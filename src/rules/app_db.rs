//! Thresholds of the app database's health facts. Each finding has a fixed condition key, so
//! a finding that goes away clears its condition on the next report (and a CRITICAL that
//! clears sends its RESOLVED). CRITICAL: connections over 90 %, transaction IDs within 10 % of
//! wraparound, a sequence over 95 %, the database unreachable. Everything else over its
//! threshold is a WARNING for the digest.

use serde::Serialize;

use crate::checks::postgres::{Facts, XID_LIMIT};
use crate::rules::condition::{Assessment, Level};

const CONNECTIONS_WARN_PCT: f64 = 80.0;
const CONNECTIONS_CRIT_PCT: f64 = 90.0;
const SEQUENCE_WARN_PCT: f64 = 80.0;
const SEQUENCE_CRIT_PCT: f64 = 95.0;
/// Within 10 % of the 2^31 limit.
const XID_CRIT_PCT: f64 = 90.0;
/// Below this cumulative hit ratio the working set does not fit in shared_buffers.
const CACHE_HIT_WARN_PCT: f64 = 95.0;
/// The ratio means little before this many block reads and hits.
const CACHE_MIN_BLOCKS: i64 = 10_000;
const REPLICATION_LAG_WARN_S: f64 = 60.0;

/// Every condition key a report evaluates: each is set (or cleared) on every run.
pub const KEYS: &[&str] = &[
    "connections",
    "idle_in_transaction",
    "long_queries",
    "tables_without_pk",
    "dead_tuples",
    "cache_hit",
    "wraparound",
    "sequences",
    "invalid_indexes",
    "duplicate_indexes",
    "unused_indexes",
    "replication_lag",
    "migrations",
];

/// One fact over its threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// One of [`KEYS`].
    pub key: &'static str,
    pub level: Level,
    pub title: String,
    pub value: String,
    pub threshold: String,
    pub hint: String,
}

/// The findings of `facts`; `long_query` is the threshold the sessions were listed with.
pub fn findings(facts: &Facts, dead_tuples_warn: i64, long_query: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |key, level, title: String, value: String, threshold: String, hint: &str| {
        out.push(Finding {
            key,
            level,
            title,
            value,
            threshold,
            hint: hint.to_owned(),
        });
    };
    if let Some(c) = &facts.connections {
        let pct = c.used_pct();
        let level = if pct > CONNECTIONS_CRIT_PCT {
            Level::Critical
        } else if pct > CONNECTIONS_WARN_PCT {
            Level::Warning
        } else {
            Level::Ok
        };
        if level > Level::Ok {
            add(
                "connections",
                level,
                format!("App database connections at {pct:.0} %"),
                format!(
                    "{} of {} usable connections ({} reserved)",
                    c.used,
                    c.max_connections - c.reserved,
                    c.reserved
                ),
                format!(
                    "warning above {CONNECTIONS_WARN_PCT} %, critical above {CONNECTIONS_CRIT_PCT} %"
                ),
                "See who holds them (pg_stat_activity by application_name and state); put a pooler \
                 (PgBouncer) in front or lower the app's pool size; raise max_connections only with \
                 memory to spare.",
            );
        }
    }
    if let Some(idle) = facts.idle_in_transaction.as_ref().filter(|v| !v.is_empty()) {
        let longest = &idle[0];
        add(
            "idle_in_transaction",
            Level::Warning,
            format!("{} session(s) idle in a transaction", idle.len()),
            format!(
                "longest {} (pid {}, {}): {}",
                super::human_duration((longest.for_s * 1000.0) as i64),
                longest.pid,
                longest.user,
                longest.query
            ),
            format!("idle in a transaction longer than {long_query}"),
            "An open transaction holds its locks and keeps VACUUM from cleaning up: fix the code \
             path that leaves it open, or set idle_in_transaction_session_timeout for the app's role.",
        );
    }
    if let Some(q) = facts.long_queries.as_ref().filter(|v| !v.is_empty()) {
        let longest = &q[0];
        add(
            "long_queries",
            Level::Warning,
            format!(
                "{} quer{} running longer than {long_query}",
                q.len(),
                if q.len() == 1 { "y" } else { "ies" }
            ),
            format!(
                "longest {} (pid {}, {}): {}",
                super::human_duration((longest.for_s * 1000.0) as i64),
                longest.pid,
                longest.user,
                longest.query
            ),
            format!("running longer than {long_query}"),
            "Look at it in pg_stat_activity; if it is stuck, SELECT pg_cancel_backend(pid); an index \
             or a statement_timeout for the app's role keeps it from coming back.",
        );
    }
    if let Some(t) = facts.tables_without_pk.as_ref().filter(|v| !v.is_empty()) {
        add(
            "tables_without_pk",
            Level::Warning,
            format!("{} table(s) without a primary key", t.len()),
            list(t.iter().map(String::as_str)),
            "every table has a primary key".to_owned(),
            "Add a primary key: logical replication, pg_repack and most ORMs need one, and \
             duplicate rows creep in without it.",
        );
    }
    if let Some(d) = facts.dead_tuples.as_ref().filter(|v| !v.is_empty()) {
        add(
            "dead_tuples",
            Level::Warning,
            format!(
                "{} table(s) with over {dead_tuples_warn} dead tuples",
                d.len()
            ),
            list(
                d.iter()
                    .map(|t| {
                        format!(
                            "{}: {} dead, last vacuum {}",
                            t.table,
                            t.dead,
                            t.last_autovacuum
                                .as_deref()
                                .or(t.last_vacuum.as_deref())
                                .unwrap_or("never")
                        )
                    })
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
            format!("at most {dead_tuples_warn} dead tuples per table"),
            "Autovacuum is not keeping up: check it is on for these tables, lower their \
             autovacuum_vacuum_scale_factor, end long transactions, or run `opswatch db vacuum`.",
        );
    }
    if let Some(c) = &facts.cache
        && let Some(pct) = c.hit_pct
        && c.blks_hit + c.blks_read >= CACHE_MIN_BLOCKS
        && pct < CACHE_HIT_WARN_PCT
    {
        add(
            "cache_hit",
            Level::Warning,
            format!("App database cache hit ratio {pct:.1} %"),
            format!(
                "{} hits, {} reads since the statistics were reset",
                c.blks_hit, c.blks_read
            ),
            format!("at least {CACHE_HIT_WARN_PCT} %"),
            "The working set does not fit in memory: raise shared_buffers (about 25 % of RAM), \
             add RAM, or find the queries that read whole tables (pg_stat_statements).",
        );
    }
    if let Some(w) = facts.wraparound.as_ref().and_then(|w| w.first()) {
        let pct = 100.0 * w.age as f64 / XID_LIMIT as f64;
        let level = if pct > XID_CRIT_PCT {
            Level::Critical
        } else if w.age > w.freeze_max_age {
            Level::Warning
        } else {
            Level::Ok
        };
        if level > Level::Ok {
            add(
                "wraparound",
                level,
                format!(
                    "Transaction ID age of {} at {pct:.1} % of the limit",
                    w.database
                ),
                format!("age {} of {XID_LIMIT}", w.age),
                format!(
                    "warning above autovacuum_freeze_max_age ({}), critical above {XID_CRIT_PCT} % of 2^31",
                    w.freeze_max_age
                ),
                "Run VACUUM (FREEZE) on the oldest tables of that database now, and find what keeps \
                 autovacuum from freezing (long transactions, prepared transactions, stale \
                 replication slots). At the limit PostgreSQL stops taking writes.",
            );
        }
    }
    if let Some(s) = facts.sequences.as_ref().and_then(|s| s.first()) {
        let level = if s.pct > SEQUENCE_CRIT_PCT {
            Level::Critical
        } else if s.pct > SEQUENCE_WARN_PCT {
            Level::Warning
        } else {
            Level::Ok
        };
        if level > Level::Ok {
            let all = facts.sequences.as_deref().unwrap_or_default();
            add(
                "sequences",
                level,
                format!("Sequence {} at {:.1} % of its maximum", s.sequence, s.pct),
                list(
                    all.iter()
                        .map(|q| {
                            format!(
                                "{}: {} of {} ({:.1} %)",
                                q.sequence, q.last_value, q.max_value, q.pct
                            )
                        })
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str),
                ),
                format!(
                    "warning above {SEQUENCE_WARN_PCT} %, critical above {SEQUENCE_CRIT_PCT} %"
                ),
                "Move the column and its sequence to bigint (ALTER TABLE … ALTER COLUMN … TYPE bigint; \
                 ALTER SEQUENCE … AS bigint) before it runs out: every insert fails when it does.",
            );
        }
    }
    if let Some(i) = facts.invalid_indexes.as_ref().filter(|v| !v.is_empty()) {
        add(
            "invalid_indexes",
            Level::Warning,
            format!("{} invalid index(es)", i.len()),
            list(i.iter().map(String::as_str)),
            "no invalid index".to_owned(),
            "A failed CREATE INDEX CONCURRENTLY left it behind: it slows writes and serves no \
             read. DROP INDEX CONCURRENTLY it and create it again.",
        );
    }
    if let Some(d) = facts.duplicate_indexes.as_ref().filter(|v| !v.is_empty()) {
        add(
            "duplicate_indexes",
            Level::Warning,
            format!("{} set(s) of duplicate indexes", d.len()),
            list(
                d.iter()
                    .map(|x| format!("{}: {}", x.table, x.indexes))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
            "no two identical indexes".to_owned(),
            "Keep one of each set and DROP INDEX CONCURRENTLY the others: every copy slows writes \
             and takes space.",
        );
    }
    if let Some(u) = facts.unused_indexes.as_ref().filter(|v| !v.is_empty()) {
        add(
            "unused_indexes",
            Level::Warning,
            format!("{} unused index(es) over 10 MiB", u.len()),
            list(
                u.iter()
                    .map(|x| format!("{} on {}: {} MiB", x.index, x.table, x.bytes / 1_048_576))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
            "every index over 10 MiB is used".to_owned(),
            "Never scanned since the statistics were reset: if that covers a busy period, DROP \
             INDEX CONCURRENTLY it (check replicas' workloads first).",
        );
    }
    if let Some(r) = &facts.replication {
        let lag = r
            .replicas
            .iter()
            .filter_map(|x| x.replay_lag_s)
            .chain(r.replay_delay_s)
            .fold(0.0_f64, f64::max);
        if lag > REPLICATION_LAG_WARN_S {
            add(
                "replication_lag",
                Level::Warning,
                format!(
                    "Replication lag {}",
                    super::human_duration((lag * 1000.0) as i64)
                ),
                format!("{lag:.0} s"),
                format!("at most {REPLICATION_LAG_WARN_S} s"),
                "Check the replica's disk and network, and long queries on it that hold replay back.",
            );
        }
    }
    if let Some(m) = facts
        .migrations
        .as_ref()
        .filter(|m| m.iter().any(|x| x.failed > 0))
    {
        add(
            "migrations",
            Level::Warning,
            "A migration of the app failed or is unfinished".to_owned(),
            list(
                m.iter()
                    .filter(|x| x.failed > 0)
                    .map(|x| format!("{} ({}): {} failed", x.table, x.framework, x.failed))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
            "no failed migration".to_owned(),
            "Look at the migration tool's log; fix and re-run the migration, or mark it resolved \
             as the tool documents, before the next deploy.",
        );
    }
    out
}

/// Up to five items and how many more.
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    let mut s = items.iter().take(5).copied().collect::<Vec<_>>().join("; ");
    if items.len() > 5 {
        s.push_str(&format!("; and {} more", items.len() - 5));
    }
    s
}

/// The condition of `key`: the finding when there is one, else OK (which clears it).
pub fn assessment(key: &'static str, finding: Option<&Finding>) -> Assessment {
    let source = format!("appdb:{key}");
    match finding {
        Some(f) => Assessment {
            key: source.clone(),
            source,
            kind: "postgres",
            level: f.level,
            value: if f.level == Level::Critical { 2.0 } else { 1.0 },
            unit: "",
            title: f.title.clone(),
            value_text: f.value.clone(),
            threshold_text: f.threshold.clone(),
            hint: f.hint.clone(),
            body: None,
            resolved_title: format!("App database: {} is fine again", key.replace('_', " ")),
        },
        None => Assessment {
            key: source.clone(),
            source,
            kind: "postgres",
            level: Level::Ok,
            value: 0.0,
            unit: "",
            title: String::new(),
            value_text: "fine".to_owned(),
            threshold_text: String::new(),
            hint: String::new(),
            body: None,
            resolved_title: format!("App database: {} is fine again", key.replace('_', " ")),
        },
    }
}

/// The app database could not be reached (`reason`), or could (`None`).
pub fn reachable(reason: Option<&str>) -> Assessment {
    Assessment {
        key: "appdb:reachable".to_owned(),
        source: "appdb".to_owned(),
        kind: "postgres",
        level: if reason.is_some() {
            Level::Critical
        } else {
            Level::Ok
        },
        value: if reason.is_some() { 1.0 } else { 0.0 },
        unit: "",
        title: "The app's database cannot be reached".to_owned(),
        value_text: reason.unwrap_or("reachable").to_owned(),
        threshold_text: "the database answers".to_owned(),
        hint: "Is PostgreSQL running (systemctl status postgresql)? Is the disk full? Do the \
               URL, role and password in [database] still hold? pg_hba.conf?"
            .to_owned(),
        body: None,
        resolved_title: "The app's database answers again".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::postgres::{Connections, SequenceUse, XidAge};

    #[test]
    fn criticals_as_the_runbook_says() {
        let facts = Facts {
            connections: Some(Connections {
                max_connections: 100,
                reserved: 3,
                used: 90,
                by_state: vec![],
                idle_in_transaction: 0,
                longest_idle_in_transaction_s: None,
            }),
            wraparound: Some(vec![XidAge {
                database: "app".into(),
                age: 2_000_000_000,
                freeze_max_age: 200_000_000,
            }]),
            sequences: Some(vec![SequenceUse {
                sequence: "public.orders_id_seq".into(),
                last_value: 2_100_000_000,
                max_value: XID_LIMIT,
                pct: 97.8,
            }]),
            tables_without_pk: Some(vec!["public.event_log".into()]),
            ..Facts::default()
        };
        let f = findings(&facts, 100_000, "5m");
        let level = |k: &str| f.iter().find(|x| x.key == k).map(|x| x.level);
        assert_eq!(level("connections"), Some(Level::Critical)); // 90 of 97 usable
        assert_eq!(level("wraparound"), Some(Level::Critical));
        assert_eq!(level("sequences"), Some(Level::Critical));
        assert_eq!(level("tables_without_pk"), Some(Level::Warning));
        assert_eq!(level("dead_tuples"), None);
        let seq = f.iter().find(|x| x.key == "sequences").unwrap();
        assert!(
            seq.value.contains("97.8 %") && seq.threshold.contains("95"),
            "{seq:?}"
        );
        assert!(f.iter().all(|x| KEYS.contains(&x.key)));
    }

    #[test]
    fn lists_are_short() {
        let items: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        assert_eq!(
            list(items.iter().map(String::as_str)),
            "t0; t1; t2; t3; t4; and 3 more"
        );
    }
}
