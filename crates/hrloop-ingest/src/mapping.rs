//! Mapping files (`data/mappings/*.toml`): how one source's columns become one lake table's
//! fields, and which columns are personal data.
//!
//! ```toml
//! format_version = 1
//! name = "hris_outcomes"
//! table = "outcomes"
//! [pii]
//! identifiers = ["Employee ID"]                 # become HMAC pseudonyms
//! drop = ["Full name", "E-mail", "Personnummer"] # never read past the header
//! [fields.employee_id]
//! column = "Employee ID"
//! [fields.performance_rating]
//! column = "Performance rating"
//! critical = true
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use hrloop_core::Milestone;
use hrloop_lake::{Kind, Table, TableDef, Value};
use serde::{Deserialize, Serialize};

use crate::parse;
use crate::pseudonym::Pseudonymiser;
use crate::source::Format;
use crate::taxonomy::Taxonomy;
use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

/// A mapping file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Version of this file format; currently 1.
    pub format_version: u32,
    /// Short name, shown in reports.
    pub name: String,
    /// What export this reads, for people.
    #[serde(default)]
    pub description: String,
    /// Lake table the rows go to: decisions, feedback, hires, outcomes, protected_attributes.
    pub table: String,
    /// Input format; by default from the file extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV delimiter: "," ";" "\t", or "auto" (default) to detect from the header line.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Separator of multi-valued cells (skills).
    #[serde(default = "default_list_separator")]
    pub list_separator: String,
    /// Columns holding personal data.
    #[serde(default)]
    pub pii: Pii,
    /// Table field name (or `map.key`, e.g. `features.years_experience`) to its source.
    pub fields: BTreeMap<String, FieldSpec>,
}

fn default_list_separator() -> String {
    "|".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pii {
    /// Person identifiers: replaced by keyed HMAC pseudonyms before anything is stored.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// Names, e-mails, national ids, free text about a person: dropped unread.
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Source column (header name, case-insensitive).
    pub column: Option<String>,
    /// A constant for every row instead of a column.
    pub value: Option<String>,
    /// Computed from other fields: `milestone_from_dates` (outcomes without a milestone column).
    pub derive: Option<Derive>,
    /// Source value to canonical value, e.g. `{ "Ja" = "true" }` (case-insensitive).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Inclusive `[min, max]` for numbers; outside it the row is quarantined.
    pub range: Option<[f64; 2]>,
    /// Flag in the quality report when under 95 % complete (required fields always are).
    pub critical: Option<bool>,
    /// Check values against `data/taxonomy/<name>.txt`.
    pub taxonomy: Option<String>,
    /// For `milestone_from_dates`: allowed distance from the exact anniversary, days.
    pub tolerance_days: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derive {
    MilestoneFromDates,
}

/// One value read from one source column (a field, or one entry of a map field).
#[derive(Debug, Clone)]
pub struct Slot {
    /// `employee_id` or `features.years_experience`.
    pub label: String,
    pub column: String,
    /// Index into [`ResolvedMapping::columns`].
    pub col: usize,
    pub kind: Kind,
    pub required: bool,
    pub critical: bool,
    pub range: Option<(f64, f64)>,
    values: HashMap<String, String>,
    pub taxonomy: Option<String>,
    /// The catalog's closed set of values for this field, if any.
    pub allowed: Option<&'static [&'static str]>,
}

#[derive(Debug, Clone)]
enum Source {
    Slot(usize),
    Map(Vec<(String, usize)>),
    Const(Value),
    MilestoneFromDates { hire: usize, at: usize, tolerance_days: i64 },
    Absent,
}

/// A mapping checked against the table catalog, ready to convert rows.
#[derive(Debug, Clone)]
pub struct ResolvedMapping {
    pub mapping: Mapping,
    pub path: PathBuf,
    pub table: Table,
    pub def: &'static TableDef,
    /// Source columns read, in the order rows hand them over.
    pub columns: Vec<String>,
    pub slots: Vec<Slot>,
    sources: Vec<Source>,
}

/// Something wrong with one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowProblem {
    pub field: String,
    pub column: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "field {} (column {c:?}): {}", self.field, self.reason),
            None => write!(f, "field {}: {}", self.field, self.reason),
        }
    }
}

/// What happened to each slot of one row, for the quality report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    Missing,
    Ok,
    TypeViolation,
    RangeViolation,
}

/// The result of converting one row.
#[derive(Debug)]
pub struct Converted {
    pub values: Vec<Value>,
    pub problems: Vec<RowProblem>,
    pub slot_outcomes: Vec<SlotOutcome>,
    /// Taxonomy misses: (slot index, value).
    pub unknown: Vec<(usize, String)>,
}

