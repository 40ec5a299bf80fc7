//! Calibration of experiment verdicts: many simulated experiments with a known truth, each
//! judged day by day through [`hrloop_models::experiment::decide`], the rule the daily analysis
//! step applies, to measure how often a verdict is wrong, how often it is right, and how long
//! it takes.
//!
//! The simulated experiment: requisitions arrive each day (Poisson, `rate` a day), each goes to
//! the challenger with the policy's share, and brings `feedback_per_requisition` recruiter
//! feedback rows at once. A row is an override with the arm's override probability; rows of one
//! requisition share a recruiter and a pool, so their probability is drawn per requisition from
//! a Beta distribution whose intra-class correlation is `icc` (0: independent rows). Agreement
//! with the top 5 is the complement of an override. No guardrail runs.

use hrloop_models::experiment::{ArmKpis, Decision, Policy, Rate, decide};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Bernoulli, Beta, Distribution, Poisson};
use rayon::prelude::*;
use serde::Serialize;

/// What the challenger truly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Identical to the champion: any promote or rollback is wrong.
    Aa,
    /// Overridden `effect` less often: promote is right, rollback wrong.
    Better,
    /// Overridden `effect` more often: rollback is right, promote wrong.
    Worse,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        match s {
            "aa" => Some(Scenario::Aa),
            "better" => Some(Scenario::Better),
            "worse" => Some(Scenario::Worse),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Aa => "aa",
            Scenario::Better => "better",
            Scenario::Worse => "worse",
        }
    }

    /// Whether `decision` is the wrong one, and whether it is the right one.
    fn judge(self, decision: Decision) -> (bool, bool) {
        match (self, decision) {
            (Scenario::Aa, Decision::Promote | Decision::Rollback) => (true, false),
            (Scenario::Better, Decision::Promote) | (Scenario::Worse, Decision::Rollback) => (false, true),
            (Scenario::Better, Decision::Rollback) | (Scenario::Worse, Decision::Promote) => (true, false),
            _ => (false, false),
        }
    }
}

/// Settings no simulated experiment can run with.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("--rate must be above 0, --icc in [0, 1) and the override rates in (0, 1): {0}")]
    Settings(String),
}

/// One cell of the calibration grid.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: Scenario,
    /// Requisitions a day.
    pub rate: f64,
    /// Correlation of two feedback rows of one requisition.
    pub icc: f64,
    pub experiments: usize,
    pub seed: u64,
    pub policy: Policy,
    /// The champion's override probability.
    pub base_override: f64,
    /// How much lower (better) or higher (worse) the challenger's is.
    pub effect: f64,
    pub feedback_per_requisition: usize,
}

/// How the experiments of one cell ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: Scenario,
    pub rate: f64,
    pub icc: f64,
    pub experiments: usize,
    pub promoted: usize,
    pub rolled_back: usize,
    /// Ended inconclusive or expired: a person decides.
    pub person_decides: usize,
    pub wrong: usize,
    pub right: usize,
    /// 95 % Wilson interval of the wrong-verdict rate.
    pub wrong_ci: (f64, f64),
    /// Median day of a promote or rollback verdict.
    pub median_days_to_verdict: Option<i64>,
}

/// Run one cell: `experiments` simulated experiments, in parallel, reproducible per seed.
pub fn calibrate(s: &Settings) -> Result<Summary, CalibrationError> {
    let draws = Draws::new(s)?;
    let ends: Vec<(Decision, i64)> =
        (0..s.experiments).into_par_iter().map(|i| one(s, &draws, s.seed.wrapping_add(i as u64))).collect();
    let count = |d: Decision| ends.iter().filter(|(x, _)| *x == d).count();
    let (wrong, right) = ends.iter().fold((0, 0), |(w, r), (d, _)| {
        let (is_wrong, is_right) = s.scenario.judge(*d);
        (w + usize::from(is_wrong), r + usize::from(is_right))
    });
    let mut days: Vec<i64> =
        ends.iter().filter(|(d, _)| matches!(d, Decision::Promote | Decision::Rollback)).map(|(_, t)| *t).collect();
    days.sort_unstable();
    Ok(Summary {
        scenario: s.scenario,
        rate: s.rate,
        icc: s.icc,
        experiments: s.experiments,
        promoted: count(Decision::Promote),
        rolled_back: count(Decision::Rollback),
        person_decides: count(Decision::Inconclusive) + count(Decision::Expired),
        wrong,
        right,
        wrong_ci: hrloop_models::stats::wilson(wrong, s.experiments).unwrap_or((0.0, 1.0)),
        median_days_to_verdict: days.get(days.len() / 2).copied(),
    })
}

/// The distributions an experiment draws from, checked once per cell.
struct Draws {
    arrivals: Poisson<f64>,
    to_challenger: Bernoulli,
    /// Override probability per arm (champion, challenger), and the Beta of a requisition's
    /// own probability when rows are correlated.
    arms: [(f64, Option<Beta<f64>>); 2],
}

