//! The decision log: every scored candidate, with the features as served, written to a local
//! write-ahead log and fsynced before the ranking is answered (group commit: one fsync for all
//! requests waiting at that moment), then moved into the lake's `decisions` table in batches:
//! the log is sealed into a segment every flush interval (or 20 000 rows), and sealed segments
//! move when no ranking has been logged for 100 ms, or at the latest a minute after sealing, so
//! under load the Parquet encoding does not compete with the requests. On start, whatever an earlier process left in the log is moved first; a segment's Parquet
//! files are named after the segment, so moving it twice rewrites the same files: a crash at
//! any point loses no acknowledged decision and duplicates none.
//!
//! Log format: a segment starts with [`MAGIC`]; then one frame per ranking: payload length
//! (u32, little-endian), CRC-32 of the payload (u32, little-endian), payload (a [`Decision`] in
//! postcard). A torn last frame (crash mid-append) fails its length or checksum and was never
//! acknowledged, so reading stops there. Segments of hrloop versions before this format (JSON
//! lines) are still read.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hrloop_core::{Arm, Route, Source};
use hrloop_lake::rows::decisions::DecisionRow;
use hrloop_lake::{Lake, PartitionedWriter, Row, RowKeys, Table, partition_of};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// First bytes of every segment in the current format.
pub const MAGIC: &[u8] = b"hrloop-decision-log 2\n";

/// One ranking as logged: what its candidates share, once, then each scored candidate. Borrows
/// from the request when written (nothing is copied on the request path); owns when read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision<'a> {
    #[serde(borrow)]
    pub decision_id: Cow<'a, str>,
    #[serde(borrow)]
    pub requisition_id: Cow<'a, str>,
    #[serde(borrow)]
    pub job_family: Cow<'a, str>,
    /// Microseconds since the Unix epoch.
    pub decided_at_us: i64,
    /// `name/version` of the model whose score this is.
    #[serde(borrow)]
    pub model_version: Cow<'a, str>,
    /// `champion`, `challenger` or `shadow`.
    #[serde(borrow)]
    pub arm: Cow<'a, str>,
    /// For shadow scores: the version that served the ranking.
    pub shadow_version: Option<Cow<'a, str>>,
    /// The feature names of candidates logged as [`Features::Values`], written once.
    pub feature_names: Vec<Cow<'a, str>>,
    pub candidates: Vec<Scored<'a>>,
}

/// A candidate's features as served (`None`: sent as null, not logged in the lake).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Features<'a> {
    /// Values in the order of the decision's `feature_names`: the usual case, as an ATS sends
    /// the same features for every candidate (names are most of a log's bytes otherwise).
    Values(Values<'a>),
    /// Names and values, for a candidate whose feature names differ from the shared ones.
    Named(#[serde(borrow)] Cow<'a, [(Cow<'a, str>, Option<f64>)]>),
}

impl<'a> Features<'a> {
    /// How a request's `given` features are logged against the shared `names`.
    pub fn of(names: &[Cow<'_, str>], given: &'a [(Cow<'a, str>, Option<f64>)]) -> Features<'a> {
        if names.len() == given.len() && names.iter().zip(given).all(|(n, (k, _))| n == k) {
            Features::Values(Values::Request(given))
        } else {
            Features::Named(Cow::Borrowed(given))
        }
    }

    /// Name and value of each feature.
    fn pairs<'s>(&'s self, names: &'s [Cow<'s, str>]) -> Box<dyn Iterator<Item = (&'s str, Option<f64>)> + 's> {
        match self {
            Features::Values(v) => Box::new(names.iter().map(|n| n.as_ref()).zip(v.iter())),
            Features::Named(list) => Box::new(list.iter().map(|(k, v)| (k.as_ref(), *v))),
        }
    }

    fn into_owned(self) -> Features<'static> {
        match self {
            Features::Values(v) => Features::Values(Values::Read(v.iter().collect())),
            Features::Named(list) => Features::Named(Cow::Owned(
                list.into_owned().into_iter().map(|(k, v)| (Cow::Owned(k.into_owned()), v)).collect(),
            )),
        }
    }
}

/// Feature values without their names: borrowed from the request (whose names are skipped when
/// written) or read back from the log.
#[derive(Debug, Clone)]
pub enum Values<'a> {
    Request(&'a [(Cow<'a, str>, Option<f64>)]),
    Read(Vec<Option<f64>>),
}

