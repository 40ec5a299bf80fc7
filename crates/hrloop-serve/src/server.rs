//! The HTTP server loop: connections that cannot be held hostage. A client that does not send
//! a complete request head within the header timeout (on a new connection, or on a kept-alive
//! one idle between requests) or a complete body within the body timeout is disconnected;
//! beyond the connection cap a new connection is answered 503 at once and closed, so a single
//! client cannot take every file descriptor; a failed accept (no descriptor left) backs off
//! instead of spinning or dying.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Raise the soft limit on open files to the hard limit (what `ulimit -n` may be raised to
/// without privileges). Returns (soft before, soft now).
pub fn raise_file_limit() -> (Option<u64>, Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let mut raised = before;
    raised.current = before.maximum;
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            before
        }
    };
    (before.current, now.current)
}

/// Connections the server can hold: at most `wanted`, and far enough below the open-file
/// limit that the decision log, the lake and the accept loop always have descriptors left.
pub fn connection_cap(wanted: usize, file_limit: Option<u64>) -> usize {
    match file_limit {
        Some(limit) => wanted.min((limit.saturating_sub(256) / 2).max(16) as usize),
        None => wanted,
    }
}

/// Serve the API on `listener` until `shutdown` completes, then let open requests finish.
/// At most `config.max_connections` connections at once (see [`connection_cap`] for one that
/// fits the open-file limit).
pub async fn serve(
    listener: TcpListener,
    state: Arc<crate::AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = state.config.max_connections;
    let metrics = state.metrics.clone();
    let app: Router = crate::router(state.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(state.config.header_timeout_ms))
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_accept_warning: Option<std::time::Instant> = None;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset before it was
                    // accepted: back off a little rather than spin; say so at most once a minute.
                    if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!(error = %e, "accepting a connection failed; retrying");
                        last_accept_warning = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.inc();
            tokio::spawn(refuse(stream, cap));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = metrics.connections_open.clone();
        open.inc();
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())));
        tokio::spawn(async move {
            // An error here is the client's doing (timeout, reset, malformed HTTP): nothing to log.
            let _ = conn.await;
            open.dec();
            drop(slot);
        });
    }
    drop(listener);
    // Requests under way finish (their decisions are logged); idle connections close now.
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    Ok(())
}

/// Answer a connection beyond the cap with 503 (the same JSON error body as every other
/// error) and close it.
async fn refuse(mut stream: TcpStream, cap: usize) {
    let body = serde_json::json!({"error": {"code": "too_many_connections",
        "message": format!("the server holds its maximum of {cap} connections; retry shortly")}})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    // Read what the client sent (briefly) before closing: closing with unread bytes would reset
    // the connection, and the client might never see the answer.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let mut sink = [0u8; 4096];
        while matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
