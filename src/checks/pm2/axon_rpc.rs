//! A one-call client of PM2's RPC socket (`$PM2_HOME/rpc.sock`), as the `pm2` CLI talks to its
//! daemon (PM2's own `pm2-axon` req/rep sockets and `pm2-axon-rpc`), without Node.
//!
//! One request is one AMP frame (see [`super::amp`]) of two arguments:
//! `j:{"type":"call","method":M,"args":[...]}` and `s:<id>`. The daemon answers with a frame
//! whose last argument is the same id and whose first is `j:{"args":[...]}` (the callback's
//! results after the error) or `j:{"error":"...","stack":"..."}`.
//!
//! Every call opens its own connection and closes it: the daemon keeps nothing per client,
//! and a connection that outlives a daemon restart would only need reconnecting logic.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::amp::{self, Arg, FrameError};
use super::{Pm2Error, RawApp};

/// Answer of `getMonitorData`: `{"args":[[app, ...]]}` or `{"error": ...}`. Only the app
/// fields of [`RawApp`] are kept; the environments in the answer are skipped by serde.
#[derive(Deserialize)]
struct MonitorReply {
    #[serde(default)]
    args: Option<(Vec<RawApp>,)>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// Calls `getMonitorData` (what `pm2 jlist` prints) on `<home>/rpc.sock`. Never starts a
/// daemon: no daemon means [`Pm2Error::DaemonNotRunning`].
pub(super) async fn get_monitor_data(
    home: &Path,
    timeout: Duration,
) -> Result<Vec<RawApp>, Pm2Error> {
    let socket = home.join("rpc.sock");
    let run = async {
        let stream = connect(home, &socket).await?;
        let reply = call(stream, "getMonitorData", "[{}]").await?;
        let parsed: MonitorReply = serde_json::from_slice(&reply).map_err(|e| {
            // Never quote the text: it holds every app's environment.
            Pm2Error::Protocol(format!(
                "getMonitorData answer is not the expected JSON ({:?} error at column {})",
                e.classify(),
                e.column()
            ))
        })?;
        match parsed {
            MonitorReply {
                args: Some((apps,)),
                ..
            } => Ok(apps),
            MonitorReply { error: Some(_), .. } => Err(Pm2Error::Protocol(
                "the daemon answered getMonitorData with an error (no such method?)".to_owned(),
            )),
            _ => Err(Pm2Error::Protocol(
                "getMonitorData answer has neither args nor error".to_owned(),
            )),
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(Pm2Error::Timeout(timeout)))
}

/// Connects to one of the daemon's sockets, mapping failures to what the operator should do.
pub(super) async fn connect(home: &Path, socket: &Path) -> Result<UnixStream, Pm2Error> {
    match UnixStream::connect(socket).await {
        Ok(s) => Ok(s),
        Err(e) => Err(match e.kind() {
            // No socket (never started, or `pm2 kill`), or a stale one left by a crash.
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => match std::fs::metadata(home) {
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    super::access_denied(home, socket)
                }
                _ => Pm2Error::DaemonNotRunning,
            },
            ErrorKind::PermissionDenied => super::access_denied(home, socket),
            _ => Pm2Error::Io(format!("connecting to {}: {e}", socket.display())),
        }),
    }
}

/// Sends one call and returns the JSON text of the answer's first argument.
async fn call(stream: UnixStream, method: &str, args_json: &str) -> Result<Vec<u8>, Pm2Error> {
    let id = format!("opswatch-{}:0", std::process::id());
    let request = format!(
        r#"{{"type":"call","method":{},"args":{args_json}}}"#,
        serde_json::Value::from(method)
    );
    let frame = amp::encode(&[Arg::Json(request.into_bytes()), Arg::Str(id.clone())]);
    let (read, mut write) = stream.into_split();
    write.write_all(&frame).await.map_err(disconnected)?;
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let mut args = amp::read_frame(&mut read).await.map_err(frame_error)?;
    match (args.pop(), args.into_iter().next()) {
        (Some(Arg::Str(got)), Some(Arg::Json(body))) if got == id => Ok(body),
        (Some(Arg::Str(_)), Some(_)) => Err(Pm2Error::Protocol(
            "the answer does not carry the request's id".to_owned(),
        )),
        _ => Err(Pm2Error::Protocol(
            "the answer is not an axon RPC reply (JSON body and string id)".to_owned(),
        )),
    }
}

fn disconnected(e: std::io::Error) -> Pm2Error {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Pm2Error::Disconnected,
        _ => Pm2Error::Io(format!("writing to the PM2 socket: {e}")),
    }
}

