//! KPI metrics computed from the store (lake, registry, run records, batch reports), refreshed
//! in the background and exported beside the serving metrics at `/metrics`.
//!
//! Every metric is listed in [`CATALOG`] (name, type, labels, meaning): the exporter refuses a
//! name that is not there, and `docs/metrics.md` is generated from it (a test keeps the two
//! equal). Label values come from small fixed sets (milestones, arms, job families, model
//! names and versions, pipeline names, catalog fields); never a person.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use hrloop_core::{Milestone, Route, Source};
use hrloop_lake::polars::prelude::{
    Column, DataFrame, DataType, IntoLazy, JoinArgs, JoinType, SortMultipleOptions, StringChunked, col, lit,
};
use hrloop_lake::query::at_or_after;
use hrloop_lake::rows::{decisions as d, feedback as f, hires as h, outcomes as o};
use hrloop_lake::{Lake, Table, collect};
use hrloop_models::Registry;
use hrloop_models::registry::{Action, Alias};
use hrloop_scheduler::{Pipeline, Runs, Status};
use object_store::ObjectMeta;
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// One documented metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: MetricType,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn doc(name: &'static str, kind: MetricType, labels: &'static [&'static str], help: &'static str) -> MetricDoc {
    MetricDoc { name, kind, labels, help }
}

use MetricType::{COUNTER, GAUGE, HISTOGRAM};

/// Every metric hrloop exports.
pub const CATALOG: &[MetricDoc] = &[
    // Serving (counted live by the server process).
    doc(
        "hrloop_rank_requests_total",
        COUNTER,
        &["arm", "status"],
        "Rank requests by serving arm (champion, challenger) and outcome (ok, error).",
    ),
    doc("hrloop_rank_latency_seconds", HISTOGRAM, &["arm"], "Rank request latency by serving arm."),
    doc(
        "hrloop_review_routes_total",
        COUNTER,
        &["reason"],
        "Ranked candidates by route: auto, or the reason a human reviews them (out_of_range, edge_case, low_confidence, random_audit).",
    ),
    doc(
        "hrloop_shadow_dropped_total",
        COUNTER,
        &[],
        "Shadow scorings skipped because the challenger could not keep up (shadow work only uses idle CPU).",
    ),
    doc(
        "hrloop_decision_log_backlog_seconds",
        GAUGE,
        &[],
        "Seconds since the oldest closed decision-log segment not yet moved into lake/decisions was closed (0: all moved). Moves wait for a quiet moment, at most --lake-max-delay-seconds.",
    ),
    doc(
        "hrloop_http_open_connections",
        GAUGE,
        &[],
        "HTTP connections the server holds now (at most --max-connections; idle ones close after --header-timeout-seconds).",
    ),
    doc(
        "hrloop_http_connections_refused_total",
        COUNTER,
        &[],
        "Connections answered 503 because the server already held --max-connections, all of them busy.",
    ),
    doc(
        "hrloop_http_connections_evicted_total",
        COUNTER,
        &[],
        "Idle connections closed to make room for a new one at --max-connections (the one idle longest, after a second or more).",
    ),
    // HR KPIs.
    doc(
        "hrloop_time_to_hire_seconds",
        HISTOGRAM,
        &["job_family"],
        "Time from a requisition's first application to its hire's first day (buckets 7 to 365 days), for hires in the last 365 days; a snapshot: use without rate(), divide by 86400 for days.",
    ),
    doc(
        "hrloop_logging_completeness_ratio",
        GAUGE,
        &[],
        "Record-keeping (EU AI Act Art. 12): share of the rankings served in the newest check's window (30 days) that name a registered model version, arm, route and score, with a reason code on every override (pipeline step logging_completeness).",
    ),
    doc(
        "hrloop_logged_rankings",
        GAUGE,
        &["state"],
        "Rankings in the newest record-keeping check's window, complete or incomplete.",
    ),
    doc(
        "hrloop_orphan_feedback_rows",
        GAUGE,
        &[],
        "Recruiter feedback rows of the newest record-keeping check's window that join no served ranking.",
    ),
    doc(
        "hrloop_recruiter_overrides",
        GAUGE,
        &["model", "job_family"],
        "Recruiter overrides (a candidate chosen over one the model ranked higher) on the rankings in the newest override-insights report's window (pipeline step override_insights, `hrloop insights overrides`).",
    ),
    doc(
        "hrloop_override_feature_difference_units",
        GAUGE,
        &["model", "job_family", "feature"],
        "In those overrides: mean of the chosen candidate's feature minus the model's pick's, in the feature's own units (positive: recruiters chose more of it).",
    ),
    doc(
        "hrloop_override_feature_margin_units",
        GAUGE,
        &["model", "job_family", "feature"],
        "Half-width of the 95 % interval of hrloop_override_feature_difference_units, clustered by requisition (a difference within its margin may be chance).",
    ),
    doc(
        "hrloop_quality_of_hire_rating",
        GAUGE,
        &["milestone"],
        "Mean performance rating (1-5) of hires at each milestone, for outcomes reported in the last 365 days.",
    ),
    doc(
        "hrloop_retention_ratio",
        GAUGE,
        &["milestone", "source", "model_version"],
        "Share of hires still employed at the milestone, among hires whose outcome is known; source is history (imported decisions), champion or challenger (the arm that ranked them).",
    ),
    doc(
        "hrloop_feedback_completeness_ratio",
        GAUGE,
        &["milestone"],
        "Share of due 3/6/12/24-month outcomes that arrived (leavers count as known).",
    ),
    doc(
        "hrloop_feedback_completeness_target_ratio",
        GAUGE,
        &["milestone"],
        "HR's completeness target per milestone (0.90 at 6 months, 0.95 at 12).",
    ),
    doc(
        "hrloop_recruiter_override_ratio",
        GAUGE,
        &["arm", "model_version"],
        "Share of recruiter feedback in the last 30 days that went against the model's suggestion, by the arm that ranked the candidate.",
    ),
    doc(
        "hrloop_recruiter_feedback_rows",
        GAUGE,
        &["arm"],
        "Recruiter feedback rows in the last 30 days on candidates hrloop ranked, by arm.",
    ),
    doc(
        "hrloop_human_review_ratio",
        GAUGE,
        &["arm"],
        "Share of candidates ranked in the last 30 days that were routed to a human, by arm.",
    ),
    // Fairness and models.
    doc(
        "hrloop_adverse_impact_ratio",
        GAUGE,
        &["model", "alias", "version", "attribute"],
        "Lowest over highest selection rate in the model's top k per protected attribute, on its holdout (four-fifths rule: below 0.8 is adverse impact).",
    ),
    doc(
        "hrloop_model_roc_auc_ratio",
        GAUGE,
        &["model", "alias", "version"],
        "Holdout ROC AUC of the champion and challenger.",
    ),
    doc(
        "hrloop_model_ndcg_ratio",
        GAUGE,
        &["model", "alias", "version"],
        "Holdout NDCG@k per requisition of the champion and challenger.",
    ),
    doc(
        "hrloop_model_calibration_error_ratio",
        GAUGE,
        &["model", "alias", "version"],
        "Holdout expected calibration error of the champion and challenger.",
    ),
    doc(
        "hrloop_model_info",
        GAUGE,
        &["model", "alias", "version"],
        "1 for the version each alias (champion, challenger) points at.",
    ),
    doc(
        "hrloop_experiment_verdicts_total",
        COUNTER,
        &["model", "decision"],
        "Stored experiment verdicts: promote, rollback, keep_running, inconclusive, expired (no decision by max_days + decide_within_days: challenger retired).",
    ),
    doc(
        "hrloop_model_alias_changes_total",
        COUNTER,
        &["model", "action", "reason_class"],
        "Alias changes in the registry: promote, rollback, retire; reason_class verdict (an experiment decided), expired (an undecided experiment retired its challenger) or manual.",
    ),
    // Data.
    doc(
        "hrloop_ingest_rows_total",
        COUNTER,
        &["table", "outcome"],
        "Rows ingested per table: accepted or quarantined.",
    ),
    doc(
        "hrloop_data_completeness_ratio",
        GAUGE,
        &["table", "field"],
        "Completeness of each critical field in the newest batch of each table.",
    ),
    // Operations.
    doc(
        "hrloop_pipeline_runs_total",
        COUNTER,
        &["pipeline", "status"],
        "Pipeline slots by the status of their latest attempt: succeeded, failed, running, skipped.",
    ),
    doc(
        "hrloop_pipeline_last_success_timestamp_seconds",
        GAUGE,
        &["pipeline"],
        "When each pipeline last succeeded (Unix time).",
    ),
    doc(
        "hrloop_pipeline_interval_seconds",
        GAUGE,
        &["pipeline"],
        "Each cron pipeline's cadence: the time between its next two slots.",
    ),
    doc("hrloop_pipeline_failing", GAUGE, &["pipeline"], "1 when the pipeline's latest attempt failed."),
    // The loop itself.
    doc(
        "hrloop_loop_time_to_impact_seconds",
        GAUGE,
        &["model"],
        "Time from the newest outcome the champion was trained on arriving in the lake to the champion going live.",
    ),
    doc(
        "hrloop_loop_champion_improvement_ratio",
        GAUGE,
        &["model"],
        "Holdout AUC of the current champion minus that of the champion before it.",
    ),
    doc(
        "hrloop_kpi_refresh_timestamp_seconds",
        GAUGE,
        &[],
        "When these KPIs were last computed from the store (Unix time).",
    ),
];

