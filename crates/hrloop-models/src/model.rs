//! Estimators and the trained-model artifact: feature pipeline + estimator, scoring and
//! explanations. The artifact is plain JSON, independent of the training library's types
//! where possible, so serving needs no training code.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{DecisionTreeClassifier, DecisionTreeClassifierParameters};

use crate::features::{Aligned, FeaturePipeline, RawFeatures};
use crate::logistic;
use crate::preference::{Blend, PreferenceModel};
use crate::spec::Algorithm;
use crate::{Error, Result};

type Tree = DecisionTreeClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

#[derive(Debug, Serialize, Deserialize)]
pub struct ForestTree {
    /// Input columns this tree was grown on (random subspace).
    pub columns: Vec<usize>,
    /// `None` when the bootstrap sample held one class only: then `constant` is the score.
    pub tree: Option<Tree>,
    pub constant: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    Logistic { weights: Vec<f64>, intercept: f64 },
    Forest { trees: Vec<ForestTree> },
}

/// One feature's share of a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: String,
    /// Change in the score (probability) this feature's value made, against the training
    /// baseline (median/mean for numbers, no category for categories).
    pub effect: f64,
    /// The same in words for HR.
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TrainedModel {
    pub pipeline: FeaturePipeline,
    pub estimator: Estimator,
    /// A blend with the recruiters' preferences (the spec's `[label] blend`): the score is
    /// `outcomes` × the estimator's probability + `recruiter` × the candidate's appeal to
    /// recruiters ([`PreferenceModel::appeal`]). None: the outcome model alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recruiter: Option<RecruiterBlend>,
}

/// The recruiters' side of a blended model. Its preference model reads the same numeric
/// features in the same order as the outcome pipeline, so an aligned row serves both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecruiterBlend {
    pub blend: Blend,
    pub preference: PreferenceModel,
}

