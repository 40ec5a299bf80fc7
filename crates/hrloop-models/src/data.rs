//! Reading what training, validity, re-judging and milestone tracking need from the lake, as
//! queries on `Lake::lazy`: the decision-log row each hire was ranked with, hires, outcomes per
//! employee and milestone, the applicants of given requisitions, protected attributes.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use hrloop_core::{Milestone, Source};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::{decisions as d, hires as h, outcomes as o, protected_attributes as p};
use hrloop_lake::{Lake, Table, collect};

use crate::card::RowCounts;
use crate::features::RawFeatures;
use crate::spec::Label;
use crate::{Error, Result};

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

/// One applicant as the decision log recorded them.
#[derive(Debug, Clone)]
pub struct Applicant {
    pub requisition: String,
    pub candidate: String,
    pub raw: RawFeatures,
    /// Scored by hrloop (features as served) rather than imported history.
    pub served: bool,
}

#[derive(Debug, Clone)]
pub struct HireRow {
    pub employee: String,
    pub candidate: String,
    pub requisition: String,
    pub hire_date: NaiveDate,
}

/// What the HRIS reported: employed and rating, per milestone.
pub type Reported = BTreeMap<Milestone, (bool, Option<i64>)>;

/// A hire with features and a known label.
#[derive(Debug, Clone)]
pub struct Example {
    /// Pseudonym of the candidate who was hired.
    pub candidate: String,
    pub raw: RawFeatures,
    pub label: bool,
    pub hire_date: NaiveDate,
    pub requisition: String,
}

/// What the analyses of hires read: the hires, what the HRIS reported about them, and (for
/// training and validity) the decision-log row each hire was ranked with.
#[derive(Debug, Default)]
pub struct LakeData {
    /// One per hire (its decision-log row), when `load` read them.
    pub applicants: Vec<Applicant>,
    pub hires: Vec<HireRow>,
    pub outcomes: HashMap<String, Reported>,
}

/// Name of the row-index column queries add to keep the files' order (the order rows were
/// committed), where a rule picks "the first" or "the last" of several rows.
pub(crate) const ROW: &str = "row";

impl LakeData {
    /// Hires, their outcomes, and the decision row of each hire.
    pub async fn load(lake: &Lake) -> Result<LakeData> {
        let mut data = LakeData::hires_and_outcomes(lake).await?;
        data.applicants = hired_applicants(lake).await?;
        Ok(data)
    }

    /// Only the hires and their reported outcomes (no decision log): for what needs the
    /// outcomes of hires, not the features of every applicant.
    ///
    /// Outcomes by employee and milestone; when an outcome was reported twice (a corrected
    /// export), the last committed wins. Erased people are already gone (`Lake::lazy`).
    pub async fn hires_and_outcomes(lake: &Lake) -> Result<LakeData> {
        let mut data = LakeData::default();
        let hires = collect(lake.lazy(Table::Hires).await?.select([
            col(h::EMPLOYEE_ID),
            col(h::CANDIDATE_ID),
            col(h::REQUISITION_ID),
            days(h::HIRE_DATE),
        ]))
        .await?;
        let (emp, cand, req, date) = (
            text(&hires, h::EMPLOYEE_ID)?,
            text(&hires, h::CANDIDATE_ID)?,
            text(&hires, h::REQUISITION_ID)?,
            hires.column(h::HIRE_DATE)?.i32()?,
        );
        for i in 0..hires.height() {
            data.hires.push(HireRow {
                employee: required(emp.get(i), h::EMPLOYEE_ID, i)?.to_string(),
                candidate: required(cand.get(i), h::CANDIDATE_ID, i)?.to_string(),
                requisition: required(req.get(i), h::REQUISITION_ID, i)?.to_string(),
                hire_date: epoch() + Duration::days(i64::from(required(date.get(i), h::HIRE_DATE, i)?)),
            });
        }
        let outcomes = collect(
            lake.lazy(Table::Outcomes)
                .await?
                .select([col(o::EMPLOYEE_ID), col(o::MILESTONE), col(o::EMPLOYED), col(o::PERFORMANCE_RATING)])
                .with_row_index(ROW, None)
                .sort([ROW], SortMultipleOptions::default()),
        )
        .await?;
        let (emp, ms) = (text(&outcomes, o::EMPLOYEE_ID)?, text(&outcomes, o::MILESTONE)?);
        let (employed, rating) =
            (outcomes.column(o::EMPLOYED)?.bool()?, outcomes.column(o::PERFORMANCE_RATING)?.i64()?);
        for i in 0..outcomes.height() {
            let Some(m) = ms.get(i).and_then(|m| m.parse::<Milestone>().ok()) else { continue };
            let employee = required(emp.get(i), o::EMPLOYEE_ID, i)?;
            let employed = required(employed.get(i), o::EMPLOYED, i)?;
            data.outcomes.entry(employee.to_string()).or_default().insert(m, (employed, rating.get(i)));
        }
        Ok(data)
    }

