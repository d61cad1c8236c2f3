//! Telegram Bot API channel: one alert becomes exactly one `sendMessage` call.
//!
//! Wire format and error bodies follow the Bot API reference (`ok`/`result`/`error_code`/
//! `description`/`parameters`). Classification matches on `error_code` and `parameters`; the
//! description text is only looked at to tell apart the 400s the reference lists.
//!
//! The bot token is part of every request URL (`/bot<token>/sendMessage`), so no URL is ever
//! logged or put into an error: transport errors go through `reqwest::Error::without_url` and
//! every error text is built here (and scrubbed of the token as a last line of defence).

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{REDACTED, Secret, TelegramConfig, redact_url};
use crate::rules::alert::{Alert, Severity};

/// How long a request may take before it counts as timed out in production. Telegram can be
/// slow under load; anything below 10 s turns slow answers into needless retries (and retries
/// of a message that did arrive into duplicates).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// TCP + TLS connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Maximum length of a message text. Telegram counts characters after entity parsing; we count
/// UTF-16 code units of the text as sent (tags and escapes included), which is never less.
pub const MAX_TEXT_LEN: usize = 4096;

/// Wait used when a 429 comes without `parameters.retry_after` (Telegram always sends it).
const FALLBACK_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a successful send returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `message_id` of the message in the chat.
    pub message_id: i64,
    /// Set when the group was upgraded to a supergroup and the channel switched to the new chat
    /// id: the caller should persist it so the next start uses it.
    pub migrated_to: Option<String>,
}

/// Why a send (or `getMe`) failed. Texts never contain the bot token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long, keep the order, then retry the same alert.
    #[error("Telegram rate limit: retry after {} s", .0.as_secs())]
    RetryAfter(Duration),
    /// 5xx, timeout, connection error, unreadable answer: retry with backoff.
    #[error("Telegram temporarily unavailable: {0}")]
    Transient(String),
    /// The channel cannot deliver anything until the operator acts: token rejected, bot
    /// blocked or kicked, chat not found. Retrying the same request will not help.
    #[error("Telegram channel unusable: {0}")]
    Unhealthy(String),
    /// This particular message was refused (any other 400); other messages may still go.
    #[error("Telegram rejected the message: {0}")]
    Rejected(String),
}

impl SendError {
    /// Whether sending the same alert again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetryAfter(_) | Self::Transient(_))
    }

    /// Whether the channel itself is broken (configuration or permissions), as opposed to
    /// this message or the network.
    pub fn is_channel_problem(&self) -> bool {
        matches!(self, Self::Unhealthy(_))
    }

    /// The wait Telegram asked for, if this is a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RetryAfter(d) => Some(*d),
            _ => None,
        }
    }

    fn map_text(self, f: impl Fn(String) -> String) -> Self {
        match self {
            Self::RetryAfter(d) => Self::RetryAfter(d),
            Self::Transient(s) => Self::Transient(f(s)),
            Self::Unhealthy(s) => Self::Unhealthy(f(s)),
            Self::Rejected(s) => Self::Rejected(f(s)),
        }
    }
}

/// The Telegram channel. Cheap to share behind an `Arc`; `send` takes `&self`.
pub struct TelegramChannel {
    client: reqwest::Client,
    api_base: String,
    token: Secret,
    message_thread_id: Option<i64>,
    disable_notification: bool,
    silent_resolved: bool,
    request_timeout: Duration,
    chat: Mutex<ChatState>,
}

struct ChatState {
    chat_id: String,
    /// A migration done by `send` whose receipt has not been handed out yet (the resend after
    /// it failed): reported on the next successful receipt so the caller can persist it.
    unreported_migration: Option<String>,
}

impl fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("api_base", &redact_url(&self.api_base))
            .field("bot_token", &REDACTED)
            .field("chat_id", &self.chat_id())
            .field("message_thread_id", &self.message_thread_id)
            .field("disable_notification", &self.disable_notification)
            .field("silent_resolved", &self.silent_resolved)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Which failures `send` handles itself rather than returning.
enum Failure {
    /// 400 with `parameters.migrate_to_chat_id`.
    Migrated(String),
    /// 400 "can't parse entities".
    CantParse(String),
    Error(SendError),
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        Self::Error(e)
    }
}

