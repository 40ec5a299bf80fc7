//! The pipeline file format (`pipelines/*.toml`, format_version 1): a trigger, a catch-up
//! policy, retries, and ordered steps.
//!
//! ```toml
//! format_version = 1
//! name = "weekly-retrain"
//! description = "Ingest the week's outcome exports, retrain, gate, start an experiment"
//! [trigger]
//! cron = "0 3 * * MON"          # minute hour day-of-month month day-of-week
//! timezone = "Europe/Stockholm" # the cron is read in this zone (DST included)
//! [[step]]
//! kind = "train"
//! model = "models/success12m_logistic.toml"
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::Cron;
use hrloop_models::experiment::Policy as ExperimentPolicy;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub format_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub trigger: Trigger,
    /// What to do with slots missed while no scheduler was running.
    #[serde(default)]
    pub catch_up: CatchUp,
    #[serde(default)]
    pub retry: Retry,
    /// A run's claim lasts this long without progress; after that another process may resume
    /// it. Longer than the slowest step.
    #[serde(default = "default_lease_minutes")]
    pub lease_minutes: u32,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

fn default_insight_days() -> i64 {
    90
}

fn default_logging_days() -> i64 {
    30
}

fn default_min_hires() -> usize {
    30
}

fn default_compact_tables() -> Vec<String> {
    vec!["decisions".into()]
}

fn default_small_file_mb() -> u64 {
    8
}

fn default_min_files() -> usize {
    4
}

fn default_lease_minutes() -> u32 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Five-field cron expression (minute hour day-of-month month day-of-week).
    pub cron: Option<String>,
    /// IANA time zone the cron is read in (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Instead of a cron: one slot per day on which a hire reaches a 3/6/12/24-month milestone,
    /// `after_days` later (the HRIS needs time to export).
    #[serde(default)]
    pub milestone_due: bool,
    #[serde(default = "default_after_days")]
    pub after_days: i64,
}

fn utc() -> String {
    "UTC".into()
}

fn default_after_days() -> i64 {
    7
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// After downtime, run only the most recent missed slot; older ones are recorded as
    /// skipped. Right for "retrain on the newest data" jobs.
    #[default]
    Latest,
    /// Run every missed slot, oldest first (at most 100 per tick). Right for jobs whose slots
    /// each do different work.
    All,
    /// Run nothing that was missed; wait for the next slot.
    Skip,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts per slot, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each further one.
    pub backoff_minutes: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self { max_attempts: 3, backoff_minutes: 10 }
    }
}

/// A PromQL guardrail: the query's value must stay within bounds (as in Argo Rollouts'
/// analysis). Evaluated against the step's `prometheus_url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromGuardrail {
    pub name: String,
    pub query: String,
    pub max: Option<f64>,
    pub min: Option<f64>,
}

