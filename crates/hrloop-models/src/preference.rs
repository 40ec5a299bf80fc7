//! Recruiter overrides as training signal.
//!
//! Within one ranking a recruiter saw, a candidate they hired or advanced over one they
//! rejected is a *preference pair*. Where the model had ranked the rejected candidate higher,
//! the pair goes against the model: an override, and the reason the recruiter gave for
//! rejecting is the reason of the pair. Pairs where the recruiter agreed with the model count
//! too: they say what recruiters confirm, so the preference model is not fitted on
//! disagreements alone.
//!
//! The preference model is pairwise logistic regression on feature differences (Bradley–Terry):
//! P(recruiter prefers a over b) = σ(u(a) − u(b)), with u linear in the standardised features
//! as served. Its weights are shared across job families plus, for each family with enough
//! pairs, a deviation of that family's own (the same L2 penalty pulls each deviation towards
//! the shared weights), so "in customer support, recruiters weigh soft skills higher" is a
//! weight you can read. Each pair enters twice, as (a − b, preferred) and (b − a, not), so the
//! fit is symmetric and has no intercept to speak of.
//!
//! A blended model ([`crate::model::RecruiterBlend`], the spec's `[label] blend`) mixes the
//! outcome model's probability with [`PreferenceModel::appeal`], the probability that
//! recruiters prefer the candidate over the average candidate of the family. A blended ranking
//! is an ordinary challenger: it wins only through the same verdicts as any other.
//!
//! [`insights`] says in numbers what recruiters weigh differently: per job family and reason
//! code, how the candidates recruiters chose differ from the model's pick they passed over,
//! with cluster-robust intervals (requisitions are the independent unit).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use hrloop_core::{Arm, RecruiterDecision};
use hrloop_lake::Lake;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::features::{FeaturePipeline, RawFeatures};
use crate::logistic;
use crate::recruiting::{Feedback, Served, feedback, served_since};
use crate::spec::FeatureSpec;
use crate::stats::cluster_mean_variance;
use crate::{Error, Result};

/// One candidate a recruiter decided on, with the ranking they saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub requisition: String,
    pub candidate: String,
    /// The ranking (one `/v1/rank` call) the candidate was shown in.
    pub decision_id: String,
    pub job_family: String,
    pub recruiter: Option<String>,
    pub decision: RecruiterDecision,
    /// The recruiter's reason code, when they gave one.
    pub reason: Option<String>,
    /// The score the serving model gave (its ranking).
    pub model_score: f64,
    /// The features as served.
    pub raw: RawFeatures,
}

/// One preference: `chosen` over `passed_over`, within one ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub requisition: String,
    pub recruiter: Option<String>,
    pub job_family: String,
    pub chosen: RawFeatures,
    pub passed_over: RawFeatures,
    /// The model had ranked the passed-over candidate higher: the recruiter went against it.
    pub against_model: bool,
    /// The reason the recruiter gave for turning the passed-over candidate down.
    pub reason: Option<String>,
}

/// How far a recruiter took a candidate: hired over advanced over rejected. A withdrawal is the
/// candidate's choice, not the recruiter's, and gives no pair.
fn how_far(d: RecruiterDecision) -> Option<u8> {
    match d {
        RecruiterDecision::Hired => Some(2),
        RecruiterDecision::Advanced => Some(1),
        RecruiterDecision::Rejected => Some(0),
        RecruiterDecision::Withdrawn => None,
    }
}

/// Every preference pair of these choices: within each ranking, each candidate taken further
/// over each candidate taken less far.
pub fn pairs(choices: &[Choice]) -> Vec<Pair> {
    let mut by_ranking: BTreeMap<&str, Vec<&Choice>> = BTreeMap::new();
    for c in choices {
        by_ranking.entry(&c.decision_id).or_default().push(c);
    }
    let mut out = Vec::new();
    for group in by_ranking.values() {
        for a in group {
            for b in group {
                let (Some(la), Some(lb)) = (how_far(a.decision), how_far(b.decision)) else { continue };
                if la <= lb {
                    continue;
                }
                out.push(Pair {
                    requisition: a.requisition.clone(),
                    recruiter: a.recruiter.clone().or_else(|| b.recruiter.clone()),
                    job_family: a.job_family.clone(),
                    chosen: a.raw.clone(),
                    passed_over: b.raw.clone(),
                    against_model: b.model_score > a.model_score,
                    reason: b.reason.clone(),
                });
            }
        }
    }
    out
}

/// The recruiters' decisions on what hrloop served since `since`, each with the ranking the
/// recruiter saw.
///
/// Query: the served rows of the decision log since `since` (source = serving, scored; shadow
/// rows left out: no recruiter saw them), and the recruiter feedback per (requisition,
/// candidate) (the furthest decision, [`crate::recruiting`]). Point in time: the ranking a
/// decision is joined to is the last served row of that candidate decided at or before the
/// feedback was recorded, with its features as served.
pub async fn choices(lake: &Lake, since: DateTime<Utc>) -> Result<Vec<Choice>> {
    let lake = lake.pinned().await?;
    let served = served_since(&lake, since).await?;
    let fb = feedback(&lake).await?;
    choices_of(&served, &fb)
}

