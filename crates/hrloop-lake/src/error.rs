//! The lake's error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store location {location:?} is not usable: {reason}")]
    InvalidStore { location: String, reason: String },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file {path} in table {table} does not match the table's schema: {reason}")]
    Schema { table: &'static str, path: String, reason: String },
    #[error("row does not fit table {table}: {reason}")]
    Row { table: &'static str, reason: String },
    #[error("lake query: {0}")]
    Query(#[from] polars::prelude::PolarsError),
    #[error("Delta log of table {table}: {reason}")]
    Delta { table: &'static str, reason: String },
    #[error(
        "table {table} was written before the lake used Delta tables (Parquet files, no _delta_log): run `hrloop lake migrate` once to make every table a Delta table in place"
    )]
    NeedsMigration { table: &'static str },
    #[error(
        "table {table}{at} can no longer be read: its file {path} was deleted by an erasure or retention run (the versions that held an erased person's rows are gone with them); use a newer version"
    , at = version.map_or(String::new(), |v| format!(" at version {v}")))]
    VersionGone { table: &'static str, version: Option<u64>, path: String },
    #[error(
        "table {table} moved from version {base} to {newest} while rows were being removed from it; \
         the removal rescans and retries"
    )]
    Stale { table: &'static str, base: u64, newest: u64 },
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
