//! Every lake table is a Delta table (<https://delta.io>): hrloop writes the Parquet files
//! itself (zstd, statistics, Hive-style partition directories), and a batch becomes visible
//! only when one Delta commit adds its files, together with the removes of the files it
//! replaces. Readers take the file list of one snapshot, never a directory listing, so a half
//! written batch is never seen, and every version stays addressable for lineage.
//!
//! The log lives at `lake/<table>/_delta_log/`. Tables use the plainest protocol (reader 1,
//! writer 2: no deletion vectors, no column mapping), so DuckDB's delta extension, the Python
//! `deltalake` package, polars' `scan_delta` and Spark all read them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, DataType, Remove, StructField, StructType};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::config::TableProperty;
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::ObjectMeta;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

use crate::tables::Table;
use crate::{Error, Lake, Result, TableVersions};

/// How often a commit is retried when another writer committed the same version first (each
/// retry rebases on the newer snapshot, after re-checking what it must: appends never conflict
/// with each other).
const MAX_COMMIT_RETRIES: usize = 50;

/// How long a checkpoint keeps listing a removed file (`delta.deletedFileRetentionDuration`,
/// set when a table is created). Delta's default, 7 days, drops older removes from each
/// checkpoint, but the lake never vacuums: a compaction's inputs stay for the versions that read
/// them, and an erasure finds them by these removes ([`Lake::superseded_files`]). Forgotten, the
/// person's rows in them would outlive the erasure. About a century.
pub(crate) const KEEP_REMOVED_FILES_LISTED: &str = "interval 5200 weeks";

/// Every this many versions a checkpoint (the whole snapshot in one Parquet file) keeps the log
/// a reader replays short: Delta's default `checkpointInterval`.
const CHECKPOINT_INTERVAL: u64 = 10;

/// Written before a store's first Delta commit: tells a lake of Delta tables (where a table
/// directory may hold a crashed batch's uncommitted files) from a pre-Delta one.
const LAKE_MARKER: &str = "lake/_delta_lake.json";

/// A file to add to a table in a commit: its path under the store root and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct NewFile {
    pub path: String,
    pub rows: u64,
    pub size: u64,
    /// When the file was written (milliseconds since the epoch), from its own metadata.
    pub modified_ms: i64,
}

impl NewFile {
    /// A staged file about to be committed at `path`: its size and write time from the file.
    pub(crate) fn staged(path: String, rows: u64, staged: &std::path::Path) -> Result<NewFile> {
        let meta = std::fs::metadata(staged).map_err(Error::io("stat staged file", staged))?;
        let modified = meta.modified().map_err(Error::io("read the write time of", staged))?;
        let modified_ms = chrono::DateTime::<chrono::Utc>::from(modified).timestamp_millis();
        Ok(NewFile { path, rows, size: meta.len(), modified_ms })
    }
}

/// What a commit does, as recorded in the table's history.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A batch of new rows (ingestion, the decision mover, any writer), whose rows were checked
    /// against the erasures in `known` (tombstone ids). Right before the commit, rows of any
    /// erasure recorded since are taken out of the batch's files.
    Append { known: BTreeSet<String> },
    /// Files rewritten without some rows (erasure, retention) at `at`, scanned at version
    /// `base`: the commit lands at exactly `base + 1`, or fails with [`Error::Stale`] so that
    /// the removal scans what was added meanwhile. `why` is recorded as the commit's predicate.
    Rewrite { why: String, at: chrono::DateTime<chrono::Utc>, base: u64 },
    /// Small files merged into bigger ones with the same rows (no data change), at `at`, from
    /// version `base`: like a rewrite, it lands at exactly `base + 1` or fails with
    /// [`Error::Stale`].
    Compact { at: chrono::DateTime<chrono::Utc>, base: u64, target_bytes: u64 },
}