impl ResolvedMapping {
    pub fn load(path: &Path, taxonomy: &Taxonomy) -> Result<Self> {
        let err = |reason: String| Error::Mapping { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mapping: Mapping = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        Self::resolve(mapping, path, taxonomy)
    }

    pub fn resolve(mapping: Mapping, path: &Path, taxonomy: &Taxonomy) -> Result<Self> {
        let err = |reason: String| Error::Mapping { path: path.to_path_buf(), reason };
        if mapping.format_version != FORMAT_VERSION {
            return Err(err(format!(
                "format_version {} is not supported (this hrloop reads version {FORMAT_VERSION})",
                mapping.format_version
            )));
        }
        let table = Table::from_name(&mapping.table).filter(|t| *t != Table::Quarantine).ok_or_else(|| {
            err(format!(
                "table {:?} is not an ingestible table; use one of: decisions, feedback, hires, outcomes, protected_attributes",
                mapping.table
            ))
        })?;
        let def = table.def();
        let lower = |s: &str| s.trim().to_lowercase();
        let identifiers: Vec<String> = mapping.pii.identifiers.iter().map(|s| lower(s)).collect();
        let dropped: Vec<String> = mapping.pii.drop.iter().map(|s| lower(s)).collect();

        for name in mapping.fields.keys() {
            let base = name.split('.').next().unwrap_or(name);
            match def.field(base) {
                None => {
                    let known: Vec<&str> = def.fields.iter().map(|f| f.name).collect();
                    return Err(err(format!(
                        "field {name:?} is not in table {table}; its fields are {}",
                        known.join(", ")
                    )));
                }
                Some((_, fd)) => {
                    let is_map = matches!(fd.kind, Kind::FloatMap | Kind::Utf8Map);
                    if is_map != name.contains('.') {
                        return Err(err(if is_map {
                            format!("field {base} holds named values; map entries as \"{base}.<name>\"")
                        } else {
                            format!("field {name:?}: only map fields take a \".<name>\" suffix")
                        }));
                    }
                }
            }
        }

        let mut columns: Vec<String> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut new_slot = |label: &str,
                            spec: &FieldSpec,
                            kind: Kind,
                            required: bool,
                            default_range: Option<(f64, f64)>,
                            allowed: Option<&'static [&'static str]>|
         -> Result<usize> {
            let column = spec.column.clone().expect("checked by caller");
            let lc = lower(&column);
            if dropped.contains(&lc) {
                return Err(err(format!("column {column:?} is declared pii.drop but mapped to {label}")));
            }
            let is_pseudonym = matches!(kind, Kind::Pseudonym(_));
            if is_pseudonym != identifiers.contains(&lc) {
                return Err(err(if is_pseudonym {
                    format!("{label} is a person identifier: list column {column:?} under [pii] identifiers")
                } else {
                    format!(
                        "column {column:?} is listed under [pii] identifiers but {label} is not an identifier field"
                    )
                }));
            }
            if let Some(t) = &spec.taxonomy
                && !taxonomy.has_list(t)
            {
                return Err(err(format!(
                    "{label}: taxonomy {t:?} not found in {}",
                    taxonomy.dir().map(|d| d.display().to_string()).unwrap_or_default()
                )));
            }
            let col = match columns.iter().position(|c| lower(c) == lc) {
                Some(i) => i,
                None => {
                    columns.push(column.clone());
                    columns.len() - 1
                }
            };
            slots.push(Slot {
                label: label.to_string(),
                column,
                col,
                kind,
                required,
                critical: spec.critical.unwrap_or(required),
                range: spec.range.map(|[a, b]| (a, b)).or(default_range),
                values: spec.values.iter().map(|(k, v)| (lower(k), v.clone())).collect(),
                taxonomy: spec.taxonomy.clone(),
                allowed,
            });
            Ok(slots.len() - 1)
        };

        let mut sources = Vec::with_capacity(def.fields.len());
        for fd in def.fields {
            let source = if matches!(fd.kind, Kind::FloatMap | Kind::Utf8Map) {
                let entry_kind = if fd.kind == Kind::FloatMap { Kind::Float } else { Kind::Utf8 };
                let prefix = format!("{}.", fd.name);
                let mut entries = Vec::new();
                for (name, spec) in mapping.fields.iter().filter(|(n, _)| n.starts_with(&prefix)) {
                    if spec.column.is_none() {
                        return Err(err(format!("{name}: map entries need a column")));
                    }
                    let key = name[prefix.len()..].to_string();
                    entries.push((key, new_slot(name, spec, entry_kind, false, None, None)?));
                }
                if entries.is_empty() { Source::Absent } else { Source::Map(entries) }
            } else {
                match mapping.fields.get(fd.name) {
                    None => Source::Absent,
                    Some(spec) => match (&spec.column, &spec.value, spec.derive) {
                        (Some(_), None, None) => {
                            Source::Slot(new_slot(fd.name, spec, fd.kind, fd.required, fd.range, fd.allowed)?)
                        }
                        (None, Some(v), None) => {
                            let value = parse_value(fd.kind, v, None)
                                .map_err(|e| err(format!("{}: constant {}", fd.name, e.reason)))?;
                            Source::Const(value)
                        }
                        (None, None, Some(Derive::MilestoneFromDates)) => {
                            let (hire, at) = match (def.field("hire_date"), def.field("milestone_date")) {
                                (Some((h, _)), Some((a, _))) if fd.kind == Kind::Milestone => (h, a),
                                _ => {
                                    return Err(err(format!(
                                        "{}: milestone_from_dates only derives an outcome's milestone",
                                        fd.name
                                    )));
                                }
                            };
                            Source::MilestoneFromDates { hire, at, tolerance_days: spec.tolerance_days.unwrap_or(20) }
                        }
                        _ => {
                            return Err(err(format!("{}: give exactly one of column, value or derive", fd.name)));
                        }
                    },
                }
            };
            if fd.required && matches!(source, Source::Absent) {
                return Err(err(format!(
                    "table {table} requires field {} ({}: {}); map it with column, value or derive",
                    fd.name,
                    fd.kind.describe(),
                    fd.doc
                )));
            }
            sources.push(source);
        }
        Ok(Self { mapping, path: path.to_path_buf(), table, def, columns, slots, sources })
    }