impl TelegramChannel {
    /// Builds the channel. `request_timeout` is the whole-request limit; production passes
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn new(cfg: &TelegramConfig, request_timeout: Duration) -> anyhow::Result<Self> {
        let api_base = cfg.api_base.trim().trim_end_matches('/').to_owned();
        match url::Url::parse(&api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => bail!(
                "telegram.api_base {:?} is not an http:// or https:// URL",
                redact_url(&api_base)
            ),
        }
        let chat_id = cfg.chat_id.trim().to_owned();
        if chat_id.is_empty() {
            bail!("telegram.chat_id is empty");
        }
        if cfg.bot_token.is_empty() {
            bail!("telegram.bot_token is empty");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(request_timeout)
            // Telegram never redirects; following one could carry the token-bearing path
            // to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opswatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for Telegram")?;
        Ok(Self {
            client,
            api_base,
            token: cfg.bot_token.clone(),
            message_thread_id: cfg.message_thread_id,
            disable_notification: cfg.disable_notification,
            silent_resolved: cfg.silent_resolved,
            request_timeout,
            chat: Mutex::new(ChatState {
                chat_id,
                unreported_migration: None,
            }),
        })
    }

    /// The chat messages go to (changes after a group → supergroup migration).
    pub fn chat_id(&self) -> String {
        self.chat().chat_id.clone()
    }

    /// Overrides the chat id, e.g. with a migration persisted by an earlier run.
    pub fn set_chat_id(&self, id: String) {
        let mut chat = self.chat();
        chat.chat_id = id.trim().to_owned();
        chat.unreported_migration = None;
    }

    fn chat(&self) -> MutexGuard<'_, ChatState> {
        self.chat.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `alert` as one message. Handles two cases itself, each at most once: a
    /// "can't parse entities" answer (resent as plain text) and a group migration (resent to
    /// the new chat id, reported in [`Receipt::migrated_to`]).
    pub async fn send(&self, alert: &Alert) -> Result<Receipt, SendError> {
        let silent = self.disable_notification
            || (alert.severity == Severity::Resolved && self.silent_resolved);
        let mut chat_id = self.chat_id();
        let mut text = render_html(alert);
        let mut html = true;
        let mut migrated = false;
        loop {
            match self.send_text(&chat_id, &text, html, silent).await {
                Ok(message_id) => {
                    let migrated_to = self.chat().unreported_migration.take();
                    return Ok(Receipt {
                        message_id,
                        migrated_to,
                    });
                }
                Err(Failure::Migrated(to)) if !migrated => {
                    migrated = true;
                    self.migrate(&chat_id, &to);
                    chat_id = to;
                }
                Err(Failure::Migrated(to)) => {
                    return Err(SendError::Rejected(format!(
                        "chat migrated twice in one send (last to {to})"
                    )));
                }
                Err(Failure::CantParse(description)) if html => {
                    tracing::warn!(
                        alert_id = alert.id,
                        %description,
                        "Telegram could not parse the HTML of an alert; resending it as plain text"
                    );
                    html = false;
                    text = render_plain(alert);
                }
                Err(Failure::CantParse(description)) => {
                    return Err(SendError::Rejected(description));
                }
                Err(Failure::Error(e)) => return Err(e),
            }
        }
    }

    /// `getMe`: checks the token and returns the bot's username.
    pub async fn get_me(&self) -> Result<String, SendError> {
        let result = self.call("getMe", None).await.map_err(|f| match f {
            Failure::Error(e) => e,
            Failure::Migrated(_) | Failure::CantParse(_) => {
                SendError::Transient("unexpected answer to getMe".to_owned())
            }
        })?;
        result
            .get("username")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SendError::Transient("getMe answered without a username".to_owned()))
    }

    fn migrate(&self, from: &str, to: &str) {
        {
            let mut chat = self.chat();
            // A concurrent set_chat_id wins over a migration of the old id.
            if chat.chat_id == from {
                chat.chat_id = to.to_owned();
            }
            chat.unreported_migration = Some(to.to_owned());
        }
        tracing::warn!(
            new_chat_id = %to,
            "Telegram group was upgraded to a supergroup: sending to the new chat id from now \
             on; set telegram.chat_id to it in the config"
        );
    }

