//! Taking rows out of the lake: the one mechanism erasure and retention share.
//!
//! - [`Lake::remove_rows`] rewrites exactly the files that hold rows to remove (each file is
//!   replaced atomically: a reader sees the old file or the new one, never a mix; a file left
//!   empty is deleted) and leaves every other file untouched.
//! - Tombstones (`privacy/erasures/<id>.json`, write-once) list the pseudonyms of erased people.
//!   Every writer checks [`ErasedSet`] before it stores a row, so re-ingesting an old export or
//!   moving an old decision log cannot bring an erased person back.
//! - [`ErasedSet::batch_mentions`] finds a pseudonym in any text cell, map key or map value, so
//!   free-text columns (a quarantined row's `raw` JSON) are covered as well as id columns.

use std::collections::{BTreeSet, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectMeta;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::delta::{Change, NewFile};
use crate::tables::{Kind, Table};
use crate::write::{StagedFile, Value};
use crate::{Error, Lake, Result};

/// Where tombstones live, one write-once JSON file per erasure.
pub const ERASURES_PREFIX: &str = "privacy/erasures";

/// How many times a removal scans what other writers added meanwhile before it gives up.
const MAX_PASSES: usize = 100;

/// Length of a pseudonym: `p` and 32 hex digits.
const PSEUDONYM_LEN: usize = 33;

/// The record that keeps an erased person out: their pseudonyms (never their identifier), why,
/// who asked, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub reason: String,
    pub pseudonyms: Vec<String>,
}

/// Pseudonyms of every erased person, and the ids of the tombstones they came from.
#[derive(Debug, Clone, Default)]
pub struct ErasedSet {
    set: HashSet<String>,
    tombstones: BTreeSet<String>,
}

impl<S: Into<String>> FromIterator<S> for ErasedSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self { set: iter.into_iter().map(Into::into).collect(), tombstones: BTreeSet::new() }
    }
}

/// Every pseudonym-shaped token (`p` + 32 lowercase hex digits, not inside a longer word) in
/// `text`.
pub fn pseudonym_tokens(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..bytes.len().saturating_sub(PSEUDONYM_LEN - 1)).filter_map(move |i| {
        let end = i + PSEUDONYM_LEN;
        (bytes[i] == b'p'
            && (i == 0 || !is_word(bytes[i - 1]))
            && (end == bytes.len() || !is_word(bytes[end]))
            && bytes[i + 1..end].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)))
        .then(|| &text[i..end])
    })
}

impl ErasedSet {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn contains(&self, pseudonym: &str) -> bool {
        self.set.contains(pseudonym)
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.set.iter()
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = String>) {
        self.set.extend(other);
    }

    /// The tombstones this set holds: a writer that filtered its rows with this set hands it
    /// to [`crate::PartitionedWriter::knowing`], and only erasures recorded later are checked
    /// again at its commit.
    pub fn tombstone_ids(&self) -> &BTreeSet<String> {
        &self.tombstones
    }

    /// Whether `text` mentions an erased pseudonym anywhere.
    pub fn mentioned_in(&self, text: &str) -> bool {
        !self.set.is_empty() && pseudonym_tokens(text).any(|t| self.set.contains(t))
    }

    /// Whether a row about to be written mentions an erased person.
    pub fn row_mentions(&self, row: &[Value]) -> bool {
        !self.set.is_empty()
            && row.iter().any(|v| match v {
                Value::Str(s) => self.mentioned_in(s),
                Value::StrMap(m) => m.iter().any(|(k, v)| self.mentioned_in(k) || self.mentioned_in(v)),
                _ => false,
            })
    }

    /// Per row of `batch`: whether any text cell (or map key/value) mentions an erased person.
    pub fn batch_mentions(&self, batch: &RecordBatch) -> Vec<bool> {
        let mut hit = vec![false; batch.num_rows()];
        if self.set.is_empty() {
            return hit;
        }
        for col in batch.columns() {
            self.mark(col.as_ref(), &mut hit, None);
        }
        hit
    }

