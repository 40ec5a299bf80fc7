//! Record-keeping (EU AI Act Article 12): is every served ranking logged well enough to be
//! traced? A ranking (one `decision_id`) is complete when every candidate row of it names a
//! registered model version, the arm that served it, its route (automatic or the reason a
//! person reviewed it) and its score, and when a recruiter who went against the model on its
//! requisition gave a reason code for it. Recruiter feedback that joins no served
//! ranking at all is counted apart: a human decision whose ranking cannot be found.
//!
//! The `logging_completeness` pipeline step stores a [`LoggingReport`] daily; the KPIs export its
//! share as `hrloop_logging_completeness_ratio`, and an alert fires below 99 %.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::{decisions as d, feedback as f};
use hrloop_lake::{Lake, Table, collect};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::{Error, Registry, Result};

/// The share of complete rankings below which the alert fires.
pub const TARGET: f64 = 0.99;

/// What a ranking can lack, as reported.
pub const NO_DECISION_ID: &str = "no decision id";
pub const NO_MODEL_VERSION: &str = "no model version";
pub const UNKNOWN_MODEL_VERSION: &str = "model version not in the registry";
pub const NO_ARM: &str = "no arm";
pub const NO_ROUTE: &str = "no route";
pub const NO_SCORE: &str = "no score";
pub const OVERRIDE_WITHOUT_REASON: &str = "override without a reason code";

/// The record-keeping check of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggingReport {
    pub at: DateTime<Utc>,
    /// Rankings served at or after this instant are checked.
    pub since: DateTime<Utc>,
    pub rankings: usize,
    pub complete: usize,
    /// complete / rankings; None without rankings.
    pub share: Option<f64>,
    /// Rankings lacking each thing (a ranking can lack several).
    pub gaps: BTreeMap<String, usize>,
    /// Feedback rows recorded in the window.
    pub feedback: usize,
    /// Of those, rows whose (requisition, candidate) no served ranking holds.
    pub orphan_feedback: usize,
    /// Up to ten decision ids of incomplete rankings, to start looking from.
    pub examples: Vec<String>,
}

/// One served candidate row, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRow {
    pub decision_id: Option<String>,
    pub requisition: String,
    pub candidate: String,
    pub model_version: Option<String>,
    pub arm: Option<String>,
    pub route: Option<String>,
    pub score: Option<f64>,
}

/// One feedback row: (requisition, candidate), whether it went against the model, its reason
/// code, and whether it was recorded in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedFeedback {
    pub requisition: String,
    pub candidate: String,
    pub overrides: bool,
    pub reason: Option<String>,
    pub in_window: bool,
}

/// The check itself (no lake): `rows` are the window's served rows, `served_anywhere` every
/// (requisition, candidate) any served ranking holds, `registered` the versions the registry
/// knows ("name/vN").
pub fn check(
    rows: &[LoggedRow],
    feedback: &[LoggedFeedback],
    served_anywhere: &BTreeSet<(String, String)>,
    registered: &BTreeSet<String>,
    at: DateTime<Utc>,
    since: DateTime<Utc>,
) -> LoggingReport {
    // Per requisition: (went against the model, gave a reason). The reason of an override may
    // sit on either side of it (usually on the rejection of the model's pick).
    let mut overrides: HashMap<&str, (bool, bool)> = HashMap::new();
    for fb in feedback.iter().filter(|fb| fb.overrides) {
        let o = overrides.entry(fb.requisition.as_str()).or_default();
        o.0 = true;
        o.1 |= fb.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
    }
    // Gaps per ranking; a row without a decision id is a ranking of its own.
    let mut rankings: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let key = r.decision_id.clone().unwrap_or_else(|| format!("(row {i} of {}, no decision id)", r.requisition));
        let gaps = rankings.entry(key).or_default();
        let mut lacks = |missing: bool, gap: &'static str| {
            if missing {
                gaps.insert(gap);
            }
        };
        lacks(r.decision_id.is_none(), NO_DECISION_ID);
        lacks(r.model_version.is_none(), NO_MODEL_VERSION);
        lacks(r.model_version.as_ref().is_some_and(|v| !registered.contains(v)), UNKNOWN_MODEL_VERSION);
        lacks(r.arm.is_none(), NO_ARM);
        lacks(r.route.is_none(), NO_ROUTE);
        lacks(r.score.is_none(), NO_SCORE);
        lacks(overrides.get(r.requisition.as_str()) == Some(&(true, false)), OVERRIDE_WITHOUT_REASON);
    }
    let mut gaps: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples = Vec::new();
    for (id, lacking) in &rankings {
        if !lacking.is_empty() && examples.len() < 10 {
            examples.push(id.clone());
        }
        for g in lacking {
            *gaps.entry((*g).to_string()).or_default() += 1;
        }
    }
    let complete = rankings.values().filter(|g| g.is_empty()).count();
    let recent: Vec<&LoggedFeedback> = feedback.iter().filter(|fb| fb.in_window).collect();
    let orphan_feedback =
        recent.iter().filter(|fb| !served_anywhere.contains(&(fb.requisition.clone(), fb.candidate.clone()))).count();
    LoggingReport {
        at,
        since,
        rankings: rankings.len(),
        complete,
        share: (!rankings.is_empty()).then(|| complete as f64 / rankings.len() as f64),
        gaps,
        feedback: recent.len(),
        orphan_feedback,
        examples,
    }
}