/// Families under construction, checked against the catalog.
#[derive(Default)]
struct Out {
    families: BTreeMap<&'static str, Vec<Metric>>,
}

fn labels(doc: &MetricDoc, values: &[&str]) -> Vec<LabelPair> {
    assert_eq!(doc.labels.len(), values.len(), "{}: label values match the catalog", doc.name);
    doc.labels
        .iter()
        .zip(values)
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn find(name: &str) -> &'static MetricDoc {
    CATALOG.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("metric {name} is not in the catalog"))
}

impl Out {
    fn gauge(&mut self, name: &'static str, label_values: &[&str], v: f64) {
        if !v.is_finite() {
            return;
        }
        let d = find(name);
        let mut m = Metric::from_label(labels(d, label_values));
        let mut g = Gauge::default();
        g.set_value(v);
        m.set_gauge(g);
        self.families.entry(d.name).or_default().push(m);
    }

    fn counter(&mut self, name: &'static str, label_values: &[&str], v: f64) {
        let d = find(name);
        let mut m = Metric::from_label(labels(d, label_values));
        let mut c = Counter::default();
        c.set_value(v);
        m.set_counter(c);
        self.families.entry(d.name).or_default().push(m);
    }

    fn histogram(&mut self, name: &'static str, label_values: &[&str], bounds: &[f64], values: &[f64]) {
        let d = find(name);
        let mut m = Metric::from_label(labels(d, label_values));
        let mut h = Histogram::default();
        h.set_sample_count(values.len() as u64);
        h.set_sample_sum(values.iter().sum());
        h.set_bucket(
            bounds
                .iter()
                .map(|&b| {
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(b);
                    bucket.set_cumulative_count(values.iter().filter(|&&v| v <= b).count() as u64);
                    bucket
                })
                .collect(),
        );
        m.set_histogram(h);
        self.families.entry(d.name).or_default().push(m);
    }

    fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .map(|(name, metrics)| {
                let d = find(name);
                let mut f = MetricFamily::default();
                f.set_name(name.to_string());
                f.set_help(d.help.to_string());
                f.set_field_type(d.kind);
                f.set_metric(metrics);
                f
            })
            .collect()
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

/// Who ranked a candidate: the serving arm and model version, or [`HISTORY`] and
/// [`NO_VERSION`] for imported decisions.
struct Decided {
    source_arm: String,
    version: String,
}

const HISTORY: &str = "history";
const NO_VERSION: &str = "none";
/// The row-number column of scans kept in commit order.
const ROW: &str = "row";

impl Decided {
    fn served(&self) -> bool {
        self.source_arm != HISTORY
    }
}

/// Hires: employee, candidate, requisition, job family, hire date.
type Hired = (String, String, String, String, NaiveDate);

fn text<'a>(df: &'a DataFrame, name: &str) -> hrloop_lake::Result<&'a StringChunked> {
    Ok(df.column(name)?.str()?)
}

/// Every hire.
async fn hires(lake: &Lake) -> hrloop_lake::Result<Vec<Hired>> {
    let df = collect(lake.lazy(Table::Hires).await?.select([
        col(h::EMPLOYEE_ID),
        col(h::CANDIDATE_ID),
        col(h::REQUISITION_ID),
        col(h::JOB_FAMILY),
        col(h::HIRE_DATE).cast(DataType::Int32),
    ]))
    .await?;
    let (emp, cand, req, jf) = (
        text(&df, h::EMPLOYEE_ID)?,
        text(&df, h::CANDIDATE_ID)?,
        text(&df, h::REQUISITION_ID)?,
        text(&df, h::JOB_FAMILY)?,
    );
    let date = df.column(h::HIRE_DATE)?.i32()?;
    Ok((0..df.height())
        .filter_map(|i| {
            Some((
                emp.get(i)?.to_string(),
                cand.get(i)?.to_string(),
                req.get(i)?.to_string(),
                jf.get(i)?.to_string(),
                epoch() + Duration::days(i64::from(date.get(i)?)),
            ))
        })
        .collect())
}