/// [`choices`] from rows already read.
fn choices_of(served: &[Served], fb: &HashMap<(String, String), Feedback>) -> Result<Vec<Choice>> {
    // Feedback by borrowed key, so the served rows (a hundred a requisition) are looked up
    // without building a key each.
    let by_pair: HashMap<(&str, &str), &Feedback> =
        fb.iter().map(|((r, c), f)| ((r.as_str(), c.as_str()), f)).collect();
    let mut seen: HashMap<(&str, &str), (usize, &Feedback)> = HashMap::new();
    for (i, s) in served.iter().enumerate() {
        if s.arm == Arm::Shadow.as_str() {
            continue;
        }
        let key = (s.requisition.as_str(), s.candidate.as_str());
        if let Some(f) = by_pair.get(&key).filter(|f| s.at <= f.at) {
            seen.insert(key, (i, f));
        }
    }
    let mut out: Vec<Choice> = seen
        .into_iter()
        .map(|((r, _), (i, f))| {
            let s = &served[i];
            let decision = f.decision.parse().map_err(|e| Error::Training(format!("feedback on {r}: {e}")))?;
            Ok(Choice {
                requisition: s.requisition.clone(),
                candidate: s.candidate.clone(),
                decision_id: s.decision_id.clone(),
                job_family: s.raw.categorical.get("job_family").cloned().unwrap_or_default(),
                recruiter: f.recruiter.clone(),
                decision,
                reason: f.reason.clone(),
                model_score: s.score,
                raw: s.raw.clone(),
            })
        })
        .collect::<Result<_>>()?;
    out.sort_by(|a, b| (&a.decision_id, &a.candidate).cmp(&(&b.decision_id, &b.candidate)));
    Ok(out)
}

/// How many pairs, overrides, recruiters and requisitions a preference model learned from
/// (what a card states).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub pairs: usize,
    /// Pairs that went against the model.
    pub overrides: usize,
    pub recruiters: usize,
    pub requisitions: usize,
}

impl Evidence {
    pub fn of(pairs: &[Pair]) -> Evidence {
        let distinct = |f: &dyn Fn(&Pair) -> Option<&str>| pairs.iter().filter_map(f).collect::<BTreeSet<_>>().len();
        Evidence {
            pairs: pairs.len(),
            overrides: pairs.iter().filter(|p| p.against_model).count(),
            recruiters: distinct(&|p| p.recruiter.as_deref()),
            requisitions: distinct(&|p| Some(p.requisition.as_str())),
        }
    }
}

/// How to fit a preference model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// L2 penalty (on the averaged log-loss, as in [`logistic::fit`]).
    pub l2: f64,
    /// A job family gets weights of its own from this many pairs on.
    pub min_family_pairs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { l2: 0.01, min_family_pairs: 100 }
    }
}

/// A fitted preference model: u(x) = z(x)·(w_shared + w_family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceModel {
    /// Numeric features as served, standardised over the candidates in the pairs.
    pub pipeline: FeaturePipeline,
    /// Weights per pipeline column, shared by every job family.
    pub shared: Vec<f64>,
    /// Each job family's deviation from `shared` (families with enough pairs).
    pub families: BTreeMap<String, Vec<f64>>,
    /// Mean utility of the training candidates per job family (and overall under ""), the
    /// "average candidate" a blend compares with.
    pub centre: BTreeMap<String, f64>,
    pub evidence: Evidence,
}

