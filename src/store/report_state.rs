//! What the reports remember between runs: where the log scan stopped in each file, and
//! values seen before (login sources, listening ports).

use super::{Store, on_writer};

/// Where the log scan stopped in one file: its identity when it was read and the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LogOffset {
    pub dev: i64,
    pub ino: i64,
    pub offset_bytes: i64,
    pub head_hash: i64,
    pub head_len: i64,
    pub scanned_ms: i64,
}

impl Store {
    pub async fn log_offset(&self, host: &str, path: &str) -> anyhow::Result<Option<LogOffset>> {
        Ok(on_writer!(self, |pool| sqlx::query_as(
            "SELECT dev, ino, offset_bytes, head_hash, head_len, scanned_ms FROM log_offsets \
             WHERE host = $1 AND path = $2"
        )
        .bind(host)
        .bind(path)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn set_log_offset(
        &self,
        host: &str,
        path: &str,
        at: &LogOffset,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| {
            sqlx::query(
            "INSERT INTO log_offsets (host, path, dev, ino, offset_bytes, head_hash, head_len, \
             scanned_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (host, path) DO UPDATE \
             SET dev = excluded.dev, ino = excluded.ino, offset_bytes = excluded.offset_bytes, \
             head_hash = excluded.head_hash, head_len = excluded.head_len, \
             scanned_ms = excluded.scanned_ms"
        )
        .bind(host)
        .bind(path)
        .bind(at.dev)
        .bind(at.ino)
        .bind(at.offset_bytes)
        .bind(at.head_hash)
        .bind(at.head_len)
        .bind(at.scanned_ms)
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Remembers `values` of `kind`; returns those never seen before.
    pub async fn remember_values(
        &self,
        host: &str,
        kind: &str,
        values: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        let mut new = Vec::new();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for v in values {
                let inserted = sqlx::query(
                    "INSERT INTO known_values (host, kind, value, first_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(host)
                .bind(kind)
                .bind(v)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    new.push(v.clone());
                }
            }
            tx.commit().await
        })?;
        Ok(new)
    }

    /// Those of `values` never remembered (none when nothing of `kind` is known yet: on the
    /// first look nothing is "new").
    pub async fn unknown_values(
        &self,
        host: &str,
        kind: &str,
        values: &[String],
    ) -> anyhow::Result<Vec<String>> {
        if self.count_known_values(host, kind).await? == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for v in values {
            let known: Option<i64> = on_writer!(self, |pool| sqlx::query_scalar(
                "SELECT first_ms FROM known_values WHERE host = $1 AND kind = $2 AND value = $3"
            )
            .bind(host)
            .bind(kind)
            .bind(v)
            .fetch_optional(pool)
            .await)?;
            if known.is_none() {
                out.push(v.clone());
            }
        }
        Ok(out)
    }

    /// How many values of `kind` are known (none: this is the first look, nothing is "new").
    pub async fn count_known_values(&self, host: &str, kind: &str) -> anyhow::Result<i64> {
        Ok(on_writer!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM known_values WHERE host = $1 AND kind = $2"
        )
        .bind(host)
        .bind(kind)
        .fetch_one(pool)
        .await)?)
    }
}
