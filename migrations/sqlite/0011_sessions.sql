-- Dashboard sessions and failed logins. A session row is keyed by the SHA-256 of the cookie's
-- random id (hex), so a copy of the store does not hand out live cookies; `last_seen_ms` drives
-- the idle expiry and `created_ms` the absolute one. Failed logins feed the login rate limit
-- (per user and per client address, within 15 minutes) and the monthly security report.
-- Keep in step with ../postgres/0011_sessions.sql.
CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);
CREATE TABLE failed_logins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX failed_logins_by_user ON failed_logins (user_name, at_ms);
CREATE INDEX failed_logins_by_address ON failed_logins (address, at_ms);
CREATE INDEX failed_logins_by_time ON failed_logins (at_ms);
