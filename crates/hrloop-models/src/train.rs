//! Training one version from the lake: label hires at their milestone, split by time, fit,
//! evaluate, measure fairness, write the card, register.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Months, Utc};

use hrloop_lake::{Lake, Table};
use sha2::{Digest, Sha256};

use crate::card::{
    CARD_FORMAT_VERSION, FairnessResult, GateResult, GroupRate, Metrics, ModelCard, RowCounts, SnapshotFile,
    TrainingSnapshot,
};
use crate::data::{Example, LakeData, each_applicant_on, protected_attributes_of};
use crate::features::{FeaturePipeline, RawFeatures};
use crate::metrics;
use crate::model::{Estimator, TrainedModel};
use crate::registry::Registry;
use crate::spec::ModelSpec;
use crate::stats::{bonferroni, pairs, two_proportion_p};
use crate::{Error, Result};

/// Fewer labelled training rows than this and training refuses outright.
const MIN_ROWS: usize = 20;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub now: DateTime<Utc>,
    pub actor: String,
    /// Days after a milestone before its outcome counts as due.
    pub grace_days: i64,
}

#[derive(Debug)]
pub struct Trained {
    pub version: String,
    pub card: ModelCard,
}

pub async fn train(lake: &Lake, registry: &Registry, spec: &ModelSpec, opts: &TrainOptions) -> Result<Trained> {
    train_with_progress(lake, registry, spec, opts, &mut |_, _| {}).await
}

