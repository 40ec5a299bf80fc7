//! One typed row per lake table, and the names of its columns. Writers build these rows (never
//! a positional list of values); queries name columns through the constants here (never a
//! string typed in an analysis). The catalog (`tables.rs`) lists the same fields with their
//! kinds and docs; a test keeps the two in the same order, and the schema test in `tables.rs`
//! pins what lands on disk.
//!
//! Enums (arm, source, route, stage, recruiter decision, milestone) are stored as their
//! on-disk text (`hrloop_core`), so files stay readable by DuckDB or pyarrow without hrloop.

use chrono::{DateTime, NaiveDate, Utc};
use hrloop_core::{Arm, Milestone, RecruiterDecision, Route, Source, Stage};

use crate::tables::Table;
use crate::write::Value;

/// A typed row of one table.
pub trait Row {
    const TABLE: Table;

    /// The row's values in the catalog's field order (what the writer stores and hashes).
    fn values(&self) -> Vec<Value>;
}

fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

/// The decisions table: every decision about a candidate on a requisition (imported history
/// and served rankings), with features as they were at decision time.
pub mod decisions {
    use super::*;

    pub const REQUISITION_ID: &str = "requisition_id";
    pub const CANDIDATE_ID: &str = "candidate_id";
    pub const JOB_FAMILY: &str = "job_family";
    pub const DECIDED_AT: &str = "decided_at";
    pub const SOURCE: &str = "source";
    pub const STAGE_REACHED: &str = "stage_reached";
    pub const DECISION: &str = "decision";
    pub const SKILLS: &str = "skills";
    pub const FEATURES: &str = "features";
    pub const DECISION_ID: &str = "decision_id";
    pub const MODEL_VERSION: &str = "model_version";
    pub const ARM: &str = "arm";
    pub const SCORE: &str = "score";
    pub const ROUTE: &str = "route";
    pub const SHADOW_VERSION: &str = "shadow_version";
    pub const SHADOW_SCORE: &str = "shadow_score";
    /// In catalog order.
    pub const COLUMNS: &[&str] = &[
        REQUISITION_ID,
        CANDIDATE_ID,
        JOB_FAMILY,
        DECIDED_AT,
        SOURCE,
        STAGE_REACHED,
        DECISION,
        SKILLS,
        FEATURES,
        DECISION_ID,
        MODEL_VERSION,
        ARM,
        SCORE,
        ROUTE,
        SHADOW_VERSION,
        SHADOW_SCORE,
    ];

    #[derive(Debug, Clone, PartialEq)]
    pub struct DecisionRow {
        pub requisition_id: String,
        pub candidate_id: String,
        pub job_family: String,
        pub decided_at: DateTime<Utc>,
        pub source: Source,
        pub stage_reached: Option<Stage>,
        pub decision: Option<RecruiterDecision>,
        /// Separated by `|`.
        pub skills: Option<String>,
        /// Sorted by name, one value per name.
        pub features: Option<Vec<(String, f64)>>,
        pub decision_id: Option<String>,
        pub model_version: Option<String>,
        pub arm: Option<Arm>,
        pub score: Option<f64>,
        pub route: Option<Route>,
        pub shadow_version: Option<String>,
        pub shadow_score: Option<f64>,
    }

    impl Row for DecisionRow {
        const TABLE: Table = Table::Decisions;

        fn values(&self) -> Vec<Value> {
            vec![
                text(&self.requisition_id),
                text(&self.candidate_id),
                text(&self.job_family),
                Value::Timestamp(self.decided_at),
                text(self.source.as_str()),
                opt(self.stage_reached, |s| text(s.as_str())),
                opt(self.decision, |d| text(d.as_str())),
                opt_text(self.skills.as_deref()),
                opt(self.features.clone(), Value::FloatMap),
                opt_text(self.decision_id.as_deref()),
                opt_text(self.model_version.as_deref()),
                opt(self.arm, |a| text(a.as_str())),
                opt(self.score, Value::Float),
                opt(self.route, |r| text(r.as_str())),
                opt_text(self.shadow_version.as_deref()),
                opt(self.shadow_score, Value::Float),
            ]
        }
    }
}