    async fn send_text(
        &self,
        chat_id: &str,
        text: &str,
        html: bool,
        silent: bool,
    ) -> Result<i64, Failure> {
        let mut body = json!({
            "chat_id": chat_id_value(chat_id),
            "text": text,
            "link_preview_options": { "is_disabled": true },
            "disable_notification": silent,
        });
        if html {
            body["parse_mode"] = json!("HTML");
        }
        if let Some(thread) = self.message_thread_id {
            body["message_thread_id"] = json!(thread);
        }
        let result = self.call("sendMessage", Some(&body)).await?;
        result
            .get("message_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                SendError::Transient("sendMessage answered without a message_id".to_owned()).into()
            })
    }

    async fn call(&self, method: &str, body: Option<&Value>) -> Result<Value, Failure> {
        // The only place the token is used. This string is never logged or shown.
        let url = format!("{}/bot{}/{}", self.api_base, self.token.expose(), method);
        let request = match body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url),
        };
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        classify(status, &bytes).map_err(|f| match f {
            Failure::Error(e) => Failure::Error(e.map_text(|s| self.scrub(s))),
            Failure::CantParse(s) => Failure::CantParse(self.scrub(s)),
            Failure::Migrated(to) => Failure::Migrated(to),
        })
    }

    fn transport_error(&self, method: &str, e: reqwest::Error) -> Failure {
        let e = e.without_url();
        let text = if e.is_timeout() {
            format!(
                "{method}: no answer within {:?} (timed out)",
                self.request_timeout
            )
        } else if e.is_connect() {
            format!(
                "{method}: cannot connect to {}: {}",
                redact_url(&self.api_base),
                error_chain(&e)
            )
        } else {
            format!("{method}: request failed: {}", error_chain(&e))
        };
        SendError::Transient(self.scrub(text)).into()
    }

    /// Removes the token from a text that may echo it (it never should; defence in depth).
    fn scrub(&self, text: String) -> String {
        let token = self.token.expose();
        if token.is_empty() || !text.contains(token) {
            text
        } else {
            text.replace(token, REDACTED)
        }
    }
}

/// Numeric ids go as JSON integers (as in the reference), `@channelname` as a string.
fn chat_id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
}

