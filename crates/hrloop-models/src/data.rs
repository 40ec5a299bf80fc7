//! Reading what training and the validity report need from the lake: the decision log's
//! features, hires, and outcomes per employee and milestone.

use std::collections::{BTreeMap, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use chrono::{Duration, NaiveDate};
use hrloop_core::Milestone;
use hrloop_lake::{Lake, Table};

use crate::card::RowCounts;
use crate::features::RawFeatures;
use crate::spec::Label;
use crate::{Error, Result};

/// A column of a lake batch, or an error naming it.
pub(crate) fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a arrow_array::ArrayRef> {
    b.column_by_name(name).ok_or_else(|| Error::Training(format!("lake column {name} missing")))
}

pub(crate) fn strings<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a arrow_array::StringArray> {
    Ok(column(b, name)?.as_string::<i32>())
}

/// A decision row's features as the model pipeline reads them: its job family (categorical)
/// and its numeric features as they were at decision time.
pub(crate) fn raw_features(
    job_family: &arrow_array::StringArray,
    features: &arrow_array::MapArray,
    i: usize,
) -> RawFeatures {
    let mut raw = RawFeatures::default();
    raw.categorical.insert("job_family".into(), job_family.value(i).to_string());
    if !features.is_null(i) {
        let entries = features.value(i);
        let keys = entries.column(0).as_string::<i32>();
        let vals = entries.column(1).as_primitive::<Float64Type>();
        for j in 0..entries.len() {
            if !vals.is_null(j) {
                raw.numeric.insert(keys.value(j).to_string(), vals.value(j));
            }
        }
    }
    raw
}

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

#[derive(Debug, Default)]
pub struct LakeData {
    pub applicants: Vec<Applicant>,
    pub hires: Vec<HireRow>,
    pub outcomes: HashMap<String, Reported>,
}

impl LakeData {
    pub async fn load(lake: &Lake) -> Result<LakeData> {
        let mut data = LakeData::default();
        let scan = lake
            .scan(Table::Decisions, Some(&["requisition_id", "candidate_id", "job_family", "source", "features"]))
            .await?;
        for b in &scan.batches {
            let (req, cand, jf, src) = (
                strings(b, "requisition_id")?,
                strings(b, "candidate_id")?,
                strings(b, "job_family")?,
                strings(b, "source")?,
            );
            let feats = column(b, "features")?.as_map();
            for i in 0..b.num_rows() {
                data.applicants.push(Applicant {
                    requisition: req.value(i).to_string(),
                    candidate: cand.value(i).to_string(),
                    raw: raw_features(jf, feats, i),
                    served: src.value(i) == "serving",
                });
            }
        }
        data.load_hires_and_outcomes(lake).await?;
        data.without_erased(lake).await?;
        Ok(data)
    }

    /// Only the hires and their reported outcomes (no decision log): for what needs the
    /// outcomes of hires, not the features of every applicant.
    pub async fn hires_and_outcomes(lake: &Lake) -> Result<LakeData> {
        let mut data = LakeData::default();
        data.load_hires_and_outcomes(lake).await?;
        data.without_erased(lake).await?;
        Ok(data)
    }

    /// Erasure removes a person's rows from the lake; this also keeps them out of a training
    /// set should a rewrite still be under way (or interrupted) when training reads.
    async fn without_erased(&mut self, lake: &Lake) -> Result<()> {
        let erased = lake.erased().await?;
        if !erased.is_empty() {
            self.applicants.retain(|a| !erased.contains(&a.candidate));
            self.hires.retain(|h| !erased.contains(&h.candidate) && !erased.contains(&h.employee));
            self.outcomes.retain(|employee, _| !erased.contains(employee));
        }
        Ok(())
    }

    async fn load_hires_and_outcomes(&mut self, lake: &Lake) -> Result<()> {
        let data = self;
        let hires =
            lake.scan(Table::Hires, Some(&["employee_id", "candidate_id", "requisition_id", "hire_date"])).await?;
        for b in &hires.batches {
            let (emp, cand, req) =
                (strings(b, "employee_id")?, strings(b, "candidate_id")?, strings(b, "requisition_id")?);
            let dates = b
                .column_by_name("hire_date")
                .ok_or_else(|| Error::Training("hire_date missing".into()))?
                .as_primitive::<Date32Type>();
            for i in 0..b.num_rows() {
                data.hires.push(HireRow {
                    employee: emp.value(i).to_string(),
                    candidate: cand.value(i).to_string(),
                    requisition: req.value(i).to_string(),
                    hire_date: epoch() + Duration::days(i64::from(dates.value(i))),
                });
            }
        }
        let outcomes =
            lake.scan(Table::Outcomes, Some(&["employee_id", "milestone", "employed", "performance_rating"])).await?;
        for b in &outcomes.batches {
            let (emp, ms) = (strings(b, "employee_id")?, strings(b, "milestone")?);
            let employed =
                b.column_by_name("employed").ok_or_else(|| Error::Training("employed missing".into()))?.as_boolean();
            let rating = b
                .column_by_name("performance_rating")
                .ok_or_else(|| Error::Training("performance_rating missing".into()))?
                .as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let Ok(m) = ms.value(i).parse::<Milestone>() else { continue };
                let r = (!rating.is_null(i)).then(|| rating.value(i));
                data.outcomes.entry(emp.value(i).to_string()).or_default().insert(m, (employed.value(i), r));
            }
        }
        Ok(())
    }

    /// The decision-log row of each (candidate, requisition); features as served win over
    /// imported history.
    pub fn decision_of_hire(&self) -> HashMap<(&str, &str), &Applicant> {
        let mut by: HashMap<(&str, &str), &Applicant> = HashMap::new();
        for a in &self.applicants {
            let key = (a.candidate.as_str(), a.requisition.as_str());
            if by.get(&key).is_none_or(|prev| !prev.served && a.served) {
                by.insert(key, a);
            }
        }
        by
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