    /// The decision-log row of each (candidate, requisition).
    pub fn decision_of_hire(&self) -> HashMap<(&str, &str), &Applicant> {
        self.applicants.iter().map(|a| ((a.candidate.as_str(), a.requisition.as_str()), a)).collect()
    }
    /// Hires whose label milestone has passed, with their label. Counts what was left out in
    /// `rows`: not yet due (never counted as failures), missing outcome, no features.
    pub fn labelled(&self, label: &Label, today: NaiveDate, grace_days: i64, rows: &mut RowCounts) -> Vec<Example> {
        let by_candidate = self.decision_of_hire();
        let mut examples = Vec::new();
        for hire in &self.hires {
            // Only cohorts whose label window has fully passed: including the early leavers of
            // younger cohorts (known failures) but not their stayers (unknown) would bias both
            // training and the time-based holdout towards failure.
            if label.milestone.date_after(hire.hire_date) + Duration::days(grace_days) > today {
                rows.excluded_not_due += 1;
                continue;
            }
            let known = self.outcomes.get(&hire.employee);
            let at = known.and_then(|k| k.get(&label.milestone)).copied();
            let left_before = known.is_some_and(|k| k.iter().any(|(m, (e, _))| *m < label.milestone && !e));
            let value = match (at, left_before) {
                (Some((employed, rating)), _) => label.value(employed, rating),
                (None, true) => false,
                (None, false) => {
                    rows.excluded_missing_outcome += 1;
                    continue;
                }
            };
            let Some(a) = by_candidate.get(&(hire.candidate.as_str(), hire.requisition.as_str())) else {
                rows.excluded_no_features += 1;
                continue;
            };
            examples.push(Example {
                candidate: hire.candidate.clone(),
                raw: a.raw.clone(),
                label: value,
                hire_date: hire.hire_date,
                requisition: hire.requisition.clone(),
            });
        }
        examples
    }
}

/// The decision-log row each hire was ranked with.
///
/// Join: decisions ⋈ hires on (requisition, candidate), so what is kept follows the hires, not
/// the decision log. Point in time: a decision row holds the features as they were when the
/// candidate was decided on (as served, for rows hrloop scored); of several rows for one hire,
/// the first served row in commit order wins, else the first imported one.
pub async fn hired_applicants(lake: &Lake) -> Result<Vec<Applicant>> {
    // The hired candidates first, as a filter the Parquet reader applies before it decodes the
    // feature maps of the other applicants (the join alone would decode every row's features).
    let hired =
        collect(lake.lazy(Table::Hires).await?.select([col(h::CANDIDATE_ID)]).unique(None, UniqueKeepStrategy::Any))
            .await?;
    let hired = lit(hired.column(h::CANDIDATE_ID)?.as_materialized_series().clone()).implode(false);
    let decisions = lake.lazy(Table::Decisions).await?.filter(col(d::CANDIDATE_ID).is_in(hired, false));
    let rows = only_hired(numbered(decisions), lake).await?;
    let mut chosen: HashMap<(String, String), Applicant> = HashMap::new();
    for a in applicants(rows).await? {
        let key = (a.candidate.clone(), a.requisition.clone());
        if chosen.get(&key).is_none_or(|prev| !prev.served && a.served) {
            chosen.insert(key, a);
        }
    }
    Ok(chosen.into_values().collect())
}

