//! One batch: read an export, convert each row through its mapping, deduplicate on the natural
//! event key, write good rows and quarantined rows, commit, report.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hrloop_core::Clock;
use hrloop_lake::{ExistingKeys, Lake, PartitionedWriter, RowKeys, Table, Value};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::mapping::{ResolvedMapping, SlotOutcome};
use crate::pseudonym::Pseudonymiser;
use crate::report::{BatchReport, CRITICAL_COMPLETENESS, FieldQuality, Freshness};
use crate::source::{Format, RawRow, read_rows};
use crate::taxonomy::Taxonomy;
use crate::{Error, Result};

/// How many quarantine reasons the report carries.
const SAMPLES: usize = 10;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Where the batch's timestamps come from.
    pub clock: Arc<dyn Clock>,
    /// Draw a progress bar on a terminal.
    pub progress: bool,
}

#[derive(Default, Clone)]
struct SlotStats {
    present: u64,
    type_violations: u64,
    range_violations: u64,
    unknown: u64,
    unknown_samples: BTreeSet<String>,
}

/// Ingest one export file into the lake. An `Err` means the file was refused whole and
/// nothing was stored; an `Ok` means every accepted and quarantined row is durable.
pub async fn ingest_file(
    lake: &Lake,
    input: &Path,
    mapping: &ResolvedMapping,
    pseudo: &Pseudonymiser,
    taxonomy: &Taxonomy,
    opts: &IngestOptions,
) -> Result<BatchReport> {
    let format = mapping.mapping.format.or_else(|| Format::from_path(input)).ok_or_else(|| {
        Error::unreadable(input, "unknown file type: use .csv, .jsonl or .parquet, or set `format` in the mapping")
    })?;
    let meta = std::fs::metadata(input).map_err(|e| Error::unreadable(input, format!("cannot open: {e}")))?;
    if !meta.is_file() {
        return Err(Error::unreadable(input, "not a regular file"));
    }
    let sha = sha256_file(input)?;
    let now = opts.clock.now();
    let batch_id = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let source_file = input.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    let started_at = now.to_rfc3339();
    lake.store().sweep_staging(std::time::Duration::from_secs(3600))?;

    let quarantine_keys =
        lake.existing_keys(Table::Quarantine, Some(&format!("table={}", mapping.table.name()))).await?;
    let handle = tokio::runtime::Handle::current();
    let job = Job {
        lake: lake.clone(),
        input: input.to_path_buf(),
        format,
        mapping: mapping.clone(),
        pseudo: pseudo.clone(),
        taxonomy: taxonomy.clone(),
        now,
        progress: opts.progress,
        sha: sha.clone(),
        batch_id: batch_id.clone(),
        source_file: source_file.clone(),
        quarantine_keys,
        progress_len: meta.len(),
    };
    let done = tokio::task::spawn_blocking(move || job.run(&handle))
        .await
        .map_err(|e| Error::unreadable(input, format!("ingestion stopped: {e}")))??;

    let mut files_written = done.writer.commit().await?;
    files_written.extend(done.quarantine.commit().await?);

    let rows_read = done.rows_read.max(1) as f64;
    let fields: Vec<FieldQuality> = mapping
        .slots
        .iter()
        .zip(done.stats)
        .map(|(slot, s)| {
            let completeness = if done.rows_read == 0 { 1.0 } else { s.present as f64 / rows_read };
            FieldQuality {
                field: slot.label.clone(),
                column: slot.column.clone(),
                critical: slot.critical,
                present: s.present,
                completeness,
                type_violations: s.type_violations,
                range_violations: s.range_violations,
                unknown_values: s.unknown,
                unknown_samples: s.unknown_samples.into_iter().collect(),
                flagged: slot.critical && completeness < CRITICAL_COMPLETENESS,
            }
        })
        .collect();
    let attention = done.rows_quarantined > 0 || fields.iter().any(|f| f.flagged);
    let report = BatchReport {
        batch_id,
        mapping: mapping.mapping.name.clone(),
        table: mapping.table.name().to_string(),
        source_file,
        source_sha256: sha,
        format: format!("{format:?}").to_lowercase(),
        started_at,
        finished_at: opts.clock.now().to_rfc3339(),
        rows_read: done.rows_read,
        rows_accepted: done.rows_accepted,
        rows_quarantined: done.rows_quarantined,
        rows_already_present: done.rows_already_present,
        duplicates_in_file: done.duplicates_in_file,
        conflicts: done.conflicts,
        fields,
        freshness: done.newest.map(|t| Freshness { newest_event: t.to_rfc3339(), age_days: (now - t).num_days() }),
        files_written,
        quarantine_samples: done.samples,
        status: if attention { "attention" } else { "ok" }.into(),
    };
    let path = object_store::path::Path::from(format!("reports/ingest/{}.json", report.batch_id));
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    lake.store().put_atomic(&path, json.into()).await?;
    tracing::info!(
        batch = %report.batch_id,
        table = %report.table,
        accepted = report.rows_accepted,
        quarantined = report.rows_quarantined,
        already_present = report.rows_already_present,
        "batch ingested"
    );
    Ok(report)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::unreadable(path, format!("cannot open: {e}")))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

