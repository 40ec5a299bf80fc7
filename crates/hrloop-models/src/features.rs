//! The feature pipeline, fitted on training rows and stored inside the model artifact so that
//! serving transforms a candidate exactly as training did: numeric features are imputed with
//! the training median (plus a was-missing indicator) and standardised; categorical columns are
//! one-hot encoded over the values seen in training (unseen values give all zeros).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::spec::FeatureSpec;

/// One candidate as the pipeline sees it: named numbers and named categories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawFeatures {
    pub numeric: BTreeMap<String, f64>,
    pub categorical: BTreeMap<String, String>,
}

/// One candidate's inputs lined up with a pipeline: `numeric[i]` is the value of the pipeline's
/// `numeric[i]` step (`None` when missing), `categorical[j]` the value of its `categorical[j]`.
/// Serving builds this straight from a request with a [`FeatureIndex`], without any map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aligned<'a> {
    pub numeric: Vec<Option<f64>>,
    pub categorical: Vec<Option<&'a str>>,
}

/// Position of each numeric input by name, built once per loaded model.
#[derive(Debug, Clone, Default)]
pub struct FeatureIndex(rustc_hash::FxHashMap<String, usize>);

impl FeatureIndex {
    /// The position of numeric input `name` in [`Aligned::numeric`], if the model uses it.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.0.get(name).copied()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericStep {
    pub name: String,
    pub median: f64,
    pub mean: f64,
    pub std: f64,
    /// Whether any training row lacked the value (then a `<name>_missing` column exists).
    pub indicator: bool,
    /// Smallest and largest value seen in training (`None` in artifacts trained before hrloop
    /// recorded it, or when training never saw the feature). See [`FeaturePipeline::out_of_range`].
    #[serde(default)]
    pub seen: Option<(f64, f64)>,
    /// The declared valid range (the model spec's `valid_ranges`): a value outside it is
    /// refused at serving time. See [`FeaturePipeline::invalid`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<(f64, f64)>,
}

