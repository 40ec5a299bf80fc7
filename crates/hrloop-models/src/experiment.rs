//! Experiment analysis: is the challenger better than the champion, on what recruiters did
//! with the rankings each arm served (and, as they mature, on outcomes)?
//!
//! Per arm: requisitions, recruiter agreement with the model's top 5, override rate, time to
//! shortlist, offer rate, human-review rate, 6/12-month retention of hires, each with a 95 %
//! interval. Checks: sample-ratio mismatch (always-valid, p < 0.001), minimum sample and duration,
//! guardrails (adverse impact ratio of the challenger's top 5 per protected attribute, and any
//! external guardrail the caller evaluated, e.g. a PromQL query). Verdicts: promote, roll back,
//! keep running, or inconclusive (a human decides). Verdicts are stored write-once with their
//! evidence under `experiments/<model>/<challenger>/<seq>.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hrloop_core::Milestone;
use hrloop_lake::Lake;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::recruiting::{Feedback, Served, feedback, served_since};
use crate::registry::{Alias, AliasEvent, Registry};
use crate::stats::{
    Covaried, Z_POWER_80, bonferroni, cuped_ratios, hsd_boundaries, mean_ci, pairs, two_proportion_p, wilson,
};
use crate::{Error, Result};

/// What a verdict needs before it may say promote or roll back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Share of requisitions the challenger is meant to get.
    pub challenger_share: f64,
    /// Recruiter feedback rows needed in each arm.
    pub min_feedback_per_arm: usize,
    /// The experiment runs at least this long (days).
    pub min_days: i64,
    /// After this long without a significant difference, a human decides (days).
    pub max_days: i64,
    /// Significance level of the KPI comparisons. For the override rate, which promotes and
    /// rolls back, it is the whole budget of the group-sequential test: an identical challenger
    /// is promoted or rolled back on it with probability at most `alpha` (promote and harm
    /// together), looking every day until `max_days`. The agreement test only blocks a
    /// promotion, so it spends none of it.
    pub alpha: f64,
    /// A sample-ratio-mismatch p-value below this means assignment is broken. The check is
    /// always-valid (`stats::sample_ratio_p`), so daily looks keep false alarms below it.
    pub srm_p: f64,
    /// Adverse impact ratio below this (and significant) fails the fairness guardrail.
    pub min_adverse_impact_ratio: f64,
    /// Groups smaller than this are reported, not gated.
    pub min_group_size: usize,
    /// Significance a fairness gap needs to fail the guardrail (Bonferroni-adjusted for the
    /// group pairs). Stricter than `alpha` because the analysis looks again every day.
    pub fairness_alpha: f64,
    /// Candidates the challenger must have put in its top 5 before fairness is judged.
    pub min_selected: usize,
    /// Feedback rows on the challenger before a significantly worse override rate rolls it
    /// back (harm stops an experiment early; a promotion waits for `min_feedback_per_arm`).
    pub min_feedback_for_harm: usize,
    /// Days after `max_days` a person has to decide an experiment that reached no verdict;
    /// then it expires: the challenger is retired, the champion stays, and the next retrain
    /// may compete (an undecided experiment must not shut out every later model).
    pub decide_within_days: i64,
    /// How the override-rate test spends `alpha` over its daily looks until `max_days` (the
    /// Hwang–Shih–DeCani gamma): −4 spends like O'Brien–Fleming (little early, almost the
    /// fixed-sample test on the last day), 1 like Pocock (evenly), 0 in proportion to the days.
    pub spending_gamma: f64,
    /// Requisitions each arm needs before the override rate may decide anything.
    pub min_requisitions_per_arm: usize,
    /// The smallest difference in override rate worth acting on (0.10: ten points). Each
    /// verdict plans for it: the days and requisitions the test needs to find it 80 % of the
    /// time at the store's rate, and, when `max_days` is too short for that, it says so at once
    /// ("a person decides, or lengthen the experiment") instead of running for nothing.
    pub min_effect: f64,
    /// The tau of the fairness guardrail's always-valid test, on the log adverse impact ratio.
    pub fairness_mixture_sd: f64,
    /// Requisitions each arm needs before the override rates are compared adjusted for the
    /// pre-experiment covariate (CUPED): its coefficient is fitted on the experiment's own
    /// requisitions, and on a handful it adds more noise than it removes.
    pub min_requisitions_for_cuped: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            challenger_share: 0.2,
            min_feedback_per_arm: 100,
            min_days: 14,
            max_days: 28,
            alpha: 0.05,
            srm_p: 0.001,
            min_adverse_impact_ratio: 0.8,
            min_group_size: 30,
            fairness_alpha: 0.01,
            min_selected: 25,
            min_feedback_for_harm: 20,
            decide_within_days: 7,
            spending_gamma: -2.0,
            min_requisitions_per_arm: 10,
            min_effect: 0.10,
            fairness_mixture_sd: 0.30,
            min_requisitions_for_cuped: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Promote,
    Rollback,
    KeepRunning,
    Inconclusive,
    /// No verdict and no person's decision `decide_within_days` after `max_days`: the
    /// challenger is retired so the next retrain can compete; the champion stays.
    Expired,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::Rollback => "rollback",
            Decision::KeepRunning => "keep_running",
            Decision::Inconclusive => "inconclusive",
            Decision::Expired => "expired",
        }
    }
}

/// A rate with its 95 % interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub successes: usize,
    pub n: usize,
    pub value: Option<f64>,
    pub ci: Option<(f64, f64)>,
}