/// The rows of a decisions query whose (requisition, candidate) was hired: decisions ⋈ hires,
/// so what a query keeps follows the hires, not the decision log.
pub(crate) async fn only_hired(decisions: LazyFrame, lake: &Lake) -> Result<LazyFrame> {
    let hires = lake
        .lazy(Table::Hires)
        .await?
        .select([col(h::REQUISITION_ID), col(h::CANDIDATE_ID)])
        .unique(None, UniqueKeepStrategy::Any);
    let on = [col(d::REQUISITION_ID), col(d::CANDIDATE_ID)];
    Ok(decisions.join(hires, on.clone(), on, JoinArgs::new(JoinType::Inner)))
}

/// Every decision-log row on the given requisitions, in commit order (who a model would have
/// ranked there: fairness of selection is measured on them), handed to `each` one committed
/// file at a time, so memory follows one file, not the requisitions' history. No point-in-time
/// cut: each row's features are those recorded when it was decided.
pub async fn each_applicant_on(
    lake: &Lake,
    requisitions: &[String],
    mut each: impl FnMut(Vec<Applicant>) -> Result<()>,
) -> Result<()> {
    let wanted = lit(Series::new("requisitions".into(), requisitions)).implode(false);
    for file in lake.list_files(Table::Decisions, None).await? {
        let scan = lake.lazy_files(Table::Decisions, std::slice::from_ref(&file), None).await?;
        let batch = applicants(numbered(scan.filter(col(d::REQUISITION_ID).is_in(wanted.clone(), false)))).await?;
        if !batch.is_empty() {
            each(batch)?;
        }
    }
    Ok(())
}

/// The decision-log columns an applicant is made of, numbered in commit order.
fn numbered(decisions: LazyFrame) -> LazyFrame {
    decisions
        .select([col(d::REQUISITION_ID), col(d::CANDIDATE_ID), col(d::JOB_FAMILY), col(d::SOURCE), col(d::FEATURES)])
        .with_row_index(ROW, None)
}

/// Run a query of [`numbered`] rows and build one [`Applicant`] per row, in row order.
async fn applicants(rows: LazyFrame) -> Result<Vec<Applicant>> {
    let df = collect(with_feature_counts(rows)).await?;
    let (req, cand, src) = (text(&df, d::REQUISITION_ID)?, text(&df, d::CANDIDATE_ID)?, text(&df, d::SOURCE)?);
    features_by_row(&df)?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let source: Source = required(src.get(i), d::SOURCE, i)?
                .parse()
                .map_err(|e| Error::Training(format!("decision row {i}: {e}")))?;
            Ok(Applicant {
                requisition: required(req.get(i), d::REQUISITION_ID, i)?.to_string(),
                candidate: required(cand.get(i), d::CANDIDATE_ID, i)?.to_string(),
                raw,
                served: source == Source::Serving,
            })
        })
        .collect()
}

/// A decisions query numbered in [`ROW`] (with `job_family` and `features`), in row order,
/// with the length of each row's feature map, so [`features_by_row`] can walk the maps' entries
/// in one flat array: no per-row list and no copy of the other columns per entry.
pub(crate) fn with_feature_counts(rows: LazyFrame) -> LazyFrame {
    rows.with_column(col(d::FEATURES).list().len().alias(FEATURE_COUNT))
        .sort([ROW], SortMultipleOptions::default().with_maintain_order(true))
}

/// The features of each row of a [`with_feature_counts`] frame, as the model pipeline reads
/// them (job family as a category, the numeric features as they were at decision time).
pub(crate) fn features_by_row(df: &DataFrame) -> Result<Vec<RawFeatures>> {
    let jf = text(df, d::JOB_FAMILY)?;
    let counts = df.column(FEATURE_COUNT)?.cast(&IDX_DTYPE)?;
    let counts = counts.idx()?;
    // Without empty or null maps, the entries of all rows back to back.
    let entries = df.column(d::FEATURES)?.explode(ExplodeOptions { empty_as_null: false, keep_nulls: false })?;
    let fields = entries.struct_()?.fields_as_series();
    let [name, value] = fields.as_slice() else {
        return Err(Error::Training(format!("{}: a map of (name, value) entries was expected", d::FEATURES)));
    };
    let (name, value) = (name.str()?, value.f64()?);
    let mut out = Vec::with_capacity(df.height());
    let mut at = 0usize;
    for i in 0..df.height() {
        let mut raw = RawFeatures::default();
        raw.categorical.insert("job_family".into(), required(jf.get(i), d::JOB_FAMILY, i)?.to_string());
        let n = counts.get(i).unwrap_or(0) as usize;
        if at + n > name.len() {
            return Err(Error::Training(format!("decision row {i}: its feature map runs past the entries read")));
        }
        for j in at..at + n {
            if let (Some(k), Some(v)) = (name.get(j), value.get(j)) {
                raw.numeric.insert(k.to_string(), v);
            }
        }
        at += n;
        out.push(raw);
    }
    Ok(out)
}