/// Check the rankings served in the last `days` days.
///
/// Query: decisions where source = serving and the arm is not shadow (the challenger's shadow
/// scores are not rankings anyone saw), decided at or after `since` (the month partitions from
/// `since` on); (requisition, candidate) of every served row, for the join of feedback; the
/// whole feedback table (overrides and their reason codes, and the window's rows); the
/// registry's versions.
pub async fn logging_completeness(
    lake: &Lake,
    registry: &Registry,
    now: DateTime<Utc>,
    days: i64,
) -> Result<LoggingReport> {
    let since = now - chrono::Duration::days(days);
    let lake = &lake.pinned().await?;
    let served = crate::recruiting::ranked_rows();
    let df = collect(lake.lazy_since(Table::Decisions, since).await?.filter(served.clone()).select([
        col(d::DECISION_ID),
        col(d::REQUISITION_ID),
        col(d::CANDIDATE_ID),
        col(d::MODEL_VERSION),
        col(d::ARM),
        col(d::ROUTE),
        col(d::SCORE),
    ]))
    .await?;
    let text = |df: &DataFrame, name: &str| -> Result<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let (id, req, cand, ver, arm, route) = (
        text(&df, d::DECISION_ID)?,
        text(&df, d::REQUISITION_ID)?,
        text(&df, d::CANDIDATE_ID)?,
        text(&df, d::MODEL_VERSION)?,
        text(&df, d::ARM)?,
        text(&df, d::ROUTE)?,
    );
    let score = df.column(d::SCORE)?.f64()?;
    let owned = |c: &StringChunked, i: usize| c.get(i).map(str::to_string);
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(r), Some(c)) = (req.get(i), cand.get(i)) else {
            return Err(Error::Data(format!("served decision row {i}: requisition_id or candidate_id is empty")));
        };
        rows.push(LoggedRow {
            decision_id: owned(&id, i),
            requisition: r.to_string(),
            candidate: c.to_string(),
            model_version: owned(&ver, i),
            arm: owned(&arm, i),
            route: owned(&route, i),
            score: score.get(i),
        });
    }
    let all = collect(
        lake.lazy(Table::Decisions)
            .await?
            .filter(served)
            .select([col(d::REQUISITION_ID), col(d::CANDIDATE_ID)])
            .unique(None, UniqueKeepStrategy::Any),
    )
    .await?;
    let (ar, ac) = (text(&all, d::REQUISITION_ID)?, text(&all, d::CANDIDATE_ID)?);
    let served_anywhere: BTreeSet<(String, String)> =
        ar.iter().zip(ac.iter()).filter_map(|(r, c)| Some((r?.to_string(), c?.to_string()))).collect();
    let fb = collect(lake.lazy(Table::Feedback).await?.select([
        col(f::REQUISITION_ID),
        col(f::CANDIDATE_ID),
        col(f::OVERRIDES_MODEL),
        col(f::REASON_CODE),
        col(f::RECORDED_AT).cast(DataType::Int64),
    ]))
    .await?;
    let (fr, fc, reason) = (text(&fb, f::REQUISITION_ID)?, text(&fb, f::CANDIDATE_ID)?, text(&fb, f::REASON_CODE)?);
    let (ov, at) = (fb.column(f::OVERRIDES_MODEL)?.bool()?, fb.column(f::RECORDED_AT)?.i64()?);
    let mut feedback = Vec::with_capacity(fb.height());
    for i in 0..fb.height() {
        let (Some(r), Some(c)) = (fr.get(i), fc.get(i)) else {
            return Err(Error::Data(format!("feedback row {i}: requisition_id or candidate_id is empty")));
        };
        feedback.push(LoggedFeedback {
            requisition: r.to_string(),
            candidate: c.to_string(),
            overrides: ov.get(i).unwrap_or(false),
            reason: owned(&reason, i),
            in_window: at.get(i).is_some_and(|t| t >= since.timestamp_micros()),
        });
    }
    let mut registered = BTreeSet::new();
    for name in registry.names().await? {
        for v in registry.versions(&name).await? {
            registered.insert(format!("{name}/{v}"));
        }
    }
    Ok(check(&rows, &feedback, &served_anywhere, &registered, now, since))
}

