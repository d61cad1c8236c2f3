//! HTTP checks: probe an endpoint once and describe what happened. Nothing here knows about
//! state, incidents or alerts.

use std::error::Error as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde_json::json;

use super::{Check, CheckKind, Details, Failure, FailureKind, Observation, Timing};
use crate::config::{Config, HttpCheckConfig, HttpMethod, redact_url};

/// How much of a response body is read for `body_contains` / `body_regex`.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The checks of every `[[http]]` block.
pub fn checks(config: &Config) -> Vec<Arc<dyn Check>> {
    config
        .http
        .iter()
        .map(|c| Arc::new(HttpProbe::new(c.clone())) as Arc<dyn Check>)
        .collect()
}

/// A ready-to-run probe of one `[[http]]` block.
pub struct HttpProbe {
    pub config: HttpCheckConfig,
    /// Compiled on the first probe that needs it; the config refuses an invalid one, so an
    /// error here means a config built without validation, reported as a failed probe.
    body_regex: OnceLock<Result<regex_lite::Regex, String>>,
}

impl HttpProbe {
    /// Cheap: the client and the regular expression are made on first use.
    pub fn new(config: HttpCheckConfig) -> Self {
        Self {
            config,
            body_regex: OnceLock::new(),
        }
    }

    fn body_regex(&self) -> Option<Result<&regex_lite::Regex, Failure>> {
        let re = self.config.body_regex.as_ref()?;
        let compiled = self
            .body_regex
            .get_or_init(|| regex_lite::Regex::new(re).map_err(|e| e.to_string()));
        Some(
            compiled
                .as_ref()
                .map_err(|e| Failure::new(FailureKind::Other, format!("invalid body_regex: {e}"))),
        )
    }

    /// Probes once. Never fails: every outcome is an observation.
    pub async fn observe(&self) -> Observation {
        let at_ms = super::now_ms();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.config.timeout.get(), self.exchange()).await;
        let latency_ms = super::millis(started.elapsed());
        let (status, cert, failure) = match outcome {
            Ok(Ok(done)) => (Some(done.status), done.cert_expires_ms, done.failure),
            Ok(Err(f)) => (None, None, Some(f)),
            Err(_) => (
                None,
                None,
                Some(Failure::new(
                    FailureKind::Timeout,
                    format!("no answer within {}", self.config.timeout),
                )),
            ),
        };
        Observation {
            at_ms,
            latency_ms: Some(latency_ms),
            failure,
            details: Details {
                status_code: status.map(i64::from),
                cert_expires_ms: cert,
            },
        }
    }

    async fn exchange(&self) -> Result<Exchange, Failure> {
        let client = shared_client(self.config.insecure, self.config.follow_redirects)
            .map_err(|e| Failure::new(FailureKind::Other, format!("{e:#}")))?;
        let method = match self.config.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let mut request = client.request(method, &self.config.url);
        for (name, value) in &self.config.headers {
            request = request.header(name, value.expose());
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let cert_expires_ms = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(super::tls::not_after_ms);
        let accepted = match &self.config.expect_status {
            Some(list) => list.iter().any(|m| m.matches(status)),
            None => (200..400).contains(&status),
        };
        let reason = response.status().canonical_reason().unwrap_or("");
        if status >= 500 || !accepted {
            return Ok(Exchange {
                status,
                cert_expires_ms,
                failure: Some(Failure::new(
                    FailureKind::Status,
                    format!("HTTP {status} {reason}").trim_end(),
                )),
            });
        }
        let body_regex = self.body_regex().transpose()?;
        let failure = if self.config.body_contains.is_some() || body_regex.is_some() {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&body);
            if let Some(needle) = &self.config.body_contains {
                (!text.contains(needle.as_str())).then(|| {
                    Failure::new(
                        FailureKind::Body,
                        format!("body does not contain {needle:?}"),
                    )
                })
            } else if let Some(re) = body_regex {
                (!re.is_match(&text)).then(|| {
                    Failure::new(
                        FailureKind::Body,
                        format!("body does not match /{}/", re.as_str()),
                    )
                })
            } else {
                None
            }
        } else {
            None
        };
        Ok(Exchange {
            status,
            cert_expires_ms,
            failure,
        })
    }
}

/// The client for probes with these settings, built on first use.
///
/// Probes share one client per TLS and redirect setting: a client carries its connector and
/// TLS configuration with the root store, about 20 KiB, and one per check made 1,000 checks
/// hold 21 MiB. Connections are not shared: the client keeps none idle, so every probe
/// measures the whole path (DNS, TCP, TLS) and sees the certificate the server presents now.
/// The probe's own timeout bounds the connect as well.
fn shared_client(insecure: bool, follow_redirects: bool) -> anyhow::Result<reqwest::Client> {
    static CLIENTS: Mutex<[Option<reqwest::Client>; 4]> = Mutex::new([const { None }; 4]);
    let slot = usize::from(insecure) * 2 + usize::from(follow_redirects);
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = &clients[slot] {
        return Ok(client.clone());
    }
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("opswatch/", env!("CARGO_PKG_VERSION")))
        .redirect(redirects)
        .danger_accept_invalid_certs(insecure)
        .pool_max_idle_per_host(0)
        .tls_info(true)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {}", e.without_url()))?;
    clients[slot] = Some(client.clone());
    Ok(client)
}