impl Values<'_> {
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        let (request, read) = match self {
            Values::Request(r) => (Some(r.iter().map(|(_, v)| *v)), None),
            Values::Read(v) => (None, Some(v.iter().copied())),
        };
        request.into_iter().flatten().chain(read.into_iter().flatten())
    }
}

impl PartialEq for Values<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Serialize for Values<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = match self {
            Values::Request(r) => r.len(),
            Values::Read(v) => v.len(),
        };
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(len))?;
        for v in self.iter() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Values<'_> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Values::Read(Vec::deserialize(d)?))
    }
}

/// One scored candidate of a [`Decision`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored<'a> {
    /// Pseudonym, never the caller's raw id.
    #[serde(borrow)]
    pub candidate_id: Cow<'a, str>,
    pub score: f64,
    /// `auto` or `human:<reason>`.
    #[serde(borrow)]
    pub route: Cow<'a, str>,
    /// For shadow scores: the serving model's score.
    pub shadow_score: Option<f64>,
    #[serde(borrow)]
    pub features: Features<'a>,
}

/// A logged candidate that cannot become a lake row: its arm or route is none of the stored
/// forms.
#[derive(Debug, thiserror::Error)]
#[error("decision {decision_id}, candidate {candidate_id}: {source}")]
pub struct UnstorableRow {
    pub decision_id: String,
    pub candidate_id: String,
    pub source: hrloop_core::UnknownValue,
}

impl Decision<'_> {
    /// The lake row of each candidate (a candidate twice in one ranking is one row; a feature
    /// given twice keeps its last value, as JSON readers do). An arm or route that is none of
    /// the stored forms is an error naming the ranking and the candidate.
    fn into_rows(self) -> impl Iterator<Item = Result<DecisionRow, UnstorableRow>> {
        let decided_at = DateTime::from_timestamp_micros(self.decided_at_us).unwrap_or_default();
        let Decision {
            decision_id,
            requisition_id,
            job_family,
            model_version,
            arm,
            shadow_version,
            feature_names,
            candidates,
            ..
        } = self;
        let shared = (decision_id, requisition_id, job_family, model_version, arm, shadow_version, feature_names);
        candidates.into_iter().map(move |c| {
            let (decision_id, requisition_id, job_family, model_version, arm, shadow_version, names) = &shared;
            let bad = |source| UnstorableRow {
                decision_id: decision_id.to_string(),
                candidate_id: c.candidate_id.to_string(),
                source,
            };
            let arm: Arm = arm.parse().map_err(bad)?;
            let route: Route = c.route.parse().map_err(bad)?;
            let mut features: Vec<(String, f64)> =
                c.features.pairs(names).filter_map(|(k, v)| v.map(|x| (k.to_string(), x))).collect();
            features.sort_by(|a, b| a.0.cmp(&b.0));
            features.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    std::mem::swap(&mut later.1, &mut earlier.1);
                }
                same
            });
            Ok(DecisionRow {
                requisition_id: requisition_id.to_string(),
                candidate_id: c.candidate_id.into_owned(),
                job_family: job_family.to_string(),
                decided_at,
                source: Source::Serving,
                stage_reached: None,
                decision: None,
                skills: None,
                features: Some(features),
                decision_id: Some(decision_id.to_string()),
                model_version: Some(model_version.to_string()),
                arm: Some(arm),
                score: Some(c.score),
                route: Some(route),
                shadow_version: shadow_version.as_ref().map(|v| v.to_string()),
                shadow_score: c.shadow_score,
            })
        })
    }

    /// The decision as one frame of the log.
    pub fn frame(&self) -> Result<Vec<u8>, String> {
        let width = |f: &Features<'_>| match f {
            Features::Values(v) => v.iter().count() * 9,
            Features::Named(list) => list.len() * 24,
        };
        let guess =
            64 + self.feature_names.len() * 16 + self.candidates.iter().map(|c| 48 + width(&c.features)).sum::<usize>();
        let mut buf = Vec::with_capacity(guess);
        buf.extend_from_slice(&[0; 8]);
        let mut buf = postcard::to_extend(self, buf).map_err(|e| e.to_string())?;
        let len = u32::try_from(buf.len() - 8).map_err(|_| "a decision over 4 GiB".to_string())?;
        let crc = crc32fast::hash(&buf[8..]);
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(buf)
    }
}

/// One row of a segment written by hrloop before the framed format (JSON lines).
#[derive(Deserialize)]
struct LegacyRow {
    decision_id: String,
    requisition_id: String,
    candidate_id: String,
    job_family: String,
    decided_at: DateTime<Utc>,
    features: std::collections::BTreeMap<String, f64>,
    model_version: String,
    arm: String,
    score: f64,
    route: String,
    shadow_version: Option<String>,
    shadow_score: Option<f64>,
}

