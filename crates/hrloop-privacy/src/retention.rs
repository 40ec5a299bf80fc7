//! Retention: a policy (`data/retention.toml`) says how long each kind of data is kept; a purge
//! deletes what has aged out, through the same row-removal mechanism as erasure. Purges are
//! idempotent (a second run removes nothing) and every run is reported and audited.

use std::path::Path as FsPath;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, Months, Utc};
use hrloop_lake::audit::{Audit, AuditEntry};
use hrloop_lake::polars::prelude::{DataType, JoinArgs, JoinType, UniqueKeepStrategy, col, lit};
use hrloop_lake::removal::{Removal, text_columns};
use hrloop_lake::rows::{decisions as d, hires as h};
use hrloop_lake::{ErasedSet, Lake, PartitionRule, RemovalReport, Table, collect};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

/// The retention policy file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub format_version: u32,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

/// One rule: either a table's rows older than a period (by the table's event time), or
/// everything about applicants who were never hired and whose last decision is older than it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// A table (decisions, feedback, quarantine, ...): rows whose event time is older than the
    /// period are deleted.
    pub table: Option<String>,
    /// Applicants never hired: their decisions, feedback, protected attributes and quarantined
    /// rows are deleted once their newest decision is older than the period.
    #[serde(default)]
    pub applicants_never_hired: bool,
    pub keep_days: Option<u32>,
    pub keep_months: Option<u32>,
}

enum Target {
    Table(Table),
    NeverHired,
}

impl Rule {
    fn target(&self) -> Result<Target> {
        match (&self.table, self.applicants_never_hired) {
            (Some(_), true) | (None, false) => Err(Error::Policy(format!(
                "rule {:?}: give either `table = \"...\"` or `applicants_never_hired = true`",
                self.name
            ))),
            (None, true) => Ok(Target::NeverHired),
            (Some(name), false) => Table::from_name(name).map(Target::Table).ok_or_else(|| {
                let known: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
                Error::Policy(format!("rule {:?}: unknown table {name:?} (tables: {})", self.name, known.join(", ")))
            }),
        }
    }

    /// Rows older than this are deleted.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        match (self.keep_days, self.keep_months) {
            (Some(d), None) => chrono::Duration::try_days(i64::from(d))
                .and_then(|days| now.checked_sub_signed(days))
                .ok_or_else(|| Error::Policy(format!("rule {:?}: keep_days {d} is out of range", self.name))),
            (None, Some(m)) => now
                .checked_sub_months(Months::new(m))
                .ok_or_else(|| Error::Policy(format!("rule {:?}: keep_months {m} is out of range", self.name))),
            _ => Err(Error::Policy(format!("rule {:?}: give exactly one of keep_days or keep_months", self.name))),
        }
    }
}

impl Policy {
    /// Read and check a policy; every rule's cutoff must be a date as seen from `now`.
    pub fn load(path: &FsPath, now: DateTime<Utc>) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Policy(format!("cannot read retention policy {}: {e}", path.display())))?;
        let policy: Policy =
            toml::from_str(&text).map_err(|e| Error::Policy(format!("retention policy {}: {e}", path.display())))?;
        if policy.format_version != FORMAT_VERSION {
            return Err(Error::Policy(format!(
                "retention policy {}: format_version {} is not supported (this hrloop reads {FORMAT_VERSION})",
                path.display(),
                policy.format_version
            )));
        }
        for rule in &policy.rules {
            rule.target()?;
            rule.cutoff(now)?;
        }
        Ok(policy)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule: String,
    /// Data older than this was removed.
    pub cutoff: DateTime<Utc>,
    pub rows_removed: u64,
    pub tables: Vec<RemovalReport>,
    /// For `applicants_never_hired`: how many applicants aged out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applicants: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeReport {
    pub at: DateTime<Utc>,
    pub dry_run: bool,
    pub rules: Vec<RuleResult>,
    pub rows_removed: u64,
}

