//! Integration tests: one binary, so the crate links once. Each module drives the real
//! router or the real binary with the real store.

mod support;

mod alerting;
mod api_auth;
mod history;
mod host_alerts;
mod host_metrics;
mod https_checks;
mod login;
mod pm2_real;
mod process_alerts;
mod router;
mod silences;
mod spine;
mod telegram_channel;