    /// Mark rows whose cells in `array` mention a pseudonym. `offsets` maps a child array's
    /// entries back to rows (for maps).
    fn mark(&self, array: &dyn Array, hit: &mut [bool], offsets: Option<&[i32]>) {
        let row_of = |entry: usize| match offsets {
            None => entry,
            Some(o) => o.partition_point(|&start| start as usize <= entry) - 1,
        };
        match array.data_type() {
            DataType::Utf8 => {
                let s = array.as_string::<i32>();
                for i in 0..s.len() {
                    if !s.is_null(i) && self.mentioned_in(s.value(i)) {
                        hit[row_of(i)] = true;
                    }
                }
            }
            DataType::Map(_, _) if offsets.is_none() => {
                let m = array.as_map();
                let offs = m.value_offsets();
                let entries = m.entries();
                for child in entries.columns() {
                    self.mark(child.as_ref(), hit, Some(offs));
                }
            }
            _ => {}
        }
    }
}

/// What one removal did to one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemovalReport {
    pub table: String,
    pub files_scanned: usize,
    /// Files rewritten without the removed rows.
    pub files_rewritten: Vec<String>,
    /// Files deleted because every row in them was removed.
    pub files_deleted: Vec<String>,
    pub rows_removed: u64,
    /// Files no longer in the newest version but kept for older ones (a compaction's inputs)
    /// that held removed rows: deleted, so the versions that listed them can no longer be read.
    #[serde(default)]
    pub superseded_deleted: Vec<String>,
    /// The Delta version this removal committed (`None`: nothing removed). Earlier versions
    /// that listed a touched file can no longer be read: the file's bytes are deleted.
    #[serde(default)]
    pub version: Option<u64>,
}

impl RemovalReport {
    /// Every file that held a removed row.
    pub fn touched(&self) -> impl Iterator<Item = &String> {
        self.files_rewritten.iter().chain(&self.files_deleted).chain(&self.superseded_deleted)
    }
}

/// How to run a [`Lake::remove_rows`].
#[derive(Debug, Clone, Copy)]
pub struct Removal<'a> {
    /// The file columns the predicate needs (`None`: all).
    pub columns: Option<&'a [&'a str]>,
    /// Report what would be removed, change nothing.
    pub dry_run: bool,
    /// Recorded as the time of the removal in the Delta log.
    pub at: DateTime<Utc>,
    /// Commit to the table even when nothing is found (an empty commit). An erasure does, after
    /// writing its tombstone: a writer that read the tombstones before then and has not yet
    /// committed finds its version taken, and its retry reads the tombstone.
    pub fence: bool,
}

/// A file that held rows to remove: the rewrite without them (`None`: the file is deleted).
struct Hit {
    file: ObjectMeta,
    rewrite: Option<NewFile>,
    rows: u64,
}

