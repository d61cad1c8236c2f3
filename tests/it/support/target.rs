//! A real HTTP server for checks to probe, switched between healthy, failing and hanging.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

/// Status 0 means "hang": accept the request and never answer.
const HANG: u16 = 0;

pub struct Target {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start() -> Self {
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/health", get(answer))
            .with_state((status.clone(), hits.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            status,
            hits,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn hang(&self) {
        self.status.store(HANG, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State((status, hits)): State<(Arc<AtomicU16>, Arc<AtomicUsize>)>,
) -> (StatusCode, &'static str) {
    hits.fetch_add(1, Ordering::SeqCst);
    let code = status.load(Ordering::SeqCst);
    if code == HANG {
        std::future::pending::<()>().await;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        "{\"status\":\"ok\"}",
    )
}