/// How far beyond the range seen in training a value may lie, as a share of that range's
/// width, before serving treats it as something the model has never seen (a 1-5 score of 6
/// is within; 50 is not).
pub const OUT_OF_RANGE_MARGIN: f64 = 0.25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalStep {
    pub name: String,
    pub levels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePipeline {
    pub numeric: Vec<NumericStep>,
    pub categorical: Vec<CategoricalStep>,
}

impl FeaturePipeline {
    pub fn fit(spec: &FeatureSpec, rows: &[RawFeatures]) -> FeaturePipeline {
        let numeric = spec
            .numeric
            .iter()
            .map(|name| {
                let mut vals: Vec<f64> = rows.iter().filter_map(|r| r.numeric.get(name).copied()).collect();
                vals.sort_by(f64::total_cmp);
                let median = if vals.is_empty() { 0.0 } else { vals[vals.len() / 2] };
                let imputed: Vec<f64> = rows.iter().map(|r| r.numeric.get(name).copied().unwrap_or(median)).collect();
                let n = imputed.len().max(1) as f64;
                let mean = imputed.iter().sum::<f64>() / n;
                let var = imputed.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
                let seen = vals.first().zip(vals.last()).map(|(lo, hi)| (*lo, *hi));
                let valid = spec.valid_ranges.get(name).map(|[lo, hi]| (*lo, *hi));
                NumericStep { name: name.clone(), median, mean, std, indicator: vals.len() < rows.len(), seen, valid }
            })
            .collect();
        let categorical = spec
            .categorical
            .iter()
            .map(|name| {
                let mut levels: Vec<String> = rows.iter().filter_map(|r| r.categorical.get(name).cloned()).collect();
                levels.sort();
                levels.dedup();
                CategoricalStep { name: name.clone(), levels }
            })
            .collect();
        FeaturePipeline { numeric, categorical }
    }

    /// Names of the model's input columns, in order.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.numeric {
            out.push(s.name.clone());
            if s.indicator {
                out.push(format!("{}_missing", s.name));
            }
        }
        for c in &self.categorical {
            for l in &c.levels {
                out.push(format!("{}={l}", c.name));
            }
        }
        out
    }

    /// Number of input columns ([`columns`](Self::columns) without building their names).
    pub fn width(&self) -> usize {
        self.numeric.iter().map(|s| 1 + usize::from(s.indicator)).sum::<usize>()
            + self.categorical.iter().map(|c| c.levels.len()).sum::<usize>()
    }

    /// The numeric inputs' positions by name.
    pub fn index(&self) -> FeatureIndex {
        FeatureIndex(self.numeric.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect())
    }

    /// Line a named row up with this pipeline's inputs.
    pub fn align<'a>(&self, row: &'a RawFeatures) -> Aligned<'a> {
        Aligned {
            numeric: self.numeric.iter().map(|s| row.numeric.get(&s.name).copied()).collect(),
            categorical: self.categorical.iter().map(|c| row.categorical.get(&c.name).map(String::as_str)).collect(),
        }
    }

    pub fn transform(&self, row: &RawFeatures) -> Vec<f64> {
        self.transform_aligned(&self.align(row))
    }

    /// The model's input columns for an aligned row (the serving hot path: no names, no maps).
    pub fn transform_aligned(&self, row: &Aligned<'_>) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width());
        self.push_row(row, &mut out);
        out
    }

    /// The model's input matrix for these rows: one contiguous row-major array, which the
    /// learners read as it is (no vector per row).
    pub fn matrix<'r, R: Borrow<Aligned<'r>>>(&self, rows: impl ExactSizeIterator<Item = R>) -> Array2<f64> {
        let (n, width) = (rows.len(), self.width());
        let mut flat = Vec::with_capacity(n * width);
        for row in rows {
            self.push_row(row.borrow(), &mut flat);
        }
        Array2::from_shape_vec((n, width), flat).expect("every row is `width` long")
    }

    fn push_row(&self, row: &Aligned<'_>, out: &mut Vec<f64>) {
        for (s, v) in self.numeric.iter().zip(&row.numeric) {
            let v = v.filter(|x| x.is_finite());
            out.push((v.unwrap_or(s.median) - s.mean) / s.std);
            if s.indicator {
                out.push(if v.is_none() { 1.0 } else { 0.0 });
            }
        }
        for (c, v) in self.categorical.iter().zip(&row.categorical) {
            for l in &c.levels {
                out.push(if *v == Some(l.as_str()) { 1.0 } else { 0.0 });
            }
        }
    }

    /// Whether a candidate is outside what training saw (an unseen category): serving routes
    /// such profiles to a human.
    pub fn unseen(&self, row: &RawFeatures) -> Vec<String> {
        self.categorical
            .iter()
            .filter_map(|c| {
                row.categorical.get(&c.name).filter(|v| !c.levels.contains(v)).map(|v| format!("{}={v}", c.name))
            })
            .collect()
    }

    /// The numeric inputs whose value lies far outside what training saw (beyond the observed
    /// range by more than [`OUT_OF_RANGE_MARGIN`] of its width): the model extrapolates there,
    /// so serving routes the candidate to a human and names them.
    pub fn out_of_range(&self, row: &Aligned<'_>) -> Vec<usize> {
        self.numeric
            .iter()
            .zip(&row.numeric)
            .enumerate()
            .filter(|(_, (s, v))| match (s.seen, v) {
                (Some((lo, hi)), Some(x)) => {
                    let margin = ((hi - lo) * OUT_OF_RANGE_MARGIN).max(1e-9 * lo.abs().max(hi.abs()).max(1.0));
                    *x < lo - margin || *x > hi + margin
                }
                _ => false,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The first numeric input whose value lies outside its declared valid range.
    pub fn invalid(&self, row: &Aligned<'_>) -> Option<usize> {
        self.numeric.iter().zip(&row.numeric).position(|(s, v)| match (s.valid, v) {
            (Some((lo, hi)), Some(x)) => *x < lo || *x > hi,
            _ => false,
        })
    }

    /// [`unseen`](Self::unseen) for an aligned row, as a yes or no.
    pub fn any_unseen(&self, row: &Aligned<'_>) -> bool {
        self.categorical.iter().zip(&row.categorical).any(|(c, v)| v.is_some_and(|v| !c.levels.iter().any(|l| l == v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imputes_standardises_and_one_hot_encodes_as_trained() {
        let spec =
            FeatureSpec { numeric: vec!["x".into()], categorical: vec!["job_family".into()], ..Default::default() };
        let row = |x: Option<f64>, jf: &str| RawFeatures {
            numeric: x.map(|v| [("x".to_string(), v)].into_iter().collect()).unwrap_or_default(),
            categorical: [("job_family".to_string(), jf.to_string())].into_iter().collect(),
        };
        let rows = vec![row(Some(1.0), "sales"), row(Some(3.0), "finance"), row(None, "sales")];
        let p = FeaturePipeline::fit(&spec, &rows);
        assert_eq!(p.columns(), vec!["x", "x_missing", "job_family=finance", "job_family=sales"]);
        assert_eq!(p.width(), 4);
        // Median of [1, 3] is 3 (upper); imputed column [1, 3, 3].
        let t = p.transform(&row(None, "astronaut"));
        assert_eq!(t[1], 1.0);
        assert_eq!(&t[2..], &[0.0, 0.0], "unseen category: all zeros");
        assert_eq!(p.unseen(&row(None, "astronaut")), vec!["job_family=astronaut".to_string()]);
        let z: Vec<f64> = rows.iter().map(|r| p.transform(r)[0]).collect();
        assert!(z.iter().sum::<f64>().abs() < 1e-12, "standardised to mean 0");
    }

    #[test]
    fn values_far_outside_what_training_saw_are_named() {
        let spec = FeatureSpec { numeric: vec!["score".into(), "other".into()], ..Default::default() };
        let rows: Vec<RawFeatures> = (1..=5)
            .map(|v| RawFeatures {
                numeric: [("score".to_string(), v as f64), ("other".to_string(), 0.0)].into(),
                categorical: BTreeMap::new(),
            })
            .collect();
        let p = FeaturePipeline::fit(&spec, &rows);
        assert_eq!(p.numeric[0].seen, Some((1.0, 5.0)));
        let at = |score: f64, other: Option<f64>| {
            p.out_of_range(&Aligned { numeric: vec![Some(score), other], categorical: vec![] })
        };
        assert!(at(5.0, Some(0.0)).is_empty());
        assert!(at(6.0, None).is_empty(), "within a quarter of the range beyond it");
        assert_eq!(at(50.0, Some(0.0)), vec![0]);
        assert_eq!(at(-2.0, Some(1e6)), vec![0, 1], "a constant feature: any other value is out of range");
        // Artifacts from before the range was recorded still load, and route nothing.
        let mut old = serde_json::to_value(&p).unwrap();
        old["numeric"][0].as_object_mut().unwrap().remove("seen");
        let old: FeaturePipeline = serde_json::from_value(old).unwrap();
        assert!(old.out_of_range(&Aligned { numeric: vec![Some(50.0), Some(0.0)], categorical: vec![] }).is_empty());
    }
}
