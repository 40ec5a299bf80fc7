//! Shadow scoring off the request path: the challenger scores the candidates the champion just
//! ranked on a dedicated background thread at the lowest CPU priority, so it only uses CPU the
//! request handlers leave idle. The queue is bounded: when the challenger cannot keep up, jobs
//! are dropped and counted (`hrloop_shadow_dropped_total`), never waited for. Shadow rows are
//! logged beside the champion's (decision id + `-shadow`, `shadow_version`/`shadow_score`).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use hrloop_models::features::RawFeatures;

use crate::decision_log::{DecisionLog, DecisionRow};
use crate::live::Loaded;

/// Jobs waiting at most; beyond this the newest is dropped.
const QUEUE: usize = 64;

pub struct ShadowJob {
    pub challenger: Arc<Loaded>,
    /// The champion's logged rows, features included.
    pub logged: Vec<DecisionRow>,
}

#[derive(Clone)]
pub struct Shadow {
    tx: SyncSender<ShadowJob>,
    dropped: prometheus::IntCounter,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shadow")
    }
}

impl Shadow {
    /// Start the worker thread; it logs through `log` on the runtime of `handle`.
    pub fn start(log: DecisionLog, handle: tokio::runtime::Handle, dropped: prometheus::IntCounter) -> Shadow {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("hrloop-shadow".into())
            .spawn(move || {
                lowest_priority();
                work(rx, log, handle);
            })
            .expect("spawn the shadow thread");
        Shadow { tx, dropped }
    }

    /// Queue a job; never waits.
    pub fn submit(&self, job: ShadowJob) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(job) {
            self.dropped.inc();
        }
    }
}

fn work(rx: Receiver<ShadowJob>, log: DecisionLog, handle: tokio::runtime::Handle) {
    for job in rx {
        let features: Vec<RawFeatures> = job
            .logged
            .iter()
            .map(|r| RawFeatures {
                numeric: r.features.clone(),
                categorical: [("job_family".to_string(), r.job_family.clone())].into(),
            })
            .collect();
        let Ok(raw) = job.challenger.model.score_many(&features) else { continue };
        let id = job.challenger.id();
        let rows: Vec<DecisionRow> = job
            .logged
            .into_iter()
            .zip(raw)
            .map(|(mut r, p)| {
                // The champion's row already holds the features; join on the decision id.
                r.features.clear();
                r.decision_id = format!("{}-shadow", r.decision_id);
                r.arm = "shadow".into();
                r.shadow_version = Some(r.model_version.clone());
                r.shadow_score = Some(r.score);
                r.model_version = id.clone();
                r.score = job.challenger.calibration.as_ref().map_or(p, |c| c.apply(p));
                r
            })
            .collect();
        let _ = handle.block_on(log.append(&rows));
    }
}

/// Give this thread the lowest scheduling priority (nice 19) so request handlers always win.
#[allow(unsafe_code)]
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes
        // this thread's nice value and reports failure through its return value, ignored here
        // (a failure just leaves the default priority).
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}
