//! The technical documentation of one model version, under the headings of the EU AI Act's
//! Annex IV (recruitment and candidate ranking are high-risk, Annex III point 4): everything
//! the store knows about the version, gathered in one [`ModelDocumentation`] for
//! `hrloop report model NAME/vN`.
//!
//! Filled from data: the model card (training data snapshot, rows, label, exclusions, metrics,
//! fairness, gates), the period the version served (its alias events), human oversight over
//! that period (routing to people, overrides and their reasons, per-recruiter reliance on the
//! model), record-keeping (Art. 12), post-market monitoring month by month (Art. 72), the bias
//! audit of its served rankings by group and intersection, the newest re-judgement, and the
//! verdicts, alias events and changelog entries naming it. What only a person can write (the
//! intended purpose beyond the spec's description, foreseeable misuse, the risk management
//! system, alerts fired in Alertmanager) is listed as such.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use hrloop_core::{RecruiterDecision, Route};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::decisions as d;
use hrloop_lake::{Lake, Table, collect};
use serde::{Deserialize, Serialize};

use crate::bias::{AuditRequest, AuditSource, ToolAudit, bias_audit};
use crate::experiment::Verdict;
use crate::record_keeping::{LoggingReport, logging_completeness};
use crate::registry::{AliasEvent, ChangelogEntry};
use crate::rejudge::Rejudgement;
use crate::{Error, ModelCard, Registry, Result};

/// A recruiter who accepts the model's ranking this often, over at least
/// [`RELIANCE_MIN_REQUISITIONS`] requisitions, may be relying on it without judging
/// (automation bias, Art. 14(4)(b)).
pub const RELIANCE_FLAG: f64 = 0.95;
pub const RELIANCE_MIN_REQUISITIONS: usize = 20;

/// Everything documented about one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelDocumentation {
    pub generated_at: DateTime<Utc>,
    pub name: String,
    pub version: String,
    pub card: ModelCard,
    /// The holdout AUC's 95 % interval (Hanley–McNeil), where the card keeps holdout positives.
    pub auc_interval: Option<(f64, f64)>,
    /// When the version served (champion or challenger); None if it never did.
    pub served_from: Option<DateTime<Utc>>,
    /// When it stopped; None while it still serves.
    pub served_to: Option<DateTime<Utc>>,
    pub oversight: Oversight,
    pub monthly: Vec<MonthKpis>,
    /// The bias audit of its served rankings (None if it never served).
    pub bias: Option<ToolAudit>,
    /// Record-keeping over the last 30 days (every served ranking, all versions).
    pub logging: LoggingReport,
    pub rejudgement: Option<Rejudgement>,
    pub verdicts: Vec<Verdict>,
    pub events: Vec<AliasEvent>,
    pub changelog: Vec<ChangelogEntry>,
    pub calibrations: Vec<crate::calibrate::Calibration>,
}

/// Human oversight (Art. 14) over the period the version served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Oversight {
    pub rankings: usize,
    pub candidates: usize,
    /// Ranked candidates routed to a person, by reason (`human:low_confidence`, ...).
    pub routed: BTreeMap<String, usize>,
    pub human_share: Option<f64>,
    /// Recruiter decisions on its candidates.
    pub feedback: usize,
    pub overrides: usize,
    pub override_rate: Option<f64>,
    /// Reason codes of the overrides ("none given" where there was none).
    pub reasons: BTreeMap<String, usize>,
    /// Per recruiter pseudonym: how often they took the model's ranking unchanged.
    pub recruiters: Vec<Reliance>,
}

/// One recruiter's reliance on the model: of the requisitions they decided, those without any
/// override (the model's top 5 accepted as ranked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reliance {
    pub recruiter: String,
    pub requisitions: usize,
    pub unchanged: usize,
    pub share: f64,
    /// At or above [`RELIANCE_FLAG`] over at least [`RELIANCE_MIN_REQUISITIONS`].
    pub flagged: bool,
}