impl From<LegacyRow> for Decision<'static> {
    fn from(r: LegacyRow) -> Self {
        Decision {
            decision_id: r.decision_id.into(),
            requisition_id: r.requisition_id.into(),
            job_family: r.job_family.into(),
            decided_at_us: r.decided_at.timestamp_micros(),
            model_version: r.model_version.into(),
            arm: r.arm.into(),
            shadow_version: r.shadow_version.map(Cow::Owned),
            feature_names: Vec::new(),
            candidates: vec![Scored {
                candidate_id: r.candidate_id.into(),
                score: r.score,
                route: r.route.into(),
                shadow_score: r.shadow_score,
                features: Features::Named(r.features.into_iter().map(|(k, v)| (Cow::Owned(k), Some(v))).collect()),
            }],
        }
    }
}

/// The decisions in a segment, in order. Reading stops at a torn or corrupt frame: appends are
/// acknowledged in order, so only an unacknowledged tail can be torn.
pub fn read_segment(bytes: &[u8]) -> Vec<Decision<'static>> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC) else {
        // A segment from before the framed format: JSON lines; a torn last line is skipped.
        return bytes
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<LegacyRow>(line).ok())
            .map(Decision::from)
            .collect();
    };
    let mut out = Vec::new();
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(payload) = rest.get(8..8 + len) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        match postcard::from_bytes::<Decision<'_>>(payload) {
            Ok(d) => out.push(d.into_owned()),
            Err(_) => break,
        }
        rest = &rest[8 + len..];
    }
    if !rest.is_empty() {
        tracing::warn!(bytes = rest.len(), "decision log segment ends in a torn frame (never acknowledged); ignored");
    }
    out
}

impl Decision<'_> {
    pub fn into_owned(self) -> Decision<'static> {
        Decision {
            decision_id: Cow::Owned(self.decision_id.into_owned()),
            requisition_id: Cow::Owned(self.requisition_id.into_owned()),
            job_family: Cow::Owned(self.job_family.into_owned()),
            decided_at_us: self.decided_at_us,
            model_version: Cow::Owned(self.model_version.into_owned()),
            arm: Cow::Owned(self.arm.into_owned()),
            shadow_version: self.shadow_version.map(|v| Cow::Owned(v.into_owned())),
            feature_names: self.feature_names.into_iter().map(|n| Cow::Owned(n.into_owned())).collect(),
            candidates: self
                .candidates
                .into_iter()
                .map(|c| Scored {
                    candidate_id: Cow::Owned(c.candidate_id.into_owned()),
                    score: c.score,
                    route: Cow::Owned(c.route.into_owned()),
                    shadow_score: c.shadow_score,
                    features: c.features.into_owned(),
                })
                .collect(),
        }
    }
}

enum Msg {
    /// An encoded frame and how many candidates it holds.
    Append(Vec<u8>, usize, oneshot::Sender<Result<(), String>>),
    Flush(oneshot::Sender<Result<(), String>>),
}

#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: std::sync::mpsc::Sender<Msg>,
}

const CURRENT: &str = "decisions.wal";
/// The next live segment while a seal is under way.
const NEXT: &str = "next.wal";
/// Rows per sealed segment at most (besides the time-based seal).
const SEGMENT_ROWS: usize = 20_000;
/// Sealed segments move to the lake once no ranking has been logged for this long, so Parquet
/// encoding uses the lulls between requests instead of competing with them under load (and at
/// the latest the configured delay after sealing, however busy the server is).
const QUIET: Duration = Duration::from_millis(100);

/// What the writer and the mover share.
#[derive(Debug, Default)]
struct Shared {
    /// Milliseconds since the Unix epoch of the last append.
    last_append_ms: std::sync::atomic::AtomicI64,
    stopped: std::sync::atomic::AtomicBool,
    sealed: tokio::sync::Notify,
}