struct Exchange {
    status: u16,
    cert_expires_ms: Option<i64>,
    failure: Option<Failure>,
}

/// Whether an error chain (lower-cased text) says this machine ran out of descriptors or
/// memory (EMFILE, ENFILE, ENOMEM, ENOBUFS) rather than anything about the target.
fn is_local_exhaustion(chain: &str) -> bool {
    [
        "too many open files",
        "(os error 24)",
        "(os error 23)",
        "cannot allocate memory",
        "(os error 12)",
        "no buffer space available",
        "(os error 105)",
    ]
    .iter()
    .any(|needle| chain.contains(needle))
}

/// A short description of a transport error. reqwest's own text quotes the URL, which may
/// carry credentials, so it is rebuilt from the error's kind and its innermost cause.
fn describe(e: reqwest::Error) -> Failure {
    let e = e.without_url();
    let chain: Vec<String> =
        std::iter::successors(e.source(), |s: &&dyn std::error::Error| (*s).source())
            .map(|s| s.to_string())
            .collect();
    let root = chain.last().cloned().unwrap_or_else(|| e.to_string());
    let all = chain.join(": ").to_ascii_lowercase();
    let kind = if is_local_exhaustion(&all) {
        FailureKind::Local
    } else if e.is_timeout() {
        FailureKind::Timeout
    } else if all.contains("dns error") || all.contains("failed to lookup address") {
        FailureKind::Dns
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        FailureKind::Tls
    } else if e.is_connect() {
        FailureKind::Connect
    } else if e.is_redirect() {
        return Failure::new(FailureKind::Other, "too many redirects");
    } else if e.is_body() || e.is_decode() {
        FailureKind::Body
    } else {
        FailureKind::Other
    };
    let prefix = match kind {
        FailureKind::Timeout => "timed out",
        FailureKind::Dns => "DNS lookup failed",
        FailureKind::Connect => "connection failed",
        FailureKind::Tls => "TLS failed",
        FailureKind::Body => "reading the body failed",
        FailureKind::Local => "opswatch could not probe (out of descriptors or memory)",
        FailureKind::Status | FailureKind::Other => "request failed",
    };
    let root = redact_url(&root);
    let mut text = format!("{prefix}: {root}");
    text.truncate(text.floor_char_boundary(300));
    Failure::new(kind, text)
}

impl Check for HttpProbe {
    fn kind(&self) -> CheckKind {
        CheckKind::Http
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn timing(&self) -> Timing {
        Timing {
            every: self.config.every,
            timeout: self.config.timeout,
            failures: self.config.failures,
            remind_every: self.config.remind_every,
        }
    }

    fn probe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(self.observe())
    }

    fn target_line(&self) -> String {
        redact_url(&self.config.url)
    }

    fn target_label(&self) -> &'static str {
        "URL"
    }

    fn target(&self) -> serde_json::Value {
        let c = &self.config;
        json!({
            "url": redact_url(&c.url),
            "method": c.method,
            "every": c.every,
            "timeout": c.timeout,
            "failures": c.failures,
        })
    }

    fn hint(&self) -> String {
        self.config.hint.clone().unwrap_or_else(|| {
            format!(
                "Open {} yourself; check that the app behind it runs (`pm2 status` / \
                 `systemctl status`), read its latest logs (`pm2 logs --lines 50`), and check \
                 that the reverse proxy reaches it.",
                redact_url(&self.config.url)
            )
        })
    }

    fn problems(&self) -> Vec<(String, String)> {
        let c = &self.config;
        let mut found = Vec::new();
        match url::Url::parse(&c.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => found.push((
                "url".to_owned(),
                "must be an http:// or https:// URL with a host".to_owned(),
            )),
            Err(e) => found.push(("url".to_owned(), format!("is not a URL: {e}"))),
        }
        if let Some(re) = &c.body_regex
            && let Err(e) = regex_lite::Regex::new(re)
        {
            found.push((
                "body_regex".to_owned(),
                format!("invalid regular expression: {e}"),
            ));
        }
        for name in c.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                found.push((
                    format!("headers.{name:?}"),
                    "is not a valid header name".to_owned(),
                ));
            }
        }
        found
    }

    fn summary(&self, seen: &Observation) -> String {
        format!(
            "HTTP {} in {} ms",
            seen.details.status_code.unwrap_or_default(),
            seen.latency_ms.unwrap_or_default()
        )
    }
}
