//! opswatch: keeps watch over a small production server and tells its operator what needs
//! attention.
//!
//! Data flows one way: checks produce observations → the store records them → rules turn
//! them into alerts → the outbox delivers them. The web layer only reads.

pub mod alert;
pub mod app;
pub mod checks;
pub mod cli;
pub mod config;
mod connect_check;
pub mod health;
pub mod history;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod rules;
mod run_now;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod web;

#[cfg(test)]
mod testing;
