//! The whole loop against the simulated company, on an accelerated clock.
//!
//! Day by day: requisitions open and their applicants are ranked through the real serving code
//! (the axum router, in process: A/B assignment, decision log, human routing); recruiters
//! interview the model's top five, hire the best interview and send feedback (rejecting a
//! suggested candidate after the interview is an override) through `POST /v1/feedback`; hires
//! and the HRIS's 3/6/12/24-month reports arrive as weekly export files in `<store>/inbox/` and
//! are ingested by the scheduler's pipelines, which also retrain monthly, start experiments and
//! judge them weekly (promote / withdraw). The world drifts at month 12. In month 15 a vendor's
//! keyword model that penalises soft skills and career changers is pushed as challenger: the
//! bad challenger the verdicts must stop.
//!
//! The simulator knows the truth, so every month it also answers "what would the initial model
//! have hired from the same applicants, with the same interview luck?" — the static baseline.

mod chart;
pub mod experiments;
mod model;
pub mod overrides;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use hrloop_core::{Clock, ManualClock, Milestone};
use hrloop_ingest::{Pseudonymiser, Taxonomy};
use hrloop_lake::Lake;
use hrloop_models::registry::{Action, Alias, ChangeRequest};
use hrloop_models::{ModelSpec, Registry};
use hrloop_scheduler::{LoopSteps, Pipeline, Scheduler};
use hrloop_serve::{AppState, ServeConfig};
use hrloop_sim::{Applicant, Fate, Requisition, SimConfig, World};
use serde::Serialize;
use tower::ServiceExt;

pub use chart::svg;

/// The model the loop serves and retrains.
pub const MODEL: &str = "success6m_logistic";

#[derive(Debug, Clone)]
pub struct LoopConfig {
    pub sim: SimConfig,
    /// Output folder: `store/`, `kpis.csv`, `summary.json`, `loop.svg`.
    pub out: PathBuf,
    /// Month in which the bad challenger is pushed.
    pub bad_challenger_month: u32,
    /// Where `data/mappings`, `data/taxonomy` and `models/` are.
    pub repo: PathBuf,
    /// Print one line per month on stderr.
    pub progress: bool,
}

/// One month of the loop.
#[derive(Debug, Clone, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub champion: Option<String>,
    pub challenger: Option<String>,
    pub requisitions: usize,
    pub hires: usize,
    /// Mean ground-truth success probability of the loop's hires.
    pub quality_loop: Option<f64>,
    /// The same for the hires the initial (static) model would have made from the same pools.
    pub quality_static: Option<f64>,
    /// Expected performance rating (1-5) of the loop's hires, from the ground truth.
    pub rating_loop: Option<f64>,
    /// Ground-truth probability that the loop's hires are still employed at 12 months.
    pub retention_12m_loop: Option<f64>,
    /// Lowest over highest top-5 selection rate between women and men in the served rankings.
    pub adverse_impact_ratio_gender: Option<f64>,
    /// Recruiter feedback that overrode the model.
    pub override_rate: Option<f64>,
    /// Due outcomes that arrived, per milestone (3m, 6m, 12m, 24m), at month end.
    pub feedback_completeness: BTreeMap<String, f64>,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub month: String,
    /// promote, rollback, retire, challenger
    pub change: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BadChallenger {
    pub version: String,
    pub introduced: DateTime<Utc>,
    pub became_champion: bool,
    pub withdrawn: Option<DateTime<Utc>>,
    pub days_live: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub months: u32,
    pub drift_month: String,
    pub store: PathBuf,
    pub rows: Vec<MonthRow>,
    pub events: Vec<Event>,
    pub promotions: usize,
    pub rollbacks: usize,
    /// Mean ground-truth success of the loop's hires in months 13-24, and of the initial
    /// model's picks on the same applicants.
    pub quality_loop_13_24: Option<f64>,
    pub quality_static_13_24: Option<f64>,
    pub loop_beats_static: bool,
    pub bad_challenger: Option<BadChallenger>,
    /// Pipeline runs by pipeline and final status.
    pub pipeline_runs: BTreeMap<String, BTreeMap<String, usize>>,
    pub wall_seconds: f64,
}

