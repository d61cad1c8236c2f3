//! The accept loop: HTTP/1.1 on hyper with the limits a server facing hostile clients needs,
//! which `axum::serve` does not set (it gives hyper no timer, so hyper's header timeout never
//! fires and a connection that sends half a request stays open forever).
//!
//! - **Header-read timeout** ([`HEADER_READ_TIMEOUT`]): a client that has not sent a whole
//!   request head within it is disconnected. hyper restarts this timer for every request on
//!   a kept-alive connection, so it is also the idle timeout between requests.
//! - **A cap on open connections** below the descriptor limit, with [`RESERVED_FDS`] left for
//!   checks, the store, channels and child processes. At the cap opswatch stops accepting;
//!   further clients wait in the kernel's backlog (which costs opswatch no descriptor) until
//!   a slot frees, so they can never take the descriptors a check needs.
//! - An `accept` that fails for lack of descriptors or memory pauses the loop instead of
//!   spinning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::daemon::resources::is_local_exhaustion;
use crate::daemon::state::AppState;
use crate::store::now_ms;

/// A client must send a whole request head (and, kept alive, the next one) within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors never used for client connections: up to 256 concurrent jobs (a socket or a
/// pipe each), the store's connections and files, channels, the listener, logs.
pub const RESERVED_FDS: u64 = 384;
/// The cap never goes below this, whatever the limit (a tiny limit is the operator's choice).
const MIN_CONNECTIONS: u64 = 32;
/// Nor above this: beyond it more connections only cost memory.
const MAX_CONNECTIONS: u64 = 16_384;
/// How long accepting pauses after running out of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How many client connections may be open at once with a descriptor limit of `nofile`.
pub fn connection_cap(nofile: u64) -> usize {
    let cap = nofile
        .saturating_sub(RESERVED_FDS)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS);
    usize::try_from(cap).unwrap_or(MIN_CONNECTIONS as usize)
}

/// The soft descriptor limit of this process now.
pub fn current_nofile() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(MAX_CONNECTIONS + RESERVED_FDS)
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for the requests in
/// flight (the caller bounds that wait).
pub async fn serve(
    app: AppState,
    router: Router,
    listener: TcpListener,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut at_cap_logged = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_cap_logged = false;
                slot
            }
            Err(_) => {
                if !at_cap_logged {
                    tracing::warn!(
                        max_connections,
                        "too many open client connections; new ones wait until one closes"
                    );
                    at_cap_logged = true;
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    _ = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&app, &e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            });
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout, bad request): not logged.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Per-connection errors (the client gave up before we accepted) need no pause; running out
/// of descriptors or memory does, or the loop would spin on the same error.
async fn pause_after_accept_error(app: &AppState, e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    if is_local_exhaustion(e) {
        let first = app
            .health
            .record_local_fault(now_ms(), format!("cannot accept connections: {e}"));
        if first {
            tracing::error!(error = %e, "cannot accept connections: out of descriptors or memory");
        }
    } else {
        tracing::warn!(error = %e, "accept failed");
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(connection_cap(1_024), 640);
        assert_eq!(connection_cap(65_536), 16_384);
        assert_eq!(connection_cap(100), 32);
    }
}
