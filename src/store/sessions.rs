//! Dashboard sessions (keyed by the SHA-256 of the cookie's id) and failed logins.

use super::{Store, on_reader, on_writer};

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub user_name: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

/// Failed logins of a period, for the security report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FailedLoginCount {
    pub total: i64,
    /// `(user, count)`, most failures first.
    pub by_user: Vec<(String, i64)>,
    /// `(address, count)`, most failures first.
    pub by_address: Vec<(String, i64)>,
}

impl Store {
    pub async fn insert_session(
        &self,
        id_sha256: &str,
        user_name: &str,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "INSERT INTO sessions (id_sha256, user_name, created_ms, last_seen_ms) \
             VALUES ($1, $2, $3, $3)"
        )
        .bind(id_sha256)
        .bind(user_name)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn find_session(&self, id_sha256: &str) -> anyhow::Result<Option<SessionRow>> {
        Ok(on_reader!(self, |pool| sqlx::query_as(
            "SELECT user_name, created_ms, last_seen_ms FROM sessions WHERE id_sha256 = $1"
        )
        .bind(id_sha256)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn touch_session(&self, id_sha256: &str, now_ms: i64) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "UPDATE sessions SET last_seen_ms = $2 WHERE id_sha256 = $1"
        )
        .bind(id_sha256)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Ends a session; `true` when there was one.
    pub async fn delete_session(&self, id_sha256: &str) -> anyhow::Result<bool> {
        let n = on_writer!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE id_sha256 = $1"
        )
        .bind(id_sha256)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Deletes sessions idle since before `idle_before_ms` or created before
    /// `created_before_ms`, and failed logins older than `failures_before_ms`.
    pub async fn delete_expired_sessions(
        &self,
        idle_before_ms: i64,
        created_before_ms: i64,
        failures_before_ms: i64,
    ) -> anyhow::Result<u64> {
        let n = on_writer!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE last_seen_ms < $1 OR created_ms < $2"
        )
        .bind(idle_before_ms)
        .bind(created_before_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        on_writer!(self, |pool| sqlx::query(
            "DELETE FROM failed_logins WHERE at_ms < $1"
        )
        .bind(failures_before_ms)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(n)
    }

    pub async fn record_failed_login(
        &self,
        at_ms: i64,
        user_name: &str,
        address: &str,
    ) -> anyhow::Result<()> {
        on_writer!(self, |pool| sqlx::query(
            "INSERT INTO failed_logins (at_ms, user_name, address) VALUES ($1, $2, $3)"
        )
        .bind(at_ms)
        .bind(user_name)
        .bind(address)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Failed logins since `since_ms` for `user_name` and for `address`: the rate limit's input.
    pub async fn recent_failed_logins(
        &self,
        user_name: &str,
        address: &str,
        since_ms: i64,
    ) -> anyhow::Result<(i64, i64)> {
        let (by_user, by_address): (i64, i64) = on_reader!(self, |pool| sqlx::query_as(
            "SELECT \
               (SELECT count(*) FROM failed_logins WHERE user_name = $1 AND at_ms >= $3), \
               (SELECT count(*) FROM failed_logins WHERE address = $2 AND at_ms >= $3)"
        )
        .bind(user_name)
        .bind(address)
        .bind(since_ms)
        .fetch_one(pool)
        .await)?;
        Ok((by_user, by_address))
    }

    /// Failed dashboard logins in `[since_ms, until_ms)` (a month, for the security report).
    pub async fn count_failed_logins(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<FailedLoginCount> {
        let by_user: Vec<(String, i64)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT user_name, count(*) AS n FROM failed_logins \
             WHERE at_ms >= $1 AND at_ms < $2 GROUP BY user_name ORDER BY n DESC, user_name"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?;
        let by_address: Vec<(String, i64)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT address, count(*) AS n FROM failed_logins \
             WHERE at_ms >= $1 AND at_ms < $2 GROUP BY address ORDER BY n DESC, address"
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(pool)
        .await)?;
        Ok(FailedLoginCount {
            total: by_user.iter().map(|(_, n)| n).sum(),
            by_user,
            by_address,
        })
    }
}
