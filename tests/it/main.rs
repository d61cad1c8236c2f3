//! Integration tests: one binary, so the crate links once. Each module drives the real
//! router or the real binary with the real store.

mod support;

mod alerting;
mod api_auth;
mod browser;
mod config_errors;
mod dashboard;
mod db_report;
mod delivery_in_time;
mod deploy;
mod disputes;
mod full_disk;
mod heartbeat;
mod history;
mod host_alerts;
mod host_column;
mod host_metrics;
mod hostile_clients;
mod https_checks;
mod locked_store;
mod login;
mod metrics_format;
mod page_reads;
mod paging;
mod planned_restart;
mod pm2_real;
mod pm2_socket;
mod process_alerts;
mod reload;
mod reports;
mod router;
mod rules_in_time;
mod silences;
mod spine;
mod tcp_checks;
mod telegram_channel;
mod updown_in_time;
mod vacuum;