/// Recruiter feedback of the last 30 days (small): requisition, candidate, overrode the model.
async fn recent_feedback(lake: &Lake, since: DateTime<Utc>) -> hrloop_lake::Result<Vec<(String, String, bool)>> {
    let df = collect(lake.lazy_since(Table::Feedback, since).await?.select([
        col(f::REQUISITION_ID),
        col(f::CANDIDATE_ID),
        col(f::OVERRIDES_MODEL),
    ]))
    .await?;
    let (req, cand, ov) =
        (text(&df, f::REQUISITION_ID)?, text(&df, f::CANDIDATE_ID)?, df.column(f::OVERRIDES_MODEL)?.bool()?);
    Ok((0..df.height()).filter_map(|i| Some((req.get(i)?.to_string(), cand.get(i)?.to_string(), ov.get(i)?))).collect())
}

/// A (requisition, candidate) pair.
type Pair = (String, String);

/// The column the decision scans name each row's file in.
const FILE: &str = "file";

/// What the KPI refresh keeps between runs, so that a refresh reads only the decision files
/// committed since the last one: the decision log is the table that grows with the lake's age
/// (a hundred rows a requisition), while hires, outcomes and the last 30 days of feedback are
/// small and read whole.
///
/// Invariant: after every [`KpiState::refresh`] the families equal a fresh [`compute`] of the
/// same store at the same time (a test grows a store between refreshes and compares both).
/// Anything that is not an append resets the state, and that refresh reads everything: a
/// decision file rewritten or removed (an erasure's rewrite, retention), a new erasure, or the
/// clock going back.
#[derive(Default)]
pub struct KpiState {
    /// Decision files folded in, by location.
    files: BTreeMap<String, ObjectMeta>,
    /// Erased people when the state was built.
    erased: usize,
    /// Every requisition's first decision (µs, any source) and the files that mention it.
    requisitions: HashMap<String, Requisition>,
    /// Served rows (arm → decided at in µs, routed to a human) from `window_from` on.
    recent: BTreeMap<String, Vec<(i64, bool)>>,
    window_from: i64,
    /// Who ranked each wanted pair (hired, or reviewed in the last 30 days): `None` while no
    /// decision names it.
    ranked: HashMap<Pair, Option<Ranked>>,
    /// Decision files opened by the last refresh.
    files_read: usize,
}

#[derive(Default)]
struct Requisition {
    first: Option<i64>,
    files: BTreeSet<String>,
}

/// The row that decides who ranked a pair, and the file it is in.
struct Ranked {
    file: String,
    decided: Decided,
}

impl Ranked {
    /// Whether `self`, a row of a later query or later in the same one, replaces `old`: a
    /// served decision describes the candidate better than imported history; otherwise the
    /// last committed row wins (files sort in commit order, rows of one query come in order).
    fn replaces(&self, old: &Ranked) -> bool {
        match (self.decided.served(), old.decided.served()) {
            (true, false) => true,
            (false, true) => false,
            _ => self.file >= old.file,
        }
    }
}

impl KpiState {
    /// Decision files the last refresh opened (all of them after a reset).
    pub fn files_read(&self) -> usize {
        self.files_read
    }

    /// Fold the decision files committed since the last refresh into the state, for the pairs
    /// `wanted` now and the served rows from `since` on.
    async fn fold_decisions(
        &mut self,
        lake: &Lake,
        wanted: HashSet<Pair>,
        since: DateTime<Utc>,
    ) -> hrloop_lake::Result<()> {
        let listed = lake.list_files(Table::Decisions, None).await?;
        let erased = lake.erased().await?.len();
        let since_us = since.timestamp_micros();
        let listed_now: HashMap<&str, &ObjectMeta> = listed.iter().map(|m| (m.location.as_ref(), m)).collect();
        let appended = erased == self.erased
            && since_us >= self.window_from
            && self.files.iter().all(|(loc, m)| {
                listed_now.get(loc.as_str()).is_some_and(|n| n.size == m.size && n.last_modified == m.last_modified)
            });
        if !appended {
            *self = KpiState { erased, window_from: since_us, ..KpiState::default() };
        }
        let new: Vec<ObjectMeta> =
            listed.iter().filter(|m| !self.files.contains_key(m.location.as_ref())).cloned().collect();

        // Pairs no longer wanted are forgotten; pairs newly wanted are looked up in the files
        // already folded in that mention their requisition, and every wanted pair in the new files.
        self.ranked.retain(|pair, _| wanted.contains(pair));
        let fresh: Vec<Pair> = wanted.iter().filter(|p| !self.ranked.contains_key(*p)).cloned().collect();
        let old: BTreeSet<&String> =
            fresh.iter().filter_map(|(r, _)| self.requisitions.get(r)).flat_map(|r| r.files.iter()).collect();
        let old: Vec<ObjectMeta> = old.into_iter().map(|f| self.files[f].clone()).collect();
        self.ranked.extend(fresh.iter().map(|p| (p.clone(), None)));
        self.offer(lake, &old, &fresh).await?;
        let wanted: Vec<Pair> = wanted.into_iter().collect();
        self.offer(lake, &new, &wanted).await?;
        self.fold_requisitions(lake, &new).await?;
        self.fold_recent(lake, &new, since).await?;
        self.files_read = old.len() + new.len();
        self.files.extend(new.into_iter().map(|m| (m.location.to_string(), m)));
        Ok(())
    }

