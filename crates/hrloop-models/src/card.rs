//! The model card: everything needed to judge, reproduce or roll back a version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::spec::ModelSpec;

pub const CARD_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub path: String,
    pub size: u64,
}

/// The exact lake files a version was trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSnapshot {
    pub files: Vec<SnapshotFile>,
    /// SHA-256 over every file's path and bytes, in path order.
    pub content_sha256: String,
    /// The Delta version of each table the training set was read from (`hrloop train --as-of
    /// NAME/vN` reads exactly these again).
    #[serde(default)]
    pub table_versions: hrloop_lake::TableVersions,
    /// SHA-256 over the training matrix as fitted: feature names, every value (f64 bits, row
    /// by row) and every label. Equal hashes mean byte-identical training sets.
    #[serde(default)]
    pub features_sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    pub train: usize,
    pub holdout: usize,
    pub positives_train: usize,
    /// Successes among the holdout rows (absent in cards from before it was kept).
    #[serde(default)]
    pub positives_holdout: Option<usize>,
    /// Hires whose label milestone is not yet due: excluded, never counted as failures.
    pub excluded_not_due: usize,
    /// Due but no outcome reported yet (missing feedback).
    pub excluded_missing_outcome: usize,
    /// Hires without a decision-log row to read features from.
    pub excluded_no_features: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub roc_auc: Option<f64>,
    pub ndcg_at_k: Option<f64>,
    pub precision_at_k: Option<f64>,
    /// Requisitions with at least two labelled candidates in the holdout (ranking metrics).
    pub ranking_groups: usize,
    pub brier: f64,
    pub expected_calibration_error: f64,
    pub train_roc_auc: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRate {
    pub group: String,
    pub candidates: usize,
    pub selected: usize,
    pub selection_rate: f64,
    /// Under the spec's minimum group size: reported, not gated.
    pub small: bool,
}

/// Selection in the model's top k per requisition, by group of one attribute or of two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessResult {
    /// `gender`, or `gender x age_band` for an intersection.
    pub attribute: String,
    pub groups: Vec<GroupRate>,
    /// Lowest selection rate over highest, among groups of sufficient size.
    pub adverse_impact_ratio: Option<f64>,
    /// Four-fifths rule.
    pub passes_four_fifths: Option<bool>,
    /// Two-sided p-value of the difference between the lowest and highest selection rate
    /// (pooled two-proportion z-test), Bonferroni-adjusted for the g(g-1)/2 pairs the extreme
    /// pair was picked from: below 0.05 the gap is unlikely to be chance.
    #[serde(default)]
    pub p_value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub passed: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub hrloop_version: String,
    pub parent_version: Option<String>,
    pub spec: ModelSpec,
    pub feature_columns: Vec<String>,
    pub training_data: TrainingSnapshot,
    /// Hires from this date on were held out.
    pub holdout_from: Option<chrono::NaiveDate>,
    pub rows: RowCounts,
    pub metrics: Metrics,
    pub fairness: Vec<FairnessResult>,
    pub gates: GateResult,
    /// How training rows were weighted, when the spec asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<crate::weighting::WeightingReport>,
    /// For a blended model (`[label] blend`): the blend and what its recruiter preference
    /// model learnt from (pairs, overrides, recruiters, requisitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recruiter_preference: Option<RecruiterPreference>,
}

/// What a blended model's preference model was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecruiterPreference {
    pub blend: crate::preference::Blend,
    pub evidence: crate::preference::Evidence,
    /// Job families with preference weights of their own (the rest use the shared ones).
    pub job_families: Vec<String>,
}

impl ModelCard {
    /// A card with the spec and provenance filled in and everything measured left empty;
    /// training fills the rest, tools and tests that register hand-made models use it as is.
    pub fn new(spec: ModelSpec, created_by: &str, created_at: DateTime<Utc>) -> ModelCard {
        ModelCard {
            format_version: CARD_FORMAT_VERSION,
            name: spec.name.clone(),
            version: String::new(),
            created_at,
            created_by: created_by.to_string(),
            hrloop_version: env!("CARGO_PKG_VERSION").to_string(),
            parent_version: None,
            spec,
            feature_columns: Vec::new(),
            training_data: TrainingSnapshot::default(),
            holdout_from: None,
            rows: RowCounts::default(),
            metrics: Metrics::default(),
            fairness: Vec::new(),
            gates: GateResult::default(),
            weighting: None,
            recruiter_preference: None,
        }
    }
}