impl Rate {
    pub fn of(successes: usize, n: usize) -> Rate {
        Rate { successes, n, value: (n > 0).then(|| successes as f64 / n as f64), ci: wilson(successes, n) }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    pub n: usize,
    pub value: Option<f64>,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmKpis {
    pub arm: String,
    pub version: Option<String>,
    pub requisitions: usize,
    pub candidates_scored: usize,
    pub feedback: usize,
    /// Recruiters advanced or hired a candidate the model put in its top 5.
    pub agreement_top5: Rate,
    /// Feedback marked as going against the model's suggestion.
    pub override_rate: Rate,
    /// Variance of `override_rate` with the requisition (the unit randomised) as the
    /// independent unit, by the delta method (`stats::cluster_ratio_variance`).
    #[serde(default)]
    pub override_variance: Option<f64>,
    /// `override_rate` and its variance adjusted with a pre-experiment covariate (CUPED): each
    /// requisition's recruiter's override rate before the experiment started.
    #[serde(default)]
    pub override_cuped: Option<(f64, f64)>,
    /// Days from the ranking to the first candidate advanced, per requisition.
    pub time_to_shortlist_days: Mean,
    /// Hired among the candidates advanced or hired.
    pub offer_rate: Rate,
    pub human_review_rate: Rate,
    /// Hires still employed at a matured milestone, by milestone.
    pub retention: BTreeMap<String, Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// It could not be evaluated (e.g. Prometheus unreachable, no series): the verdict is
    /// inconclusive rather than a rollback.
    #[serde(default)]
    pub inconclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub seq: u64,
    pub model: String,
    pub champion: Option<String>,
    pub challenger: String,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub analysed_at: DateTime<Utc>,
    pub days_running: i64,
    pub decision: Decision,
    /// Why, in a sentence a person reads.
    pub reason: String,
    pub arms: Vec<ArmKpis>,
    pub srm_p_value: Option<f64>,
    /// The override-rate test's nominal two-sided p-value at this look: significant at or below
    /// `override_difference.look.nominal_level`, not at `alpha` (verdicts stored before `look`
    /// held a mixture test's always-valid p-value, compared with `alpha`).
    pub override_p_value: Option<f64>,
    pub agreement_p_value: Option<f64>,
    pub guardrails: Vec<GuardrailResult>,
    /// Set when a person decided (`hrloop experiments decide`).
    #[serde(default)]
    pub decided_by: Option<String>,
    /// The challenger's override rate minus the champion's, with its always-valid 95 %
    /// interval (valid however many days are looked at). Absent in verdicts stored before it.
    #[serde(default)]
    pub override_difference: Option<Difference>,
    /// What the experiment can detect at the store's rate, and how long it needs.
    #[serde(default)]
    pub power: Option<Power>,
}

/// A difference between the arms with its interval, valid however often it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub estimate: f64,
    /// The (1 − alpha) repeated confidence interval: the differences the sequential test cannot
    /// reject at this look (in verdicts stored before `look`, a mixture test's interval).
    pub interval: (f64, f64),
    /// The error rate the interval and the test spend (the policy's alpha).
    pub alpha: f64,
    /// When the arms were adjusted with a pre-experiment covariate (CUPED): how much narrower
    /// the interval is than without it (0.2: a fifth).
    #[serde(default)]
    pub narrowed_by: Option<f64>,
    /// Which look of the group-sequential test this is, and its boundary. Absent in verdicts
    /// stored before it (they used a normal-mixture sequential test).
    #[serde(default)]
    pub look: Option<Look>,
}

/// One look of the group-sequential override-rate test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// The day looked at (1-based) of `looks` daily looks.
    pub day: i64,
    pub looks: i64,
    /// The test rejects "no difference" at this look when |estimate| / standard error reaches
    /// it.
    pub z_boundary: f64,
    /// The two-sided p-value the boundary corresponds to (the look's nominal level).
    pub nominal_level: f64,
}

impl Difference {
    /// The method in words: how the interval was made and what error it keeps.
    pub fn method(&self) -> String {
        match self.look {
            Some(l) if l.day > l.looks => format!(
                "group-sequential test over {} daily looks, all spent: after day {} the override rate no longer decides",
                l.looks, l.looks
            ),
            Some(l) => format!(
                "group-sequential test, look {} of {} daily looks: significant beyond {:.2} standard errors (nominal p < {:.4}); looking every day until day {} keeps the error rate at {:.0} %, shared by promotion and rollback",
                l.day,
                l.looks,
                l.z_boundary,
                l.nominal_level,
                l.looks,
                self.alpha * 100.0
            ),
            None => format!(
                "mixture sequential test: valid however often it is looked at; {:.0} % error budget shared by promotion and rollback",
                self.alpha * 100.0
            ),
        }
    }
}

/// The store's traffic, as power planning needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// Requisitions ranked a day, both arms together.
    pub requisitions_per_day: f64,
    /// Variance of the override rate over one requisition: an arm's rate over n requisitions
    /// has variance `requisition_variance / n` (clustering included).
    pub requisition_variance: f64,
}

/// What an experiment can detect at the store's rate (80 % power, the override-rate test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Power {
    pub requisitions_per_day: f64,
    /// The smallest override-rate difference the test finds 80 % of the time by `max_days`.
    pub detectable_by_end: f64,
    /// The difference planned for (`Policy::min_effect`).
    pub planned_effect: f64,
    /// Days from the start the test needs to find the planned difference 80 % of the time
    /// (None: more than a year).
    pub days_needed: Option<i64>,
    /// Requisitions (both arms) those days bring.
    pub requisitions_needed: Option<u64>,
    /// `max_days` when planned: whether the experiment can tell in time.
    pub max_days: i64,
}

impl Power {
    /// Plan an A/B experiment (the challenger serves its share of requisitions) at the
    /// store's traffic.
    pub fn plan(traffic: &Traffic, policy: &Policy) -> Option<Power> {
        let Traffic { requisitions_per_day: rate, requisition_variance: s2 } = *traffic;
        if !(rate > 0.0 && s2 > 0.0) {
            return None;
        }
        let shares = (policy.challenger_share, 1.0 - policy.challenger_share);
        // The boundary of the look on that day (beyond `max_days`: the last look's, as if the
        // experiment were lengthened with the same design).
        let boundaries = hsd_boundaries(policy.max_days.max(1) as usize, policy.alpha, policy.spending_gamma);
        let detectable = |days: i64| {
            let n = rate * days as f64;
            let v = s2 / (n * shares.0) + s2 / (n * shares.1);
            let c = boundaries[(days.max(1) as usize).min(boundaries.len()) - 1];
            (c + Z_POWER_80) * v.sqrt()
        };
        let enough = |days: i64| {
            days >= policy.min_days
                && rate * days as f64 * shares.0.min(shares.1) >= policy.min_requisitions_per_arm as f64
        };
        let days_needed = (1..=366).find(|d| enough(*d) && detectable(*d) <= policy.min_effect);
        Some(Power {
            requisitions_per_day: rate,
            detectable_by_end: detectable(policy.max_days.max(1)),
            planned_effect: policy.min_effect,
            days_needed,
            requisitions_needed: days_needed.map(|d| (rate * d as f64).ceil() as u64),
            max_days: policy.max_days,
        })
    }

