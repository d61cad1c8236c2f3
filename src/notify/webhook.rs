//! Generic webhook channel: POST the alert as JSON, or `{"text": ...}` for Slack-compatible
//! receivers (Slack, Mattermost, Rocket.Chat, Discord's `/slack` endpoint).

use std::time::Duration;

use serde_json::json;

use super::Failure;
use crate::config::{WebhookConfig, WebhookFormat};
use crate::rules::alert::Alert;

pub struct WebhookChannel {
    name: String,
    url: String,
    format: WebhookFormat,
    client: reqwest::Client,
}

impl WebhookChannel {
    pub fn new(cfg: &WebhookConfig, request_timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("opswatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(request_timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the webhook client: {}", e.without_url()))?;
        Ok(Self {
            name: cfg.name.clone(),
            url: cfg.url.expose().to_owned(),
            format: cfg.format,
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, alert: &Alert) -> Result<(), Failure> {
        let body = match self.format {
            WebhookFormat::Json => json!({
                "id": alert.id,
                "severity": alert.severity,
                "source": alert.source,
                "kind": alert.kind,
                "title": alert.title,
                "value": alert.value,
                "threshold": alert.threshold,
                "hint": alert.hint,
                "body": alert.body,
                "created_ms": alert.created_ms,
                "text": super::telegram::render_plain(alert),
            }),
            WebhookFormat::Slack => json!({ "text": super::telegram::render_plain(alert) }),
        };
        // The URL often carries a token: errors are described without it.
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let e = e.without_url();
                Failure::Transient(if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                })
            })?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            429 => {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(30);
                Err(Failure::RetryAfter(Duration::from_secs(wait)))
            }
            401 | 403 | 404 | 410 => Err(Failure::Unhealthy(format!(
                "the webhook answered HTTP {status}: check its URL and permissions"
            ))),
            400..=499 => Err(Failure::Rejected(format!(
                "the webhook answered HTTP {status}"
            ))),
            _ => Err(Failure::Transient(format!(
                "the webhook answered HTTP {status}"
            ))),
        }
    }
}
