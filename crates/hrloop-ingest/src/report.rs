//! The data-quality report of one ingested batch: what landed, what was refused and why, how
//! complete each field is, values outside the taxonomy, duplicates, freshness.

use comfy_table::{Cell, Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_lake::WrittenFile;
use serde::{Deserialize, Serialize};

/// Critical fields below this completeness are flagged.
pub const CRITICAL_COMPLETENESS: f64 = 0.95;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldQuality {
    pub field: String,
    pub column: String,
    pub critical: bool,
    /// Rows with a usable value.
    pub present: u64,
    /// `present / rows_read`.
    pub completeness: f64,
    pub type_violations: u64,
    pub range_violations: u64,
    pub unknown_values: u64,
    /// Up to five distinct values not in the taxonomy (taxonomy values are not personal data).
    pub unknown_samples: Vec<String>,
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Freshness {
    /// Newest event in the accepted rows.
    pub newest_event: String,
    pub age_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchReport {
    pub batch_id: String,
    pub mapping: String,
    pub table: String,
    pub source_file: String,
    pub source_sha256: String,
    pub format: String,
    pub started_at: String,
    pub finished_at: String,
    pub rows_read: u64,
    /// Rows newly stored.
    pub rows_accepted: u64,
    /// Rows refused, with their reasons in the quarantine table.
    pub rows_quarantined: u64,
    /// Rows identical to ones already stored (re-ingested exports): no effect.
    pub rows_already_present: u64,
    /// Rows repeated within this file: stored once.
    pub duplicates_in_file: u64,
    /// Rows with the key of a stored or earlier row but other values: quarantined for review.
    pub conflicts: u64,
    /// Rows about people who were erased (`hrloop erase`): dropped, never stored, not even in
    /// quarantine.
    #[serde(default)]
    pub rows_erased: u64,
    pub fields: Vec<FieldQuality>,
    pub freshness: Option<Freshness>,
    pub files_written: Vec<WrittenFile>,
    /// The first quarantine reasons, for the console.
    pub quarantine_samples: Vec<String>,
    /// `ok`, or `attention` when rows were refused or a critical field is under 95 %.
    pub status: String,
}

impl BatchReport {
    pub fn flagged_fields(&self) -> Vec<&FieldQuality> {
        self.fields.iter().filter(|f| f.flagged).collect()
    }

    /// The report as a person reads it in a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Batch {} — {} ({}) → table {}\n",
            self.batch_id, self.source_file, self.mapping, self.table
        ));
        out.push_str(&format!(
            "rows read {}  accepted {}  quarantined {}  already present {}  duplicates in file {}  conflicts {}{}\n",
            self.rows_read,
            self.rows_accepted,
            self.rows_quarantined,
            self.rows_already_present,
            self.duplicates_in_file,
            self.conflicts,
            if self.rows_erased > 0 {
                format!("  of erased people (dropped) {}", self.rows_erased)
            } else {
                String::new()
            }
        ));
        if let Some(f) = &self.freshness {
            out.push_str(&format!("newest event {} ({} days old)\n", f.newest_event, f.age_days));
        }
        let mut t = TextTable::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec!["field", "column", "complete", "type errors", "out of range", "unknown values", ""]);
        for f in &self.fields {
            let unknown = if f.unknown_values == 0 {
                String::new()
            } else {
                format!("{} ({})", f.unknown_values, f.unknown_samples.join(", "))
            };
            let flag = if f.flagged {
                "CRITICAL < 95 %"
            } else if f.critical {
                "critical"
            } else {
                ""
            };
            t.add_row(vec![
                Cell::new(&f.field),
                Cell::new(&f.column),
                Cell::new(format!("{:.1} %", f.completeness * 100.0)),
                Cell::new(f.type_violations),
                Cell::new(f.range_violations),
                Cell::new(unknown),
                Cell::new(flag),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        if !self.quarantine_samples.is_empty() {
            out.push_str("quarantined (first reasons; all are in lake/quarantine):\n");
            for s in &self.quarantine_samples {
                out.push_str(&format!("  - {s}\n"));
            }
        }
        out.push_str(&format!("status: {}\n", self.status));
        out
    }
}