impl Lake {
    /// The Delta log store of a table.
    fn log_store(&self, table: Table) -> Result<LogStoreRef> {
        let store = self.store();
        let url = store
            .root_url()
            .join(&format!("lake/{}/", table.name()))
            .map_err(|e| Error::InvalidStore { location: store.location().to_string(), reason: e.to_string() })?;
        let prefix = Path::from_url_path(url.path())
            .map_err(|e| Error::InvalidStore { location: store.location().to_string(), reason: e.to_string() })?;
        let prefixed = Arc::new(PrefixStore::new(store.url_space().clone(), prefix));
        Ok(default_logstore(prefixed, store.url_space().clone(), &url, &StorageConfig::default()))
    }

    /// A table at its newest version, or at `version`; `None` when nothing was ever committed
    /// to it.
    pub async fn delta_table(&self, table: Table, version: Option<u64>) -> Result<Option<DeltaTable>> {
        let log = self.log_store(table)?;
        if !log.is_delta_table_location().await.map_err(|e| delta(table, e))? {
            return Ok(None);
        }
        let mut t = DeltaTable::new(log);
        match version {
            None => t.load().await,
            Some(v) => t.load_version(v).await,
        }
        .map_err(|e| delta(table, e))?;
        Ok(Some(t))
    }

    /// The files of a table's snapshot (newest, or `version`), paths under the store root,
    /// sorted. Empty for a table never written. A table with Parquet files but no Delta log
    /// is from a store written before Delta: an error says how to migrate it.
    pub async fn snapshot_files(&self, table: Table, version: Option<u64>) -> Result<Vec<ObjectMeta>> {
        match self.delta_table(table, version).await? {
            Some(t) => files_of(table, &t),
            None => self.never_committed(table).await.map(|()| Vec::new()),
        }
    }

    /// The newest version of a table and its files, from one load of the log (`None`: never
    /// written). What a rewrite scans and then commits on top of.
    pub(crate) async fn newest_snapshot(&self, table: Table) -> Result<Option<(u64, Vec<ObjectMeta>)>> {
        match self.delta_table(table, None).await? {
            Some(t) => {
                let version = t.version().ok_or_else(|| Error::Task(format!("table {table} has no version")))?;
                Ok(Some((version, files_of(table, &t)?)))
            }
            None => self.never_committed(table).await.map(|()| None),
        }
    }

    /// Files the newest version no longer lists but that are still in the store, because the
    /// log's removes keep them for older versions (a compaction's inputs): the tombstones whose
    /// files still exist. Sorted; empty for a table never written.
    pub(crate) async fn superseded_files(&self, table: Table) -> Result<Vec<ObjectMeta>> {
        use futures::TryStreamExt;
        let Some(t) = self.delta_table(table, None).await? else { return Ok(Vec::new()) };
        let state = t.snapshot().map_err(|e| delta(table, e))?;
        let log = t.log_store();
        let removed: std::collections::HashSet<Path> = state
            .all_tombstones(log.as_ref())
            .map_ok(|r| Path::from_url_path(format!("lake/{}/{}", table.name(), r.path())))
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| delta(table, e))?
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Task(e.to_string()))?;
        let live: std::collections::HashSet<Path> = files_of(table, &t)?.into_iter().map(|m| m.location).collect();
        let mut files: Vec<ObjectMeta> = self
            .listed_files(table)
            .await?
            .into_iter()
            .filter(|m| removed.contains(&m.location) && !live.contains(&m.location))
            .collect();
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files)
    }

    /// A table with no Delta log: fine when it holds no files, or when this store is a Delta
    /// lake (they are a crashed first batch's uncommitted files, invisible by design); else the
    /// store predates Delta. (The listing first: files appear only after the marker.)
    async fn never_committed(&self, table: Table) -> Result<()> {
        if !self.listed_files(table).await?.is_empty() && !self.is_delta_lake().await? {
            return Err(Error::NeedsMigration { table: table.name() });
        }
        Ok(())
    }
}