fn pipelines() -> Vec<Pipeline> {
    let files = [
        (
            "sim-ingest",
            "format_version = 1\nname = \"sim-ingest\"\ndescription = \"The week's ATS hires, HRIS reports and protected attributes\"\n\
             [trigger]\ncron = \"0 5 * * MON\"\n\
             [[step]]\nkind = \"ingest_inbox\"\nsource = \"hires\"\nmapping = \"data/mappings/ats_hires.toml\"\n\
             [[step]]\nkind = \"ingest_inbox\"\nsource = \"protected\"\nmapping = \"data/mappings/protected_attributes.toml\"\n\
             [[step]]\nkind = \"ingest_inbox\"\nsource = \"hris\"\nmapping = \"data/mappings/hris_outcomes.toml\"\n\
             [[step]]\nkind = \"validate\"\n",
        ),
        (
            "sim-retrain",
            "format_version = 1\nname = \"sim-retrain\"\n[trigger]\ncron = \"0 6 1 * *\"\n\
             [[step]]\nkind = \"rejudge\"\nmodel = \"success6m_logistic\"\nact = true\n\
             [[step]]\nkind = \"train\"\nmodel = \"models/success6m_logistic.toml\"\n[[step]]\nkind = \"gate\"\n\
             [[step]]\nkind = \"start_experiment\"\n",
        ),
        (
            "sim-analysis",
            "format_version = 1\nname = \"sim-analysis\"\n[trigger]\ncron = \"30 6 * * MON\"\n\
             [[step]]\nkind = \"analyse_experiment\"\nmodel = \"success6m_logistic\"\nact = true\n\
             [step.policy]\nmin_feedback_per_arm = 50\nmin_days = 14\nmax_days = 49\n",
        ),
    ];
    files
        .iter()
        .map(|(name, text)| {
            Pipeline::parse(text, Path::new(&format!("{name}.toml"))).expect("built-in pipelines parse")
        })
        .collect()
}

fn features_json(a: &Applicant) -> serde_json::Value {
    let f = &a.features;
    serde_json::json!({
        "years_experience": f.years_experience,
        "skill_match": f.skill_match,
        "assessment_score": f.assessment_score,
        "education_level": f.education_level,
        "career_changer": u8::from(f.career_changer),
        "foreign_experience": u8::from(f.foreign_experience),
        "soft_skill_score": f.soft_skill_score,
    })
}

/// One recruiter decision on a suggested candidate: (index in the pool, decision, whether it
/// overrides the model, the reason code given for an override).
pub(crate) type Feedback = (usize, &'static str, bool, &'static str);

/// What the recruiters do with a ranked list: interview the top five, judge each
/// ([`World::judge`]: the interview plus the recruiters' taste), advance those judged 3 or
/// better and hire the best judged (if 2.5 or better). Rejecting a candidate the model put in
/// its top five is an override. Returns (hired index, feedback rows).
pub(crate) fn recruit(
    world: &World,
    req: &Requisition,
    pool: &[Applicant],
    ranked: &[usize],
) -> (Option<usize>, Vec<Feedback>) {
    let mut best: Option<(usize, f64)> = None;
    let mut rows = Vec::new();
    for &i in ranked.iter().take(5) {
        let j = world.judge(&pool[i], req);
        if best.is_none_or(|(_, b)| j.score > b) {
            best = Some((i, j.score));
        }
        let rejected = j.score < 3.0;
        rows.push((i, if rejected { "rejected" } else { "advanced" }, rejected, j.reason));
    }
    let hired = best.filter(|(_, s)| *s >= 2.5).map(|(i, _)| i);
    if let Some(h) = hired {
        for r in rows.iter_mut().filter(|r| r.0 == h) {
            *r = (h, "hired", false, "");
        }
    }
    (hired, rows)
}

