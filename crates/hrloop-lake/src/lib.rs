//! The lake: hrloop's tables as Hive-partitioned Parquet on `object_store`.
//!
//! Layout under the store root (`./data` by default):
//!
//! ```text
//! lake/<table>/<key>=<value>/.../part-<batch>-<n>.parquet   readable by DuckDB, pyarrow, Spark
//! _staging/                                                 files being written (never read)
//! privacy/erasures/<id>.json                                tombstones of erased people (pseudonyms only)
//! audit/<seq>.jsonl                                         the hash-chained audit trail
//! ```
//!
//! Two guarantees hold for every write: a reader never sees a partial file (files are staged,
//! made durable, then renamed into place), and a write that returned `Ok` survives a crash
//! (fsync of the file and its directory on local disk; object stores acknowledge durable PUTs).

pub mod audit;
mod delta;
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

/// The store plus the table catalog: what every reader and writer of hrloop data goes through.
#[derive(Debug, Clone)]
pub struct Lake {
    store: Store,
}

impl Lake {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Open the store at a URL or local path (`./data`, `file:///srv/hr`, `s3://bucket/prefix`).
    pub fn open(location: &str) -> Result<Self> {
        Ok(Self::new(Store::open(location)?))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The object-store prefix of a table: `lake/<table>`.
    pub fn table_prefix(table: Table) -> object_store::path::Path {
        object_store::path::Path::from(format!("lake/{}", table.name()))
    }
}