    /// The planned difference is found in time (80 % of the time by `max_days`).
    pub fn in_time(&self) -> bool {
        self.days_needed.is_some_and(|d| d <= self.max_days)
    }

    /// In words, for the verdict's reason, `days` into the experiment.
    pub fn sentence(&self, days: i64) -> String {
        let rate = self.requisitions_per_day;
        let points = self.planned_effect * 100.0;
        let need = match (self.days_needed, self.requisitions_needed) {
            (Some(d), Some(r)) if d > days => format!("about {} more days ({r} requisitions in all)", d - days),
            (Some(_), Some(_)) => "no more days".to_string(),
            _ => "more than a year".to_string(),
        };
        format!(
            "at {rate:.1} requisitions a day, finding a {points:.0}-point difference in the override rate 8 times in 10 needs {need}; by day {} the test can find {:.1} points",
            self.max_days,
            self.detectable_by_end * 100.0
        )
    }
}

/// Candidates and their positions as one arm ranked them.
struct ArmView<'a> {
    name: &'a str,
    version: Option<String>,
    /// (row, score used for ranking)
    rows: Vec<(&'a Served, f64)>,
}

/// An arm's KPIs, and its (overrides, feedback rows) per requisition.
fn kpis(
    view: &ArmView<'_>,
    fb: &HashMap<(String, String), Feedback>,
    outcomes: &Outcomes,
) -> (ArmKpis, Vec<(String, f64, f64)>) {
    let mut by_decision: HashMap<&str, Vec<(&Served, f64)>> = HashMap::new();
    for (r, s) in &view.rows {
        by_decision.entry(r.decision_id.as_str()).or_default().push((r, *s));
    }
    let mut top5 = HashSet::new();
    for rows in by_decision.values_mut() {
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (r, _) in rows.iter().take(5) {
            top5.insert((r.requisition.as_str(), r.candidate.as_str()));
        }
    }
    let requisitions: HashSet<&str> = view.rows.iter().map(|(r, _)| r.requisition.as_str()).collect();
    let (mut fb_n, mut overrides, mut top_n, mut top_agree, mut adv, mut hired, mut human) = (0, 0, 0, 0, 0, 0, 0);
    let mut first_rank: HashMap<&str, i64> = HashMap::new();
    let mut first_advance: HashMap<&str, i64> = HashMap::new();
    let mut seen = HashSet::new();
    let mut clusters: HashMap<&str, (f64, f64)> = HashMap::new();
    for (r, _) in &view.rows {
        human += usize::from(r.human);
        let e = first_rank.entry(r.requisition.as_str()).or_insert(r.at);
        *e = (*e).min(r.at);
        let key = (r.requisition.clone(), r.candidate.clone());
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(f) = fb.get(&key) else { continue };
        fb_n += 1;
        overrides += usize::from(f.overrides);
        let c = clusters.entry(r.requisition.as_str()).or_default();
        *c = (c.0 + f64::from(u8::from(f.overrides)), c.1 + 1.0);
        let advanced = f.decision == "advanced" || f.decision == "hired";
        if top5.contains(&(r.requisition.as_str(), r.candidate.as_str())) {
            top_n += 1;
            top_agree += usize::from(advanced);
        }
        if advanced {
            adv += 1;
            hired += usize::from(f.decision == "hired");
            let e = first_advance.entry(r.requisition.as_str()).or_insert(f.at);
            *e = (*e).min(f.at);
        }
    }
    let days: Vec<f64> = first_advance
        .iter()
        .filter_map(|(req, adv_at)| first_rank.get(req).map(|r| (adv_at - r).max(0) as f64 / 86_400e6))
        .collect();
    let (mean, ci) = match mean_ci(&days) {
        Some((m, lo, hi)) => (Some(m), Some((lo, hi))),
        None => (None, None),
    };
    let mut retention = BTreeMap::new();
    for m in [Milestone::M6, Milestone::M12] {
        let (mut n, mut kept) = (0, 0);
        for (req, cand) in &seen {
            if let Some(employed) = outcomes.get(&(req.clone(), cand.clone())).and_then(|o| o.get(&m)) {
                n += 1;
                kept += usize::from(*employed);
            }
        }
        if n > 0 {
            retention.insert(m.to_string(), Rate::of(kept, n));
        }
    }
    let by_requisition: Vec<(String, f64, f64)> = clusters.iter().map(|(r, (y, n))| (r.to_string(), *y, *n)).collect();
    let kpis = ArmKpis {
        arm: view.name.to_string(),
        version: view.version.clone(),
        requisitions: requisitions.len(),
        candidates_scored: view.rows.len(),
        feedback: fb_n,
        agreement_top5: Rate::of(top_agree, top_n),
        override_rate: Rate::of(overrides, fb_n),
        override_variance: crate::stats::cluster_ratio_variance(&clusters.into_values().collect::<Vec<_>>()),
        override_cuped: None,
        time_to_shortlist_days: Mean { n: days.len(), value: mean, ci },
        offer_rate: Rate::of(hired, adv),
        human_review_rate: Rate::of(human, view.rows.len()),
        retention,
    };
    (kpis, by_requisition)
}

/// (requisition, candidate) of a hire -> employed at each reported milestone.
type Outcomes = HashMap<(String, String), BTreeMap<Milestone, bool>>;

async fn hire_outcomes(lake: &Lake) -> Result<Outcomes> {
    let data = crate::data::LakeData::hires_and_outcomes(lake).await?;
    let mut out = Outcomes::new();
    for h in &data.hires {
        if let Some(reported) = data.outcomes.get(&h.employee) {
            out.insert(
                (h.requisition.clone(), h.candidate.clone()),
                reported.iter().map(|(m, (employed, _))| (*m, *employed)).collect(),
            );
        }
    }
    Ok(out)
}

