//! Delivery of alerts: the outbox dispatcher and one file per channel.

pub mod telegram;