/// `e`'s message followed by its sources, skipping sources already contained in the text.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// Maps an HTTP status and answer body to the `result` or a failure.
fn classify(status: u16, body: &[u8]) -> Result<Value, Failure> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(_) => {
            return Err(SendError::Transient(format!(
                "unreadable answer from the Bot API (HTTP {status}, {} bytes)",
                body.len()
            ))
            .into());
        }
    };
    if envelope.ok {
        return envelope.result.ok_or_else(|| {
            SendError::Transient("answer marked ok carries no result".to_owned()).into()
        });
    }
    let code = envelope.error_code.unwrap_or(i64::from(status));
    let description = envelope
        .description
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| format!("error {code} without description"));
    let parameters = envelope.parameters.unwrap_or(Value::Null);
    if let Some(to) = parameters.get("migrate_to_chat_id") {
        let to = match to {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Err(Failure::Migrated(to));
    }
    let retry_after = parameters.get("retry_after").and_then(Value::as_u64);
    if code == 429 || retry_after.is_some() {
        let wait = retry_after.map_or(FALLBACK_RETRY_AFTER, Duration::from_secs);
        return Err(SendError::RetryAfter(wait).into());
    }
    let lower = description.to_ascii_lowercase();
    let error = match code {
        401 => SendError::Unhealthy(format!("bot token rejected ({code} {description})")),
        // What the Bot API answers for a malformed token path.
        404 => SendError::Unhealthy(format!(
            "bot token or api_base wrong ({code} {description})"
        )),
        403 => SendError::Unhealthy(description),
        400 if lower.contains("can't parse entities") => {
            return Err(Failure::CantParse(description));
        }
        400 if lower.contains("chat not found") || lower.contains("message thread not found") => {
            SendError::Unhealthy(description)
        }
        500..=599 => SendError::Transient(format!("Bot API error {code}: {description}")),
        _ => SendError::Rejected(description),
    };
    Err(error.into())
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Markup {
    Html,
    Plain,
}

/// The alert as a Telegram HTML message (`parse_mode: "HTML"`), at most [`MAX_TEXT_LEN`].
pub fn render_html(alert: &Alert) -> String {
    render(alert, Markup::Html)
}

/// The same message as plain text (sent without `parse_mode`), at most [`MAX_TEXT_LEN`].
pub fn render_plain(alert: &Alert) -> String {
    render(alert, Markup::Plain)
}

/// Escapes a plain value for Telegram HTML: `&`, `<`, `>` and `"`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Length as Telegram may count it, erring high: UTF-16 code units of the text as sent.
fn message_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn marker(severity: Severity) -> (&'static str, &'static str) {
    match severity {
        Severity::Critical => ("🔴", "CRITICAL"),
        Severity::Warning => ("🟡", "WARNING"),
        Severity::Info => ("ℹ️", "INFO"),
        Severity::Resolved => ("✅", "RESOLVED"),
        Severity::Dispute => ("⚖️", "DISPUTE"),
    }
}

fn format_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms since epoch"),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// The parts of a message that may be shortened, in the order they are shortened.
#[derive(Clone, Copy)]
enum Part {
    Body = 0,
    Hint,
    Value,
    Threshold,
    Title,
    Source,
    Kind,
}

const CUT_ORDER: [Part; 7] = [
    Part::Body,
    Part::Hint,
    Part::Value,
    Part::Threshold,
    Part::Title,
    Part::Source,
    Part::Kind,
];

/// Plain-text parts as they will be shown (possibly shortened); `None` = line left out.
#[derive(Clone)]
struct Parts {
    shown: [Option<String>; 7],
}

impl Parts {
    fn get(&self, p: Part) -> Option<&str> {
        self.shown[p as usize].as_deref()
    }
}

fn originals(alert: &Alert) -> [Option<&str>; 7] {
    fn opt(v: &Option<String>) -> Option<&str> {
        v.as_deref()
            .map(str::trim_end)
            .filter(|s| !s.trim().is_empty())
    }
    let mut o = [None; 7];
    o[Part::Body as usize] = opt(&alert.body);
    o[Part::Hint as usize] = opt(&alert.hint);
    o[Part::Value as usize] = opt(&alert.value);
    o[Part::Threshold as usize] = opt(&alert.threshold);
    o[Part::Title as usize] = Some(alert.title.trim());
    o[Part::Source as usize] = Some(alert.source.as_str());
    o[Part::Kind as usize] = Some(alert.kind.as_str());
    o
}

/// The first `keep` characters of `original` (of `total`) and a note saying how much is gone.
fn cut(original: &str, keep: usize, total: usize) -> String {
    let kept: String = original.chars().take(keep).collect();
    format!(
        "{kept}… (cut: {} more characters, full text in the dashboard)",
        total - keep
    )
}

fn layout(severity: Severity, when: &str, parts: &Parts, markup: Markup) -> String {
    let esc = |s: &str| match markup {
        Markup::Html => escape_html(s),
        Markup::Plain => s.to_owned(),
    };
    let wrap = |tag: &str, s: &str| match markup {
        Markup::Html => format!("<{tag}>{s}</{tag}>"),
        Markup::Plain => s.to_owned(),
    };
    let (icon, label) = marker(severity);
    let mut out = format!(
        "{icon} {} · {}",
        wrap("b", label),
        esc(parts.get(Part::Title).unwrap_or_default())
    );
    for (part, name) in [
        (Part::Value, "Measured"),
        (Part::Threshold, "Threshold"),
        (Part::Hint, "What to do"),
    ] {
        if let Some(v) = parts.get(part) {
            out.push('\n');
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&esc(v));
        }
    }
    if let Some(body) = parts.get(Part::Body) {
        out.push_str("\n\n");
        out.push_str(&esc(body));
    }
    let footer = format!(
        "{} · {} · {when}",
        esc(parts.get(Part::Source).unwrap_or_default()),
        esc(parts.get(Part::Kind).unwrap_or_default()),
    );
    out.push_str("\n\n");
    out.push_str(&wrap("i", &footer));
    out
}

