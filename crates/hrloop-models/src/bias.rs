//! The bias audit: selection rates and scoring rates per protected group, with impact ratios,
//! as New York City's Local Law 144 asks of an automated employment decision tool (rules in
//! 6 RCNY §5-300) and as the EU AI Act's bias examination (Article 10(2)(f)) would read them.
//!
//! The unit is an application: one candidate on one requisition, decided by the audited process
//! in the audit's period.
//! - **Selection rate**: the share of decided applications that were selected (advanced or
//!   hired). For rankings hrloop served, the recruiter's feedback decides; a candidate of a
//!   requisition the recruiter decided on, but not decided on themself, was passed over (not
//!   selected). A requisition without any feedback yet is still pending and not counted. For
//!   imported ATS history, the imported decision decides. Withdrawals are no one's selection
//!   and are not counted.
//! - **Scoring rate** (LL144, for tools that score): the share of scored applications scored
//!   above the median score of the audited sample (per tool).
//! - **The model's top k** beside the recruiters' selection, on the same decided applications:
//!   do the recruiters' overrides raise or lower the impact ratio?
//!
//! Each rate is per group of every audited attribute and of every pair of them (sex × race or
//! ethnicity, as the rules require, when those are the attributes recorded). Impact ratio: a
//! group's rate over the highest rate among the groups compared. A group under 2 % of the
//! applications whose attribute is known is reported but left out of the impact ratios, as the
//! rules allow; candidates without the attribute are counted as unknown. The 95 % interval of
//! each impact ratio is cluster-robust over requisitions (the candidates of one requisition
//! share a recruiter, a pool and a job; both groups are counted per requisition so their
//! covariance is kept: [`stats::cluster_log_ratio_contrast_variance`](crate::stats)).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use hrloop_core::{RecruiterDecision, Source};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::decisions as d;
use hrloop_lake::{Lake, Table, collect};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Groups under this share of the applications with a known attribute are left out of the
/// impact ratios (6 RCNY §5-301(d)); their counts are still reported.
pub const SMALL_GROUP_SHARE: f64 = 0.02;

/// The tool name of imported ATS history (the hiring process before hrloop).
pub const IMPORTED: &str = "imported ATS history";

/// Which decisions the audit covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSource {
    /// Rankings hrloop served, with the recruiters' decisions on them.
    Served,
    /// Imported ATS history: the hiring process before (or beside) hrloop.
    Imported,
    All,
}

impl AuditSource {
    fn includes(self, source: Source) -> bool {
        matches!(
            (self, source),
            (AuditSource::All, _) | (AuditSource::Served, Source::Serving) | (AuditSource::Imported, Source::AtsImport)
        )
    }
}

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// Decisions made at or after `from` and before `to`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// A model name (every version of it), one version (`name/vN`), or None for every model.
    pub model: Option<String>,
    pub source: AuditSource,
    /// Protected attributes to audit, as named in the protected-attributes table; empty for
    /// every attribute recorded for the audited candidates.
    pub attributes: Vec<String>,
    /// The model's top k compared with the recruiters' selection.
    pub top_k: usize,
}

/// One application, as the audited process decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// The model name, or [`IMPORTED`].
    pub tool: String,
    pub version: Option<String>,
    pub requisition: String,
    pub candidate: String,
    pub score: Option<f64>,
    /// In the model's top k of the ranking it was served in.
    pub top_k: Option<bool>,
    /// Selected (advanced or hired); None while undecided or withdrawn.
    pub selected: Option<bool>,
}

/// The whole audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BiasAudit {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub source: AuditSource,
    /// The audited attributes, in order.
    pub attributes: Vec<String>,
    pub top_k: usize,
    pub tools: Vec<ToolAudit>,
}