    /// The first decision on each requisition, and which files mention it.
    async fn fold_requisitions(&mut self, lake: &Lake, files: &[ObjectMeta]) -> hrloop_lake::Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let df = collect(
            lake.lazy_files(Table::Decisions, files, Some(FILE))
                .await?
                .select([col(FILE), col(d::REQUISITION_ID), col(d::DECIDED_AT).cast(DataType::Int64)])
                .group_by([col(FILE), col(d::REQUISITION_ID)])
                .agg([col(d::DECIDED_AT).min()]),
        )
        .await?;
        let (file, req, at) = (text(&df, FILE)?, text(&df, d::REQUISITION_ID)?, df.column(d::DECIDED_AT)?.i64()?);
        for i in 0..df.height() {
            let (Some(file), Some(req)) = (file.get(i), req.get(i)) else { continue };
            let r = self.requisitions.entry(req.to_string()).or_default();
            r.files.insert(file.to_string());
            r.first = match (r.first, at.get(i)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(())
    }

    /// Served rows of `files` from `since` on (arm, decided at, routed to a human); rows that
    /// fell out of the window go.
    async fn fold_recent(
        &mut self,
        lake: &Lake,
        files: &[ObjectMeta],
        since: DateTime<Utc>,
    ) -> hrloop_lake::Result<()> {
        const HUMAN: &str = "human";
        let since_us = since.timestamp_micros();
        for rows in self.recent.values_mut() {
            rows.retain(|(at, _)| *at >= since_us);
        }
        self.window_from = since_us;
        let Some(in_window) = at_or_after(Table::Decisions, since).filter(|_| !files.is_empty()) else {
            return Ok(());
        };
        let df = collect(
            lake.lazy_files(Table::Decisions, files, None)
                .await?
                .filter(col(d::SOURCE).eq(lit(Source::Serving.as_str())).and(col(d::ARM).is_not_null()).and(in_window))
                .select([
                    col(d::ARM),
                    col(d::DECIDED_AT).cast(DataType::Int64),
                    col(d::ROUTE).str().starts_with(lit(Route::HUMAN_PREFIX)).fill_null(lit(false)).alias(HUMAN),
                ]),
        )
        .await?;
        let (arm, at, human) = (text(&df, d::ARM)?, df.column(d::DECIDED_AT)?.i64()?, df.column(HUMAN)?.bool()?);
        for i in 0..df.height() {
            let (Some(arm), Some(at), Some(human)) = (arm.get(i), at.get(i), human.get(i)) else { continue };
            self.recent.entry(arm.to_string()).or_default().push((at, human));
        }
        Ok(())
    }

    /// Offer the rows of `files` that name one of `pairs` as who ranked it.
    /// Join: decisions ⋈ pairs on (requisition, candidate), in commit order.
    async fn offer(&mut self, lake: &Lake, files: &[ObjectMeta], pairs: &[Pair]) -> hrloop_lake::Result<()> {
        if files.is_empty() || pairs.is_empty() {
            return Ok(());
        }
        let (reqs, cands): (Vec<&str>, Vec<&str>) = pairs.iter().map(|(r, c)| (r.as_str(), c.as_str())).unzip();
        let pairs = DataFrame::new(
            reqs.len(),
            vec![Column::new(d::REQUISITION_ID.into(), reqs), Column::new(d::CANDIDATE_ID.into(), cands)],
        )?
        .lazy();
        let on = [col(d::REQUISITION_ID), col(d::CANDIDATE_ID)];
        let df = collect(
            lake.lazy_files(Table::Decisions, files, Some(FILE))
                .await?
                .select([
                    col(FILE),
                    col(d::REQUISITION_ID),
                    col(d::CANDIDATE_ID),
                    col(d::SOURCE),
                    col(d::ARM),
                    col(d::MODEL_VERSION),
                ])
                .with_row_index(ROW, None)
                .join(pairs, on.clone(), on, JoinArgs::new(JoinType::Inner))
                .sort([ROW], SortMultipleOptions::default()),
        )
        .await?;
        let (file, req, cand, src, arm, ver) = (
            text(&df, FILE)?,
            text(&df, d::REQUISITION_ID)?,
            text(&df, d::CANDIDATE_ID)?,
            text(&df, d::SOURCE)?,
            text(&df, d::ARM)?,
            text(&df, d::MODEL_VERSION)?,
        );
        for i in 0..df.height() {
            let (Some(file), Some(r), Some(c)) = (file.get(i), req.get(i), cand.get(i)) else { continue };
            let served = src.get(i) == Some(Source::Serving.as_str()) && arm.get(i).is_some();
            let decided = Decided {
                source_arm: if served { arm.get(i).unwrap_or_default().to_string() } else { HISTORY.into() },
                version: match ver.get(i) {
                    Some(v) if served => v.to_string(),
                    _ => NO_VERSION.into(),
                },
            };
            let offered = Ranked { file: file.to_string(), decided };
            if let Some(slot) = self.ranked.get_mut(&(r.to_string(), c.to_string()))
                && slot.as_ref().is_none_or(|old| offered.replaces(old))
            {
                *slot = Some(offered);
            }
        }
        Ok(())
    }

    /// Who ranked a pair, if a decision names it.
    fn who_ranked(&self, req: &str, cand: &str) -> Option<&Decided> {
        self.ranked.get(&(req.to_string(), cand.to_string()))?.as_ref().map(|r| &r.decided)
    }

    /// Per serving arm, over the rows served in the window: (routed to a human, all).
    fn human_review(&self) -> BTreeMap<&str, (usize, usize)> {
        self.recent
            .iter()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(arm, rows)| (arm.as_str(), (rows.iter().filter(|(_, h)| *h).count(), rows.len())))
            .collect()
    }
}

/// What the HRIS reported about one employee, by milestone: employed, rating, milestone date.
type Reported = BTreeMap<Milestone, (bool, Option<i64>, NaiveDate)>;

/// What the HRIS reported, by employee and milestone; when reported twice, the last committed
/// wins. A milestone hrloop does not know is skipped.
async fn outcomes(lake: &Lake) -> hrloop_lake::Result<HashMap<String, Reported>> {
    let df = collect(
        lake.lazy(Table::Outcomes)
            .await?
            .select([
                col(o::EMPLOYEE_ID),
                col(o::MILESTONE),
                col(o::MILESTONE_DATE).cast(DataType::Int32),
                col(o::EMPLOYED),
                col(o::PERFORMANCE_RATING),
            ])
            .with_row_index(ROW, None)
            .sort([ROW], SortMultipleOptions::default()),
    )
    .await?;
    let (emp, ms) = (text(&df, o::EMPLOYEE_ID)?, text(&df, o::MILESTONE)?);
    let (date, employed, rating) = (
        df.column(o::MILESTONE_DATE)?.i32()?,
        df.column(o::EMPLOYED)?.bool()?,
        df.column(o::PERFORMANCE_RATING)?.i64()?,
    );
    let mut out: HashMap<String, Reported> = HashMap::new();
    for i in 0..df.height() {
        let (Some(e), Some(m), Some(d), Some(x)) = (emp.get(i), ms.get(i), date.get(i), employed.get(i)) else {
            continue;
        };
        let Ok(m) = m.parse::<Milestone>() else { continue };
        let reported = (x, rating.get(i), epoch() + Duration::days(i64::from(d)));
        match out.get_mut(e) {
            Some(known) => {
                known.insert(m, reported);
            }
            None => {
                out.insert(e.to_string(), BTreeMap::from([(m, reported)]));
            }
        }
    }
    Ok(out)
}

