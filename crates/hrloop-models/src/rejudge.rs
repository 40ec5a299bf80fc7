//! Re-judging with matured outcomes: proxy KPIs decide experiments within weeks, but whether a
//! promotion was right is only known when the 3/6/12/24-month outcomes of the hires it made
//! arrive. For every version that ranked candidates who were hired, the share of its hires who
//! met the model's label (e.g. employed with rating >= 3 at 6 months); for shadow pairs (both
//! versions scored the same candidates), each version's ROC AUC on those hires' outcomes. The
//! current champion is flagged when its hires do significantly worse than the previous
//! champion's.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hrloop_core::{Arm, Milestone, Source};
use hrloop_lake::polars::prelude::*;
use hrloop_lake::rows::decisions as d;
use hrloop_lake::{Lake, Table, collect};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::data::{LakeData, ROW, only_hired};
use crate::metrics::roc_auc;
use crate::registry::Registry;
use crate::spec::Label;
use crate::stats::{two_proportion_p, wilson};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionOutcome {
    pub version: String,
    /// Hires ranked by this version whose label is known.
    pub hires: usize,
    pub successes: usize,
    pub success_rate: Option<f64>,
    pub ci: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowPair {
    pub served: String,
    pub shadow: String,
    pub hires: usize,
    pub auc_served: Option<f64>,
    pub auc_shadow: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejudgement {
    pub seq: u64,
    pub model: String,
    pub at: DateTime<Utc>,
    pub milestone: Milestone,
    pub versions: Vec<VersionOutcome>,
    pub shadow_pairs: Vec<ShadowPair>,
    pub champion: Option<String>,
    pub previous_champion: Option<String>,
    /// The champion's hires do significantly worse than the previous champion's.
    pub champion_worse: bool,
    pub p_value: Option<f64>,
    /// In a sentence.
    pub finding: String,
}

/// The version that ranked a candidate, its score, and the shadow version's score if one ran.
type Ranked = (String, f64, Option<(String, f64)>);

/// A hire scored by both versions of a shadow pair: (served score, shadow score, label).
type PairedHire = (f64, f64, bool);

/// Whether a hire met the label, if that is known yet.
fn label_of(reported: Option<&crate::data::Reported>, label: &Label) -> Option<bool> {
    let r = reported?;
    if let Some((employed, rating)) = r.get(&label.milestone) {
        let ok =
            (!label.require_employed || *employed) && label.min_rating.is_none_or(|m| rating.is_some_and(|x| x >= m));
        return Some(ok && *employed);
    }
    // Reported gone at an earlier milestone: a failure, known before the milestone.
    if r.iter().any(|(m, (employed, _))| m.months() < label.milestone.months() && !employed) {
        return Some(false);
    }
    None
}

/// Which version of a model ranked each hire, its score, and the shadow version's score.
///
/// Join: decisions (rows hrloop served for this model) ⋈ hires on (requisition, candidate), so
/// what is kept follows the hires. Point in time: the score is the one served when the
/// candidate was ranked. A shadow row (arm `shadow`) is the challenger's score of a candidate
/// another version served: it becomes that candidate's shadow score, never who ranked them,
/// whatever order the rows are read in; of several served rows the last committed wins.
async fn ranked_hires(lake: &Lake, prefix: &str) -> Result<HashMap<(String, String), Ranked>> {
    let decisions = lake
        .lazy(Table::Decisions)
        .await?
        .select([
            col(d::REQUISITION_ID),
            col(d::CANDIDATE_ID),
            col(d::SOURCE),
            col(d::ARM),
            col(d::MODEL_VERSION),
            col(d::SCORE),
            col(d::SHADOW_VERSION),
            col(d::SHADOW_SCORE),
        ])
        .with_row_index(ROW, None)
        .filter(
            col(d::SOURCE)
                .eq(lit(Source::Serving.as_str()))
                .and(col(d::SCORE).is_not_null())
                .and(col(d::MODEL_VERSION).str().starts_with(lit(prefix))),
        );
    let df = collect(only_hired(decisions, lake).await?.sort([ROW], SortMultipleOptions::default())).await?;
    let text = |name: &str| -> Result<&StringChunked> { Ok(df.column(name)?.str()?) };
    let (req, cand, arm, ver, sv) = (
        text(d::REQUISITION_ID)?,
        text(d::CANDIDATE_ID)?,
        text(d::ARM)?,
        text(d::MODEL_VERSION)?,
        text(d::SHADOW_VERSION)?,
    );
    let (score, ss) = (df.column(d::SCORE)?.f64()?, df.column(d::SHADOW_SCORE)?.f64()?);
    let mut served: HashMap<(String, String), (String, f64)> = HashMap::new();
    let mut shadows: HashMap<(String, String), (String, f64)> = HashMap::new();
    for i in 0..df.height() {
        let (Some(r), Some(c), Some(v), Some(score)) = (req.get(i), cand.get(i), ver.get(i), score.get(i)) else {
            continue;
        };
        let v = v.strip_prefix(prefix).unwrap_or(v).to_string();
        let key = (r.to_string(), c.to_string());
        let arm: Option<Arm> =
            arm.get(i).map(str::parse).transpose().map_err(|e| Error::Training(format!("{e} (decision of {r})")))?;
        if arm == Some(Arm::Shadow) {
            shadows.insert(key, (v, score));
            continue;
        }
        // A served row may carry a shadow score itself.
        if let (Some(shadow), Some(s)) = (sv.get(i).and_then(|x| x.strip_prefix(prefix)), ss.get(i)) {
            shadows.entry(key.clone()).or_insert((shadow.to_string(), s));
        }
        served.insert(key, (v, score));
    }
    Ok(served
        .into_iter()
        .map(|(key, (v, score))| {
            let shadow = shadows.remove(&key);
            (key, (v, score, shadow))
        })
        .collect())
}

/// Re-judge every version of `model` on the matured outcomes of the hires it ranked.
pub async fn rejudge(
    lake: &Lake,
    model: &str,
    now: DateTime<Utc>,
    grace_days: i64,
    alpha: f64,
    min_hires: usize,
) -> Result<Option<Rejudgement>> {
    // Every table read below comes from one snapshot.
    let lake = &lake.pinned().await?;
    let registry = Registry::new(lake.store().clone());
    let state = registry.state(model).await?;
    let Some(champion) = state.champion.clone() else { return Ok(None) };
    let card = registry.card(model, &champion).await?;
    let label = card.spec.label().map_err(|reason| Error::Spec { path: model.into(), reason })?;
    let ranked = ranked_hires(lake, &format!("{model}/")).await?;
    let data = LakeData::hires_and_outcomes(lake).await?;
    let today = now.date_naive();
    let mut per_version: HashMap<String, (usize, usize)> = HashMap::new();
    let mut pairs: HashMap<(String, String), Vec<PairedHire>> = HashMap::new();
    for h in &data.hires {
        let Some((version, score, shadow)) = ranked.get(&(h.requisition.clone(), h.candidate.clone())) else {
            continue;
        };
        // A label is read once its milestone (plus the export grace) has passed.
        let matured = label.milestone.date_after(h.hire_date) + Duration::days(grace_days) <= today;
        let Some(ok) = label_of(data.outcomes.get(&h.employee), &label) else { continue };
        if !matured && ok {
            continue;
        }
        let c = per_version.entry(version.clone()).or_default();
        c.0 += 1;
        c.1 += usize::from(ok);
        if let Some((sv, ss)) = shadow {
            pairs.entry((version.clone(), sv.clone())).or_default().push((*score, *ss, ok));
        }
    }
    let mut versions: Vec<VersionOutcome> = per_version
        .into_iter()
        .map(|(version, (n, s))| VersionOutcome {
            version,
            hires: n,
            successes: s,
            success_rate: (n > 0).then(|| s as f64 / n as f64),
            ci: wilson(s, n),
        })
        .collect();
    versions.sort_by_key(|v| v.version.trim_start_matches('v').parse::<u64>().unwrap_or(0));
    let shadow_pairs = pairs
        .into_iter()
        .map(|((served, shadow), rows)| {
            let y: Vec<bool> = rows.iter().map(|r| r.2).collect();
            let a: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let b: Vec<f64> = rows.iter().map(|r| r.1).collect();
            ShadowPair { served, shadow, hires: rows.len(), auc_served: roc_auc(&y, &a), auc_shadow: roc_auc(&y, &b) }
        })
        .collect();
    let previous = state.previous_champion().cloned();
    let find = |v: &Option<String>| v.as_ref().and_then(|v| versions.iter().find(|x| &x.version == v));
    let (cur, prev) = (find(&Some(champion.clone())), find(&previous));
    let pct = |v: &VersionOutcome| v.success_rate.map_or("n/a".into(), |r| format!("{:.1} %", r * 100.0));
    let (worse, p, finding) = match (cur, prev) {
        (Some(c), Some(p)) if c.hires >= min_hires && p.hires >= min_hires => {
            let pv = two_proportion_p(c.successes, c.hires, p.successes, p.hires);
            let worse = c.success_rate < p.success_rate && pv.is_some_and(|x| x < alpha);
            let verb = if worse { "significantly worse than" } else { "not significantly worse than" };
            (
                worse,
                pv,
                format!(
                    "at {}, the champion {}'s hires succeed {} ({} hires), {verb} the previous champion {}'s {} ({} hires; p = {:.3})",
                    label.milestone,
                    c.version,
                    pct(c),
                    c.hires,
                    p.version,
                    pct(p),
                    p.hires,
                    pv.unwrap_or(1.0)
                ),
            )
        }
        _ => (
            false,
            None,
            format!(
                "not enough matured {} outcomes yet to compare the champion {champion} with {} (at least {min_hires} hires each)",
                label.milestone,
                previous.as_deref().unwrap_or("no earlier champion")
            ),
        ),
    };
    Ok(Some(Rejudgement {
        seq: 0,
        model: model.into(),
        at: now,
        milestone: label.milestone,
        versions,
        shadow_pairs,
        champion: Some(champion),
        previous_champion: previous,
        champion_worse: worse,
        p_value: p,
        finding,
    }))
}

fn prefix(model: &str) -> Path {
    Path::from(format!("rejudgements/{model}"))
}

/// Store a re-judgement (write-once, numbered) under `rejudgements/<model>/`.
pub async fn record(lake: &Lake, mut r: Rejudgement) -> Result<Rejudgement> {
    loop {
        let prefix = prefix(&r.model);
        r.seq = lake.store().list(&prefix).await?.len() as u64 + 1;
        let path = Path::from(format!("{prefix}/{:06}.json", r.seq));
        let json = serde_json::to_vec_pretty(&r).expect("serialises");
        if lake.store().put_new(&path, Bytes::from(json)).await? {
            return Ok(r);
        }
    }
}

/// The newest stored re-judgement of `model`, if any.
pub async fn latest(lake: &Lake, model: &str) -> Result<Option<Rejudgement>> {
    newest_record(lake, &prefix(model)).await
}

/// The last (by name) JSON record under `prefix`, if any: records named so that they sort in
/// the order they were written.
pub(crate) async fn newest_record<T: serde::de::DeserializeOwned>(lake: &Lake, prefix: &Path) -> Result<Option<T>> {
    let Some(last) = lake.store().list(prefix).await?.pop() else { return Ok(None) };
    let bytes = lake.store().get(&last.location).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt { path: last.location.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_reports_known_failures_and_unknowns() {
        let label = Label { milestone: Milestone::M6, require_employed: true, min_rating: Some(3) };
        let r: crate::data::Reported = [(Milestone::M6, (true, Some(4)))].into_iter().collect();
        assert_eq!(label_of(Some(&r), &label), Some(true));
        let low: crate::data::Reported = [(Milestone::M6, (true, Some(2)))].into_iter().collect();
        assert_eq!(label_of(Some(&low), &label), Some(false));
        let gone: crate::data::Reported = [(Milestone::M3, (false, None))].into_iter().collect();
        assert_eq!(label_of(Some(&gone), &label), Some(false), "a leaver fails before the milestone");
        let early: crate::data::Reported = [(Milestone::M3, (true, Some(4)))].into_iter().collect();
        assert_eq!(label_of(Some(&early), &label), None);
        assert_eq!(label_of(None, &label), None);
    }
}