impl PreferenceModel {
    /// Fit on `pairs` over the numeric features `numeric`.
    pub fn fit(numeric: &[String], pairs: &[Pair], opts: Options) -> Result<PreferenceModel> {
        if pairs.is_empty() {
            return Err(Error::Training("no preference pairs: no recruiter feedback on served rankings yet".into()));
        }
        let spec = FeatureSpec { numeric: numeric.to_vec(), ..FeatureSpec::default() };
        let candidates: Vec<RawFeatures> =
            pairs.iter().flat_map(|p| [p.chosen.clone(), p.passed_over.clone()]).collect();
        let pipeline = FeaturePipeline::fit(&spec, &candidates);
        let k = pipeline.width();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in pairs {
            *counts.entry(&p.job_family).or_default() += 1;
        }
        let own: Vec<&str> = counts.iter().filter(|(_, n)| **n >= opts.min_family_pairs).map(|(f, _)| *f).collect();
        let width = k * (1 + own.len());
        let mut flat = Vec::with_capacity(2 * pairs.len() * width);
        let mut y = Vec::with_capacity(2 * pairs.len());
        for p in pairs {
            let (a, b) = (pipeline.transform(&p.chosen), pipeline.transform(&p.passed_over));
            let d: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
            let slot = own.iter().position(|f| *f == p.job_family);
            for sign in [1.0, -1.0] {
                flat.extend(d.iter().map(|v| sign * v));
                for f in 0..own.len() {
                    flat.extend(d.iter().map(|v| if slot == Some(f) { sign * v } else { 0.0 }));
                }
                y.push(sign > 0.0);
            }
        }
        let x = Array2::from_shape_vec((y.len(), width), flat)
            .map_err(|e| Error::Training(format!("preference matrix: {e}")))?;
        let fitted = logistic::fit(
            x.view(),
            &y,
            None,
            &logistic::Options { l2: opts.l2, max_iterations: 500, tolerance: 1e-8 },
        )?;
        let w = fitted.coefficients;
        let shared = w[..k].to_vec();
        let families =
            own.iter().enumerate().map(|(i, f)| (f.to_string(), w[k * (1 + i)..k * (2 + i)].to_vec())).collect();
        let mut model =
            PreferenceModel { pipeline, shared, families, centre: BTreeMap::new(), evidence: Evidence::of(pairs) };
        let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for p in pairs {
            for raw in [&p.chosen, &p.passed_over] {
                let u = model.utility(raw, &p.job_family);
                for key in [p.job_family.clone(), String::new()] {
                    let s = sums.entry(key).or_default();
                    s.0 += u;
                    s.1 += 1.0;
                }
            }
        }
        model.centre = sums.into_iter().map(|(f, (s, n))| (f, s / n)).collect();
        Ok(model)
    }

    /// The weights a job family's candidates are judged by, per pipeline column.
    pub fn weights(&self, job_family: &str) -> Vec<f64> {
        match self.families.get(job_family) {
            Some(dev) => self.shared.iter().zip(dev).map(|(s, d)| s + d).collect(),
            None => self.shared.clone(),
        }
    }

    /// How much recruiters like a candidate (a log-odds scale: only differences mean anything).
    pub fn utility(&self, raw: &RawFeatures, job_family: &str) -> f64 {
        self.pipeline.transform(raw).iter().zip(self.weights(job_family)).map(|(x, w)| x * w).sum()
    }

    /// The probability that a recruiter prefers `a` over `b` for a `job_family` role.
    pub fn prefers(&self, a: &RawFeatures, b: &RawFeatures, job_family: &str) -> f64 {
        sigmoid(self.utility(a, job_family) - self.utility(b, job_family))
    }

    /// The probability that a recruiter prefers this candidate over the average candidate of
    /// the family in training.
    pub fn appeal(&self, raw: &RawFeatures, job_family: &str) -> f64 {
        self.appeal_aligned(self.pipeline.align(raw).numeric, job_family)
    }

    /// [`appeal`](Self::appeal) of a row lined up with this model's numeric features (in
    /// their order; missing values as None).
    pub fn appeal_aligned(&self, numeric: Vec<Option<f64>>, job_family: &str) -> f64 {
        let z = self.pipeline.transform_aligned(&crate::features::Aligned { numeric, categorical: Vec::new() });
        let u: f64 = z.iter().zip(self.weights(job_family)).map(|(x, w)| x * w).sum();
        let centre = self.centre.get(job_family).or_else(|| self.centre.get("")).copied().unwrap_or(0.0);
        sigmoid(u - centre)
    }
}

/// How a blended model weighs outcomes against recruiters' preferences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blend {
    pub outcomes: f64,
    pub recruiter: f64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// How chosen candidates differ from passed-over ones in one feature: the mean of chosen −
/// passed over in the feature's own units, with a 95 % interval clustered by requisition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub feature: String,
    pub mean: f64,
    /// Half-width of the 95 % interval (None with pairs from fewer than two requisitions).
    pub margin: Option<f64>,
    /// Pairs in which both candidates had the feature.
    pub pairs: usize,
}

impl Difference {
    /// Whether the interval excludes 0.
    pub fn clear(&self) -> bool {
        self.margin.is_some_and(|m| self.mean.abs() > m)
    }
}

/// The overrides of one job family for one reason code (`reason` None: every reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideGroup {
    pub job_family: String,
    pub reason: Option<String>,
    pub overrides: usize,
    pub requisitions: usize,
    /// Share of the family's overrides with this reason.
    pub share: f64,
    /// Largest clear difference first, then the rest by size relative to the margin.
    pub differences: Vec<Difference>,
}

