//! Experiment analysis: is the challenger better than the champion, on what recruiters did
//! with the rankings each arm served (and, as they mature, on outcomes)?
//!
//! Per arm: requisitions, recruiter agreement with the model's top 5, override rate, time to
//! shortlist, offer rate, human-review rate, 6/12-month retention of hires, each with a 95 %
//! interval. Checks: sample-ratio mismatch (chi-square, p < 0.001), minimum sample and duration,
//! guardrails (adverse impact ratio of the challenger's top 5 per protected attribute, and any
//! external guardrail the caller evaluated, e.g. a PromQL query). Verdicts: promote, roll back,
//! keep running, or inconclusive (a human decides). Verdicts are stored write-once with their
//! evidence under `experiments/<model>/<challenger>/<seq>.json`.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hrloop_core::Milestone;
use hrloop_lake::{Lake, Table};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::data::column;
use crate::registry::{Alias, AliasEvent, Registry};
use crate::stats::{bonferroni, chi_square_two_arms, mean_ci, pairs, two_proportion_p, wilson};
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
    /// rolls back, it is the whole budget of the always-valid test: an identical challenger is
    /// promoted or rolled back on it with probability at most `alpha` (promote and harm
    /// together), however many days are looked at. The agreement test only blocks a promotion,
    /// so it spends none of it.
    pub alpha: f64,
    /// A sample-ratio-mismatch p-value below this means assignment is broken.
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
    /// Standard deviation of the true override-rate differences the always-valid test mixes
    /// over (its tau): the size of difference it is most sensitive to.
    pub mixture_sd: f64,
    /// Requisitions each arm needs before the override rate may decide anything.
    pub min_requisitions_per_arm: usize,
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
            mixture_sd: 0.10,
            min_requisitions_per_arm: 10,
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
    pub override_p_value: Option<f64>,
    pub agreement_p_value: Option<f64>,
    pub guardrails: Vec<GuardrailResult>,
    /// Set when a person decided (`hrloop experiments decide`).
    #[serde(default)]
    pub decided_by: Option<String>,
}

/// One served, scored candidate.
#[derive(Debug, Clone)]
struct Served {
    decision_id: String,
    requisition: String,
    candidate: String,
    at: i64,
    arm: String,
    version: String,
    score: f64,
    human: bool,
    shadow_version: Option<String>,
    shadow_score: Option<f64>,
}

#[derive(Debug, Clone)]
struct Feedback {
    decision: String,
    overrides: bool,
    at: i64,
}

fn opt_str(a: &arrow_array::StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

async fn served_since(lake: &Lake, since: i64) -> Result<Vec<Served>> {
    let cols = [
        "decision_id",
        "requisition_id",
        "candidate_id",
        "decided_at",
        "source",
        "arm",
        "model_version",
        "score",
        "route",
        "shadow_version",
        "shadow_score",
    ];
    let mut out = Vec::new();
    for b in &lake.scan(Table::Decisions, Some(&cols)).await?.batches {
        let src = column(b, "source")?.as_string::<i32>();
        let did = column(b, "decision_id")?.as_string::<i32>();
        let req = column(b, "requisition_id")?.as_string::<i32>();
        let cand = column(b, "candidate_id")?.as_string::<i32>();
        let at = column(b, "decided_at")?.as_primitive::<TimestampMicrosecondType>();
        let arm = column(b, "arm")?.as_string::<i32>();
        let ver = column(b, "model_version")?.as_string::<i32>();
        let score = column(b, "score")?.as_primitive::<Float64Type>();
        let route = column(b, "route")?.as_string::<i32>();
        let sv = column(b, "shadow_version")?.as_string::<i32>();
        let ss = column(b, "shadow_score")?.as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            if src.value(i) != "serving" || at.value(i) < since || ver.is_null(i) || score.is_null(i) {
                continue;
            }
            out.push(Served {
                decision_id: did.value(i).to_string(),
                requisition: req.value(i).to_string(),
                candidate: cand.value(i).to_string(),
                at: at.value(i),
                arm: opt_str(arm, i).unwrap_or_else(|| "champion".into()),
                version: ver.value(i).to_string(),
                score: score.value(i),
                human: !route.is_null(i) && route.value(i).starts_with("human"),
                shadow_version: opt_str(sv, i),
                shadow_score: (!ss.is_null(i)).then(|| ss.value(i)),
            });
        }
    }
    Ok(out)
}