/// Compute every KPI from the store as of `now`, reading everything (a fresh
/// [`KpiState`]).
pub async fn compute(lake: &Lake, pipelines: &[Pipeline], now: DateTime<Utc>) -> Result<Vec<MetricFamily>, String> {
    KpiState::default().refresh(lake, pipelines, now).await
}

impl KpiState {
    /// Every KPI from the store as of `now`, opening only the decision files committed since
    /// the last refresh (see [`KpiState`]).
    pub async fn refresh(
        &mut self,
        lake: &Lake,
        pipelines: &[Pipeline],
        now: DateTime<Utc>,
    ) -> Result<Vec<MetricFamily>, String> {
        let e = |e: hrloop_lake::Error| e.to_string();
        // Every table read below comes from one snapshot.
        let lake = &lake.pinned().await.map_err(e)?;
        let mut out = Out::default();
        let year_ago = now - Duration::days(365);
        let month_ago = now - Duration::days(30);

        let hires = hires(lake).await.map_err(e)?;
        let recent_feedback = recent_feedback(lake, month_ago).await.map_err(e)?;
        let wanted: HashSet<Pair> = hires
            .iter()
            .map(|(_, c, r, _, _)| (r.clone(), c.clone()))
            .chain(recent_feedback.iter().map(|(r, c, _)| (r.clone(), c.clone())))
            .collect();
        self.fold_decisions(lake, wanted, month_ago).await.map_err(e)?;

        let bounds: Vec<f64> =
            [7.0, 14.0, 21.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 180.0, 365.0].iter().map(|d| d * 86_400.0).collect();
        let mut tth: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (_, _, req, jf, date) in &hires {
            let hired_at = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            if hired_at < year_ago || hired_at > now {
                continue;
            }
            if let Some(first) =
                self.requisitions.get(req).and_then(|r| r.first).and_then(DateTime::from_timestamp_micros)
            {
                tth.entry(jf.as_str()).or_default().push((hired_at - first).num_seconds().max(0) as f64);
            }
        }
        for (jf, values) in &tth {
            out.histogram("hrloop_time_to_hire_seconds", &[jf], &bounds, values);
        }

        let outcome = outcomes(lake).await.map_err(e)?;
        // Who ranked each hire, looked up once (not once per milestone).
        let ranked_by: Vec<(&str, &str)> = hires
            .iter()
            .map(|(_, cand, req, _, _)| {
                self.who_ranked(req, cand)
                    .map_or((HISTORY, NO_VERSION), |d| (d.source_arm.as_str(), d.version.as_str()))
            })
            .collect();
        for m in Milestone::ALL {
            let ratings: Vec<f64> = outcome
                .values()
                .filter_map(|known| known.get(&m))
                .filter(|(_, r, d)| r.is_some() && d.and_hms_opt(0, 0, 0).is_some_and(|t| t.and_utc() >= year_ago))
                .filter_map(|(_, r, _)| r.map(|r| r as f64))
                .collect();
            if !ratings.is_empty() {
                out.gauge(
                    "hrloop_quality_of_hire_rating",
                    &[m.label()],
                    ratings.iter().sum::<f64>() / ratings.len() as f64,
                );
            }
            // Retention by who ranked the hire.
            let mut by: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
            for ((emp, _, _, _, _), who) in hires.iter().zip(&ranked_by) {
                let Some((employed, _, _)) = outcome.get(emp.as_str()).and_then(|known| known.get(&m)) else {
                    continue;
                };
                let c = by.entry(*who).or_default();
                c.0 += usize::from(*employed);
                c.1 += 1;
            }
            for ((src, ver), (kept, n)) in by {
                out.gauge("hrloop_retention_ratio", &[m.label(), src, ver], kept as f64 / n as f64);
            }
        }

        // Feedback completeness against the targets.
        // From the hires and outcomes already read above (not a second read of both tables).
        let status = {
            use hrloop_core::milestones::{HireRef, OutcomeRef, status};
            let hire_refs: Vec<HireRef<'_>> =
                hires.iter().map(|(emp, _, _, _, date)| HireRef { employee_id: emp, hire_date: *date }).collect();
            let outcome_refs: Vec<OutcomeRef<'_>> = outcome
                .iter()
                .flat_map(|(emp, known)| {
                    known.iter().map(|(m, (employed, _, _))| OutcomeRef {
                        employee_id: emp,
                        milestone: *m,
                        employed: *employed,
                    })
                })
                .collect();
            status(&hire_refs, &outcome_refs, now.date_naive(), 14)
        };
        let status = serde_json::to_value(&status).map_err(|e| e.to_string())?;
        for c in status["completeness"].as_array().into_iter().flatten() {
            let m = c["milestone"].as_str().unwrap_or("?");
            if let Some(v) = c["completeness"].as_f64() {
                out.gauge("hrloop_feedback_completeness_ratio", &[m], v);
            }
            if let Some(t) = c["target"].as_f64() {
                out.gauge("hrloop_feedback_completeness_target_ratio", &[m], t);
            }
        }

        // Recruiter overrides and human review in the last 30 days.
        let mut overrides: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
        for (req, cand, overrode) in &recent_feedback {
            let Some(d) = self.who_ranked(req, cand) else { continue };
            if !d.served() {
                continue;
            }
            let c = overrides.entry((d.source_arm.clone(), d.version.clone())).or_default();
            c.0 += usize::from(*overrode);
            c.1 += 1;
        }
        let mut rows_by_arm: BTreeMap<String, usize> = BTreeMap::new();
        for ((arm, ver), (o, n)) in &overrides {
            out.gauge("hrloop_recruiter_override_ratio", &[arm, ver], *o as f64 / *n as f64);
            *rows_by_arm.entry(arm.clone()).or_default() += n;
        }
        for arm in ["champion", "challenger"] {
            out.gauge("hrloop_recruiter_feedback_rows", &[arm], rows_by_arm.get(arm).copied().unwrap_or(0) as f64);
        }
        for (arm, (h, n)) in self.human_review() {
            out.gauge("hrloop_human_review_ratio", &[arm], h as f64 / n as f64);
        }

        models(lake, &mut out).await?;
        if let Some(r) = hrloop_models::record_keeping::latest_report(lake).await.map_err(|e| e.to_string())? {
            if let Some(share) = r.share {
                out.gauge("hrloop_logging_completeness_ratio", &[], share);
            }
            out.gauge("hrloop_logged_rankings", &["complete"], r.complete as f64);
            out.gauge("hrloop_logged_rankings", &["incomplete"], (r.rankings - r.complete) as f64);
            out.gauge("hrloop_orphan_feedback_rows", &[], r.orphan_feedback as f64);
        }
        data_quality(lake, &mut out).await?;
        pipelines_kpis(lake, pipelines, now, &mut out).await?;
        out.gauge("hrloop_kpi_refresh_timestamp_seconds", &[], now.timestamp() as f64);
        Ok(out.finish())
    }
}