/// Apply every rule of `policy` as of `now`.
pub async fn purge(
    lake: &Lake,
    policy: &Policy,
    now: DateTime<Utc>,
    dry_run: bool,
    actor: &str,
) -> Result<PurgeReport> {
    let mut results = Vec::new();
    for rule in &policy.rules {
        let cutoff = rule.cutoff(now)?;
        let result = match rule.target()? {
            Target::Table(table) => {
                let field = event_time_field(table);
                let report = lake
                    .remove_rows(table, &Removal { columns: Some(&[field]), dry_run, at: now, fence: false }, |b| {
                        older_than(b, field, cutoff)
                    })
                    .await?;
                RuleResult {
                    rule: rule.name.clone(),
                    cutoff,
                    rows_removed: report.rows_removed,
                    tables: vec![report],
                    applicants: None,
                }
            }
            Target::NeverHired => {
                let aged = never_hired_before(lake, cutoff).await?;
                let mut tables = Vec::new();
                if !aged.is_empty() {
                    for table in [Table::Decisions, Table::Feedback, Table::ProtectedAttributes, Table::Quarantine] {
                        let cols = text_columns(table);
                        tables.push(
                            lake.remove_rows(
                                table,
                                &Removal { columns: Some(&cols), dry_run, at: now, fence: false },
                                |b| aged.batch_mentions(b),
                            )
                            .await?,
                        );
                    }
                }
                RuleResult {
                    rule: rule.name.clone(),
                    cutoff,
                    rows_removed: tables.iter().map(|t| t.rows_removed).sum(),
                    tables,
                    applicants: Some(aged.len()),
                }
            }
        };
        results.push(result);
    }
    let rows_removed = results.iter().map(|r| r.rows_removed).sum();
    if !dry_run {
        let details: serde_json::Map<String, serde_json::Value> =
            results.iter().map(|r| (r.rule.clone(), r.rows_removed.into())).collect();
        Audit::new(lake.store().clone())
            .append(vec![AuditEntry {
                at: now,
                actor: actor.into(),
                action: "purge".into(),
                target: "retention policy".into(),
                details: serde_json::json!({"rows_removed": rows_removed, "per_rule": details}),
            }])
            .await?;
    }
    Ok(PurgeReport { at: now, dry_run, rules: results, rows_removed })
}

/// The column a table's age is measured on: the one its month partition is derived from.
fn event_time_field(table: Table) -> &'static str {
    table
        .def()
        .partitions
        .iter()
        .find_map(|(_, rule)| match rule {
            PartitionRule::Month(f) => Some(*f),
            PartitionRule::Identity(_) => None,
        })
        .expect("catalog test: every table has a month partition")
}

/// Per row: whether `field` (a timestamp or date) is before `cutoff`. Rows without a time are
/// kept.
fn older_than(batch: &RecordBatch, field: &str, cutoff: DateTime<Utc>) -> Vec<bool> {
    let n = batch.num_rows();
    let Some(col) = batch.column_by_name(field) else { return vec![false; n] };
    let micros = cutoff.timestamp_micros();
    let days = cutoff.timestamp().div_euclid(86_400) as i32;
    if let Some(ts) = col.as_primitive_opt::<TimestampMicrosecondType>() {
        (0..n).map(|i| !ts.is_null(i) && ts.value(i) < micros).collect()
    } else if let Some(d) = col.as_primitive_opt::<Date32Type>() {
        (0..n).map(|i| !d.is_null(i) && d.value(i) < days).collect()
    } else {
        vec![false; n]
    }
}