/// [`train`], reporting fitting progress as `(done, total)`.
pub async fn train_with_progress(
    lake: &Lake,
    registry: &Registry,
    spec: &ModelSpec,
    opts: &TrainOptions,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<Trained> {
    let label = spec.label().map_err(|reason| Error::Spec { path: spec.name.clone(), reason })?;
    // One snapshot for every read below (a lake pinned by `--as-of` stays as pinned).
    let lake = &lake.pinned().await?;
    lake.check_readable().await?;
    let today = opts.now.date_naive();
    let mut rows = RowCounts::default();

    let data = LakeData::load(lake).await?;
    let examples = data.labelled(&label, today, opts.grace_days, &mut rows);
    // Memory follows the labelled hires from here: every applicant row read is released.
    drop(data);
    if examples.len() < MIN_ROWS {
        return Err(Error::NotEnoughData(format!(
            "{} hires have a known {} outcome ({} not yet due, {} missing); at least {MIN_ROWS} are needed",
            examples.len(),
            label.milestone,
            rows.excluded_not_due,
            rows.excluded_missing_outcome
        )));
    }

    // Time-based holdout: the newest `holdout_months` of labelled hires.
    let newest = examples.iter().map(|e| e.hire_date).max().expect("non-empty");
    let holdout_from = newest.checked_sub_months(Months::new(spec.evaluation.holdout_months)).unwrap_or(newest);
    let (mut holdout, mut train): (Vec<Example>, Vec<Example>) =
        examples.into_iter().partition(|e| e.hire_date > holdout_from);
    rows.train = train.len();
    rows.holdout = holdout.len();
    rows.positives_train = train.iter().filter(|e| e.label).count();
    rows.positives_holdout = Some(holdout.iter().filter(|e| e.label).count());
    if train.len() < MIN_ROWS || holdout.is_empty() {
        return Err(Error::NotEnoughData(format!(
            "{} training and {} holdout rows after the time split at {holdout_from}",
            train.len(),
            holdout.len()
        )));
    }

    // The features move into the matrix's inputs (the rest of an example is still needed).
    let train_raw: Vec<RawFeatures> = train.iter_mut().map(|e| std::mem::take(&mut e.raw)).collect();
    let pipeline = FeaturePipeline::fit(&spec.features, &train_raw);
    let x = pipeline.matrix(train_raw.iter().map(|r| pipeline.align(r)));
    let y: Vec<bool> = train.iter().map(|e| e.label).collect();
    let features_sha256 = matrix_sha256(&pipeline.columns(), &x, &y);
    let (weights, weighting) = match &spec.weighting {
        Some(w) => {
            let attrs = match &w.reweigh {
                Some(_) => {
                    protected_attributes_of(lake, &train.iter().map(|e| e.candidate.as_str()).collect::<Vec<_>>())
                        .await?
                }
                None => HashMap::new(),
            };
            let groups: Vec<Option<&str>> = train
                .iter()
                .map(|e| {
                    w.reweigh.as_ref().and_then(|a| attrs.get(&e.candidate).and_then(|m| m.get(a)).map(String::as_str))
                })
                .collect();
            let dates: Vec<chrono::NaiveDate> = train.iter().map(|e| e.hire_date).collect();
            let (weights, report) = crate::weighting::weights(w, &dates, &y, &groups);
            (Some(weights), Some(report))
        }
        None => (None, None),
    };
    tracing::info!(model = %spec.name, rows = x.nrows(), columns = x.ncols(), "training");
    let estimator = Estimator::fit_weighted(&spec.algorithm, x.view(), &y, weights.as_deref(), progress)?;
    // A blend: the recruiters' preferences, from their feedback on every served ranking this
    // snapshot holds (the pinned lake: `--as-of` reads the same pairs again).
    let recruiter = match spec.label.blend {
        Some(blend) => {
            let choices = crate::preference::choices(lake, DateTime::<Utc>::UNIX_EPOCH).await?;
            let pairs = crate::preference::pairs(&choices);
            let preference = crate::preference::PreferenceModel::fit(
                &spec.features.numeric,
                &pairs,
                crate::preference::Options::default(),
            )
            .map_err(|e| Error::NotEnoughData(format!("[label] blend: {e}")))?;
            Some(crate::model::RecruiterBlend { blend, preference })
        }
        None => None,
    };
    let recruiter_preference = recruiter.as_ref().map(|r| crate::card::RecruiterPreference {
        blend: r.blend,
        evidence: r.preference.evidence.clone(),
        job_families: r.preference.families.keys().cloned().collect(),
    });
    let model = TrainedModel { pipeline, estimator, recruiter };

    // Evaluation on the holdout.
    let hold_raw: Vec<RawFeatures> = holdout.iter_mut().map(|e| std::mem::take(&mut e.raw)).collect();
    let p = model.score_many(&hold_raw)?;
    let yh: Vec<bool> = holdout.iter().map(|e| e.label).collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in holdout.iter().enumerate() {
        groups.entry(e.requisition.as_str()).or_default().push(i);
    }
    let ranked: Vec<&Vec<usize>> = groups.values().filter(|g| g.len() >= 2).collect();
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let ndcg = mean(
        ranked
            .iter()
            .map(|g| {
                let rel: Vec<f64> = g.iter().map(|&i| f64::from(u8::from(yh[i]))).collect();
                let s: Vec<f64> = g.iter().map(|&i| p[i]).collect();
                metrics::ndcg_at_k(&rel, &s, spec.evaluation.ndcg_k)
            })
            .collect(),
    );
    let prec = mean(
        ranked
            .iter()
            .map(|g| {
                let rel: Vec<bool> = g.iter().map(|&i| yh[i]).collect();
                let s: Vec<f64> = g.iter().map(|&i| p[i]).collect();
                metrics::precision_at_k(&rel, &s, spec.evaluation.precision_k.min(g.len()))
            })
            .collect(),
    );
    let train_p = model.estimator.predict(x.view())?;
    let metrics = Metrics {
        roc_auc: metrics::roc_auc(&yh, &p),
        ndcg_at_k: ndcg,
        precision_at_k: prec,
        ranking_groups: ranked.len(),
        brier: metrics::brier(&yh, &p),
        expected_calibration_error: metrics::expected_calibration_error(&yh, &p, 10),
        train_roc_auc: metrics::roc_auc(&y, &train_p),
    };

    let holdout_requisitions: Vec<String> = groups.keys().map(|s| s.to_string()).collect();
    // Fairness reads every applicant of the holdout's requisitions: release what fitting and
    // evaluation held first.
    drop(groups);
    drop((x, train_raw, hold_raw, train, holdout));
    let fairness = fairness(lake, spec, &model, &holdout_requisitions).await?;
    let gates = gates(spec, &metrics, &fairness, &rows);
    let mut training_data = snapshot(lake).await?;
    training_data.features_sha256 = features_sha256;
    let parent_version = registry.state(&spec.name).await?.champion;
    let card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: spec.name.clone(),
        version: String::new(),
        created_at: opts.now,
        created_by: opts.actor.clone(),
        hrloop_version: env!("CARGO_PKG_VERSION").to_string(),
        parent_version,
        spec: spec.clone(),
        feature_columns: model.pipeline.columns(),
        training_data,
        holdout_from: Some(holdout_from),
        rows,
        metrics,
        fairness,
        gates,
        weighting,
        recruiter_preference,
    };
    let artifact = serde_json::to_vec(&model).map_err(|e| Error::Training(e.to_string()))?;
    let version = registry.register(&spec.name, artifact.into(), card.clone()).await?;
    let card = ModelCard { version: version.clone(), ..card };
    Ok(Trained { version, card })
}

