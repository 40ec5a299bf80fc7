//! Every environment variable hrloop reads, in one place.

/// Store root: a path or an s3://, gs://, az:// URL. Default `./data`.
pub const STORE: &str = "HRLOOP_STORE";
/// File holding the pseudonymisation key (hex), mode 0600.
pub const KEY_FILE: &str = "HRLOOP_KEY_FILE";
pub const STATE_DIR: &str = "HRLOOP_STATE_DIR";
/// The pseudonymisation key itself, hex (at least 32 bytes).
pub const PSEUDONYM_KEY: &str = "HRLOOP_PSEUDONYM_KEY";
/// Fixed "now" (RFC 3339 or YYYY-MM-DD) for reproducible runs and tests.
pub const NOW: &str = "HRLOOP_NOW";
/// Log filter, e.g. `info` or `hrloop_ingest=debug`.
pub const LOG: &str = "HRLOOP_LOG";