/// Adverse impact ratio of the arm's top 5 per protected attribute.
async fn fairness_guardrails(lake: &Lake, view: &ArmView<'_>, policy: &Policy) -> Result<Vec<GuardrailResult>> {
    // Only the attributes of the candidates this ranking placed.
    let mut candidates: Vec<&str> = view.rows.iter().map(|(r, _)| r.candidate.as_str()).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let attrs = crate::data::protected_attributes_of(lake, &candidates).await?;
    let mut by_decision: HashMap<&str, Vec<(&Served, f64)>> = HashMap::new();
    for (r, s) in &view.rows {
        by_decision.entry(r.decision_id.as_str()).or_default().push((r, *s));
    }
    // attribute -> group -> requisition -> (selected, candidates)
    type PerRequisition<'a> = HashMap<&'a str, (f64, f64)>;
    let mut counts: BTreeMap<String, BTreeMap<String, PerRequisition<'_>>> = BTreeMap::new();
    for rows in by_decision.values_mut() {
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (i, (r, _)) in rows.iter().enumerate() {
            for (attr, group) in attrs.get(&r.candidate).into_iter().flatten() {
                let groups = counts.entry(attr.clone()).or_default();
                let c = groups.entry(group.clone()).or_default().entry(r.requisition.as_str()).or_default();
                *c = (c.0 + f64::from(u8::from(i < 5)), c.1 + 1.0);
            }
        }
    }
    Ok(counts
        .into_iter()
        .filter_map(|(attr, groups)| {
            // Aligned on the attribute's requisitions: entry i of every group is requisition i.
            let reqs: BTreeSet<&str> = groups.values().flat_map(|r| r.keys().copied()).collect();
            let groups = groups
                .into_iter()
                .map(|(g, per)| (g, reqs.iter().map(|r| per.get(r).copied().unwrap_or((0.0, 0.0))).collect()))
                .collect();
            adverse_impact(&attr, &groups, policy)
        })
        .collect())
}

/// The fairness guardrail of one protected attribute: the adverse impact ratio of the arm's
/// top 5 (the lowest group's selection rate over the highest's), from (selected, candidates)
/// per requisition of each group, every group's list aligned on the same requisitions ((0, 0)
/// where a group had no candidate). It fails when the ratio is below
/// `min_adverse_impact_ratio` with an always-valid test: the mixture likelihood ratio of the log
/// ratio's distance below the threshold, Bonferroni-adjusted for the group pairs and compared
/// with `fairness_alpha`. The log ratio's variance is cluster-robust over requisitions with
/// both groups counted per requisition (`stats::cluster_log_ratio_contrast_variance`): the
/// groups share requisitions, so what a requisition does to both cancels. Daily looks keep a fair challenger's
/// chance of ever failing it at `fairness_alpha`. None until the arm selected
/// `min_selected` candidates and two groups have `min_group_size`.
pub fn adverse_impact(
    attribute: &str,
    groups: &BTreeMap<String, Vec<(f64, f64)>>,
    policy: &Policy,
) -> Option<GuardrailResult> {
    struct Group<'a> {
        name: &'a str,
        selected: f64,
        candidates: f64,
        requisitions: &'a [(f64, f64)],
    }
    let all: Vec<Group<'_>> = groups
        .iter()
        .map(|(name, reqs)| {
            let (selected, candidates) = reqs.iter().fold((0.0, 0.0), |(s, n), r| (s + r.0, n + r.1));
            Group { name, selected, candidates, requisitions: reqs }
        })
        .collect();
    if all.iter().map(|g| g.selected).sum::<f64>() < policy.min_selected as f64 {
        return None;
    }
    let sized: Vec<&Group<'_>> = all.iter().filter(|g| g.candidates >= policy.min_group_size as f64).collect();
    let rate = |g: &Group<'_>| g.selected / g.candidates;
    let lo = sized.iter().min_by(|a, b| rate(a).total_cmp(&rate(b)))?;
    let hi = sized.iter().max_by(|a, b| rate(a).total_cmp(&rate(b)))?;
    if sized.len() < 2 || rate(hi) == 0.0 {
        return None;
    }
    let air = rate(lo) / rate(hi);
    // The log ratio, with rates shrunk half a selection towards the middle so a group nobody
    // selected yet has a finite log; its variance by the delta method over requisitions.
    let shrunk = |g: &Group<'_>| (g.selected + 0.5) / (g.candidates + 1.0);
    let below = shrunk(lo).ln() - shrunk(hi).ln() - policy.min_adverse_impact_ratio.ln();
    let variance = crate::stats::cluster_log_ratio_contrast_variance(lo.requisitions, hi.requisitions)?;
    let ratio = crate::stats::mixture_likelihood_ratio(below, variance, policy.fairness_mixture_sd);
    let p = bonferroni((1.0 / ratio).min(1.0), pairs(sized.len()));
    let ok = below >= 0.0 || p >= policy.fairness_alpha;
    Some(GuardrailResult {
        name: format!("adverse impact ratio ({attribute})"),
        ok,
        inconclusive: false,
        detail: format!(
            "{air:.2} ({} {:.1} % vs {} {:.1} % in the top 5); evidence that it is below {}: always-valid p = {p:.3}, corrected for the group pairs (fails when p < {})",
            lo.name,
            rate(lo) * 100.0,
            hi.name,
            rate(hi) * 100.0,
            policy.min_adverse_impact_ratio,
            policy.fairness_alpha
        ),
    })
}

/// The alias event that made `challenger` the challenger (the experiment's start).
fn started(events: &[AliasEvent], challenger: &str) -> Option<DateTime<Utc>> {
    events
        .iter()
        .rev()
        .find(|e| e.alias == Alias::Challenger && e.to_version.as_deref() == Some(challenger))
        .map(|e| e.at)
}