impl Lake {
    /// Remove the rows of `table` for which `remove` says true. Files where it finds nothing are
    /// only read, never written. The removal is one Delta commit: removes of every touched file
    /// plus the adds of their rewrites, on top of exactly the version scanned. When another
    /// writer commits meanwhile, the files it added are scanned too, and the commit is tried
    /// again; so a batch committed during the removal cannot keep the removed rows. Then the
    /// removed files' bytes are deleted.
    pub async fn remove_rows<F>(&self, table: Table, how: &Removal<'_>, remove: F) -> Result<RemovalReport>
    where
        F: Fn(&RecordBatch) -> Vec<bool>,
    {
        let mut scanned: HashSet<Path> = HashSet::new();
        let mut hits: Vec<Hit> = Vec::new();
        let result = async {
            for _ in 0..MAX_PASSES {
                // The newest version, even through a pinned lake: removal commits on top of it.
                let Some((base, files)) = self.newest_snapshot(table).await? else {
                    // Never written.
                    if how.fence && !how.dry_run {
                        // The fence on a table not yet created is creating it, empty.
                        let known = self.tombstone_ids().await?;
                        self.commit_files(table, &[], &[], Change::Append { known }).await?;
                    }
                    return Ok(None);
                };
                // A file another removal replaced meanwhile: its replacement is scanned instead.
                let live: HashSet<&Path> = files.iter().map(|m| &m.location).collect();
                for gone in hits.iter().filter(|h| !live.contains(&h.file.location)) {
                    self.discard(gone).await;
                }
                hits.retain(|h| live.contains(&h.file.location));
                for meta in &files {
                    if !scanned.insert(meta.location.clone()) {
                        continue;
                    }
                    if let Some(hit) = self.scan_for_removal(table, meta, how, &remove).await? {
                        if let Some(r) = &hit.rewrite {
                            scanned.insert(Path::from(r.path.as_str()));
                        }
                        hits.push(hit);
                    }
                }
                if how.dry_run || (hits.is_empty() && !how.fence) {
                    return Ok(None);
                }
                let rows: u64 = hits.iter().map(|h| h.rows).sum();
                let rewritten: Vec<NewFile> = hits.iter().filter_map(|h| h.rewrite.clone()).collect();
                let removed: Vec<ObjectMeta> = hits.iter().map(|h| h.file.clone()).collect();
                let why = format!(
                    "{rows} rows removed ({} files rewritten, {} deleted)",
                    rewritten.len(),
                    removed.len() - rewritten.len()
                );
                let change = Change::Rewrite { why, at: how.at, base };
                match self.commit_files(table, &rewritten, &removed, change).await {
                    Ok(v) => return Ok(Some(v)),
                    Err(Error::Stale { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Delta {
                table: table.name(),
                reason: format!(
                    "rows not removed: {MAX_PASSES} times another writer committed while its new files were \
                     scanned; nothing was changed, run it again"
                ),
            })
        }
        .await;
        let version = match result {
            Ok(v) => v,
            Err(e) => {
                for h in &hits {
                    self.discard(h).await;
                }
                return Err(e);
            }
        };
        let mut report =
            RemovalReport { table: table.name().into(), files_scanned: scanned.len(), ..Default::default() };
        for h in &hits {
            report.rows_removed += h.rows;
            let path = h.file.location.to_string();
            match h.rewrite {
                Some(_) => report.files_rewritten.push(path),
                None => report.files_deleted.push(path),
            }
        }
        // Bytes only older versions read (a compaction's inputs) hold the rows too. The files
        // this removal replaced are tombstones now as well; their bytes go below.
        let own: HashSet<&Path> = hits.iter().map(|h| &h.file.location).collect();
        self.remove_superseded(table, how, &remove, &own, &mut report).await?;
        if version.is_none() || hits.is_empty() {
            return Ok(report);
        }
        report.version = version;
        // Then the removed files' bytes go: no version that held the rows can be read again.
        for h in &hits {
            match self.store().delete(&h.file.location).await {
                Ok(()) | Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Delete the files the log removed but whose bytes stay for older versions (the inputs of
    /// a compaction) when they hold rows to remove (a dry run only reports them). They are in
    /// no version a writer builds on, so no commit is needed: the versions that listed them can
    /// no longer be read, as after any erasure.
    async fn remove_superseded<F>(
        &self,
        table: Table,
        how: &Removal<'_>,
        remove: &F,
        own: &HashSet<&Path>,
        report: &mut RemovalReport,
    ) -> Result<()>
    where
        F: Fn(&RecordBatch) -> Vec<bool>,
    {
        for meta in self.superseded_files(table).await? {
            if own.contains(&meta.location) {
                continue;
            }
            let bytes = match self.store().get(&meta.location).await {
                Ok(b) => b,
                // Deleted meanwhile (by another removal).
                Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => continue,
                Err(e) => return Err(e),
            };
            report.files_scanned += 1;
            let held = decode(table, &meta.location, bytes, how.columns)?.iter().flat_map(remove).any(|r| r);
            if !held {
                continue;
            }
            if !how.dry_run {
                match self.store().delete(&meta.location).await {
                    Ok(()) | Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
            report.superseded_deleted.push(meta.location.to_string());
        }
        Ok(())
    }

    /// Scan one file for rows to remove; write its rewrite without them (not yet committed)
    /// unless this is a dry run or every row goes.
    async fn scan_for_removal<F>(
        &self,
        table: Table,
        meta: &ObjectMeta,
        how: &Removal<'_>,
        remove: &F,
    ) -> Result<Option<Hit>>
    where
        F: Fn(&RecordBatch) -> Vec<bool>,
    {
        let bytes = self.store().get(&meta.location).await?;
        let mask: Vec<bool> =
            decode(table, &meta.location, bytes.clone(), how.columns)?.iter().flat_map(remove).collect();
        let removed = mask.iter().filter(|&&r| r).count();
        if removed == 0 {
            return Ok(None);
        }
        let rewrite = if removed == mask.len() {
            None
        } else if how.dry_run {
            // Reported as rewritten; nothing is written.
            Some(NewFile { path: String::new(), rows: (mask.len() - removed) as u64, size: 0, modified_ms: 0 })
        } else {
            let full = decode(table, &meta.location, bytes, None)?;
            Some(self.write_without(table, &meta.location, full, &mask).await?)
        };
        Ok(Some(Hit { file: meta.clone(), rewrite, rows: removed as u64 }))
    }

    /// Delete a rewrite that will not be committed (no version lists it).
    async fn discard(&self, hit: &Hit) {
        if let Some(r) = hit.rewrite.as_ref().filter(|r| !r.path.is_empty())
            && let Err(e) = self.store().delete(&Path::from(r.path.as_str())).await
        {
            tracing::warn!(file = %r.path, error = %e, "uncommitted rewrite not deleted; no reader sees it");
        }
    }

    /// Write `batches` minus the masked rows to a new file beside `location` (same partition,
    /// same batch prefix in its name), not yet part of the table.
    pub(crate) async fn write_without(
        &self,
        table: Table,
        location: &Path,
        batches: Vec<RecordBatch>,
        remove: &[bool],
    ) -> Result<NewFile> {
        if batches.iter().map(RecordBatch::num_rows).sum::<usize>() != remove.len() {
            return Err(Error::Task(format!("{location} changed while rows were being removed from it")));
        }
        let schema = batches.first().map(RecordBatch::schema).unwrap_or_else(|| table.def().file_schema());
        let mut staged = StagedFile::new(self.store(), table.def(), schema)?;
        let mut offset = 0;
        for batch in &batches {
            let mask = &remove[offset..offset + batch.num_rows()];
            offset += batch.num_rows();
            let keep = BooleanArray::from(mask.iter().map(|r| !r).collect::<Vec<bool>>());
            staged.write(&arrow_select::filter::filter_record_batch(batch, &keep)?)?;
        }
        let name = location.as_ref().strip_suffix(".parquet").unwrap_or(location.as_ref());
        // A file rewritten before keeps one `-r<8 hex>` suffix, not a growing chain.
        let name = match name.rsplit_once("-r") {
            Some((stem, tag)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => stem,
            _ => name,
        };
        let dest = Path::from(format!("{name}-r{}.parquet", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        staged.place(self.store(), &dest).await
    }

    /// Every tombstone, oldest first.
    pub async fn tombstones(&self) -> Result<Vec<Tombstone>> {
        let mut out = Vec::new();
        for meta in self.store().list(&Path::from(ERASURES_PREFIX)).await? {
            let bytes = self.store().get(&meta.location).await?;
            let t: Tombstone = serde_json::from_slice(&bytes).map_err(|e| Error::Schema {
                table: "privacy",
                path: meta.location.to_string(),
                reason: e.to_string(),
            })?;
            out.push(t);
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The pseudonyms of everyone erased so far.
    pub async fn erased(&self) -> Result<ErasedSet> {
        let mut erased = ErasedSet::default();
        for t in self.tombstones().await? {
            erased.tombstones.insert(t.id);
            erased.extend(t.pseudonyms);
        }
        Ok(erased)
    }

    /// The ids of every tombstone (a listing, no reads).
    pub(crate) async fn tombstone_ids(&self) -> Result<BTreeSet<String>> {
        let listed = self.store().list(&Path::from(ERASURES_PREFIX)).await?;
        Ok(listed.iter().filter_map(|m| m.location.filename()?.strip_suffix(".json").map(str::to_string)).collect())
    }

    /// Record a tombstone (write-once; durable when this returns).
    pub async fn add_tombstone(&self, tombstone: &Tombstone) -> Result<()> {
        let path = Path::from(format!("{ERASURES_PREFIX}/{}.json", tombstone.id));
        let json = serde_json::to_vec_pretty(tombstone).expect("tombstone serialises");
        if !self.store().put_new(&path, Bytes::from(json)).await? {
            return Err(Error::Row { table: "privacy", reason: format!("erasure {} already recorded", tombstone.id) });
        }
        Ok(())
    }
}

/// Read one Parquet file of `table`, optionally only some columns.
pub(crate) fn decode(
    table: Table,
    location: &Path,
    bytes: Bytes,
    columns: Option<&[&str]>,
) -> Result<Vec<RecordBatch>> {
    let corrupt = |e: parquet::errors::ParquetError| Error::Schema {
        table: table.name(),
        path: location.to_string(),
        reason: e.to_string(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(corrupt)?;
    let builder = match columns {
        Some(cols) => {
            let idx: Vec<usize> = cols.iter().filter_map(|c| builder.schema().index_of(c).ok()).collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
            builder.with_projection(mask)
        }
        None => builder,
    };
    let mut out = Vec::new();
    for batch in builder.with_batch_size(64 * 1024).build().map_err(corrupt)? {
        out.push(batch?);
    }
    Ok(out)
}

/// The text columns of a table's files (where a pseudonym can appear).
pub fn text_columns(table: Table) -> Vec<&'static str> {
    let def = table.def();
    def.fields
        .iter()
        .filter(|f| !def.in_path_only(f.name))
        .filter(|f| matches!(f.kind, Kind::Utf8 | Kind::Pseudonym(_) | Kind::Utf8Map | Kind::FloatMap))
        .map(|f| f.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PartitionedWriter, RowKeys};
    use chrono::TimeZone;

    const A: &str = "p0123456789abcdef0123456789abcdef";
    const B: &str = "pfedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_are_found_in_free_text_but_not_inside_longer_words() {
        let text = format!(r#"{{"candidate":"{A}","x":"q{B}","y":"{B}0"}}"#);
        assert_eq!(pseudonym_tokens(&text).collect::<Vec<_>>(), vec![A]);
        assert_eq!(pseudonym_tokens(A).collect::<Vec<_>>(), vec![A]);
        assert_eq!(pseudonym_tokens("p0123").count(), 0);
        let set: ErasedSet = [B].into_iter().collect();
        assert!(!set.mentioned_in(&text), "B only appears inside longer words");
        assert!(set.mentioned_in(&format!("line 3: {B}; bad")));
    }

    fn protected_row(candidate: &str, group: &str) -> Vec<Value> {
        use crate::Row;
        crate::rows::protected_attributes::ProtectedAttributesRow {
            candidate_id: candidate.into(),
            attributes: vec![("gender".to_string(), group.to_string())],
            recorded_at: chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        }
        .values()
    }

    #[tokio::test]
    async fn removal_rewrites_only_the_files_holding_the_rows_and_deletes_emptied_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let write = async |batch: &str, rows: Vec<Vec<Value>>| {
            let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, batch, "f.csv", now).unwrap();
            for r in rows {
                w.push(&r, &RowKeys::of(Table::ProtectedAttributes.def(), &r)).unwrap();
            }
            w.commit().await.unwrap();
        };
        write("b1", vec![protected_row(A, "f"), protected_row(B, "m")]).await;
        write("b2", vec![protected_row(A, "f")]).await;
        write("b3", vec![protected_row(B, "x")]).await;
        let untouched = lake.list_files(Table::ProtectedAttributes, None).await.unwrap();
        let b3 = untouched.iter().find(|m| m.location.as_ref().contains("b3")).unwrap().clone();

        let erased: ErasedSet = [A].into_iter().collect();
        let cols = text_columns(Table::ProtectedAttributes);
        let dry = lake
            .remove_rows(
                Table::ProtectedAttributes,
                &Removal { columns: Some(&cols), dry_run: true, at: now, fence: false },
                |b| erased.batch_mentions(b),
            )
            .await
            .unwrap();
        assert_eq!(dry.rows_removed, 2);
        assert_eq!(lake.scan(Table::ProtectedAttributes, None).await.unwrap().num_rows(), 4, "dry run changes nothing");

        let report = lake
            .remove_rows(
                Table::ProtectedAttributes,
                &Removal { columns: Some(&cols), dry_run: false, at: now, fence: false },
                |b| erased.batch_mentions(b),
            )
            .await
            .unwrap();
        assert_eq!((report.rows_removed, report.files_rewritten.len(), report.files_deleted.len()), (2, 1, 1));
        let after = lake.list_files(Table::ProtectedAttributes, None).await.unwrap();
        assert_eq!(after.len(), 2);
        let b3_after = after.iter().find(|m| m.location == b3.location).unwrap();
        assert_eq!(b3_after.last_modified, b3.last_modified, "a file without the person is not rewritten");
        let scan = lake.scan(Table::ProtectedAttributes, None).await.unwrap();
        assert_eq!(scan.num_rows(), 2);
        for b in &scan.batches {
            assert!(erased.batch_mentions(b).iter().all(|m| !m));
            assert_eq!(b.column_by_name("candidate_id").unwrap().as_string::<i32>().value(0), B);
        }
        let again = lake
            .remove_rows(
                Table::ProtectedAttributes,
                &Removal { columns: Some(&cols), dry_run: false, at: now, fence: false },
                |b| erased.batch_mentions(b),
            )
            .await
            .unwrap();
        assert_eq!(again.rows_removed, 0, "idempotent");
    }

    #[tokio::test]
    async fn map_values_are_searched_too() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, "b", "f.csv", now).unwrap();
        for r in [protected_row(B, "m"), protected_row(B, A), protected_row(B, "f")] {
            w.push(&r, &RowKeys::of(Table::ProtectedAttributes.def(), &r)).unwrap();
        }
        w.commit().await.unwrap();
        let erased: ErasedSet = [A].into_iter().collect();
        let scan = lake.scan(Table::ProtectedAttributes, None).await.unwrap();
        let hits: Vec<bool> = scan.batches.iter().flat_map(|b| erased.batch_mentions(b)).collect();
        assert_eq!(hits.iter().filter(|h| **h).count(), 1);
    }

    #[tokio::test]
    async fn tombstones_are_write_once_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let t = Tombstone {
            id: "e1".into(),
            at: Utc::now(),
            actor: "dpo".into(),
            reason: "request".into(),
            pseudonyms: vec![A.into()],
        };
        lake.add_tombstone(&t).await.unwrap();
        assert!(lake.add_tombstone(&t).await.is_err());
        let erased = lake.erased().await.unwrap();
        assert!(erased.contains(A) && !erased.contains(B));
        assert!(erased.row_mentions(&protected_row(A, "f")));
        assert!(!erased.row_mentions(&protected_row(B, "f")));
    }
}