/// A loaded table's files, paths under the store root, sorted.
fn files_of(table: Table, t: &DeltaTable) -> Result<Vec<ObjectMeta>> {
    let state = t.snapshot().map_err(|e| delta(table, e))?;
    let mut files: Vec<ObjectMeta> = state
        .log_data()
        .iter()
        .map(|f| ObjectMeta {
            location: Path::from(format!("lake/{}/{}", table.name(), f.object_store_path())),
            last_modified: f.modification_datetime().unwrap_or_default(),
            size: f.size().max(0) as u64,
            e_tag: None,
            version: None,
        })
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

impl Lake {
    /// Whether this store's lake is made of Delta tables (its marker exists).
    pub(crate) async fn is_delta_lake(&self) -> Result<bool> {
        match self.store().get(&Path::from(LAKE_MARKER)).await {
            Ok(_) => Ok(true),
            Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Parquet files found by listing the table's directory (committed or not): only for
    /// telling a pre-Delta store apart and for migrating it.
    pub(crate) async fn listed_files(&self, table: Table) -> Result<Vec<ObjectMeta>> {
        let files = self.store().list(&Lake::table_prefix(table)).await?;
        Ok(files
            .into_iter()
            .filter(|m| {
                m.location.filename().is_some_and(|f| f.ends_with(".parquet"))
                    && m.location.parts().all(|p| !p.as_ref().starts_with(['_', '.']))
            })
            .collect())
    }

    /// Commit `adds` and `removes` (paths under the store root, already in place) to `table`
    /// as one Delta transaction, creating the table on its first commit. Returns the version
    /// committed; once it returns, the commit is durable.
    pub(crate) async fn commit_files(
        &self,
        table: Table,
        adds: &[NewFile],
        removes: &[ObjectMeta],
        change: Change,
    ) -> Result<u64> {
        self.ensure_delta_lake().await?;
        self.add_files(table, adds, removes, change).await
    }

    /// Make sure this store is a Delta lake before anything is placed in a table directory:
    /// writes the marker on a new store. A store with tables from before Delta is refused
    /// (writing would hide them, as a Delta lake ignores files no commit added): migrate first.
    pub(crate) async fn ensure_delta_lake(&self) -> Result<()> {
        if self.is_delta_lake().await? {
            return Ok(());
        }
        for t in Table::ALL {
            if self.delta_table(t, None).await?.is_none() && !self.listed_files(t).await?.is_empty() {
                // Another writer may have written the marker and its first files meanwhile:
                // files appear only after the marker, so the marker read after the listing
                // tells the two apart.
                if self.is_delta_lake().await? {
                    return Ok(());
                }
                return Err(Error::NeedsMigration { table: t.name() });
            }
        }
        self.write_marker().await
    }

    /// The commit itself, with no check of the lake marker (the migration writes it last).
    async fn add_files(&self, table: Table, adds: &[NewFile], removes: &[ObjectMeta], change: Change) -> Result<u64> {
        let mut adds = adds.to_vec();
        let (mut known, base) = match &change {
            Change::Append { known } => (Some(known.clone()), None),
            Change::Rewrite { base, .. } | Change::Compact { base, .. } => (None, Some(*base)),
        };
        for _ in 0..MAX_COMMIT_RETRIES {
            // The order is what keeps an erased person out (DESIGN: erasure vs. writers): read
            // the newest version, then the tombstones, then commit at exactly that version + 1.
            // An erasure writes its tombstone before it scans, and commits to every table after
            // (a fence when nothing was found), so a writer that read the tombstones before the
            // erasure recorded them cannot commit after the erasure's commit: its version is
            // taken, and the retry reads the tombstone.
            let current = self.delta_table(table, None).await?;
            let newest = current.as_ref().and_then(|t| t.version());
            if let Some(base) = base {
                let newest = newest.ok_or_else(|| Error::Task(format!("table {table} vanished during a rewrite")))?;
                if newest != base {
                    return Err(Error::Stale { table: table.name(), base, newest });
                }
            }
            if let Some(known) = &mut known {
                self.keep_out_erased(table, &mut adds, known).await?;
                if adds.is_empty()
                    && removes.is_empty()
                    && let Some(v) = newest
                {
                    return Ok(v);
                }
            }
            let actions = actions(table, &adds, removes, &change)?;
            let committed = match current {
                None => {
                    let created = CreateBuilder::new()
                        .with_log_store(self.log_store(table)?)
                        .with_table_name(table.name())
                        .with_columns(delta_schema(table)?.fields().cloned())
                        .with_partition_columns(partition_names(table))
                        .with_configuration_property(
                            TableProperty::DeletedFileRetentionDuration,
                            Some(KEEP_REMOVED_FILES_LISTED),
                        )
                        .with_save_mode(SaveMode::ErrorIfExists)
                        .with_actions(actions)
                        // Never rebased by delta-rs onto a table another writer created: that
                        // commit would skip the re-checks above. Our loop retries instead.
                        .with_commit_properties(CommitProperties::default().with_max_retries(0))
                        .await;
                    match created {
                        Ok(t) => Ok(t.version().unwrap_or(0)),
                        Err(e) => Err(e),
                    }
                }
                Some(t) => {
                    let state = t.snapshot().map_err(|e| delta(table, e))?;
                    CommitBuilder::from(CommitProperties::default().with_max_retries(0))
                        .with_actions(actions)
                        .build(Some(state), t.log_store(), operation(table, &change))
                        .await
                        .map(|done| done.version())
                }
            };
            let version = match committed {
                Ok(v) => v,
                // Another writer committed this version first: read theirs and try again.
                Err(e) if is_conflict(&e) => continue,
                Err(_) if newest.is_none() && self.delta_table(table, None).await?.is_some() => continue,
                Err(e) => return Err(delta(table, e)),
            };
            self.store().sync_path(&Path::from(format!("lake/{}/_delta_log/{version:020}.json", table.name())))?;
            if version > 0 && version % CHECKPOINT_INTERVAL == 0 {
                self.checkpoint(table, version).await;
            }
            return Ok(version);
        }
        Err(Error::Delta {
            table: table.name(),
            reason: format!("gave up after {MAX_COMMIT_RETRIES} attempts, each beaten by another writer's commit"),
        })
    }

    /// Take the rows of erasures recorded since `known` out of `adds` (files in place but not
    /// yet committed): a file with such rows is rewritten without them, or dropped when nothing
    /// is left. `known` becomes every tombstone now recorded.
    async fn keep_out_erased(&self, table: Table, adds: &mut Vec<NewFile>, known: &mut BTreeSet<String>) -> Result<()> {
        let ids = self.tombstone_ids().await?;
        if ids.iter().all(|id| known.contains(id)) {
            return Ok(());
        }
        let mut erased = crate::ErasedSet::default();
        for t in self.tombstones().await? {
            if !known.contains(&t.id) {
                erased.extend(t.pseudonyms);
            }
        }
        let cols = crate::removal::text_columns(table);
        let mut kept = Vec::with_capacity(adds.len());
        for file in adds.drain(..) {
            let location = Path::from(file.path.as_str());
            let bytes = self.store().get(&location).await?;
            let mask: Vec<bool> = crate::removal::decode(table, &location, bytes.clone(), Some(&cols))?
                .iter()
                .flat_map(|b| erased.batch_mentions(b))
                .collect();
            let removed = mask.iter().filter(|&&r| r).count();
            if removed == 0 {
                kept.push(file);
                continue;
            }
            tracing::info!(table = table.name(), file = %location, rows = removed, "rows of a person erased while the batch was written are left out");
            if removed < mask.len() {
                let full = crate::removal::decode(table, &location, bytes, None)?;
                kept.push(self.write_without(table, &location, full, &mask).await?);
            }
            // Never committed, so no version lists it.
            self.store().delete(&location).await?;
        }
        *adds = kept;
        known.extend(ids);
        Ok(())
    }

    /// Write the checkpoint of `version`. The commit is already durable, so a failure here is
    /// only logged: readers replay the JSON commits instead, and the next interval tries again.
    async fn checkpoint(&self, table: Table, version: u64) {
        let done = async {
            let t =
                self.delta_table(table, Some(version)).await?.ok_or_else(|| Error::Task("table vanished".into()))?;
            deltalake_core::checkpoints::create_checkpoint(&t, None).await.map_err(|e| delta(table, e))
        };
        if let Err(e) = done.await {
            tracing::warn!(table = table.name(), version, error = %e, "Delta checkpoint not written; readers replay the log");
        }
    }

    async fn write_marker(&self) -> Result<()> {
        let marker = serde_json::json!({ "format": "delta" }).to_string();
        // `false`: another writer wrote it first, which is just as good.
        self.store().put_new(&Path::from(LAKE_MARKER), marker.into()).await.map(|_| ())
    }
}

impl Lake {
    /// `Some(v)`: this lake is pinned, and `table` was at version `v` (`None`: not yet written).
    pub(crate) fn pinned_version(&self, table: Table) -> Option<Option<u64>> {
        self.pinned.as_ref().map(|p| p.get(table.name()).copied())
    }

    /// Each table's version this lake reads: the pinned ones, or the newest.
    pub async fn versions(&self) -> Result<TableVersions> {
        if let Some(p) = &self.pinned {
            return Ok(p.as_ref().clone());
        }
        let mut out = TableVersions::new();
        for table in Table::ALL {
            if let Some(v) = self.delta_table(table, None).await?.and_then(|t| t.version()) {
                out.insert(table.name().to_string(), v);
            }
        }
        Ok(out)
    }

    /// This lake pinned to every table's newest version (or kept as pinned): read one
    /// consistent snapshot through it, however long the analysis takes.
    pub async fn pinned(&self) -> Result<Lake> {
        let versions = self.versions().await?;
        Ok(self.at_versions(versions))
    }

    /// This lake pinned to `versions` (a model card's, or [`Lake::versions_at`]).
    pub fn at_versions(&self, versions: TableVersions) -> Lake {
        Lake { store: self.store.clone(), pinned: Some(Arc::new(versions)) }
    }

    /// Each table's newest version committed at or before `at`.
    pub async fn versions_at(&self, at: chrono::DateTime<chrono::Utc>) -> Result<TableVersions> {
        let mut out = TableVersions::new();
        for table in Table::ALL {
            let log = self.log_store(table)?;
            if !log.is_delta_table_location().await.map_err(|e| delta(table, e))? {
                continue;
            }
            let mut t = DeltaTable::new(log);
            match t.load_with_datetime(at).await {
                Ok(()) => {
                    if let Some(v) = t.version() {
                        out.insert(table.name().to_string(), v);
                    }
                }
                // Created after `at`: the table had no rows then.
                Err(DeltaTableError::InvalidVersion(_)) | Err(DeltaTableError::NotATable(_)) => {}
                Err(e) => return Err(delta(table, e)),
            }
        }
        Ok(out)
    }

    /// Fail, naming the table and version, when a file this lake's versions list is gone:
    /// an erasure or retention run deleted it, so that version can no longer be read.
    pub async fn check_readable(&self) -> Result<()> {
        for table in Table::ALL {
            for m in self.list_files(table, None).await? {
                if !self.store().exists(&m.location).await? {
                    return Err(Error::VersionGone {
                        table: table.name(),
                        version: self.pinned_version(table).flatten(),
                        path: m.location.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// What `Lake::migrate` did to one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Migration {
    pub table: &'static str,
    /// Files the table's first Delta commit adds (0 when nothing was done).
    pub files: usize,
    pub rows: u64,
    /// The table's Delta version after the migration (`None`: empty table, nothing to do).
    pub version: Option<u64>,
    /// The table was a Delta table already (an earlier, perhaps interrupted, run did it).
    pub already_delta: bool,
    /// A Delta table created before the lake set [`KEEP_REMOVED_FILES_LISTED`] got it now, in a
    /// commit of its own, so its next checkpoints keep listing the files its log removed.
    pub kept_removes_listed: bool,
}

impl Lake {
    /// Set [`KEEP_REMOVED_FILES_LISTED`] on a table created without it (before the lake set it
    /// at creation). Returns the table's version after, and whether it was set now.
    async fn keep_removes_listed(&self, table: Table, t: DeltaTable) -> Result<(Option<u64>, bool)> {
        let key = TableProperty::DeletedFileRetentionDuration.as_ref();
        let state = t.snapshot().map_err(|e| delta(table, e))?;
        if state.metadata().configuration().get(key).map(String::as_str) == Some(KEEP_REMOVED_FILES_LISTED) {
            return Ok((t.version().map(|v| v as u64), false));
        }
        let t = t
            .set_tbl_properties()
            .with_properties(HashMap::from([(key.to_string(), KEEP_REMOVED_FILES_LISTED.to_string())]))
            .with_raise_if_not_exists(false)
            .await
            .map_err(|e| delta(table, e))?;
        Ok((t.version().map(|v| v as u64), true))
    }

    /// Turn a store written before Delta into Delta tables, in place: each table's Parquet
    /// files (those a directory listing shows, which is what pre-Delta readers saw) become
    /// its version 0, in one commit per table. No file is moved or rewritten. Idempotent and
    /// safe to interrupt: a table is migrated whole or not at all (its first commit is an
    /// atomic put-if-absent), a re-run skips tables already done, and the lake marker that
    /// makes uncommitted files invisible is written only after every table is done. Run it
    /// with no other hrloop process writing to the store.
    pub async fn migrate(&self) -> Result<Vec<Migration>> {
        let mut done = Vec::new();
        for table in Table::ALL {
            if let Some(t) = self.delta_table(table, None).await? {
                let (version, upgraded) = self.keep_removes_listed(table, t).await?;
                done.push(Migration {
                    table: table.name(),
                    files: 0,
                    rows: 0,
                    version,
                    already_delta: true,
                    kept_removes_listed: upgraded,
                });
                continue;
            }
            let listed = self.listed_files(table).await?;
            if listed.is_empty() {
                done.push(Migration {
                    table: table.name(),
                    files: 0,
                    rows: 0,
                    version: None,
                    already_delta: false,
                    kept_removes_listed: false,
                });
                continue;
            }
            let mut adds = Vec::with_capacity(listed.len());
            for m in &listed {
                let bytes = self.store().get(&m.location).await?;
                let reader = parquet::file::reader::SerializedFileReader::new(bytes).map_err(|e| Error::Schema {
                    table: table.name(),
                    path: m.location.to_string(),
                    reason: e.to_string(),
                })?;
                let rows =
                    parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows().max(0) as u64;
                adds.push(NewFile {
                    path: m.location.to_string(),
                    rows,
                    size: m.size,
                    modified_ms: m.last_modified.timestamp_millis(),
                });
            }
            let rows = adds.iter().map(|f| f.rows).sum();
            let version =
                self.add_files(table, &adds, &[], Change::Append { known: self.tombstone_ids().await? }).await?;
            crate::fault::hit("migrate_after_table");
            done.push(Migration {
                table: table.name(),
                files: adds.len(),
                rows,
                version: Some(version),
                already_delta: false,
                kept_removes_listed: false,
            });
        }
        self.write_marker().await?;
        Ok(done)
    }
}

/// The table's Delta schema: the columns stored in its files, then its partition columns (as
/// text, the way they appear in the directory names).
pub(crate) fn delta_schema(table: Table) -> Result<StructType> {
    // Delta's `timestamp` is a UTC instant; the kernel recognises it by the zone name "UTC"
    // (the files say "+00:00", the same instant).
    let utc = |f: &arrow_schema::FieldRef| match f.data_type() {
        arrow_schema::DataType::Timestamp(unit, Some(_)) => {
            f.as_ref().clone().with_data_type(arrow_schema::DataType::Timestamp(*unit, Some("UTC".into())))
        }
        _ => f.as_ref().clone(),
    };
    let schema = arrow_schema::Schema::new(table.def().file_schema().fields().iter().map(utc).collect::<Vec<_>>());
    let file: StructType = (&schema).try_into_kernel()?;
    let mut fields: Vec<StructField> = file.fields().cloned().collect();
    for (name, _) in table.def().partitions {
        if fields.iter().all(|f| f.name() != name) {
            fields.push(StructField::new(*name, DataType::STRING, true));
        }
    }
    StructType::try_new(fields).map_err(|e| Error::Task(e.to_string()))
}

/// `k=v` directory names of a path relative to the table, as Delta partition values.
fn partition_values(relative: &str) -> HashMap<String, Option<String>> {
    relative
        .split('/')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

fn delta(table: Table, e: DeltaTableError) -> Error {
    Error::Delta { table: table.name(), reason: e.to_string() }
}

fn partition_names(table: Table) -> Vec<String> {
    table.def().partitions.iter().map(|(n, _)| n.to_string()).collect()
}

/// The Delta actions of a commit: an add per new file, a remove per replaced one (paths in the
/// log are relative to the table).
fn actions(table: Table, adds: &[NewFile], removes: &[ObjectMeta], change: &Change) -> Result<Vec<Action>> {
    let deleted_at = match change {
        Change::Rewrite { at, .. } | Change::Compact { at, .. } => Some(at.timestamp_millis()),
        Change::Append { .. } => None,
    };
    // Compaction moves rows between files without changing them: readers of the change feed
    // (and Delta's conflict rules) skip such actions.
    let data_change = !matches!(change, Change::Compact { .. });
    let prefix = format!("lake/{}/", table.name());
    let relative = |path: &str| -> Result<String> {
        path.strip_prefix(&prefix)
            .map(str::to_string)
            .ok_or_else(|| Error::Task(format!("{path} is not in table {table}")))
    };
    let mut actions = Vec::with_capacity(adds.len() + removes.len());
    for f in adds {
        let path = relative(&f.path)?;
        actions.push(Action::Add(Add {
            partition_values: partition_values(&path),
            path,
            size: f.size as i64,
            modification_time: f.modified_ms,
            data_change,
            stats: Some(serde_json::json!({ "numRecords": f.rows }).to_string()),
            ..Default::default()
        }));
    }
    for m in removes {
        let path = relative(m.location.as_ref())?;
        actions.push(Action::Remove(Remove {
            partition_values: Some(partition_values(&path)),
            path,
            data_change,
            deletion_timestamp: deleted_at,
            extended_file_metadata: Some(true),
            size: Some(m.size as i64),
            ..Default::default()
        }));
    }
    Ok(actions)
}

fn operation(table: Table, change: &Change) -> DeltaOperation {
    match change {
        Change::Append { .. } => DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(partition_names(table)),
            predicate: None,
        },
        Change::Rewrite { why, .. } => DeltaOperation::Delete { predicate: Some(why.clone()) },
        Change::Compact { target_bytes, .. } => {
            DeltaOperation::Optimize { predicate: None, target_size: *target_bytes as i64 }
        }
    }
}

/// Whether a commit failed only because another writer committed the same version first.
fn is_conflict(e: &DeltaTableError) -> bool {
    use deltalake_core::kernel::transaction::TransactionError;
    matches!(
        e,
        DeltaTableError::VersionAlreadyExists(_)
            | DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) }
            | DeltaTableError::Transaction { source: TransactionError::VersionAlreadyExists(_) }
    )
}