/// The audit of one tool (a model, or the imported history).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolAudit {
    pub tool: String,
    /// The versions that served in the period.
    pub versions: Vec<String>,
    pub applications: usize,
    pub requisitions: usize,
    /// The median score of the scored applications (the scoring rate's threshold).
    pub median_score: Option<f64>,
    /// Selected (advanced or hired) of the decided applications.
    pub selection: RateTable,
    /// Scored above the median, of the scored applications (tools that score).
    pub scoring: Option<RateTable>,
    /// In the model's top k, of the same decided applications as `selection` (served only).
    pub model_top_k: Option<RateTable>,
}

/// One rate per group, for every audited dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateTable {
    /// Applications counted (decided ones for selection, scored ones for scoring).
    pub applications: usize,
    /// The overall rate.
    pub rate: f64,
    pub dimensions: Vec<Dimension>,
}

/// One attribute, or an intersection of attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    /// "gender", or "gender × ethnicity" for an intersection.
    pub name: String,
    pub attributes: Vec<String>,
    /// Applications whose candidate has no recorded value for (one of) the attributes.
    pub unknown: usize,
    pub groups: Vec<GroupRate>,
}

/// One group's rate and impact ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRate {
    /// The group ("female"; "female × hispanic" for an intersection).
    pub group: String,
    pub count: usize,
    /// Selected, or scored above the median, or in the top k.
    pub positive: usize,
    pub rate: f64,
    /// Of the applications whose attribute is known.
    pub share: f64,
    /// The group with the highest rate, which the impact ratios are relative to.
    pub reference: bool,
    /// Under [`SMALL_GROUP_SHARE`]: reported, but left out of the impact ratios.
    pub excluded: bool,
    pub impact_ratio: Option<f64>,
    /// 95 % interval of the impact ratio (none for the reference group, nor an excluded one).
    pub interval: Option<(f64, f64)>,
}

