//! The validity report: does an input (interview score, assessment, ...) predict what happened
//! later? Spearman rank correlation of each feature with each outcome at each milestone, with
//! a 95 % confidence interval (Fisher z with the Fieller–Hartley–Pearson standard error
//! 1.06/√(n−3)) and the sample size, so HR sees which signals carry weight and how sure we are.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate};
use hrloop_core::Milestone;
use serde::Serialize;

use crate::data::LakeData;

/// Correlations on fewer pairs than this are not reported.
pub const MIN_PAIRS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidityRow {
    pub feature: String,
    pub milestone: Milestone,
    /// `rating` (performance rating of those still employed) or `retained` (still employed).
    pub outcome: &'static str,
    pub n: usize,
    pub spearman: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidityReport {
    pub as_of: NaiveDate,
    pub rows: Vec<ValidityRow>,
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rho (Pearson correlation of average ranks, as `scipy.stats.spearmanr`).
/// `None` when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// 95 % confidence interval of a Spearman correlation on `n` pairs.
pub fn spearman_ci(rho: f64, n: usize) -> (f64, f64) {
    let z = rho.clamp(-0.999_999, 0.999_999).atanh();
    let se = 1.06 / ((n as f64) - 3.0).sqrt();
    ((z - 1.96 * se).tanh(), (z + 1.96 * se).tanh())
}

pub fn report(data: &LakeData, today: NaiveDate, grace_days: i64) -> ValidityReport {
    let by = data.decision_of_hire();
    let features: BTreeSet<&str> = by.values().flat_map(|a| a.raw.numeric.keys().map(String::as_str)).collect();
    let mut rows = Vec::new();
    for feature in features {
        for m in Milestone::ALL {
            let mut rating: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
            let mut retained: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
            for h in &data.hires {
                if m.date_after(h.hire_date) + Duration::days(grace_days) > today {
                    continue;
                }
                let Some(x) =
                    by.get(&(h.candidate.as_str(), h.requisition.as_str())).and_then(|a| a.raw.numeric.get(feature))
                else {
                    continue;
                };
                let known = data.outcomes.get(&h.employee);
                let left_before = known.is_some_and(|k| k.iter().any(|(mm, (e, _))| *mm < m && !e));
                match known.and_then(|k| k.get(&m)) {
                    Some((employed, r)) => {
                        retained.0.push(*x);
                        retained.1.push(f64::from(u8::from(*employed)));
                        if let (true, Some(r)) = (employed, r) {
                            rating.0.push(*x);
                            rating.1.push(*r as f64);
                        }
                    }
                    None if left_before => {
                        retained.0.push(*x);
                        retained.1.push(0.0);
                    }
                    None => {}
                }
            }
            for (outcome, (xs, ys)) in [("rating", rating), ("retained", retained)] {
                let n = xs.len();
                let rho = (n >= MIN_PAIRS).then(|| spearman(&xs, &ys)).flatten();
                let ci = rho.map(|r| spearman_ci(r, n));
                rows.push(ValidityRow {
                    feature: feature.to_string(),
                    milestone: m,
                    outcome,
                    n,
                    spearman: rho,
                    ci_low: ci.map(|c| c.0),
                    ci_high: ci.map(|c| c.1),
                });
            }
        }
    }
    ValidityReport { as_of: today, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_scipy() {
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((rho - 0.8207826816681233).abs() < 1e-12, "{rho}");
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        let (lo, hi) = spearman_ci(0.3, 200);
        assert!(lo < 0.3 && 0.3 < hi && lo > 0.15 && hi < 0.45, "({lo}, {hi})");
    }
}
