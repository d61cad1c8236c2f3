//! `opswatch serve` and what it is made of: the shared state, the scheduler, opswatch's own
//! health and metrics, and logging.

pub mod clock;
pub mod cron;
pub mod health;
pub mod job_run;
pub mod live;
pub mod metrics;
pub mod reload;
pub mod resources;
pub mod scheduler;
pub mod sd_notify;
pub mod serve;
pub mod state;
pub mod telemetry;

#[cfg(test)]
pub(crate) mod testing;
