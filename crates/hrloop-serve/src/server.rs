//! The HTTP server loop: connections that cannot be held hostage. A client that does not send
//! a complete request head within the header timeout (on a new connection, or on a kept-alive
//! one idle between requests) or a complete body within the body timeout is disconnected. At
//! the connection cap, a new connection takes the place of the connection idle longest (no
//! request in flight for at least a second), so idle sockets cannot lock callers out; only when
//! every held connection is busy is the new one answered 503 and closed. A single client thus
//! never takes every file descriptor, and a failed accept (no descriptor left) backs off
//! instead of spinning or dying.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
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
    let held = Arc::new(Held::new());
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
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            // At the cap: make room by closing the connection idle longest, if one is.
            Err(_) if held.evict_longest_idle() => {
                metrics.connections_evicted.inc();
                tokio::time::timeout(Duration::from_millis(200), slots.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(slot) = slot else {
            metrics.connections_refused.inc();
            tokio::spawn(refuse(stream, cap));
            continue;
        };
        let _ = stream.set_nodelay(true);
        metrics.connections_open.inc();
        let (id, activity) = held.add();
        let on_close = OnClose { held: held.clone(), id, open: metrics.connections_open.clone(), _slot: slot };
        let service = {
            let (app, activity, held) = (app.clone(), activity.clone(), held.clone());
            hyper::service::service_fn(move |request: axum::extract::Request<hyper::body::Incoming>| {
                use tower::Service;
                let mut app = app.clone();
                let (activity, held) = (activity.clone(), held.clone());
                activity.in_flight.fetch_add(1, Ordering::SeqCst);
                async move {
                    let response = app.call(request).await;
                    activity.idle_since_ms.store(held.now_ms(), Ordering::SeqCst);
                    activity.in_flight.fetch_sub(1, Ordering::SeqCst);
                    response
                }
            })
        };
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let task = tokio::spawn(async move {
            let _on_close = on_close;
            // An error here is the client's doing (timeout, reset, malformed HTTP): nothing to log.
            let _ = conn.await;
        });
        let _ = activity.abort.set(task.abort_handle());
    }
    drop(listener);
    // Requests under way finish (their decisions are logged); idle connections close now.
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    Ok(())
}

/// A connection counts as idle (and may make room for a new one at the cap) once no request
/// has been in flight on it for this long.
const EVICTABLE_AFTER_MS: u64 = 1000;

/// The connections the server holds, by id.
#[derive(Debug)]
struct Held {
    started: Instant,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// What a connection is doing: requests in flight, and since when it has been idle.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the server started when the last response was produced (or the
    /// connection accepted).
    idle_since_ms: AtomicU64,
    abort: OnceLock<tokio::task::AbortHandle>,
}

impl Held {
    fn new() -> Held {
        Held { started: Instant::now(), next_id: AtomicU64::new(0), connections: Mutex::default() }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn add(&self) -> (u64, Arc<Activity>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity { idle_since_ms: AtomicU64::new(self.now_ms()), ..Activity::default() });
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).insert(id, activity.clone());
        (id, activity)
    }

    /// Close the connection idle longest, if one has been idle long enough. Returns whether one
    /// was closed (its slot frees as its task ends).
    fn evict_longest_idle(&self) -> bool {
        let now = self.now_ms();
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let idle = connections
            .values()
            .filter(|a| a.in_flight.load(Ordering::SeqCst) == 0)
            .map(|a| (a.idle_since_ms.load(Ordering::SeqCst), a))
            .filter(|(since, _)| now.saturating_sub(*since) >= EVICTABLE_AFTER_MS)
            .min_by_key(|(since, _)| *since);
        match idle.and_then(|(_, a)| a.abort.get()) {
            Some(abort) => {
                abort.abort();
                true
            }
            None => false,
        }
    }
}

/// Ends a connection's bookkeeping however its task ends (done, failed, or evicted).
struct OnClose {
    held: Arc<Held>,
    id: u64,
    open: prometheus::IntGauge,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for OnClose {
    fn drop(&mut self) {
        self.held.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
        self.open.dec();
    }
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
