//! Shadow scoring off the request path: the challenger scores the candidates the champion just
//! ranked on a dedicated background thread at the lowest CPU priority (`SCHED_IDLE`), using at
//! most a quarter of one core, so it only uses CPU the request handlers leave idle and costs
//! them next to nothing. The queue is bounded: when the challenger cannot keep up, jobs are
//! dropped and counted (`hrloop_shadow_dropped_total`), never waited for — under load the
//! shadow comparison is a sample. Shadow rows are
//! logged beside the champion's (decision id + `-shadow`, `shadow_version`/`shadow_score`).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crate::api::RankRequest;
use crate::decision_log::{Decision, DecisionLog, Features, Scored};
use crate::live::Loaded;

/// Jobs waiting at most; beyond this the newest is dropped.
const QUEUE: usize = 64;

/// A ranking the champion just served, for the challenger to score. The request body is shared,
/// not copied, and parsed again on the shadow thread.
pub struct ShadowJob {
    pub challenger: Arc<Loaded>,
    /// `name/version` of the model that served the ranking.
    pub served_by: String,
    pub body: bytes::Bytes,
    pub decision_id: String,
    pub decided_at_us: i64,
    /// Per candidate, in request order: pseudonym, served score, logged route.
    pub pseudonyms: Vec<String>,
    pub scores: Vec<f64>,
    pub routes: Vec<&'static str>,
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

/// At most this share of one core goes to shadow scoring: even idle-priority work costs the
/// request threads something (each preemption, the caches), so under load the shadow scores a
/// sample — the rest is dropped and counted — instead of everything.
const DUTY_CYCLE: f64 = 0.25;

fn work(rx: Receiver<ShadowJob>, log: DecisionLog, handle: tokio::runtime::Handle) {
    for job in rx {
        let took = shadow_one(job, &log, &handle);
        std::thread::sleep(took.mul_f64((1.0 - DUTY_CYCLE) / DUTY_CYCLE));
    }
}

/// Score one job and log it; returns the CPU time it took (not the wait for the log's fsync).
fn shadow_one(job: ShadowJob, log: &DecisionLog, handle: &tokio::runtime::Handle) -> std::time::Duration {
    let started = std::time::Instant::now();
    // The body was valid when served: a failure here is a bug, and only costs the shadow row.
    let Ok(req) = serde_json::from_slice::<RankRequest>(&job.body) else { return started.elapsed() };
    let ch = &job.challenger;
    let rows: Result<Vec<_>, _> =
        req.candidates.iter().map(|c| ch.align(&req.requisition.job_family, &c.features.0)).collect();
    let Ok(scores) = rows.map_err(|_| ()).and_then(|rows| ch.model.score_aligned(&rows).map_err(|_| ())) else {
        return started.elapsed();
    };
    // The champion's rows already hold the features; join on the decision id.
    let decision = Decision {
        decision_id: Cow::Owned(format!("{}-shadow", job.decision_id)),
        requisition_id: Cow::Borrowed(&req.requisition.id),
        job_family: Cow::Borrowed(&req.requisition.job_family),
        decided_at_us: job.decided_at_us,
        model_version: Cow::Borrowed(ch.id()),
        arm: Cow::Borrowed(hrloop_core::Arm::Shadow.as_str()),
        shadow_version: Some(Cow::Borrowed(&job.served_by)),
        feature_names: Vec::new(),
        candidates: scores
            .into_iter()
            .enumerate()
            .map(|(i, p)| Scored {
                candidate_id: Cow::Borrowed(&job.pseudonyms[i]),
                score: ch.calibrated(p),
                route: Cow::Borrowed(job.routes[i]),
                shadow_score: Some(job.scores[i]),
                features: Features::Named(Cow::Borrowed(&[])),
            })
            .collect(),
    };
    let took = started.elapsed();
    let _ = handle.block_on(log.append(&decision));
    took
}

/// Give this thread the lowest scheduling priority so request handlers always win: Linux's
/// `SCHED_IDLE` (it runs only when a core would otherwise idle, and a waking request thread
/// preempts it at once), and nice 19 in case that policy is refused.
#[allow(unsafe_code)]
pub(crate) fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority and sched_setscheduler on our own
        // thread id only change this thread's scheduling and report failure through their
        // return values, ignored here (a failure just leaves a higher priority). The
        // sched_param lives on the stack for the duration of the call.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_IDLE, &param);
        }
    }
}