/// One calendar month of the version's service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthKpis {
    /// YYYY-MM.
    pub month: String,
    pub rankings: usize,
    pub candidates: usize,
    pub human_share: f64,
    pub feedback: usize,
    pub override_rate: Option<f64>,
}

/// The period `version` served: from the first event that made it champion or challenger to
/// the event after which it held neither alias (None while it still holds one). A version
/// promoted from challenger to champion serves on.
pub fn served_period(events: &[AliasEvent], version: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let (mut start, mut end) = (None, None);
    for e in events {
        let alias = format!("{:?}", e.alias);
        match &e.to_version {
            Some(v) => held.insert(alias, v.clone()),
            None => held.remove(&alias),
        };
        let holds = held.values().any(|v| v == version);
        if holds {
            start = start.or(Some(e.at));
            end = None;
        } else if start.is_some() && end.is_none() {
            end = Some(e.at);
        }
    }
    (start, end)
}

/// Gather the documentation of `name/version`.
///
/// Queries: the card, alias events, changelog, calibrations and verdicts from the registry and
/// `reports/`; decisions where model_version = `name/version` and source = serving (not shadow),
/// in its serving period (those month partitions only); the feedback table (furthest decision
/// per application); the bias audit and the record-keeping check (see their modules).
pub async fn document(
    lake: &Lake,
    registry: &Registry,
    name: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Result<ModelDocumentation> {
    let card = registry.card(name, version).await?;
    let id = format!("{name}/{version}");
    let events = registry.events(name).await?;
    let (served_from, served_to) = served_period(&events, version);
    let lake = &lake.pinned().await?;
    let (oversight, monthly) = match served_from {
        Some(from) => oversight(lake, &id, from, served_to.unwrap_or(now)).await?,
        None => (Oversight::default(), Vec::new()),
    };
    let bias = match served_from {
        Some(from) => {
            let req = AuditRequest {
                from,
                to: served_to.unwrap_or(now),
                model: Some(id.clone()),
                source: AuditSource::Served,
                attributes: card.spec.fairness.attributes.clone(),
                top_k: card.spec.fairness.top_k,
            };
            bias_audit(lake, &req, now).await?.tools.into_iter().next()
        }
        None => None,
    };
    let negatives = card.rows.positives_holdout.map(|p| card.rows.holdout.saturating_sub(p));
    let auc_interval = match (card.metrics.roc_auc, card.rows.positives_holdout, negatives) {
        (Some(auc), Some(p), Some(n)) => crate::stats::auc_interval(auc, p, n),
        _ => None,
    };
    let verdicts = crate::experiment::verdicts(lake, name, None)
        .await?
        .into_iter()
        .filter(|v| v.challenger == version || v.champion.as_deref() == Some(version))
        .collect();
    let changelog = registry
        .changelog(name)
        .await?
        .into_iter()
        .filter(|c| c.to_version.as_deref() == Some(version) || c.from_version.as_deref() == Some(version))
        .collect();
    Ok(ModelDocumentation {
        generated_at: now,
        name: name.to_string(),
        version: version.to_string(),
        auc_interval,
        served_from,
        served_to,
        oversight,
        monthly,
        bias,
        logging: logging_completeness(lake, registry, now, 30).await?,
        rejudgement: crate::rejudge::latest(lake, name).await?,
        verdicts,
        events: events
            .into_iter()
            .filter(|e| e.to_version.as_deref() == Some(version) || e.from_version.as_deref() == Some(version))
            .collect(),
        changelog,
        calibrations: registry.calibrations(name, version).await?,
        card,
    })
}

/// One served candidate row of the version.
struct Row {
    ranking: String,
    requisition: String,
    candidate: String,
    month: String,
    route: Option<String>,
}

async fn oversight(
    lake: &Lake,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Oversight, Vec<MonthKpis>)> {
    let df = collect(
        lake.lazy_since(Table::Decisions, from)
            .await?
            .filter(
                crate::recruiting::ranked_rows()
                    .and(col(d::MODEL_VERSION).eq(lit(id)))
                    .and(col(d::DECIDED_AT).cast(DataType::Int64).lt(lit(to.timestamp_micros()))),
            )
            .select([
                col(d::DECISION_ID),
                col(d::REQUISITION_ID),
                col(d::CANDIDATE_ID),
                col(d::DECIDED_AT).cast(DataType::Int64),
                col(d::ROUTE),
            ]),
    )
    .await?;
    let text = |name: &str| -> Result<&StringChunked> { Ok(df.column(name)?.str()?) };
    let (ids, reqs, cands, routes) =
        (text(d::DECISION_ID)?, text(d::REQUISITION_ID)?, text(d::CANDIDATE_ID)?, text(d::ROUTE)?);
    let at = df.column(d::DECIDED_AT)?.i64()?;
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(r), Some(c), Some(t)) = (reqs.get(i), cands.get(i), at.get(i)) else {
            return Err(Error::Data(format!("served decision row {i} of {id}: a required column is empty")));
        };
        let when = DateTime::from_timestamp_micros(t).unwrap_or(from);
        rows.push(Row {
            ranking: ids.get(i).unwrap_or(r).to_string(),
            requisition: r.to_string(),
            candidate: c.to_string(),
            month: format!("{:04}-{:02}", when.year(), when.month()),
            route: routes.get(i).map(str::to_string),
        });
    }
    let feedback = crate::recruiting::feedback(lake).await?;
    Ok(summarise(&rows, &feedback))
}

