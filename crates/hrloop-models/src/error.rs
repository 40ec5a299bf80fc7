//! Errors of training, evaluation and the registry.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("model spec {path}: {reason}")]
    Spec { path: String, reason: String },
    #[error("not enough data to train: {0}")]
    NotEnoughData(String),
    #[error("training failed: {0}")]
    Training(String),
    #[error("registry: {0}")]
    Registry(String),
    #[error("registry conflict: {0}")]
    Conflict(String),
    #[error("no model version {0}")]
    UnknownVersion(String),
    #[error(transparent)]
    Lake(#[from] hrloop_lake::Error),
    #[error("lake query: {0}")]
    Query(#[from] hrloop_lake::polars::prelude::PolarsError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A request that cannot be answered as asked (an empty period, an unknown name).
    #[error("{0}")]
    Invalid(String),
    /// A lake row an analysis cannot read, named by table and row.
    #[error("lake data: {0}")]
    Data(String),
    #[error("corrupt registry record {path}: {reason}")]
    Corrupt { path: String, reason: String },
}
