//! opswatch: keeps watch over a small production server and tells its operator what needs
//! attention.
//!
//! Data flows one way: checks produce observations → the store records them → rules turn
//! them into alerts → the outbox delivers them. The web layer only reads.
//!
//! | module | owns |
//! |---|---|
//! | `cli` | argument parsing and the run-now commands |
//! | `daemon` | `serve`: app state, startup/shutdown, scheduler, own health and metrics, logging |
//! | `jobs` | the glue from a schedule to a check, the store and the rules |
//! | `config` | the TOML schema, `${VAR}` expansion, validation |
//! | `checks` | what each check kind observes; knows nothing of the store or alerts |
//! | `rules` | alerts, thresholds, up/down state machines, digest, silences |
//! | `store` | opswatch's own history, state and outbox (SQLite or PostgreSQL) |
//! | `notify` | the outbox dispatcher and one file per channel |
//! | `web` | the router: `/health`, `/metrics`, the JSON API, the dashboard pages |

pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod jobs;
pub mod notify;
pub mod reports;
pub mod rules;
pub mod store;
pub mod web;
