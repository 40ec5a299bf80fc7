//! Compaction: the decision mover commits a small file per partition every few seconds of
//! serving, and every reader pays for each file it opens. [`Lake::compact`] merges a
//! partition's small files into files of about the target size, in one Delta commit that
//! removes the small files and adds the merged ones with the same rows (`dataChange: false`,
//! operation `OPTIMIZE`). Like erasure, it commits on exactly the version it read, or reads
//! again: so it never undoes a concurrent erasure or loses a concurrent batch.
//!
//! The small files' bytes stay: versions before the compaction keep reading (a model card's
//! `train --as-of` needs them). An erasure still deletes any of them that hold the person: it
//! scans the files the log removed whose bytes are still there, too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use object_store::ObjectMeta;
use object_store::path::Path;
use serde::Serialize;

use crate::delta::{Change, NewFile};
use crate::tables::Table;
use crate::write::StagedFile;
use crate::{Error, Lake, Result};

/// How many times a compaction reads the table again after another writer committed first.
const MAX_ATTEMPTS: usize = 20;

/// What [`Lake::compact`] merges.
#[derive(Debug, Clone, Copy)]
pub struct Compaction {
    /// Files smaller than this are merged.
    pub small_bytes: u64,
    /// A partition is compacted once it has at least this many small files.
    pub min_files: usize,
    /// Merged files are cut at about this size (of the inputs).
    pub target_bytes: u64,
    /// Recorded as the time of the compaction in the Delta log.
    pub at: DateTime<Utc>,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction { small_bytes: 8 << 20, min_files: 4, target_bytes: 128 << 20, at: DateTime::UNIX_EPOCH }
    }
}

/// What one compaction did to one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompactionReport {
    pub table: String,
    pub files_before: usize,
    pub files_after: usize,
    /// Small files merged, and the files they were merged into.
    pub files_merged: usize,
    pub files_written: usize,
    pub rows: u64,
    /// The Delta version the compaction committed (`None`: nothing to merge).
    pub version: Option<u64>,
}

impl Lake {
    /// Merge each partition's small files of `table` (see [`Compaction`]). The rows, their
    /// order within each merged file aside, are exactly the same before and after.
    pub async fn compact(&self, table: Table, how: &Compaction) -> Result<CompactionReport> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((base, files)) = self.newest_snapshot(table).await? else {
                return Ok(CompactionReport { table: table.name().into(), ..Default::default() });
            };
            let mut report =
                CompactionReport { table: table.name().into(), files_before: files.len(), ..Default::default() };
            let mut merged: Vec<NewFile> = Vec::new();
            let mut removed: Vec<ObjectMeta> = Vec::new();
            let mut partitions: BTreeMap<String, Vec<&ObjectMeta>> = BTreeMap::new();
            for f in files.iter().filter(|f| f.size < how.small_bytes) {
                let dir = f.location.as_ref().rsplit_once('/').map_or("", |(d, _)| d).to_string();
                partitions.entry(dir).or_default().push(f);
            }
            let written = async {
                for (dir, small) in partitions.iter().filter(|(_, s)| s.len() >= how.min_files.max(2)) {
                    for chunk in chunks(small, how.target_bytes) {
                        let out = self.merge(table, dir, &chunk).await?;
                        report.rows += out.rows;
                        merged.push(out);
                        removed.extend(chunk.into_iter().cloned());
                    }
                }
                Ok::<(), Error>(())
            }
            .await;
            let discard = async |files: &[NewFile]| {
                for f in files {
                    let _ = self.store().delete(&Path::from(f.path.as_str())).await;
                }
            };
            if let Err(e) = written {
                discard(&merged).await;
                return Err(e);
            }
            if merged.is_empty() {
                report.files_after = report.files_before;
                return Ok(report);
            }
            let change = Change::Compact { at: how.at, base, target_bytes: how.target_bytes };
            match self.commit_files(table, &merged, &removed, change).await {
                Ok(v) => {
                    report.files_merged = removed.len();
                    report.files_written = merged.len();
                    report.files_after = report.files_before - removed.len() + merged.len();
                    report.version = Some(v);
                    return Ok(report);
                }
                Err(Error::Stale { .. }) => discard(&merged).await,
                Err(e) => {
                    discard(&merged).await;
                    return Err(e);
                }
            }
        }
        Err(Error::Delta {
            table: table.name(),
            reason: format!("compaction gave up after {MAX_ATTEMPTS} attempts, each beaten by another writer"),
        })
    }

    /// Write the rows of `files` into one new file in partition directory `dir` (not yet
    /// committed).
    async fn merge(&self, table: Table, dir: &str, files: &[&ObjectMeta]) -> Result<NewFile> {
        let mut staged = StagedFile::new(self.store(), table.def(), table.def().file_schema())?;
        for f in files {
            let bytes = self.store().get(&f.location).await?;
            for batch in crate::removal::decode(table, &f.location, bytes, None)? {
                staged.write(&batch)?;
            }
        }
        let dest = Path::from(format!("{dir}/part-compact-{}.parquet", uuid::Uuid::new_v4().simple()));
        staged.place(self.store(), &dest).await
    }
}

