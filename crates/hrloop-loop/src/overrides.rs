//! Backtest of recruiter overrides as training signal (`hrloop simulate --overrides`).
//!
//! The simulated recruiters have a known taste ([`hrloop_sim::RecruiterTaste`]): in sales and
//! customer support they weigh soft skills higher, which does predict success; everywhere they
//! favour education level, which does not; and they judge women lower, which no feature shows.
//! The backtest answers three questions with the simulator's truth:
//!
//! 1. **How many overrides before the preference model predicts recruiters better than the
//!    outcome model?** An outcome model (logistic regression on the features as served, fitted
//!    on the 12-month success of `outcome_examples` earlier applicants, as if hired) ranks every
//!    requisition; recruiters interview its top five and decide ([`crate::recruit`], the loop's
//!    recruiters). Preference pairs ([`hrloop_models::preference::pairs`]) from the first
//!    requisitions, up to `n` overrides, train a [`PreferenceModel`]; on held-out later
//!    requisitions, both models predict which candidate of each pair the recruiter chose. The
//!    difference in accuracy has a 95 % interval clustered by requisition; the answer is the
//!    smallest `n` whose interval lies above zero.
//! 2. **Does the blend improve the true quality of hire?** On the held-out requisitions, the
//!    blended ranking (outcome probability and recruiter appeal, `blend` weights) and the
//!    outcome ranking each go to the same recruiters; the hires' mean true success probability
//!    is compared per requisition (paired, same applicants, same interview luck). The override
//!    rate of each is reported too: it is what a verdict on recruiter agreement would reward.
//! 3. **Does the bias show in the overrides audit?** Selection rates of women and men: in the
//!    model's top five (per applicant), and among the recruiters' final choices (advanced or
//!    hired), and their ratios women / men side by side, for both rankings; and, of those the
//!    ranking put in the top five, the share the recruiters chose, per group (what the
//!    overrides themselves do).

use std::collections::BTreeMap;

use hrloop_core::RecruiterDecision;
use hrloop_models::features::FeaturePipeline;
use hrloop_models::model::{Estimator, RecruiterBlend, TrainedModel};
use hrloop_models::preference::{Blend, Choice, Options, Pair, PreferenceModel, pairs};
use hrloop_models::spec::{Algorithm, FeatureSpec};
use hrloop_models::stats::cluster_mean_variance;
use hrloop_sim::{Applicant, RecruiterTaste, Requisition, SimConfig, World};
use serde::Serialize;

use crate::model::raw;

/// The features a ranking request carries in the simulation (no interview score yet).
const SERVED: [&str; 7] = [
    "years_experience",
    "skill_match",
    "assessment_score",
    "education_level",
    "career_changer",
    "foreign_experience",
    "soft_skill_score",
];

const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Model(#[from] hrloop_models::Error),
    #[error("copying the outcome model: {0}")]
    Copy(String),
    #[error("--requisitions must be at least 10 a month and the blend weights non-negative with a positive sum: {0}")]
    Config(String),
}

#[derive(Debug, Clone)]
pub struct BacktestConfig {
    pub seed: u64,
    pub requisitions_per_month: u32,
    /// Applicants, as if hired, whose 12-month success trains the outcome model.
    pub outcome_examples: usize,
    /// Months of served rankings whose recruiter feedback trains the preference model.
    pub training_months: u32,
    /// Later months whose requisitions are held out.
    pub held_out_months: u32,
    /// Override counts of the learning curve.
    pub steps: Vec<usize>,
    pub blend: Blend,
    /// What the simulated recruiters weigh on top of the interview.
    pub taste: RecruiterTaste,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            seed: 7,
            requisitions_per_month: 30,
            outcome_examples: 3000,
            training_months: 24,
            held_out_months: 12,
            steps: vec![5, 10, 25, 50, 100, 200, 400],
            blend: Blend { outcomes: 0.8, recruiter: 0.2 },
            taste: RecruiterTaste::SIMULATED,
        }
    }
}

