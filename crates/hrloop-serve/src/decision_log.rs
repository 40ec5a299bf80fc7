//! The decision log: every scored candidate, with the features as served, written to a local
//! write-ahead log and fsynced before the ranking is answered (group commit: one fsync for all
//! requests waiting at that moment), then moved into the lake's `decisions` table in batches.
//! On start, whatever an earlier process left in the log is moved first; a segment's Parquet
//! files are named after the segment, so moving it twice rewrites the same files: a crash at
//! any point loses no acknowledged decision and duplicates none.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hrloop_lake::{Lake, PartitionedWriter, RowKeys, Table, Value, partition_of};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// One scored candidate as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub decision_id: String,
    pub requisition_id: String,
    /// Pseudonym, never the caller's raw id.
    pub candidate_id: String,
    pub job_family: String,
    pub decided_at: DateTime<Utc>,
    pub features: BTreeMap<String, f64>,
    pub model_version: String,
    pub arm: String,
    pub score: f64,
    pub route: String,
    pub shadow_version: Option<String>,
    pub shadow_score: Option<f64>,
}

impl DecisionRow {
    fn values(&self) -> Vec<Value> {
        vec![
            Value::Str(self.requisition_id.clone()),
            Value::Str(self.candidate_id.clone()),
            Value::Str(self.job_family.clone()),
            Value::Timestamp(self.decided_at),
            Value::Str("serving".into()),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::FloatMap(self.features.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            Value::Str(self.decision_id.clone()),
            Value::Str(self.model_version.clone()),
            Value::Str(self.arm.clone()),
            Value::Float(self.score),
            Value::Str(self.route.clone()),
            self.shadow_version.clone().map_or(Value::Null, Value::Str),
            self.shadow_score.map_or(Value::Null, Value::Float),
        ]
    }
}

enum Msg {
    /// Encoded rows (JSON lines) and how many.
    Append(Vec<u8>, usize, oneshot::Sender<Result<(), String>>),
    Flush(oneshot::Sender<Result<(), String>>),
}

#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Msg>,
}

const CURRENT: &str = "decisions.wal";
/// Rows per sealed segment at most (besides the time-based seal).
const SEGMENT_ROWS: usize = 20_000;

impl DecisionLog {
    /// Open this process's log under `root` (`root/<instance>/`, held with an exclusive file
    /// lock), first moving into the lake whatever processes that are gone left behind. Logs of
    /// live processes (their lock is held) are left alone, so several servers can share a store.
    pub async fn open(
        lake: Lake,
        root: PathBuf,
        flush_every: Duration,
    ) -> std::io::Result<(DecisionLog, tokio::task::JoinHandle<()>)> {
        move_abandoned(&lake, &root).await?;
        let dir = root.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir)?;
        let lock = std::fs::File::create(dir.join("LOCK"))?;
        lock.lock()?;
        let file = open_current(&dir)?;
        let (tx, rx) = mpsc::channel::<Msg>(1024);
        let handle = tokio::spawn(async move {
            // The lock lives as long as the writer: the process's claim on its log.
            let _lock = lock;
            writer(lake, dir, file, rx, flush_every).await;
        });
        Ok((DecisionLog { tx }, handle))
    }

    /// Durably log `rows`; returns once they are on disk.
    pub async fn append(&self, rows: &[DecisionRow]) -> Result<(), String> {
        // Encoding happens here, on the caller's worker, so the one writer task only writes
        // and fsyncs: under load the requests encode in parallel.
        let mut buf = Vec::with_capacity(rows.len() * 512);
        for r in rows {
            serde_json::to_writer(&mut buf, r).map_err(|e| e.to_string())?;
            buf.push(b'\n');
        }
        let (ack, done) = oneshot::channel();
        self.tx.send(Msg::Append(buf, rows.len(), ack)).await.map_err(|_| "decision log is closed".to_string())?;
        done.await.map_err(|_| "decision log stopped".to_string())?
    }

    /// Move everything logged so far into the lake now.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Msg::Flush(ack)).await.map_err(|_| "decision log is closed".to_string())?;
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

fn open_current(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(dir.join(CURRENT))
}