/// Analyse the running experiment of `model`. `external` are guardrails the caller evaluated
/// (e.g. PromQL against Prometheus). Returns None when there is no challenger.
pub async fn analyse(
    lake: &Lake,
    model: &str,
    policy: &Policy,
    external: Vec<GuardrailResult>,
    now: DateTime<Utc>,
) -> Result<Option<Verdict>> {
    // Every table read below comes from one snapshot.
    let lake = &lake.pinned().await?;
    let registry = Registry::new(lake.store().clone());
    let state = registry.state(model).await?;
    let Some(challenger) = state.challenger.clone() else { return Ok(None) };
    let events = registry.events(model).await?;
    let start = started(&events, &challenger).unwrap_or(now);
    let challenger_id = format!("{model}/{challenger}");
    // The window before the start tells the store's rate of requisitions for power planning.
    let history_from = start - chrono::Duration::days(policy.max_days.max(1));
    let all_served = served_since(lake, history_from).await?;
    let (before, served): (Vec<Served>, Vec<Served>) =
        all_served.into_iter().partition(|r| r.at < start.timestamp_micros());
    let fb = feedback(lake).await?;
    let outcomes = hire_outcomes(lake).await?;
    let ab_challenger: Vec<(&Served, f64)> =
        served.iter().filter(|r| r.arm == "challenger" && r.version == challenger_id).map(|r| (r, r.score)).collect();
    // Shadow rows are the challenger's own (arm `shadow`, its version, its score; the serving
    // champion's score beside it). Rows of a served version carrying the challenger's score as
    // `shadow_score` are read too.
    let shadow: Vec<(&Served, f64)> = served
        .iter()
        .filter_map(|r| {
            if r.arm == "shadow" && r.version == challenger_id {
                Some((r, r.score))
            } else if r.arm != "shadow" && r.shadow_version.as_deref() == Some(challenger_id.as_str()) {
                r.shadow_score.map(|s| (r, s))
            } else {
                None
            }
        })
        .collect();
    let mode = if ab_challenger.is_empty() && !shadow.is_empty() { "shadow" } else { "ab" };
    let champion_rows: Vec<(&Served, f64)> =
        served.iter().filter(|r| r.arm == "champion").map(|r| (r, r.score)).collect();
    let champion_view = ArmView { name: "champion", version: state.champion.clone(), rows: champion_rows };
    let challenger_view = ArmView {
        name: if mode == "shadow" { "challenger (shadow)" } else { "challenger" },
        version: Some(challenger.clone()),
        rows: if mode == "shadow" { shadow } else { ab_challenger },
    };
    let (mut champ, champ_requisitions) = kpis(&champion_view, &fb, &outcomes);
    let (mut chall, chall_requisitions) = kpis(&challenger_view, &fb, &outcomes);
    if mode == "ab" {
        let covariate = recruiter_covariate(&fb, start.timestamp_micros());
        let covaried = |reqs: &[(String, f64, f64)]| {
            reqs.iter().map(|(r, y, n)| Covaried { y: *y, n: *n, x: covariate(r) }).collect::<Vec<_>>()
        };
        if let Some([h, c]) = cuped_ratios([&covaried(&champ_requisitions), &covaried(&chall_requisitions)]) {
            champ.override_cuped = Some(h);
            chall.override_cuped = Some(c);
        }
    }
    // Fairness is a property of the challenger's ranking, not of what recruiters did with it,
    // so it is judged on every requisition of the experiment: its own, and the champion's
    // scored by the challenger from the features as served (five times the evidence at a 20 %
    // split). Shadow rows already cover every requisition.
    let rescored: Vec<(&Served, f64)> = if mode == "ab" {
        let champion_served: Vec<&Served> = champion_view.rows.iter().map(|(r, _)| *r).collect();
        let scores = registry.model(model, &challenger).await?.score_each(champion_served.iter().map(|r| &r.raw))?;
        challenger_view.rows.iter().copied().chain(champion_served.into_iter().zip(scores)).collect()
    } else {
        challenger_view.rows.clone()
    };
    let ranked_by_challenger =
        ArmView { name: "challenger's ranking", version: Some(challenger.clone()), rows: rescored };
    let mut guardrails = fairness_guardrails(lake, &ranked_by_challenger, policy).await?;
    guardrails.extend(external);
    let days = (now - start).num_days();
    let (history, _) = kpis(
        &ArmView { name: "before", version: None, rows: before.iter().map(|r| (r, r.score)).collect() },
        &fb,
        &outcomes,
    );
    let traffic = traffic(&history, policy.max_days.max(1), &champ, &chall, days);
    let Judged { decision, reason, srm, override_p, agreement_p, override_difference, power } =
        decide(&champ, &chall, mode == "ab", &guardrails, days, traffic.as_ref(), policy);
    Ok(Some(Verdict {
        seq: 0,
        model: model.to_string(),
        champion: state.champion.clone(),
        challenger,
        mode: mode.into(),
        started_at: start,
        analysed_at: now,
        days_running: days,
        decision,
        reason,
        arms: vec![champ, chall],
        srm_p_value: srm,
        override_p_value: override_p,
        agreement_p_value: agreement_p,
        guardrails,
        decided_by: None,
        override_difference,
        power,
    }))
}

/// Pseudo-rows a recruiter's pre-experiment override rate is shrunk towards everyone's by.
pub const PRIOR_ROWS: f64 = 5.0;

/// CUPED's covariate: a requisition's override rate before the experiment, as its recruiter's
/// override rate on feedback recorded before `start` (shrunk towards everyone's by
/// [`PRIOR_ROWS`] rows, so a recruiter with little history sits near the mean). Requisitions
/// without a known recruiter get everyone's rate. Fixed before the experiment, so it cannot be
/// moved by which arm served.
fn recruiter_covariate(fb: &HashMap<(String, String), Feedback>, start: i64) -> impl Fn(&str) -> f64 {
    let mut before: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut recruiter_of: HashMap<&str, &str> = HashMap::new();
    let (mut all_y, mut all_n) = (0.0, 0.0);
    for ((req, _), f) in fb {
        let Some(recruiter) = f.recruiter.as_deref() else { continue };
        // One recruiter per requisition, the same on every run when several gave feedback.
        let e = recruiter_of.entry(req.as_str()).or_insert(recruiter);
        *e = (*e).min(recruiter);
        if f.at < start {
            let e = before.entry(recruiter).or_default();
            let o = f64::from(u8::from(f.overrides));
            *e = (e.0 + o, e.1 + 1.0);
            (all_y, all_n) = (all_y + o, all_n + 1.0);
        }
    }
    let mean = if all_n > 0.0 { all_y / all_n } else { 0.0 };
    let rate: HashMap<String, f64> = before
        .into_iter()
        .map(|(r, (y, n))| (r.to_string(), crate::stats::shrunk_rate(y, n, mean, PRIOR_ROWS)))
        .collect();
    let recruiter_of: HashMap<String, String> =
        recruiter_of.into_iter().map(|(q, r)| (q.to_string(), r.to_string())).collect();
    move |req: &str| recruiter_of.get(req).and_then(|r| rate.get(r)).copied().unwrap_or(mean)
}