struct Job {
    lake: Lake,
    input: std::path::PathBuf,
    format: Format,
    mapping: ResolvedMapping,
    pseudo: Pseudonymiser,
    taxonomy: Taxonomy,
    now: DateTime<Utc>,
    progress: bool,
    sha: String,
    batch_id: String,
    source_file: String,
    quarantine_keys: ExistingKeys,
    progress_len: u64,
}

struct Done {
    writer: PartitionedWriter,
    quarantine: PartitionedWriter,
    stats: Vec<SlotStats>,
    rows_read: u64,
    rows_accepted: u64,
    rows_quarantined: u64,
    rows_already_present: u64,
    duplicates_in_file: u64,
    conflicts: u64,
    newest: Option<DateTime<Utc>>,
    samples: Vec<String>,
}

impl Job {
    fn run(self, handle: &tokio::runtime::Handle) -> Result<Done> {
        let table = self.mapping.table;
        let def = table.def();
        let mut writer = PartitionedWriter::new(&self.lake, table, &self.batch_id, &self.source_file, self.now)?;
        let mut quarantine =
            PartitionedWriter::new(&self.lake, Table::Quarantine, &self.batch_id, &self.source_file, self.now)?;
        let mut stats = vec![SlotStats::default(); self.mapping.slots.len()];
        let mut stored: HashMap<String, ExistingKeys> = HashMap::new();
        // Keys accepted from this file: line number and content hash.
        let mut seen: HashMap<[u8; 16], (u64, [u8; 8])> = HashMap::new();
        let (mut accepted, mut quarantined, mut present, mut dups, mut conflicts) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut newest: Option<DateTime<Utc>> = None;
        let mut samples = Vec::new();
        let event_time_field = def.partitions.iter().find_map(|(_, rule)| match rule {
            hrloop_lake::PartitionRule::Month(f) => def.field(f).map(|(i, _)| i),
            _ => None,
        });
        let key_names = def.key.join(" + ");

        let progress = if self.progress {
            let pb = ProgressBar::with_draw_target(Some(self.progress_len), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} ingesting {msg} [{bar:30}] {percent}% ({eta} left)")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            pb.set_message(self.source_file.clone());
            pb
        } else {
            ProgressBar::hidden()
        };

        let mut quarantine_row =
            |row_number: u64, field: Option<String>, reason: String, raw: Option<String>| -> Result<()> {
                quarantined += 1;
                let full = format!("line {row_number}: {reason}");
                if samples.len() < SAMPLES {
                    samples.push(full.clone());
                }
                let qrow = vec![
                    Value::Str(table.name().into()),
                    Value::Str(self.sha.clone()),
                    Value::Int(row_number as i64),
                    field.map_or(Value::Null, Value::Str),
                    Value::Str(full),
                    raw.map_or(Value::Null, Value::Str),
                    Value::Timestamp(self.now),
                ];
                let keys = RowKeys::of(Table::Quarantine.def(), &qrow);
                if !self.quarantine_keys.contains_key(&keys.event_key) {
                    quarantine.push(&qrow, &keys)?;
                }
                Ok(())
            };

        let rows_read = read_rows(
            &self.input,
            self.format,
            &self.mapping.columns,
            self.mapping.mapping.delimiter.as_deref(),
            &progress,
            &mut |line, row| {
                let raw = match row {
                    RawRow::Broken(why) => return quarantine_row(line, None, why, None),
                    RawRow::Values(raw) => raw,
                };
                let conv = self.mapping.convert(raw, &self.pseudo, &self.taxonomy);
                for (s, o) in stats.iter_mut().zip(&conv.slot_outcomes) {
                    match o {
                        SlotOutcome::Ok => s.present += 1,
                        SlotOutcome::TypeViolation => s.type_violations += 1,
                        SlotOutcome::RangeViolation => s.range_violations += 1,
                        SlotOutcome::Missing => {}
                    }
                }
                for (si, value) in conv.unknown {
                    let s = &mut stats[si];
                    s.unknown += 1;
                    if s.unknown_samples.len() < 5 {
                        s.unknown_samples.insert(value);
                    }
                }
                if !conv.problems.is_empty() {
                    let reason = conv.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                    let field = conv.problems.first().map(|p| p.field.clone());
                    return quarantine_row(line, field, reason, Some(self.mapping.scrubbed_json(raw, &self.pseudo)));
                }
                let values = conv.values;
                let partition = match hrloop_lake::partition_of(def, &values) {
                    Ok(p) => p,
                    Err(e) => {
                        return quarantine_row(
                            line,
                            None,
                            e.to_string(),
                            Some(self.mapping.scrubbed_json(raw, &self.pseudo)),
                        );
                    }
                };
                let keys = RowKeys::of(def, &values);
                if let Some((first_line, hash)) = seen.get(&keys.event_key) {
                    if *hash == keys.row_hash {
                        dups += 1;
                        return Ok(());
                    }
                    conflicts += 1;
                    let why = format!(
                        "same {key_names} as line {first_line} of this file but different values; quarantined for review"
                    );
                    return quarantine_row(line, None, why, Some(self.mapping.scrubbed_json(raw, &self.pseudo)));
                }
                if !stored.contains_key(&partition) {
                    let keys = handle.block_on(self.lake.existing_keys(table, Some(&partition)))?;
                    stored.insert(partition.clone(), keys);
                }
                match stored[&partition].get(&keys.event_key) {
                    Some(hash) if *hash == keys.row_hash => {
                        present += 1;
                        seen.insert(keys.event_key, (line, keys.row_hash));
                        return Ok(());
                    }
                    Some(_) => {
                        conflicts += 1;
                        let why = format!(
                            "same {key_names} as a stored record but different values; corrections are not applied automatically, quarantined for review"
                        );
                        return quarantine_row(line, None, why, Some(self.mapping.scrubbed_json(raw, &self.pseudo)));
                    }
                    None => {}
                }
                if let Some(i) = event_time_field {
                    let t = match &values[i] {
                        Value::Timestamp(t) => Some(*t),
                        Value::Date(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                        _ => None,
                    };
                    newest = newest.max(t);
                }
                writer.push_to(&partition, &values, &keys)?;
                seen.insert(keys.event_key, (line, keys.row_hash));
                accepted += 1;
                Ok(())
            },
        )?;
        progress.finish_and_clear();
        Ok(Done {
            writer,
            quarantine,
            stats,
            rows_read,
            rows_accepted: accepted,
            rows_quarantined: quarantined,
            rows_already_present: present,
            duplicates_in_file: dups,
            conflicts,
            newest,
            samples,
        })
    }
}
