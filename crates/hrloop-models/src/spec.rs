//! Model specs (`models/*.toml`): what a ranker predicts, from which features, with which
//! algorithm, and which gates a version must pass. Versioned; unknown keys are errors.

use std::path::Path;

use hrloop_core::Milestone;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const FORMAT_VERSION: u32 = 1;

/// Attribute names that may never be model inputs (they are measured, not used). A spec's own
/// `fairness.attributes` are added to this list.
pub const PROTECTED: [&str; 12] = [
    "gender",
    "sex",
    "age",
    "age_band",
    "ethnicity",
    "race",
    "origin",
    "nationality",
    "religion",
    "disability",
    "sexual_orientation",
    "pregnancy",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Version of this file format; currently 1.
    pub format_version: u32,
    /// Registry name: versions are stored as `NAME/vN`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub label: LabelSpec,
    pub features: FeatureSpec,
    pub algorithm: Algorithm,
    #[serde(default)]
    pub evaluation: EvaluationSpec,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub fairness: FairnessSpec,
    /// Training-row weights (recency, reweighing); none: every hire counts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<crate::weighting::WeightingSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// Milestone the label is read at: 3m, 6m, 12m or 24m.
    pub milestone: Milestone,
    /// `employed`, `rating >= N`, or both joined by `and`.
    pub condition: String,
    /// Blend the outcome model with what recruiters prefer, e.g.
    /// `blend = { outcomes = 0.8, recruiter = 0.2 }` (weights in [0, 1] summing to 1): a
    /// pairwise preference model learnt from recruiter feedback on served rankings
    /// ([`crate::preference`]) gives each candidate an appeal to recruiters, and the score is
    /// the weighted sum of the outcome probability and that appeal. Default: outcomes only. A
    /// blended version is an ordinary challenger: it wins only through the same verdicts and
    /// fairness gates as any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blend: Option<crate::preference::Blend>,
}

/// A parsed label condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    pub milestone: Milestone,
    pub require_employed: bool,
    pub min_rating: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Numeric features (keys of the decision log's `features` map): standardised, missing
    /// values imputed with the training median plus a "was missing" indicator.
    pub numeric: Vec<String>,
    /// Categorical columns of the decision log (e.g. `job_family`): one-hot, unseen values to
    /// an all-zero row.
    #[serde(default)]
    pub categorical: Vec<String>,
    /// An ingestion mapping whose `range`s declare the valid values of the numeric features:
    /// serving refuses (422) a candidate with a value outside its declared range, naming the
    /// candidate and the field. A relative path is looked up from the spec's folder upwards,
    /// then from the working directory (`data/mappings/ats_applications.toml` works for a spec
    /// in `models/` and for a copy elsewhere run from the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_ranges_from: Option<std::path::PathBuf>,
    /// Valid ranges by numeric feature, `[lowest, highest]`: written here, or read from
    /// `valid_ranges_from` when the spec is loaded (a range written here wins).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub valid_ranges: std::collections::BTreeMap<String, [f64; 2]>,
}

/// What a spec reads from an ingestion mapping: the declared range of each `features.<name>`
/// field (the mapping's other settings are the ingestion's business).
#[derive(Deserialize)]
struct MappingRanges {
    #[serde(default)]
    fields: std::collections::BTreeMap<String, FieldRange>,
}

#[derive(Deserialize)]
struct FieldRange {
    range: Option<[f64; 2]>,
}