async fn feedback(lake: &Lake) -> Result<HashMap<(String, String), Feedback>> {
    let mut out: HashMap<(String, String), Feedback> = HashMap::new();
    let scan = lake
        .scan(Table::Feedback, Some(&["requisition_id", "candidate_id", "decision", "overrides_model", "recorded_at"]))
        .await?;
    for b in &scan.batches {
        let req = column(b, "requisition_id")?.as_string::<i32>();
        let cand = column(b, "candidate_id")?.as_string::<i32>();
        let dec = column(b, "decision")?.as_string::<i32>();
        let ov = column(b, "overrides_model")?.as_boolean();
        let at = column(b, "recorded_at")?.as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let f = Feedback { decision: dec.value(i).to_string(), overrides: ov.value(i), at: at.value(i) };
            // The furthest decision wins: hired over advanced over rejected.
            let rank = |d: &str| match d {
                "hired" => 3,
                "advanced" => 2,
                _ => 1,
            };
            out.entry((req.value(i).to_string(), cand.value(i).to_string()))
                .and_modify(|e| {
                    if rank(&f.decision) > rank(&e.decision) {
                        *e = f.clone();
                    }
                })
                .or_insert(f);
        }
    }
    Ok(out)
}

/// Candidates and their positions as one arm ranked them.
struct ArmView<'a> {
    name: &'a str,
    version: Option<String>,
    /// (row, score used for ranking)
    rows: Vec<(&'a Served, f64)>,
}

fn kpis(view: &ArmView<'_>, fb: &HashMap<(String, String), Feedback>, outcomes: &Outcomes) -> ArmKpis {
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
    ArmKpis {
        arm: view.name.to_string(),
        version: view.version.clone(),
        requisitions: requisitions.len(),
        candidates_scored: view.rows.len(),
        feedback: fb_n,
        agreement_top5: Rate::of(top_agree, top_n),
        override_rate: Rate::of(overrides, fb_n),
        override_variance: crate::stats::cluster_ratio_variance(&clusters.into_values().collect::<Vec<_>>()),
        time_to_shortlist_days: Mean { n: days.len(), value: mean, ci },
        offer_rate: Rate::of(hired, adv),
        human_review_rate: Rate::of(human, view.rows.len()),
        retention,
    }
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
    let mut attrs: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for b in &lake.scan(Table::ProtectedAttributes, Some(&["candidate_id", "attributes"])).await?.batches {
        let cand = column(b, "candidate_id")?.as_string::<i32>();
        let map = column(b, "attributes")?.as_map();
        for i in 0..b.num_rows() {
            let entries = map.value(i);
            let (k, v) = (entries.column(0).as_string::<i32>(), entries.column(1).as_string::<i32>());
            let m = (0..entries.len()).map(|j| (k.value(j).to_string(), v.value(j).to_string())).collect();
            attrs.insert(cand.value(i).to_string(), m);
        }
    }
    let mut by_decision: HashMap<&str, Vec<(&Served, f64)>> = HashMap::new();
    for (r, s) in &view.rows {
        by_decision.entry(r.decision_id.as_str()).or_default().push((r, *s));
    }
    // attribute -> group -> (selected, candidates)
    let mut counts: BTreeMap<String, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
    for rows in by_decision.values_mut() {
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (i, (r, _)) in rows.iter().enumerate() {
            for (attr, group) in attrs.get(&r.candidate).into_iter().flatten() {
                let c = counts.entry(attr.clone()).or_default().entry(group.clone()).or_default();
                c.0 += usize::from(i < 5);
                c.1 += 1;
            }
        }
    }
    let mut out = Vec::new();
    let selected: usize = counts.values().next().map_or(0, |g| g.values().map(|c| c.0).sum());
    if selected < policy.min_selected {
        return Ok(out);
    }
    for (attr, groups) in counts {
        let sized: Vec<(&String, (usize, usize))> =
            groups.iter().filter(|(_, c)| c.1 >= policy.min_group_size).map(|(g, c)| (g, *c)).collect();
        let rate = |c: (usize, usize)| c.0 as f64 / c.1 as f64;
        let lo = sized.iter().min_by(|a, b| rate(a.1).total_cmp(&rate(b.1)));
        let hi = sized.iter().max_by(|a, b| rate(a.1).total_cmp(&rate(b.1)));
        let (Some(lo), Some(hi)) = (lo, hi) else { continue };
        if sized.len() < 2 || rate(hi.1) == 0.0 {
            continue;
        }
        let air = rate(lo.1) / rate(hi.1);
        let p = bonferroni(two_proportion_p(lo.1.0, lo.1.1, hi.1.0, hi.1.1).unwrap_or(1.0), pairs(sized.len()));
        let ok = air >= policy.min_adverse_impact_ratio || p >= policy.fairness_alpha;
        out.push(GuardrailResult {
            name: format!("adverse impact ratio ({attr})"),
            ok,
            inconclusive: false,
            detail: format!(
                "{air:.2} ({} {:.1} % vs {} {:.1} % in the top 5, adjusted p = {p:.3}); needs >= {} unless p >= {}",
                lo.0,
                rate(lo.1) * 100.0,
                hi.0,
                rate(hi.1) * 100.0,
                policy.min_adverse_impact_ratio,
                policy.fairness_alpha
            ),
        });
    }
    Ok(out)
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
    let registry = Registry::new(lake.store().clone());
    let state = registry.state(model).await?;
    let Some(challenger) = state.challenger.clone() else { return Ok(None) };
    let events = registry.events(model).await?;
    let start = started(&events, &challenger).unwrap_or(now);
    let challenger_id = format!("{model}/{challenger}");
    let served = served_since(lake, start.timestamp_micros()).await?;
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
    let champ = kpis(&champion_view, &fb, &outcomes);
    let chall = kpis(&challenger_view, &fb, &outcomes);
    let mut guardrails = fairness_guardrails(lake, &challenger_view, policy).await?;
    guardrails.extend(external);
    let days = (now - start).num_days();
    let Judged { decision, reason, srm, override_p, agreement_p } =
        decide(&champ, &chall, mode == "ab", &guardrails, days, policy);
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
    }))
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
}