impl RecruiterBlend {
    /// Blend outcome probabilities `p` with the appeal of the same rows.
    fn apply<'r>(&self, p: &mut [f64], rows: impl Iterator<Item = (Vec<Option<f64>>, Option<&'r str>)>) {
        for (p, (numeric, family)) in p.iter_mut().zip(rows) {
            let appeal = self.preference.appeal_aligned(numeric, family.unwrap_or(""));
            *p = self.blend.outcomes * *p + self.blend.recruiter * appeal;
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Small deterministic generator for bootstraps (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Estimator {
    /// Fit on standardised rows `x` (one row-major matrix) with labels `y`.
    pub fn fit(algorithm: &Algorithm, x: ArrayView2<'_, f64>, y: &[bool]) -> Result<Estimator> {
        Self::fit_with_progress(algorithm, x, y, &mut |_, _| {})
    }

    /// [`Estimator::fit`], reporting `(done, total)` steps (trees) as it goes.
    pub fn fit_with_progress(
        algorithm: &Algorithm,
        x: ArrayView2<'_, f64>,
        y: &[bool],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Estimator> {
        Self::fit_weighted(algorithm, x, y, None, progress)
    }

    /// [`Estimator::fit_with_progress`] with a weight per row (see [`crate::weighting`]): the
    /// logistic regression minimises the weighted loss; the forest's bootstraps draw rows in
    /// proportion to their weights (smartcore's trees take whole-number row counts only).
    pub fn fit_weighted(
        algorithm: &Algorithm,
        x: ArrayView2<'_, f64>,
        y: &[bool],
        weights: Option<&[f64]>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Estimator> {
        let positives = y.iter().filter(|&&b| b).count();
        if positives == 0 || positives == y.len() {
            return Err(Error::NotEnoughData(format!("all {} labelled rows have the same outcome", y.len())));
        }
        let (n, cols) = x.dim();
        match algorithm {
            Algorithm::LogisticRegression { l2, max_iterations } => {
                // scikit-learn's default tolerance, on the same averaged loss.
                let opts = logistic::Options { l2: *l2, max_iterations: *max_iterations, tolerance: 1e-4 };
                let fitted = logistic::fit(x, y, weights, &opts)?;
                if !fitted.converged {
                    tracing::warn!(iterations = fitted.iterations, "logistic regression stopped before converging");
                }
                Ok(Estimator::Logistic { weights: fitted.coefficients, intercept: fitted.intercept })
            }
            Algorithm::RandomForest { trees, max_depth, min_samples_leaf, seed } => {
                let mut rng = SplitMix(*seed ^ 0x5eed_f0e5);
                let per_tree = ((cols as f64 * 0.6).ceil() as usize).clamp(1, cols.max(1));
                let params = DecisionTreeClassifierParameters::default()
                    .with_max_depth(*max_depth)
                    .with_min_samples_leaf(*min_samples_leaf);
                let mut out = Vec::with_capacity(*trees as usize);
                // Cumulative weights for weighted bootstrap draws.
                let cumulative: Option<Vec<f64>> = weights.map(|w| {
                    w.iter()
                        .scan(0.0, |acc, v| {
                            *acc += v;
                            Some(*acc)
                        })
                        .collect()
                });
                for t in 0..*trees {
                    progress(t as usize, *trees as usize);
                    let rows: Vec<usize> = match &cumulative {
                        Some(c) => {
                            let total = c.last().copied().unwrap_or(0.0);
                            (0..n)
                                .map(|_| {
                                    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                                    c.partition_point(|&v| v <= u).min(n - 1)
                                })
                                .collect()
                        }
                        None => (0..n).map(|_| rng.below(n)).collect(),
                    };
                    let mut columns: Vec<usize> = (0..cols).collect();
                    for i in 0..per_tree {
                        let j = i + rng.below(cols - i);
                        columns.swap(i, j);
                    }
                    columns.truncate(per_tree);
                    columns.sort_unstable();
                    let labels: Vec<u32> = rows.iter().map(|&r| u32::from(y[r])).collect();
                    let pos = labels.iter().filter(|&&l| l == 1).count();
                    if pos == 0 || pos == labels.len() {
                        out.push(ForestTree { columns, tree: None, constant: if pos == 0 { 0.0 } else { 1.0 } });
                        continue;
                    }
                    let m = columns_of(x, &rows, &columns)?;
                    let tree = Tree::fit(&m, &labels, params.clone()).map_err(|e| Error::Training(e.to_string()))?;
                    out.push(ForestTree { columns, tree: Some(tree), constant: 0.0 });
                }
                progress(*trees as usize, *trees as usize);
                Ok(Estimator::Forest { trees: out })
            }
        }
    }

    /// Probability of success for standardised rows.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        match self {
            Estimator::Logistic { weights, intercept } => Ok(x
                .rows()
                .into_iter()
                .map(|row| sigmoid(intercept + row.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>()))
                .collect()),
            Estimator::Forest { trees } => {
                let all: Vec<usize> = (0..x.nrows()).collect();
                let mut sum = vec![0.0; x.nrows()];
                for t in trees {
                    match &t.tree {
                        None => sum.iter_mut().for_each(|s| *s += t.constant),
                        Some(tree) => {
                            let m = columns_of(x, &all, &t.columns)?;
                            let p = tree.predict_proba(&m).map_err(|e| Error::Training(e.to_string()))?;
                            for (i, s) in sum.iter_mut().enumerate() {
                                *s += *p.get((i, 1));
                            }
                        }
                    }
                }
                let n = trees.len().max(1) as f64;
                Ok(sum.into_iter().map(|s| s / n).collect())
            }
        }
    }
}

/// The `rows` × `columns` sub-matrix of `x` as smartcore's column-major matrix, in one copy.
fn columns_of(x: ArrayView2<'_, f64>, rows: &[usize], columns: &[usize]) -> Result<DenseMatrix<f64>> {
    let values: Vec<f64> = columns.iter().flat_map(|&c| rows.iter().map(move |&r| x[[r, c]])).collect();
    DenseMatrix::new(rows.len(), columns.len(), values, true).map_err(|e| Error::Training(e.to_string()))
}

/// One input's share of a score: `input` indexes the pipeline's numeric steps, then its
/// categorical ones; `effect` is the score minus the score with that input at its training
/// baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    pub input: usize,
    pub effect: f64,
}

impl TrainedModel {
    pub fn score_many(&self, rows: &[RawFeatures]) -> Result<Vec<f64>> {
        self.score_each(rows.iter())
    }

    /// Scores of rows held elsewhere (no copy of their features).
    pub fn score_each<'r>(&self, rows: impl ExactSizeIterator<Item = &'r RawFeatures>) -> Result<Vec<f64>> {
        match &self.recruiter {
            None => self.estimator.predict(self.pipeline.matrix(rows.map(|r| self.pipeline.align(r))).view()),
            Some(_) => {
                let aligned: Vec<Aligned<'_>> = rows.map(|r| self.pipeline.align(r)).collect();
                self.score_aligned(&aligned)
            }
        }
    }

    /// Scores for rows already lined up with the pipeline.
    pub fn score_aligned(&self, rows: &[Aligned<'_>]) -> Result<Vec<f64>> {
        let mut p = self.estimator.predict(self.pipeline.matrix(rows.iter()).view())?;
        if let Some(r) = &self.recruiter {
            let family = self.pipeline.categorical.iter().position(|c| c.name == "job_family");
            r.apply(&mut p, rows.iter().map(|row| (row.numeric.clone(), family.and_then(|f| row.categorical[f]))));
        }
        Ok(p)
    }

    /// The `top` features that moved this candidate's score most, in words. Each effect is the
    /// score minus the score with that one feature at its training baseline (median for numbers,
    /// no category for categories): exact for the model itself, linear or not, and the same
    /// method for both so explanations read alike.
    pub fn explain(&self, row: &RawFeatures, top: usize) -> Result<Vec<Contribution>> {
        Ok(self.score_and_explain(row, top)?.1)
    }

    /// The score and its explanation in one pass (one feature transform for linear models).
    pub fn score_and_explain(&self, row: &RawFeatures, top: usize) -> Result<(f64, Vec<Contribution>)> {
        let row = self.pipeline.align(row);
        let (p, effects) = self.score_and_effects(&row, top)?;
        Ok((p, effects.into_iter().map(|e| self.contribution(&row, e)).collect()))
    }

    /// The score and the `top` inputs that moved it most, largest first; nothing put into words
    /// (the serving hot path renders only [`sentence`](Self::sentence)).
    pub fn score_and_effects(&self, row: &Aligned<'_>, top: usize) -> Result<(f64, Vec<Effect>)> {
        let (base, without) = match (&self.estimator, &self.recruiter) {
            (Estimator::Logistic { weights, intercept }, None) => self.linear_baselines(row, weights, *intercept),
            _ => self.generic_baselines(row)?,
        };
        // The few largest by size, in one pass (insertion into a short sorted list; ties keep
        // input order): cheaper than sorting every input for every candidate.
        let mut effects: Vec<Effect> = Vec::with_capacity(top.min(without.len()) + 1);
        for (input, w) in without.iter().enumerate() {
            let e = Effect { input, effect: base - w };
            let at = effects.partition_point(|x| x.effect.abs() >= e.effect.abs());
            if at < top {
                effects.insert(at, e);
                effects.truncate(top);
            }
        }
        Ok((base, effects))
    }

    /// Name and value (as text) of input `input` for this row.
    fn name_and_value<'r>(&'r self, row: &Aligned<'r>, input: usize) -> (&'r str, Value<'r>) {
        let n = self.pipeline.numeric.len();
        if input < n {
            let v = row.numeric[input].filter(|v| v.is_finite());
            (&self.pipeline.numeric[input].name, v.map_or(Value::Missing, Value::Number))
        } else {
            (&self.pipeline.categorical[input - n].name, row.categorical[input - n].map_or(Value::Missing, Value::Text))
        }
    }

    /// An effect in words for HR: "interview score 5 raised the score by 0.12".
    pub fn sentence(&self, row: &Aligned<'_>, e: Effect) -> String {
        use std::fmt::Write;
        let (name, value) = self.name_and_value(row, e.input);
        let mut s = String::with_capacity(name.len() + 40);
        s.extend(name.chars().map(|c| if c == '_' { ' ' } else { c }));
        s.push(' ');
        value.write_to(&mut s);
        s.push_str(if e.effect >= 0.0 { " raised the score by " } else { " lowered the score by " });
        // Two decimals from integers: float formatting is the slowest part of an explanation.
        let hundredths = (e.effect.abs() * 100.0).round() as u64;
        let _ = write!(s, "{}.{:02}", hundredths / 100, hundredths % 100);
        s
    }

    /// An effect with its feature, value and sentence.
    pub fn contribution(&self, row: &Aligned<'_>, e: Effect) -> Contribution {
        let (name, value) = self.name_and_value(row, e.input);
        let mut v = String::new();
        value.write_to(&mut v);
        Contribution { feature: name.to_string(), value: v, effect: e.effect, text: self.sentence(row, e) }
    }

    /// Score, and the score with each feature at its baseline, by re-scoring variants (any model).
    fn generic_baselines(&self, row: &Aligned<'_>) -> Result<(f64, Vec<f64>)> {
        let base = self.score_aligned(std::slice::from_ref(row))?[0];
        let mut variants = Vec::new();
        for (i, s) in self.pipeline.numeric.iter().enumerate() {
            let mut r = row.clone();
            r.numeric[i] = Some(s.median);
            variants.push(r);
        }
        for j in 0..self.pipeline.categorical.len() {
            let mut r = row.clone();
            r.categorical[j] = None;
            variants.push(r);
        }
        Ok((base, self.score_aligned(&variants)?))
    }

    /// The same numbers for a linear model in O(features): each baseline only changes that
    /// feature's terms of the logit. This is the serving hot path.
    fn linear_baselines(&self, row: &Aligned<'_>, weights: &[f64], intercept: f64) -> (f64, Vec<f64>) {
        let z = self.pipeline.transform_aligned(row);
        let logit = intercept + z.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>();
        let mut out = Vec::with_capacity(self.pipeline.numeric.len() + self.pipeline.categorical.len());
        let mut col = 0;
        for s in &self.pipeline.numeric {
            let baseline = (s.median - s.mean) / s.std;
            let mut delta = weights[col] * (z[col] - baseline);
            col += 1;
            if s.indicator {
                delta += weights[col] * z[col];
                col += 1;
            }
            out.push(sigmoid(logit - delta));
        }
        for c in &self.pipeline.categorical {
            let n = c.levels.len();
            let delta: f64 = (col..col + n).map(|i| weights[i] * z[i]).sum();
            col += n;
            out.push(sigmoid(logit - delta));
        }
        (sigmoid(logit), out)
    }
}

/// A feature's value as an explanation shows it.
enum Value<'a> {
    Number(f64),
    Text(&'a str),
    Missing,
}

impl Value<'_> {
    fn write_to(&self, s: &mut String) {
        use std::fmt::Write;
        match self {
            Value::Number(v) => {
                let _ = write!(s, "{v}");
            }
            Value::Text(t) => s.push_str(t),
            Value::Missing => s.push_str("missing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    fn data() -> (Array2<f64>, Vec<bool>) {
        let mut rng = SplitMix(3);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..600 {
            let a = (rng.below(1000) as f64 / 500.0) - 1.0;
            let b = (rng.below(1000) as f64 / 500.0) - 1.0;
            let noise = (rng.below(1000) as f64 / 1000.0) - 0.5;
            x.extend([a, b]);
            y.push(2.0 * a - 0.5 * b + noise > 0.0);
        }
        (Array2::from_shape_vec((y.len(), 2), x).unwrap(), y)
    }

    /// A blended model scores outcomes × p + recruiter × appeal on every path (named rows,
    /// aligned rows, explanations), and its artifact round-trips.
    #[test]
    fn a_blended_model_scores_the_blend_on_every_path() {
        use crate::preference::{Options, Pair};
        let spec = crate::spec::FeatureSpec {
            numeric: vec!["interview_score".into(), "soft_skill_score".into()],
            categorical: vec!["job_family".into()],
            ..Default::default()
        };
        let row = |i: f64, soft: f64| {
            let mut r = RawFeatures::default();
            r.numeric.insert("interview_score".into(), i);
            r.numeric.insert("soft_skill_score".into(), soft);
            r.categorical.insert("job_family".into(), "sales".into());
            r
        };
        let rows: Vec<RawFeatures> = (0..100).map(|i| row(1.0 + (i % 5) as f64, (i % 7) as f64 / 7.0)).collect();
        let y: Vec<bool> = (0..100).map(|i| i % 5 >= 2).collect();
        let pipeline = FeaturePipeline::fit(&spec, &rows);
        let x = pipeline.matrix(rows.iter().map(|r| pipeline.align(r)));
        let estimator =
            Estimator::fit(&Algorithm::LogisticRegression { l2: 0.1, max_iterations: 200 }, x.view(), &y).unwrap();
        let pairs: Vec<Pair> = (0..60)
            .map(|i| Pair {
                requisition: format!("r{}", i / 3),
                recruiter: None,
                job_family: "sales".into(),
                chosen: row(3.0, 0.9 - (i % 3) as f64 * 0.1),
                passed_over: row(3.0, 0.2 + (i % 4) as f64 * 0.1),
                against_model: true,
                reason: None,
            })
            .collect();
        let preference = PreferenceModel::fit(&spec.numeric, &pairs, Options::default()).unwrap();
        let blend = Blend { outcomes: 0.7, recruiter: 0.3 };
        let outcome_only = TrainedModel { pipeline: pipeline.clone(), estimator, recruiter: None };
        let json = serde_json::to_string(&outcome_only).unwrap();
        assert!(!json.contains("recruiter"), "an outcome-only artifact is as before");
        let mut blended: TrainedModel = serde_json::from_str(&json).unwrap();
        blended.recruiter = Some(RecruiterBlend { blend, preference: preference.clone() });
        let blended: TrainedModel = serde_json::from_str(&serde_json::to_string(&blended).unwrap()).unwrap();
        let probe = [row(4.0, 0.9), row(4.0, 0.1), row(2.0, 0.5)];
        let p = outcome_only.score_many(&probe).unwrap();
        let b = blended.score_many(&probe).unwrap();
        let aligned: Vec<Aligned<'_>> = probe.iter().map(|r| blended.pipeline.align(r)).collect();
        let ba = blended.score_aligned(&aligned).unwrap();
        for i in 0..probe.len() {
            let want = 0.7 * p[i] + 0.3 * preference.appeal(&probe[i], "sales");
            assert!((b[i] - want).abs() < 1e-12 && (ba[i] - want).abs() < 1e-12, "{} {} {want}", b[i], ba[i]);
            assert!((blended.score_and_explain(&probe[i], 2).unwrap().0 - want).abs() < 1e-12);
        }
        assert!(b[0] > b[1], "the recruiters' soft-skill preference moves the blend: {b:?}");
        assert!((p[0] - p[1]).abs() < (b[0] - b[1]).abs());
    }

    #[test]
    fn both_estimators_learn_a_simple_rule() {
        let (x, y) = data();
        for algo in [
            Algorithm::LogisticRegression { l2: 0.01, max_iterations: 200 },
            Algorithm::RandomForest { trees: 30, max_depth: 6, min_samples_leaf: 5, seed: 1 },
        ] {
            let est = Estimator::fit(&algo, x.view(), &y).unwrap();
            let p = est.predict(x.view()).unwrap();
            let auc = crate::metrics::roc_auc(&y, &p).unwrap();
            assert!(auc > 0.9, "{algo:?}: AUC {auc}");
            let json = serde_json::to_string(&est).unwrap();
            let back: Estimator = serde_json::from_str(&json).unwrap();
            assert_eq!(back.predict(x.slice(s![..5, ..])).unwrap(), p[..5].to_vec(), "artifact round-trips exactly");
        }
        assert!(
            Estimator::fit(
                &Algorithm::LogisticRegression { l2: 1.0, max_iterations: 10 },
                x.view(),
                &vec![true; y.len()]
            )
            .is_err()
        );
    }
}

#[cfg(test)]
mod weighted_tests {
    use super::*;
    use ndarray::{Array2, s};

    #[test]
    fn weights_decide_which_rows_a_model_learns_from() {
        // The first 600 rows follow one rule (feature 0), the last 600 another (feature 1).
        let mut rng = SplitMix(11);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..1200 {
            let a = (rng.below(1000) as f64 / 500.0) - 1.0;
            let b = (rng.below(1000) as f64 / 500.0) - 1.0;
            x.extend([a, b]);
            y.push(if i < 600 { a > 0.0 } else { b > 0.0 });
        }
        let x = Array2::from_shape_vec((y.len(), 2), x).unwrap();
        let new = 600..1200;
        let recent: Vec<f64> = (0..1200).map(|i| if new.contains(&i) { 1.9 } else { 0.1 }).collect();
        for algo in [
            Algorithm::LogisticRegression { l2: 0.01, max_iterations: 200 },
            Algorithm::RandomForest { trees: 30, max_depth: 6, min_samples_leaf: 5, seed: 1 },
        ] {
            let fit = |w: Option<&[f64]>| Estimator::fit_weighted(&algo, x.view(), &y, w, &mut |_, _| {}).unwrap();
            let auc_on_new_rule = |est: &Estimator| {
                let p = est.predict(x.slice(s![new.clone(), ..])).unwrap();
                crate::metrics::roc_auc(&y[new.clone()], &p).unwrap()
            };
            let plain = fit(None);
            let (plain_auc, weighted) = (auc_on_new_rule(&plain), auc_on_new_rule(&fit(Some(&recent))));
            assert!(weighted > plain_auc + 0.05, "{algo:?}: weighted {weighted:.3} vs plain {plain_auc:.3}");
            // Equal weights are the plain model again: the same logistic regression exactly (it
            // minimises the weighted loss), forest bootstraps drawn another way.
            let ones = fit(Some(&vec![1.0; y.len()]));
            match algo {
                Algorithm::LogisticRegression { .. } => {
                    assert_eq!(serde_json::to_string(&ones).unwrap(), serde_json::to_string(&plain).unwrap())
                }
                Algorithm::RandomForest { .. } => assert!((auc_on_new_rule(&ones) - plain_auc).abs() < 0.03),
            }
        }
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;
    use crate::spec::FeatureSpec;

    #[test]
    fn explanations_name_the_feature_value_and_direction() {
        let spec = FeatureSpec { numeric: vec!["interview_score".into(), "noise".into()], ..Default::default() };
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let score = 1.0 + (i % 5) as f64;
            let mut r = RawFeatures::default();
            r.numeric.insert("interview_score".into(), score);
            r.numeric.insert("noise".into(), ((i * 7919) % 13) as f64);
            rows.push(r);
            y.push(score + ((i * 31) % 3) as f64 > 4.0);
        }
        let pipeline = FeaturePipeline::fit(&spec, &rows);
        let x = pipeline.matrix(rows.iter().map(|r| pipeline.align(r)));
        let estimator =
            Estimator::fit(&Algorithm::LogisticRegression { l2: 0.1, max_iterations: 200 }, x.view(), &y).unwrap();
        let model = TrainedModel { pipeline, estimator, recruiter: None };
        let mut high = RawFeatures::default();
        high.numeric.insert("interview_score".into(), 5.0);
        high.numeric.insert("noise".into(), 6.0);
        let top = model.explain(&high, 3).unwrap();
        // The linear shortcut gives exactly what re-scoring gives.
        let Estimator::Logistic { weights, intercept } = &model.estimator else { panic!("a logistic model") };
        let mut other = high.clone();
        other.numeric.remove("noise");
        for r in [&high, &other] {
            let r = model.pipeline.align(r);
            let (b1, v1) = model.linear_baselines(&r, weights, *intercept);
            let (b2, v2) = model.generic_baselines(&r).unwrap();
            assert!((b1 - b2).abs() < 1e-12);
            assert!(v1.iter().zip(&v2).all(|(a, b)| (a - b).abs() < 1e-12), "{v1:?} vs {v2:?}");
        }
        // The top three are the three largest of all effects, in order.
        for r in [&high, &other] {
            let r = model.pipeline.align(r);
            let (_, all) = model.score_and_effects(&r, usize::MAX).unwrap();
            let (_, three) = model.score_and_effects(&r, 3).unwrap();
            let mut sorted = all.clone();
            sorted.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
            assert_eq!(all, sorted, "every effect, largest first");
            assert_eq!(three, sorted[..three.len()].to_vec());
        }
        assert_eq!(top[0].feature, "interview_score");
        assert!(top[0].effect > 0.0);
        assert!(top[0].text.starts_with("interview score 5 raised the score by "), "{}", top[0].text);
        assert_eq!(top.len(), 2);
    }
}