impl OverrideGroup {
    /// The group in one sentence, e.g. "In customer_support, recruiters chose candidates with a
    /// 0.18 higher soft_skill_score than the model's pick (±0.05), over 240 overrides; reason
    /// code `communication` in 61 %."
    pub fn sentence(&self, top_reason: Option<(&str, f64)>) -> String {
        let over = format!("over {} override{}", self.overrides, if self.overrides == 1 { "" } else { "s" });
        let reason = top_reason.map(|(r, s)| format!("; reason code `{r}` in {:.0} %", 100.0 * s)).unwrap_or_default();
        let scope = match &self.reason {
            None => format!("In {}", self.job_family),
            Some(r) => format!("In {}, when the reason was `{r}`", self.job_family),
        };
        match self.differences.iter().find(|d| d.clear()) {
            Some(d) => format!(
                "{scope}, recruiters chose candidates with a {:.2} {} {} than the model's pick (±{:.2}), {over}{reason}.",
                d.mean.abs(),
                if d.mean > 0.0 { "higher" } else { "lower" },
                d.feature,
                d.margin.unwrap_or_default()
            ),
            None => format!(
                "{scope}, the candidates recruiters chose differ from the model's pick in no feature beyond chance, {over}{reason}."
            ),
        }
    }
}

/// What recruiters weigh differently, from their overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    pub evidence: Evidence,
    /// Per job family (reason None), then per job family and reason code.
    pub groups: Vec<OverrideGroup>,
    /// One sentence per job family.
    pub sentences: Vec<String>,
}

/// Per job family and reason code, how the candidates recruiters chose over the model's pick
/// differ from it, feature by feature (`numeric` names the features to compare).
pub fn insights(pairs: &[Pair], numeric: &[String]) -> Insights {
    let overrides: Vec<&Pair> = pairs.iter().filter(|p| p.against_model).collect();
    let mut families: BTreeMap<&str, Vec<&Pair>> = BTreeMap::new();
    for p in &overrides {
        families.entry(&p.job_family).or_default().push(p);
    }
    let mut groups = Vec::new();
    let mut sentences = Vec::new();
    for (family, ps) in &families {
        let mut by_reason: BTreeMap<Option<&str>, Vec<&Pair>> = BTreeMap::new();
        for p in ps {
            by_reason.entry(p.reason.as_deref()).or_default().push(p);
        }
        let share = |n: usize| n as f64 / ps.len() as f64;
        let top =
            by_reason.iter().filter_map(|(r, v)| r.map(|r| (r, share(v.len())))).max_by(|a, b| a.1.total_cmp(&b.1));
        let whole = group(family, None, ps, 1.0, numeric);
        sentences.push(whole.sentence(top));
        groups.push(whole);
        for (reason, v) in &by_reason {
            if let Some(r) = reason {
                groups.push(group(family, Some(r), v, share(v.len()), numeric));
            }
        }
    }
    Insights { evidence: Evidence::of(pairs), groups, sentences }
}

fn group(family: &str, reason: Option<&str>, ps: &[&Pair], share: f64, numeric: &[String]) -> OverrideGroup {
    let mut differences: Vec<Difference> = numeric
        .iter()
        .map(|name| {
            // Per requisition: (Σ chosen − passed over, pairs with the feature on both sides).
            let mut by_req: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
            for p in ps {
                if let (Some(a), Some(b)) = (p.chosen.numeric.get(name), p.passed_over.numeric.get(name)) {
                    let e = by_req.entry(&p.requisition).or_default();
                    e.0 += a - b;
                    e.1 += 1.0;
                }
            }
            let clusters: Vec<(f64, f64)> = by_req.into_values().collect();
            let (sum, n) = clusters.iter().fold((0.0, 0.0), |(s, n), c| (s + c.0, n + c.1));
            Difference {
                feature: name.clone(),
                mean: if n > 0.0 { sum / n } else { 0.0 },
                margin: cluster_mean_variance(&clusters).map(|v| 1.959_963_984_540_054 * v.sqrt()),
                pairs: n as usize,
            }
        })
        .filter(|d| d.pairs > 0)
        .collect();
    let strength = |d: &Difference| d.margin.map_or(0.0, |m| if m > 0.0 { d.mean.abs() / m } else { f64::INFINITY });
    differences.sort_by(|a, b| b.clear().cmp(&a.clear()).then(strength(b).total_cmp(&strength(a))));
    OverrideGroup {
        job_family: family.to_string(),
        reason: reason.map(str::to_string),
        overrides: ps.len(),
        requisitions: ps.iter().map(|p| p.requisition.as_str()).collect::<BTreeSet<_>>().len(),
        share,
        differences,
    }
}

/// One feature's weight, per standard deviation, for recruiters (the preference model, in one
/// job family) and for the outcome model (the champion, if it is linear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightComparison {
    pub job_family: String,
    pub feature: String,
    /// Log-odds of being preferred by a recruiter, per SD of the feature.
    pub recruiters: f64,
    /// Log-odds of success, per SD of the feature (None when the champion is not linear).
    pub outcome_model: Option<f64>,
}

