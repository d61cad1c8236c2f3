//! Shared test harness: the real binary or router on loopback, fresh stores, fakes for what
//! this machine cannot reach.
#![allow(dead_code)]

pub mod fake_telegram;
