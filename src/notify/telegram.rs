//! Telegram Bot API channel (being written).