async fn models(lake: &Lake, out: &mut Out) -> Result<(), String> {
    let registry = Registry::new(lake.store().clone());
    let r = |e: hrloop_models::Error| e.to_string();
    for name in registry.names().await.map_err(r)? {
        let state = registry.state(&name).await.map_err(r)?;
        for (alias, version) in [("champion", &state.champion), ("challenger", &state.challenger)] {
            let Some(v) = version else { continue };
            let card = registry.card(&name, v).await.map_err(r)?;
            out.gauge("hrloop_model_info", &[&name, alias, v], 1.0);
            if let Some(auc) = card.metrics.roc_auc {
                out.gauge("hrloop_model_roc_auc_ratio", &[&name, alias, v], auc);
            }
            if let Some(ndcg) = card.metrics.ndcg_at_k {
                out.gauge("hrloop_model_ndcg_ratio", &[&name, alias, v], ndcg);
            }
            out.gauge(
                "hrloop_model_calibration_error_ratio",
                &[&name, alias, v],
                card.metrics.expected_calibration_error,
            );
            for f in card.fairness.iter().filter(|f| !f.attribute.contains(" x ")) {
                if let Some(air) = f.adverse_impact_ratio {
                    out.gauge("hrloop_adverse_impact_ratio", &[&name, alias, v, &f.attribute], air);
                }
            }
        }
        let events = registry.events(&name).await.map_err(r)?;
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for ev in &events {
            let action = match (ev.alias, &ev.action) {
                (_, Action::Rollback) => "rollback",
                (Alias::Challenger, Action::Retire) | (Alias::Champion, Action::Retire) => "retire",
                (Alias::Champion, Action::Promote) => "promote",
                (Alias::Challenger, Action::Promote) => "challenger",
            };
            let class = if ev.reason.starts_with("experiment verdict") {
                "verdict"
            } else if ev.reason.starts_with("experiment expired") {
                "expired"
            } else {
                "manual"
            };
            *counts.entry((action, class)).or_default() += 1;
        }
        for action in ["promote", "rollback", "retire", "challenger"] {
            for class in ["verdict", "expired", "manual"] {
                let n = counts.get(&(action, class)).copied().unwrap_or(0);
                out.counter("hrloop_model_alias_changes_total", &[&name, action, class], n as f64);
            }
        }
        if let Some(report) = hrloop_models::preference::latest_report(lake, &name).await.map_err(r)? {
            // Job families the champion was trained on and its features: fixed sets.
            for g in report.insights.groups.iter().filter(|g| g.reason.is_none()) {
                if !report.champion_families.contains(&g.job_family) {
                    continue;
                }
                out.gauge("hrloop_recruiter_overrides", &[&name, &g.job_family], g.overrides as f64);
                for d in &g.differences {
                    out.gauge("hrloop_override_feature_difference_units", &[&name, &g.job_family, &d.feature], d.mean);
                    if let Some(m) = d.margin {
                        out.gauge("hrloop_override_feature_margin_units", &[&name, &g.job_family, &d.feature], m);
                    }
                }
            }
        }
        let verdicts = hrloop_models::experiment::verdicts(lake, &name, None).await.map_err(r)?;
        for decision in ["promote", "rollback", "keep_running", "inconclusive", "expired"] {
            let n = verdicts.iter().filter(|v| v.decision.as_str() == decision).count();
            out.counter("hrloop_experiment_verdicts_total", &[&name, decision], n as f64);
        }
        // The loop's health: how fast outcomes reach production, and whether champions improve.
        let promotions: Vec<_> =
            events.iter().filter(|e| e.alias == Alias::Champion && e.to_version.is_some()).collect();
        if let Some(last) = promotions.last() {
            let v = last.to_version.as_deref().expect("filtered");
            let card = registry.card(&name, v).await.map_err(r)?;
            let newest_outcome_batch = card
                .training_data
                .files
                .iter()
                .filter(|f| f.path.starts_with("lake/outcomes/"))
                .filter_map(|f| batch_time(&f.path))
                .max();
            if let Some(t) = newest_outcome_batch {
                out.gauge("hrloop_loop_time_to_impact_seconds", &[&name], (last.at - t).num_seconds().max(0) as f64);
            }
            let previous = promotions.iter().rev().skip(1).find_map(|e| e.to_version.as_deref().filter(|p| *p != v));
            if let Some(p) = previous {
                let before = registry.card(&name, p).await.map_err(r)?;
                if let (Some(a), Some(b)) = (card.metrics.roc_auc, before.metrics.roc_auc) {
                    out.gauge("hrloop_loop_champion_improvement_ratio", &[&name], a - b);
                }
            }
        }
    }
    Ok(())
}

