//! Fake Telegram Bot API on loopback, speaking the wire format of the reference
//! (`/work/shared/reference/telegram`): `POST|GET /bot<TOKEN>/<method>`, answers
//! `{"ok":true,"result":…}` or
//! `{"ok":false,"error_code":…,"description":…[,"parameters":…]}` with the HTTP status equal
//! to `error_code`, and the exact descriptions from the reference.
//!
//! Replies are scripted: a FIFO queue ([`FakeTelegram::push`]) consumed one per request (any
//! method), then a default ([`FakeTelegram::set_default`], initially [`Reply::Ok`]).
//!
//! An `Ok` reply to `sendMessage` is only given to a request Telegram would accept: `chat_id`
//! and `text` present, `parse_mode: "HTML"` text well formed (supported tags, balanced, every
//! `&`/`<`/`>` escaped), at most 4096 UTF-16 code units after entity parsing. Otherwise the
//! fake answers 400 as Telegram would (`Reply::BadRequest`, or `Reply::MessageTooLong`) and the
//! message is not delivered. This makes the fake stricter than Telegram, never laxer.
//!
//! Requests whose path is not `/bot<TOKEN>/<method>` get 404 `Not Found` and are not recorded.
//! Dropping the `FakeTelegram` stops the server and closes every connection (hung ones too).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The bot the fake pretends to be (as in `getMe-response-ok.json`).
pub const BOT_ID: i64 = 7_000_000_001;
pub const BOT_USERNAME: &str = "example_opswatch_bot";

/// Exact descriptions from the reference files.
pub const DESC_PARSE_ENTITIES: &str =
    "Bad Request: can't parse entities: Unsupported start tag \"app\" at byte offset 57";
pub const DESC_CHAT_NOT_FOUND: &str = "Bad Request: chat not found";
pub const DESC_MIGRATED: &str = "Bad Request: group chat was upgraded to a supergroup chat";
pub const DESC_TOO_LONG: &str = "Bad Request: message is too long";
pub const DESC_UNAUTHORIZED: &str = "Unauthorized";
pub const DESC_BLOCKED: &str = "Forbidden: bot was blocked by the user";
pub const DESC_KICKED: &str = "Forbidden: bot was kicked from the group chat";

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the method's result (a Message for sendMessage, the bot User for getMe).
    Ok,
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after = N`.
    TooManyRequests { retry_after: u64 },
    /// 400 `Bad Request: can't parse entities: …` (the reference text).
    ParseEntities,
    /// 400 `Bad Request: chat not found`.
    ChatNotFound,
    /// 400 `Bad Request: group chat was upgraded to a supergroup chat` with
    /// `parameters.migrate_to_chat_id = to`. The new id is accepted from then on.
    Migrated { to: i64 },
    /// 401 `Unauthorized`.
    Unauthorized,
    /// 403 `Forbidden: bot was blocked by the user`.
    Blocked,
    /// 403 `Forbidden: bot was kicked from the group chat`.
    Kicked,
    /// 400 `Bad Request: message is too long`.
    MessageTooLong,
    /// 404 `Not Found` (unknown method, or what Telegram says to a malformed token).
    NotFound,
    /// 400 with this description (also what the fake answers to a request Telegram refuses).
    BadRequest { description: String },
    /// 500 `{"ok":false,"error_code":500,"description":"Internal Server Error"}`
    /// (not in the reference: an envelope of the documented shape).
    ServerError,
    /// 502 with nginx's HTML page instead of JSON (what a failing front end sends).
    BadGateway,
    /// Never answers (until the fake is dropped).
    Hang,
    /// Closes the connection without any response.
    Close,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method name as written in the path (`sendMessage`, `getMe`).
    pub method: String,
    /// The bot token from the path.
    pub token: String,
    /// Parameters: the JSON body, or form/query parameters as strings; `Null` when none.
    pub body: Value,
    /// What the fake answered (after validation: may differ from the scripted reply).
    pub reply: Reply,
    pub at: Instant,
}

pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    state: Mutex<FakeState>,
    requests_seen: watch::Sender<usize>,
    delivered_count: watch::Sender<usize>,
    shutdown: CancellationToken,
}