/// The store's traffic for power planning: the requisitions of the `window` days before the
/// experiment when there were enough of them, else the experiment's own so far; the variance of
/// one requisition's override rate from the same rows.
fn traffic(history: &ArmKpis, window: i64, champ: &ArmKpis, chall: &ArmKpis, days: i64) -> Option<Traffic> {
    let per_requisition = |a: &ArmKpis| a.override_variance.map(|v| v * a.requisitions as f64);
    if history.requisitions >= 10
        && let Some(v) = per_requisition(history)
    {
        return Some(Traffic {
            requisitions_per_day: history.requisitions as f64 / window as f64,
            requisition_variance: v,
        });
    }
    let v = per_requisition(champ).or_else(|| per_requisition(chall))?;
    let rate = (champ.requisitions + chall.requisitions) as f64 / days.max(1) as f64;
    Some(Traffic { requisitions_per_day: rate, requisition_variance: v })
}

/// A verdict's decision and the statistics it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub decision: Decision,
    /// Why, in a sentence a person reads.
    pub reason: String,
    pub srm: Option<f64>,
    pub override_p: Option<f64>,
    pub agreement_p: Option<f64>,
    pub override_difference: Option<Difference>,
    pub power: Option<Power>,
}

impl Judged {
    /// The verdict said at once that the experiment cannot find the planned difference in
    /// time (a person decides, or the experiment is lengthened).
    pub fn cannot_tell_in_time(&self) -> bool {
        self.decision == Decision::Inconclusive && self.power.as_ref().is_some_and(|p| !p.in_time())
    }
}

/// The decision rule, apart from reading the lake: from both arms' KPIs (`ab`: the split is
/// randomised, so the sample-ratio check applies), the guardrails' results, the days the
/// experiment has run, the store's traffic (for power planning) and the policy. [`analyse`]
/// and the calibration harness (`hrloop simulate --experiments`) both decide through it.
///
/// The error budget: the override rate, which alone promotes or rolls back on KPIs, is tested
/// with one two-sided group-sequential test at `alpha` (promotion and harm together), one look
/// a day until `max_days`, spending `alpha` over the days by `spending_gamma`; after
/// `max_days` it decides nothing more (a person does, or the experiment expires). Each fairness guardrail spends `fairness_alpha` (its own always-valid
/// test, Bonferroni over group pairs); an identical, fair challenger is therefore wrongly
/// stopped with probability at most `alpha` + `fairness_alpha` × attributes. The agreement test
/// only blocks a promotion, so it spends none.
pub fn decide(
    champ: &ArmKpis,
    chall: &ArmKpis,
    ab: bool,
    guardrails: &[GuardrailResult],
    days: i64,
    traffic: Option<&Traffic>,
    policy: &Policy,
) -> Judged {
    let srm = if ab {
        crate::stats::sample_ratio_p(
            [champ.requisitions, chall.requisitions],
            [1.0 - policy.challenger_share, policy.challenger_share],
        )
    } else {
        None
    };
    // The override rates are compared at the requisition level with a group-sequential test:
    // their difference over its cluster-robust standard error, against the boundary of this
    // day's look.
    // In shadow mode recruiters saw only the champion's ranking: both arms' candidates carry the
    // same recruiter decisions, so overrides cannot tell the arms apart and are not compared.
    let enough = ab
        && champ.requisitions >= policy.min_requisitions_per_arm
        && chall.requisitions >= policy.min_requisitions_per_arm;
    // With a pre-experiment covariate (CUPED) on both arms, the adjusted rates and variances
    // are compared instead: the same test on less noise.
    let plain = match (chall.override_rate.value, champ.override_rate.value) {
        (Some(a), Some(b)) if enough => {
            chall.override_variance.zip(champ.override_variance).map(|(va, vb)| (a - b, va + vb))
        }
        _ => None,
    };
    let cuped_ready = chall.requisitions.min(champ.requisitions) >= policy.min_requisitions_for_cuped;
    let adjusted = match (chall.override_cuped, champ.override_cuped) {
        (Some((a, va)), Some((b, vb))) if plain.is_some() && cuped_ready => Some((a - b, va + vb)),
        _ => None,
    };
    let tested = adjusted.or(plain);
    let boundaries = hsd_boundaries(policy.max_days.max(1) as usize, policy.alpha, policy.spending_gamma);
    let look = {
        let (day, looks) = (days.max(1), boundaries.len() as i64);
        let z_boundary = boundaries[(day.min(looks) - 1) as usize];
        Look { day, looks, z_boundary, nominal_level: 2.0 * crate::stats::upper_tail(z_boundary) }
    };
    // The nominal two-sided p-value of this look (significant below `look.nominal_level`).
    let override_p =
        tested.map(|(d, v)| if v > 0.0 { 2.0 * crate::stats::upper_tail(d.abs() / v.sqrt()) } else { 1.0 });
    let half = |v: f64| look.z_boundary * v.sqrt();
    let override_difference = tested.map(|(estimate, v)| Difference {
        estimate,
        interval: (estimate - half(v), estimate + half(v)),
        alpha: policy.alpha,
        narrowed_by: adjusted.zip(plain).map(|((_, va), (_, vp))| 1.0 - half(va) / half(vp)),
        look: Some(look),
    });
    let agreement_p = two_proportion_p(
        chall.agreement_top5.successes,
        chall.agreement_top5.n,
        champ.agreement_top5.successes,
        champ.agreement_top5.n,
    );
    let power = if ab { traffic.and_then(|t| Power::plan(t, policy)) } else { None };
    let pct = |r: &Rate| r.value.map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0));
    // "31.0 % vs 36.5 % of the recruiters' decisions: 5.5 points fewer (always-valid 95 %
    // interval: 9.8 points fewer to 1.2 points fewer; ...)".
    let compared = || {
        let rates =
            format!("{} vs {} of the recruiters' decisions", pct(&chall.override_rate), pct(&champ.override_rate));
        let Some(d) = override_difference else { return rates };
        let cuped = d.narrowed_by.map_or(String::new(), |k| {
            format!(
                ", adjusted for each recruiter's override rate before the experiment (CUPED, {:.0} % narrower)",
                k * 100.0
            )
        });
        let points = |x: f64| format!("{:.1} points {}", x.abs() * 100.0, if x <= 0.0 { "fewer" } else { "more" });
        format!(
            "{rates}: {} ({:.0} % repeated confidence interval: {} to {}{cuped}; {})",
            points(d.estimate),
            (1.0 - d.alpha) * 100.0,
            points(d.interval.0),
            points(d.interval.1),
            d.method()
        )
    };
    let (decision, reason) = {
        let failed: Vec<&GuardrailResult> = guardrails.iter().filter(|g| !g.ok && !g.inconclusive).collect();
        let unknown: Vec<&GuardrailResult> = guardrails.iter().filter(|g| g.inconclusive).collect();
        let significant = look.day <= look.looks && override_p.is_some_and(|p| p <= look.nominal_level);
        let worse_overrides = significant && override_difference.is_some_and(|d| d.estimate > 0.0);
        let better_overrides = significant && override_difference.is_some_and(|d| d.estimate < 0.0);
        let agreement_worse = matches!((chall.agreement_top5.value, champ.agreement_top5.value), (Some(a), Some(b)) if a < b)
            && agreement_p.is_some_and(|p| p < policy.alpha);
        if let Some(p) = srm.filter(|p| *p < policy.srm_p) {
            (
                Decision::Inconclusive,
                format!(
                    "sample ratio mismatch: {} vs {} requisitions for a {:.0} % split (p = {p:.1e}); assignment or logging is broken, a person must look",
                    champ.requisitions,
                    chall.requisitions,
                    policy.challenger_share * 100.0
                ),
            )
        } else if !unknown.is_empty() && failed.is_empty() {
            (
                Decision::Inconclusive,
                format!(
                    "guardrail could not be evaluated: {}",
                    unknown.iter().map(|g| format!("{}: {}", g.name, g.detail)).collect::<Vec<_>>().join("; ")
                ),
            )
        } else if !failed.is_empty() {
            (
                Decision::Rollback,
                format!(
                    "guardrail failed: {}",
                    failed.iter().map(|g| format!("{}: {}", g.name, g.detail)).collect::<Vec<_>>().join("; ")
                ),
            )
        } else if worse_overrides && chall.feedback >= policy.min_feedback_for_harm {
            (Decision::Rollback, format!("recruiters override the challenger more often: {}", compared()))
        } else if chall.feedback < policy.min_feedback_per_arm || champ.feedback < policy.min_feedback_per_arm {
            (
                Decision::KeepRunning,
                format!(
                    "not enough data yet: {} and {} feedback rows (champion, challenger) of {} needed per arm",
                    champ.feedback, chall.feedback, policy.min_feedback_per_arm
                ),
            )
        } else if days < policy.min_days {
            (
                Decision::KeepRunning,
                format!("running {days} of at least {} days (weekly hiring rhythms must be covered)", policy.min_days),
            )
        } else if better_overrides && !agreement_worse {
            (
                Decision::Promote,
                format!(
                    "recruiters override the challenger less often: {}; agreement with its top 5 {} vs {}; guardrails pass",
                    compared(),
                    pct(&chall.agreement_top5),
                    pct(&champ.agreement_top5)
                ),
            )
        } else if days >= policy.max_days {
            (
                Decision::Inconclusive,
                format!(
                    "no clear difference after {days} days ({}): a person decides with `hrloop experiments decide`",
                    compared()
                ),
            )
        } else {
            (Decision::KeepRunning, format!("no clear difference yet ({})", compared()))
        }
    };
    let reason = if ab {
        reason
    } else {
        format!(
            "{reason}. Shadow mode: recruiters saw only the champion's ranking, so their decisions cannot judge the challenger; here it can only fail a guardrail (fairness is judged on every requisition). For a verdict on recruiters' agreement run an A/B experiment (`hrloop serve --mode ab`); otherwise a person decides"
        )
    };
    // Power: every "keep running" says what the experiment can find and how long it needs; one
    // that cannot find the planned difference by `max_days` says so at once and hands over to
    // a person (it keeps being analysed, so a clear harm or win still acts).
    let (decision, reason) = match (decision, &power) {
        (Decision::KeepRunning, Some(p)) if !p.in_time() => (
            Decision::Inconclusive,
            format!(
                "{reason}. This experiment cannot tell in time: {}. A person decides (`hrloop experiments decide`), or lengthen the experiment (max_days)",
                p.sentence(days)
            ),
        ),
        (Decision::KeepRunning, Some(p)) => (Decision::KeepRunning, format!("{reason}; {}", p.sentence(days))),
        other => (other.0, reason),
    };
    // Nothing decided long after the experiment's end (a verdict's promote or rollback would
    // have acted; a person's would have too): it expires rather than block every later model.
    let expires_after = policy.max_days + policy.decide_within_days;
    let (decision, reason) = match decision {
        Decision::KeepRunning | Decision::Inconclusive if days >= expires_after => (
            Decision::Expired,
            format!(
                "{reason} — and no one decided within {} days after the experiment's {} days, so the challenger is retired and the champion stays; the next retrained model may compete",
                policy.decide_within_days, policy.max_days
            ),
        ),
        other => (other, reason),
    };
    Judged { decision, reason, srm, override_p, agreement_p, override_difference, power }
}