/// The time in a lake file's batch id (`part-20260105T120000Z-ab12cd34-0.parquet`).
fn batch_time(path: &str) -> Option<DateTime<Utc>> {
    let name = path.rsplit('/').next()?;
    let stamp = name.strip_prefix("part-")?.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

async fn data_quality(lake: &Lake, out: &mut Out) -> Result<(), String> {
    let mut totals: BTreeMap<(String, &str), f64> = BTreeMap::new();
    let mut newest: HashMap<String, (String, serde_json::Value)> = HashMap::new();
    let reports =
        lake.store().list(&object_store::path::Path::from("reports/ingest")).await.map_err(|e| e.to_string())?;
    for meta in reports {
        let bytes = lake.store().get(&meta.location).await.map_err(|e| e.to_string())?;
        let Ok(r) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let table = r["table"].as_str().unwrap_or("unknown").to_string();
        *totals.entry((table.clone(), "accepted")).or_default() += r["rows_accepted"].as_f64().unwrap_or(0.0);
        *totals.entry((table.clone(), "quarantined")).or_default() += r["rows_quarantined"].as_f64().unwrap_or(0.0);
        let finished = r["finished_at"].as_str().unwrap_or("").to_string();
        let read = r["rows_read"].as_u64().unwrap_or(0);
        if read > 0 && newest.get(&table).is_none_or(|(t, _)| *t < finished) {
            newest.insert(table, (finished, r));
        }
    }
    for table in Table::ALL.iter().filter(|t| **t != Table::Quarantine) {
        for outcome in ["accepted", "quarantined"] {
            let v = totals.get(&(table.name().to_string(), outcome)).copied().unwrap_or(0.0);
            out.counter("hrloop_ingest_rows_total", &[table.name(), outcome], v);
        }
    }
    let known: HashSet<&str> = Table::ALL.iter().flat_map(|t| t.def().fields.iter().map(|f| f.name)).collect();
    for (table, (_, r)) in newest {
        for f in r["fields"].as_array().into_iter().flatten().filter(|f| f["critical"] == true) {
            let field = f["field"].as_str().unwrap_or("");
            // Only catalog field names become label values.
            if let (true, Some(c)) = (known.contains(field), f["completeness"].as_f64()) {
                out.gauge("hrloop_data_completeness_ratio", &[&table, field], c);
            }
        }
    }
    Ok(())
}

async fn pipelines_kpis(lake: &Lake, pipelines: &[Pipeline], now: DateTime<Utc>, out: &mut Out) -> Result<(), String> {
    let attempts = Runs::new(lake.clone()).attempts(None).await.map_err(|e| e.to_string())?;
    for p in pipelines {
        let st = hrloop_scheduler::scheduler::pipeline_status(p, &attempts, now);
        for status in [Status::Succeeded, Status::Failed, Status::Running, Status::Skipped] {
            let n = st.runs.get(status.as_str()).copied().unwrap_or(0);
            out.counter("hrloop_pipeline_runs_total", &[p.name(), status.as_str()], n as f64);
        }
        if let Some(t) = st.last_success {
            out.gauge("hrloop_pipeline_last_success_timestamp_seconds", &[p.name()], t.timestamp() as f64);
        }
        if let Some(next) = p.next_slot(now)
            && let Some(after) = p.next_slot(next)
        {
            out.gauge("hrloop_pipeline_interval_seconds", &[p.name()], (after - next).num_seconds() as f64);
        }
        out.gauge("hrloop_pipeline_failing", &[p.name()], f64::from(u8::from(st.last_status == Some(Status::Failed))));
    }
    Ok(())
}

/// The catalog as a Markdown table (docs/metrics.md).
pub fn catalog_markdown() -> String {
    let mut s = String::from(
        "# Metrics\n\nGenerated from `crates/hrloop-serve/src/kpis.rs` (`CATALOG`); a test keeps this file equal to it.\n\
         Every metric is at `/metrics` of `hrloop serve` / `hrloop up`. KPIs are recomputed from the store every\n\
         `--kpi-refresh-seconds` (60 by default). No label ever holds a person's identifier or value.\n\n\
         | metric | type | labels | meaning |\n| --- | --- | --- | --- |\n",
    );
    for d in CATALOG {
        let kind = match d.kind {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        s.push_str(&format!("| `{}` | {kind} | {} | {} |\n", d.name, d.labels.join(", "), d.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hrloop_core::{Arm, Milestone, RecruiterDecision, ReviewReason};
    use hrloop_lake::rows::decisions::DecisionRow;
    use hrloop_lake::rows::feedback::FeedbackRow;
    use hrloop_lake::rows::hires::HireRow;
    use hrloop_lake::rows::outcomes::OutcomeRow;
    use hrloop_lake::{PartitionedWriter, Row, Tombstone};

    fn at(m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, 10, 0, 0).unwrap()
    }

    async fn write<R: Row>(lake: &Lake, batch: &str, rows: &[R]) {
        let mut w = PartitionedWriter::new(lake, R::TABLE, batch, "test.csv", at(1, 1)).unwrap();
        for r in rows {
            w.push_row(r).unwrap();
        }
        w.commit().await.unwrap();
    }

    /// A decision: served by `arm` at model version `version`, or imported history (`None`).
    fn decision(req: &str, cand: &str, when: DateTime<Utc>, served: Option<(Arm, &str)>, human: bool) -> DecisionRow {
        DecisionRow {
            requisition_id: req.into(),
            candidate_id: cand.into(),
            job_family: "sales".into(),
            decided_at: when,
            source: if served.is_some() { Source::Serving } else { Source::AtsImport },
            stage_reached: None,
            decision: None,
            skills: None,
            features: None,
            decision_id: served.map(|_| format!("d-{req}-{cand}")),
            model_version: served.map(|(_, v)| v.to_string()),
            arm: served.map(|(a, _)| a),
            score: served.map(|_| 0.5),
            route: served.map(|_| if human { Route::Human(ReviewReason::LowConfidence) } else { Route::Auto }),
            shadow_version: None,
            shadow_score: None,
        }
    }

    fn hire(req: &str, cand: &str, date: DateTime<Utc>) -> HireRow {
        HireRow {
            employee_id: format!("e-{cand}"),
            candidate_id: cand.into(),
            requisition_id: req.into(),
            job_family: "sales".into(),
            hire_date: date.date_naive(),
        }
    }

    fn outcome(cand: &str, hired: DateTime<Utc>, employed: bool) -> OutcomeRow {
        OutcomeRow {
            employee_id: format!("e-{cand}"),
            hire_date: hired.date_naive(),
            milestone: Milestone::M3,
            milestone_date: (hired + Duration::days(91)).date_naive(),
            employed,
            performance_rating: employed.then_some(4),
            exit_reason: None,
        }
    }

    fn feedback(req: &str, cand: &str, when: DateTime<Utc>, overrides: bool) -> FeedbackRow {
        FeedbackRow {
            requisition_id: req.into(),
            candidate_id: cand.into(),
            recruiter_id: None,
            decision: RecruiterDecision::Advanced,
            overrides_model: overrides,
            reason_code: None,
            reason_text: None,
            recorded_at: when,
        }
    }

    fn text_of(families: &[MetricFamily]) -> String {
        prometheus::TextEncoder::new().encode_to_string(families).unwrap()
    }

    /// Refresh the kept state and compute afresh; both must say the same. Returns the text and
    /// how many decision files the refresh opened.
    async fn both(state: &mut KpiState, lake: &Lake, now: DateTime<Utc>) -> (String, usize) {
        let kept = text_of(&state.refresh(lake, &[], now).await.unwrap());
        let fresh = text_of(&compute(lake, &[], now).await.unwrap());
        assert_eq!(kept, fresh, "the kept state disagrees with a full recomputation at {now}");
        (kept, state.files_read())
    }

    #[tokio::test]
    async fn a_refresh_reads_only_new_decision_files_and_equals_a_full_recomputation() {
        use Arm::{Challenger, Champion};
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut state = KpiState::default();
        // 1. Imported history on r1, served rankings on r2; one hire from r1 with its 3-month outcome.
        write(&lake, "b1", &[decision("r1", "c1", at(1, 5), None, false), decision("r1", "c2", at(1, 5), None, false)])
            .await;
        let served_r2 = [
            decision("r2", "c3", at(2, 10), Some((Champion, "v1")), false),
            decision("r2", "c4", at(2, 10), Some((Challenger, "v2")), true),
            decision("r2", "c5", at(2, 10), Some((Champion, "v1")), true),
        ];
        write(&lake, "b2", &served_r2).await;
        write(&lake, "h1", &[hire("r1", "c1", at(1, 20))]).await;
        write(&lake, "o1", &[outcome("c1", at(1, 20), true)]).await;
        let (text, read) = both(&mut state, &lake, at(3, 1)).await;
        assert_eq!(read, 2, "the first refresh reads every decision file");
        assert!(
            text.contains(r#"hrloop_retention_ratio{milestone="3m",source="history",model_version="none"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"hrloop_human_review_ratio{arm="champion"} 0.5"#), "{text}");

        // 2. r1/c1 is served later (served beats history); feedback on r2/c4 and a hire of
        // r2/c3, both decided in a file read before: only the new file and the file that
        // mentions r2 are opened.
        write(&lake, "b3", &[decision("r1", "c1", at(2, 20), Some((Challenger, "v2")), false)]).await;
        write(&lake, "f1", &[feedback("r2", "c4", at(3, 2), true), feedback("r2", "c5", at(3, 2), false)]).await;
        write(&lake, "h2", &[hire("r2", "c3", at(2, 25))]).await;
        write(&lake, "o2", &[outcome("c3", at(2, 25), false)]).await;
        let (text, read) = both(&mut state, &lake, at(3, 5)).await;
        assert_eq!(read, 2, "b3 (new) and b2 (mentions r2, whose pairs are newly wanted)");
        assert!(text.contains(r#"source="challenger",model_version="v2"} 1"#), "{text}");
        assert!(text.contains(r#"source="champion",model_version="v1"} 0"#), "{text}");
        assert!(text.contains(r#"hrloop_recruiter_override_ratio{arm="challenger",model_version="v2"} 1"#), "{text}");

        // 3. A file that sorts before b2 (committed order is the listing's) serves r2/c3 again:
        // b2's row is still the last committed, so v1 keeps the hire. Nothing else is new.
        write(&lake, "a0", &[decision("r2", "c3", at(2, 11), Some((Challenger, "v3")), false)]).await;
        let (text, read) = both(&mut state, &lake, at(3, 6)).await;
        assert_eq!(read, 1);
        assert!(!text.contains(r#"model_version="v3""#), "{text}");
        assert!(text.contains(r#"hrloop_human_review_ratio{arm="challenger"} 0.3333333333333333"#), "{text}");
        let (_, read) = both(&mut state, &lake, at(3, 7)).await;
        assert_eq!(read, 0, "nothing new, nothing opened");

        // 4. Thirty days on, r2's served rows leave the human-review window.
        let (text, read) = both(&mut state, &lake, at(3, 15)).await;
        assert_eq!(read, 0);
        assert!(!text.contains(r#"hrloop_human_review_ratio{arm="champion"}"#), "{text}");

        // 5. An erasure starts over: every file is read again, and c1's rows are gone.
        let tombstone = Tombstone {
            id: "e1".into(),
            at: at(3, 16),
            actor: "dpo".into(),
            reason: "request".into(),
            pseudonyms: vec!["c1".into(), "e-c1".into()],
        };
        lake.add_tombstone(&tombstone).await.unwrap();
        let (text, read) = both(&mut state, &lake, at(3, 16)).await;
        assert_eq!(read, 4);
        assert!(!text.contains(r#"hrloop_retention_ratio{milestone="3m",source="challenger""#), "{text}");

        // 6. A removal (retention, erasure) starts over too: the Delta commit that rewrites
        // b1 without c1 and removes b3 (c1's only row) leaves b1's rewrite, b2 and a0.
        let how = hrloop_lake::removal::Removal {
            columns: Some(&["candidate_id"]),
            dry_run: false,
            at: at(3, 17),
            fence: false,
        };
        lake.remove_rows(Table::Decisions, &how, |b| {
            let c =
                b.column_by_name("candidate_id").unwrap().as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
            c.iter().map(|v| v == Some("c1")).collect()
        })
        .await
        .unwrap();
        let (_, read) = both(&mut state, &lake, at(3, 17)).await;
        assert_eq!(read, 3);
    }

    #[test]
    fn names_follow_the_convention_and_are_unique() {
        // Base units only (promtool lints "days"): durations in seconds.
        // Counts of a domain object are named after it (_rows, _connections, _overrides, _rankings); a
        // value in the unit of the feature it is about ends in _units.
        let units = [
            "_seconds",
            "_ratio",
            "_rating",
            "_info",
            "_rows",
            "_total",
            "_failing",
            "_connections",
            "_overrides",
            "_units",
            "_rankings",
        ];
        let mut seen = HashSet::new();
        for d in CATALOG {
            assert!(d.name.starts_with("hrloop_"), "{}", d.name);
            assert!(units.iter().any(|u| d.name.ends_with(u)), "{} lacks a unit suffix", d.name);
            assert_eq!(d.name.ends_with("_total"), d.kind == MetricType::COUNTER, "{}: _total iff counter", d.name);
            assert!(seen.insert(d.name), "{} twice", d.name);
            for l in d.labels {
                assert!(!["candidate", "employee", "person", "name", "email"].iter().any(|p| l.contains(p)), "{l}");
            }
        }
    }

    #[test]
    fn docs_metrics_md_is_generated_from_the_catalog() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md");
        let want = catalog_markdown();
        if std::env::var("HRLOOP_BLESS").is_ok() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/metrics.md is out of date: run HRLOOP_BLESS=1 cargo test -p hrloop-serve docs_metrics"
        );
    }

    #[test]
    fn batch_times_come_from_file_names() {
        let t = batch_time("lake/outcomes/milestone=3m/month=2025-01/part-20260105T120000Z-ab12cd34-0.parquet");
        assert_eq!(t.unwrap().to_rfc3339(), "2026-01-05T12:00:00+00:00");
        assert!(batch_time("lake/decisions/month=2025-01/part-serve-abc-0.parquet").is_none());
    }
}
