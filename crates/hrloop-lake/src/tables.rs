//! The table catalog: every table's fields, natural event key and partitioning. This is the one
//! place hrloop's lake schema is written down; mappings, writers and readers all follow it
//! (the typed rows in `rows.rs` follow it field by field, and `the_on_disk_schema_is_pinned`
//! below makes any change to what lands on disk a deliberate edit).

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::builder::{Float64Builder, MapBuilder, StringBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// Value kinds a field can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Utf8,
    /// A keyed HMAC pseudonym of a person identifier, in the given namespace.
    Pseudonym(&'static str),
    Int,
    Float,
    Bool,
    Date,
    /// UTC instant, microseconds.
    Timestamp,
    /// One of `3m`, `6m`, `12m`, `24m`.
    Milestone,
    /// Named numeric values, e.g. a candidate's features.
    FloatMap,
    /// Named text values, e.g. protected attributes.
    Utf8Map,
}

/// The names inside a map column (`entries`, `key`, `value`: the Parquet spec's, and what the
/// lake's files have always held), spelled out so no arrow version's default can change them.
pub(crate) fn map_field_names() -> arrow_array::builder::MapFieldNames {
    arrow_array::builder::MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() }
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Utf8 | Kind::Pseudonym(_) | Kind::Milestone => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            Kind::FloatMap => {
                MapBuilder::new(Some(crate::tables::map_field_names()), StringBuilder::new(), Float64Builder::new())
                    .finish()
                    .data_type()
                    .clone()
            }
            Kind::Utf8Map => {
                MapBuilder::new(Some(crate::tables::map_field_names()), StringBuilder::new(), StringBuilder::new())
                    .finish()
                    .data_type()
                    .clone()
            }
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Utf8 => "text",
            Kind::Pseudonym(_) => "person identifier (pseudonymised)",
            Kind::Int => "whole number",
            Kind::Float => "number",
            Kind::Bool => "yes/no",
            Kind::Date => "date",
            Kind::Timestamp => "date and time",
            Kind::Milestone => "milestone (3m, 6m, 12m, 24m)",
            Kind::FloatMap => "named numbers",
            Kind::Utf8Map => "named values",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub name: &'static str,
    pub kind: Kind,
    /// A row without it cannot be stored.
    pub required: bool,
    /// Allowed range for numbers (inclusive).
    pub range: Option<(f64, f64)>,
    /// The only values a text field may take.
    pub allowed: Option<&'static [&'static str]>,
    pub doc: &'static str,
}

/// How a partition directory's value is derived from a row.
#[derive(Debug, Clone, Copy)]
pub enum PartitionRule {
    /// `name=<field value>`; the field lives only in the directory name, not in the file.
    Identity(&'static str),
    /// `month=YYYY-MM` of a date or timestamp field (which stays in the file).
    Month(&'static str),
}

#[derive(Debug)]
pub struct TableDef {
    pub table: Table,
    pub doc: &'static str,
    pub fields: &'static [FieldDef],
    /// Fields whose values identify an event: re-ingesting a row with the same key is a no-op.
    pub key: &'static [&'static str],
    pub partitions: &'static [(&'static str, PartitionRule)],
}

/// Columns hrloop adds to every file.
pub const SYSTEM_COLUMNS: [&str; 5] = ["event_key", "row_hash", "batch_id", "source_file", "ingested_at"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Decisions,
    Feedback,
    Hires,
    Outcomes,
    ProtectedAttributes,
    Quarantine,
}

const fn f(name: &'static str, kind: Kind, required: bool, doc: &'static str) -> FieldDef {
    FieldDef { name, kind, required, range: None, allowed: None, doc }
}

const fn ranged(name: &'static str, kind: Kind, required: bool, lo: f64, hi: f64, doc: &'static str) -> FieldDef {
    FieldDef { name, kind, required, range: Some((lo, hi)), allowed: None, doc }
}