fn verdicts_prefix(model: &str, challenger: &str) -> Path {
    Path::from(format!("experiments/{model}/{challenger}"))
}

/// Store a verdict as the next numbered record of its experiment (write-once).
pub async fn record(lake: &Lake, mut verdict: Verdict) -> Result<Verdict> {
    loop {
        let existing = verdicts(lake, &verdict.model, Some(&verdict.challenger)).await?;
        verdict.seq = existing.last().map_or(1, |v| v.seq + 1);
        let path =
            Path::from(format!("{}/{:06}.json", verdicts_prefix(&verdict.model, &verdict.challenger), verdict.seq));
        let json = serde_json::to_vec_pretty(&verdict).expect("verdict serialises");
        if lake.store().put_new(&path, Bytes::from(json)).await? {
            return Ok(verdict);
        }
    }
}

/// Stored verdicts of a model (one challenger, or all), oldest first.
pub async fn verdicts(lake: &Lake, model: &str, challenger: Option<&str>) -> Result<Vec<Verdict>> {
    let prefix = match challenger {
        Some(c) => verdicts_prefix(model, c),
        None => Path::from(format!("experiments/{model}")),
    };
    let mut out = Vec::new();
    for meta in lake.store().list(&prefix).await? {
        let bytes = lake.store().get(&meta.location).await?;
        let v: Verdict = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Registry(format!("verdict {} is unreadable: {e}", meta.location)))?;
        out.push(v);
    }
    out.sort_by(|a, b| a.analysed_at.cmp(&b.analysed_at).then(a.seq.cmp(&b.seq)));
    Ok(out)
}

