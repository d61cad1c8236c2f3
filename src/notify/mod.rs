//! Delivery of alerts: the outbox dispatcher and one file per channel.

pub mod dispatcher;
pub mod telegram;
pub mod webhook;

use std::time::Duration;

use crate::config::Config;
use crate::rules::alert::Alert;

use telegram::{SendError, TelegramChannel};
use webhook::WebhookChannel;

/// The outbox channel names the config asks for, in a fixed order.
pub fn channel_names(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    if config.telegram.is_some() {
        names.push("telegram".to_owned());
    }
    names.extend(config.webhook.iter().map(|w| format!("webhook:{}", w.name)));
    names
}

/// Why a delivery did not happen, whatever the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The channel asked us to wait (HTTP 429).
    #[error("rate limited: retry after {}s", .0.as_secs())]
    RetryAfter(Duration),
    /// Network, timeout, 5xx: try again with backoff.
    #[error("{0}")]
    Transient(String),
    /// The channel cannot deliver until the operator acts (token, blocked, chat not found).
    #[error("{0}")]
    Unhealthy(String),
    /// This message is refused; others may pass.
    #[error("{0}")]
    Rejected(String),
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::RetryAfter(d) => Self::RetryAfter(d),
            SendError::Transient(s) => Self::Transient(s),
            SendError::Unhealthy(s) => Self::Unhealthy(s),
            SendError::Rejected(s) => Self::Rejected(s),
        }
    }
}

/// A configured channel.
pub enum Channel {
    Telegram(TelegramChannel),
    Webhook(WebhookChannel),
}

/// What a successful delivery may tell the dispatcher.
#[derive(Debug, Default)]
pub struct Delivered {
    /// A Telegram group became a supergroup: its new chat id, to remember.
    pub migrated_to: Option<String>,
}

impl Channel {
    /// Every channel of the config, built with `request_timeout` per request.
    pub fn all_from(config: &Config, request_timeout: Duration) -> anyhow::Result<Vec<Channel>> {
        let mut out = Vec::new();
        if let Some(t) = &config.telegram {
            out.push(Channel::Telegram(TelegramChannel::new(t, request_timeout)?));
        }
        for w in &config.webhook {
            out.push(Channel::Webhook(WebhookChannel::new(w, request_timeout)?));
        }
        Ok(out)
    }

    /// The outbox name (`telegram`, `webhook:NAME`).
    pub fn name(&self) -> String {
        match self {
            Self::Telegram(_) => "telegram".to_owned(),
            Self::Webhook(w) => format!("webhook:{}", w.name()),
        }
    }

    pub async fn send(&self, alert: &Alert) -> Result<Delivered, Failure> {
        match self {
            Self::Telegram(t) => t
                .send(alert)
                .await
                .map(|r| Delivered {
                    migrated_to: r.migrated_to,
                })
                .map_err(Failure::from),
            Self::Webhook(w) => w.send(alert).await.map(|()| Delivered::default()),
        }
    }

    /// Pause after each message so a burst never trips the channel's rate limit: Telegram
    /// allows about one message a second per chat and 20 a minute in a group.
    pub fn pace(&self) -> Duration {
        match self {
            Self::Telegram(t) if t.chat_id().starts_with('-') => Duration::from_secs(3),
            Self::Telegram(_) => Duration::from_secs(1),
            Self::Webhook(_) => Duration::ZERO,
        }
    }
}