impl DecisionLog {
    /// Open this process's log under `root` (`root/<instance>/`, held with an exclusive file
    /// lock), first moving into the lake whatever processes that are gone left behind. Logs of
    /// live processes (their lock is held) are left alone, so several servers can share a store.
    pub async fn open(
        lake: Lake,
        root: PathBuf,
        flush_every: Duration,
        max_move_delay: Duration,
        backlog: prometheus::Gauge,
    ) -> std::io::Result<(DecisionLog, std::thread::JoinHandle<()>)> {
        move_abandoned(&lake, &root).await?;
        let dir = root.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir)?;
        let lock = std::fs::File::create(dir.join("LOCK"))?;
        lock.lock()?;
        let live = LiveSegment::create(&dir)?;
        // Unbounded, yet bounded in practice: each request has at most one append outstanding.
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let shared = std::sync::Arc::new(Shared::default());
        let one_move = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        tokio::spawn(mover(lake.clone(), dir.clone(), shared.clone(), one_move.clone(), max_move_delay, backlog));
        let runtime = tokio::runtime::Handle::current();
        // The writer is a thread of its own: a write + fsync blocks only it, never an async
        // worker (no hand-off of a worker per group commit).
        let handle = std::thread::Builder::new().name("hrloop-decision-log".into()).spawn(move || {
            // The lock lives as long as the writer: the process's claim on its log.
            let _lock = lock;
            writer(&runtime, lake, live, rx, flush_every, &shared, one_move);
            shared.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            shared.sealed.notify_one();
        })?;
        Ok((DecisionLog { tx }, handle))
    }

    /// Durably log a decision; returns once it is on disk.
    pub async fn append(&self, decision: &Decision<'_>) -> Result<(), String> {
        // Encoding happens here, on the caller's worker, so the one writer task only writes
        // and fsyncs: under load the requests encode in parallel.
        let frame = decision.frame()?;
        let (ack, done) = oneshot::channel();
        let rows = decision.candidates.len();
        self.tx.send(Msg::Append(frame, rows, ack)).map_err(|_| "decision log is closed".to_string())?;
        done.await.map_err(|_| "decision log stopped".to_string())?
    }

    /// Move everything logged so far into the lake now.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Msg::Flush(ack)).map_err(|_| "decision log is closed".to_string())?;
        done.await.map_err(|_| "decision log stopped".to_string())?
    }
}

/// Move into the lake the logs under `root` that no live process holds (servers that stopped
/// or crashed). Returns the live logs left alone.
pub async fn move_abandoned(lake: &Lake, root: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(root)?;
    let mut live = Vec::new();
    for entry in std::fs::read_dir(root)?.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let Ok(lock) = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK"))
        else {
            continue;
        };
        if lock.try_lock().is_err() {
            live.push(dir); // a live server owns it
            continue;
        }
        seal(&dir)?;
        move_sealed(lake, &dir).await.map_err(std::io::Error::other)?;
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(live)
}

/// Seal whatever a stopped process left live (under either live name) in `dir`.
fn seal(dir: &Path) -> std::io::Result<()> {
    for name in [CURRENT, NEXT] {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAGIC.len() as u64 => std::fs::rename(&path, dir.join(sealed_name()))?,
            Ok(_) => std::fs::remove_file(&path)?,
            Err(_) => continue,
        }
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Sealed segments in `dir`, oldest first.
fn sealed_segments(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut sealed: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("sealed-")))
        .collect();
    sealed.sort();
    Ok(sealed)
}

/// When a segment was sealed (ms since the epoch); 0 for names without it (older versions).
fn sealed_at_ms(path: &Path) -> i64 {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.trim_start_matches("sealed-").split('-').next().and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Move the sealed segments a process left behind. A crash between a segment's commit and its
/// removal leaves it to be moved again; its files are then usually found under the same names
/// (the same rows, added again: nothing doubles), but the compaction may have merged them into
/// other files since, so each of these segments is first looked for in the table.
async fn move_sealed(lake: &Lake, dir: &Path) -> Result<(), String> {
    move_many(lake, sealed_segments(dir)?, Recheck::Yes).await
}

/// Whether a segment may already be in the lake (it was left behind, not freshly sealed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recheck {
    Yes,
    No,
}

/// The batch id a segment's rows carry in `lake/decisions`.
fn batch_of(segment: &Path) -> String {
    let name = segment.file_name().and_then(|n| n.to_str()).unwrap_or("wal");
    format!("serve-{}", name.trim_start_matches("sealed-").trim_end_matches(".wal"))
}