/// The feedback table: recruiter decisions on served rankings, with overrides.
pub mod feedback {
    use super::*;

    pub const REQUISITION_ID: &str = "requisition_id";
    pub const CANDIDATE_ID: &str = "candidate_id";
    pub const RECRUITER_ID: &str = "recruiter_id";
    pub const DECISION: &str = "decision";
    pub const OVERRIDES_MODEL: &str = "overrides_model";
    pub const REASON_CODE: &str = "reason_code";
    pub const REASON_TEXT: &str = "reason_text";
    pub const RECORDED_AT: &str = "recorded_at";
    pub const COLUMNS: &[&str] =
        &[REQUISITION_ID, CANDIDATE_ID, RECRUITER_ID, DECISION, OVERRIDES_MODEL, REASON_CODE, REASON_TEXT, RECORDED_AT];

    #[derive(Debug, Clone, PartialEq)]
    pub struct FeedbackRow {
        pub requisition_id: String,
        pub candidate_id: String,
        pub recruiter_id: Option<String>,
        pub decision: RecruiterDecision,
        pub overrides_model: bool,
        pub reason_code: Option<String>,
        pub reason_text: Option<String>,
        pub recorded_at: DateTime<Utc>,
    }

    impl Row for FeedbackRow {
        const TABLE: Table = Table::Feedback;

        fn values(&self) -> Vec<Value> {
            vec![
                text(&self.requisition_id),
                text(&self.candidate_id),
                opt_text(self.recruiter_id.as_deref()),
                text(self.decision.as_str()),
                Value::Bool(self.overrides_model),
                opt_text(self.reason_code.as_deref()),
                opt_text(self.reason_text.as_deref()),
                Value::Timestamp(self.recorded_at),
            ]
        }
    }
}

/// The hires table: links the ATS candidate pseudonym to the HRIS employee pseudonym.
pub mod hires {
    use super::*;

    pub const EMPLOYEE_ID: &str = "employee_id";
    pub const CANDIDATE_ID: &str = "candidate_id";
    pub const REQUISITION_ID: &str = "requisition_id";
    pub const JOB_FAMILY: &str = "job_family";
    pub const HIRE_DATE: &str = "hire_date";
    pub const COLUMNS: &[&str] = &[EMPLOYEE_ID, CANDIDATE_ID, REQUISITION_ID, JOB_FAMILY, HIRE_DATE];

    #[derive(Debug, Clone, PartialEq)]
    pub struct HireRow {
        pub employee_id: String,
        pub candidate_id: String,
        pub requisition_id: String,
        pub job_family: String,
        pub hire_date: NaiveDate,
    }

    impl Row for HireRow {
        const TABLE: Table = Table::Hires;

        fn values(&self) -> Vec<Value> {
            vec![
                text(&self.employee_id),
                text(&self.candidate_id),
                text(&self.requisition_id),
                text(&self.job_family),
                Value::Date(self.hire_date),
            ]
        }
    }
}

/// The outcomes table: what the HRIS reported about each hire at 3, 6, 12 and 24 months.
pub mod outcomes {
    use super::*;

    pub const EMPLOYEE_ID: &str = "employee_id";
    pub const HIRE_DATE: &str = "hire_date";
    /// Lives only in the partition path (`milestone=12m/`); a query sees it as a column.
    pub const MILESTONE: &str = "milestone";
    pub const MILESTONE_DATE: &str = "milestone_date";
    pub const EMPLOYED: &str = "employed";
    pub const PERFORMANCE_RATING: &str = "performance_rating";
    pub const EXIT_REASON: &str = "exit_reason";
    pub const COLUMNS: &[&str] =
        &[EMPLOYEE_ID, HIRE_DATE, MILESTONE, MILESTONE_DATE, EMPLOYED, PERFORMANCE_RATING, EXIT_REASON];

    #[derive(Debug, Clone, PartialEq)]
    pub struct OutcomeRow {
        pub employee_id: String,
        pub hire_date: NaiveDate,
        pub milestone: Milestone,
        pub milestone_date: NaiveDate,
        pub employed: bool,
        /// 1-5; absent for leavers.
        pub performance_rating: Option<i64>,
        pub exit_reason: Option<String>,
    }

