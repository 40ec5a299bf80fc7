//! Calibration as its own step: Platt scaling of a registered version's scores on the freshest
//! matured outcomes, so "confidence 0.8" keeps meaning 8 in 10 as the world drifts. Versions stay
//! immutable; each calibration is a numbered record beside the version, and serving applies the
//! newest.

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::card::RowCounts;
use crate::data::LakeData;
use crate::metrics;
use crate::model::TrainedModel;
use crate::registry::Registry;
use crate::{Error, Result};

/// Fewer matured outcomes than this in the window and calibration refuses.
pub const MIN_CALIBRATION_ROWS: usize = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub seq: u64,
    pub method: String,
    /// Calibrated probability = sigmoid(a · logit(score) + b).
    pub a: f64,
    pub b: f64,
    pub fitted_at: DateTime<Utc>,
    pub fitted_by: String,
    pub rows: usize,
    /// Matured hires from this date on were used.
    pub window_from: NaiveDate,
    pub ece_before: f64,
    pub ece_after: f64,
    pub brier_before: f64,
    pub brier_after: f64,
}

impl Calibration {
    pub fn apply(&self, p: f64) -> f64 {
        platt(self.a, self.b, p)
    }
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn platt(a: f64, b: f64, p: f64) -> f64 {
    1.0 / (1.0 + (-(a * logit(p) + b)).exp())
}

/// Maximum-likelihood Platt parameters (Newton's method on the log loss).
pub fn fit_platt(p: &[f64], y: &[bool]) -> (f64, f64) {
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&pi, &yi) in p.iter().zip(y) {
            let x = logit(pi);
            let q = platt(a, b, pi);
            let r = q - f64::from(u8::from(yi));
            let w = q * (1.0 - q);
            g0 += r * x;
            g1 += r;
            h00 += w * x * x;
            h01 += w * x;
            h11 += w;
        }
        let det = h00 * h11 - h01 * h01;
        if det.abs() < 1e-15 {
            break;
        }
        let da = (h11 * g0 - h01 * g1) / det;
        let db = (h00 * g1 - h01 * g0) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub now: DateTime<Utc>,
    pub actor: String,
    pub grace_days: i64,
}

/// Fit and store a calibration for `name/version` on the newest matured outcomes.
pub async fn calibrate(
    lake: &hrloop_lake::Lake,
    registry: &Registry,
    name: &str,
    version: &str,
    opts: &CalibrateOptions,
) -> Result<Calibration> {
    let card = registry.card(name, version).await?;
    let label = card.spec.label().map_err(|reason| Error::Spec { path: name.into(), reason })?;
    let model: TrainedModel = serde_json::from_slice(&registry.artifact(name, version).await?)
        .map_err(|e| Error::Corrupt { path: format!("{name}/{version}/model.json"), reason: e.to_string() })?;
    let data = LakeData::load(lake).await?;
    let mut rows = RowCounts::default();
    let examples = data.labelled(&label, opts.now.date_naive(), opts.grace_days, &mut rows);
    let newest = examples
        .iter()
        .map(|e| e.hire_date)
        .max()
        .ok_or_else(|| Error::NotEnoughData(format!("no hire has a known {} outcome yet", label.milestone)))?;
    let window_from = newest.checked_sub_months(Months::new(card.spec.evaluation.holdout_months)).unwrap_or(newest);
    let window: Vec<_> = examples.iter().filter(|e| e.hire_date > window_from).collect();
    if window.len() < MIN_CALIBRATION_ROWS {
        return Err(Error::NotEnoughData(format!(
            "{} matured outcomes since {window_from}; calibration needs at least {MIN_CALIBRATION_ROWS}",
            window.len()
        )));
    }
    let raw: Vec<_> = window.iter().map(|e| e.raw.clone()).collect();
    let y: Vec<bool> = window.iter().map(|e| e.label).collect();
    let p = model.score_many(&raw)?;
    let (a, b) = fit_platt(&p, &y);
    let q: Vec<f64> = p.iter().map(|&x| platt(a, b, x)).collect();
    let cal = Calibration {
        seq: 0,
        method: "platt".into(),
        a,
        b,
        fitted_at: opts.now,
        fitted_by: opts.actor.clone(),
        rows: window.len(),
        window_from,
        ece_before: metrics::expected_calibration_error(&y, &p, 10),
        ece_after: metrics::expected_calibration_error(&y, &q, 10),
        brier_before: metrics::brier(&y, &p),
        brier_after: metrics::brier(&y, &q),
    };
    registry.add_calibration(name, version, cal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_distortion_and_improves_calibration() {
        // True probability sigmoid(0.5·logit(s) − 0.3): the scores are over-confident.
        let mut x: u64 = 42;
        let mut p = Vec::new();
        let mut y = Vec::new();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = 0.02 + 0.96 * ((x % 10_000) as f64 / 10_000.0);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 1_000_000) as f64 / 1_000_000.0;
            p.push(s);
            y.push(u < platt(0.5, -0.3, s));
        }
        let (a, b) = fit_platt(&p, &y);
        assert!((a - 0.5).abs() < 0.05 && (b + 0.3).abs() < 0.05, "a {a}, b {b}");
        let q: Vec<f64> = p.iter().map(|&s| platt(a, b, s)).collect();
        assert!(
            metrics::expected_calibration_error(&y, &q, 10) < metrics::expected_calibration_error(&y, &p, 10) / 3.0
        );
    }
}
