//! The scheduler: on each tick, work out which slots of which pipelines are due, claim them,
//! and run their steps; resume runs whose owner died, retry failed ones after a backoff, and
//! apply each pipeline's catch-up policy to slots missed during downtime.
//!
//! Time comes from an injected [`Clock`]: tests and the simulation jump months ahead without
//! sleeping. Steps are executed by a [`StepRunner`], so the scheduling rules are tested with a
//! fake and production runs the real steps ([`crate::steps::LoopSteps`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use hrloop_core::{Clock, Milestone};
use hrloop_lake::Lake;
use serde::Serialize;

use crate::pipeline::{CatchUp, Pipeline, Step};
use crate::runs::{Attempt, AttemptKind, Runs, Status, StepRecord};
use crate::{Error, Result};

/// What a step hands back.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    pub summary: String,
    pub outputs: serde_json::Value,
    /// Stop the pipeline here, successfully (a gate said no, or there is not enough data yet).
    pub stop: bool,
}

impl StepOutput {
    pub fn done(summary: impl Into<String>) -> Self {
        Self { summary: summary.into(), ..Self::default() }
    }
}

/// What a step sees.
#[derive(Debug)]
pub struct StepContext<'a> {
    pub pipeline: &'a Pipeline,
    pub slot: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Steps already finished in this run (this attempt or the ones it resumes).
    pub earlier: &'a [StepRecord],
}

impl StepContext<'_> {
    /// An output of the latest earlier step that produced it.
    pub fn output(&self, key: &str) -> Option<&serde_json::Value> {
        self.earlier.iter().rev().find_map(|s| s.outputs.get(key))
    }
}

pub trait StepRunner: Send + Sync {
    fn run(
        &self,
        ctx: &StepContext<'_>,
        step: &Step,
    ) -> impl Future<Output = std::result::Result<StepOutput, String>> + Send;
}

/// One pipeline's state, for `hrloop pipelines status` and the metrics.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub description: String,
    pub trigger: String,
    pub catch_up: CatchUp,
    pub next_slot: Option<DateTime<Utc>>,
    pub last_slot: Option<DateTime<Utc>>,
    pub last_status: Option<Status>,
    pub last_error: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    /// Slots per final status (running counts the latest attempt).
    pub runs: BTreeMap<String, usize>,
}

pub struct Scheduler<R> {
    lake: Lake,
    runs: Runs,
    pipelines: Vec<Pipeline>,
    runner: R,
    owner: String,
    clock: Arc<dyn Clock>,
}

/// Slots a catch-up may run in one tick at most.
const MAX_SLOTS_PER_TICK: usize = 100;

