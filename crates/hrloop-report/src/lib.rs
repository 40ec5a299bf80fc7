//! Documents people read rather than query: the bias audit as CSV, JSON and one
//! self-contained HTML file, and the SVG charts the reports share.

pub mod bias_audit;
pub mod chart;
mod html;
pub mod model_report;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("drawing a chart: {0}")]
    Chart(String),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}
