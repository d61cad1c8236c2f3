//! HTTP checks: probe an endpoint once and describe what happened. Nothing here knows about
//! state, incidents or alerts.

use std::error::Error as _;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::config::{HttpCheckConfig, HttpMethod};
use crate::store::ResultRow;

/// How much of a response body is read for `body_contains` / `body_regex`.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a probe failed, as stored and shown (`error_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Timeout,
    Dns,
    Connect,
    Tls,
    Status,
    Body,
    /// opswatch itself ran out of descriptors or memory: says nothing about the target.
    Local,
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Status => "status",
            Self::Body => "body",
            Self::Local => "local",
            Self::Other => "other",
        }
    }
}

/// A ready-to-run probe of one `[[http]]` block.
pub struct HttpProbe {
    pub config: HttpCheckConfig,
    client: reqwest::Client,
    body_regex: Option<regex_lite::Regex>,
}

impl HttpProbe {
    pub fn new(config: HttpCheckConfig) -> anyhow::Result<Self> {
        let client = shared_client(config.insecure, config.follow_redirects)?;
        let body_regex = match &config.body_regex {
            Some(re) => Some(regex_lite::Regex::new(re)?),
            None => None,
        };
        Ok(Self {
            config,
            client,
            body_regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Probes once. Never fails: every outcome is a result.
    pub async fn probe(&self) -> ResultRow {
        let at_ms = crate::store::now_ms();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.config.timeout.get(), self.exchange()).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status, cert, failure) = match outcome {
            Ok(Ok(done)) => (Some(done.status), done.cert_expires_ms, done.failure),
            Ok(Err(f)) => (None, None, Some(f)),
            Err(_) => (
                None,
                None,
                Some((
                    FailureKind::Timeout,
                    format!("no answer within {}", self.config.timeout),
                )),
            ),
        };
        ResultRow {
            at_ms,
            ok: failure.is_none(),
            latency_ms: Some(latency_ms),
            status_code: status.map(i64::from),
            error_kind: failure.as_ref().map(|(k, _)| k.as_str().to_owned()),
            error: failure.map(|(_, e)| e),
            cert_expires_ms: cert,
        }
    }

    async fn exchange(&self) -> Result<Exchange, (FailureKind, String)> {
        let method = match self.config.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let mut request = self.client.request(method, &self.config.url);
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
                failure: Some((
                    FailureKind::Status,
                    format!("HTTP {status} {reason}").trim_end().to_owned(),
                )),
            });
        }
        let failure = if self.config.body_contains.is_some() || self.body_regex.is_some() {
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
                    (
                        FailureKind::Body,
                        format!("body does not contain {needle:?}"),
                    )
                })
            } else if let Some(re) = &self.body_regex {
                (!re.is_match(&text)).then(|| {
                    (
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
    failure: Option<(FailureKind, String)>,
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
fn describe(e: reqwest::Error) -> (FailureKind, String) {
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
        return (FailureKind::Other, "too many redirects".to_owned());
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
    let root = crate::config::redact_url(&root);
    let mut text = format!("{prefix}: {root}");
    text.truncate(text.floor_char_boundary(300));
    (kind, text)
}
