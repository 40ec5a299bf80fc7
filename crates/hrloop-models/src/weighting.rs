//! Sample weights for training ("re-weighting"): newer hires can count more than old ones
//! (outcomes drift), and each (group, outcome) cell of a protected attribute can count as if
//! group and outcome were independent (reweighing, Kamiran & Calders 2012), so a model does not
//! learn the historical gap between groups from the labels. The attribute is only used for the
//! weights, never as an input.
//!
//! Logistic regression minimises the weighted loss (see [`crate::logistic`]); the forest draws
//! its bootstrap rows in proportion to the weights, since smartcore's trees take whole-number
//! row counts only.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// How training rows are weighted (`[weighting]` in a model spec, or on a pipeline's train step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightingSpec {
    /// A hire's weight halves every this many days before the newest training hire.
    #[serde(default)]
    pub recency_half_life_days: Option<f64>,
    /// Protected attribute whose groups are reweighed against the outcome (e.g. `gender`).
    #[serde(default)]
    pub reweigh: Option<String>,
}

/// What the weights came to, for the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightingReport {
    pub spec: WeightingSpec,
    /// (Σw)² / Σw²: how many equally weighted rows the weighted sample is worth.
    pub effective_rows: f64,
    pub min_weight: f64,
    pub max_weight: f64,
    /// Reweighing factor per `group / outcome` cell (before recency and normalisation).
    pub cells: BTreeMap<String, f64>,
    /// Training rows without a value for the reweighed attribute (weighted 1).
    pub rows_without_group: usize,
}

/// Weights for rows with these hire dates, labels and groups (`None`: unknown), normalised to a
/// mean of 1.
pub fn weights(
    spec: &WeightingSpec,
    hire_dates: &[NaiveDate],
    labels: &[bool],
    groups: &[Option<&str>],
) -> (Vec<f64>, WeightingReport) {
    let n = labels.len();
    let mut w = vec![1.0; n];
    if let Some(half_life) = spec.recency_half_life_days.filter(|h| *h > 0.0)
        && let Some(newest) = hire_dates.iter().max()
    {
        for (w, d) in w.iter_mut().zip(hire_dates) {
            *w *= 0.5f64.powf((*newest - *d).num_days() as f64 / half_life);
        }
    }
    let mut cells = BTreeMap::new();
    let mut rows_without_group = 0;
    if spec.reweigh.is_some() {
        // Kamiran & Calders: w(g, y) = P(g) P(y) / P(g, y), over rows whose group is known.
        let mut by_cell: BTreeMap<(&str, bool), usize> = BTreeMap::new();
        let mut by_group: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_label: BTreeMap<bool, usize> = BTreeMap::new();
        let mut known = 0usize;
        for (g, y) in groups.iter().zip(labels) {
            if let Some(g) = g {
                *by_cell.entry((g, *y)).or_default() += 1;
                *by_group.entry(g).or_default() += 1;
                *by_label.entry(*y).or_default() += 1;
                known += 1;
            }
        }
        let factor = |g: &str, y: bool| {
            let (ng, ny, ngy) = (by_group[g] as f64, by_label[&y] as f64, by_cell[&(g, y)] as f64);
            ng * ny / (known as f64 * ngy)
        };
        for ((g, y), _) in &by_cell {
            cells.insert(format!("{g} / {}", if *y { "success" } else { "no success" }), factor(g, *y));
        }
        for ((w, g), y) in w.iter_mut().zip(groups).zip(labels) {
            match g {
                Some(g) => *w *= factor(g, *y),
                None => rows_without_group += 1,
            }
        }
    }
    let mean = w.iter().sum::<f64>() / n.max(1) as f64;
    if mean > 0.0 {
        w.iter_mut().for_each(|x| *x /= mean);
    }
    let sum: f64 = w.iter().sum();
    let sq: f64 = w.iter().map(|x| x * x).sum();
    let report = WeightingReport {
        spec: spec.clone(),
        effective_rows: if sq > 0.0 { sum * sum / sq } else { 0.0 },
        min_weight: w.iter().copied().fold(f64::INFINITY, f64::min),
        max_weight: w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        cells,
        rows_without_group,
    };
    (w, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Days::new(u64::from(day))
    }

    #[test]
    fn reweighing_makes_group_and_outcome_independent() {
        // Group a succeeds 80 % of the time, group b 40 %; one row has no group.
        let mut groups = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            groups.push(Some(if i < 50 { "a" } else { "b" }));
            labels.push(if i < 50 { i % 10 < 8 } else { i % 10 < 4 });
        }
        groups.push(None);
        labels.push(true);
        let dates = vec![d(0); labels.len()];
        let spec = WeightingSpec { recency_half_life_days: None, reweigh: Some("gender".into()) };
        let (w, report) = weights(&spec, &dates, &labels, &groups);
        let rate = |g: &str| {
            let (mut num, mut den) = (0.0, 0.0);
            for ((gg, y), w) in groups.iter().zip(&labels).zip(&w) {
                if *gg == Some(g) {
                    den += w;
                    if *y {
                        num += w;
                    }
                }
            }
            num / den
        };
        assert!((rate("a") - rate("b")).abs() < 1e-12, "weighted success rates {} vs {}", rate("a"), rate("b"));
        assert!((rate("a") - 0.6).abs() < 1e-12, "both at the overall rate");
        assert_eq!(report.rows_without_group, 1);
        // P(a) P(success) / P(a, success) = 0.5 * 0.6 / 0.4
        assert!((report.cells["a / success"] - 0.75).abs() < 1e-12, "{:?}", report.cells);
        assert!((w.iter().sum::<f64>() / w.len() as f64 - 1.0).abs() < 1e-12, "mean 1");
    }

    #[test]
    fn recency_halves_the_weight_every_half_life() {
        let spec = WeightingSpec { recency_half_life_days: Some(100.0), reweigh: None };
        let (w, report) = weights(&spec, &[d(0), d(100), d(200)], &[true, false, true], &[None, None, None]);
        assert!((w[2] / w[1] - 2.0).abs() < 1e-12 && (w[1] / w[0] - 2.0).abs() < 1e-12, "{w:?}");
        assert!(report.effective_rows < 3.0 && report.effective_rows > 2.0, "{}", report.effective_rows);
    }
}
