//! Ingestion errors: all of them refuse the whole file, with a reason a person can act on.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mapping {path}: {reason}")]
    Mapping { path: PathBuf, reason: String },
    #[error("{path}: file refused: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{0}")]
    Key(String),
    #[error("taxonomy {path}: {reason}")]
    Taxonomy { path: PathBuf, reason: String },
    #[error(transparent)]
    Lake(#[from] hrloop_lake::Error),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn unreadable(path: &std::path::Path, reason: impl Into<String>) -> Error {
        Error::Unreadable { path: path.to_path_buf(), reason: reason.into() }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    }
}