/// `hrloop insights overrides`: what recruiters weigh differently, from the feedback on
/// rankings served since `since`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverridesReport {
    /// When the report was made, and the first served ranking it reads.
    pub at: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub model: String,
    /// The champion whose features and weights the recruiters are compared with.
    pub champion: Option<String>,
    /// The job families the champion was trained on (from ingested, taxonomy-checked data):
    /// the only job families the KPIs use as label values.
    #[serde(default)]
    pub champion_families: Vec<String>,
    pub insights: Insights,
    /// Per job family with weights of its own (and "all" for the shared ones), the features
    /// by how much more recruiters weigh them than the outcome model, largest first; empty
    /// below `MIN_PAIRS_FOR_WEIGHTS` pairs.
    pub weights: Vec<WeightComparison>,
    /// Selection per protected group (the champion spec's fairness attributes): the model's
    /// top k beside the recruiters' choices. Do overrides raise or lower the impact ratio?
    #[serde(default)]
    pub selection: Vec<GroupSelection>,
}

/// Fewer pairs than this fit no preference model in the report (its weights would be noise).
pub const MIN_PAIRS_FOR_WEIGHTS: usize = 50;

/// Build the [`OverridesReport`] for `model` (its champion gives the features compared; without
/// a champion, every numeric feature the served rows carry).
pub async fn overrides_report(
    lake: &Lake,
    registry: &crate::Registry,
    model: &str,
    now: DateTime<Utc>,
    days: i64,
) -> Result<OverridesReport> {
    let since = now - chrono::Duration::days(days);
    let champion = registry.state(model).await?.champion;
    let trained = match &champion {
        Some(v) => Some(registry.model(model, v).await?),
        None => None,
    };
    let pinned = lake.pinned().await?;
    let served = served_since(&pinned, since).await?;
    let fb = feedback(&pinned).await?;
    let choices = choices_of(&served, &fb)?;
    let all = pairs(&choices);
    let numeric: Vec<String> = match &trained {
        Some(t) => t.pipeline.numeric.iter().map(|s| s.name.clone()).collect(),
        None => {
            all.iter().flat_map(|p| p.chosen.numeric.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect()
        }
    };
    let insights = insights(&all, &numeric);
    let mut weights = Vec::new();
    if all.len() >= MIN_PAIRS_FOR_WEIGHTS {
        let pref = PreferenceModel::fit(&numeric, &all, Options::default())?;
        let outcome: BTreeMap<String, f64> = match trained.as_ref().map(|t| (&t.estimator, t.pipeline.columns())) {
            Some((crate::model::Estimator::Logistic { weights, .. }, cols)) => {
                cols.into_iter().zip(weights.iter().copied()).collect()
            }
            _ => BTreeMap::new(),
        };
        let cols = pref.pipeline.columns();
        let families = std::iter::once(String::from("all")).chain(pref.families.keys().cloned());
        for family in families {
            let w = if family == "all" { pref.shared.clone() } else { pref.weights(&family) };
            let mut rows: Vec<WeightComparison> = cols
                .iter()
                .zip(&w)
                .filter(|(c, _)| numeric.contains(c))
                .map(|(c, w)| WeightComparison {
                    job_family: family.clone(),
                    feature: c.clone(),
                    recruiters: *w,
                    outcome_model: outcome.get(c).copied(),
                })
                .collect();
            rows.sort_by(|a, b| {
                let gap = |x: &WeightComparison| (x.recruiters - x.outcome_model.unwrap_or(0.0)).abs();
                gap(b).total_cmp(&gap(a))
            });
            weights.extend(rows);
        }
    }
    let champion_families = trained
        .as_ref()
        .and_then(|t| t.pipeline.categorical.iter().find(|c| c.name == "job_family"))
        .map(|c| c.levels.clone())
        .unwrap_or_default();
    let fairness_spec = match &champion {
        Some(v) => registry.card(model, v).await?.spec.fairness,
        None => crate::spec::FairnessSpec::default(),
    };
    let selection = side_by_side(&pinned, &served, &choices, &fairness_spec).await?;
    Ok(OverridesReport {
        at: now,
        since,
        model: model.to_string(),
        champion,
        champion_families,
        insights,
        weights,
        selection,
    })
}

/// One protected group's selection in the rankings recruiters decided on: by the model (its
/// top k) and by the recruiters (advanced or hired), side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSelection {
    pub attribute: String,
    pub group: String,
    /// Candidates of the group in those rankings.
    pub candidates: usize,
    /// In the model's top k.
    pub top_k: usize,
    /// Advanced or hired by the recruiter.
    pub chosen: usize,
    pub top_k_rate: f64,
    pub chosen_rate: f64,
    /// Each rate over the highest group's rate for the attribute (the impact ratio).
    pub top_k_impact_ratio: Option<f64>,
    pub chosen_impact_ratio: Option<f64>,
    /// Below `min_group_size` (the spec's): reported, not judged.
    pub small: bool,
}

