//! One batch: read an export, convert each row through its mapping, deduplicate on the natural
//! event key, write good rows and quarantined rows, commit, report.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hrloop_core::Clock;
use hrloop_lake::rows::quarantine::QuarantineRow;
use hrloop_lake::{ErasedSet, ExistingKeys, Lake, PartitionedWriter, Row, RowKeys, Table, Value};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::mapping::{ResolvedMapping, SlotOutcome};
use crate::pseudonym::Pseudonymiser;
use crate::report::{BatchReport, CRITICAL_COMPLETENESS, FieldQuality, Freshness};
use crate::source::{Format, RawCells, RawRecord, parse_json_object, read_chunks};
use crate::taxonomy::Taxonomy;
use crate::{Error, Result};
use rayon::prelude::*;

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
    // Erased people stay erased: their rows are dropped before anything is stored.
    let erased = lake.erased().await?;
    let handle = tokio::runtime::Handle::current();
    let job = Job {
        erased,
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
        rows_erased: done.rows_erased,
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
    erased: ErasedSet,
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
    rows_erased: u64,
    newest: Option<DateTime<Utc>>,
    samples: Vec<String>,
}

/// A stored or already-seen event: its content hash, and the line of this file it came from
/// (0 when it was stored by an earlier batch).
#[derive(Clone, Copy)]
struct Seen {
    hash: [u8; 8],
    line: u64,
}

/// A refused row, ready for quarantine.
struct Rejected {
    field: Option<String>,
    reason: String,
    raw: Option<String>,
}

/// A row after the parallel stage: converted, partitioned and keyed, or rejected.
struct Prepared {
    line: u64,
    outcomes: Vec<SlotOutcome>,
    unknown: Vec<(usize, String)>,
    row: std::result::Result<(Vec<Value>, String, RowKeys), Rejected>,
    /// The row is about an erased person: drop it.
    erased: bool,
}

impl Job {
    /// Everything about a row that does not depend on other rows: runs on all cores.
    fn prepare(&self, rec: RawRecord) -> Prepared {
        let line = rec.line;
        let reject = |field, reason, raw| Prepared {
            line,
            outcomes: Vec::new(),
            unknown: Vec::new(),
            row: Err(Rejected { field, reason, raw }),
            erased: false,
        };
        let owned: Vec<Option<String>>;
        let mut cells: Vec<Option<&str>> = Vec::with_capacity(self.mapping.columns.len());
        match &rec.cells {
            RawCells::Broken(why) => return reject(None, why.clone(), None),
            RawCells::Fields(record) => {
                for (i, field) in record.iter().enumerate() {
                    match std::str::from_utf8(field) {
                        Ok(text) => cells.push(Some(text)),
                        Err(_) => {
                            let why = format!("column {:?} is not valid UTF-8", self.mapping.columns[i]);
                            return reject(None, why, None);
                        }
                    }
                }
            }
            RawCells::JsonLine(bytes) => {
                let obj = match parse_json_object(bytes) {
                    Ok(o) => o,
                    Err(why) => return reject(None, why, None),
                };
                owned = self
                    .mapping
                    .columns
                    .iter()
                    .map(|c| {
                        obj.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(c.trim())).and_then(|(_, v)| match v {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                    })
                    .collect();
                cells.extend(owned.iter().map(|c| c.as_deref()));
            }
        }
        let conv = self.mapping.convert(&cells, &self.pseudo, &self.taxonomy);
        let row = if !conv.problems.is_empty() {
            Err(Rejected {
                field: conv.problems.first().map(|p| p.field.clone()),
                reason: conv.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                raw: Some(self.mapping.scrubbed_json(&cells, &self.pseudo)),
            })
        } else {
            let def = self.mapping.table.def();
            match hrloop_lake::partition_of(def, &conv.values) {
                Ok(partition) => {
                    let keys = RowKeys::of(def, &conv.values);
                    Ok((conv.values, partition, keys))
                }
                Err(e) => Err(Rejected {
                    field: None,
                    reason: e.to_string(),
                    raw: Some(self.mapping.scrubbed_json(&cells, &self.pseudo)),
                }),
            }
        };
        let erased = match &row {
            Ok((values, _, _)) => self.erased.row_mentions(values),
            Err(rejected) => rejected.raw.as_deref().is_some_and(|raw| self.erased.mentioned_in(raw)),
        };
        Prepared { line, outcomes: conv.slot_outcomes, unknown: conv.unknown, row, erased }
    }

    /// Read and convert on this thread and the rayon pool; deduplicate and write on a second
    /// thread, so both stages run at once.
    fn run(self, handle: &tokio::runtime::Handle) -> Result<Done> {
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
        let sink = Sink::new(&self)?;
        let job = &self;
        let (rows_read, sink) = std::thread::scope(|scope| -> Result<(u64, Sink)> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(2);
            let consumer = scope.spawn(move || -> Result<Sink> {
                let mut sink = sink;
                for chunk in rx {
                    for p in chunk {
                        sink.accept(job, handle, p)?;
                    }
                }
                Ok(sink)
            });
            let read = read_chunks(
                &job.input,
                job.format,
                &job.mapping.columns,
                job.mapping.mapping.delimiter.as_deref(),
                &progress,
                &mut |chunk| {
                    let prepared: Vec<Prepared> = chunk.into_par_iter().map(|rec| job.prepare(rec)).collect();
                    // A closed channel means the writer failed: its error is reported below.
                    tx.send(prepared).map_err(|_| Error::unreadable(&job.input, "the writer stopped"))
                },
            );
            drop(tx);
            let sink = consumer.join().map_err(|_| Error::unreadable(&job.input, "the writer thread panicked"))?;
            match (read, sink) {
                (_, Err(e)) => Err(e),
                (Err(e), _) => Err(e),
                (Ok(rows), Ok(sink)) => Ok((rows, sink)),
            }
        })?;
        progress.finish_and_clear();
        Ok(Done {
            writer: sink.writer,
            quarantine: sink.quarantine,
            stats: sink.stats,
            rows_read,
            rows_accepted: sink.accepted,
            rows_quarantined: sink.quarantined,
            rows_already_present: sink.present,
            duplicates_in_file: sink.dups,
            conflicts: sink.conflicts,
            rows_erased: sink.erased,
            newest: sink.newest,
            samples: sink.samples,
        })
    }
}