/// Selection fairness of `model` on the holdout's requisitions: every applicant there (as the
/// decision log recorded them) scored, the top k of each requisition selected, rates per
/// protected group.
async fn fairness(
    lake: &Lake,
    spec: &ModelSpec,
    model: &TrainedModel,
    requisitions: &[String],
) -> Result<Vec<FairnessResult>> {
    // Scores per requisition, in commit order, folded in one decision file at a time.
    let mut per_req: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    each_applicant_on(lake, requisitions, |batch| {
        let scores = model.score_each(batch.iter().map(|a| &a.raw))?;
        for (a, s) in batch.into_iter().zip(scores) {
            per_req.entry(a.requisition).or_default().push((a.candidate, s));
        }
        Ok(())
    })
    .await?;
    // candidate -> selected?
    let mut selected: Vec<(&str, bool)> = Vec::new();
    for pool in per_req.values_mut() {
        // Stable: equal scores keep commit order.
        pool.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (rank, (candidate, _)) in pool.iter().enumerate() {
            selected.push((candidate.as_str(), rank < spec.fairness.top_k));
        }
    }
    let candidates: Vec<&str> = selected.iter().map(|(c, _)| *c).collect();
    let attrs = protected_attributes_of(lake, &candidates).await?;
    Ok(selection_fairness(&selected, &attrs, &spec.fairness))
}

/// Selection rate per group of each attribute and of each pair of attributes, and the adverse
/// impact ratio (lowest rate / highest rate) over groups of at least `min_group_size`.
pub fn selection_fairness(
    selected: &[(&str, bool)],
    attrs: &HashMap<String, BTreeMap<String, String>>,
    spec: &crate::spec::FairnessSpec,
) -> Vec<FairnessResult> {
    let mut dims: Vec<Vec<&str>> = spec.attributes.iter().map(|a| vec![a.as_str()]).collect();
    for i in 0..spec.attributes.len() {
        for j in i + 1..spec.attributes.len() {
            dims.push(vec![&spec.attributes[i], &spec.attributes[j]]);
        }
    }
    let mut out = Vec::new();
    for dim in dims {
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (cand, sel) in selected {
            let Some(a) = attrs.get(*cand) else { continue };
            let key: Option<Vec<&str>> = dim.iter().map(|d| a.get(*d).map(String::as_str)).collect();
            let Some(key) = key else { continue };
            let c = counts.entry(key.join(" & ")).or_default();
            c.0 += 1;
            c.1 += usize::from(*sel);
        }
        let groups: Vec<GroupRate> = counts
            .into_iter()
            .map(|(group, (n, s))| GroupRate {
                group,
                candidates: n,
                selected: s,
                selection_rate: s as f64 / n as f64,
                small: n < spec.min_group_size,
            })
            .collect();
        let sized: Vec<&GroupRate> = groups.iter().filter(|g| !g.small).collect();
        let lowest = sized.iter().min_by(|a, b| a.selection_rate.total_cmp(&b.selection_rate));
        let highest = sized.iter().max_by(|a, b| a.selection_rate.total_cmp(&b.selection_rate));
        let (air, p_value) = match (lowest, highest) {
            (Some(lo), Some(hi)) if sized.len() >= 2 && hi.selection_rate > 0.0 => (
                Some(lo.selection_rate / hi.selection_rate),
                // The lowest and highest of g groups are the most extreme of g(g-1)/2 pairs.
                two_proportion_p(lo.selected, lo.candidates, hi.selected, hi.candidates)
                    .map(|p| bonferroni(p, pairs(sized.len()))),
            ),
            _ => (None, None),
        };
        out.push(FairnessResult {
            attribute: dim.join(" x "),
            groups,
            adverse_impact_ratio: air,
            passes_four_fifths: air.map(|r| r >= 0.8),
            p_value,
        });
    }
    out
}

