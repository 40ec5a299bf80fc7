//! Learning: model specs, training on matured outcomes, evaluation, fairness and the model
//! registry with champion/challenger aliases.

mod error;
pub mod features;
pub mod metrics;
pub mod model;
pub mod spec;

pub use error::{Error, Result};
pub use spec::{Algorithm, Label, ModelSpec};