/// Candidates with no hire whose newest decision is before `cutoff`.
///
/// Join: each candidate's newest decision ⟕ hires on candidate, kept where no hire matched.
/// Point in time: "newest" is over every decision stored now, so an applicant who applied
/// again recently is kept whole.
async fn never_hired_before(lake: &Lake, cutoff: DateTime<Utc>) -> Result<ErasedSet> {
    const NEWEST: &str = "newest_decision_us";
    const HIRED: &str = "hired";
    let hired = lake
        .lazy(Table::Hires)
        .await?
        .select([col(h::CANDIDATE_ID), lit(true).alias(HIRED)])
        .unique(None, UniqueKeepStrategy::Any);
    let aged = collect(
        lake.lazy(Table::Decisions)
            .await?
            .group_by([col(d::CANDIDATE_ID)])
            .agg([col(d::DECIDED_AT).cast(DataType::Int64).max().alias(NEWEST)])
            .filter(col(NEWEST).lt(lit(cutoff.timestamp_micros())))
            .join(hired, [col(d::CANDIDATE_ID)], [col(h::CANDIDATE_ID)], JoinArgs::new(JoinType::Left))
            .filter(col(HIRED).is_null())
            .select([col(d::CANDIDATE_ID)]),
    )
    .await?;
    let names = aged.column(d::CANDIDATE_ID).and_then(|c| c.str().cloned()).map_err(hrloop_lake::Error::Query)?;
    Ok(names.iter().flatten().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Policy> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("retention.toml");
        std::fs::write(&p, text).unwrap();
        Policy::load(&p, at())
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn the_shipped_policy_loads() {
        let p = Policy::load(&FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../../data/retention.toml"), at()).unwrap();
        assert!(p.rules.iter().any(|r| r.applicants_never_hired));
        assert!(p.rules.iter().any(|r| r.table.as_deref() == Some("quarantine")));
        // Data minimisation: protected attributes have a rule of their own, no longer than the
        // decisions they describe are kept.
        let months = |table: &str| {
            p.rules.iter().find(|r| r.table.as_deref() == Some(table)).and_then(|r| r.keep_months).unwrap()
        };
        assert!(months("protected_attributes") <= months("decisions"));
    }

    #[test]
    fn bad_policies_are_refused_naming_the_rule_and_the_problem() {
        let err = |text: &str| load(&format!("format_version = 1\n{text}")).unwrap_err().to_string();
        assert!(
            err("[[rule]]\nname = \"q\"\ntable = \"quarantine\"\n")
                .contains("rule \"q\": give exactly one of keep_days")
        );
        assert!(
            err("[[rule]]\nname = \"x\"\ntable = \"salaries\"\nkeep_days = 3\n").contains("unknown table \"salaries\"")
        );
        assert!(
            err("[[rule]]\nname = \"both\"\ntable = \"feedback\"\napplicants_never_hired = true\nkeep_days = 3\n")
                .contains("either `table")
        );
        assert!(err("[[rule]]\nname = \"t\"\ntable = \"feedback\"\nkeep_weeks = 3\n").contains("keep_weeks"));
        // A cutoff before the first representable date is an error, not a panic.
        assert!(
            err("[[rule]]\nname = \"old\"\ntable = \"feedback\"\nkeep_days = 4000000000\n")
                .contains("rule \"old\": keep_days 4000000000 is out of range")
        );
        assert!(load("format_version = 2\nrule = []\n").unwrap_err().to_string().contains("format_version 2"));
    }

    #[test]
    fn age_is_measured_on_the_event_time_and_rows_without_one_are_kept() {
        use arrow_array::{RecordBatch, TimestampMicrosecondArray};
        let cutoff: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp_micros();
        let col = TimestampMicrosecondArray::from(vec![
            Some(t("2025-12-31T23:59:59Z")),
            Some(t("2026-01-01T00:00:00Z")),
            None,
        ])
        .with_timezone("+00:00");
        let batch = RecordBatch::try_from_iter([("decided_at", std::sync::Arc::new(col) as _)]).unwrap();
        assert_eq!(older_than(&batch, "decided_at", cutoff), vec![true, false, false]);
        assert_eq!(event_time_field(Table::Quarantine), "quarantined_at");
        for table in Table::ALL {
            event_time_field(table);
        }
    }
}