/// Selection rates per protected group: the model's top k and the recruiters' choices, over
/// every served ranking with recruiter feedback (the candidates the recruiter did not decide on
/// count as not chosen). Candidates without the attribute are reported as group "unknown".
///
/// Query: the served rows already read for the choices (their rankings) and
/// [`protected_attributes_of`](crate::data::protected_attributes_of) those rankings'
/// candidates, a semi-join. Point in time: the ranking as served; attributes as recorded.
async fn side_by_side(
    lake: &Lake,
    served: &[Served],
    choices: &[Choice],
    spec: &crate::spec::FairnessSpec,
) -> Result<Vec<GroupSelection>> {
    let rankings: BTreeSet<&str> = choices.iter().map(|c| c.decision_id.as_str()).collect();
    let chosen: BTreeSet<(&str, &str)> = choices
        .iter()
        .filter(|c| matches!(c.decision, RecruiterDecision::Advanced | RecruiterDecision::Hired))
        .map(|c| (c.decision_id.as_str(), c.candidate.as_str()))
        .collect();
    let mut by_ranking: BTreeMap<&str, Vec<&Served>> = BTreeMap::new();
    for s in served.iter().filter(|s| s.arm != Arm::Shadow.as_str() && rankings.contains(s.decision_id.as_str())) {
        by_ranking.entry(&s.decision_id).or_default().push(s);
    }
    let candidates: Vec<&str> = by_ranking.values().flatten().map(|s| s.candidate.as_str()).collect();
    let attrs = crate::data::protected_attributes_of(lake, &candidates).await?;
    let mut out = Vec::new();
    for attribute in &spec.attributes {
        // (candidates, in the top k, chosen) per group.
        let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for (ranking, rows) in &by_ranking {
            let mut order: Vec<&&Served> = rows.iter().collect();
            order.sort_by(|a, b| b.score.total_cmp(&a.score));
            for (pos, s) in order.iter().enumerate() {
                let group =
                    attrs.get(&s.candidate).and_then(|a| a.get(attribute)).cloned().unwrap_or_else(|| "unknown".into());
                let c = counts.entry(group).or_default();
                c.0 += 1;
                c.1 += usize::from(pos < spec.top_k);
                c.2 += usize::from(chosen.contains(&(ranking, s.candidate.as_str())));
            }
        }
        let rate = |x: usize, n: usize| if n > 0 { x as f64 / n as f64 } else { 0.0 };
        let judged = |g: &String, c: &(usize, usize, usize)| g != "unknown" && c.0 >= spec.min_group_size;
        let best = |k: fn(&(usize, usize, usize)) -> usize| {
            counts.iter().filter(|(g, c)| judged(g, c)).map(|(_, c)| rate(k(c), c.0)).fold(0.0, f64::max)
        };
        let (best_top, best_chosen) = (best(|c| c.1), best(|c| c.2));
        for (group, c) in &counts {
            let (top_k_rate, chosen_rate) = (rate(c.1, c.0), rate(c.2, c.0));
            let ratio = |r: f64, b: f64| (judged(group, c) && b > 0.0).then(|| r / b);
            out.push(GroupSelection {
                attribute: attribute.clone(),
                group: group.clone(),
                candidates: c.0,
                top_k: c.1,
                chosen: c.2,
                top_k_rate,
                chosen_rate,
                top_k_impact_ratio: ratio(top_k_rate, best_top),
                chosen_impact_ratio: ratio(chosen_rate, best_chosen),
                small: group != "unknown" && c.0 < spec.min_group_size,
            });
        }
    }
    Ok(out)
}

fn reports_of(model: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("reports/insights/overrides/{model}"))
}

/// Store a report (write-once) under `reports/insights/overrides/<model>/<time>.json`, where the
/// KPIs read the newest one. Returns its path.
pub async fn store_report(lake: &Lake, r: &OverridesReport) -> Result<String> {
    let path =
        object_store::path::Path::from(format!("{}/{}.json", reports_of(&r.model), r.at.format("%Y%m%dT%H%M%S%.3fZ")));
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Training(format!("overrides report: {e}")))?;
    if !lake.store().put_new(&path, bytes::Bytes::from(json)).await? {
        return Err(Error::Training(format!("{path} exists already: one report per model and instant")));
    }
    Ok(path.to_string())
}

