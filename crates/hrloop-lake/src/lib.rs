//! The lake: hrloop's tables as Delta tables (Hive-partitioned Parquet plus a `_delta_log`) on
//! `object_store`.
//!
//! Layout under the store root (`./data` by default):
//!
//! ```text
//! lake/_delta_lake.json                                    marker: this store's tables are Delta tables
//! lake/<table>/_delta_log/<version>.json                    the table's commits (delta.rs)
//! lake/<table>/<key>=<value>/.../part-<batch>-<n>.parquet   data files, readable once committed
//! _staging/                                                 files being written (never read)
//! privacy/erasures/<id>.json                                tombstones of erased people (pseudonyms only)
//! audit/<seq>.jsonl                                         the hash-chained audit trail
//! ```
//!
//! Three guarantees hold for every write: a reader never sees a partial file (files are staged,
//! made durable, then renamed into place), never part of a batch (a batch's files become
//! visible in one Delta commit; readers take a snapshot's file list, never a directory
//! listing), and a write that returned `Ok` survives a crash (fsync of the files, their
//! directories and the commit on local disk; object stores acknowledge durable PUTs).

pub mod audit;
mod compact;
pub use compact::{Compaction, CompactionReport};
mod delta;
pub use delta::Migration;
mod error;
pub mod fault;
pub mod query;
mod read;
pub mod removal;
pub mod rows;
mod store;
mod tables;
mod write;

pub use error::{Error, Result};
/// The polars this lake queries with (one version for every crate that reads the lake).
pub use polars;
pub use query::collect;
pub use read::{ExistingKeys, TableScan};
pub use removal::{ErasedSet, RemovalReport, Tombstone};
pub use rows::Row;
pub use store::Store;
pub use tables::{FieldDef, Kind, PartitionRule, SYSTEM_COLUMNS, Table, TableDef};
pub use write::{PartitionedWriter, RowKeys, Value, WrittenFile, partition_of};

/// One consistent view of the lake: each table's Delta version, by table name. A table not
/// named had never been written.
pub type TableVersions = std::collections::BTreeMap<String, u64>;

/// The store plus the table catalog: what every reader and writer of hrloop data goes through.
/// A lake is either live (readers see each table's newest version) or pinned to
/// [`TableVersions`] ([`Lake::pinned`], [`Lake::at_versions`]): then every read through it sees
/// those versions, so an analysis that reads several tables, or one table twice, sees one
/// consistent snapshot. Writes always commit on top of the newest version.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Store,
    pinned: Option<std::sync::Arc<TableVersions>>,
}

impl Lake {
    pub fn new(store: Store) -> Self {
        Self { store, pinned: None }
    }

    /// Open the store at a URL or local path (`./data`, `file:///srv/hr`, `s3://bucket/prefix`).
    pub fn open(location: &str) -> Result<Self> {
        Ok(Self::new(Store::open(location)?))
    }

    /// [`Lake::open`] with object-store options ([`Store::open_with`]).
    pub fn open_with(location: &str, options: &[(&str, &str)]) -> Result<Self> {
        Ok(Self::new(Store::open_with(location, options)?))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The object-store prefix of a table: `lake/<table>`.
    pub fn table_prefix(table: Table) -> object_store::path::Path {
        object_store::path::Path::from(format!("lake/{}", table.name()))
    }
}