/// One point of the learning curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Overrides in the training feedback (rejected suggestions), and the pairs they made.
    pub overrides: usize,
    pub pairs: usize,
    /// Share of held-out pairs whose chosen candidate each model scores higher.
    pub preference_accuracy: f64,
    pub outcome_accuracy: f64,
    /// 95 % interval of preference − outcome accuracy, clustered by requisition.
    pub difference_low: f64,
    pub difference_high: f64,
}

/// One ranking's results on the held-out requisitions.
#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    pub name: String,
    pub hires: usize,
    /// Mean ground-truth success probability of the hires.
    pub quality: f64,
    /// Share of suggested (top-5) candidates the recruiters rejected.
    pub override_rate: f64,
    /// Selection rates of women and men in the top five (per applicant) and among the
    /// recruiters' final choices (advanced or hired, per applicant), and the ratios women /
    /// men (the bias audit's impact ratio, with its direction: below 1 favours men).
    pub top5_rate_women: f64,
    pub top5_rate_men: f64,
    pub chosen_rate_women: f64,
    pub chosen_rate_men: f64,
    pub top5_ratio: f64,
    pub chosen_ratio: f64,
    /// Of the women and men the ranking put in the top five, the share recruiters chose, and
    /// its ratio women / men: what the overrides themselves do to each group.
    pub chosen_given_top5_women: f64,
    pub chosen_given_top5_men: f64,
    pub chosen_given_top5_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub seed: u64,
    pub training_requisitions: usize,
    pub held_out_requisitions: usize,
    pub held_out_pairs: usize,
    pub curve: Vec<CurvePoint>,
    /// The smallest override count from which the preference model predicts recruiters'
    /// choices better than the outcome model at every step (interval above zero); None if the
    /// last step does not.
    pub overrides_needed: Option<usize>,
    /// What the preference model (all training feedback) weighs, per SD of each feature, in
    /// customer support and in software engineering, against the outcome model.
    pub weights: Vec<WeightRow>,
    pub blend: Blend,
    pub outcome_ranking: Ranking,
    pub blended_ranking: Ranking,
    /// Blended − outcome quality of hire, paired per requisition (both hired), with 95 %.
    pub quality_pairs: usize,
    pub quality_difference: f64,
    pub quality_difference_low: f64,
    pub quality_difference_high: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightRow {
    pub feature: String,
    pub outcome: f64,
    pub preference_customer_support: f64,
    pub preference_software_engineering: f64,
}

struct Req {
    req: Requisition,
    pool: Vec<Applicant>,
    raws: Vec<hrloop_models::features::RawFeatures>,
    outcome: Vec<f64>,
}

/// What the recruiters did with one ranking of a requisition.
struct Served {
    choices: Vec<Choice>,
    hired: Option<usize>,
    top5: Vec<usize>,
    overrides: usize,
}