    impl Row for OutcomeRow {
        const TABLE: Table = Table::Outcomes;

        fn values(&self) -> Vec<Value> {
            vec![
                text(&self.employee_id),
                Value::Date(self.hire_date),
                text(self.milestone.label()),
                Value::Date(self.milestone_date),
                Value::Bool(self.employed),
                opt(self.performance_rating, Value::Int),
                opt_text(self.exit_reason.as_deref()),
            ]
        }
    }
}

/// The protected attributes table: measured for fairness only, never features.
pub mod protected_attributes {
    use super::*;

    pub const CANDIDATE_ID: &str = "candidate_id";
    pub const ATTRIBUTES: &str = "attributes";
    pub const RECORDED_AT: &str = "recorded_at";
    pub const COLUMNS: &[&str] = &[CANDIDATE_ID, ATTRIBUTES, RECORDED_AT];

    #[derive(Debug, Clone, PartialEq)]
    pub struct ProtectedAttributesRow {
        pub candidate_id: String,
        /// Attribute name to group.
        pub attributes: Vec<(String, String)>,
        pub recorded_at: NaiveDate,
    }

    impl Row for ProtectedAttributesRow {
        const TABLE: Table = Table::ProtectedAttributes;

        fn values(&self) -> Vec<Value> {
            vec![text(&self.candidate_id), Value::StrMap(self.attributes.clone()), Value::Date(self.recorded_at)]
        }
    }
}

/// The quarantine table: rows ingestion refused, with the reason.
pub mod quarantine {
    use super::*;

    /// Lives only in the partition path (`table=outcomes/`).
    pub const TARGET_TABLE: &str = "target_table";
    pub const SOURCE_SHA256: &str = "source_sha256";
    pub const ROW_NUMBER: &str = "row_number";
    pub const FIELD: &str = "field";
    pub const REASON: &str = "reason";
    pub const RAW: &str = "raw";
    pub const QUARANTINED_AT: &str = "quarantined_at";
    pub const COLUMNS: &[&str] = &[TARGET_TABLE, SOURCE_SHA256, ROW_NUMBER, FIELD, REASON, RAW, QUARANTINED_AT];

    #[derive(Debug, Clone, PartialEq)]
    pub struct QuarantineRow {
        pub target_table: Table,
        pub source_sha256: String,
        /// Line (CSV, JSON lines) or row (Parquet) in the export.
        pub row_number: i64,
        pub field: Option<String>,
        pub reason: String,
        /// The row's mapped values as JSON, identifiers pseudonymised.
        pub raw: Option<String>,
        pub quarantined_at: DateTime<Utc>,
    }

    impl Row for QuarantineRow {
        const TABLE: Table = Table::Quarantine;

        fn values(&self) -> Vec<Value> {
            vec![
                text(self.target_table.name()),
                text(&self.source_sha256),
                Value::Int(self.row_number),
                opt_text(self.field.as_deref()),
                text(&self.reason),
                opt_text(self.raw.as_deref()),
                Value::Timestamp(self.quarantined_at),
            ]
        }
    }
}

/// The system columns hrloop adds to every file.
pub mod system {
    pub const EVENT_KEY: &str = "event_key";
    pub const ROW_HASH: &str = "row_hash";
    pub const BATCH_ID: &str = "batch_id";
    pub const SOURCE_FILE: &str = "source_file";
    pub const INGESTED_AT: &str = "ingested_at";
}

