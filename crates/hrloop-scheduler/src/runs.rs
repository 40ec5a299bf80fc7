//! Durable run records in the store:
//!
//! ```text
//! runs/<pipeline>/registered.json                 when the scheduler first saw the pipeline
//! runs/<pipeline>/<slot>/attempt-<n>.json          one attempt of one slot
//! ```
//!
//! An attempt is *claimed* by creating its file (create-if-absent): of two processes only one
//! gets attempt n of a slot, so a slot never runs twice at once. The owner then rewrites its own
//! file as steps finish (renewing its lease) and at the end (succeeded / failed). A process that
//! finds a running attempt whose lease has expired (its owner died) claims attempt n + 1 and
//! resumes after the last finished step; a failed attempt is retried as n + 1 after a backoff.
//! Before every write the owner checks that no newer attempt exists (fencing), so a process that
//! lost its lease stops instead of overwriting.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hrloop_lake::Lake;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    /// Missed while no scheduler ran, and not run by the catch-up policy.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// First attempt of a scheduled slot.
    Scheduled,
    /// Started by hand (`hrloop pipelines run`).
    Manual,
    /// The previous attempt's owner stopped mid-run; this one resumes after its last step.
    Resumed,
    /// The previous attempt failed; this one starts again after the backoff.
    Retried,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub ok: bool,
    /// One line for people.
    pub summary: String,
    /// Values later steps use (e.g. the version trained).
    #[serde(default)]
    pub outputs: serde_json::Value,
    /// The pipeline stops here (e.g. a gate failed); the run still succeeds.
    #[serde(default)]
    pub stop: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub pipeline: String,
    pub slot: DateTime<Utc>,
    pub attempt: u32,
    pub kind: AttemptKind,
    pub owner: String,
    pub claimed_at: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub status: Status,
    pub steps: Vec<StepRecord>,
    pub error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Slot as a path segment: `20260302T030000Z`.
pub fn slot_id(slot: DateTime<Utc>) -> String {
    slot.format("%Y%m%dT%H%M%SZ").to_string()
}

fn attempt_path(pipeline: &str, slot: DateTime<Utc>, n: u32) -> Path {
    Path::from(format!("runs/{pipeline}/{}/attempt-{n:04}.json", slot_id(slot)))
}

fn encode(a: &Attempt) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(a).expect("attempt serialises"))
}

/// The run records of the store.
#[derive(Debug, Clone)]
pub struct Runs {
    lake: Lake,
}

impl Runs {
    pub fn new(lake: Lake) -> Self {
        Self { lake }
    }

    /// When the scheduler first saw `pipeline` (recorded on first call; slots before it are
    /// never considered missed).
    pub async fn registered(&self, pipeline: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let path = Path::from(format!("runs/{pipeline}/registered.json"));
        let json = serde_json::json!({"at": now}).to_string();
        if self.lake.store().put_new(&path, Bytes::from(json)).await? {
            return Ok(now);
        }
        let bytes = self.lake.store().get(&path).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{path}: {e}")))?;
        serde_json::from_value(v["at"].clone()).map_err(|e| Error::Corrupt(format!("{path}: {e}")))
    }

    /// Every attempt of a pipeline (or all pipelines), by slot then attempt.
    pub async fn attempts(&self, pipeline: Option<&str>) -> Result<Vec<Attempt>> {
        let prefix = match pipeline {
            Some(p) => Path::from(format!("runs/{p}")),
            None => Path::from("runs"),
        };
        let mut out = Vec::new();
        for meta in self.lake.store().list(&prefix).await? {
            if !meta.location.filename().is_some_and(|f| f.starts_with("attempt-")) {
                continue;
            }
            let bytes = self.lake.store().get(&meta.location).await?;
            let a: Attempt = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt(format!("run record {}: {e}", meta.location)))?;
            out.push(a);
        }
        out.sort_by(|a, b| (&a.pipeline, a.slot, a.attempt).cmp(&(&b.pipeline, b.slot, b.attempt)));
        Ok(out)
    }

    /// Claim attempt `a.attempt` of its slot. `false`: another process has it.
    pub async fn claim(&self, a: &Attempt) -> Result<bool> {
        Ok(self.lake.store().put_new(&attempt_path(&a.pipeline, a.slot, a.attempt), encode(a)).await?)
    }

    /// Rewrite an attempt this process owns. Fails (and writes nothing) if a newer attempt of
    /// the slot exists: the lease was lost.
    pub async fn update(&self, a: &Attempt) -> Result<()> {
        let newer = attempt_path(&a.pipeline, a.slot, a.attempt + 1);
        if self.lake.store().object_store().head(&newer).await.is_ok() {
            return Err(Error::LeaseLost { pipeline: a.pipeline.clone(), slot: a.slot, attempt: a.attempt });
        }
        self.lake.store().put_atomic(&attempt_path(&a.pipeline, a.slot, a.attempt), encode(a)).await?;
        Ok(())
    }
}