/// Rename the current log to a sealed segment (if it holds anything).
fn seal(dir: &Path) -> std::io::Result<()> {
    let cur = dir.join(CURRENT);
    if std::fs::metadata(&cur).is_ok_and(|m| m.len() > 0) {
        std::fs::rename(&cur, dir.join(format!("sealed-{}.wal", uuid::Uuid::new_v4())))?;
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn move_sealed(lake: &Lake, dir: &Path) -> Result<(), String> {
    let mut sealed: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("sealed-")))
        .collect();
    sealed.sort();
    for path in sealed {
        let p = path.clone();
        // Parsing a segment is CPU work: keep it off the async workers that answer requests.
        let rows = tokio::task::spawn_blocking(move || -> Result<Vec<DecisionRow>, String> {
            let mut rows = Vec::new();
            let file = std::fs::File::open(&p).map_err(|e| e.to_string())?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(|e| e.to_string())?;
                // A torn last line (crash mid-append) was never acknowledged: skip it.
                if let Ok(row) = serde_json::from_str::<DecisionRow>(&line) {
                    rows.push(row);
                }
            }
            Ok(rows)
        })
        .await
        .map_err(|e| e.to_string())??;
        write_rows(lake, rows, &path).await?;
        std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Move one sealed segment's rows into `lake/decisions`. The files it writes are named after
/// the segment (`part-serve-<segment>-<n>.parquet`), so moving the same segment again (after a
/// crash between the commit and the segment's removal) rewrites the same files with the same
/// rows: nothing is lost or duplicated, and no existing key has to be read back from the lake.
async fn write_rows(lake: &Lake, rows: Vec<DecisionRow>, source: &Path) -> Result<(), String> {
    let def = Table::Decisions.def();
    let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("wal").to_string();
    let segment = name.trim_start_matches("sealed-").trim_end_matches(".wal");
    let batch = format!("serve-{segment}");
    let now = rows.last().map_or_else(Utc::now, |r| r.decided_at);
    // A person erased while their decisions waited in this log never reaches the lake.
    let erased = lake.erased().await.map_err(|e| e.to_string())?;
    let mut writer = PartitionedWriter::new(lake, Table::Decisions, &batch, &name, now).map_err(|e| e.to_string())?;
    // Keys, partitions and encoding are CPU work: off the async workers.
    let writer = tokio::task::spawn_blocking(move || -> Result<PartitionedWriter, String> {
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            let values = row.values();
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

async fn writer(lake: Lake, dir: PathBuf, mut file: std::fs::File, mut rx: mpsc::Receiver<Msg>, flush_every: Duration) {
    // No immediate first tick: a flush right after start would race the first appends.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + flush_every, flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending_rows = 0usize;
    let mover = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tick.tick() => {
                if pending_rows > 0 {
                    pending_rows = 0;
                    // Seal here (a rename), move in the background: appends never wait for
                    // Parquet encoding.
                    seal_and_move_in_background(&lake, &dir, &mut file, &mover);
                }
                continue;
            }
        };
        let Some(first) = msg else {
            let _guard = mover.lock().await;
            let _ = flush_to_lake(&lake, &dir, &mut file).await;
            return;
        };
        // Group commit: everything waiting now shares one fsync.
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let mut buf = Vec::new();
        let mut acks = Vec::new();
        let mut flushes = Vec::new();
        for m in batch {
            match m {
                Msg::Append(bytes, n, ack) => {
                    buf.extend_from_slice(&bytes);
                    pending_rows += n;
                    acks.push(ack);
                }
                Msg::Flush(ack) => flushes.push(ack),
            }
        }
        let written = tokio::task::block_in_place(|| {
            file.write_all(&buf)?;
            file.sync_data()
        })
        .map_err(|e| e.to_string());
        for ack in acks {
            let _ = ack.send(written.clone());
        }
        // Bound a segment's size (and the memory its move takes): seal early under load.
        if pending_rows >= SEGMENT_ROWS && flushes.is_empty() {
            pending_rows = 0;
            seal_and_move_in_background(&lake, &dir, &mut file, &mover);
        }
        if !flushes.is_empty() {
            pending_rows = 0;
            let _guard = mover.lock().await;
            let r = flush_to_lake(&lake, &dir, &mut file).await;
            for ack in flushes {
                let _ = ack.send(r.clone());
            }
        }
    }
}

/// Seal the current log (a rename) and move it to the lake on another task, one move at a time.
fn seal_and_move_in_background(
    lake: &Lake,
    dir: &Path,
    file: &mut std::fs::File,
    mover: &std::sync::Arc<tokio::sync::Mutex<()>>,
) {
    match seal_and_reopen(dir, file) {
        Ok(()) => {
            let (lake, dir, mover) = (lake.clone(), dir.to_path_buf(), mover.clone());
            tokio::spawn(async move {
                let _one_at_a_time = mover.lock().await;
                if let Err(e) = move_sealed(&lake, &dir).await {
                    tracing::error!(error = %e, "moving decisions to the lake failed; will retry");
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "sealing the decision log failed"),
    }
}

fn seal_and_reopen(dir: &Path, file: &mut std::fs::File) -> Result<(), String> {
    tokio::task::block_in_place(|| -> std::io::Result<()> {
        seal(dir)?;
        *file = open_current(dir)?;
        Ok(())
    })
    .map_err(|e| e.to_string())
}

async fn flush_to_lake(lake: &Lake, dir: &Path, file: &mut std::fs::File) -> Result<(), String> {
    seal_and_reopen(dir, file)?;
    move_sealed(lake, dir).await
}