/// The column names of `table`, in catalog order.
pub fn columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Decisions => decisions::COLUMNS,
        Table::Feedback => feedback::COLUMNS,
        Table::Hires => hires::COLUMNS,
        Table::Outcomes => outcomes::COLUMNS,
        Table::ProtectedAttributes => protected_attributes::COLUMNS,
        Table::Quarantine => quarantine::COLUMNS,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tables::Kind;
    use chrono::TimeZone;

    pub(crate) fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 4).unwrap()
    }

    /// One full row of every table (every optional field set).
    pub(crate) fn samples() -> Vec<(Table, Vec<Value>)> {
        vec![
            (
                Table::Decisions,
                decisions::DecisionRow {
                    requisition_id: "r1".into(),
                    candidate_id: "pabc".into(),
                    job_family: "sales".into(),
                    decided_at: at(),
                    source: Source::Serving,
                    stage_reached: Some(Stage::Screened),
                    decision: Some(RecruiterDecision::Advanced),
                    skills: Some("rust|sql".into()),
                    features: Some(vec![("a".into(), 1.5)]),
                    decision_id: Some("d1".into()),
                    model_version: Some("m/v1".into()),
                    arm: Some(Arm::Challenger),
                    score: Some(0.5),
                    route: Some(Route::Human(hrloop_core::ReviewReason::LowConfidence)),
                    shadow_version: Some("m/v0".into()),
                    shadow_score: Some(0.25),
                }
                .values(),
            ),
            (
                Table::Feedback,
                feedback::FeedbackRow {
                    requisition_id: "r1".into(),
                    candidate_id: "pabc".into(),
                    recruiter_id: Some("pdef".into()),
                    decision: RecruiterDecision::Rejected,
                    overrides_model: true,
                    reason_code: Some("culture".into()),
                    reason_text: Some("why".into()),
                    recorded_at: at(),
                }
                .values(),
            ),
            (
                Table::Hires,
                hires::HireRow {
                    employee_id: "pe".into(),
                    candidate_id: "pabc".into(),
                    requisition_id: "r1".into(),
                    job_family: "sales".into(),
                    hire_date: day(),
                }
                .values(),
            ),
            (
                Table::Outcomes,
                outcomes::OutcomeRow {
                    employee_id: "pe".into(),
                    hire_date: day(),
                    milestone: Milestone::M12,
                    milestone_date: day(),
                    employed: false,
                    performance_rating: Some(3),
                    exit_reason: Some("moved".into()),
                }
                .values(),
            ),
            (
                Table::ProtectedAttributes,
                protected_attributes::ProtectedAttributesRow {
                    candidate_id: "pabc".into(),
                    attributes: vec![("gender".into(), "f".into())],
                    recorded_at: day(),
                }
                .values(),
            ),
            (
                Table::Quarantine,
                quarantine::QuarantineRow {
                    target_table: Table::Outcomes,
                    source_sha256: "ab".into(),
                    row_number: 7,
                    field: Some("hire_date".into()),
                    reason: "bad date".into(),
                    raw: Some("{}".into()),
                    quarantined_at: at(),
                }
                .values(),
            ),
        ]
    }

    /// The typed rows, the column constants and the catalog agree field by field: same names in
    /// the same order, and every value fits its field's kind.
    #[test]
    fn typed_rows_and_columns_follow_the_catalog() {
        let samples = samples();
        assert_eq!(samples.len(), Table::ALL.len());
        for (table, values) in samples {
            let def = table.def();
            let names: Vec<&str> = def.fields.iter().map(|f| f.name).collect();
            assert_eq!(columns(table), names.as_slice(), "{table}: column constants");
            assert_eq!(values.len(), def.fields.len(), "{table}: values per row");
            for (v, f) in values.iter().zip(def.fields) {
                let fits = match (f.kind, v) {
                    (Kind::Utf8 | Kind::Pseudonym(_) | Kind::Milestone, Value::Str(_)) => true,
                    (Kind::Int, Value::Int(_)) | (Kind::Float, Value::Float(_)) | (Kind::Bool, Value::Bool(_)) => true,
                    (Kind::Date, Value::Date(_)) | (Kind::Timestamp, Value::Timestamp(_)) => true,
                    (Kind::FloatMap, Value::FloatMap(_)) | (Kind::Utf8Map, Value::StrMap(_)) => true,
                    _ => false,
                };
                assert!(fits, "{table}.{}: {v:?} does not fit {:?}", f.name, f.kind);
                if let (Some(allowed), Value::Str(s)) = (f.allowed, v) {
                    assert!(allowed.contains(&s.as_str()), "{table}.{}: {s} not allowed", f.name);
                }
            }
        }
    }
}
