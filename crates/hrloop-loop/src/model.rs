//! Hand-made ranking models for the simulation: the keyword ranker many employers start with
//! (skill match and years of experience), and a worse vendor variant that also penalises soft
//! skills and career changers.

use chrono::{DateTime, Utc};
use hrloop_models::features::{FeaturePipeline, RawFeatures};
use hrloop_models::model::{Estimator, TrainedModel};
use hrloop_models::{ModelCard, ModelSpec, Registry};
use hrloop_sim::Applicant;

/// The applicant's features as the ATS knows them at ranking time (no interview yet).
pub fn raw(a: &Applicant, job_family: &str) -> RawFeatures {
    let f = &a.features;
    let mut r = RawFeatures::default();
    for (k, v) in [
        ("years_experience", f.years_experience),
        ("skill_match", f.skill_match),
        ("assessment_score", f.assessment_score),
        ("education_level", f64::from(f.education_level)),
        ("career_changer", f64::from(u8::from(f.career_changer))),
        ("foreign_experience", f64::from(u8::from(f.foreign_experience))),
        ("soft_skill_score", f.soft_skill_score),
    ] {
        r.numeric.insert(k.to_string(), v);
    }
    r.categorical.insert("job_family".into(), job_family.to_string());
    r
}

/// A linear keyword ranker over `spec`'s features, standardised on `sample`.
pub fn keyword_ranker(
    spec: &ModelSpec,
    sample: &[&Applicant],
    job_family: &dyn Fn(&Applicant) -> &'static str,
    vendor: bool,
) -> TrainedModel {
    let rows: Vec<RawFeatures> = sample.iter().map(|a| raw(a, job_family(a))).collect();
    let pipeline = FeaturePipeline::fit(&spec.features, &rows);
    let weights = pipeline
        .columns()
        .iter()
        .map(|c| match (c.as_str(), vendor) {
            ("skill_match", _) => 1.2,
            ("years_experience", _) => 0.5,
            ("soft_skill_score", true) => -0.8,
            ("career_changer", true) => -0.6,
            _ => 0.0,
        })
        .collect();
    TrainedModel { pipeline, estimator: Estimator::Logistic { weights, intercept: -2.0 }, recruiter: None }
}

/// Register a hand-made model as the next version; returns the version.
pub async fn register(
    registry: &Registry,
    spec: &ModelSpec,
    model: &TrainedModel,
    description: &str,
    at: DateTime<Utc>,
) -> Result<String, String> {
    let mut spec = spec.clone();
    spec.description = description.to_string();
    let card = ModelCard::new(spec.clone(), "simulator", at);
    let artifact = serde_json::to_vec(model).map_err(|e| e.to_string())?;
    registry.register(&spec.name, artifact.into(), card).await.map_err(|e| e.to_string())
}