/// The order-dependent half of a batch: quality counts, deduplication, writing.
struct Sink {
    writer: PartitionedWriter,
    quarantine: PartitionedWriter,
    stats: Vec<SlotStats>,
    /// Per partition: events stored before this batch or accepted from this file.
    known: HashMap<String, HashMap<[u8; 16], Seen>>,
    accepted: u64,
    quarantined: u64,
    present: u64,
    dups: u64,
    conflicts: u64,
    erased: u64,
    newest: Option<DateTime<Utc>>,
    samples: Vec<String>,
    event_time_field: Option<usize>,
    key_names: String,
}

impl Sink {
    fn new(job: &Job) -> Result<Sink> {
        let table = job.mapping.table;
        let def = table.def();
        Ok(Sink {
            writer: PartitionedWriter::new(&job.lake, table, &job.batch_id, &job.source_file, job.now)?
                .knowing(&job.erased),
            quarantine: PartitionedWriter::new(&job.lake, Table::Quarantine, &job.batch_id, &job.source_file, job.now)?
                .knowing(&job.erased),
            stats: vec![SlotStats::default(); job.mapping.slots.len()],
            known: HashMap::new(),
            accepted: 0,
            quarantined: 0,
            present: 0,
            dups: 0,
            conflicts: 0,
            erased: 0,
            newest: None,
            samples: Vec::new(),
            event_time_field: def.partitions.iter().find_map(|(_, rule)| match rule {
                hrloop_lake::PartitionRule::Month(f) => def.field(f).map(|(i, _)| i),
                _ => None,
            }),
            key_names: def.key.join(" + "),
        })
    }

    fn quarantine_row(&mut self, job: &Job, line: u64, rejected: Rejected) -> Result<()> {
        self.quarantined += 1;
        let full = format!("line {line}: {}", rejected.reason);
        if self.samples.len() < SAMPLES {
            self.samples.push(full.clone());
        }
        let qrow = QuarantineRow {
            target_table: job.mapping.table,
            source_sha256: job.sha.clone(),
            row_number: line as i64,
            field: rejected.field,
            reason: full,
            raw: rejected.raw,
            quarantined_at: job.now,
        }
        .values();
        let keys = RowKeys::of(Table::Quarantine.def(), &qrow);
        if !job.quarantine_keys.contains_key(&keys.event_key) {
            self.quarantine.push(&qrow, &keys)?;
        }
        Ok(())
    }

    fn accept(&mut self, job: &Job, handle: &tokio::runtime::Handle, p: Prepared) -> Result<()> {
        if p.erased {
            self.erased += 1;
            return Ok(());
        }
        for (s, o) in self.stats.iter_mut().zip(&p.outcomes) {
            match o {
                SlotOutcome::Ok => s.present += 1,
                SlotOutcome::TypeViolation => s.type_violations += 1,
                SlotOutcome::RangeViolation => s.range_violations += 1,
                SlotOutcome::Missing => {}
            }
        }
        for (si, value) in p.unknown {
            let s = &mut self.stats[si];
            s.unknown += 1;
            if s.unknown_samples.len() < 5 {
                s.unknown_samples.insert(value);
            }
        }
        let (values, partition, keys) = match p.row {
            Ok(row) => row,
            Err(rejected) => return self.quarantine_row(job, p.line, rejected),
        };
        if !self.known.contains_key(&partition) {
            let stored = handle.block_on(job.lake.existing_keys(job.mapping.table, Some(&partition)))?;
            let map = stored.into_iter().map(|(k, hash)| (k, Seen { hash, line: 0 })).collect();
            self.known.insert(partition.clone(), map);
        }
        let events = self.known.get_mut(&partition).expect("inserted above");
        match events.get_mut(&keys.event_key) {
            Some(seen) if seen.hash == keys.row_hash => {
                if seen.line == 0 {
                    self.present += 1;
                    seen.line = p.line;
                } else {
                    self.dups += 1;
                }
                return Ok(());
            }
            Some(seen) => {
                self.conflicts += 1;
                let reason = if seen.line == 0 {
                    format!(
                        "same {} as a stored record but different values; corrections are not applied automatically, quarantined for review",
                        self.key_names
                    )
                } else {
                    format!(
                        "same {} as line {} of this file but different values; quarantined for review",
                        self.key_names, seen.line
                    )
                };
                return self.quarantine_row(job, p.line, Rejected { field: None, reason, raw: None });
            }
            None => {
                events.insert(keys.event_key, Seen { hash: keys.row_hash, line: p.line });
            }
        }
        if let Some(i) = self.event_time_field {
            let t = match &values[i] {
                Value::Timestamp(t) => Some(*t),
                Value::Date(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                _ => None,
            };
            self.newest = self.newest.max(t);
        }
        self.writer.push_to(&partition, &values, &keys)?;
        self.accepted += 1;
        Ok(())
    }
}