fn serve(world: &World, r: &Req, scores: &[f64]) -> Served {
    let mut order: Vec<usize> = (0..r.pool.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (hired, fb) = crate::recruit(world, &r.req, &r.pool, &order);
    let choices = fb
        .iter()
        .map(|&(i, decision, _, reason)| Choice {
            requisition: r.req.id.clone(),
            candidate: r.pool[i].candidate_ref.clone(),
            decision_id: r.req.id.clone(),
            job_family: r.req.job_family.to_string(),
            recruiter: Some(format!("REC-{}", r.req.job_family)),
            decision: decision.parse().unwrap_or(RecruiterDecision::Rejected),
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            model_score: scores[i],
            raw: r.raws[i].clone(),
        })
        .collect();
    Served {
        choices,
        hired,
        top5: order.iter().take(5).copied().collect(),
        overrides: fb.iter().filter(|f| f.2).count(),
    }
}

fn json(e: serde_json::Error) -> BacktestError {
    BacktestError::Copy(e.to_string())
}

/// A deterministic label draw per candidate (SplitMix64 of the seed and the candidate).
fn uniform(seed: u64, key: &str) -> f64 {
    let mut z =
        key.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

pub fn backtest(cfg: &BacktestConfig) -> Result<BacktestReport, BacktestError> {
    if cfg.requisitions_per_month < 10
        || cfg.blend.outcomes < 0.0
        || cfg.blend.recruiter < 0.0
        || cfg.blend.outcomes + cfg.blend.recruiter <= 0.0
    {
        return Err(BacktestError::Config(format!("{} a month, blend {:?}", cfg.requisitions_per_month, cfg.blend)));
    }
    // No drift: the question is what recruiters add, not how a model ages.
    let sim = SimConfig {
        seed: cfg.seed,
        requisitions_per_month: cfg.requisitions_per_month,
        drift_month: 10_000,
        recruiter_taste: cfg.taste,
        ..SimConfig::default()
    };
    let mut world = World::new(sim);
    let names: Vec<String> = SERVED.iter().map(|s| s.to_string()).collect();

    // The outcome model: 12-month success of earlier applicants, as if hired.
    let mut examples = Vec::new();
    let mut month = 0;
    while examples.len() < cfg.outcome_examples {
        for (req, pool) in world.month(month) {
            for a in pool.iter().filter(|a| uniform(cfg.seed ^ 1, &a.candidate_ref) < 0.2) {
                let p = world.fate(a, &req).p_success;
                examples.push((raw(a, req.job_family), uniform(cfg.seed ^ 2, &a.candidate_ref) < p));
            }
        }
        month += 1;
    }
    let spec = FeatureSpec { numeric: names.clone(), categorical: vec!["job_family".into()], ..FeatureSpec::default() };
    let rows: Vec<_> = examples.iter().map(|(r, _)| r.clone()).collect();
    let pipeline = FeaturePipeline::fit(&spec, &rows);
    let x = pipeline.matrix(rows.iter().map(|r| pipeline.align(r)));
    let y: Vec<bool> = examples.iter().map(|(_, l)| *l).collect();
    let estimator = Estimator::fit(&Algorithm::LogisticRegression { l2: 1.0, max_iterations: 300 }, x.view(), &y)?;
    let outcome = TrainedModel { pipeline, estimator, recruiter: None };

    let mut load = |months: std::ops::Range<u32>| -> Result<Vec<Req>, BacktestError> {
        let mut out = Vec::new();
        for m in months {
            for (req, pool) in world.month(m) {
                let raws: Vec<_> = pool.iter().map(|a| raw(a, req.job_family)).collect();
                let scores = outcome.score_many(&raws)?;
                out.push(Req { req, pool, raws, outcome: scores });
            }
        }
        Ok(out)
    };
    let training = load(month..month + cfg.training_months)?;
    let held_out = load(month + cfg.training_months..month + cfg.training_months + cfg.held_out_months)?;
    let world = &world;

    // 1. The learning curve.
    let served: Vec<Served> = training.iter().map(|r| serve(world, r, &r.outcome)).collect();
    let test_served: Vec<Served> = held_out.iter().map(|r| serve(world, r, &r.outcome)).collect();
    let test_pairs: Vec<Pair> = test_served.iter().flat_map(|s| pairs(&s.choices)).collect();
    let outcome_score = |p: &Pair| -> Result<(f64, f64), BacktestError> {
        let s = outcome.score_many(&[p.chosen.clone(), p.passed_over.clone()])?;
        Ok((s[0], s[1]))
    };
    let outcome_right: Vec<bool> =
        test_pairs.iter().map(|p| outcome_score(p).map(|(a, b)| a > b)).collect::<Result<_, _>>()?;
    let mut curve = Vec::new();
    let total_overrides: usize = served.iter().map(|s| s.overrides).sum();
    let mut steps: Vec<usize> = cfg.steps.iter().copied().filter(|n| *n < total_overrides).collect();
    steps.push(total_overrides);
    for n in steps {
        let (mut seen, mut train_pairs) = (0, Vec::new());
        for s in &served {
            if seen >= n {
                break;
            }
            seen += s.overrides;
            train_pairs.extend(pairs(&s.choices));
        }
        let model = PreferenceModel::fit(&names, &train_pairs, Options::default())?;
        let mut by_req: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
        for (p, out_ok) in test_pairs.iter().zip(&outcome_right) {
            let pref_ok = model.prefers(&p.chosen, &p.passed_over, &p.job_family) > 0.5;
            let e = by_req.entry(&p.requisition).or_default();
            e.0 += f64::from(u8::from(pref_ok)) - f64::from(u8::from(*out_ok));
            e.1 += 1.0;
            e.2 += f64::from(u8::from(pref_ok));
        }
        let n_pairs = test_pairs.len().max(1) as f64;
        let diff: f64 = by_req.values().map(|c| c.0).sum::<f64>() / n_pairs;
        let margin = cluster_mean_variance(&by_req.values().map(|c| (c.0, c.1)).collect::<Vec<_>>())
            .map_or(f64::INFINITY, |v| Z95 * v.sqrt());
        curve.push(CurvePoint {
            overrides: seen,
            pairs: train_pairs.len(),
            preference_accuracy: by_req.values().map(|c| c.2).sum::<f64>() / n_pairs,
            outcome_accuracy: outcome_right.iter().filter(|r| **r).count() as f64 / n_pairs,
            difference_low: diff - margin,
            difference_high: diff + margin,
        });
    }
    // The first step from which every larger one is better too.
    let overrides_needed = curve
        .iter()
        .enumerate()
        .find(|(i, _)| curve[*i..].iter().all(|c| c.difference_low > 0.0))
        .map(|(_, c)| c.overrides);

    // 2 and 3: the blend against the outcome ranking, on the held-out requisitions.
    let all_pairs: Vec<Pair> = served.iter().flat_map(|s| pairs(&s.choices)).collect();
    let preference = PreferenceModel::fit(&names, &all_pairs, Options::default())?;
    // The blended model as training registers it: the outcome model with the preference model
    // beside it, scored through the same `TrainedModel` code as serving.
    let mut blended: TrainedModel =
        serde_json::from_slice(&serde_json::to_vec(&outcome).map_err(json)?).map_err(json)?;
    blended.recruiter = Some(RecruiterBlend { blend: cfg.blend, preference: preference.clone() });
    let blended_served: Vec<Served> = held_out
        .iter()
        .map(|r| Ok(serve(world, r, &blended.score_many(&r.raws)?)))
        .collect::<Result<_, BacktestError>>()?;
    let outcome_ranking = ranking("outcome model", world, &held_out, &test_served);
    let blended_ranking = ranking("blend", world, &held_out, &blended_served);
    let mut paired = Vec::new();
    for ((r, a), b) in held_out.iter().zip(&test_served).zip(&blended_served) {
        if let (Some(ha), Some(hb)) = (a.hired, b.hired) {
            paired.push((world.fate(&r.pool[hb], &r.req).p_success - world.fate(&r.pool[ha], &r.req).p_success, 1.0));
        }
    }
    let qd = paired.iter().map(|p| p.0).sum::<f64>() / paired.len().max(1) as f64;
    let qm = cluster_mean_variance(&paired).map_or(f64::INFINITY, |v| Z95 * v.sqrt());

    let weights = weight_rows(&outcome, &preference);
    Ok(BacktestReport {
        seed: cfg.seed,
        training_requisitions: training.len(),
        held_out_requisitions: held_out.len(),
        held_out_pairs: test_pairs.len(),
        curve,
        overrides_needed,
        weights,
        blend: cfg.blend,
        outcome_ranking,
        blended_ranking,
        quality_pairs: paired.len(),
        quality_difference: qd,
        quality_difference_low: qd - qm,
        quality_difference_high: qd + qm,
    })
}

/// The backtest on `replications` companies (seeds `cfg.seed`, `cfg.seed + 1`, ...), in
/// parallel, with the answers pooled: the median of the override counts needed, and the
/// quality difference over every replication's paired requisitions (independent companies,
/// so the variances add).
#[derive(Debug, Clone, Serialize)]
pub struct Replicated {
    pub runs: Vec<BacktestReport>,
    /// Median over the runs (a run that never got there counts as more than any).
    pub overrides_needed_median: Option<usize>,
    pub quality_difference: f64,
    pub quality_difference_low: f64,
    pub quality_difference_high: f64,
    /// Mean over the runs of the outcome model's and the blend's override rates.
    pub override_rate_outcome: f64,
    pub override_rate_blend: f64,
    /// Mean over the runs of the share of the top-5 women, and of men, the recruiters chose,
    /// and of the selection ratio women / men in the top 5 and among the recruiters' choices.
    pub chosen_given_top5_ratio: f64,
    pub top5_ratio: f64,
    pub chosen_ratio: f64,
}

pub fn replicate(cfg: &BacktestConfig, replications: usize) -> Result<Replicated, BacktestError> {
    use rayon::prelude::*;
    let runs: Vec<BacktestReport> = (0..replications.max(1) as u64)
        .into_par_iter()
        .map(|i| backtest(&BacktestConfig { seed: cfg.seed + i, ..cfg.clone() }))
        .collect::<Result<_, _>>()?;
    let mut needed: Vec<usize> = runs.iter().map(|r| r.overrides_needed.unwrap_or(usize::MAX)).collect();
    needed.sort_unstable();
    let median = Some(needed[needed.len() / 2]).filter(|n| *n != usize::MAX);
    let n: f64 = runs.iter().map(|r| r.quality_pairs as f64).sum();
    let mean = runs.iter().map(|r| r.quality_difference * r.quality_pairs as f64).sum::<f64>() / n.max(1.0);
    let var = runs
        .iter()
        .map(|r| {
            let se = (r.quality_difference_high - r.quality_difference_low) / (2.0 * Z95);
            (r.quality_pairs as f64 * se).powi(2)
        })
        .sum::<f64>()
        / n.max(1.0).powi(2);
    let avg = |f: &dyn Fn(&BacktestReport) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    Ok(Replicated {
        overrides_needed_median: median,
        quality_difference: mean,
        quality_difference_low: mean - Z95 * var.sqrt(),
        quality_difference_high: mean + Z95 * var.sqrt(),
        override_rate_outcome: avg(&|r| r.outcome_ranking.override_rate),
        override_rate_blend: avg(&|r| r.blended_ranking.override_rate),
        chosen_given_top5_ratio: avg(&|r| r.outcome_ranking.chosen_given_top5_ratio),
        top5_ratio: avg(&|r| r.outcome_ranking.top5_ratio),
        chosen_ratio: avg(&|r| r.outcome_ranking.chosen_ratio),
        runs,
    })
}

fn ranking(name: &str, world: &World, reqs: &[Req], served: &[Served]) -> Ranking {
    let (mut quality, mut overrides, mut suggested) = (Vec::new(), 0, 0);
    // (applicants, in top 5, chosen) per gender.
    let mut by: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for (r, s) in reqs.iter().zip(served) {
        if let Some(h) = s.hired {
            quality.push(world.fate(&r.pool[h], &r.req).p_success);
        }
        overrides += s.overrides;
        suggested += s.top5.len();
        for a in &r.pool {
            by.entry(a.gender).or_default().0 += 1.0;
        }
        for &i in &s.top5 {
            by.entry(r.pool[i].gender).or_default().1 += 1.0;
        }
        for c in s.choices.iter().filter(|c| c.decision != RecruiterDecision::Rejected) {
            if let Some(a) = r.pool.iter().find(|a| a.candidate_ref == c.candidate) {
                by.entry(a.gender).or_default().2 += 1.0;
            }
        }
    }
    let rate = |g: &str, k: usize| {
        by.get(g).map_or(0.0, |c| {
            let v = [c.1, c.2][k];
            if c.0 > 0.0 { v / c.0 } else { 0.0 }
        })
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let given = |g: &str| by.get(g).map_or(0.0, |c| if c.1 > 0.0 { c.2 / c.1 } else { 0.0 });
    Ranking {
        name: name.to_string(),
        hires: quality.len(),
        quality: quality.iter().sum::<f64>() / quality.len().max(1) as f64,
        override_rate: overrides as f64 / suggested.max(1) as f64,
        top5_rate_women: rate("F", 0),
        top5_rate_men: rate("M", 0),
        chosen_rate_women: rate("F", 1),
        chosen_rate_men: rate("M", 1),
        top5_ratio: ratio(rate("F", 0), rate("M", 0)),
        chosen_ratio: ratio(rate("F", 1), rate("M", 1)),
        chosen_given_top5_women: given("F"),
        chosen_given_top5_men: given("M"),
        chosen_given_top5_ratio: ratio(given("F"), given("M")),
    }
}

/// Weights per standard deviation of each served feature: the outcome model's (log-odds of
/// success) beside the preference model's (log-odds of being preferred).
fn weight_rows(outcome: &TrainedModel, preference: &PreferenceModel) -> Vec<WeightRow> {
    let out_cols = outcome.pipeline.columns();
    let out_w = match &outcome.estimator {
        Estimator::Logistic { weights, .. } => weights.clone(),
        Estimator::Forest { .. } => vec![0.0; out_cols.len()],
    };
    let pref_cols = preference.pipeline.columns();
    let (cs, se) = (preference.weights("customer_support"), preference.weights("software_engineering"));
    SERVED
        .iter()
        .map(|f| {
            let at = |cols: &[String], w: &[f64]| cols.iter().position(|c| c == f).map_or(0.0, |i| w[i]);
            WeightRow {
                feature: f.to_string(),
                outcome: at(&out_cols, &out_w),
                preference_customer_support: at(&pref_cols, &cs),
                preference_software_engineering: at(&pref_cols, &se),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small backtest: the machinery runs, the learning curve grows with the feedback, and
    /// the recruiters' taste is visible (soft skills weigh more in customer support than in
    /// engineering; education level, which the truth ignores, weighs positive).
    #[test]
    fn a_small_backtest_finds_the_recruiters_taste() {
        let cfg = BacktestConfig {
            requisitions_per_month: 20,
            outcome_examples: 800,
            training_months: 6,
            held_out_months: 2,
            steps: vec![50, 200],
            ..BacktestConfig::default()
        };
        let r = backtest(&cfg).unwrap();
        assert!(r.curve.len() >= 2 && r.curve.windows(2).all(|w| w[0].overrides < w[1].overrides), "{:?}", r.curve);
        assert!(r.held_out_pairs > 50, "{}", r.held_out_pairs);
        let w = |f: &str| r.weights.iter().find(|w| w.feature == f).unwrap().clone();
        let soft = w("soft_skill_score");
        assert!(soft.preference_customer_support > soft.preference_software_engineering + 0.2, "{soft:?}");
        assert!(w("education_level").preference_software_engineering > 0.1, "{:?}", w("education_level"));
        // The recruiters' bias against women shows among their choices, not in the model's top 5.
        let o = &r.outcome_ranking;
        assert!(o.chosen_given_top5_ratio < 0.95, "{o:?}");
        assert!(o.chosen_ratio < o.top5_ratio, "{o:?}");
        assert!(r.quality_difference_low <= r.quality_difference && r.quality_difference <= r.quality_difference_high);
    }
}