struct FakeState {
    queue: VecDeque<Reply>,
    default: Reply,
    requests: Vec<Recorded>,
    delivered: Vec<Value>,
    next_message_id: i64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeTelegram {
    /// Starts the fake on `127.0.0.1`, a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Telegram");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState {
                queue: VecDeque::new(),
                default: Reply::Ok,
                requests: Vec::new(),
                delivered: Vec::new(),
                next_message_id: 1,
            }),
            requests_seen: watch::Sender::new(0),
            delivered_count: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
        });
        let listener = KillListener {
            inner: listener,
            shutdown: shared.shutdown.clone(),
        };
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Conn>()).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`: use as `telegram.api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues `reply` for the next request not answered by an earlier queued reply.
    pub fn push(&self, reply: Reply) {
        self.shared.state().queue.push_back(reply);
    }

    pub fn push_n(&self, reply: Reply, n: usize) {
        let mut state = self.shared.state();
        state.queue.extend(std::iter::repeat_n(reply, n));
    }

    /// The reply once the queue is empty (initially `Ok`).
    pub fn set_default(&self, reply: Reply) {
        self.shared.state().default = reply;
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().requests.clone()
    }

    /// Bodies of the sendMessage calls answered `Ok`: what the chat shows.
    pub fn delivered(&self) -> Vec<Value> {
        self.shared.state().delivered.clone()
    }

    /// The `text` of each delivered message.
    pub fn delivered_texts(&self) -> Vec<String> {
        self.delivered()
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until at least `n` messages were delivered; panics with what arrived on timeout.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let mut rx = self.shared.delivered_count.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|&count| count >= n))
            .await
            .is_err()
        {
            panic!(
                "fake Telegram: expected {n} delivered message(s) within {timeout:?}, got {}:\n\
                 delivered: {:#?}\nrequests: {:#?}",
                self.delivered().len(),
                self.delivered(),
                self.requests()
            );
        }
        self.delivered()
    }

    /// Waits until at least `n` requests (any method, any reply) arrived.
    pub async fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let mut rx = self.shared.requests_seen.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|&count| count >= n))
            .await
            .is_err()
        {
            panic!(
                "fake Telegram: expected {n} request(s) within {timeout:?}, got {}:\n{:#?}",
                self.requests().len(),
                self.requests()
            );
        }
        self.requests()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        // Cancels every connection (their tokens are children), then stops accepting.
        self.shared.shutdown.cancel();
        self.server.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let Some((token, method)) = uri
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, method)| !method.is_empty() && !method.contains('/'))
    else {
        return error_response(404, "Not Found", None);
    };
    let params = parse_params(uri.query(), &headers, &body);

    let (reply, response) = {
        let mut state = shared.state();
        let scripted = state
            .queue
            .pop_front()
            .unwrap_or_else(|| state.default.clone());
        let (reply, response) = match (&params, scripted) {
            (Err(description), Reply::Ok) => {
                let reply = Reply::BadRequest {
                    description: description.clone(),
                };
                let response = reply_response(&reply);
                (reply, response)
            }
            (Ok(params), Reply::Ok) => answer_ok(&mut state, method, params),
            (_, reply) => {
                let response = reply_response(&reply);
                (reply, response)
            }
        };
        state.requests.push(Recorded {
            method: method.to_owned(),
            token: token.to_owned(),
            body: params.clone().unwrap_or(Value::Null),
            reply: reply.clone(),
            at,
        });
        let (requests, delivered) = (state.requests.len(), state.delivered.len());
        shared.requests_seen.send_replace(requests);
        shared.delivered_count.send_replace(delivered);
        (reply, response)
    };

    match reply {
        Reply::Hang => {
            conn.0.cancelled().await;
            // Never reaches the client: the connection is dead.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Reply::Close => {
            conn.0.cancel();
            // Writing this fails: the client sees the connection closed without an answer.
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        _ => response.expect("every other reply has a response"),
    }
}