/// Protected attributes of the given candidates (measured, and used for weights; never inputs),
/// by a semi-join on the candidate, so what is read follows the candidates asked about, not the
/// whole table.
pub async fn protected_attributes_of(
    lake: &Lake,
    candidates: &[&str],
) -> Result<HashMap<String, BTreeMap<String, String>>> {
    let wanted = lit(Series::new("candidates".into(), candidates)).implode(false);
    attributes_of(lake.lazy(Table::ProtectedAttributes).await?.filter(col(p::CANDIDATE_ID).is_in(wanted, false))).await
}

/// Attributes by candidate from a protected-attributes query; a candidate recorded twice has
/// the keys of both (the later committed value of a key wins).
async fn attributes_of(rows: LazyFrame) -> Result<HashMap<String, BTreeMap<String, String>>> {
    let df = collect(
        rows.select([col(p::CANDIDATE_ID), col(p::ATTRIBUTES)])
            .with_row_index(ROW, None)
            .explode(cols([p::ATTRIBUTES]), ExplodeOptions { empty_as_null: false, keep_nulls: false })
            .sort([ROW], SortMultipleOptions::default().with_maintain_order(true))
            .select([
                col(p::CANDIDATE_ID),
                col(p::ATTRIBUTES).struct_().field_by_index(0).alias(FEATURE_NAME),
                col(p::ATTRIBUTES).struct_().field_by_index(1).alias(FEATURE_VALUE),
            ]),
    )
    .await?;
    let (cand, name, value) = (text(&df, p::CANDIDATE_ID)?, text(&df, FEATURE_NAME)?, text(&df, FEATURE_VALUE)?);
    let mut attrs: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for i in 0..df.height() {
        if let (Some(c), Some(k), Some(v)) = (cand.get(i), name.get(i), value.get(i)) {
            attrs.entry(c.to_string()).or_default().insert(k.to_string(), v.to_string());
        }
    }
    Ok(attrs)
}

/// The column [`with_feature_counts`] adds: how many entries a row's feature map has.
const FEATURE_COUNT: &str = "feature_count";

/// Column names of an exploded map's entries.
const FEATURE_NAME: &str = "entry_key";
const FEATURE_VALUE: &str = "entry_value";

/// A date column as days since 1970-01-01.
fn days(name: &str) -> Expr {
    col(name).cast(DataType::Int32)
}

fn text<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    Ok(df.column(name)?.str()?)
}

/// A value the catalog says is always there, or an error naming the column and row.
fn required<T>(v: Option<T>, column: &str, row: usize) -> Result<T> {
    v.ok_or_else(|| Error::Training(format!("lake column {column} is empty in row {row} of a query result")))
}

/// Which 3/6/12/24-month outcomes are due, arrived and missing, per hire cohort, as of `today`.
pub async fn milestone_status(
    lake: &Lake,
    today: NaiveDate,
    grace_days: i64,
) -> Result<hrloop_core::milestones::MilestoneStatus> {
    use hrloop_core::milestones::{HireRef, OutcomeRef, status};
    let data = LakeData::hires_and_outcomes(lake).await?;
    let hires: Vec<HireRef<'_>> =
        data.hires.iter().map(|h| HireRef { employee_id: &h.employee, hire_date: h.hire_date }).collect();
    let outcomes: Vec<OutcomeRef<'_>> = data
        .outcomes
        .iter()
        .flat_map(|(e, r)| {
            r.iter().map(move |(m, (employed, _))| OutcomeRef { employee_id: e, milestone: *m, employed: *employed })
        })
        .collect();
    Ok(status(&hires, &outcomes, today, grace_days))
}