/// One step. Steps run in order; a failing step fails the run (and it is retried).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Ingest every file in `<store>/inbox/<source>/` not ingested before (by content hash).
    IngestInbox { source: String, mapping: PathBuf },
    /// Outcome completeness per milestone against the 90 % / 95 % targets; with
    /// `fail_below_target` a miss fails the run.
    Validate {
        #[serde(default)]
        fail_below_target: bool,
    },
    /// Train a model spec and register the version (its card holds metrics, fairness, gates).
    /// `weighting` (re-weighting) replaces the spec's own training-row weights for this run.
    Train {
        model: PathBuf,
        #[serde(default)]
        weighting: Option<hrloop_models::weighting::WeightingSpec>,
    },
    /// Stop here (successfully) unless the version trained in this run passed its gates.
    Gate,
    /// Make the version trained in this run the challenger (20 % A/B or shadow). A running
    /// experiment is left to reach its verdict unless `replace_running`.
    StartExperiment {
        #[serde(default)]
        replace_running: bool,
    },
    /// Judge the running experiment; with `act`, promote or retire the challenger as the
    /// verdict says.
    AnalyseExperiment {
        model: String,
        #[serde(default)]
        act: bool,
        #[serde(default)]
        policy: ExperimentPolicy,
        prometheus_url: Option<String>,
        #[serde(default, rename = "guardrail")]
        guardrails: Vec<PromGuardrail>,
    },
    /// Re-judge every version on the matured outcomes of the hires it ranked (and shadow pairs
    /// on the same hires); flag a champion whose hires do significantly worse than the previous
    /// champion's, and with `act` roll it back.
    Rejudge {
        model: String,
        #[serde(default)]
        act: bool,
        /// Labelled hires each of the two champions needs before they are compared.
        #[serde(default = "default_min_hires")]
        min_hires: usize,
    },
    /// Refit the champion's calibration on the newest matured outcomes.
    Calibrate { model: String },
    /// What recruiters weigh differently from `model`'s champion, from their overrides on the
    /// rankings served in the last `days` days: the report of `hrloop insights overrides`,
    /// stored under `reports/insights/overrides/<model>/`, whose numbers the KPIs export.
    OverrideInsights {
        model: String,
        #[serde(default = "default_insight_days")]
        days: i64,
    },
    /// Record-keeping (EU AI Act Art. 12): the share of the rankings served in the last `days`
    /// days that join to a registered model version, arm, route and score, with a reason code
    /// on every override; stored under `reports/record-keeping/`, exported by the KPIs.
    LoggingCompleteness {
        #[serde(default = "default_logging_days")]
        days: i64,
    },
    /// Delete what the retention policy says has aged out.
    Purge { policy: PathBuf },
    /// Merge each partition's small files (the decision mover writes one every few seconds of
    /// serving) into bigger ones, one Delta commit per table; rows and older versions stay.
    Compact {
        #[serde(default = "default_compact_tables")]
        tables: Vec<String>,
        /// Files smaller than this many MiB are merged...
        #[serde(default = "default_small_file_mb")]
        small_file_mb: u64,
        /// ...once a partition has at least this many.
        #[serde(default = "default_min_files")]
        min_files: usize,
    },
    /// Train every listed spec (they must share a label, or their AUCs say nothing); the best
    /// holdout AUC that passes its gates becomes challenger. With `serve_as`, every spec is
    /// trained as a version of that (served) model, so whichever family wins competes with
    /// its champion; without it, each spec registers under its own name.
    FamilySearch {
        models: Vec<PathBuf>,
        #[serde(default)]
        serve_as: Option<String>,
    },
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::IngestInbox { .. } => "ingest_inbox",
            Step::Validate { .. } => "validate",
            Step::Train { .. } => "train",
            Step::Gate => "gate",
            Step::StartExperiment { .. } => "start_experiment",
            Step::AnalyseExperiment { .. } => "analyse_experiment",
            Step::Rejudge { .. } => "rejudge",
            Step::Calibrate { .. } => "calibrate",
            Step::OverrideInsights { .. } => "override_insights",
            Step::LoggingCompleteness { .. } => "logging_completeness",
            Step::Purge { .. } => "purge",
            Step::Compact { .. } => "compact",
            Step::FamilySearch { .. } => "family_search",
        }
    }
}

/// A loaded, checked pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub file: PipelineFile,
    pub path: PathBuf,
    schedule: Schedule,
}

#[derive(Debug, Clone)]
enum Schedule {
    Cron { cron: Box<Cron>, tz: Tz },
    MilestoneDue { after_days: i64 },
}