    /// Convert one row, given the raw text of each of [`Self::columns`].
    pub fn convert(&self, raw: &[Option<&str>], pseudo: &Pseudonymiser, taxonomy: &Taxonomy) -> Converted {
        let mut problems = Vec::new();
        let mut unknown = Vec::new();
        let mut slot_values = Vec::with_capacity(self.slots.len());
        let mut slot_outcomes = Vec::with_capacity(self.slots.len());
        for (si, slot) in self.slots.iter().enumerate() {
            let cleaned = raw.get(slot.col).copied().flatten().map(parse::clean);
            let Some(text) = cleaned.as_deref().filter(|t| !t.is_empty()) else {
                slot_values.push(Value::Null);
                slot_outcomes.push(SlotOutcome::Missing);
                continue;
            };
            let text = if slot.values.is_empty() {
                text
            } else {
                slot.values.get(&text.to_lowercase()).map(String::as_str).unwrap_or(text)
            };
            let parsed = match slot.kind {
                Kind::Pseudonym(ns) => Ok(Value::Str(pseudo.pseudonym(ns, text))),
                kind => parse_value(kind, text, slot.range),
            };
            let parsed = match (parsed, slot.allowed) {
                (Ok(Value::Str(s)), Some(allowed)) if !allowed.contains(&s.as_str()) => Err(ValueError {
                    reason: format!("{s:?} is not one of {}", allowed.join(", ")),
                    out_of_range: false,
                }),
                (other, _) => other,
            };
            match parsed {
                Ok(v) => {
                    if let (Some(t), Value::Str(s)) = (&slot.taxonomy, &v) {
                        for item in
                            s.split(self.mapping.list_separator.as_str()).map(str::trim).filter(|i| !i.is_empty())
                        {
                            if !taxonomy.contains(t, item) {
                                unknown.push((si, item.to_string()));
                            }
                        }
                    }
                    slot_values.push(v);
                    slot_outcomes.push(SlotOutcome::Ok);
                }
                Err(ValueError { reason, out_of_range }) => {
                    // Never echo an identifier's raw text.
                    let reason = if matches!(slot.kind, Kind::Pseudonym(_)) {
                        "unusable identifier".to_string()
                    } else {
                        reason
                    };
                    problems.push(RowProblem { field: slot.label.clone(), column: Some(slot.column.clone()), reason });
                    slot_values.push(Value::Null);
                    slot_outcomes.push(if out_of_range {
                        SlotOutcome::RangeViolation
                    } else {
                        SlotOutcome::TypeViolation
                    });
                }
            }
        }
        let mut values: Vec<Value> = Vec::with_capacity(self.def.fields.len());
        for source in &self.sources {
            values.push(match source {
                Source::Slot(i) => slot_values[*i].clone(),
                Source::Const(v) => v.clone(),
                Source::Absent | Source::MilestoneFromDates { .. } => Value::Null,
                Source::Map(entries) => match self.def.fields[values.len()].kind {
                    Kind::FloatMap => {
                        let m: Vec<(String, f64)> = entries
                            .iter()
                            .filter_map(|(k, i)| match slot_values[*i] {
                                Value::Float(x) => Some((k.clone(), x)),
                                _ => None,
                            })
                            .collect();
                        Value::FloatMap(m)
                    }
                    _ => {
                        let m: Vec<(String, String)> = entries
                            .iter()
                            .filter_map(|(k, i)| slot_values[*i].as_str().map(|s| (k.clone(), s.to_string())))
                            .collect();
                        Value::StrMap(m)
                    }
                },
            });
        }
        for (fi, source) in self.sources.iter().enumerate() {
            if let Source::MilestoneFromDates { hire, at, tolerance_days } = source
                && let (Value::Date(h), Value::Date(a)) = (&values[*hire], &values[*at])
            {
                match Milestone::from_dates(*h, *a, *tolerance_days) {
                    Some(m) => values[fi] = Value::Str(m.label().to_string()),
                    None => problems.push(RowProblem {
                        field: self.def.fields[fi].name.to_string(),
                        column: None,
                        reason: format!(
                            "milestone_date {a} is not 3, 6, 12 or 24 months (±{tolerance_days} days) after hire_date {h}"
                        ),
                    }),
                }
            }
        }
        for (fd, (v, source)) in self.def.fields.iter().zip(values.iter().zip(&self.sources)) {
            let already_blamed = problems.iter().any(|p| p.field == fd.name);
            // A derived value is missing because its inputs are: those are already blamed.
            let derived = matches!(source, Source::MilestoneFromDates { .. });
            if fd.required && *v == Value::Null && !already_blamed && !(derived && !problems.is_empty()) {
                let column = match source {
                    Source::Slot(i) => Some(self.slots[*i].column.clone()),
                    _ => None,
                };
                problems.push(RowProblem {
                    field: fd.name.to_string(),
                    column,
                    reason: "required value is missing".into(),
                });
            }
        }
        Converted { values, problems, slot_outcomes, unknown }
    }