/// Renders the alert and, when too long, shortens parts in plain text (so a tag or an escape
/// is never cut) until it fits: the body first, then hint, value, threshold, title.
fn render(alert: &Alert, markup: Markup) -> String {
    let when = format_utc(alert.created_ms);
    let originals = originals(alert);
    let totals = originals.map(|o| o.map_or(0, |s| s.chars().count()));
    let mut parts = Parts {
        shown: originals.map(|o| o.map(str::to_owned)),
    };
    // A part longer than the whole limit can never be shown whole: pre-cut it so each
    // attempt below renders a bounded text, however large the alert.
    for (i, original) in originals.iter().enumerate() {
        if let Some(original) = original.filter(|_| totals[i] > MAX_TEXT_LEN) {
            parts.shown[i] = Some(cut(original, MAX_TEXT_LEN, totals[i]));
        }
    }

    let fits =
        |parts: &Parts| message_len(&layout(alert.severity, &when, parts, markup)) <= MAX_TEXT_LEN;
    for part in CUT_ORDER {
        if fits(&parts) {
            break;
        }
        let i = part as usize;
        let Some(original) = originals[i] else {
            continue;
        };
        let total = totals[i];
        let with_keep = |keep: usize| {
            let mut p = parts.clone();
            p.shown[i] = Some(cut(original, keep, total));
            p
        };
        // Longest prefix that fits; the length grows with `keep`, so bisect.
        let (mut lo, mut hi) = (0, total.min(MAX_TEXT_LEN).saturating_sub(1));
        if fits(&with_keep(lo)) {
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if fits(&with_keep(mid)) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
        }
        parts = with_keep(lo);
    }
    layout(alert.severity, &when, &parts, markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "7000000001:AAF-unit-SECRET_token_xyz";

    fn alert() -> Alert {
        Alert {
            id: 7,
            severity: Severity::Critical,
            source: "api".to_owned(),
            kind: "http".to_owned(),
            title: "api is DOWN".to_owned(),
            value: Some("HTTP 503 after 2 failures".to_owned()),
            threshold: Some("2 consecutive failures".to_owned()),
            hint: Some("check the upstream".to_owned()),
            body: Some("line one\nline two".to_owned()),
            // 2026-11-23 14:05:30 UTC
            created_ms: 1_795_442_730_000,
        }
    }

    fn cfg(api_base: &str) -> TelegramConfig {
        TelegramConfig {
            bot_token: Secret::new(TOKEN),
            chat_id: "-1001234567890".to_owned(),
            api_base: api_base.to_owned(),
            message_thread_id: None,
            disable_notification: false,
            silent_resolved: true,
        }
    }

    /// Tags of a Telegram HTML text, checked to nest properly and to be only `<b>`/`<i>`;
    /// every `&` starts one of the escapes we produce.
    fn assert_well_formed(html: &str) {
        let mut stack = Vec::new();
        let mut rest = html;
        while let Some(pos) = rest.find(['<', '&']) {
            let tail = &rest[pos..];
            if let Some(after) = tail.strip_prefix('&') {
                assert!(
                    ["amp;", "lt;", "gt;", "quot;"]
                        .iter()
                        .any(|e| after.starts_with(e)),
                    "bare & in {html:?}"
                );
                rest = after;
                continue;
            }
            let end = tail.find('>').expect("unclosed tag");
            let tag = &tail[1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.to_owned()), "unbalanced in {html:?}");
            } else {
                assert!(matches!(tag, "b" | "i"), "unexpected tag <{tag}>");
                stack.push(tag.to_owned());
            }
            rest = &tail[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed tags {stack:?}");
    }

    #[test]
    fn layout_has_marker_title_lines_body_and_footer() {
        let html = render_html(&alert());
        assert_eq!(
            html,
            "🔴 <b>CRITICAL</b> · api is DOWN\n\
             Measured: HTTP 503 after 2 failures\n\
             Threshold: 2 consecutive failures\n\
             What to do: check the upstream\n\
             \n\
             line one\nline two\n\
             \n\
             <i>api · http · 2026-11-23 14:05 UTC</i>"
        );
        assert_well_formed(&html);
    }

    #[test]
    fn markers_per_severity() {
        for (sev, start) in [
            (Severity::Critical, "🔴 <b>CRITICAL</b> · "),
            (Severity::Warning, "🟡 <b>WARNING</b> · "),
            (Severity::Info, "ℹ️ <b>INFO</b> · "),
            (Severity::Resolved, "✅ <b>RESOLVED</b> · "),
        ] {
            let a = Alert {
                severity: sev,
                ..alert()
            };
            assert!(render_html(&a).starts_with(start), "{sev:?}");
        }
    }

    #[test]
    fn missing_optional_lines_are_left_out() {
        let a = Alert {
            value: None,
            threshold: Some("  ".to_owned()),
            hint: None,
            body: None,
            ..alert()
        };
        assert_eq!(
            render_plain(&a),
            "🔴 CRITICAL · api is DOWN\n\napi · http · 2026-11-23 14:05 UTC"
        );
    }

    #[test]
    fn every_interpolated_value_is_escaped() {
        let a = Alert {
            title: "<script> & \"quotes\"".to_owned(),
            source: "web<1>&\"2\"".to_owned(),
            kind: "k&<".to_owned(),
            value: Some("a<b".to_owned()),
            threshold: Some("> 90 %".to_owned()),
            hint: Some("run `x && y`".to_owned()),
            body: Some("upstream <app> refused & \"retrying\"".to_owned()),
            ..alert()
        };
        let html = render_html(&a);
        assert_well_formed(&html);
        for escaped in [
            "&lt;script&gt; &amp; &quot;quotes&quot;",
            "web&lt;1&gt;&amp;&quot;2&quot;",
            "k&amp;&lt;",
            "Measured: a&lt;b",
            "Threshold: &gt; 90 %",
            "What to do: run `x &amp;&amp; y`",
            "upstream &lt;app&gt; refused &amp; &quot;retrying&quot;",
        ] {
            assert!(html.contains(escaped), "{escaped:?} missing in {html:?}");
        }
        assert!(!html.contains("<script>") && !html.contains("<app>"));
    }

    #[test]
    fn plain_text_has_no_tags_and_no_escapes() {
        let a = Alert {
            title: "a <b> & c".to_owned(),
            ..alert()
        };
        let plain = render_plain(&a);
        assert_eq!(plain.matches('<').count(), 1, "{plain}");
        assert!(plain.contains("a <b> & c"));
        for tag in ["<i>", "</i>", "</b>", "&amp;", "&lt;"] {
            assert!(!plain.contains(tag), "{tag} in {plain:?}");
        }
        assert!(plain.starts_with("🔴 CRITICAL · "));
    }

    #[test]
    fn long_body_is_cut_to_the_limit_with_a_note() {
        let a = Alert {
            body: Some("Z".repeat(5000)),
            ..alert()
        };
        let html = render_html(&a);
        assert!(html.chars().count() <= MAX_TEXT_LEN);
        assert!(message_len(&html) <= MAX_TEXT_LEN);
        assert_well_formed(&html);
        assert!(html.contains("full text in the dashboard"));
        assert!(html.ends_with("<i>api · http · 2026-11-23 14:05 UTC</i>"));
        assert!(html.contains("What to do: check the upstream"));
        // The note counts what was cut: kept + cut = 5000.
        let kept = html.matches('Z').count();
        let note = html
            .split("Z… (cut: ")
            .nth(1)
            .expect("note follows the kept body");
        let n: usize = note.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(kept + n, 5000);
        // Not cut more than needed: close to the limit.
        assert!(
            message_len(&html) > MAX_TEXT_LEN - 10,
            "{}",
            message_len(&html)
        );
    }

    #[test]
    fn cutting_never_splits_an_escape() {
        // Every character of the body expands to 5 bytes: a cut at a byte budget would
        // land inside an escape at least four times out of five.
        for extra in 0..6 {
            let a = Alert {
                body: Some(format!("{}{}", "x".repeat(extra), "&".repeat(5000))),
                ..alert()
            };
            let html = render_html(&a);
            assert!(message_len(&html) <= MAX_TEXT_LEN);
            assert_well_formed(&html);
        }
    }

    #[test]
    fn multibyte_and_astral_characters_cut_at_char_boundary() {
        let a = Alert {
            body: Some("é🔥".repeat(3000)),
            ..alert()
        };
        let html = render_html(&a);
        assert!(message_len(&html) <= MAX_TEXT_LEN, "{}", message_len(&html));
        assert!(html.contains("(cut: "));
        let plain = render_plain(&a);
        assert!(message_len(&plain) <= MAX_TEXT_LEN);
    }

    #[test]
    fn huge_hint_value_and_title_are_cut_too() {
        let a = Alert {
            title: "T<".repeat(3000),
            value: Some("v".repeat(100_000)),
            hint: Some("h&".repeat(5000)),
            body: Some("b".repeat(10_000)),
            source: "s".repeat(5000),
            ..alert()
        };
        for text in [render_html(&a), render_plain(&a)] {
            assert!(message_len(&text) <= MAX_TEXT_LEN, "{}", message_len(&text));
            assert!(text.contains("2026-11-23 14:05 UTC"));
        }
        assert_well_formed(&render_html(&a));
    }

    #[test]
    fn plain_fallback_is_cut_too() {
        let a = Alert {
            body: Some("<".repeat(5000)),
            ..alert()
        };
        let plain = render_plain(&a);
        assert!(message_len(&plain) <= MAX_TEXT_LEN);
        // Plain is not escaped, so it keeps far more of the body than HTML.
        assert!(plain.matches('<').count() > 3500);
    }

    #[test]
    fn bad_timestamp_still_renders() {
        let a = Alert {
            created_ms: i64::MAX,
            ..alert()
        };
        assert!(render_plain(&a).contains(&format!("{} ms since epoch", i64::MAX)));
    }

    fn classify_err(status: u16, body: &str) -> SendError {
        match classify(status, body.as_bytes()) {
            Err(Failure::Error(e)) => e,
            Err(Failure::Migrated(to)) => panic!("migrated to {to}"),
            Err(Failure::CantParse(d)) => panic!("cant parse {d}"),
            Ok(v) => panic!("ok {v}"),
        }
    }

    #[test]
    fn classifies_reference_errors() {
        assert_eq!(
            classify_err(
                429,
                r#"{ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 41", "parameters": { "retry_after": 41 } }"#
            ),
            SendError::RetryAfter(Duration::from_secs(41))
        );
        assert_eq!(
            classify_err(
                400,
                r#"{ "ok": false, "error_code": 400, "description": "Bad Request: chat not found" }"#
            ),
            SendError::Unhealthy("Bad Request: chat not found".to_owned())
        );
        assert_eq!(
            classify_err(
                403,
                r#"{ "ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user" }"#
            ),
            SendError::Unhealthy("Forbidden: bot was blocked by the user".to_owned())
        );
        assert_eq!(
            classify_err(
                403,
                r#"{ "ok": false, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat" }"#
            ),
            SendError::Unhealthy("Forbidden: bot was kicked from the group chat".to_owned())
        );
        assert!(matches!(
            classify_err(401, r#"{ "ok": false, "error_code": 401, "description": "Unauthorized" }"#),
            SendError::Unhealthy(s) if s.contains("bot token rejected")
        ));
        assert_eq!(
            classify_err(
                400,
                r#"{ "ok": false, "error_code": 400, "description": "Bad Request: message is too long" }"#
            ),
            SendError::Rejected("Bad Request: message is too long".to_owned())
        );
        assert!(matches!(
            classify_err(
                500,
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#
            ),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify_err(502, "<html><body>502 Bad Gateway</body></html>"),
            SendError::Transient(_)
        ));
        assert!(matches!(classify_err(200, ""), SendError::Transient(_)));
        match classify(
            400,
            br#"{ "ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat", "parameters": { "migrate_to_chat_id": -1001557912345 } }"#,
        ) {
            Err(Failure::Migrated(to)) => assert_eq!(to, "-1001557912345"),
            _ => panic!("not a migration"),
        }
        match classify(
            400,
            br#"{ "ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: Unsupported start tag \"app\" at byte offset 57" }"#,
        ) {
            Err(Failure::CantParse(d)) => assert!(d.contains("byte offset 57")),
            _ => panic!("not a parse error"),
        }
    }

    #[test]
    fn helpers_say_what_to_do() {
        assert!(SendError::RetryAfter(Duration::from_secs(1)).is_retryable());
        assert!(SendError::Transient("x".into()).is_retryable());
        assert!(!SendError::Unhealthy("x".into()).is_retryable());
        assert!(SendError::Unhealthy("x".into()).is_channel_problem());
        assert!(!SendError::Rejected("x".into()).is_retryable());
        assert!(!SendError::Rejected("x".into()).is_channel_problem());
        assert_eq!(
            SendError::RetryAfter(Duration::from_secs(41)).retry_after(),
            Some(Duration::from_secs(41))
        );
    }

    #[test]
    fn new_rejects_a_bad_api_base_without_showing_the_token() {
        let err = TelegramChannel::new(&cfg("ftp://x"), Duration::from_secs(1)).unwrap_err();
        assert!(!format!("{err:#}").contains(TOKEN));
        assert!(TelegramChannel::new(&cfg("not a url"), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn debug_of_the_channel_hides_the_token() {
        let ch = TelegramChannel::new(&cfg("https://api.telegram.org/"), DEFAULT_REQUEST_TIMEOUT)
            .unwrap();
        let shown = format!("{ch:?} {ch:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("-1001234567890"));
    }

    /// A loopback server that answers each connection with `answer` (or never, when `None`).
    async fn one_shot_server(answer: Option<&'static str>) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = sock.read(&mut buf).await;
                    match answer {
                        Some(a) => {
                            let _ = sock.write_all(a.as_bytes()).await;
                            let _ = sock.shutdown().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    fn http_answer(status: &str, body: &'static str) -> &'static str {
        Box::leak(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        )
    }

    #[tokio::test]
    async fn no_error_text_ever_contains_the_token() {
        let mut errors = Vec::new();
        let answers = [
            http_answer(
                "429 Too Many Requests",
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 41","parameters":{"retry_after":41}}"#,
            ),
            http_answer(
                "401 Unauthorized",
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            ),
            http_answer(
                "403 Forbidden",
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            ),
            http_answer(
                "400 Bad Request",
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            ),
            http_answer(
                "400 Bad Request",
                r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#,
            ),
            // Resent as plain text, refused again: Rejected.
            http_answer(
                "400 Bad Request",
                r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"app\" at byte offset 57"}"#,
            ),
            // A server that echoes the token must not get it into our errors.
            http_answer(
                "400 Bad Request",
                r#"{"ok":false,"error_code":400,"description":"Bad Request: token 7000000001:AAF-unit-SECRET_token_xyz is odd"}"#,
            ),
            http_answer(
                "500 Internal Server Error",
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
            ),
            http_answer("502 Bad Gateway", "<html>bad gateway</html>"),
            http_answer("200 OK", "not json"),
            // Connection closed without an answer.
            "",
        ];
        for answer in answers {
            let base = one_shot_server(Some(answer)).await;
            let ch = TelegramChannel::new(&cfg(&base), Duration::from_secs(2)).unwrap();
            errors.push(ch.send(&alert()).await.unwrap_err());
            errors.push(ch.get_me().await.unwrap_err());
        }
        // Timeout.
        let base = one_shot_server(None).await;
        let ch = TelegramChannel::new(&cfg(&base), Duration::from_millis(300)).unwrap();
        let e = ch.send(&alert()).await.unwrap_err();
        assert!(
            matches!(&e, SendError::Transient(s) if s.contains("timed out")),
            "{e}"
        );
        errors.push(e);
        // Connection refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let ch = TelegramChannel::new(&cfg(&closed), Duration::from_secs(2)).unwrap();
        let e = ch.send(&alert()).await.unwrap_err();
        assert!(
            matches!(&e, SendError::Transient(s) if s.contains("cannot connect")),
            "{e}"
        );
        errors.push(e);

        let kinds: std::collections::BTreeSet<&str> = errors
            .iter()
            .map(|e| match e {
                SendError::RetryAfter(_) => "retry",
                SendError::Transient(_) => "transient",
                SendError::Unhealthy(_) => "unhealthy",
                SendError::Rejected(_) => "rejected",
            })
            .collect();
        assert_eq!(kinds.len(), 4, "every variant produced: {errors:#?}");
        for e in &errors {
            let shown = format!("{e} | {e:?} | {e:#?}");
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("token <redacted> is odd"))
        );
    }
}