/// Answers a request scripted `Ok`: validates like Telegram, records deliveries.
fn answer_ok(state: &mut FakeState, method: &str, params: &Value) -> (Reply, Option<Response>) {
    let refuse = |reply: Reply| {
        let response = reply_response(&reply);
        (reply, response)
    };
    if method.eq_ignore_ascii_case("getMe") {
        let result = json!({
            "id": BOT_ID, "is_bot": true, "first_name": "opswatch", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        });
        return (Reply::Ok, Some(ok_response(result)));
    }
    if !method.eq_ignore_ascii_case("sendMessage") {
        return refuse(Reply::NotFound);
    }
    let chat_id = match params.get("chat_id") {
        Some(Value::Number(n)) => Value::Number(n.clone()),
        Some(Value::String(s)) if !s.trim().is_empty() => s
            .trim()
            .parse::<i64>()
            .map_or_else(|_| Value::String(s.clone()), Value::from),
        _ => {
            return refuse(Reply::BadRequest {
                description: "Bad Request: chat_id is empty".to_owned(),
            });
        }
    };
    let text = match params.get("text") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return refuse(Reply::BadRequest {
                description: "Bad Request: message text is empty".to_owned(),
            });
        }
    };
    let parse_mode = params.get("parse_mode").and_then(Value::as_str);
    let visible = match parse_mode {
        None | Some("") => text,
        Some(mode) if mode.eq_ignore_ascii_case("html") => match parse_html(&text) {
            Ok(visible) => visible,
            Err(detail) => {
                return refuse(Reply::BadRequest {
                    description: format!("Bad Request: can't parse entities: {detail}"),
                });
            }
        },
        Some(other) => {
            return refuse(Reply::BadRequest {
                description: format!("Bad Request: unsupported parse_mode {other:?} in fake"),
            });
        }
    };
    if visible.encode_utf16().count() > 4096 {
        return refuse(Reply::MessageTooLong);
    }
    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let chat_type = match &chat_id {
        Value::String(_) => "channel",
        Value::Number(n) if n.as_i64().is_some_and(|id| id > 0) => "private",
        _ => "supergroup",
    };
    let mut message = json!({
        "message_id": message_id,
        "from": {
            "id": BOT_ID, "is_bot": true, "first_name": "opswatch", "username": BOT_USERNAME
        },
        "chat": { "id": chat_id, "type": chat_type },
        "date": date,
        "text": visible,
    });
    if let Some(thread) = params.get("message_thread_id") {
        message["message_thread_id"] = thread.clone();
        message["is_topic_message"] = json!(true);
    }
    if let Some(lp) = params.get("link_preview_options") {
        message["link_preview_options"] = lp.clone();
    }
    state.delivered.push(params.clone());
    (Reply::Ok, Some(ok_response(message)))
}

/// The response for every reply but `Ok` (built by `answer_ok`), `Hang` and `Close` (`None`).
fn reply_response(reply: &Reply) -> Option<Response> {
    Some(match reply {
        Reply::Ok | Reply::Hang | Reply::Close => return None,
        Reply::TooManyRequests { retry_after } => error_response(
            429,
            &format!("Too Many Requests: retry after {retry_after}"),
            Some(format!("{{\"retry_after\":{retry_after}}}")),
        ),
        Reply::ParseEntities => error_response(400, DESC_PARSE_ENTITIES, None),
        Reply::ChatNotFound => error_response(400, DESC_CHAT_NOT_FOUND, None),
        Reply::Migrated { to } => error_response(
            400,
            DESC_MIGRATED,
            Some(format!("{{\"migrate_to_chat_id\":{to}}}")),
        ),
        Reply::Unauthorized => error_response(401, DESC_UNAUTHORIZED, None),
        Reply::Blocked => error_response(403, DESC_BLOCKED, None),
        Reply::Kicked => error_response(403, DESC_KICKED, None),
        Reply::MessageTooLong => error_response(400, DESC_TOO_LONG, None),
        Reply::NotFound => error_response(404, "Not Found", None),
        Reply::BadRequest { description } => error_response(400, description, None),
        Reply::ServerError => error_response(500, "Internal Server Error", None),
        Reply::BadGateway => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
             </body>\r\n</html>\r\n",
        )
            .into_response(),
    })
}

