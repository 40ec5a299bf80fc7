//! Privacy: the right to erasure and retention purges, with the scans that prove both.
//!
//! Both go through one mechanism in the lake ([`hrloop_lake::Lake::remove_rows`]): only the
//! files holding affected rows are rewritten, each atomically. Erasure also writes a tombstone
//! first, which every writer (ingestion, the decision log) and training consult, so an erased
//! person cannot come back through an old export.

pub mod erase;
pub mod retention;

pub use erase::{ErasureReport, ErasureRequest, VerifyReport, erase, verify};
pub use retention::{Policy, PurgeReport, purge};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] hrloop_lake::Error),
    #[error(transparent)]
    Models(#[from] hrloop_models::Error),
    #[error("{0}")]
    Policy(String),
    #[error("cannot scan {0}")]
    Scan(String),
}