const REPORTS: &str = "reports/record-keeping";

/// Store a report under `reports/record-keeping/` (one per instant).
pub async fn store_report(lake: &Lake, r: &LoggingReport) -> Result<String> {
    let path = Path::from(format!("{REPORTS}/{}.json", r.at.format("%Y%m%dT%H%M%S%.3fZ")));
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Data(format!("record-keeping report: {e}")))?;
    if !lake.store().put_new(&path, bytes::Bytes::from(json)).await? {
        return Err(Error::Conflict(format!("{path} exists already: one report per instant")));
    }
    Ok(path.to_string())
}

/// The newest stored report, if any.
pub async fn latest_report(lake: &Lake) -> Result<Option<LoggingReport>> {
    crate::rejudge::newest_record(lake, &Path::from(REPORTS)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::at;

    fn row(id: Option<&str>, cand: &str, version: Option<&str>) -> LoggedRow {
        LoggedRow {
            decision_id: id.map(str::to_string),
            requisition: id.map_or("R0", |d| if d == "d3" { "R3" } else { "R1" }).into(),
            candidate: cand.into(),
            model_version: version.map(str::to_string),
            arm: Some("champion".into()),
            route: Some("auto".into()),
            score: Some(0.5),
        }
    }

    fn fb(cand: &str, overrides: bool, reason: Option<&str>, in_window: bool) -> LoggedFeedback {
        LoggedFeedback {
            requisition: if cand == "e" || cand == "d" { "R3" } else { "R1" }.into(),
            candidate: cand.into(),
            overrides,
            reason: reason.map(str::to_string),
            in_window,
        }
    }

    #[test]
    fn each_gap_makes_its_ranking_incomplete_once() {
        let registered: BTreeSet<String> = ["m/v1".to_string()].into();
        let rows = vec![
            // d1 complete (two rows).
            row(Some("d1"), "a", Some("m/v1")),
            row(Some("d1"), "b", Some("m/v1")),
            // d2: an unregistered version.
            row(Some("d2"), "c", Some("m/v9")),
            // d3: no route on one row, and an override of e without a reason.
            LoggedRow { route: None, ..row(Some("d3"), "d", Some("m/v1")) },
            row(Some("d3"), "e", Some("m/v1")),
            // A row with no decision id at all.
            row(None, "f", Some("m/v1")),
        ];
        let feedback = vec![
            // R1: an override pair, its reason on the rejection: reasoned.
            fb("a", true, Some("communication"), true),
            fb("b", true, None, true),
            // R3: an override whose only reason is blank.
            fb("e", true, Some(" "), true),
            fb("d", true, None, true),
            // A decision on a candidate no ranking holds.
            fb("zz", false, None, true),
            fb("yy", false, None, false),
        ];
        let anywhere: BTreeSet<(String, String)> =
            rows.iter().map(|r| (r.requisition.clone(), r.candidate.clone())).collect();
        let r = check(&rows, &feedback, &anywhere, &registered, at(24), at(0));
        assert_eq!((r.rankings, r.complete), (4, 1));
        assert_eq!(r.share, Some(0.25));
        assert_eq!(r.gaps[UNKNOWN_MODEL_VERSION], 1);
        assert_eq!(r.gaps[NO_ROUTE], 1);
        assert_eq!(r.gaps[OVERRIDE_WITHOUT_REASON], 1, "a blank reason is no reason");
        assert_eq!(r.gaps[NO_DECISION_ID], 1);
        assert_eq!(r.gaps.len(), 4, "{:?}", r.gaps);
        assert_eq!((r.feedback, r.orphan_feedback), (5, 1), "only the window's feedback counts");
        assert_eq!(r.examples.len(), 3);
        let none = check(&[], &[], &anywhere, &registered, at(24), at(0));
        assert_eq!((none.rankings, none.share), (0, None));
    }
}
