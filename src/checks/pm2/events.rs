//! PM2's event bus: a subscriber of `$PM2_HOME/pub.sock` (PM2's `pm2-axon` pub/sub, as
//! `pm2 logs` and the `pm2.launchBus()` API read it), without Node.
//!
//! The daemon writes every bus message to every connected subscriber as one AMP frame of two
//! arguments: the topic (`s:process:event`, `s:log:out`, …) and the data (`j:{…}`). A
//! subscriber sends nothing; topic filtering is on the subscriber's side. For
//! `process:event` the data is `{"event": "exit"|"online"|"restart overlimit"|…, "manually":
//! bool, "process": <pm2_env without env>, "at": ms}` — that `process` still holds the app's
//! environment variables flattened into it, so only [`Pm2Event`]'s fields are kept. Every
//! other topic (notably `log:out`/`log:err`: each line the apps print) is skipped without being
//! read into memory.

use std::path::Path;

use serde::Deserialize;
use tokio::io::BufReader;
use tokio::net::UnixStream;

use super::amp::{self, Arg};
use super::axon_rpc::frame_error;
use super::{Pm2Error, lenient_num};

/// The topic of process lifecycle events.
const PROCESS_EVENT: &[u8] = b"s:process:event";
/// A `process:event` body is the app's `pm2_env` (environment included): a few KB, rarely
/// more; anything over this is skipped rather than held.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One `process:event`, reduced to what opswatch uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Pm2Event {
    /// `exit`, `online`, `start`, `stop`, `restart overlimit`, `delete`, …
    pub event: String,
    /// Set by PM2 when an operator caused it (`pm2 stop`, `pm2 restart`).
    pub manually: bool,
    pub name: String,
    pub pm_id: i64,
    /// The app's status when the event was sent (`stopped` on `exit` of a crash).
    pub status: String,
    /// `restart_time` when the event was sent: `exit` carries the count before the
    /// automatic restart, the following `online` the count after it.
    pub restarts: i64,
    /// When the daemon sent it (ms since the epoch), 0 if it did not say.
    pub at_ms: i64,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    manually: Option<bool>,
    #[serde(default)]
    process: Option<RawProcess>,
    #[serde(default, deserialize_with = "lenient_num")]
    at: Option<f64>,
}

#[derive(Deserialize)]
struct RawProcess {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_num")]
    pm_id: Option<f64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_num")]
    restart_time: Option<f64>,
}

/// A connection to the daemon's event bus.
pub struct EventStream {
    read: BufReader<UnixStream>,
}

impl EventStream {
    /// Subscribes to `<home>/pub.sock`. Never starts a daemon.
    pub async fn connect(home: &Path) -> Result<EventStream, Pm2Error> {
        let stream = super::axon_rpc::connect(home, &home.join("pub.sock")).await?;
        Ok(EventStream {
            read: BufReader::with_capacity(64 * 1024, stream),
        })
    }

    /// Waits for the next `process:event`. [`Pm2Error::Disconnected`] when the daemon goes
    /// away (killed, `pm2 kill`, `pm2 update`), [`Pm2Error::Protocol`] on bytes that are not
    /// PM2's. Not cancel-safe: dropping the future mid-frame loses the stream's framing, so
    /// drop the stream with it.
    pub async fn next(&mut self) -> Result<Pm2Event, Pm2Error> {
        loop {
            if let Some(e) = self.next_frame().await.map_err(frame_error)? {
                return Ok(e);
            }
        }
    }