/// The newest stored report of `model`, if any.
pub async fn latest_report(lake: &Lake, model: &str) -> Result<Option<OverridesReport>> {
    crate::rejudge::newest_record(lake, &reports_of(model)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(soft: f64, edu: f64) -> RawFeatures {
        let mut r = RawFeatures::default();
        r.numeric.insert("soft_skill_score".into(), soft);
        r.numeric.insert("education_level".into(), edu);
        r
    }

    fn choice(ranking: &str, decision: RecruiterDecision, score: f64, soft: f64) -> Choice {
        Choice {
            requisition: format!("R-{ranking}"),
            candidate: format!("c-{score}"),
            decision_id: ranking.into(),
            job_family: "customer_support".into(),
            recruiter: Some("rec-1".into()),
            decision,
            reason: (decision == RecruiterDecision::Rejected).then(|| "communication".into()),
            model_score: score,
            raw: raw(soft, 2.0),
        }
    }

    #[test]
    fn pairs_go_from_further_to_less_far_within_one_ranking_and_mark_overrides() {
        use RecruiterDecision::*;
        let c = vec![
            choice("d1", Rejected, 0.9, 0.2),
            choice("d1", Advanced, 0.8, 0.7),
            choice("d1", Hired, 0.5, 0.8),
            choice("d1", Withdrawn, 0.95, 0.9),
            choice("d2", Rejected, 0.1, 0.1),
        ];
        let p = pairs(&c);
        // hired > advanced, hired > rejected, advanced > rejected; the withdrawal and the other
        // ranking's rejection give none.
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|p| p.against_model), "the model ranked every passed-over one higher");
        let e = Evidence::of(&p);
        assert_eq!((e.pairs, e.overrides, e.recruiters, e.requisitions), (3, 3, 1, 1));
        // Agreement: the model ranked the advanced candidate higher than the rejected one.
        let agree = pairs(&[choice("d3", Advanced, 0.9, 0.5), choice("d3", Rejected, 0.2, 0.5)]);
        assert_eq!(agree.len(), 1);
        assert!(!agree[0].against_model);
    }

    /// Recruiters who prefer soft skills (in one family) and ignore education: the fit recovers
    /// a clearly positive soft-skill weight for that family, about none for education, and
    /// predicts held-out choices well.
    #[test]
    fn the_preference_model_recovers_a_known_taste() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut make = |n: usize, family: &str| {
            (0..n)
                .map(|i| {
                    let (a, b) = (raw(next(), (next() * 5.0).floor()), raw(next(), (next() * 5.0).floor()));
                    let ua = 4.0 * a.numeric["soft_skill_score"];
                    let ub = 4.0 * b.numeric["soft_skill_score"];
                    let a_wins = next() < sigmoid(ua - ub);
                    let (chosen, passed_over) = if a_wins { (a, b) } else { (b, a) };
                    Pair {
                        requisition: format!("{family}-{}", i / 4),
                        recruiter: Some("r".into()),
                        job_family: family.into(),
                        chosen,
                        passed_over,
                        against_model: i % 3 == 0,
                        reason: Some("communication".into()),
                    }
                })
                .collect::<Vec<_>>()
        };
        let train = make(1500, "customer_support");
        let test = make(500, "customer_support");
        let names = vec!["soft_skill_score".to_string(), "education_level".to_string()];
        let m = PreferenceModel::fit(&names, &train, Options::default()).unwrap();
        assert!(m.families.contains_key("customer_support"));
        let w = m.weights("customer_support");
        let cols = m.pipeline.columns();
        let at = |n: &str| w[cols.iter().position(|c| c == n).unwrap()];
        assert!(at("soft_skill_score") > 0.8, "soft skill weight per SD {}", at("soft_skill_score"));
        assert!(at("education_level").abs() < 0.15, "education weight {}", at("education_level"));
        let right = test.iter().filter(|p| m.prefers(&p.chosen, &p.passed_over, &p.job_family) > 0.5).count();
        assert!(right as f64 / test.len() as f64 > 0.6, "held-out accuracy {right}/{}", test.len());
        // Blending: appeal is a probability around the average candidate.
        let a = m.appeal(&raw(0.9, 2.0), "customer_support");
        assert!(a > 0.5 && a < 1.0 && m.appeal(&raw(0.1, 2.0), "customer_support") < 0.5);

        let ins = insights(&train, &names);
        let whole = &ins.groups[0];
        assert_eq!(whole.reason, None);
        assert_eq!(whole.differences[0].feature, "soft_skill_score", "{:?}", whole.differences);
        assert!(whole.differences[0].clear() && whole.differences[0].mean > 0.0);
        assert!(
            ins.sentences[0].starts_with("In customer_support, recruiters chose candidates with a "),
            "{}",
            ins.sentences[0]
        );
        assert!(ins.sentences[0].contains("higher soft_skill_score than the model's pick (±"), "{}", ins.sentences[0]);
        assert!(ins.sentences[0].contains("reason code `communication` in 100 %"), "{}", ins.sentences[0]);
    }

    mod lake {
        use super::*;
        use crate::testing::{at, write};
        use hrloop_core::{Route, Source};
        use hrloop_lake::rows::decisions::DecisionRow;
        use hrloop_lake::rows::feedback::FeedbackRow;

        fn served(cand: &str, ranking: &str, when: DateTime<Utc>, arm: Arm, score: f64, soft: f64) -> DecisionRow {
            DecisionRow {
                requisition_id: "R1".into(),
                candidate_id: cand.into(),
                job_family: "sales".into(),
                decided_at: when,
                source: Source::Serving,
                stage_reached: None,
                decision: None,
                skills: None,
                features: Some(vec![("soft_skill_score".into(), soft)]),
                decision_id: Some(ranking.into()),
                model_version: Some("v2".into()),
                arm: Some(arm),
                score: Some(score),
                route: Some(Route::Auto),
                shadow_version: None,
                shadow_score: None,
            }
        }

        fn fb(cand: &str, decision: RecruiterDecision, when: DateTime<Utc>, reason: Option<&str>) -> FeedbackRow {
            FeedbackRow {
                requisition_id: "R1".into(),
                candidate_id: cand.into(),
                recruiter_id: Some("rec-7".into()),
                decision,
                overrides_model: reason.is_some(),
                reason_code: reason.map(str::to_string),
                reason_text: None,
                recorded_at: when,
            }
        }

        /// The recruiter's decision meets the ranking they saw: the last served row before the
        /// feedback (not a re-ranking after it, not the challenger's shadow score), with the
        /// features as served then.
        #[tokio::test]
        async fn choices_join_each_decision_to_the_ranking_the_recruiter_saw() {
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
            write(
                &lake,
                "d1",
                &[
                    served("a", "d-1", at(0), Arm::Champion, 0.9, 0.2),
                    served("b", "d-1", at(0), Arm::Champion, 0.6, 0.8),
                    // The challenger's shadow scores of the same candidates: no recruiter saw them.
                    served("a", "d-1s", at(0), Arm::Shadow, 0.1, 0.2),
                    served("b", "d-1s", at(0), Arm::Shadow, 0.95, 0.8),
                ],
            )
            .await;
            // A re-ranking after the recruiter decided must not be the one joined.
            write(&lake, "d2", &[served("a", "d-2", at(48), Arm::Champion, 0.1, 0.2)]).await;
            write(
                &lake,
                "f1",
                &[
                    fb("a", RecruiterDecision::Rejected, at(24), Some("communication")),
                    fb("b", RecruiterDecision::Advanced, at(24), None),
                ],
            )
            .await;
            let c = choices(&lake, at(-24)).await.unwrap();
            assert_eq!(c.len(), 2, "{c:#?}");
            assert!(c.iter().all(|c| c.decision_id == "d-1"), "{c:#?}");
            let a = c.iter().find(|c| c.candidate == "a").unwrap();
            assert_eq!(
                (a.model_score, a.reason.as_deref(), a.recruiter.as_deref()),
                (0.9, Some("communication"), Some("rec-7"))
            );
            assert_eq!(a.raw.numeric["soft_skill_score"], 0.2);
            let p = pairs(&c);
            assert_eq!(p.len(), 1);
            assert!(p[0].against_model, "the model ranked the rejected candidate first");
            assert_eq!(p[0].reason.as_deref(), Some("communication"));
            assert_eq!(p[0].chosen.numeric["soft_skill_score"], 0.8);
            // Served before the window: nothing.
            assert!(choices(&lake, at(72)).await.unwrap().is_empty());

            // Side by side: the model put the woman first (top 1), the recruiter chose the man.
            use hrloop_lake::rows::protected_attributes::ProtectedAttributesRow;
            let attr = |cand: &str, g: &str| ProtectedAttributesRow {
                candidate_id: cand.into(),
                attributes: vec![("gender".into(), g.into())],
                recorded_at: at(0).date_naive(),
            };
            write(&lake, "p1", &[attr("a", "F"), attr("b", "M")]).await;
            let served = served_since(&lake, at(-24)).await.unwrap();
            let spec = crate::spec::FairnessSpec { attributes: vec!["gender".into()], top_k: 1, min_group_size: 1 };
            let sel = side_by_side(&lake, &served, &c, &spec).await.unwrap();
            let g = |name: &str| sel.iter().find(|s| s.group == name).unwrap().clone();
            let (f, m) = (g("F"), g("M"));
            assert_eq!((f.candidates, f.top_k, f.chosen), (1, 1, 0), "{sel:#?}");
            assert_eq!((m.candidates, m.top_k, m.chosen), (1, 0, 1), "{sel:#?}");
            assert_eq!((f.top_k_impact_ratio, m.top_k_impact_ratio), (Some(1.0), Some(0.0)));
            assert_eq!((f.chosen_impact_ratio, m.chosen_impact_ratio), (Some(0.0), Some(1.0)));
            assert_eq!(sel.len(), 2, "the shadow rows and the later re-ranking are not candidates: {sel:#?}");
        }
    }

    #[test]
    fn no_pairs_is_an_error_that_says_why() {
        let e = PreferenceModel::fit(&["x".into()], &[], Options::default()).unwrap_err();
        assert!(e.to_string().contains("no recruiter feedback"), "{e}");
    }
}