/// Run the audit over the lake: the decisions of the period, the recruiters' feedback and the
/// protected attributes of the audited candidates.
///
/// Query: decisions decided in [from, to) (only the month partitions of the period are read),
/// served rows with a model version and a score (not the challenger's shadow scores) and/or
/// imported rows; feedback, furthest decision per application
/// ([`recruiting::feedback`](crate::recruiting)); protected attributes by a semi-join on the
/// audited candidates. Point in time: rankings and scores as served, decisions as recorded.
pub async fn bias_audit(lake: &Lake, req: &AuditRequest, now: DateTime<Utc>) -> Result<BiasAudit> {
    if req.to <= req.from {
        return Err(Error::Invalid(format!(
            "the audit period is empty: --from {} is not before --to {}",
            req.from.format("%Y-%m-%d"),
            req.to.format("%Y-%m-%d")
        )));
    }
    let pinned = lake.pinned().await?;
    let rows = decided_between(&pinned, req).await?;
    let feedback =
        if req.source == AuditSource::Imported { HashMap::new() } else { crate::recruiting::feedback(&pinned).await? };
    let apps = applications(rows, &feedback, req.top_k);
    let candidates: Vec<&str> =
        apps.iter().map(|a| a.candidate.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    let attrs = crate::data::protected_attributes_of(&pinned, &candidates).await?;
    let attributes = if req.attributes.is_empty() {
        attrs.values().flat_map(|a| a.keys().cloned()).collect::<BTreeSet<_>>().into_iter().collect()
    } else {
        req.attributes.clone()
    };
    let dims = dimensions(&attributes);
    let mut by_tool: BTreeMap<&str, Vec<&Application>> = BTreeMap::new();
    for a in &apps {
        by_tool.entry(&a.tool).or_default().push(a);
    }
    let tools = by_tool.into_iter().map(|(tool, apps)| audit_tool(tool, &apps, &attrs, &dims)).collect();
    Ok(BiasAudit {
        generated_at: now,
        from: req.from,
        to: req.to,
        source: req.source,
        attributes,
        top_k: req.top_k,
        tools,
    })
}

/// The audited dimensions: each attribute, then each pair of attributes (their intersection).
pub fn dimensions(attributes: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = attributes.iter().map(|a| vec![a.clone()]).collect();
    for (i, a) in attributes.iter().enumerate() {
        for b in &attributes[i + 1..] {
            out.push(vec![a.clone(), b.clone()]);
        }
    }
    out
}

/// One tool's audit from its applications (the pure core: no lake).
pub fn audit_tool(
    tool: &str,
    apps: &[&Application],
    attrs: &HashMap<String, BTreeMap<String, String>>,
    dims: &[Vec<String>],
) -> ToolAudit {
    let mut versions: Vec<String> =
        apps.iter().filter_map(|a| a.version.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    // v2 before v10.
    versions.sort_by_key(|v| {
        let number = v.rsplit_once("/v").and_then(|(_, n)| n.parse::<u64>().ok());
        (v.rsplit_once('/').map(|(name, _)| name.to_string()), number, v.clone())
    });
    let requisitions: BTreeSet<&str> = apps.iter().map(|a| a.requisition.as_str()).collect();
    let mut scores: Vec<f64> = apps.iter().filter_map(|a| a.score).collect();
    let median_score = median(&mut scores);
    let selection = rate_table(apps, attrs, dims, |a| a.selected);
    let scoring = median_score.map(|m| rate_table(apps, attrs, dims, |a| a.score.map(|s| s > m)));
    let model_top_k =
        apps.iter().any(|a| a.top_k.is_some()).then(|| rate_table(apps, attrs, dims, |a| a.selected.and(a.top_k)));
    ToolAudit {
        tool: tool.to_string(),
        versions,
        applications: apps.len(),
        requisitions: requisitions.len(),
        median_score,
        selection,
        scoring,
        model_top_k,
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

/// Rates per group of every dimension; `outcome` is None for an application not counted
/// (undecided, unscored), else whether it counts as positive.
pub fn rate_table(
    apps: &[&Application],
    attrs: &HashMap<String, BTreeMap<String, String>>,
    dims: &[Vec<String>],
    outcome: impl Fn(&Application) -> Option<bool>,
) -> RateTable {
    let counted: Vec<(&Application, bool)> = apps.iter().filter_map(|a| outcome(a).map(|o| (*a, o))).collect();
    let positive = counted.iter().filter(|(_, o)| *o).count();
    let dimensions = dims.iter().map(|dim| dimension(&counted, attrs, dim)).collect();
    RateTable {
        applications: counted.len(),
        rate: if counted.is_empty() { 0.0 } else { positive as f64 / counted.len() as f64 },
        dimensions,
    }
}

fn dimension(
    counted: &[(&Application, bool)],
    attrs: &HashMap<String, BTreeMap<String, String>>,
    dim: &[String],
) -> Dimension {
    let requisitions: BTreeMap<&str, usize> = {
        let set: BTreeSet<&str> = counted.iter().map(|(a, _)| a.requisition.as_str()).collect();
        set.into_iter().enumerate().map(|(i, r)| (r, i)).collect()
    };
    // Per group: (y, n) per requisition, aligned on the same requisitions for every group.
    let mut clusters: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut unknown = 0;
    for (a, positive) in counted {
        let values: Option<Vec<&str>> =
            dim.iter().map(|attr| attrs.get(&a.candidate).and_then(|m| m.get(attr)).map(String::as_str)).collect();
        let Some(values) = values else {
            unknown += 1;
            continue;
        };
        let c = clusters.entry(values.join(" × ")).or_insert_with(|| vec![(0.0, 0.0); requisitions.len()]);
        let cell = &mut c[requisitions[a.requisition.as_str()]];
        cell.0 += f64::from(u8::from(*positive));
        cell.1 += 1.0;
    }
    let sums = |c: &[(f64, f64)]| c.iter().fold((0.0, 0.0), |(y, n), r| (y + r.0, n + r.1));
    let known: f64 = clusters.values().map(|c| sums(c).1).sum();
    let included = |n: f64| n / known >= SMALL_GROUP_SHARE;
    let reference = clusters
        .iter()
        .filter(|(_, c)| included(sums(c).1))
        .map(|(g, c)| {
            let (y, n) = sums(c);
            (g, y / n)
        })
        .fold(None::<(&String, f64)>, |best, (g, r)| match best {
            Some((_, b)) if b >= r => best,
            _ => Some((g, r)),
        });
    let shrunk = |y: f64, n: f64| (y + 0.5) / (n + 1.0);
    let groups = clusters
        .iter()
        .map(|(group, c)| {
            let (y, n) = sums(c);
            let rate = y / n;
            let excluded = !included(n);
            let is_reference = reference.is_some_and(|(g, _)| g == group);
            let (impact_ratio, interval) = match reference {
                Some((g, best)) if !excluded && best > 0.0 => {
                    let (ry, rn) = sums(&clusters[g]);
                    let interval = (!is_reference)
                        .then(|| crate::stats::cluster_log_ratio_contrast_variance(c, &clusters[g]))
                        .flatten()
                        .map(|v| {
                            let center = shrunk(y, n).ln() - shrunk(ry, rn).ln();
                            let half = 1.959_963_984_540_054 * v.sqrt();
                            ((center - half).exp(), (center + half).exp())
                        });
                    (Some(rate / best), interval)
                }
                _ => (None, None),
            };
            GroupRate {
                group: group.clone(),
                count: n as usize,
                positive: y as usize,
                rate,
                share: n / known,
                reference: is_reference,
                excluded,
                impact_ratio,
                interval,
            }
        })
        .collect();
    Dimension { name: dim.join(" × "), attributes: dim.to_vec(), unknown, groups }
}

/// One decision row of the period.
#[derive(Debug, Clone)]
pub(crate) struct DecidedRow {
    pub source: Source,
    pub requisition: String,
    pub candidate: String,
    /// Microseconds since the epoch.
    pub at: i64,
    pub ranking: Option<String>,
    pub version: Option<String>,
    pub score: Option<f64>,
    pub decision: Option<RecruiterDecision>,
}

async fn decided_between(lake: &Lake, req: &AuditRequest) -> Result<Vec<DecidedRow>> {
    let served =
        crate::recruiting::ranked_rows().and(col(d::MODEL_VERSION).is_not_null()).and(col(d::SCORE).is_not_null());
    let imported = col(d::SOURCE).eq(lit(Source::AtsImport.as_str()));
    let which = match req.source {
        AuditSource::Served => served,
        AuditSource::Imported => imported,
        AuditSource::All => served.or(imported),
    };
    let df = collect(
        lake.lazy_since(Table::Decisions, req.from)
            .await?
            .filter(col(d::DECIDED_AT).cast(DataType::Int64).lt(lit(req.to.timestamp_micros())).and(which))
            .select([
                col(d::SOURCE),
                col(d::REQUISITION_ID),
                col(d::CANDIDATE_ID),
                col(d::DECIDED_AT).cast(DataType::Int64),
                col(d::DECISION_ID),
                col(d::MODEL_VERSION),
                col(d::SCORE),
                col(d::DECISION),
            ]),
    )
    .await?;
    let text = |name: &str| -> Result<&StringChunked> { Ok(df.column(name)?.str()?) };
    let (src, req_id, cand, did, ver, dec) = (
        text(d::SOURCE)?,
        text(d::REQUISITION_ID)?,
        text(d::CANDIDATE_ID)?,
        text(d::DECISION_ID)?,
        text(d::MODEL_VERSION)?,
        text(d::DECISION)?,
    );
    let (at, score) = (df.column(d::DECIDED_AT)?.i64()?, df.column(d::SCORE)?.f64()?);
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(s), Some(r), Some(c), Some(t)) = (src.get(i), req_id.get(i), cand.get(i), at.get(i)) else {
            return Err(Error::Data(format!("decision row {i} of the audit period: a required column is empty")));
        };
        let source: Source =
            s.parse().map_err(|e| Error::Data(format!("decision row {i} of the audit period: {e}")))?;
        let decision = match dec.get(i) {
            Some(x) => Some(
                x.parse::<RecruiterDecision>()
                    .map_err(|e| Error::Data(format!("decision row {i} of the audit period: {e}")))?,
            ),
            None => None,
        };
        out.push(DecidedRow {
            source,
            requisition: r.to_string(),
            candidate: c.to_string(),
            at: t,
            ranking: did.get(i).map(str::to_string),
            version: ver.get(i).map(str::to_string),
            score: score.get(i),
            decision,
        });
    }
    out.retain(|r| req.source.includes(r.source) && wanted(req, r));
    Ok(out)
}

fn wanted(req: &AuditRequest, row: &DecidedRow) -> bool {
    match (&req.model, row.source) {
        // A name (every version), or one version "name/vN".
        (Some(m), Source::Serving) => {
            row.version.as_deref().is_some_and(|v| v == m || v.split_once('/').is_some_and(|(n, _)| n == m))
        }
        _ => true,
    }
}

/// Applications from the period's decision rows (in commit order) and the feedback (furthest
/// decision per requisition and candidate): one per tool, requisition and candidate, the last
/// row of it in the period. A served row's top-k place is its place in the ranking it was
/// served in (by score, shadow rows excluded).
pub(crate) fn applications(
    rows: Vec<DecidedRow>,
    feedback: &HashMap<(String, String), crate::recruiting::Feedback>,
    top_k: usize,
) -> Vec<Application> {
    // Places in each served ranking.
    let mut rankings: HashMap<&str, Vec<(f64, usize)>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let (Source::Serving, Some(id), Some(s)) = (r.source, r.ranking.as_deref(), r.score) {
            rankings.entry(id).or_default().push((s, i));
        }
    }
    let mut in_top = vec![false; rows.len()];
    for ranked in rankings.values_mut() {
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, i) in ranked.iter().take(top_k) {
            in_top[*i] = true;
        }
    }
    let decided_requisitions: BTreeSet<&str> = feedback.keys().map(|(r, _)| r.as_str()).collect();
    // The last row per (tool, requisition, candidate); imported rows of one application keep
    // the furthest decision.
    let mut apps: BTreeMap<(String, String, String), (i64, Application)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let tool = match r.source {
            Source::Serving => {
                r.version.as_deref().and_then(|v| v.split_once('/')).map_or("unknown model", |(n, _)| n).to_string()
            }
            Source::AtsImport => IMPORTED.to_string(),
        };
        let selected = match r.source {
            Source::Serving => match feedback.get(&(r.requisition.clone(), r.candidate.clone())) {
                Some(f) => selection(f.decision.parse().ok()),
                None => decided_requisitions.contains(r.requisition.as_str()).then_some(false),
            },
            Source::AtsImport => selection(r.decision),
        };
        let app = Application {
            tool: tool.clone(),
            version: r.version.clone(),
            requisition: r.requisition.clone(),
            candidate: r.candidate.clone(),
            score: r.score,
            top_k: (r.source == Source::Serving).then_some(in_top[i]),
            selected,
        };
        let key = (tool, r.requisition.clone(), r.candidate.clone());
        match apps.get_mut(&key) {
            Some((_, prev)) if r.source == Source::AtsImport => {
                prev.selected = match (prev.selected, app.selected) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    _ => None,
                };
            }
            Some((at, prev)) if r.at >= *at => {
                (*at, *prev) = (r.at, app);
            }
            Some(_) => {}
            None => {
                apps.insert(key, (r.at, app));
            }
        }
    }
    apps.into_values().map(|(_, a)| a).collect()
}