/// `files` in order, cut into groups of about `target` bytes (at least two files each; a last
/// lone file stays as it is).
fn chunks<'a>(files: &[&'a ObjectMeta], target: u64) -> Vec<Vec<&'a ObjectMeta>> {
    let mut out: Vec<Vec<&ObjectMeta>> = Vec::new();
    let mut size = 0;
    for f in files {
        if out.is_empty() || (size + f.size > target && out.last().is_some_and(|c| c.len() >= 2)) {
            out.push(Vec::new());
            size = 0;
        }
        size += f.size;
        out.last_mut().expect("pushed above").push(f);
    }
    out.retain(|c| c.len() >= 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::protected_attributes::{CANDIDATE_ID, ProtectedAttributesRow};
    use crate::{PartitionedWriter, Row};
    use arrow_array::RecordBatch;
    use arrow_array::cast::AsArray;
    use chrono::TimeZone;

    fn ids(scan: &crate::TableScan) -> Vec<String> {
        let mut out: Vec<String> = scan
            .batches
            .iter()
            .flat_map(|b| {
                b.column_by_name(CANDIDATE_ID)
                    .unwrap()
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    #[tokio::test]
    async fn small_files_merge_into_one_with_the_same_rows_and_the_old_version_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for b in 0..6 {
            let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, &format!("b{b}"), "t", now).unwrap();
            for k in 0..3 {
                let row = ProtectedAttributesRow {
                    candidate_id: format!("p{:032x}", b * 10 + k),
                    attributes: vec![("gender".into(), "f".into())],
                    recorded_at: chrono::NaiveDate::from_ymd_opt(2026, 1 + (k as u32 % 2), 1).unwrap(),
                };
                w.push(&row.values(), &crate::RowKeys::of(Table::ProtectedAttributes.def(), &row.values())).unwrap();
            }
            w.commit().await.unwrap();
        }
        let before = lake.pinned().await.unwrap();
        let rows_before = ids(&before.scan(Table::ProtectedAttributes, None).await.unwrap());
        assert_eq!(rows_before.len(), 18);

        let how = Compaction { at: now, ..Compaction::default() };
        let report = lake.compact(Table::ProtectedAttributes, &how).await.unwrap();
        assert_eq!(
            (report.files_before, report.files_merged, report.files_written, report.files_after),
            (12, 12, 2, 2)
        );
        assert_eq!(report.rows, 18);
        assert_eq!(ids(&lake.scan(Table::ProtectedAttributes, None).await.unwrap()), rows_before, "same rows");
        // The version before still reads: lineage keeps working.
        before.check_readable().await.unwrap();
        assert_eq!(ids(&before.scan(Table::ProtectedAttributes, None).await.unwrap()), rows_before);
        // Nothing left to merge.
        let again = lake.compact(Table::ProtectedAttributes, &how).await.unwrap();
        assert_eq!((again.files_merged, again.version), (0, None));
        // Keys still tell a re-ingested row from a new one.
        let keys = lake.existing_keys(Table::ProtectedAttributes, None).await.unwrap();
        assert_eq!(keys.len(), 18);
    }

    #[tokio::test]
    async fn an_erasure_after_a_compaction_deletes_the_merged_inputs_that_held_the_person() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let person = |b: usize, k: usize| format!("p{:032x}", b * 10 + k);
        // Ten batches: the compaction is version 10, which writes a checkpoint. Its removes are
        // dated `now`, long before the wall clock, so a checkpoint that expired tombstones after
        // Delta's default 7 days would lose them, and the erasure would miss the inputs.
        for b in 0..10 {
            let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, &format!("b{b}"), "t", now).unwrap();
            for k in 0..3 {
                let row = ProtectedAttributesRow {
                    candidate_id: person(b, k),
                    attributes: vec![("gender".into(), "f".into())],
                    recorded_at: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                };
                w.push(&row.values(), &crate::RowKeys::of(Table::ProtectedAttributes.def(), &row.values())).unwrap();
            }
            w.commit().await.unwrap();
        }
        let before = lake.pinned().await.unwrap();
        let how = Compaction { at: now, ..Compaction::default() };
        assert_eq!(lake.compact(Table::ProtectedAttributes, &how).await.unwrap().version, Some(10));
        assert!(
            dir.path().join("lake/protected_attributes/_delta_log/00000000000000000010.checkpoint.parquet").exists()
        );
        // The inputs' bytes stay for the version before; person(1, 2) is in one of them.
        before.check_readable().await.unwrap();
        let erased = person(1, 2);
        let holds = |b: &RecordBatch| -> Vec<bool> {
            let c = b.column_by_name(CANDIDATE_ID).unwrap().as_string::<i32>();
            c.iter().map(|v| v == Some(erased.as_str())).collect()
        };
        let removal = |dry_run| crate::removal::Removal { columns: None, dry_run, at: now, fence: true };
        let dry = lake.remove_rows(Table::ProtectedAttributes, &removal(true), holds).await.unwrap();
        assert_eq!(dry.superseded_deleted.len(), 1, "{dry:?}");
        before.check_readable().await.unwrap();
        let report = lake.remove_rows(Table::ProtectedAttributes, &removal(false), holds).await.unwrap();
        assert_eq!((report.rows_removed, report.superseded_deleted.len()), (1, 1), "{report:?}");
        // No file in the store holds the person, and the version before no longer reads.
        for meta in lake.listed_files(Table::ProtectedAttributes).await.unwrap() {
            let bytes = lake.store().get(&meta.location).await.unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 1024).unwrap();
            for batch in reader {
                assert!(!holds(&batch.unwrap()).contains(&true), "{} still holds the person", meta.location);
            }
        }
        assert!(before.check_readable().await.is_err());
        assert_eq!(ids(&lake.scan(Table::ProtectedAttributes, None).await.unwrap()).len(), 29);
    }

    #[test]
    fn chunks_cut_at_the_target_and_leave_lone_files() {
        let meta = |size| ObjectMeta {
            location: Path::from("x"),
            last_modified: DateTime::UNIX_EPOCH,
            size,
            e_tag: None,
            version: None,
        };
        let files: Vec<ObjectMeta> = [4, 4, 4, 4, 4].into_iter().map(meta).collect();
        let refs: Vec<&ObjectMeta> = files.iter().collect();
        let sizes = |c: Vec<Vec<&ObjectMeta>>| c.iter().map(|c| c.len()).collect::<Vec<_>>();
        assert_eq!(sizes(chunks(&refs, 100)), vec![5]);
        assert_eq!(sizes(chunks(&refs, 8)), vec![2, 2], "the fifth would be alone");
        assert_eq!(sizes(chunks(&refs, 12)), vec![3, 2]);
    }
}
