//! Learning: model specs, training on matured outcomes, evaluation, fairness and the model
//! registry with champion/challenger aliases.

pub mod bias;
pub mod calibrate;
pub mod card;
pub mod data;
pub mod documentation;
mod error;
pub mod experiment;
pub mod features;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod preference;
pub mod record_keeping;
mod recruiting;
pub mod registry;
pub mod rejudge;
pub mod spec;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod train;
pub mod validity;
pub mod weighting;

pub use card::ModelCard;
pub use error::{Error, Result};
pub use registry::{Alias, AliasEvent, AliasState, ChangeRequest, Registry};
pub use spec::{Algorithm, Label, ModelSpec};
pub use train::{TrainOptions, Trained, train, train_with_progress};