/// Selected (advanced or hired), not selected (rejected), or not a selection (withdrawn, none).
fn selection(decision: Option<RecruiterDecision>) -> Option<bool> {
    match decision? {
        RecruiterDecision::Advanced | RecruiterDecision::Hired => Some(true),
        RecruiterDecision::Rejected => Some(false),
        RecruiterDecision::Withdrawn => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, write};
    use RecruiterDecision::{Advanced, Hired, Rejected, Withdrawn};
    use hrloop_core::{Arm, Route};
    use hrloop_lake::rows::decisions::DecisionRow;
    use hrloop_lake::rows::feedback::FeedbackRow;
    use hrloop_lake::rows::protected_attributes::ProtectedAttributesRow;

    fn served(req: &str, ranking: &str, cand: &str, version: &str, arm: Arm, score: f64, when: i64) -> DecisionRow {
        DecisionRow {
            requisition_id: req.into(),
            candidate_id: cand.into(),
            job_family: "sales".into(),
            decided_at: at(when),
            source: Source::Serving,
            stage_reached: None,
            decision: None,
            skills: None,
            features: Some(vec![("x".into(), 1.0)]),
            decision_id: Some(ranking.into()),
            model_version: Some(version.into()),
            arm: Some(arm),
            score: Some(score),
            route: Some(Route::Auto),
            shadow_version: None,
            shadow_score: None,
        }
    }

    fn imported(req: &str, cand: &str, decision: RecruiterDecision, when: i64) -> DecisionRow {
        DecisionRow {
            source: Source::AtsImport,
            decision: Some(decision),
            decision_id: None,
            model_version: None,
            arm: None,
            score: None,
            route: None,
            features: None,
            ..served(req, "", cand, "", Arm::Champion, 0.0, when)
        }
    }

    fn fb(req: &str, cand: &str, decision: RecruiterDecision) -> FeedbackRow {
        FeedbackRow {
            requisition_id: req.into(),
            candidate_id: cand.into(),
            recruiter_id: Some("rec-1".into()),
            decision,
            overrides_model: false,
            reason_code: None,
            reason_text: None,
            recorded_at: at(30),
        }
    }

    fn person(cand: &str, gender: &str, ethnicity: &str) -> ProtectedAttributesRow {
        ProtectedAttributesRow {
            candidate_id: cand.into(),
            attributes: vec![("gender".into(), gender.into()), ("ethnicity".into(), ethnicity.into())],
            recorded_at: at(0).date_naive(),
        }
    }

    fn group<'a>(t: &'a RateTable, dim: &str, g: &str) -> &'a GroupRate {
        let d = t.dimensions.iter().find(|d| d.name == dim).unwrap_or_else(|| panic!("no dimension {dim}: {t:#?}"));
        d.groups.iter().find(|x| x.group == g).unwrap_or_else(|| panic!("no group {g} in {dim}: {d:#?}"))
    }

    fn unknown(t: &RateTable, dim: &str) -> usize {
        t.dimensions.iter().find(|d| d.name == dim).unwrap().unknown
    }

    /// Every rate of a small fixture, computed by hand (the comments show the sums).
    #[tokio::test]
    async fn rates_and_impact_ratios_match_a_hand_computation() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let c = Arm::Champion;
        write(
            &lake,
            "d1",
            &[
                // R1, ranked a > b > c > d.
                served("R1", "d1", "a", "m/v1", c, 0.9, 0),
                served("R1", "d1", "b", "m/v1", c, 0.8, 0),
                served("R1", "d1", "c", "m/v1", c, 0.7, 0),
                served("R1", "d1", "d", "m/v1", Arm::Challenger, 0.6, 0),
                // The challenger's shadow scores: no one was ranked by them.
                served("R1", "d1s", "a", "m/v2", Arm::Shadow, 0.01, 0),
                served("R1", "d1s", "d", "m/v2", Arm::Shadow, 0.99, 0),
                // R2, ranked e > f > g > h.
                served("R2", "d2", "e", "m/v2", c, 0.5, 1),
                served("R2", "d2", "f", "m/v2", c, 0.4, 1),
                served("R2", "d2", "g", "m/v2", c, 0.3, 1),
                served("R2", "d2", "h", "m/v2", c, 0.2, 1),
                // R3: no recruiter decision yet (scored, not selected or passed over).
                served("R3", "d3", "i", "m/v2", c, 0.95, 2),
                served("R3", "d3", "j", "m/v2", c, 0.1, 2),
                // Another model, and a ranking after the period.
                served("R9", "d9", "a", "other/v1", c, 0.5, 2),
                served("R4", "d4", "a", "m/v2", c, 0.5, 24 * 40),
                // Imported history: m rejected at first, hired later; n withdrew.
                imported("R5", "k", Advanced, 3),
                imported("R5", "l", Rejected, 3),
                imported("R5", "m", Rejected, 3),
                imported("R5", "m", Hired, 4),
                imported("R5", "n", Withdrawn, 4),
            ],
        )
        .await;
        write(
            &lake,
            "f1",
            &[
                fb("R1", "a", Rejected),
                fb("R1", "b", Advanced),
                fb("R1", "c", Advanced),
                fb("R2", "e", Hired),
                fb("R2", "f", Rejected),
                fb("R2", "g", Rejected),
                fb("R2", "h", Withdrawn),
            ],
        )
        .await;
        write(
            &lake,
            "p1",
            &[
                person("a", "F", "x"),
                person("b", "M", "y"),
                person("c", "F", "y"),
                person("d", "M", "x"),
                person("e", "F", "x"),
                person("f", "M", "y"),
                // g: nothing recorded.
                person("h", "M", "x"),
                person("i", "F", "y"),
                person("j", "M", "y"),
                person("k", "F", "x"),
                person("l", "M", "x"),
                person("m", "F", "y"),
            ],
        )
        .await;
        let req = AuditRequest {
            from: at(-1),
            to: at(24 * 30),
            model: Some("m".into()),
            source: AuditSource::All,
            attributes: vec![],
            top_k: 2,
        };
        let audit = bias_audit(&lake, &req, at(24 * 60)).await.unwrap();
        assert_eq!(audit.attributes, ["ethnicity", "gender"], "every recorded attribute, sorted");
        let tools: Vec<&str> = audit.tools.iter().map(|t| t.tool.as_str()).collect();
        assert_eq!(tools, [IMPORTED, "m"], "the other model is not audited");
        let m = &audit.tools[1];
        assert_eq!((m.applications, m.requisitions), (10, 3));
        assert_eq!(m.versions, ["m/v1", "m/v2"]);

        // Selection: decided = a b c d (R1; d passed over) e f g (R2; h withdrew) = 7, 3 chosen.
        let s = &m.selection;
        assert_eq!((s.applications, s.rate), (7, 3.0 / 7.0));
        let (f, male) = (group(s, "gender", "F"), group(s, "gender", "M"));
        assert_eq!((f.count, f.positive, f.rate), (3, 2, 2.0 / 3.0), "a c e");
        assert_eq!((male.count, male.positive, male.rate), (3, 1, 1.0 / 3.0), "b d f");
        assert!(f.reference && !male.reference);
        assert_eq!((f.impact_ratio, male.impact_ratio), (Some(1.0), Some(0.5)));
        assert_eq!(unknown(s, "gender"), 1, "g");
        let (lo, hi) = male.interval.unwrap();
        assert!(lo < 0.5 && hi > 1.0, "three requisitions cannot tell: {lo}..{hi}");
        assert_eq!(f.interval, None, "the reference has no interval");
        assert_eq!(group(s, "ethnicity", "x").impact_ratio, Some(0.5), "a d e: 1/3 against b c f: 2/3");
        // Intersection: F×x a e 1/2, F×y c 1/1, M×x d 0/1, M×y b f 1/2.
        let fy = group(s, "ethnicity × gender", "y × F");
        assert!(fy.reference && fy.rate == 1.0);
        assert_eq!(group(s, "ethnicity × gender", "x × F").impact_ratio, Some(0.5));
        assert_eq!(group(s, "ethnicity × gender", "x × M").impact_ratio, Some(0.0));
        assert_eq!(group(s, "ethnicity × gender", "y × M").impact_ratio, Some(0.5));

        // The model's top 2 of the same decided applications: a b (R1), e f (R2).
        let top = m.model_top_k.as_ref().unwrap();
        assert_eq!((top.applications, top.rate), (7, 4.0 / 7.0));
        assert_eq!(group(top, "gender", "F").rate, 2.0 / 3.0, "a e of a c e");
        assert_eq!(group(top, "gender", "M").impact_ratio, Some(1.0), "b f of b d f");

        // Scoring: ten scored, median (0.5 + 0.6) / 2; above it a b c d i.
        assert_eq!(m.median_score, Some(0.55));
        let sc = m.scoring.as_ref().unwrap();
        assert_eq!((sc.applications, sc.rate), (10, 0.5));
        assert_eq!(group(sc, "gender", "F").rate, 0.75, "a c i of a c e i");
        assert_eq!(group(sc, "gender", "M").rate, 0.4, "b d of b d f h j");
        assert_eq!(group(sc, "gender", "M").impact_ratio, Some(0.4 / 0.75));

        // Imported: k m selected (m's later decision), l not, n withdrew; no scores.
        let imp = &audit.tools[0];
        assert_eq!((imp.selection.applications, imp.selection.rate), (3, 2.0 / 3.0));
        assert_eq!(group(&imp.selection, "gender", "M").impact_ratio, Some(0.0));
        assert!(imp.scoring.is_none() && imp.model_top_k.is_none());

        // Served only, one attribute asked for.
        let served_only =
            AuditRequest { source: AuditSource::Served, attributes: vec!["gender".into()], ..req.clone() };
        let audit = bias_audit(&lake, &served_only, at(24 * 60)).await.unwrap();
        assert_eq!(audit.tools.len(), 1);
        assert_eq!(audit.tools[0].selection.dimensions.len(), 1, "no intersection of one attribute");
        // One version: R1's four candidates, as v1 served them.
        let v1 = AuditRequest { model: Some("m/v1".into()), source: AuditSource::Served, ..req.clone() };
        let audit = bias_audit(&lake, &v1, at(24 * 60)).await.unwrap();
        assert_eq!((audit.tools[0].applications, &audit.tools[0].versions[..]), (4, &["m/v1".to_string()][..]));
        let empty = AuditRequest { to: req.from, ..req };
        assert!(bias_audit(&lake, &empty, at(0)).await.unwrap_err().to_string().contains("period is empty"));
    }

    /// A group under 2 % of the known applications is counted, but neither compared nor the
    /// reference, however high its rate.
    #[test]
    fn small_groups_are_reported_not_compared() {
        let app = |i: usize, selected: bool| Application {
            tool: "m".into(),
            version: None,
            requisition: format!("R{}", i / 6),
            candidate: format!("c{i}"),
            score: None,
            top_k: None,
            selected: Some(selected),
        };
        let mut apps: Vec<Application> = (0..120).map(|i| app(i, i % 2 == 0)).collect();
        apps.push(app(999, true));
        let mut attrs = HashMap::new();
        for a in &apps {
            let g = if a.candidate == "c999" {
                "B"
            } else if a.candidate[1..].parse::<usize>().unwrap() % 6 == 1 {
                "C"
            } else {
                "A"
            };
            attrs.insert(a.candidate.clone(), BTreeMap::from([("group".to_string(), g.to_string())]));
        }
        let refs: Vec<&Application> = apps.iter().collect();
        let t = rate_table(&refs, &attrs, &dimensions(&["group".into()]), |a| a.selected);
        let b = group(&t, "group", "B");
        assert!(b.excluded && !b.reference && b.impact_ratio.is_none() && b.rate == 1.0, "{b:?}");
        assert_eq!(b.count, 1);
        assert!(group(&t, "group", "A").reference);
        let c = group(&t, "group", "C");
        assert_eq!((c.count, c.positive), (20, 0), "one per requisition, odd, never selected");
        assert_eq!(c.impact_ratio, Some(0.0));
        let (lo, hi) = c.interval.unwrap();
        assert!(lo > 0.0 && hi < 1.0, "none of 20 selected is clearly below parity: {lo}..{hi}");
    }
}
