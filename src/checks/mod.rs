//! Checks: each file turns one part of the world into observations and does nothing else.

pub mod app_db;
pub mod disputes;
pub mod http;
pub mod pm2;
pub mod postgres;
pub mod system;
pub mod systemd;
pub mod tls;
