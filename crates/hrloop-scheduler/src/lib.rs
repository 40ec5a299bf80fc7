//! The scheduler: pipelines (`pipelines/*.toml`) with cron or milestone triggers, runs that are
//! durable records in the store, leases so one slot runs once across processes, retries with
//! backoff, resumption of runs whose process died, and a stated catch-up policy after downtime.

pub mod pipeline;
pub mod runs;
pub mod scheduler;
pub mod steps;

pub use pipeline::{CatchUp, Pipeline, Step};
pub use runs::{Attempt, AttemptKind, Runs, Status};
pub use scheduler::{PipelineStatus, Scheduler, StepContext, StepOutput, StepRunner};
pub use steps::LoopSteps;

use chrono::{DateTime, Utc};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pipeline {path}: {reason}")]
    Pipeline { path: String, reason: String },
    #[error("no pipeline named {0:?} (pipelines: {1})")]
    UnknownPipeline(String, String),
    #[error("{0}")]
    Busy(String),
    #[error("run {pipeline} slot {slot} attempt {attempt}: another process took over (lease lost); stopping")]
    LeaseLost { pipeline: String, slot: DateTime<Utc>, attempt: u32 },
    #[error("corrupt run record: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Lake(#[from] hrloop_lake::Error),
    #[error(transparent)]
    Models(#[from] hrloop_models::Error),
}