fn gates(spec: &ModelSpec, m: &Metrics, fairness: &[FairnessResult], rows: &RowCounts) -> GateResult {
    let g = &spec.gates;
    let mut failures = Vec::new();
    match m.roc_auc {
        Some(auc) if auc >= g.min_auc => {}
        Some(auc) => failures.push(format!("holdout AUC {auc:.3} is below {}", g.min_auc)),
        None => failures.push("holdout has one class only: AUC undefined".into()),
    }
    if m.expected_calibration_error > g.max_expected_calibration_error {
        failures.push(format!(
            "calibration error {:.3} is above {}",
            m.expected_calibration_error, g.max_expected_calibration_error
        ));
    }
    for f in fairness.iter().filter(|f| !f.attribute.contains(" x ")) {
        // The four-fifths rule on a small selection is noisy: gate on gaps that are also
        // statistically significant, as EEOC practice pairs the two.
        if let Some(air) = f.adverse_impact_ratio
            && air < g.min_adverse_impact_ratio
            && f.p_value.is_none_or(|p| p < 0.05)
        {
            failures.push(format!(
                "adverse impact ratio for {} is {air:.2} (p = {:.3}), below {}",
                f.attribute,
                f.p_value.unwrap_or(f64::NAN),
                g.min_adverse_impact_ratio
            ));
        }
    }
    if rows.train < g.min_training_rows {
        failures.push(format!("{} training rows, fewer than {}: not enough data yet", rows.train, g.min_training_rows));
    }
    GateResult { passed: failures.is_empty(), failures }
}

async fn snapshot(lake: &Lake) -> Result<TrainingSnapshot> {
    let mut files = Vec::new();
    let mut h = Sha256::new();
    for t in [Table::Decisions, Table::Hires, Table::Outcomes, Table::ProtectedAttributes] {
        for meta in lake.list_files(t, None).await? {
            let bytes = lake.store().get(&meta.location).await?;
            h.update(meta.location.as_ref().as_bytes());
            h.update([0]);
            h.update(&bytes);
            files.push(SnapshotFile { path: meta.location.to_string(), size: meta.size });
        }
    }
    Ok(TrainingSnapshot {
        files,
        content_sha256: hex::encode(h.finalize()),
        table_versions: lake.versions().await?,
        features_sha256: String::new(),
    })
}

/// SHA-256 of a training matrix: column names, values row by row (f64 bits), labels.
fn matrix_sha256(columns: &[String], x: &ndarray::Array2<f64>, y: &[bool]) -> String {
    let mut h = Sha256::new();
    for c in columns {
        h.update(c.as_bytes());
        h.update([0]);
    }
    for row in x.rows() {
        for v in row {
            h.update(v.to_bits().to_le_bytes());
        }
    }
    h.update(y.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FairnessSpec;

    #[test]
    fn adverse_impact_ratio_with_intersections_and_small_groups() {
        let mut attrs = HashMap::new();
        let mut selected = Vec::new();
        let names: Vec<String> = (0..260).map(|i| format!("c{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            // 100 F (20 selected), 100 M (40 selected), 60 X (only 10 people, 5 selected, are "young").
            let (gender, sel) = match i {
                0..100 => ("F", i < 20),
                100..200 => ("M", i < 140),
                _ => ("X", i < 205),
            };
            let age = if i % 2 == 0 { "<30" } else { "30-44" };
            attrs.insert(
                name.clone(),
                [("gender".to_string(), gender.to_string()), ("age_band".to_string(), age.to_string())].into(),
            );
            selected.push((name.as_str(), sel));
        }
        let spec = FairnessSpec { attributes: vec!["gender".into(), "age_band".into()], top_k: 5, min_group_size: 70 };
        let r = selection_fairness(&selected, &attrs, &spec);
        let gender = &r[0];
        assert_eq!(gender.attribute, "gender");
        // X (n=60) is under the minimum size: reported, not used for the ratio.
        assert!(gender.groups.iter().any(|g| g.group == "X" && g.small));
        assert!((gender.adverse_impact_ratio.unwrap() - 0.2 / 0.4).abs() < 1e-12);
        assert_eq!(gender.passes_four_fifths, Some(false));
        // 20/100 vs 40/100: a real gap (z ≈ 3.09, p ≈ 0.002).
        let p = gender.p_value.unwrap();
        assert!((p - 0.00199).abs() < 2e-4, "p = {p}");
        assert_eq!(two_proportion_p(1, 20, 2, 20).map(|p| p > 0.5), Some(true), "tiny groups: not significant");
        let both = r.iter().find(|f| f.attribute == "gender x age_band").unwrap();
        assert_eq!(both.groups.len(), 6);
        assert!(both.groups.iter().any(|g| g.group == "F & <30"));
    }
}