fn ok_response(result: Value) -> Response {
    let body = format!("{{\"ok\":true,\"result\":{result}}}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `{"ok":false,"error_code":N,"description":"…"[,"parameters":{…}]}` in the reference's order.
fn error_response(code: u16, description: &str, parameters: Option<String>) -> Response {
    let description = Value::String(description.to_owned());
    let parameters = parameters
        .map(|p| format!(",\"parameters\":{p}"))
        .unwrap_or_default();
    let body =
        format!("{{\"ok\":false,\"error_code\":{code},\"description\":{description}{parameters}}}");
    (
        StatusCode::from_u16(code).expect("valid status"),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Parameters from the query string and a JSON or form-encoded body, merged into one object
/// (`Null` when there are none). `Err` = a body Telegram could not read.
fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let mut params = Map::new();
    if let Some(query) = query {
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !body.is_empty() {
        if content_type.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in url::form_urlencoded::parse(body) {
                params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        } else if content_type.starts_with("application/json") || content_type.is_empty() {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => params.extend(map),
                _ => return Err("Bad Request: can't parse JSON object".to_owned()),
            }
        } else {
            return Err(format!(
                "Bad Request: unsupported content type {content_type:?} in fake"
            ));
        }
    }
    Ok(if params.is_empty() {
        Value::Null
    } else {
        Value::Object(params)
    })
}

const SUPPORTED_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
    "tg-time",
];

/// Telegram's HTML parse mode, strictly: returns the visible text, or an error detail. Only
/// the "Unsupported start tag" wording is verified; the others are approximations.
pub fn parse_html(html: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(html.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(c) = html[i..].chars().next() {
        match c {
            '<' => {
                let rest = &html[i..];
                let end = rest
                    .find('>')
                    .ok_or_else(|| format!("Can't find end of tag at byte offset {i}"))?;
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some(top) if top == name => {}
                        _ => {
                            return Err(format!(
                                "Unexpected end tag \"{name}\" at byte offset {i}"
                            ));
                        }
                    }
                } else {
                    let name = inner
                        .split(char::is_whitespace)
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !SUPPORTED_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {i}"
                        ));
                    }
                    open.push(name);
                }
                i += end + 1;
            }
            '>' => return Err(format!("Unexpected unescaped '>' at byte offset {i}")),
            '&' => {
                let rest = &html[i..];
                let entity = rest
                    .find(';')
                    .map(|end| &rest[1..end])
                    .filter(|e| !e.is_empty() && e.len() <= 10)
                    .ok_or_else(|| {
                        format!("Can't find end of the entity starting at byte offset {i}")
                    })?;
                let ch = match entity {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "quot" => Some('"'),
                    e => e.strip_prefix('#').and_then(|n| {
                        let code = match n.strip_prefix(['x', 'X']) {
                            Some(hex) => u32::from_str_radix(hex, 16).ok(),
                            None => n.parse().ok(),
                        };
                        code.and_then(char::from_u32)
                    }),
                };
                let ch = ch.ok_or_else(|| {
                    format!("Unsupported HTML entity \"&{entity};\" at byte offset {i}")
                })?;
                visible.push(ch);
                i += entity.len() + 2;
            }
            c => {
                visible.push(c);
                i += c.len_utf8();
            }
        }
    }
    if let Some(tag) = open.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{tag}\""
        ));
    }
    Ok(visible)
}

// --- a listener whose connections can be closed from a handler -------------------------------

/// Per-connection handle given to handlers: cancelling it kills the connection.
#[derive(Clone)]
struct Conn(CancellationToken);

impl Connected<IncomingStream<'_, KillListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillListener>) -> Self {
        Conn(stream.io().kill.clone())
    }
}

struct KillListener {
    inner: TcpListener,
    shutdown: CancellationToken,
}

impl Listener for KillListener {
    type Io = KillStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let kill = self.shutdown.child_token();
                    let killed = Box::pin(kill.clone().cancelled_owned());
                    return (
                        KillStream {
                            inner: stream,
                            kill,
                            killed,
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: give the system a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every read and write once its token is cancelled, so hyper drops
/// (and thereby closes) the connection without writing a response.
struct KillStream {
    inner: TcpStream,
    kill: CancellationToken,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl KillStream {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        // `is_cancelled` first: the future must not be polled again once it has completed.
        if self.kill.is_cancelled() || self.killed.as_mut().poll(cx).is_ready() {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by FakeTelegram",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