/// Whether `lake/decisions` holds rows of the segment's batch already (looked for from the
/// month of its oldest decision on).
async fn already_moved(lake: &Lake, segment: &Path, rows: &[Decision<'_>]) -> hrloop_lake::Result<bool> {
    let Some(oldest) = rows.iter().map(|r| r.decided_at_us).min() else { return Ok(false) };
    let since = DateTime::from_timestamp_micros(oldest).unwrap_or_default();
    lake.holds_batch(Table::Decisions, &batch_of(segment), since).await
}

/// Move segments, one per core at a time (a move is mostly single-threaded CPU work, and each
/// segment writes its own files, so moves do not interfere).
async fn move_many(lake: &Lake, segments: Vec<PathBuf>, recheck: Recheck) -> Result<(), String> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut running = tokio::task::JoinSet::new();
    let mut first_error = None;
    for path in segments {
        if running.len() >= parallel
            && let Some(done) = running.join_next().await
        {
            first_error = first_error.or(done.map_err(|e| e.to_string()).and_then(|r| r).err());
        }
        let lake = lake.clone();
        running.spawn(async move { move_one(&lake, &path, recheck).await });
    }
    while let Some(done) = running.join_next().await {
        first_error = first_error.or(done.map_err(|e| e.to_string()).and_then(|r| r).err());
    }
    first_error.map_or(Ok(()), Err)
}

async fn move_one(lake: &Lake, path: &Path, recheck: Recheck) -> Result<(), String> {
    let p = path.to_path_buf();
    // Decoding a segment is CPU work: keep it off the async workers that answer requests.
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Decision<'static>>, String> {
        Ok(read_segment(&std::fs::read(&p).map_err(|e| e.to_string())?))
    })
    .await
    .map_err(|e| e.to_string())??;
    if recheck == Recheck::Yes && already_moved(lake, path, &rows).await.map_err(|e| e.to_string())? {
        tracing::info!(segment = %path.display(), "segment already in lake/decisions; removed");
    } else {
        write_rows(lake, rows, path).await?;
    }
    std::fs::remove_file(path).map_err(|e| e.to_string())
}