fn summarise(
    rows: &[Row],
    feedback: &std::collections::HashMap<(String, String), crate::recruiting::Feedback>,
) -> (Oversight, Vec<MonthKpis>) {
    let mut o = Oversight { candidates: rows.len(), ..Oversight::default() };
    let human = |r: &Row| r.route.as_deref().is_some_and(|x| x.starts_with(Route::HUMAN_PREFIX));
    o.rankings = rows.iter().map(|r| r.ranking.as_str()).collect::<BTreeSet<_>>().len();
    for r in rows.iter().filter(|r| human(r)) {
        *o.routed.entry(r.route.clone().unwrap_or_default()).or_default() += 1;
    }
    o.human_share = (!rows.is_empty()).then(|| o.routed.values().sum::<usize>() as f64 / rows.len() as f64);
    // Feedback once per application; per recruiter, the requisitions decided and overridden.
    let mut seen = BTreeSet::new();
    let mut by_recruiter: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    let mut per_month: BTreeMap<&str, (BTreeSet<&str>, usize, usize, usize, usize)> = BTreeMap::new();
    for r in rows {
        let m = per_month.entry(&r.month).or_default();
        m.0.insert(&r.ranking);
        m.1 += 1;
        m.2 += usize::from(human(r));
        if !seen.insert((r.requisition.as_str(), r.candidate.as_str())) {
            continue;
        }
        let Some(fb) = feedback.get(&(r.requisition.clone(), r.candidate.clone())) else { continue };
        if fb.decision == RecruiterDecision::Withdrawn.as_str() {
            continue;
        }
        o.feedback += 1;
        m.3 += 1;
        if fb.overrides {
            o.overrides += 1;
            m.4 += 1;
            *o.reasons.entry(fb.reason.clone().unwrap_or_else(|| "none given".into())).or_default() += 1;
        }
        if let Some(who) = fb.recruiter.as_deref() {
            *by_recruiter.entry(who).or_default().entry(&r.requisition).or_default() |= fb.overrides;
        }
    }
    o.override_rate = (o.feedback > 0).then(|| o.overrides as f64 / o.feedback as f64);
    o.recruiters = by_recruiter
        .into_iter()
        .map(|(who, reqs)| {
            let unchanged = reqs.values().filter(|overrode| !**overrode).count();
            let share = unchanged as f64 / reqs.len() as f64;
            Reliance {
                recruiter: who.to_string(),
                requisitions: reqs.len(),
                unchanged,
                share,
                flagged: share >= RELIANCE_FLAG && reqs.len() >= RELIANCE_MIN_REQUISITIONS,
            }
        })
        .collect();
    let monthly = per_month
        .into_iter()
        .map(|(month, (rankings, candidates, human, feedback, overrides))| MonthKpis {
            month: month.to_string(),
            rankings: rankings.len(),
            candidates,
            human_share: human as f64 / candidates.max(1) as f64,
            feedback,
            override_rate: (feedback > 0).then(|| overrides as f64 / feedback as f64),
        })
        .collect();
    (o, monthly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recruiting::Feedback;
    use crate::registry::{Action, Alias};
    use crate::testing::at;

    fn event(seq: u64, alias: Alias, from: Option<&str>, to: Option<&str>, h: i64) -> AliasEvent {
        AliasEvent {
            seq,
            name: "m".into(),
            alias,
            action: Action::Promote,
            from_version: from.map(str::to_string),
            to_version: to.map(str::to_string),
            actor: "t".into(),
            at: at(h),
            reason: "r".into(),
            evidence: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_serving_period_runs_from_its_alias_until_the_alias_moves_on() {
        let events = vec![
            event(1, Alias::Champion, None, Some("v1"), 0),
            event(2, Alias::Challenger, None, Some("v2"), 10),
            event(3, Alias::Champion, Some("v1"), Some("v2"), 20),
            event(4, Alias::Challenger, Some("v2"), None, 20),
        ];
        assert_eq!(served_period(&events, "v1"), (Some(at(0)), Some(at(20))));
        assert_eq!(served_period(&events, "v2"), (Some(at(10)), None), "challenger, then champion: still serving");
        assert_eq!(served_period(&events, "v3"), (None, None));
    }

    #[test]
    fn oversight_counts_routes_overrides_reasons_and_reliance() {
        let row = |ranking: &str, req: &str, cand: &str, month: &str, route: &str| Row {
            ranking: ranking.into(),
            requisition: req.into(),
            candidate: cand.into(),
            month: month.into(),
            route: Some(route.into()),
        };
        let rows = vec![
            row("d1", "R1", "a", "2026-01", "auto"),
            row("d1", "R1", "b", "2026-01", "human:low_confidence"),
            row("d2", "R2", "c", "2026-02", "auto"),
            row("d2", "R2", "d", "2026-02", "auto"),
            // A re-ranking of R2: its candidates are decided once.
            row("d3", "R2", "c", "2026-02", "auto"),
        ];
        let fb = |decision: &str, overrides: bool, reason: Option<&str>| Feedback {
            decision: decision.into(),
            overrides,
            at: 0,
            recruiter: Some("rec-1".into()),
            reason: reason.map(str::to_string),
        };
        let feedback = [
            (("R1".to_string(), "a".to_string()), fb("rejected", true, Some("communication"))),
            (("R1".to_string(), "b".to_string()), fb("advanced", true, None)),
            (("R2".to_string(), "c".to_string()), fb("advanced", false, None)),
            (("R2".to_string(), "d".to_string()), fb("withdrawn", false, None)),
        ]
        .into_iter()
        .collect();
        let (o, monthly) = summarise(&rows, &feedback);
        assert_eq!((o.rankings, o.candidates), (3, 5));
        assert_eq!(o.routed["human:low_confidence"], 1);
        assert_eq!(o.human_share, Some(0.2));
        assert_eq!((o.feedback, o.overrides), (3, 2), "withdrawals are not decisions");
        assert_eq!(o.reasons["communication"], 1);
        assert_eq!(o.reasons["none given"], 1);
        let r = &o.recruiters[0];
        assert_eq!((r.requisitions, r.unchanged, r.flagged), (2, 1, false), "R1 overridden, R2 as ranked");
        assert_eq!(monthly.len(), 2);
        assert_eq!((monthly[0].rankings, monthly[0].override_rate), (1, Some(1.0)));
        assert_eq!((monthly[1].rankings, monthly[1].candidates, monthly[1].override_rate), (2, 3, Some(0.0)));
    }
}