/// A short summary for HR of what a promotion changes, from the verdict's evidence.
pub fn plain_summary(v: &Verdict) -> String {
    let (champ, chall) = (&v.arms[0], &v.arms[1]);
    let mut parts = Vec::new();
    if let (Some(a), Some(b)) = (chall.override_rate.value, champ.override_rate.value) {
        let agree_more = (1.0 - a) - (1.0 - b);
        parts.push(format!(
            "the new ranking model ({}) agrees with recruiters {:.0} % {} often (overrides {:.0} % instead of {:.0} %)",
            v.challenger,
            (agree_more.abs() / (1.0 - b).max(1e-9)) * 100.0,
            if agree_more >= 0.0 { "more" } else { "less" },
            a * 100.0,
            b * 100.0
        ));
    }
    if let (Some(a), Some(b)) = (chall.time_to_shortlist_days.value, champ.time_to_shortlist_days.value) {
        parts.push(format!("time to shortlist {a:.1} days instead of {b:.1}"));
    }
    let fairness: Vec<&GuardrailResult> =
        v.guardrails.iter().filter(|g| g.name.starts_with("adverse impact")).collect();
    if fairness.iter().all(|g| g.ok) {
        parts.push(if fairness.is_empty() {
            "fairness not measurable yet (groups too small)".to_string()
        } else {
            "fairness checks pass (adverse impact ratio at or above 0.8, or no significant gap)".to_string()
        });
    }
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s + "."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(ch: (usize, usize), champ: (usize, usize)) -> Verdict {
        let arm = |name: &str, o: (usize, usize)| ArmKpis {
            arm: name.into(),
            override_rate: Rate::of(o.0, o.1),
            ..ArmKpis::default()
        };
        Verdict {
            seq: 1,
            model: "m".into(),
            champion: Some("v1".into()),
            challenger: "v2".into(),
            mode: "ab".into(),
            started_at: Utc::now(),
            analysed_at: Utc::now(),
            days_running: 20,
            decision: Decision::Promote,
            reason: String::new(),
            arms: vec![arm("champion", champ), arm("challenger", ch)],
            srm_p_value: None,
            override_p_value: None,
            agreement_p_value: None,
            guardrails: vec![],
            decided_by: None,
            override_difference: None,
            power: None,
        }
    }

    #[test]
    fn power_planning_says_when_the_rate_cannot_find_the_difference_in_time() {
        let policy = Policy::default();
        // Five feedback rows per requisition at a 35 % override rate, independent.
        let s2 = 0.35 * 0.65 / 5.0;
        let slow = Power::plan(&Traffic { requisitions_per_day: 3.0, requisition_variance: s2 }, &policy).unwrap();
        assert!(!slow.in_time(), "{slow:?}");
        assert!(slow.days_needed.is_some_and(|d| d > 60) && slow.detectable_by_end > 0.15, "{slow:?}");
        assert!(
            slow.sentence(1).starts_with("at 3.0 requisitions a day, finding a 10-point difference"),
            "{}",
            slow.sentence(1)
        );
        let fast = Power::plan(&Traffic { requisitions_per_day: 30.0, requisition_variance: s2 }, &policy).unwrap();
        assert!(fast.in_time() && fast.days_needed.unwrap() >= policy.min_days, "{fast:?}");
        // Beyond `max_days` the boundary stays the last look's, so half the rate needs twice the
        // days; within it, early looks have higher boundaries, so a fast store needs more than
        // the fixed-sample days but still finishes in time.
        let d = |rate: f64| Power::plan(&Traffic { requisitions_per_day: rate, requisition_variance: s2 }, &policy);
        let (d_half, d1) = (d(1.5).unwrap().days_needed.unwrap(), d(3.0).unwrap().days_needed.unwrap());
        assert!((d_half as f64 / d1 as f64 - 2.0).abs() < 0.05, "{d_half} {d1}");
        let d10 = d(30.0).unwrap().days_needed.unwrap();
        assert!(d10 <= policy.max_days && d10 as f64 > d1 as f64 / 10.0, "{d1} {d10}");
        // Through the decision rule: too slow is said at once, and a person decides.
        let arm = |reqs: usize| ArmKpis { requisitions: reqs, feedback: reqs * 5, ..ArmKpis::default() };
        let j = decide(
            &arm(2),
            &arm(1),
            true,
            &[],
            1,
            Some(&Traffic { requisitions_per_day: 3.0, requisition_variance: s2 }),
            &policy,
        );
        assert!(j.cannot_tell_in_time() && j.reason.contains("This experiment cannot tell in time"), "{}", j.reason);
        let j = decide(
            &arm(20),
            &arm(5),
            true,
            &[],
            1,
            Some(&Traffic { requisitions_per_day: 30.0, requisition_variance: s2 }),
            &policy,
        );
        assert_eq!(j.decision, Decision::KeepRunning, "{}", j.reason);
        assert!(j.reason.contains("at 30.0 requisitions a day"), "{}", j.reason);
    }

    #[test]
    fn the_fairness_guardrail_fails_a_clear_gap_and_passes_a_fair_ranking() {
        let policy = Policy::default();
        // 100 requisitions of 10 candidates per group: group b selected 1 in 10, a 3 in 10.
        let groups = |a: f64, b: f64, reqs: usize| -> BTreeMap<String, Vec<(f64, f64)>> {
            [("a".to_string(), vec![(a, 10.0); reqs]), ("b".to_string(), vec![(b, 10.0); reqs])].into()
        };
        let unfair = adverse_impact("sex", &groups(3.0, 1.0, 100), &policy).unwrap();
        assert!(!unfair.ok && unfair.detail.starts_with("0.33 (b 10.0 % vs a 30.0 %"), "{unfair:?}");
        assert_eq!(unfair.name, "adverse impact ratio (sex)");
        let fair = adverse_impact("sex", &groups(2.0, 2.0, 100), &policy).unwrap();
        assert!(fair.ok, "{fair:?}");
        // A gap on little evidence is not yet a failure; too few selections is not judged.
        assert!(adverse_impact("sex", &groups(3.0, 2.0, 10), &policy).unwrap().ok);
        assert!(adverse_impact("sex", &groups(1.0, 0.0, 5), &policy).is_none());
    }

    #[test]
    fn the_summary_for_hr_says_what_changed_in_words() {
        let s = plain_summary(&verdict((10, 100), (20, 100)));
        assert!(s.starts_with("The new ranking model (v2) agrees with recruiters 12 % more often"), "{s}");
        assert!(s.contains("overrides 10 % instead of 20 %"), "{s}");
    }
}
