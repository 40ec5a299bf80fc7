//! Audit records from request handlers, batched into the store's hash-chained audit trail by a
//! background task (one segment per batch), so recording a read costs a request nothing.

use std::time::Duration;

use hrloop_lake::Store;
use hrloop_lake::audit::{Audit, AuditEntry};
use tokio::sync::{mpsc, oneshot};

enum Msg {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
}

impl AuditSink {
    pub fn start(store: Store) -> AuditSink {
        let (tx, mut rx) = mpsc::channel::<Msg>(16_384);
        let audit = Audit::new(store);
        tokio::spawn(async move {
            let mut batch: Vec<AuditEntry> = Vec::new();
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            loop {
                let first = rx.recv().await;
                let mut closed = first.is_none();
                let push = |m: Msg, batch: &mut Vec<AuditEntry>, waiters: &mut Vec<oneshot::Sender<()>>| match m {
                    Msg::Entry(e) => batch.push(e),
                    Msg::Flush(w) => waiters.push(w),
                };
                if let Some(m) = first {
                    push(m, &mut batch, &mut waiters);
                    // Gather what arrives in the next moments into the same segment.
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
                    while batch.len() < 2000 && waiters.is_empty() {
                        match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(m)) => push(m, &mut batch, &mut waiters),
                            Ok(None) => {
                                closed = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                while !batch.is_empty() {
                    match audit.append(batch.clone()).await {
                        Ok(_) => batch.clear(),
                        Err(e) => {
                            tracing::error!(error = %e, "audit append failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
                if closed {
                    return;
                }
            }
        });
        AuditSink { tx }
    }

    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(Msg::Entry(entry)).await.is_err() {
            tracing::error!("audit trail writer has stopped");
        }
    }

    /// Wait until everything recorded so far is in the store.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
