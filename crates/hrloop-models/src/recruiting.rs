//! What recruiters did with what hrloop served: the served rows of the decision log and the
//! recruiter feedback on them, read once here for every analysis that joins the two (the
//! experiment verdicts, the preference model and the overrides insights).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hrloop_core::{Arm, RecruiterDecision, Route, Source};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::{decisions as d, feedback as f};
use hrloop_lake::{Lake, Table, collect};

use crate::data::{ROW, features_by_row, with_feature_counts};
use crate::features::RawFeatures;
use crate::{Error, Result};

/// One served, scored candidate.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) decision_id: String,
    pub(crate) requisition: String,
    pub(crate) candidate: String,
    pub(crate) at: i64,
    pub(crate) arm: String,
    pub(crate) version: String,
    pub(crate) score: f64,
    pub(crate) human: bool,
    pub(crate) shadow_version: Option<String>,
    pub(crate) shadow_score: Option<f64>,
    /// The features as served, for scoring the row with another model.
    pub(crate) raw: RawFeatures,
}

#[derive(Debug, Clone)]
pub(crate) struct Feedback {
    pub(crate) decision: String,
    pub(crate) overrides: bool,
    pub(crate) at: i64,
    pub(crate) recruiter: Option<String>,
    /// Why the recruiter went against the model (the feedback's `reason_code`).
    pub(crate) reason: Option<String>,
}

/// The decision rows of rankings someone saw: served by hrloop (source = serving), not the
/// challenger's shadow scores of another version's ranking.
pub(crate) fn ranked_rows() -> Expr {
    col(d::SOURCE)
        .eq(lit(Source::Serving.as_str()))
        .and(col(d::ARM).neq(lit(Arm::Shadow.as_str())).or(col(d::ARM).is_null()))
}

/// Every row hrloop served and scored since `since` (the experiment and the pre-period
/// before it), in commit order.
///
/// Query: decisions where source = serving, a model version and a score are present, and
/// decided_at ≥ `since`; only the month partitions from `since`'s month on are read
/// ([`Lake::lazy_since`]). Point in time: the features are those recorded as served.
pub(crate) async fn served_since(lake: &Lake, since: DateTime<Utc>) -> Result<Vec<Served>> {
    let rows = lake
        .lazy_since(Table::Decisions, since)
        .await?
        .filter(
            col(d::SOURCE)
                .eq(lit(Source::Serving.as_str()))
                .and(col(d::MODEL_VERSION).is_not_null())
                .and(col(d::SCORE).is_not_null()),
        )
        .select([
            col(d::DECISION_ID),
            col(d::REQUISITION_ID),
            col(d::CANDIDATE_ID),
            col(d::DECIDED_AT).cast(DataType::Int64),
            col(d::ARM),
            col(d::MODEL_VERSION),
            col(d::SCORE),
            col(d::ROUTE),
            col(d::SHADOW_VERSION),
            col(d::SHADOW_SCORE),
            col(d::JOB_FAMILY),
            col(d::FEATURES),
        ])
        .with_row_index(ROW, None);
    let df = collect(with_feature_counts(rows)).await?;
    let (did, req, cand, arm, ver, route, sv) = (
        text(&df, d::DECISION_ID)?,
        text(&df, d::REQUISITION_ID)?,
        text(&df, d::CANDIDATE_ID)?,
        text(&df, d::ARM)?,
        text(&df, d::MODEL_VERSION)?,
        text(&df, d::ROUTE)?,
        text(&df, d::SHADOW_VERSION)?,
    );
    let (at, score, ss) =
        (df.column(d::DECIDED_AT)?.i64()?, df.column(d::SCORE)?.f64()?, df.column(d::SHADOW_SCORE)?.f64()?);
    features_by_row(&df)?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let present = |v: Option<&str>, name: &str| {
                v.map(str::to_string).ok_or_else(|| Error::Training(format!("decision row {i}: {name} is empty")))
            };
            Ok(Served {
                decision_id: present(did.get(i), d::DECISION_ID)?,
                requisition: present(req.get(i), d::REQUISITION_ID)?,
                candidate: present(cand.get(i), d::CANDIDATE_ID)?,
                at: at.get(i).ok_or_else(|| Error::Training(format!("decision row {i}: decided_at is empty")))?,
                arm: arm.get(i).unwrap_or(Arm::Champion.as_str()).to_string(),
                version: present(ver.get(i), d::MODEL_VERSION)?,
                score: score.get(i).unwrap_or_default(),
                human: route.get(i).is_some_and(|r| r.starts_with(Route::HUMAN_PREFIX)),
                shadow_version: sv.get(i).map(str::to_string),
                shadow_score: ss.get(i),
                raw,
            })
        })
        .collect()
}

/// Recruiter feedback by (requisition, candidate): the furthest decision wins (hired over
/// advanced over the rest), and of equally far ones the first committed.
///
/// Query: feedback, numbered in commit order, sorted by how far the decision went (descending)
/// then commit order, the first row of each (requisition, candidate) kept. The whole table is
/// read (five rows a requisition, not a hundred): the CUPED covariate needs every recruiter's
/// history before the experiment.
pub(crate) async fn feedback(lake: &Lake) -> Result<HashMap<(String, String), Feedback>> {
    const HOW_FAR: &str = "how_far";
    let how_far = when(col(f::DECISION).eq(lit(RecruiterDecision::Hired.as_str())))
        .then(lit(3))
        .when(col(f::DECISION).eq(lit(RecruiterDecision::Advanced.as_str())))
        .then(lit(2))
        .otherwise(lit(1));
    let df = collect(
        lake.lazy(Table::Feedback)
            .await?
            .select([
                col(f::REQUISITION_ID),
                col(f::CANDIDATE_ID),
                col(f::DECISION),
                col(f::OVERRIDES_MODEL),
                col(f::RECORDED_AT).cast(DataType::Int64),
                col(f::RECRUITER_ID),
                col(f::REASON_CODE),
            ])
            .with_row_index(ROW, None)
            .with_column(how_far.alias(HOW_FAR))
            .sort_by_exprs(
                [col(HOW_FAR), col(ROW)],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            )
            .unique_stable(Some(cols([f::REQUISITION_ID, f::CANDIDATE_ID])), UniqueKeepStrategy::First),
    )
    .await?;
    let (req, cand, dec, recruiter, reason) = (
        text(&df, f::REQUISITION_ID)?,
        text(&df, f::CANDIDATE_ID)?,
        text(&df, f::DECISION)?,
        text(&df, f::RECRUITER_ID)?,
        text(&df, f::REASON_CODE)?,
    );
    let (ov, at) = (df.column(f::OVERRIDES_MODEL)?.bool()?, df.column(f::RECORDED_AT)?.i64()?);
    let mut out = HashMap::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(r), Some(c), Some(decision), Some(overrides), Some(at)) =
            (req.get(i), cand.get(i), dec.get(i), ov.get(i), at.get(i))
        else {
            return Err(Error::Training(format!("feedback row {i}: a required column is empty")));
        };
        let fb = Feedback {
            decision: decision.to_string(),
            overrides,
            at,
            recruiter: recruiter.get(i).map(str::to_string),
            reason: reason.get(i).filter(|r| !r.is_empty()).map(str::to_string),
        };
        out.insert((r.to_string(), c.to_string()), fb);
    }
    Ok(out)
}

fn text<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    Ok(df.column(name)?.str()?)
}