impl Pipeline {
    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pipeline> {
        let bad = |reason: String| Error::Pipeline { path: path.display().to_string(), reason };
        let file: PipelineFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {} is not supported (this hrloop reads {FORMAT_VERSION})",
                file.format_version
            )));
        }
        if file.name.is_empty() || !file.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(bad(format!("name {:?} must be letters, digits, - or _", file.name)));
        }
        if file.steps.is_empty() {
            return Err(bad("a pipeline needs at least one [[step]]".into()));
        }
        if file.retry.max_attempts == 0 {
            return Err(bad("retry.max_attempts must be at least 1".into()));
        }
        let t = &file.trigger;
        let schedule = match (&t.cron, t.milestone_due) {
            (Some(expr), false) => {
                let cron = Cron::from_str(expr).map_err(|e| bad(format!("trigger.cron {expr:?}: {e}")))?;
                let tz: Tz = t
                    .timezone
                    .parse()
                    .map_err(|_| bad(format!("trigger.timezone {:?} is not an IANA time zone", t.timezone)))?;
                Schedule::Cron { cron: Box::new(cron), tz }
            }
            (None, true) => Schedule::MilestoneDue { after_days: t.after_days },
            _ => return Err(bad("trigger: give either cron = \"...\" or milestone_due = true".into())),
        };
        for (i, step) in file.steps.iter().enumerate() {
            let needs_train = matches!(step, Step::Gate | Step::StartExperiment { .. });
            if needs_train && !file.steps[..i].iter().any(|s| matches!(s, Step::Train { .. })) {
                return Err(bad(format!("step {} ({}) needs a train step before it", i + 1, step.kind())));
            }
        }
        Ok(Pipeline { file, path: path.to_path_buf(), schedule })
    }

    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Pipeline { path: path.display().to_string(), reason: e.to_string() })?;
        Pipeline::parse(&text, path)
    }

    /// Every `*.toml` in `dir`, by name; names must be unique.
    pub fn load_dir(dir: &Path) -> Result<Vec<Pipeline>> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::Pipeline { path: dir.display().to_string(), reason: e.to_string() })?;
        let mut out: Vec<Pipeline> = Vec::new();
        let mut paths: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
        paths.sort();
        for p in paths {
            let pipeline = Pipeline::load(&p)?;
            if let Some(other) = out.iter().find(|o| o.name() == pipeline.name()) {
                return Err(Error::Pipeline {
                    path: p.display().to_string(),
                    reason: format!("name {:?} is also used by {}", pipeline.name(), other.path.display()),
                });
            }
            out.push(pipeline);
        }
        Ok(out)
    }

    /// The trigger in words.
    pub fn describe_trigger(&self) -> String {
        match &self.schedule {
            Schedule::Cron { cron, tz } => {
                format!("cron \"{}\" ({tz})", cron.pattern)
            }
            Schedule::MilestoneDue { after_days } => {
                format!("{after_days} days after a hire reaches 3, 6, 12 or 24 months")
            }
        }
    }

    pub fn is_milestone_triggered(&self) -> bool {
        matches!(self.schedule, Schedule::MilestoneDue { .. })
    }

    /// Slots in `(after, until]`, oldest first, at most `limit`. `milestone_dates` are the
    /// days hires reach their milestones (only used by milestone-triggered pipelines).
    pub fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        milestone_dates: &[NaiveDate],
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        match &self.schedule {
            Schedule::Cron { cron, tz } => {
                let mut t = after.with_timezone(tz);
                while out.len() < limit {
                    let Ok(next) = cron.find_next_occurrence(&t, false) else { break };
                    let next_utc = next.with_timezone(&Utc);
                    if next_utc > until {
                        break;
                    }
                    out.push(next_utc);
                    t = next;
                }
            }
            Schedule::MilestoneDue { after_days } => {
                let mut days: Vec<DateTime<Utc>> = milestone_dates
                    .iter()
                    .filter_map(|d| d.checked_add_signed(chrono::Duration::days(*after_days)))
                    .filter_map(|d| d.and_hms_opt(6, 0, 0))
                    .map(|t| t.and_utc())
                    .filter(|t| *t > after && *t <= until)
                    .collect();
                days.sort();
                days.dedup();
                out.extend(days.into_iter().take(limit));
            }
        }
        out
    }

    /// The next slot after `now` (cron pipelines only).
    pub fn next_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.schedule {
            Schedule::Cron { cron, tz } => {
                cron.find_next_occurrence(&now.with_timezone(tz), false).ok().map(|t| t.with_timezone(&Utc))
            }
            Schedule::MilestoneDue { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline> {
        Pipeline::parse(text, Path::new("p.toml"))
    }

    const HEAD: &str = "format_version = 1\nname = \"p\"\n";

    #[test]
    fn cron_slots_follow_the_time_zone_across_daylight_saving() {
        let p = parse(&format!(
            "{HEAD}[trigger]\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Stockholm\"\n[[step]]\nkind = \"validate\"\n"
        ))
        .unwrap();
        let from: DateTime<Utc> = "2026-03-27T12:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2026-03-31T12:00:00Z".parse().unwrap();
        let slots: Vec<String> = p.slots(from, until, &[], 10).iter().map(|t| t.to_rfc3339()).collect();
        // 03:00 in Stockholm is 02:00 UTC in winter (CET) and 01:00 UTC from 29 March (CEST).
        assert_eq!(
            slots,
            [
                "2026-03-28T02:00:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-30T01:00:00+00:00",
                "2026-03-31T01:00:00+00:00"
            ]
        );
    }

    #[test]
    fn milestone_slots_are_days_after_hires_reach_a_milestone() {
        let p =
            parse(&format!("{HEAD}[trigger]\nmilestone_due = true\nafter_days = 7\n[[step]]\nkind = \"validate\"\n"))
                .unwrap();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let dates = [d("2026-01-10"), d("2026-01-10"), d("2026-02-01"), d("2026-05-01")];
        let slots =
            p.slots("2026-01-01T00:00:00Z".parse().unwrap(), "2026-03-01T00:00:00Z".parse().unwrap(), &dates, 10);
        let slots: Vec<String> = slots.iter().map(|t| t.to_rfc3339()).collect();
        assert_eq!(slots, ["2026-01-17T06:00:00+00:00", "2026-02-08T06:00:00+00:00"]);
    }

    #[test]
    fn bad_pipelines_are_refused_with_the_reason() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        assert!(
            err(&format!("{HEAD}[trigger]\ncron = \"61 * * * *\"\n[[step]]\nkind = \"validate\"\n"))
                .contains("trigger.cron")
        );
        assert!(
            err(&format!(
                "{HEAD}[trigger]\ncron = \"0 3 * * *\"\ntimezone = \"Mars/Olympus\"\n[[step]]\nkind = \"validate\"\n"
            ))
            .contains("not an IANA time zone")
        );
        assert!(err(&format!("{HEAD}[trigger]\n[[step]]\nkind = \"validate\"\n")).contains("either cron"));
        assert!(
            err(&format!("{HEAD}[trigger]\ncron = \"0 3 * * *\"\n[[step]]\nkind = \"gate\"\n"))
                .contains("needs a train step")
        );
        assert!(
            err(&format!("{HEAD}[trigger]\ncron = \"0 3 * * *\"\n[[step]]\nkind = \"teleport\"\n"))
                .contains("teleport")
        );
        assert!(
            err(&format!(
                "{HEAD}[trigger]\ncron = \"0 3 * * *\"\n[[step]]\nkind = \"train\"\nmodel = \"m.toml\"\ncolour = 1\n"
            ))
            .contains("colour")
        );
        assert!(
            err("format_version = 2\nname = \"p\"\n[trigger]\ncron = \"0 3 * * *\"\n[[step]]\nkind = \"gate\"\n")
                .contains("format_version 2")
        );
    }

    #[test]
    fn the_shipped_pipelines_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
        let all = Pipeline::load_dir(&dir).unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        for want in [
            "daily-calibration",
            "daily-experiment-analysis",
            "weekly-retrain",
            "milestone-ingestion",
            "retention-purge",
            "lake-compaction",
            "daily-override-insights",
            "daily-logging-completeness",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }
}