pub(super) fn frame_error(e: FrameError) -> Pm2Error {
    match e {
        FrameError::Closed { .. } => Pm2Error::Disconnected,
        FrameError::Protocol(reason) => Pm2Error::Protocol(reason),
        FrameError::Io(e) if e.kind() == ErrorKind::ConnectionReset => Pm2Error::Disconnected,
        FrameError::Io(e) => Pm2Error::Io(format!("reading the PM2 socket: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// A daemon stand-in: reads one request frame, checks it, answers with `answer(id)`.
    async fn serve_once(listener: UnixListener, answer: impl Fn(&str) -> Vec<u8>) {
        let (mut s, _) = listener.accept().await.unwrap();
        let args = amp::read_frame(&mut s).await.unwrap();
        let Arg::Json(body) = &args[0] else {
            panic!("{args:?}")
        };
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["type"], "call");
        assert_eq!(v["method"], "getMonitorData");
        assert_eq!(v["args"], serde_json::json!([{}]));
        let Arg::Str(id) = &args[1] else {
            panic!("{args:?}")
        };
        s.write_all(&answer(id)).await.unwrap();
        // Keep the connection open until the client is done.
        let _ = s.read(&mut [0u8; 1]).await;
    }

    #[tokio::test]
    async fn reads_the_apps_and_only_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("rpc.sock")).unwrap();
        let server = tokio::spawn(serve_once(listener, |id| {
            let body = r#"{"args":[[{"name":"web","pm_id":0,"pid":42,"monit":{"memory":1000,"cpu":1.5},
                "pm2_env":{"status":"online","restart_time":3,"API_TOKEN":"s3cret","env":{"API_TOKEN":"s3cret"}}}]]}"#;
            amp::encode(&[Arg::Json(body.as_bytes().to_vec()), Arg::Str(id.to_owned())])
        }));
        let apps = get_monitor_data(dir.path(), Duration::from_secs(5))
            .await
            .unwrap();
        server.abort();
        assert_eq!(apps.len(), 1);
        let app = apps.into_iter().next().unwrap().into_app(0);
        assert_eq!((app.name.as_str(), app.restarts), ("web", 3));
        assert!(!format!("{app:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn error_answers_and_wrong_ids_are_protocol_errors() {
        for answer in [
            |id: &str| {
                amp::encode(&[
                    Arg::Json(br#"{"error":"method \"getMonitorData\" does not exist"}"#.to_vec()),
                    Arg::Str(id.to_owned()),
                ])
            },
            |_: &str| {
                amp::encode(&[
                    Arg::Json(br#"{"args":[[]]}"#.to_vec()),
                    Arg::Str("x".into()),
                ])
            },
            |id: &str| amp::encode(&[Arg::Json(b"[1,2]".to_vec()), Arg::Str(id.to_owned())]),
            |_: &str| b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let listener = UnixListener::bind(dir.path().join("rpc.sock")).unwrap();
            let server = tokio::spawn(serve_once(listener, answer));
            let e = get_monitor_data(dir.path(), Duration::from_secs(5))
                .await
                .map(drop)
                .unwrap_err();
            server.abort();
            assert!(matches!(e, Pm2Error::Protocol(_)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_closing_one_is_disconnected() {
        let dir = tempfile::tempdir().unwrap();
        let _listener = UnixListener::bind(dir.path().join("rpc.sock")).unwrap();
        // Accepts (the kernel backlog does) but never answers.
        let e = get_monitor_data(dir.path(), Duration::from_millis(200))
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(e, Pm2Error::Timeout(Duration::from_millis(200)));

        // Reads the request, writes half an answer, and goes away (a daemon killed mid-answer).
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("rpc.sock")).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = amp::read_frame(&mut s).await.unwrap();
            s.write_all(&[0x12, 0, 0, 0, 100, b'j', b':'])
                .await
                .unwrap();
        });
        let e = get_monitor_data(dir.path(), Duration::from_secs(5))
            .await
            .map(drop)
            .unwrap_err();
        server.await.unwrap();
        assert_eq!(e, Pm2Error::Disconnected);
    }
}
