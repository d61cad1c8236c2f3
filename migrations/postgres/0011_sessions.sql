-- Sessions and failed logins: see ../sqlite/0011_sessions.sql (keep in step).
CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);
CREATE TABLE failed_logins (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX failed_logins_by_user ON failed_logins (user_name, at_ms);
CREATE INDEX failed_logins_by_address ON failed_logins (address, at_ms);
CREATE INDEX failed_logins_by_time ON failed_logins (at_ms);