struct Hired {
    applicant: Applicant,
    requisition: Requisition,
    employee: String,
    fate: Fate,
    hires_exported: bool,
    reported: Vec<Milestone>,
}

#[derive(Default)]
struct MonthAcc {
    requisitions: usize,
    quality_loop: Vec<f64>,
    quality_static: Vec<f64>,
    rating_loop: Vec<f64>,
    retention_loop: Vec<f64>,
    selected: BTreeMap<&'static str, (usize, usize)>,
    overrides: (usize, usize),
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

struct Sim {
    state: Arc<AppState>,
    token: String,
    inbox: PathBuf,
}

impl Sim {
    async fn call(&self, path: &str, body: String) -> (u16, serde_json::Value) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::from(body))
            .expect("request");
        let resp = hrloop_serve::router(self.state.clone()).oneshot(req).await.expect("router");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn append(&self, source: &str, file: &str, header: Option<&str>, lines: &[String]) -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let dir = self.inbox.join(source);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(file);
        let new = !path.exists();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        if new && let Some(h) = header {
            writeln!(f, "{h}")?;
        }
        for l in lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

fn set_day(clock: &ManualClock, day: NaiveDate, hour: u32) {
    clock.set(day.and_hms_opt(hour, 0, 0).expect("valid time").and_utc());
}

/// Run the loop; writes `kpis.csv`, `summary.json` and `loop.svg` under `config.out`.
pub async fn run(config: &LoopConfig) -> Result<Summary, String> {
    let started = std::time::Instant::now();
    let store = config.out.join("store");
    if store.exists() {
        std::fs::remove_dir_all(&store).map_err(|e| format!("cannot clear {}: {e}", store.display()))?;
    }
    std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
    let lake = Lake::open(store.to_str().ok_or("store path is not UTF-8")?).map_err(|e| e.to_string())?;
    // A fresh random key for this run, kept beside the store like the demo's (mode 0600).
    let key_path = store.join("secrets/pseudonym.key");
    let pseudo = Pseudonymiser::load(&hrloop_ingest::KeySource::DemoFile(key_path)).map_err(|e| e.to_string())?;
    let mut world = World::new(config.sim.clone());
    let start = config.sim.start;
    let clock = Arc::new(ManualClock::new(start.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    let spec = ModelSpec::load(&config.repo.join(format!("models/{MODEL}.toml"))).map_err(|e| e.to_string())?;
    let registry = Registry::new(lake.store().clone());

    // The initial champion: a keyword ranker, as many employers start with.
    let first_month = world.month(0);
    let sample: Vec<&Applicant> = first_month.iter().flat_map(|(_, p)| p.iter()).collect();
    let jf_of = |a: &Applicant| first_month[a.requisition].0.job_family;
    let keyword = model::keyword_ranker(&spec, &sample, &jf_of, false);
    let at = clock.now();
    let v1 =
        model::register(&registry, &spec, &keyword, "keyword ranker: skill match and years of experience", at).await?;
    let req = |reason: &str, at| ChangeRequest {
        actor: "simulator".into(),
        reason: reason.into(),
        evidence: serde_json::Value::Null,
        at,
    };
    registry
        .promote(MODEL, &v1, Alias::Champion, req("initial champion: the keyword ranker", at))
        .await
        .map_err(|e| e.to_string())?;

    let serve_config = ServeConfig {
        model: MODEL.into(),
        flush_ms: 24 * 3_600_000,
        poll_ms: 3_600_000,
        kpi_refresh_ms: 24 * 3_600_000,
        pipelines_dir: None,
        outcomes_mapping: config.repo.join("data/mappings/hris_outcomes.toml"),
        feedback_mapping: config.repo.join("data/mappings/api_feedback.toml"),
        taxonomy: config.repo.join("data/taxonomy"),
        ..ServeConfig::default()
    };
    let state =
        hrloop_serve::start(serve_config, lake.clone(), pseudo.clone(), clock.clone() as Arc<dyn Clock>).await?;
    let token = hrloop_serve::TokenStore::in_store(&store)
        .add("ats", hrloop_serve::Role::Recruiter, clock.now())
        .map_err(|e| e.to_string())?;
    let taxonomy = Taxonomy::load(&config.repo.join("data/taxonomy")).map_err(|e| e.to_string())?;
    let steps = LoopSteps {
        lake: lake.clone(),
        pseudo: Some(pseudo.clone()),
        taxonomy,
        clock: clock.clone(),
        base: config.repo.clone(),
        prometheus_url: None,
        http: hrloop_scheduler::steps::HttpClient::default(),
    };
    let scheduler = Scheduler::new(lake.clone(), pipelines(), steps, clock.clone() as Arc<dyn Clock>);
    scheduler.tick().await.map_err(|e| e.to_string())?; // registers the pipelines at the start
    let sim = Sim { state: state.clone(), token, inbox: store.join("inbox") };

    let mut hired: Vec<Hired> = Vec::new();
    let mut rows: Vec<MonthRow> = Vec::new();
    let mut feedback: Vec<serde_json::Value> = Vec::new();
    let mut bad: Option<BadChallenger> = None;
    let months = config.sim.months;
    let mut pending_month = Some(first_month);
    for m in 0..months {
        let month_start = world.month_start(m);
        let month_end = world.month_start(m + 1);
        let reqs = pending_month.take().unwrap_or_else(|| world.month(m));
        let mut acc = MonthAcc { requisitions: reqs.len(), ..MonthAcc::default() };
        let mut by_day: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
        for (i, (r, _)) in reqs.iter().enumerate() {
            by_day.entry(r.opened_on).or_default().push(i);
        }
        let mut protected_lines = Vec::new();
        let mut day = month_start;
        while day < month_end {
            set_day(&clock, day, 9);
            if m == config.bad_challenger_month && day == month_start + Duration::days(1) {
                let sample: Vec<&Applicant> = reqs.iter().flat_map(|(_, p)| p.iter()).collect();
                let jf = |a: &Applicant| reqs[a.requisition].0.job_family;
                let vendor = model::keyword_ranker(&spec, &sample, &jf, true);
                let v = model::register(
                    &registry,
                    &spec,
                    &vendor,
                    "vendor model: keyword match, penalises soft skills and career changers",
                    clock.now(),
                )
                .await?;
                registry
                    .promote(MODEL, &v, Alias::Challenger, req("vendor model pushed by procurement", clock.now()))
                    .await
                    .map_err(|e| e.to_string())?;
                state.live.refresh().await.map_err(|e| e.to_string())?;
                bad = Some(BadChallenger {
                    version: v,
                    introduced: clock.now(),
                    became_champion: false,
                    withdrawn: None,
                    days_live: None,
                    reason: None,
                });
            }
            for &ri in by_day.get(&day).map(Vec::as_slice).unwrap_or(&[]) {
                let (r, pool) = &reqs[ri];
                let body = serde_json::json!({
                    "requisition": {"id": r.id, "job_family": r.job_family},
                    "candidates": pool.iter().map(|a| serde_json::json!({"id": a.candidate_ref, "features": features_json(a)})).collect::<Vec<_>>(),
                });
                let (status, resp) = sim.call("/v1/rank", body.to_string()).await;
                if status != 200 {
                    return Err(format!("rank {} answered {status}: {resp}", r.id));
                }
                let index: BTreeMap<&str, usize> =
                    pool.iter().enumerate().map(|(i, a)| (a.candidate_ref.as_str(), i)).collect();
                let ranked: Vec<usize> = resp["candidates"]
                    .as_array()
                    .map(|c| c.iter().filter_map(|x| x["id"].as_str().and_then(|id| index.get(id).copied())).collect())
                    .unwrap_or_default();
                for (pos, &i) in ranked.iter().enumerate() {
                    if matches!(pool[i].gender, "F" | "M") {
                        let s = acc.selected.entry(pool[i].gender).or_default();
                        s.0 += usize::from(pos < 5);
                        s.1 += 1;
                    }
                }
                let (h, fb) = recruit(&world, r, pool, &ranked);
                for (i, decision, overrides, reason) in fb {
                    acc.overrides.0 += usize::from(overrides);
                    acc.overrides.1 += 1;
                    feedback.push(serde_json::json!({"requisition_id": r.id, "candidate_id": pool[i].candidate_ref,
                        "recruiter_id": format!("REC-{}", r.job_family), "decision": decision, "overrides_model": overrides,
                        "reason_code": if overrides { reason } else { "" }}));
                }
                // The counterfactual: the initial model on the same applicants.
                let raws: Vec<_> = pool.iter().map(|a| model::raw(a, r.job_family)).collect();
                let scores = keyword.score_many(&raws).map_err(|e| e.to_string())?;
                let mut order: Vec<usize> = (0..pool.len()).collect();
                order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
                if let (Some(hs), _) = recruit(&world, r, pool, &order) {
                    acc.quality_static.push(world.fate(&pool[hs], r).p_success);
                }
                if let Some(i) = h {
                    let fate = world.fate(&pool[i], r);
                    acc.quality_loop.push(fate.p_success);
                    acc.rating_loop.push((3.6 + 0.7 * fate.latent).clamp(1.0, 5.0));
                    acc.retention_loop.push(fate.p_retained_12m);
                    hired.push(Hired {
                        applicant: pool[i].clone(),
                        requisition: r.clone(),
                        employee: format!("E{:06}", 500_000 + hired.len()),
                        fate,
                        hires_exported: false,
                        reported: Vec::new(),
                    });
                }
                for a in pool {
                    protected_lines.push(format!("{},{},{},{}", a.candidate_ref, a.gender, a.age_band, a.applied_on));
                }
            }
            // Weekly: the ATS and HRIS exports land in the inbox, recruiter feedback is sent,
            // the decision log is moved into the lake; the Monday pipelines pick them up.
            if day.weekday() == Weekday::Sun || day + Duration::days(1) == month_end {
                weekly_exports(&sim, &world, &mut hired, &mut protected_lines, day)?;
                if !feedback.is_empty() {
                    let (status, resp) = sim
                        .call("/v1/feedback", serde_json::Value::from(std::mem::take(&mut feedback)).to_string())
                        .await;
                    if status != 200 {
                        return Err(format!("feedback answered {status}: {resp}"));
                    }
                }
                state.log.flush().await?;
            }
            set_day(&clock, day, 12);
            scheduler.tick().await.map_err(|e| e.to_string())?;
            state.live.refresh().await.map_err(|e| e.to_string())?;
            day += Duration::days(1);
        }
        // Month end: the KPI row.
        let st = registry.state(MODEL).await.map_err(|e| e.to_string())?;
        let completeness =
            hrloop_models::data::milestone_status(&lake, month_end, 14).await.map_err(|e| e.to_string())?;
        let completeness = serde_json::to_value(&completeness).map_err(|e| e.to_string())?;
        let label = month_start.format("%Y-%m").to_string();
        let air = match (acc.selected.get("F"), acc.selected.get("M")) {
            (Some(f), Some(mm)) if f.1 > 0 && mm.1 > 0 => {
                let (rf, rm) = (f.0 as f64 / f.1 as f64, mm.0 as f64 / mm.1 as f64);
                (rf.max(rm) > 0.0).then(|| rf.min(rm) / rf.max(rm))
            }
            _ => None,
        };
        rows.push(MonthRow {
            month: label.clone(),
            champion: st.champion.clone(),
            challenger: st.challenger.clone(),
            requisitions: acc.requisitions,
            hires: acc.quality_loop.len(),
            quality_loop: mean(&acc.quality_loop),
            quality_static: mean(&acc.quality_static),
            rating_loop: mean(&acc.rating_loop),
            retention_12m_loop: mean(&acc.retention_loop),
            adverse_impact_ratio_gender: air,
            override_rate: (acc.overrides.1 > 0).then(|| acc.overrides.0 as f64 / acc.overrides.1 as f64),
            feedback_completeness: completeness["completeness"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((c["milestone"].as_str()?.to_string(), c["completeness"].as_f64()?)))
                .collect(),
            events: Vec::new(),
        });
        if config.progress {
            let r = rows.last().expect("pushed");
            eprintln!(
                "{label}: champion {} challenger {} — {} hires, quality {} (static {})",
                r.champion.as_deref().unwrap_or("-"),
                r.challenger.as_deref().unwrap_or("-"),
                r.hires,
                r.quality_loop.map_or("-".into(), |q| format!("{q:.3}")),
                r.quality_static.map_or("-".into(), |q| format!("{q:.3}"))
            );
        }
    }

    // Events from the registry's history, placed in their month.
    let mut events = Vec::new();
    for e in registry.events(MODEL).await.map_err(|e| e.to_string())? {
        let change = match (e.alias, &e.action) {
            (_, Action::Rollback) => "rollback",
            (_, Action::Retire) => "retire",
            (Alias::Champion, Action::Promote) => "promote",
            (Alias::Challenger, Action::Promote) => "challenger",
        };
        let month = e.at.format("%Y-%m").to_string();
        if let Some(row) = rows.iter_mut().find(|r| r.month == month) {
            row.events.push(format!(
                "{change} {}: {}",
                e.to_version.as_deref().or(e.from_version.as_deref()).unwrap_or(""),
                e.reason
            ));
        }
        events.push(Event {
            at: e.at,
            month,
            change: change.into(),
            from_version: e.from_version,
            to_version: e.to_version,
            actor: e.actor,
            reason: e.reason,
        });
    }
    if let Some(b) = bad.as_mut() {
        b.became_champion =
            events.iter().any(|e| e.change == "promote" && e.to_version.as_deref() == Some(b.version.as_str()));
        if let Some(w) = events.iter().find(|e| {
            e.at >= b.introduced
                && matches!(e.change.as_str(), "retire" | "challenger")
                && e.from_version.as_deref() == Some(b.version.as_str())
        }) {
            b.withdrawn = Some(w.at);
            b.days_live = Some((w.at - b.introduced).num_days());
            b.reason = Some(w.reason.clone());
        }
    }
    let late: Vec<&MonthRow> = rows.iter().skip(12).collect();
    let weighted = |f: &dyn Fn(&MonthRow) -> Option<f64>| {
        let (s, n) = late
            .iter()
            .filter_map(|r| f(r).map(|q| (q * r.hires as f64, r.hires as f64)))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        (n > 0.0).then(|| s / n)
    };
    let (ql, qs) = (weighted(&|r| r.quality_loop), weighted(&|r| r.quality_static));
    let mut pipeline_runs: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for s in scheduler.status().await.map_err(|e| e.to_string())? {
        pipeline_runs.insert(s.name, s.runs);
    }
    let summary = Summary {
        seed: config.sim.seed,
        months,
        drift_month: world.month_start(config.sim.drift_month).format("%Y-%m").to_string(),
        store,
        promotions: events.iter().filter(|e| e.change == "promote" && e.actor.starts_with("scheduler")).count(),
        rollbacks: events.iter().filter(|e| matches!(e.change.as_str(), "rollback" | "retire")).count(),
        rows,
        events,
        quality_loop_13_24: ql,
        quality_static_13_24: qs,
        loop_beats_static: matches!((ql, qs), (Some(a), Some(b)) if a > b),
        bad_challenger: bad,
        pipeline_runs,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_outputs(&config.out, &summary)?;
    Ok(summary)
}

/// Exports of the week: hires who started (ATS), reports due (HRIS, `;` CSV as the HRIS
/// writes it, names included: ingestion drops them), protected attributes of new applicants.
fn weekly_exports(
    sim: &Sim,
    world: &World,
    hired: &mut [Hired],
    protected: &mut Vec<String>,
    day: NaiveDate,
) -> Result<(), String> {
    let file = format!("{}", day.format("%Y-%m-%d"));
    let mut hires = Vec::new();
    let mut reports = Vec::new();
    for h in hired.iter_mut() {
        if !h.hires_exported && h.fate.hire_date <= day {
            h.hires_exported = true;
            hires.push(
                serde_json::json!({
                    "candidate_id": h.applicant.candidate_ref, "employee_number": h.employee,
                    "requisition": h.requisition.id, "job_family": h.requisition.job_family,
                    "start_date": h.fate.hire_date.to_string(), "name": h.applicant.person.full_name,
                    "email": h.applicant.person.email, "personnummer": h.applicant.person.personnummer,
                })
                .to_string(),
            );
        }
        for m in Milestone::ALL {
            if h.reported.contains(&m) || m.date_after(h.fate.hire_date) > day {
                continue;
            }
            h.reported.push(m);
            if let Some((date, employed, rating)) = world.report(&h.applicant, &h.fate, m)
                && date <= day
            {
                let p = &h.applicant.person;
                reports.push(format!(
                    "{};{};{};{};{};{};{};{};{}",
                    h.employee,
                    p.full_name,
                    p.email,
                    p.personnummer,
                    h.fate.hire_date,
                    date,
                    if employed { "Ja" } else { "Nej" },
                    rating.map(|r| r.to_string()).unwrap_or_default(),
                    if employed { "" } else { "resigned" }
                ));
            } else if let Some((date, _, _)) = world.report(&h.applicant, &h.fate, m)
                && date > day
            {
                // Reported a few days after the milestone: next week's export.
                h.reported.retain(|x| *x != m);
            }
        }
    }
    let e = |e: std::io::Error| e.to_string();
    sim.append("hires", &format!("{file}.jsonl"), None, &hires).map_err(e)?;
    sim.append(
        "hris",
        &format!("{file}.csv"),
        Some("Employee ID;Full name;E-mail;Personnummer;Hire date;Milestone date;Still employed;Performance rating;Exit reason"),
        &reports,
    )
    .map_err(e)?;
    sim.append("protected", &format!("{file}.csv"), Some("Candidate ID,Gender,Age band,Collected on"), protected)
        .map_err(e)?;
    protected.clear();
    Ok(())
}

fn write_outputs(out: &Path, s: &Summary) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    std::fs::create_dir_all(out).map_err(e)?;
    let mut csv = String::from(
        "month,champion,challenger,requisitions,hires,quality_loop,quality_static,rating_loop,retention_12m_loop,adverse_impact_ratio_gender,override_rate,completeness_6m,completeness_12m,events\n",
    );
    let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
    for r in &s.rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n",
            r.month,
            r.champion.as_deref().unwrap_or(""),
            r.challenger.as_deref().unwrap_or(""),
            r.requisitions,
            r.hires,
            f(r.quality_loop),
            f(r.quality_static),
            f(r.rating_loop),
            f(r.retention_12m_loop),
            f(r.adverse_impact_ratio_gender),
            f(r.override_rate),
            f(r.feedback_completeness.get("6m").copied()),
            f(r.feedback_completeness.get("12m").copied()),
            r.events.join(" | ").replace('"', "'")
        ));
    }
    std::fs::write(out.join("kpis.csv"), csv).map_err(e)?;
    std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?).map_err(e)?;
    std::fs::write(out.join("loop.svg"), svg(s).map_err(|e| e.to_string())?).map_err(e)?;
    Ok(())
}