    /// Reads one frame; `Some` for a readable `process:event`.
    async fn next_frame(&mut self) -> Result<Option<Pm2Event>, amp::FrameError> {
        let r = &mut self.read;
        let argc = amp::read_meta(r).await?;
        let topic_len = amp::read_arg_len(r, amp::MAX_ARG_BYTES).await?;
        let mut remaining = argc - 1;
        let wanted = if topic_len == PROCESS_EVENT.len() {
            let mut topic = vec![0u8; topic_len];
            tokio::io::AsyncReadExt::read_exact(r, &mut topic)
                .await
                .map_err(|_| amp::FrameError::Closed { clean: false })?;
            topic == PROCESS_EVENT
        } else {
            amp::skip(r, topic_len).await?;
            false
        };
        let mut event = None;
        if wanted && remaining > 0 {
            remaining -= 1;
            let len = amp::read_arg_len(r, amp::MAX_ARG_BYTES).await?;
            if len <= MAX_EVENT_BYTES {
                let mut body = vec![0u8; len];
                tokio::io::AsyncReadExt::read_exact(r, &mut body)
                    .await
                    .map_err(|_| amp::FrameError::Closed { clean: false })?;
                if let Arg::Json(json) = Arg::from_bytes(body) {
                    event = parse_event(&json);
                }
            } else {
                amp::skip(r, len).await?;
            }
        }
        for _ in 0..remaining {
            let len = amp::read_arg_len(r, amp::MAX_ARG_BYTES).await?;
            amp::skip(r, len).await?;
        }
        Ok(event)
    }
}

/// Parses the data of a `process:event`; `None` when it lacks the event name or the process
/// (a shape this PM2 does not send: skipped, never quoted).
pub fn parse_event(json: &[u8]) -> Option<Pm2Event> {
    let raw: RawEvent = serde_json::from_slice(json).ok()?;
    let p = raw.process?;
    Some(Pm2Event {
        event: raw.event?,
        manually: raw.manually.unwrap_or(false),
        name: p.name.unwrap_or_default(),
        pm_id: p.pm_id.map_or(-1, |v| v as i64),
        status: p.status.unwrap_or_else(|| "unknown".to_owned()),
        restarts: p.restart_time.map_or(0, |v| v as i64),
        at_ms: raw.at.map_or(0, |v| v as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn frame(topic: &str, json: &str) -> Vec<u8> {
        amp::encode(&[
            Arg::Str(topic.to_owned()),
            Arg::Json(json.as_bytes().to_vec()),
        ])
    }

    #[tokio::test]
    async fn process_events_are_read_and_the_rest_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::UnixListener::bind(dir.path().join("pub.sock")).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let log_line = format!(r#"{{"data":"{}"}}"#, "x".repeat(200_000));
            let mut wire = frame("log:out", &log_line);
            wire.extend(frame(
                "process:event",
                r#"{"event":"exit","manually":false,"at":1700000000000,
                    "process":{"name":"api","pm_id":3,"status":"stopped","restart_time":4,
                    "DATABASE_URL":"postgres://u:hunter2@db/app"}}"#,
            ));
            wire.extend(frame("process:event", r#"{"unexpected":true}"#));
            wire.extend(amp::encode(&[Arg::Str("axm:monitor".into())]));
            wire.extend(frame(
                "process:event",
                r#"{"event":"online","process":{"name":"api","pm_id":3,"status":"online","restart_time":5}}"#,
            ));
            s.write_all(&wire).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        });
        let mut events = EventStream::connect(dir.path()).await.unwrap();
        let exit = events.next().await.unwrap();
        assert_eq!(
            exit,
            Pm2Event {
                event: "exit".into(),
                manually: false,
                name: "api".into(),
                pm_id: 3,
                status: "stopped".into(),
                restarts: 4,
                at_ms: 1_700_000_000_000,
            }
        );
        assert!(!format!("{exit:?}").contains("hunter2"));
        let online = events.next().await.unwrap();
        assert_eq!((online.event.as_str(), online.restarts), ("online", 5));
        let e = events.next().await.unwrap_err();
        assert!(matches!(e, Pm2Error::Protocol(_)), "{e:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn no_daemon_and_a_daemon_going_away() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            EventStream::connect(dir.path()).await.err(),
            Some(Pm2Error::DaemonNotRunning)
        );
        let listener = tokio::net::UnixListener::bind(dir.path().join("pub.sock")).unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            drop(s);
        });
        let mut events = EventStream::connect(dir.path()).await.unwrap();
        assert_eq!(events.next().await, Err(Pm2Error::Disconnected));
        server.await.unwrap();
    }
}