/// The decision rule, apart from reading the lake: from both arms' KPIs (`ab`: the split is
/// randomised, so the sample-ratio check applies), the guardrails' results, the days the
/// experiment has run and the policy. [`analyse`] and the calibration simulation
/// ([`crate::experiment_sim`]) both decide through it.
pub fn decide(
    champ: &ArmKpis,
    chall: &ArmKpis,
    ab: bool,
    guardrails: &[GuardrailResult],
    days: i64,
    policy: &Policy,
) -> Judged {
    let srm = if ab {
        chi_square_two_arms(
            [champ.requisitions, chall.requisitions],
            [1.0 - policy.challenger_share, policy.challenger_share],
        )
        .map(|(_, p)| p)
    } else {
        None
    };
    // The override rates are compared with an always-valid test at the requisition level: the
    // mixture likelihood ratio of their difference, with the cluster-robust variance of each
    // arm. Its p-value (1 / ratio) may be looked at every day: the chance that an identical
    // challenger is ever promoted or rolled back on it stays below `alpha` (both directions
    // together), however long the experiment runs.
    let enough =
        champ.requisitions >= policy.min_requisitions_per_arm && chall.requisitions >= policy.min_requisitions_per_arm;
    let override_p = match (chall.override_rate.value, champ.override_rate.value) {
        (Some(a), Some(b)) if enough => chall
            .override_variance
            .zip(champ.override_variance)
            .map(|(va, vb)| (1.0 / crate::stats::mixture_likelihood_ratio(a - b, va + vb, policy.mixture_sd)).min(1.0)),
        _ => None,
    };
    let agreement_p = two_proportion_p(
        chall.agreement_top5.successes,
        chall.agreement_top5.n,
        champ.agreement_top5.successes,
        champ.agreement_top5.n,
    );
    let pct = |r: &Rate| r.value.map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0));
    let (decision, reason) = {
        let failed: Vec<&GuardrailResult> = guardrails.iter().filter(|g| !g.ok && !g.inconclusive).collect();
        let unknown: Vec<&GuardrailResult> = guardrails.iter().filter(|g| g.inconclusive).collect();
        let worse_overrides =
            matches!((chall.override_rate.value, champ.override_rate.value), (Some(a), Some(b)) if a > b);
        let better_overrides =
            matches!((chall.override_rate.value, champ.override_rate.value), (Some(a), Some(b)) if a < b);
        let significant = override_p.is_some_and(|p| p < policy.alpha);
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
        } else if significant && worse_overrides && chall.feedback >= policy.min_feedback_for_harm {
            (
                Decision::Rollback,
                format!(
                    "recruiters override the challenger more often: {} vs {} (always-valid p = {:.3})",
                    pct(&chall.override_rate),
                    pct(&champ.override_rate),
                    override_p.unwrap_or(1.0)
                ),
            )
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
        } else if significant && better_overrides && !agreement_worse {
            (
                Decision::Promote,
                format!(
                    "recruiters override the challenger less often: {} vs {} (always-valid p = {:.3}); agreement with its top 5 {} vs {}; guardrails pass",
                    pct(&chall.override_rate),
                    pct(&champ.override_rate),
                    override_p.unwrap_or(1.0),
                    pct(&chall.agreement_top5),
                    pct(&champ.agreement_top5)
                ),
            )
        } else if days >= policy.max_days {
            (
                Decision::Inconclusive,
                format!(
                    "no significant difference after {days} days (override rate {} vs {}): a person decides with `hrloop experiments decide`",
                    pct(&chall.override_rate),
                    pct(&champ.override_rate)
                ),
            )
        } else {
            (
                Decision::KeepRunning,
                format!(
                    "no significant difference yet (override rate {} vs {}, always-valid p = {:.2})",
                    pct(&chall.override_rate),
                    pct(&champ.override_rate),
                    override_p.unwrap_or(1.0)
                ),
            )
        }
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
    Judged { decision, reason, srm, override_p, agreement_p }
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
        }
    }

    #[test]
    fn the_summary_for_hr_says_what_changed_in_words() {
        let s = plain_summary(&verdict((10, 100), (20, 100)));
        assert!(s.starts_with("The new ranking model (v2) agrees with recruiters 12 % more often"), "{s}");
        assert!(s.contains("overrides 10 % instead of 20 %"), "{s}");
    }
}