impl FeatureSpec {
    /// Fill [`valid_ranges`](Self::valid_ranges) from the mapping named by `valid_ranges_from`
    /// (see there for where a relative path is looked up from `spec`, the spec file).
    fn read_valid_ranges(&mut self, spec: &Path) -> Result<()> {
        let Some(from) = &self.valid_ranges_from else { return Ok(()) };
        let err = |reason: String| Error::Spec { path: spec.display().to_string(), reason };
        let dir = spec.parent().unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let tried: Vec<std::path::PathBuf> = dir.ancestors().map(|d| d.join(from)).chain([from.clone()]).collect();
        let Some(path) = tried.iter().find(|p| p.is_file()) else {
            return Err(err(format!(
                "features.valid_ranges_from: no {} from the spec's folder upwards or in the working directory",
                from.display()
            )));
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("features.valid_ranges_from: cannot read {}: {e}", path.display())))?;
        let mapping: MappingRanges = toml::from_str(&text)
            .map_err(|e| err(format!("features.valid_ranges_from: {} is not a mapping: {e}", path.display())))?;
        for (field, declared) in mapping.fields {
            if let (Some(name), Some(range)) = (field.strip_prefix("features."), declared.range)
                && self.numeric.iter().any(|n| n == name)
            {
                self.valid_ranges.entry(name.to_string()).or_insert(range);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Algorithm {
    /// L2-regularised logistic regression, optionally weighted (`logistic.rs`: argmin L-BFGS).
    LogisticRegression {
        #[serde(default = "default_l2")]
        l2: f64,
        #[serde(default = "default_iterations")]
        max_iterations: u64,
    },
    /// Random forest (smartcore).
    RandomForest {
        #[serde(default = "default_trees")]
        trees: u16,
        #[serde(default = "default_depth")]
        max_depth: u16,
        #[serde(default = "default_leaf")]
        min_samples_leaf: usize,
        #[serde(default)]
        seed: u64,
    },
}

impl Algorithm {
    /// The family in a word: `logistic regression`, `random forest`.
    pub fn family(&self) -> &'static str {
        match self {
            Algorithm::LogisticRegression { .. } => "logistic regression",
            Algorithm::RandomForest { .. } => "random forest",
        }
    }
}

fn default_l2() -> f64 {
    1.0
}
fn default_iterations() -> u64 {
    200
}
fn default_trees() -> u16 {
    100
}
fn default_depth() -> u16 {
    8
}
fn default_leaf() -> usize {
    5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// The newest this many months of hires are held out for evaluation.
    pub holdout_months: u32,
    /// Cut-offs for NDCG@k and precision@k per requisition.
    pub ndcg_k: usize,
    pub precision_k: usize,
}

impl Default for EvaluationSpec {
    fn default() -> Self {
        Self { holdout_months: 4, ndcg_k: 10, precision_k: 5 }
    }
}

/// What a version must reach to be eligible for promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    pub min_auc: f64,
    pub max_expected_calibration_error: f64,
    pub min_adverse_impact_ratio: f64,
    /// Fewer labelled training rows than this: the version is recorded but not eligible.
    pub min_training_rows: usize,
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            min_auc: 0.6,
            max_expected_calibration_error: 0.15,
            min_adverse_impact_ratio: 0.8,
            min_training_rows: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessSpec {
    /// Attributes from the protected_attributes table to measure.
    pub attributes: Vec<String>,
    /// Selection = being in the model's top k of a requisition.
    pub top_k: usize,
    /// Groups smaller than this are reported but not gated.
    pub min_group_size: usize,
}

impl Default for FairnessSpec {
    fn default() -> Self {
        Self { attributes: vec!["gender".into(), "age_band".into()], top_k: 5, min_group_size: 30 }
    }
}

/// Whether `name` can name a model: letters, digits, `_` or `-`, at most 128 characters.
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ModelSpec {
    pub fn load(path: &Path) -> Result<Self> {
        let err = |reason: String| Error::Spec { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut spec: ModelSpec = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        spec.features.read_valid_ranges(path)?;
        spec.validate().map_err(err)?;
        Ok(spec)
    }

    /// Checks beyond the file's shape. The error says what to change.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (this hrloop reads {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if !is_model_name(&self.name) {
            return Err(format!("name {:?} must be letters, digits, _ or -", self.name));
        }
        self.label()?;
        if let Some(b) = self.label.blend {
            let ok = |w: f64| (0.0..=1.0).contains(&w);
            if !ok(b.outcomes) || !ok(b.recruiter) || (b.outcomes + b.recruiter - 1.0).abs() > 1e-9 {
                return Err(format!(
                    "[label] blend: outcomes = {} and recruiter = {} must each be between 0 and 1 and sum to 1",
                    b.outcomes, b.recruiter
                ));
            }
            if self.features.numeric.is_empty() {
                return Err("[label] blend: the recruiter preference model needs numeric features".into());
            }
        }
        let protected: Vec<String> = PROTECTED
            .iter()
            .map(|s| s.to_string())
            .chain(self.fairness.attributes.iter().map(|a| a.to_lowercase()))
            .collect();
        for f in self.features.numeric.iter().chain(&self.features.categorical) {
            let lower = f.to_lowercase();
            if let Some(p) = protected.iter().find(|p| lower == **p || lower.starts_with(&format!("{p}_"))) {
                return Err(format!(
                    "feature {f:?} is the protected attribute {p:?}: protected attributes are only used to measure fairness, never as model inputs; remove it from [features]"
                ));
            }
        }
        if self.features.numeric.is_empty() && self.features.categorical.is_empty() {
            return Err("no features: list at least one under [features]".into());
        }
        for c in &self.features.categorical {
            if c != "job_family" {
                return Err(format!("categorical feature {c:?} is not a decision-log column; available: job_family"));
            }
        }
        Ok(())
    }

    pub fn label(&self) -> std::result::Result<Label, String> {
        let mut label = Label { milestone: self.label.milestone, require_employed: false, min_rating: None };
        for part in self.label.condition.split(" and ") {
            let t: Vec<&str> = part.split_whitespace().collect();
            match t.as_slice() {
                ["employed"] => label.require_employed = true,
                ["rating", ">=", n] => {
                    let n: i64 = n.parse().map_err(|_| format!("label condition: {n:?} is not a rating 1-5"))?;
                    if !(1..=5).contains(&n) {
                        return Err(format!("label condition: rating {n} is outside 1-5"));
                    }
                    label.min_rating = Some(n);
                }
                _ => {
                    return Err(format!(
                        "label condition {part:?} not understood: use `employed`, `rating >= N`, or both joined by `and`"
                    ));
                }
            }
        }
        Ok(label)
    }
}

impl Label {
    /// The label of one hire given what the HRIS said at the milestone, or `None` when unknown.
    /// Someone who left before the milestone is a failure (not retained), not unknown.
    pub fn value(&self, employed: bool, rating: Option<i64>) -> bool {
        if !employed {
            return false;
        }
        match self.min_rating {
            Some(min) => rating.is_some_and(|r| r >= min),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_specs_take_their_valid_ranges_from_the_ats_mapping() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        for name in ["success12m_logistic", "success12m_forest", "success6m_logistic"] {
            let spec = ModelSpec::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(spec.features.valid_ranges.get("interview_score"), Some(&[1.0, 5.0]), "{name}");
            assert_eq!(spec.features.valid_ranges.get("assessment_score"), Some(&[0.0, 100.0]), "{name}");
            assert!(!spec.features.valid_ranges.contains_key("career_changer"), "no range declared");
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.toml");
        std::fs::write(&path, spec("numeric = [\"x\"]\nvalid_ranges_from = \"missing.toml\"")).unwrap();
        let e = ModelSpec::load(&path).unwrap_err().to_string();
        assert!(e.contains("valid_ranges_from") && e.contains("missing.toml"), "{e}");
    }

    fn spec(extra: &str) -> String {
        format!(
            "format_version = 1\nname = \"m\"\n[label]\nmilestone = \"12m\"\ncondition = \"employed and rating >= 3\"\n\
             [algorithm]\nkind = \"logistic_regression\"\n[features]\n{extra}\n"
        )
    }

    fn check(text: &str) -> std::result::Result<ModelSpec, String> {
        let s: ModelSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|_| s)
    }

    #[test]
    fn protected_attributes_are_refused_as_features() {
        for f in ["gender", "Age_band", "gender_f"] {
            let err = check(&spec(&format!("numeric = [\"skill_match\", \"{f}\"]"))).unwrap_err();
            assert!(err.contains("protected attribute") && err.contains(f), "{err}");
        }
        assert!(check(&spec("numeric = [\"skill_match\"]\ncategorical = [\"job_family\"]")).is_ok());
    }

    #[test]
    fn label_conditions() {
        let s = check(&spec("numeric = [\"x\"]")).unwrap();
        let l = s.label().unwrap();
        assert_eq!((l.require_employed, l.min_rating), (true, Some(3)));
        assert!(l.value(true, Some(3)) && !l.value(true, Some(2)) && !l.value(false, None) && !l.value(true, None));
        let mut bad = s.clone();
        bad.label.condition = "happy".into();
        assert!(bad.validate().unwrap_err().contains("not understood"));
        assert!(toml::from_str::<ModelSpec>(&spec("numeric = [\"x\"]\ncolour = 1")).is_err(), "unknown keys refused");
    }
}