/// Moves sealed segments to the lake, oldest first, one at a time: in a quiet moment, or when
/// one has waited `max_delay`.
async fn mover(
    lake: Lake,
    dir: PathBuf,
    shared: std::sync::Arc<Shared>,
    one_move: std::sync::Arc<tokio::sync::Mutex<()>>,
    max_delay: Duration,
    backlog: prometheus::Gauge,
) {
    use std::sync::atomic::Ordering;
    while !shared.stopped.load(Ordering::Relaxed) {
        let sealed = sealed_segments(&dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "listing the decision log failed; will retry");
            Vec::new()
        });
        let oldest = sealed.first();
        backlog.set(oldest.map_or(0.0, |p| (hrloop_core::wall_clock_ms() - sealed_at_ms(p)) as f64 / 1000.0));
        let Some(path) = oldest else {
            tokio::select! {
                _ = shared.sealed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        };
        let now = hrloop_core::wall_clock_ms();
        let quiet = now - shared.last_append_ms.load(Ordering::Relaxed) >= QUIET.as_millis() as i64;
        let overdue = now - sealed_at_ms(path) >= max_delay.as_millis() as i64;
        if !(quiet || overdue) {
            tokio::time::sleep(QUIET / 2).await;
            continue;
        }
        let _no_flush_meanwhile = one_move.lock().await;
        // The oldest few, one per core; then look again (is it still quiet?). A flush may have
        // moved some meanwhile.
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let batch: Vec<PathBuf> = sealed.into_iter().take(parallel).filter(|p| p.exists()).collect();
        if let Err(e) = move_many(&lake, batch, Recheck::No).await {
            tracing::error!(error = %e, "moving decisions to the lake failed; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Move one sealed segment's rows into `lake/decisions`. The files it writes are named after
/// the segment (`part-serve-<segment>-<n>.parquet`), so moving the same segment again (after a
/// crash between the commit and the segment's removal) rewrites the same files with the same
/// rows: nothing is lost or duplicated, and no existing key has to be read back from the lake.
async fn write_rows(lake: &Lake, rows: Vec<Decision<'static>>, source: &Path) -> Result<(), String> {
    let def = Table::Decisions.def();
    let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("wal").to_string();
    let batch = batch_of(source);
    // The batch's time: its last decision's (from the server's clock); an empty segment's, when
    // it was sealed.
    let now = rows
        .last()
        .and_then(|r| DateTime::from_timestamp_micros(r.decided_at_us))
        .or_else(|| DateTime::from_timestamp_millis(sealed_at_ms(source)))
        .unwrap_or(DateTime::UNIX_EPOCH);
    // A person erased while their decisions waited in this log never reaches the lake.
    let erased = lake.erased().await.map_err(|e| e.to_string())?;
    let mut writer =
        PartitionedWriter::new(lake, Table::Decisions, &batch, &name, now).map_err(|e| e.to_string())?.knowing(&erased);
    // Keys, partitions and encoding are CPU work: off the async workers.
    let writer = tokio::task::spawn_blocking(move || -> Result<PartitionedWriter, String> {
        let mut seen = std::collections::HashSet::new();
        for row in rows.into_iter().flat_map(Decision::into_rows) {
            let values = row.map_err(|e| e.to_string())?.values();
            if erased.row_mentions(&values) {
                continue;
            }
            let partition = partition_of(def, &values).map_err(|e| e.to_string())?;
            let keys = RowKeys::of(def, &values);
            // The same candidate twice in one ranking is one decision.
            if seen.insert(keys.event_key) {
                writer.push_to(&partition, &values, &keys).map_err(|e| e.to_string())?;
            }
        }
        Ok(writer)
    })
    .await
    .map_err(|e| e.to_string())??;
    writer.commit().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn writer(
    runtime: &tokio::runtime::Handle,
    lake: Lake,
    mut live: LiveSegment,
    rx: std::sync::mpsc::Receiver<Msg>,
    flush_every: Duration,
    shared: &Shared,
    mover: std::sync::Arc<tokio::sync::Mutex<()>>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    // No immediate first seal: a flush right after start would race the first appends.
    let mut next_seal = std::time::Instant::now() + flush_every;
    loop {
        let first = match rx.recv_timeout(next_seal.saturating_duration_since(std::time::Instant::now())) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                next_seal = std::time::Instant::now() + flush_every;
                if live.rows > 0 {
                    // Seal here (a rename), move in the background: appends never wait for
                    // Parquet encoding.
                    seal_for_mover(&mut live, shared);
                }
                continue;
            }
            // Every handle is gone: seal what is left; the mover (or the next server to start
            // on this store) moves it.
            Err(RecvTimeoutError::Disconnected) => {
                seal_for_mover(&mut live, shared);
                return;
            }
        };
        // Group commit: everything waiting now shares one fsync.
        let mut buf = Vec::new();
        let mut acks = Vec::new();
        let mut flushes = Vec::new();
        let mut rows = 0;
        for m in std::iter::once(first).chain(rx.try_iter()) {
            match m {
                Msg::Append(bytes, n, ack) => {
                    if buf.is_empty() {
                        buf = bytes;
                    } else {
                        buf.extend_from_slice(&bytes);
                    }
                    rows += n;
                    acks.push(ack);
                }
                Msg::Flush(ack) => flushes.push(ack),
            }
        }
        if !acks.is_empty() {
            let written = live.append(&buf, rows).map_err(|e| format!("decision log: {e}"));
            if let Err(e) = &written {
                tracing::error!(error = %e, "decision log write failed; refusing rankings until it is writable");
            }
            shared.last_append_ms.store(hrloop_core::wall_clock_ms(), std::sync::atomic::Ordering::Relaxed);
            for ack in acks {
                let _ = ack.send(written.clone());
            }
        }
        // Bound a segment's size (and the memory its move takes): seal early under load.
        if live.rows >= SEGMENT_ROWS && flushes.is_empty() {
            seal_for_mover(&mut live, shared);
        }
        if !flushes.is_empty() {
            let r = runtime.block_on(async {
                let _guard = mover.lock().await;
                live.seal().map_err(|e| format!("sealing the decision log: {e}"))?;
                move_sealed(&lake, &live.dir).await
            });
            for ack in flushes {
                let _ = ack.send(r.clone());
            }
        }
    }
}

/// Seal the live segment and wake the mover. When the next file cannot be opened (no file
/// descriptor left, disk full), the live segment stays live and takes the next appends; the
/// seal is tried again at the next tick.
fn seal_for_mover(live: &mut LiveSegment, shared: &Shared) {
    match live.seal() {
        Ok(true) => shared.sealed.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "sealing the decision log failed; the live segment keeps taking appends"),
    }
}

/// The segment appends go to. Its invariant: an acknowledged frame is in a file that is either
/// the live segment or a sealed one, and a sealed segment is never written again — so the mover,
/// which moves and deletes sealed segments, can never delete an acknowledged frame. That is why
/// sealing opens the next file *before* it renames the live one: if the open fails (no file
/// descriptor left), nothing is renamed and appends go on in the same live segment.
struct LiveSegment {
    dir: PathBuf,
    /// The log directory, opened once at start, so making a rename durable never needs a new
    /// file descriptor.
    dir_handle: std::fs::File,
    file: std::fs::File,
    /// `decisions.wal`, or `next.wal` in the rare case a seal could not rename it into place.
    path: PathBuf,
    /// Bytes of whole, durable frames (what a failed append is cut back to).
    len: u64,
    /// Rows appended since the segment was opened.
    rows: usize,
    /// A rename or a new file whose directory entry is not yet durable: appends wait for it.
    dir_dirty: bool,
    /// A failed append left bytes that could not be cut off: seal before appending again
    /// (a reader stops at a torn frame, so nothing may follow one).
    torn: bool,
}

impl LiveSegment {
    fn create(dir: &Path) -> std::io::Result<LiveSegment> {
        let dir_handle = std::fs::File::open(dir)?;
        let path = dir.join(CURRENT);
        let file = new_segment_file(&path)?;
        dir_handle.sync_all()?;
        let len = MAGIC.len() as u64;
        Ok(LiveSegment { dir: dir.to_path_buf(), dir_handle, file, path, len, rows: 0, dir_dirty: false, torn: false })
    }

    /// Append whole frames and make them durable. On failure nothing of `frames` counts: the
    /// file is cut back to its last whole frame, or sealed before the next append if even that
    /// fails.
    fn append(&mut self, frames: &[u8], rows: usize) -> std::io::Result<()> {
        if self.torn {
            self.seal()?;
        }
        if self.dir_dirty {
            self.dir_handle.sync_all()?;
            self.dir_dirty = false;
        }
        match self.file.write_all(frames).and_then(|()| self.file.sync_data()) {
            Ok(()) => {
                self.len += frames.len() as u64;
                self.rows += rows;
                Ok(())
            }
            Err(e) => {
                if self.file.set_len(self.len).and_then(|()| self.file.sync_data()).is_err() {
                    self.torn = true;
                }
                Err(e)
            }
        }
    }

    /// Seal the live segment (if it holds anything) and open the next. Returns whether a
    /// segment was sealed.
    fn seal(&mut self) -> std::io::Result<bool> {
        if self.len <= MAGIC.len() as u64 && !self.torn {
            return Ok(false);
        }
        let next_path = self.dir.join(NEXT);
        // 1. The next file first: if it cannot be opened, nothing has changed.
        let next = new_segment_file(&next_path)?;
        // 2. Seal the live segment. If the rename fails, the live segment stays live.
        if let Err(e) = std::fs::rename(&self.path, self.dir.join(sealed_name())) {
            let _ = std::fs::remove_file(&next_path);
            return Err(e);
        }
        // 3. From here the old file is sealed and never written again.
        self.path = match std::fs::rename(&next_path, self.dir.join(CURRENT)) {
            Ok(()) => self.dir.join(CURRENT),
            // Still a live segment under its other name: recovery seals both names.
            Err(e) => {
                tracing::warn!(error = %e, "decision log: the new segment keeps the name next.wal");
                next_path
            }
        };
        self.file = next;
        self.len = MAGIC.len() as u64;
        self.rows = 0;
        self.torn = false;
        self.dir_dirty = true;
        // Durable renames; if this fails, the next append tries again before it writes.
        self.dir_handle.sync_all()?;
        self.dir_dirty = false;
        Ok(true)
    }
}

/// A new, empty segment file holding just the format's magic bytes (made durable by the first
/// acknowledged append's fsync).
fn new_segment_file(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new().create_new(true).append(true).open(path)?;
    if let Err(e) = file.write_all(MAGIC) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// A sealed segment's name: by sealing time, so names sort oldest first and tell its age.
fn sealed_name() -> String {
    format!("sealed-{:013}-{}.wal", hrloop_core::wall_clock_ms(), uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, candidates: usize) -> Decision<'static> {
        Decision {
            decision_id: Cow::Owned(id.to_string()),
            requisition_id: "R-1".into(),
            job_family: "sales".into(),
            decided_at_us: 1_767_225_600_000_000,
            model_version: "m/v1".into(),
            arm: "champion".into(),
            shadow_version: None,
            feature_names: vec!["x".into(), "y".into()],
            candidates: (0..candidates)
                .map(|i| Scored {
                    candidate_id: Cow::Owned(format!("p{i:032x}")),
                    score: 0.5 + i as f64 / 100.0,
                    route: "auto".into(),
                    shadow_score: None,
                    // Odd candidates have their own names; even ones share the decision's.
                    features: if i % 2 == 1 {
                        Features::Named(
                            vec![("x".into(), Some(i as f64)), ("y".into(), None), ("x".into(), Some(9.0))].into(),
                        )
                    } else {
                        Features::Values(Values::Read(vec![Some(i as f64), Some(0.5)]))
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_ignored() {
        let (a, b) = (decision("d1", 3), decision("d2", 2));
        let mut seg = MAGIC.to_vec();
        seg.extend(a.frame().unwrap());
        let whole_first = seg.len();
        seg.extend(b.frame().unwrap());
        assert_eq!(read_segment(&seg), vec![a.clone(), b.clone()]);
        // Cut anywhere inside the second frame: the first survives, the second was never acked.
        for cut in whole_first..seg.len() {
            assert_eq!(read_segment(&seg[..cut]), vec![a.clone()], "cut at {cut}");
        }
        // A flipped byte fails the checksum.
        let mut bad = seg.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(read_segment(&bad), vec![a.clone()]);
        assert!(read_segment(MAGIC).is_empty());
    }

    #[test]
    fn lake_rows_keep_the_last_of_a_repeated_feature_and_drop_nulls() {
        let rows: Vec<DecisionRow> = decision("d1", 2).into_rows().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].features, Some(vec![("x".into(), 0.0), ("y".into(), 0.5)]));
        assert_eq!(rows[1].features, Some(vec![("x".into(), 9.0)]));
        assert_eq!(rows[1].decision_id.as_deref(), Some("d1"));
        assert_eq!(
            (rows[1].source, rows[1].arm, rows[1].route),
            (Source::Serving, Some(Arm::Champion), Some(Route::Auto))
        );
        assert_eq!(rows[1].decided_at, DateTime::from_timestamp_micros(1_767_225_600_000_000).unwrap());
    }

    #[test]
    fn an_unknown_arm_or_route_names_the_ranking_and_candidate() {
        let mut d = decision("d7", 1);
        d.candidates[0].route = "human:bored".into();
        let err = d.into_rows().next().unwrap().unwrap_err().to_string();
        assert!(err.starts_with("decision d7, candidate p0000"), "{err}");
        assert!(err.contains("route: unknown value \"human:bored\""), "{err}");
        let mut d = decision("d8", 1);
        d.arm = "winner".into();
        assert!(d.into_rows().next().unwrap().unwrap_err().to_string().contains("arm: unknown value \"winner\""));
    }

    #[test]
    fn segments_written_before_the_framed_format_are_still_read() {
        let line = r#"{"decision_id":"d0","requisition_id":"R-0","candidate_id":"p1","job_family":"sales","decided_at":"2026-01-01T00:00:00Z","features":{"x":1.5},"model_version":"m/v1","arm":"champion","score":0.7,"route":"auto","shadow_version":null,"shadow_score":null}"#;
        let seg = format!("{line}\n{line}\n{{\"decision_id\":\"torn");
        let read = read_segment(seg.as_bytes());
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].candidates[0].features, Features::Named(vec![(Cow::Borrowed("x"), Some(1.5))].into()));
        assert_eq!(read[0].decided_at_us, 1_767_225_600_000_000);
    }
}

#[cfg(test)]
mod shared_names {
    use super::*;

    #[test]
    fn request_features_are_logged_as_values_when_their_names_match_and_read_back_alike() {
        let names: Vec<Cow<str>> = vec!["a".into(), "b".into()];
        let same: Vec<(Cow<str>, Option<f64>)> = vec![("a".into(), Some(1.0)), ("b".into(), None)];
        let other: Vec<(Cow<str>, Option<f64>)> = vec![("b".into(), Some(2.0)), ("a".into(), Some(3.0))];
        let d = Decision {
            decision_id: "d".into(),
            requisition_id: "r".into(),
            job_family: "sales".into(),
            decided_at_us: 0,
            model_version: "m/v1".into(),
            arm: "champion".into(),
            shadow_version: None,
            feature_names: names.clone(),
            candidates: [&same, &other]
                .iter()
                .enumerate()
                .map(|(i, f)| Scored {
                    candidate_id: format!("p{i}").into(),
                    score: 0.5,
                    route: "auto".into(),
                    shadow_score: None,
                    features: Features::of(&names, f),
                })
                .collect(),
        };
        assert!(matches!(d.candidates[0].features, Features::Values(_)));
        assert!(matches!(d.candidates[1].features, Features::Named(_)), "other order: names kept");
        let mut seg = MAGIC.to_vec();
        seg.extend(d.frame().unwrap());
        let back = read_segment(&seg);
        assert_eq!(back, vec![d.clone().into_owned()]);
        let rows: Vec<DecisionRow> = back.into_iter().flat_map(Decision::into_rows).map(Result::unwrap).collect();
        assert_eq!(rows[0].features, Some(vec![("a".into(), 1.0)]));
        assert_eq!(rows[1].features, Some(vec![("a".into(), 3.0), ("b".into(), 2.0)]));
    }
}
