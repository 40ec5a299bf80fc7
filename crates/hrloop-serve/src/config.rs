//! Serving settings, with the defaults DESIGN.md names.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A share of requisitions is served by the challenger.
    Ab,
    /// The champion serves everything; the challenger scores the same candidates off the path.
    Shadow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Model name in the registry whose champion/challenger are served.
    pub model: String,
    pub mode: Mode,
    /// Share of requisitions on the challenger in A/B mode.
    pub challenger_share: f64,
    /// Below this confidence a candidate goes to a human.
    pub low_confidence: f64,
    /// Share of decisions sampled for human review whatever their confidence.
    pub audit_rate: f64,
    pub max_candidates: usize,
    pub max_body_bytes: usize,
    /// How often the registry is checked for alias changes, milliseconds.
    pub poll_ms: u64,
    /// How often the decision log is sealed into a segment for the lake, milliseconds.
    pub flush_ms: u64,
    /// Sealed segments move to the lake when no ranking has been logged for 100 ms, and at the
    /// latest this many milliseconds after sealing (0: as soon as sealed, whatever the load).
    pub lake_max_delay_ms: u64,
    /// Mapping for `POST /v1/outcomes` bodies (the HRIS export's columns).
    pub outcomes_mapping: std::path::PathBuf,
    /// Mapping for `POST /v1/feedback` bodies.
    pub feedback_mapping: std::path::PathBuf,
    /// Vocabularies for the quality report.
    pub taxonomy: std::path::PathBuf,
    /// Also serve `POST /v1/echo`, which parses a rank request and returns it: the benchmark's
    /// floor for what HTTP + JSON cost without any scoring.
    pub echo: bool,
    /// Pipeline files, for the pipeline metrics (cadence, failing, last success).
    pub pipelines_dir: Option<std::path::PathBuf>,
    /// How often the KPIs are recomputed from the store, milliseconds.
    pub kpi_refresh_ms: u64,
    /// Connections held at once (lowered to fit the open-file limit); beyond it, 503.
    pub max_connections: usize,
    /// A request head must arrive whole within this many milliseconds of the server waiting
    /// for it: after connecting, or after the previous response (the idle timeout).
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this many milliseconds of its head (else 408).
    pub body_timeout_ms: u64,
    /// The local directory for the decision write-ahead log (`_wal/`) and the API tokens
    /// (`None`: the store's own directory; a store in a bucket needs one).
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            model: "success12m_logistic".into(),
            mode: Mode::Ab,
            challenger_share: 0.20,
            low_confidence: 0.70,
            audit_rate: 0.10,
            max_candidates: 500,
            max_body_bytes: 2 * 1024 * 1024,
            poll_ms: 500,
            flush_ms: 5000,
            lake_max_delay_ms: 60_000,
            outcomes_mapping: "data/mappings/hris_outcomes.toml".into(),
            feedback_mapping: "data/mappings/api_feedback.toml".into(),
            taxonomy: "data/taxonomy".into(),
            echo: false,
            pipelines_dir: Some("pipelines".into()),
            kpi_refresh_ms: 60_000,
            max_connections: 1024,
            header_timeout_ms: 30_000,
            body_timeout_ms: 30_000,
            state_dir: None,
        }
    }
}