impl<R: StepRunner> Scheduler<R> {
    pub fn new(lake: Lake, pipelines: Vec<Pipeline>, runner: R, clock: Arc<dyn Clock>) -> Self {
        let owner = format!(
            "{}:{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self { runs: Runs::new(lake.clone()), lake, pipelines, runner, owner, clock }
    }

    pub fn pipelines(&self) -> &[Pipeline] {
        &self.pipelines
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Run everything that is due now. Returns the attempts this tick made (finished, failed or
    /// skipped).
    pub async fn tick(&self) -> Result<Vec<Attempt>> {
        let now = self.clock.now();
        let all = self.runs.attempts(None).await?;
        let dates = if self.pipelines.iter().any(Pipeline::is_milestone_triggered) {
            milestone_dates(&self.lake).await?
        } else {
            Vec::new()
        };
        let mut done = Vec::new();
        for p in &self.pipelines {
            let registered = self.runs.registered(p.name(), now).await?;
            let mut by_slot: BTreeMap<DateTime<Utc>, Vec<&Attempt>> = BTreeMap::new();
            for a in all.iter().filter(|a| a.pipeline == p.name() && a.kind != AttemptKind::Manual) {
                by_slot.entry(a.slot).or_default().push(a);
            }
            // Unfinished slots first (resume, retry), then new ones.
            for (slot, attempts) in &by_slot {
                let last = attempts.last().expect("grouped");
                if let Some((kind, carried)) = self.next_attempt(p, last, now) {
                    done.extend(self.execute(p, *slot, last.attempt + 1, kind, carried).await?);
                }
            }
            let cursor = by_slot.keys().next_back().copied().unwrap_or(registered).max(registered);
            let new_slots = p.slots(cursor, now, &dates, MAX_SLOTS_PER_TICK);
            let lease = Duration::minutes(i64::from(p.file.lease_minutes));
            let (run, skip): (Vec<_>, Vec<_>) = match p.file.catch_up {
                CatchUp::All => (new_slots, Vec::new()),
                CatchUp::Latest => {
                    let mut s = new_slots;
                    let last = s.pop();
                    (last.into_iter().collect(), s)
                }
                CatchUp::Skip => new_slots.into_iter().partition(|s| now - *s <= lease),
            };
            for slot in skip {
                done.extend(self.skip(p, slot, now).await?);
            }
            for slot in run {
                done.extend(self.execute(p, slot, 1, AttemptKind::Scheduled, Vec::new()).await?);
            }
        }
        Ok(done)
    }

    /// Run a pipeline now, whatever its trigger.
    pub async fn run_now(&self, name: &str) -> Result<Attempt> {
        let p = self
            .pipelines
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::UnknownPipeline(name.to_string(), self.names()))?;
        let slot = self.clock.now();
        let slot = DateTime::from_timestamp(slot.timestamp(), 0).unwrap_or(slot);
        self.execute(p, slot, 1, AttemptKind::Manual, Vec::new())
            .await?
            .ok_or_else(|| Error::Busy(format!("{name} is already running for slot {slot}")))
    }

    fn names(&self) -> String {
        self.pipelines.iter().map(Pipeline::name).collect::<Vec<_>>().join(", ")
    }

    /// Whether the slot whose latest attempt is `last` needs another attempt now.
    fn next_attempt(&self, p: &Pipeline, last: &Attempt, now: DateTime<Utc>) -> Option<(AttemptKind, Vec<StepRecord>)> {
        let carried = || last.steps.iter().filter(|s| s.ok).cloned().collect::<Vec<_>>();
        match last.status {
            Status::Succeeded | Status::Skipped => None,
            Status::Running if last.lease_until <= now => Some((AttemptKind::Resumed, carried())),
            Status::Running => None,
            Status::Failed => {
                let r = &p.file.retry;
                if last.attempt >= r.max_attempts {
                    return None;
                }
                let wait = Duration::minutes(i64::from(r.backoff_minutes) * (1i64 << (last.attempt - 1).min(20)));
                let since = last.finished_at.unwrap_or(last.claimed_at);
                (now >= since + wait).then(|| (AttemptKind::Retried, carried()))
            }
        }
    }

    async fn skip(&self, p: &Pipeline, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<Attempt>> {
        let a = Attempt {
            pipeline: p.name().into(),
            slot,
            attempt: 1,
            kind: AttemptKind::Scheduled,
            owner: self.owner.clone(),
            claimed_at: now,
            lease_until: now,
            status: Status::Skipped,
            steps: Vec::new(),
            error: Some(format!("missed while no scheduler ran; catch-up policy {:?}", p.file.catch_up).to_lowercase()),
            finished_at: Some(now),
        };
        Ok(self.runs.claim(&a).await?.then_some(a))
    }

    /// Claim attempt `n` of `slot` and run its steps (after the `carried` ones). None: another
    /// process claimed it first.
    async fn execute(
        &self,
        p: &Pipeline,
        slot: DateTime<Utc>,
        n: u32,
        kind: AttemptKind,
        carried: Vec<StepRecord>,
    ) -> Result<Option<Attempt>> {
        let lease = Duration::minutes(i64::from(p.file.lease_minutes));
        let now = self.clock.now();
        let mut a = Attempt {
            pipeline: p.name().into(),
            slot,
            attempt: n,
            kind,
            owner: self.owner.clone(),
            claimed_at: now,
            lease_until: now + lease,
            status: Status::Running,
            steps: carried,
            error: None,
            finished_at: None,
        };
        if !self.runs.claim(&a).await? {
            return Ok(None);
        }
        tracing::info!(pipeline = p.name(), slot = %slot, attempt = n, kind = ?kind, "run started");
        let stopped = a.steps.iter().any(|s| s.stop);
        if !stopped {
            for (i, step) in p.file.steps.iter().enumerate().skip(a.steps.len()) {
                let started = self.clock.now();
                let result = {
                    let ctx = StepContext { pipeline: p, slot, now: started, earlier: &a.steps };
                    self.runner.run(&ctx, step).await
                };
                let finished = self.clock.now();
                let (ok, summary, outputs, stop) = match result {
                    Ok(out) => (true, out.summary, out.outputs, out.stop),
                    Err(e) => {
                        tracing::warn!(pipeline = p.name(), slot = %slot, step = step.kind(), error = %e, "step failed");
                        (false, e, serde_json::Value::Null, false)
                    }
                };
                a.steps.push(StepRecord {
                    index: i,
                    kind: step.kind().into(),
                    started_at: started,
                    finished_at: finished,
                    ok,
                    summary: summary.clone(),
                    outputs,
                    stop,
                });
                if !ok {
                    a.status = Status::Failed;
                    a.error = Some(format!("step {} ({}): {summary}", i + 1, step.kind()));
                    a.finished_at = Some(finished);
                    self.runs.update(&a).await?;
                    return Ok(Some(a));
                }
                a.lease_until = finished + lease;
                self.runs.update(&a).await?;
                hrloop_lake::fault::hit("after_step");
                if stop {
                    break;
                }
            }
        }
        a.status = Status::Succeeded;
        a.finished_at = Some(self.clock.now());
        self.runs.update(&a).await?;
        tracing::info!(pipeline = p.name(), slot = %slot, attempt = n, "run succeeded");
        Ok(Some(a))
    }

    /// Each pipeline's state.
    pub async fn status(&self) -> Result<Vec<PipelineStatus>> {
        let now = self.clock.now();
        let all = self.runs.attempts(None).await?;
        Ok(self.pipelines.iter().map(|p| pipeline_status(p, &all, now)).collect())
    }
}

/// A pipeline's state from its attempts.
pub fn pipeline_status(p: &Pipeline, all: &[Attempt], now: DateTime<Utc>) -> PipelineStatus {
    let mut latest: BTreeMap<(DateTime<Utc>, bool), &Attempt> = BTreeMap::new();
    for a in all.iter().filter(|a| a.pipeline == p.name()) {
        latest.insert((a.slot, a.kind == AttemptKind::Manual), a);
    }
    let mut runs = BTreeMap::new();
    for a in latest.values() {
        *runs.entry(a.status.as_str().to_string()).or_insert(0) += 1;
    }
    let last =
        latest.values().filter(|a| a.status != Status::Skipped).max_by_key(|a| a.finished_at.unwrap_or(a.claimed_at));
    PipelineStatus {
        name: p.name().into(),
        description: p.file.description.clone(),
        trigger: p.describe_trigger(),
        catch_up: p.file.catch_up,
        next_slot: p.next_slot(now),
        last_slot: last.map(|a| a.slot),
        last_status: last.map(|a| a.status),
        last_error: last.and_then(|a| a.error.clone()),
        last_success: latest.values().filter(|a| a.status == Status::Succeeded).filter_map(|a| a.finished_at).max(),
        runs,
    }
}

/// The days hires reach their milestones.
pub async fn milestone_dates(lake: &Lake) -> Result<Vec<NaiveDate>> {
    let data = hrloop_models::data::LakeData::hires_and_outcomes(lake).await?;
    let mut out: Vec<NaiveDate> =
        data.hires.iter().flat_map(|h| Milestone::ALL.into_iter().map(move |m| m.date_after(h.hire_date))).collect();
    out.sort();
    out.dedup();
    Ok(out)
}