impl Draws {
    fn new(s: &Settings) -> Result<Draws, CalibrationError> {
        let bad = |e: &dyn std::fmt::Display| CalibrationError::Settings(e.to_string());
        if !(0.0..1.0).contains(&s.icc) {
            return Err(bad(&format!("icc {}", s.icc)));
        }
        let challenger = match s.scenario {
            Scenario::Aa => s.base_override,
            Scenario::Better => s.base_override - s.effect,
            Scenario::Worse => s.base_override + s.effect,
        };
        let arm = |p: f64| -> Result<(f64, Option<Beta<f64>>), CalibrationError> {
            if !(p > 0.0 && p < 1.0) {
                return Err(bad(&format!("override rate {p}")));
            }
            let k = (1.0 - s.icc) / s.icc;
            let beta = if s.icc > 0.0 { Some(Beta::new(p * k, (1.0 - p) * k).map_err(|e| bad(&e))?) } else { None };
            Ok((p, beta))
        };
        Ok(Draws {
            arrivals: Poisson::new(s.rate).map_err(|e| bad(&e))?,
            to_challenger: Bernoulli::new(s.policy.challenger_share).map_err(|e| bad(&e))?,
            arms: [arm(s.base_override)?, arm(challenger)?],
        })
    }
}

/// One experiment, judged every day until a verdict, a person's turn, or expiry.
fn one(s: &Settings, draws: &Draws, seed: u64) -> (Decision, i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Per arm: requisitions, feedback rows, overrides; and (overrides, rows) per requisition.
    let mut arms = [(0usize, 0usize, 0usize); 2];
    let mut clusters: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for day in 1..=(s.policy.max_days + s.policy.decide_within_days) {
        let n: f64 = draws.arrivals.sample(&mut rng);
        for _ in 0..n as usize {
            let arm = usize::from(draws.to_challenger.sample(&mut rng));
            let (p, beta) = &draws.arms[arm];
            let p = beta.as_ref().map_or(*p, |b| b.sample(&mut rng));
            // A Beta draw is a probability, so the Bernoulli always exists.
            let row = Bernoulli::new(p).expect("a probability");
            let overrides = (0..s.feedback_per_requisition).filter(|_| row.sample(&mut rng)).count();
            let a = &mut arms[arm];
            *a = (a.0 + 1, a.1 + s.feedback_per_requisition, a.2 + overrides);
            clusters[arm].push((overrides as f64, s.feedback_per_requisition as f64));
        }
        let kpis = |arm: usize| {
            let (requisitions, rows, overrides) = arms[arm];
            ArmKpis {
                requisitions,
                feedback: rows,
                override_rate: Rate::of(overrides, rows),
                override_variance: hrloop_models::stats::cluster_ratio_variance(&clusters[arm]),
                agreement_top5: Rate::of(rows - overrides, rows),
                ..ArmKpis::default()
            }
        };
        let judged = decide(&kpis(0), &kpis(1), true, &[], day, &s.policy);
        match judged.decision {
            Decision::KeepRunning => {}
            other => return (other, day),
        }
    }
    (Decision::Expired, s.policy.max_days + s.policy.decide_within_days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scenario: Scenario, rate: f64) -> Settings {
        Settings {
            scenario,
            rate,
            icc: 0.1,
            experiments: 60,
            seed: 1,
            policy: Policy::default(),
            base_override: 0.35,
            effect: 0.10,
            feedback_per_requisition: 5,
        }
    }

    #[test]
    fn every_experiment_ends_and_a_clearly_worse_challenger_is_rolled_back() {
        let aa = calibrate(&settings(Scenario::Aa, 10.0)).unwrap();
        assert_eq!(aa.promoted + aa.rolled_back + aa.person_decides, 60, "{aa:?}");
        assert_eq!(aa.right, 0, "an A/A experiment has no right promote or rollback");
        let worse = calibrate(&Settings { effect: 0.3, ..settings(Scenario::Worse, 30.0) }).unwrap();
        assert!(worse.rolled_back >= 55, "{worse:?}");
        assert_eq!(worse.right, worse.rolled_back);
        assert!(worse.median_days_to_verdict.is_some_and(|d| d <= 7), "{worse:?}");
        // Daily looks at correlated rows: an identical challenger is rarely promoted or rolled
        // back (the daily z-test used before: about half of these experiments).
        let looks = calibrate(&Settings { experiments: 400, icc: 0.3, ..settings(Scenario::Aa, 30.0) }).unwrap();
        assert!(looks.wrong as f64 / 400.0 <= 0.05, "{looks:?}");
        // The same seed gives the same result.
        assert_eq!(format!("{aa:?}"), format!("{:?}", calibrate(&settings(Scenario::Aa, 10.0)).unwrap()));
    }
}
