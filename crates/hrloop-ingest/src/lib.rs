//! Ingestion: ATS and HRIS exports (CSV, JSON lines, Parquet) through a mapping into the lake.
//!
//! Personal data is handled at the door: identifiers become keyed HMAC pseudonyms, names,
//! e-mails and national ids are never read past the header. Each bad row goes to quarantine
//! with a reason naming the row and field; good rows land; a file that cannot be read at all
//! is refused whole and nothing is written.

mod error;
mod ingest;
mod mapping;
mod parse;
mod pseudonym;
mod report;
mod source;
mod taxonomy;

pub use error::{Error, Result};
pub use ingest::{IngestOptions, ingest_file};
pub use mapping::{Mapping, ResolvedMapping};
pub use pseudonym::{KeySource, Pseudonymiser};
pub use report::{BatchReport, FieldQuality};
pub use source::Format;
pub use taxonomy::Taxonomy;
