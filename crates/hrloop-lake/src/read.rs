//! Reading tables back: file listing that ignores anything not committed, Parquet decoding with
//! column projection, and partition values restored as columns.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use object_store::ObjectMeta;
use object_store::path::Path;

use chrono::{DateTime, Utc};

use crate::rows::system::BATCH_ID;
use crate::tables::{PartitionRule, Table};
use crate::{Lake, Result};

/// Natural event keys already stored, with the hash of the stored content.
pub type ExistingKeys = HashMap<[u8; 16], [u8; 8]>;

/// A table read into memory.
#[derive(Debug, Default)]
pub struct TableScan {
    pub batches: Vec<RecordBatch>,
    pub files: Vec<ObjectMeta>,
}

impl TableScan {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Lake {
    /// Committed Parquet files of a table (its newest Delta snapshot), optionally below a
    /// partition (`milestone=12m`).
    /// Through a pinned lake, the files of the pinned version.
    pub async fn list_files(&self, table: Table, partition: Option<&str>) -> Result<Vec<ObjectMeta>> {
        let files = match self.pinned_version(table) {
            Some(None) => Vec::new(),
            Some(Some(v)) => self.snapshot_files(table, Some(v)).await?,
            None => self.snapshot_files(table, None).await?,
        };
        Ok(match partition {
            Some(p) => {
                let below = format!("lake/{}/{}/", table.name(), p.trim_end_matches('/'));
                files.into_iter().filter(|m| m.location.as_ref().starts_with(&below)).collect()
            }
            None => files,
        })
    }

    /// Read a table (all of it, or the `columns` named), with partition values as text columns.
    pub async fn scan(&self, table: Table, columns: Option<&[&str]>) -> Result<TableScan> {
        self.scan_partition(table, None, columns).await
    }

    pub async fn scan_partition(
        &self,
        table: Table,
        partition: Option<&str>,
        columns: Option<&[&str]>,
    ) -> Result<TableScan> {
        let files = self.list_files(table, partition).await?;
        let mut batches = Vec::new();
        for meta in &files {
            let partition_values = partition_values(table, &meta.location);
            let extra: Vec<&(String, String)> = partition_values
                .iter()
                .filter(|(k, _)| columns.is_none_or(|cols| cols.contains(&k.as_str())))
                .collect();
            for batch in self.read_file(table, meta, columns).await? {
                batches.push(with_partition_columns(batch, &extra)?);
            }
        }
        Ok(TableScan { batches, files })
    }

    /// Whether `table` holds rows of `batch` (a writer's batch id) decided, recorded or hired
    /// at or after `since`. A batch's files are named after it (`part-<batch>-<n>.parquet`,
    /// kept with an `-r<hex>` suffix when a removal rewrites one), so the snapshot's file names
    /// answer first; only the compaction's merged files (`part-compact-*`) in the month
    /// partitions from `since` on are read, their batch id column alone. Uses the lake's own
    /// Parquet reader, not polars, so it can run while a server starts or stops.
    pub async fn holds_batch(&self, table: Table, batch: &str, since: DateTime<Utc>) -> Result<bool> {
        let files = self.list_files(table, None).await?;
        let own = format!("part-{batch}-");
        let named = |m: &ObjectMeta| m.location.filename().is_some_and(|n| n.starts_with(&own));
        if files.iter().any(named) {
            return Ok(true);
        }
        let month = table.def().partitions.iter().find_map(|(name, rule)| match rule {
            PartitionRule::Month(_) => Some(*name),
            PartitionRule::Identity(_) => None,
        });
        let from = since.format("%Y-%m").to_string();
        let in_window = |m: &ObjectMeta| {
            month.is_none_or(|dir| partition_values(table, &m.location).iter().any(|(k, v)| k == dir && *v >= from))
        };
        let merged = files
            .iter()
            .filter(|m| m.location.filename().is_some_and(|n| n.starts_with("part-compact-")))
            .filter(|m| in_window(m));
        for meta in merged {
            for part in self.read_file(table, meta, Some(&[BATCH_ID])).await? {
                if let Some(ids) = part.column_by_name(BATCH_ID)
                    && ids.as_string::<i32>().iter().any(|b| b == Some(batch))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// One committed file's rows (all columns, or those of `columns` the file has), without
    /// its partition values.
    async fn read_file(&self, table: Table, meta: &ObjectMeta, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
        let bytes = self.store().get(&meta.location).await?;
        crate::removal::decode(table, &meta.location, bytes, columns)
    }

    /// Event keys stored in a table (optionally one partition), for idempotent ingestion.
    pub async fn existing_keys(&self, table: Table, partition: Option<&str>) -> Result<ExistingKeys> {
        let scan = self.scan_partition(table, partition, Some(&["event_key", "row_hash"])).await?;
        let mut keys = ExistingKeys::new();
        for batch in &scan.batches {
            let (Some(k), Some(h)) = (batch.column_by_name("event_key"), batch.column_by_name("row_hash")) else {
                continue;
            };
            let (k, h) = (k.as_string::<i32>(), h.as_string::<i32>());
            for i in 0..batch.num_rows() {
                let mut key = [0u8; 16];
                let mut hash = [0u8; 8];
                if hex::decode_to_slice(k.value(i), &mut key).is_ok()
                    && hex::decode_to_slice(h.value(i), &mut hash).is_ok()
                {
                    keys.insert(key, hash);
                }
            }
        }
        Ok(keys)
    }
}

/// `k=v` directory names between the table folder and the file, in catalog order.
fn partition_values(table: Table, location: &Path) -> Vec<(String, String)> {
    let names: Vec<&str> = table.def().partitions.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for part in location.parts() {
        if let Some((k, v)) = part.as_ref().split_once('=')
            && names.contains(&k)
        {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn with_partition_columns(batch: RecordBatch, values: &[&(String, String)]) -> Result<RecordBatch> {
    if values.is_empty() {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (k, v) in values {
        fields.push(Arc::new(Field::new(k.as_str(), DataType::Utf8, false)));
        columns.push(Arc::new(StringArray::from(vec![v.as_str(); batch.num_rows()])));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}