const fn one_of(name: &'static str, required: bool, allowed: &'static [&'static str], doc: &'static str) -> FieldDef {
    FieldDef { name, kind: Kind::Utf8, required, range: None, allowed: Some(allowed), doc }
}

const DECISIONS_MADE: &[&str] = hrloop_core::RecruiterDecision::LABELS;
const STAGES: &[&str] = hrloop_core::Stage::LABELS;

static DECISIONS: TableDef = TableDef {
    table: Table::Decisions,
    doc: "Every decision about a candidate on a requisition: imported ATS history and decisions served by hrloop, with the features as they were at decision time.",
    fields: &[
        f("requisition_id", Kind::Utf8, true, "Requisition (opening) identifier"),
        f("candidate_id", Kind::Pseudonym("candidate"), true, "Candidate pseudonym"),
        f("job_family", Kind::Utf8, true, "Job family from data/taxonomy/job_families.txt"),
        f("decided_at", Kind::Timestamp, true, "When the decision was made (or the application received)"),
        f("source", Kind::Utf8, true, "ats_import or serving"),
        one_of("stage_reached", false, STAGES, "applied, screened, interviewed, offered or hired"),
        one_of("decision", false, DECISIONS_MADE, "advanced, rejected, hired or withdrawn"),
        f("skills", Kind::Utf8, false, "Skills, separated by |, from data/taxonomy/skills.txt"),
        f("features", Kind::FloatMap, false, "Feature values as seen at decision time"),
        f("decision_id", Kind::Utf8, false, "One ranking request (served decisions); empty for imported history"),
        f("model_version", Kind::Utf8, false, "Model version that scored it (served decisions)"),
        f("arm", Kind::Utf8, false, "champion or challenger: the arm that served the ranking"),
        f("score", Kind::Float, false, "Model score (probability of success) of the serving arm"),
        f("route", Kind::Utf8, false, "auto or human:<reason>"),
        f("shadow_version", Kind::Utf8, false, "The other model, when both scored (shadow mode)"),
        f("shadow_score", Kind::Float, false, "The other model's score"),
    ],
    key: &["requisition_id", "candidate_id", "source", "decision_id"],
    partitions: &[("month", PartitionRule::Month("decided_at"))],
};

static FEEDBACK: TableDef = TableDef {
    table: Table::Feedback,
    doc: "Recruiter decisions on served rankings, with overrides and their reasons: training signal.",
    fields: &[
        f("requisition_id", Kind::Utf8, true, "Requisition identifier"),
        f("candidate_id", Kind::Pseudonym("candidate"), true, "Candidate pseudonym"),
        f("recruiter_id", Kind::Pseudonym("recruiter"), false, "Recruiter pseudonym"),
        one_of("decision", true, DECISIONS_MADE, "advanced, rejected, hired or withdrawn"),
        f("overrides_model", Kind::Bool, true, "The recruiter went against the model's suggestion"),
        f("reason_code", Kind::Utf8, false, "Why, as a code"),
        f("reason_text", Kind::Utf8, false, "Why, in the recruiter's words"),
        f("recorded_at", Kind::Timestamp, true, "When the feedback was given"),
    ],
    key: &["requisition_id", "candidate_id", "decision"],
    partitions: &[("month", PartitionRule::Month("recorded_at"))],
};

static HIRES: TableDef = TableDef {
    table: Table::Hires,
    doc: "Candidates who became employees: links the ATS candidate pseudonym to the HRIS employee pseudonym.",
    fields: &[
        f("employee_id", Kind::Pseudonym("employee"), true, "Employee pseudonym"),
        f("candidate_id", Kind::Pseudonym("candidate"), true, "Candidate pseudonym"),
        f("requisition_id", Kind::Utf8, true, "Requisition the hire filled"),
        f("job_family", Kind::Utf8, true, "Job family"),
        f("hire_date", Kind::Date, true, "First day of employment"),
    ],
    key: &["employee_id"],
    partitions: &[("month", PartitionRule::Month("hire_date"))],
};

static OUTCOMES: TableDef = TableDef {
    table: Table::Outcomes,
    doc: "What the HRIS reported about each hire at 3, 6, 12 and 24 months.",
    fields: &[
        f("employee_id", Kind::Pseudonym("employee"), true, "Employee pseudonym"),
        f("hire_date", Kind::Date, true, "First day of employment"),
        f(
            "milestone",
            Kind::Milestone,
            true,
            "3m, 6m, 12m or 24m (derived from the dates when the export has no column)",
        ),
        f("milestone_date", Kind::Date, true, "Date the outcome was observed"),
        f("employed", Kind::Bool, true, "Still employed at the milestone"),
        ranged("performance_rating", Kind::Int, false, 1.0, 5.0, "Performance rating 1-5 (empty for leavers)"),
        f("exit_reason", Kind::Utf8, false, "Why the person left, if they did"),
    ],
    key: &["employee_id", "milestone"],
    partitions: &[
        ("milestone", PartitionRule::Identity("milestone")),
        ("month", PartitionRule::Month("milestone_date")),
    ],
};

static PROTECTED: TableDef = TableDef {
    table: Table::ProtectedAttributes,
    doc: "Protected attributes (gender, age band, ...) per candidate. Used only to measure fairness, never as features.",
    fields: &[
        f("candidate_id", Kind::Pseudonym("candidate"), true, "Candidate pseudonym"),
        f("attributes", Kind::Utf8Map, true, "Attribute name to group"),
        f("recorded_at", Kind::Date, true, "When the attributes were collected"),
    ],
    key: &["candidate_id"],
    partitions: &[("month", PartitionRule::Month("recorded_at"))],
};

static QUARANTINE: TableDef = TableDef {
    table: Table::Quarantine,
    doc: "Rows ingestion refused, with a reason naming the row and field. Personal data is scrubbed like any other table.",
    fields: &[
        f("target_table", Kind::Utf8, true, "Table the row was meant for"),
        f("source_sha256", Kind::Utf8, true, "Content hash of the export file"),
        f("row_number", Kind::Int, true, "Line (CSV, JSON lines) or row (Parquet) in the export"),
        f("field", Kind::Utf8, false, "Offending field, when one field is to blame"),
        f("reason", Kind::Utf8, true, "Why the row was refused"),
        f("raw", Kind::Utf8, false, "The row's mapped values as JSON, identifiers pseudonymised"),
        f("quarantined_at", Kind::Timestamp, true, "When"),
    ],
    key: &["target_table", "source_sha256", "row_number"],
    partitions: &[
        ("table", PartitionRule::Identity("target_table")),
        ("month", PartitionRule::Month("quarantined_at")),
    ],
};

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Decisions,
        Table::Feedback,
        Table::Hires,
        Table::Outcomes,
        Table::ProtectedAttributes,
        Table::Quarantine,
    ];

    pub fn def(self) -> &'static TableDef {
        match self {
            Table::Decisions => &DECISIONS,
            Table::Feedback => &FEEDBACK,
            Table::Hires => &HIRES,
            Table::Outcomes => &OUTCOMES,
            Table::ProtectedAttributes => &PROTECTED,
            Table::Quarantine => &QUARANTINE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::Decisions => "decisions",
            Table::Feedback => "feedback",
            Table::Hires => "hires",
            Table::Outcomes => "outcomes",
            Table::ProtectedAttributes => "protected_attributes",
            Table::Quarantine => "quarantine",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TableDef {
    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// Whether a field lives only in the partition path.
    pub fn in_path_only(&self, field: &str) -> bool {
        self.partitions.iter().any(|(_, rule)| matches!(rule, PartitionRule::Identity(f) if *f == field))
    }

    /// Schema of the Parquet files: fields not held in the path, then system columns.
    pub fn file_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .fields
            .iter()
            .filter(|f| !self.in_path_only(f.name))
            .map(|f| Field::new(f.name, f.kind.data_type(), !f.required))
            .collect();
        fields.push(Field::new("event_key", DataType::Utf8, false));
        fields.push(Field::new("row_hash", DataType::Utf8, false));
        fields.push(Field::new("batch_id", DataType::Utf8, false));
        fields.push(Field::new("source_file", DataType::Utf8, false));
        fields.push(Field::new("ingested_at", Kind::Timestamp.data_type(), false));
        Arc::new(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_key_and_partition_names_a_field() {
        for t in Table::ALL {
            let def = t.def();
            assert_eq!(def.table, t);
            assert_eq!(Table::from_name(t.name()), Some(t));
            for k in def.key {
                assert!(def.field(k).is_some(), "{t}: key {k} is not a field");
            }
            for (_, rule) in def.partitions {
                let (PartitionRule::Identity(f) | PartitionRule::Month(f)) = rule;
                let (_, fd) = def.field(f).unwrap_or_else(|| panic!("{t}: partition field {f}"));
                if matches!(rule, PartitionRule::Month(_)) {
                    assert!(matches!(fd.kind, Kind::Date | Kind::Timestamp), "{t}: month of non-date {f}");
                    assert!(fd.required, "{t}: partition field {f} must be required");
                }
            }
            // A partition-path field must not also be a file column: pyarrow and DuckDB would
            // see the name twice.
            let schema = def.file_schema();
            for (name, rule) in def.partitions {
                assert!(schema.field_with_name(name).is_err(), "{t}: {name} both in path and file");
                if let PartitionRule::Identity(f) = rule {
                    assert!(schema.field_with_name(f).is_err());
                }
            }
        }
    }

    /// A data type as the schema listing shows it (names of nested fields included: readers
    /// see them).
    fn render(t: &DataType) -> String {
        match t {
            DataType::Map(entries, sorted) => {
                let DataType::Struct(kv) = entries.data_type() else { return format!("{t:?}") };
                let parts: Vec<String> = kv
                    .iter()
                    .map(|f| {
                        format!("{} {}{}", f.name(), render(f.data_type()), if f.is_nullable() { "?" } else { "" })
                    })
                    .collect();
                format!("map<{}: {}>{}", entries.name(), parts.join(", "), if *sorted { " sorted" } else { "" })
            }
            DataType::Timestamp(unit, tz) => format!("timestamp[{unit:?}, {}]", tz.as_deref().unwrap_or("naive")),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// Every table's on-disk layout: partition directories, then each file column with its
    /// type (`?` = nullable). Existing stores are read by this layout, so a change here must be
    /// deliberate: edit the listing in the same commit, and say how old files still read.
    #[test]
    fn the_on_disk_schema_is_pinned() {
        let mut listing = String::new();
        for t in Table::ALL {
            let def = t.def();
            let parts: Vec<String> = def
                .partitions
                .iter()
                .map(|(name, rule)| match rule {
                    PartitionRule::Identity(f) => format!("{name}=<{f}>"),
                    PartitionRule::Month(f) => format!("{name}=<month of {f}>"),
                })
                .collect();
            listing.push_str(&format!("lake/{}/{}/part-*.parquet\n", t.name(), parts.join("/")));
            for f in def.file_schema().fields() {
                let null = if f.is_nullable() { "?" } else { "" };
                listing.push_str(&format!("  {} {}{null}\n", f.name(), render(f.data_type())));
            }
        }
        let expected = "\
lake/decisions/month=<month of decided_at>/part-*.parquet
  requisition_id utf8
  candidate_id utf8
  job_family utf8
  decided_at timestamp[Microsecond, +00:00]
  source utf8
  stage_reached utf8?
  decision utf8?
  skills utf8?
  features map<entries: key utf8, value float64?>?
  decision_id utf8?
  model_version utf8?
  arm utf8?
  score float64?
  route utf8?
  shadow_version utf8?
  shadow_score float64?
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
lake/feedback/month=<month of recorded_at>/part-*.parquet
  requisition_id utf8
  candidate_id utf8
  recruiter_id utf8?
  decision utf8
  overrides_model boolean
  reason_code utf8?
  reason_text utf8?
  recorded_at timestamp[Microsecond, +00:00]
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
lake/hires/month=<month of hire_date>/part-*.parquet
  employee_id utf8
  candidate_id utf8
  requisition_id utf8
  job_family utf8
  hire_date date32
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
lake/outcomes/milestone=<milestone>/month=<month of milestone_date>/part-*.parquet
  employee_id utf8
  hire_date date32
  milestone_date date32
  employed boolean
  performance_rating int64?
  exit_reason utf8?
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
lake/protected_attributes/month=<month of recorded_at>/part-*.parquet
  candidate_id utf8
  attributes map<entries: key utf8, value utf8?>
  recorded_at date32
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
lake/quarantine/table=<target_table>/month=<month of quarantined_at>/part-*.parquet
  source_sha256 utf8
  row_number int64
  field utf8?
  reason utf8
  raw utf8?
  quarantined_at timestamp[Microsecond, +00:00]
  event_key utf8
  row_hash utf8
  batch_id utf8
  source_file utf8
  ingested_at timestamp[Microsecond, +00:00]
";
        assert_eq!(listing, expected, "the lake's on-disk schema changed:\n{listing}");
    }
}