    /// The row as JSON for quarantine: mapped columns only, identifiers pseudonymised.
    pub fn scrubbed_json(&self, raw: &[Option<&str>], pseudo: &Pseudonymiser) -> String {
        let mut obj = serde_json::Map::new();
        for slot in &self.slots {
            let text = raw.get(slot.col).copied().flatten();
            let v = match (slot.kind, text) {
                (_, None) => serde_json::Value::Null,
                (Kind::Pseudonym(ns), Some(t)) if !parse::clean(t).is_empty() => pseudo.pseudonym(ns, t).into(),
                (Kind::Pseudonym(_), Some(_)) => serde_json::Value::Null,
                (_, Some(t)) => t.chars().take(200).collect::<String>().into(),
            };
            obj.insert(slot.column.clone(), v);
        }
        serde_json::Value::Object(obj).to_string()
    }
}

pub(crate) struct ValueError {
    reason: String,
    out_of_range: bool,
}

fn parse_value(kind: Kind, text: &str, range: Option<(f64, f64)>) -> Result<Value, ValueError> {
    let type_err = |reason: String| ValueError { reason, out_of_range: false };
    let v = match kind {
        Kind::Utf8 | Kind::Pseudonym(_) => Value::Str(text.trim().to_string()),
        Kind::Milestone => {
            text.parse::<Milestone>().map(|m| Value::Str(m.label().into())).map_err(|e| type_err(e.to_string()))?
        }
        Kind::Int => Value::Int(parse::int(text).map_err(type_err)?),
        Kind::Float => Value::Float(parse::float(text).map_err(type_err)?),
        Kind::Bool => Value::Bool(parse::boolean(text).map_err(type_err)?),
        Kind::Date => Value::Date(parse::date(text).map_err(type_err)?),
        Kind::Timestamp => Value::Timestamp(parse::timestamp(text).map_err(type_err)?),
        Kind::FloatMap | Kind::Utf8Map => {
            return Err(type_err("a map field takes its values from map entries".into()));
        }
    };
    if let Some((lo, hi)) = range {
        let x = match v {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => return Ok(v),
        };
        if x < lo {
            return Err(ValueError {
                reason: format!("{} is below the minimum {lo}", text.trim()),
                out_of_range: true,
            });
        }
        if x > hi {
            return Err(ValueError {
                reason: format!("{} is above the maximum {hi}", text.trim()),
                out_of_range: true,
            });
        }
    }
    Ok(v)
}
