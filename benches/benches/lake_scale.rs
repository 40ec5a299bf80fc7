//! Lake scale benchmark: what the often-run analyses cost as the decision log grows, and
//! DuckDB answering the same KPI query over the same files, in the same run.
//!
//! The lake is generated straight through the lake's writer (not HTTP): per 100 decision rows,
//! one requisition with 100 candidates and 30 features each, spread over three years; the
//! last six months served by hrloop (champion 80 %, challenger 20 %, a tenth routed to a
//! human), the rest imported ATS history; two hires per requisition with their 3/6/12/24-month
//! outcomes as far as they are due; five recruiter decisions per served requisition. At
//! 10 M decision rows that is 100 k requisitions and 200 k hires.
//!
//! Each step runs in a child process of its own, so its peak RSS (from `wait4`) is that step's:
//! - `kpi`: one full KPI refresh, then one more minute of serving traffic (a new file of
//!   1 000 decisions) and the incremental refresh of the same state;
//! - `train`: training-set assembly and the 12-month logistic model (`models/
//!   success12m_logistic.toml`), as `hrloop train` runs it;
//! - `analyse`: one experiment analysis (v1 champion, v2 challenger for the last 28 days);
//! - `rejudge`: re-judging both versions on the matured outcomes of the hires they ranked;
//! - `erase`: the erasure of one person (every file that names them rewritten);
//! - DuckDB (`benches/lake_kpis_duckdb.py`): the decision-log part of the KPI refresh (first
//!   decision per hiring requisition, who ranked each hire or recently reviewed candidate,
//!   the human-review share of the last 30 days, retention by who ranked) over the same
//!   Parquet files; it also checks that its retention ratios equal hrloop's to 1e-9.
//!
//! Run: `cargo bench -p hrloop-benches --bench lake_scale` (needs python3 with duckdb).
//! `HRLOOP_BENCH_LAKE_ROWS` (default `1000000,10000000`) sets the sizes; `HRLOOP_BENCH_DIR`
//! where the lakes are written (default: the system's temporary directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Months, TimeZone, Utc};
use hrloop_benches::{Measured, measure};
use hrloop_core::{Arm, Milestone, RecruiterDecision, ReviewReason, Route, Source};
use hrloop_ingest::Pseudonymiser;
use hrloop_lake::rows::decisions::DecisionRow;
use hrloop_lake::rows::feedback::FeedbackRow;
use hrloop_lake::rows::hires::HireRow;
use hrloop_lake::rows::outcomes::OutcomeRow;
use hrloop_lake::{Lake, PartitionedWriter, Row};

const CANDIDATES: usize = 100;
const HIRED: usize = 2;
const FEEDBACK: usize = 5;
const EXTRA_FEATURES: usize = 22;
/// The requisitions one writer commits (one batch of files).
const BATCH: usize = 500;
const KEY_HEX: &str = "6c616b652d7363616c652d62656e63682d6b65792d3030303030303030303030";
/// The person the `erase` step erases: candidate 0 of requisition 7.
const ERASED: &str = "C-ERASE-ME";
/// The model the train step registers (as v1) and the experiment serves (v1 champion, v2
/// challenger).
const MODEL: &str = "success12m_logistic";
const FAMILIES: [&str; 4] = ["engineering", "sales", "support", "operations"];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

/// A deterministic uniform draw in [0, 1) from three integers.
fn u(a: u64, b: u64, c: u64) -> f64 {
    let mut z =
        a.wrapping_mul(0x9e3779b97f4a7c15) ^ b.wrapping_mul(0xbf58476d1ce4e5b9) ^ c.wrapping_mul(0x94d049bb133111eb);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The shape of a generated lake.
struct Shape {
    requisitions: usize,
}

impl Shape {
    fn opened(&self, r: usize) -> DateTime<Utc> {
        let start = now() - Months::new(36);
        let span = (now() - Duration::days(40) - start).num_seconds();
        start + Duration::seconds(span * r as i64 / self.requisitions as i64)
    }

    fn served(&self, r: usize) -> bool {
        self.opened(r) >= now() - Duration::days(183)
    }
}

fn candidate(pseudo: &Pseudonymiser, r: usize, c: usize) -> String {
    if r == 7 && c == 0 { pseudo.pseudonym("candidate", ERASED) } else { format!("p{:032x}", r * CANDIDATES + c) }
}

fn employee(r: usize, c: usize) -> String {
    format!("p{:032x}", (1u128 << 100) + (r * CANDIDATES + c) as u128)
}

fn decision(served: bool, pseudo: &Pseudonymiser, r: usize, c: usize, at: DateTime<Utc>) -> DecisionRow {
    let (rs, cs) = (r as u64, c as u64);
    let skill = u(rs, cs, 1);
    let named = [
        ("years_experience", 20.0 * u(rs, cs, 2)),
        ("skill_match", skill),
        ("assessment_score", 40.0 + 60.0 * (0.5 * skill + 0.5 * u(rs, cs, 3))),
        ("interview_score", 1.0 + 4.0 * u(rs, cs, 4)),
        ("education_level", (u(rs, cs, 5) * 5.0).floor()),
        ("career_changer", f64::from(u8::from(u(rs, cs, 6) < 0.12))),
        ("foreign_experience", f64::from(u8::from(u(rs, cs, 7) < 0.2))),
        ("soft_skill_score", u(rs, cs, 8)),
    ];
    let mut features: Vec<(String, f64)> = named.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    features.extend((0..EXTRA_FEATURES).map(|i| (format!("x{:02}", i + 9), u(rs, cs, 100 + i as u64))));
    features.sort_by(|a, b| a.0.cmp(&b.0));
    let arm = if u(rs, 0, 9) < 0.2 { Arm::Challenger } else { Arm::Champion };
    DecisionRow {
        requisition_id: format!("R{r:07}"),
        candidate_id: candidate(pseudo, r, c),
        job_family: FAMILIES[r % FAMILIES.len()].into(),
        decided_at: at,
        source: if served { Source::Serving } else { Source::AtsImport },
        stage_reached: None,
        decision: None,
        skills: None,
        features: Some(features),
        decision_id: served.then(|| format!("d{r:07}")),
        model_version: served.then(|| format!("{MODEL}/{}", if arm == Arm::Challenger { "v2" } else { "v1" })),
        arm: served.then_some(arm),
        score: served.then_some(skill),
        route: served.then(
            || {
                if u(rs, cs, 10) < 0.1 { Route::Human(ReviewReason::LowConfidence) } else { Route::Auto }
            },
        ),
        shadow_version: None,
        shadow_score: None,
    }
}

async fn write<R: Row>(lake: &Lake, batch: &str, rows: &[R]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut w = PartitionedWriter::new(lake, R::TABLE, batch, "lake_scale", now())?;
    for row in rows {
        w.push_row(row)?;
    }
    w.commit().await?;
    Ok(())
}

/// Generate the lake: decisions, hires, outcomes and feedback, batch by batch.
async fn generate(lake: &Lake, shape: &Shape) -> Result<()> {
    let pseudo = Pseudonymiser::new(&hex_key())?;
    for start in (0..shape.requisitions).step_by(BATCH) {
        let (mut decisions, mut hires, mut outcomes, mut feedback) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in start..(start + BATCH).min(shape.requisitions) {
            let opened = shape.opened(r);
            for c in 0..CANDIDATES {
                decisions.push(decision(shape.served(r), &pseudo, r, c, opened + Duration::minutes(c as i64)));
            }
            for c in 0..HIRED {
                let hired = opened + Duration::days(30);
                hires.push(HireRow {
                    employee_id: employee(r, c),
                    candidate_id: candidate(&pseudo, r, c),
                    requisition_id: format!("R{r:07}"),
                    job_family: FAMILIES[r % FAMILIES.len()].into(),
                    hire_date: hired.date_naive(),
                });
                let mut employed = true;
                for m in Milestone::ALL {
                    let due = hired + Months::new(m.months());
                    if due > now() {
                        break;
                    }
                    // Good hires (skill_match, as decided) stay and are rated higher.
                    let skill = u(r as u64, c as u64, 1);
                    employed &= u(r as u64, c as u64, 200 + u64::from(m.months())) < 0.8 + 0.18 * skill;
                    outcomes.push(OutcomeRow {
                        employee_id: employee(r, c),
                        hire_date: hired.date_naive(),
                        milestone: m,
                        milestone_date: due.date_naive(),
                        employed,
                        performance_rating: employed.then(|| {
                            1 + ((0.6 * skill + 0.4 * u(r as u64, c as u64, 300 + u64::from(m.months()))) * 4.999)
                                as i64
                        }),
                        exit_reason: None,
                    });
                }
            }
            if shape.served(r) {
                for c in 0..FEEDBACK {
                    let overrides = u(r as u64, c as u64, 11) < 0.2;
                    feedback.push(FeedbackRow {
                        requisition_id: format!("R{r:07}"),
                        candidate_id: candidate(&pseudo, r, c),
                        recruiter_id: None,
                        decision: if c < HIRED { RecruiterDecision::Hired } else { RecruiterDecision::Advanced },
                        overrides_model: overrides,
                        reason_code: None,
                        reason_text: None,
                        recorded_at: opened + Duration::days(2),
                    });
                }
            }
        }
        let batch = format!("gen{start:07}");
        write(lake, &batch, &decisions).await?;
        write(lake, &batch, &hires).await?;
        write(lake, &batch, &outcomes).await?;
        write(lake, &batch, &feedback).await?;
    }
    Ok(())
}

fn hex_key() -> Vec<u8> {
    (0..KEY_HEX.len()).step_by(2).map(|i| u8::from_str_radix(&KEY_HEX[i..i + 2], 16).expect("hex")).collect()
}

fn seconds(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// One step, in this (child) process; its timings go to `<dir>/<step>.json`.
async fn step(name: &str, dir: &Path) -> Result<()> {
    let lake = Lake::open(dir.to_str().context("lake path")?)?;
    let report = match name {
        "generate" => {
            let rows: usize = std::env::var("HRLOOP_BENCH_STEP_ROWS")?.parse()?;
            let t = Instant::now();
            generate(&lake, &Shape { requisitions: rows / CANDIDATES }).await?;
            serde_json::json!({"s": seconds(t)})
        }
        "kpi" => {
            let mut state = hrloop_serve::kpis::KpiState::default();
            let t = Instant::now();
            let families = state.refresh(&lake, &[], now()).await.map_err(anyhow::Error::msg)?;
            let full = seconds(t);
            let full_files = state.files_read();
            let text = prometheus::TextEncoder::new().encode_to_string(&families)?;
            std::fs::write(dir.join("kpis.prom"), text)?;
            // One more minute of serving: 1 000 decisions (10 requisitions) in a new file.
            let pseudo = Pseudonymiser::new(&hex_key())?;
            let minute: Vec<DecisionRow> = (0..1000)
                .map(|i| {
                    decision(true, &pseudo, 50_000_000 + i / CANDIDATES, i % CANDIDATES, now() - Duration::minutes(1))
                })
                .collect();
            write(&lake, "minute", &minute).await?;
            let t = Instant::now();
            state.refresh(&lake, &[], now() + Duration::minutes(1)).await.map_err(anyhow::Error::msg)?;
            serde_json::json!({"full_s": full, "full_files": full_files, "incremental_s": seconds(t),
                "incremental_files": state.files_read()})
        }
        "train" => {
            let spec = hrloop_models::ModelSpec::load(Path::new("models/success12m_logistic.toml"))?;
            let registry = hrloop_models::Registry::new(lake.store().clone());
            let opts = hrloop_models::TrainOptions { now: now(), actor: "bench".into(), grace_days: 14 };
            let t = Instant::now();
            let trained = hrloop_models::train_with_progress(&lake, &registry, &spec, &opts, &mut |_, _| {}).await?;
            serde_json::json!({"s": seconds(t), "rows": trained.card.rows.train, "auc": trained.card.metrics.roc_auc})
        }
        "analyse" => {
            // v1 champion, then a copy of it as the v2 challenger for the last 28 days (the
            // default policy's longest experiment), as the served rows say.
            let registry = hrloop_models::Registry::new(lake.store().clone());
            let (artifact, card) = (registry.artifact(MODEL, "v1").await?, registry.card(MODEL, "v1").await?);
            let v2 = registry.register(MODEL, artifact, card).await?;
            anyhow::ensure!(v2 == "v2", "the copy registered as {v2}");
            let change = |days: i64| hrloop_models::registry::ChangeRequest {
                actor: "bench".into(),
                reason: "bench".into(),
                evidence: serde_json::Value::Null,
                at: now() - Duration::days(days),
            };
            use hrloop_models::registry::Alias;
            registry.promote(MODEL, "v1", Alias::Champion, change(200)).await?;
            registry.promote(MODEL, "v2", Alias::Challenger, change(28)).await?;
            let policy = hrloop_models::experiment::Policy::default();
            let t = Instant::now();
            let verdict = hrloop_models::experiment::analyse(&lake, MODEL, &policy, Vec::new(), now()).await?;
            let decision = verdict.map(|v| v.decision.as_str().to_string());
            serde_json::json!({"s": seconds(t), "decision": decision})
        }
        "rejudge" => {
            let t = Instant::now();
            let r = hrloop_models::rejudge::rejudge(&lake, MODEL, now(), 14, 0.05, 30).await?;
            serde_json::json!({"s": seconds(t), "judged": r.is_some()})
        }
        "erase" => {
            let pseudo = Pseudonymiser::new(&hex_key())?;
            let req = hrloop_privacy::erase::ErasureRequest {
                external_id: ERASED.into(),
                reason: "bench".into(),
                actor: "bench".into(),
                at: now(),
            };
            let t = Instant::now();
            hrloop_privacy::erase(&lake, &pseudo, &req).await?;
            serde_json::json!({"s": seconds(t)})
        }
        other => bail!("unknown step {other}"),
    };
    std::fs::write(dir.join(format!("{name}.json")), report.to_string())?;
    Ok(())
}

fn mib(m: &Measured) -> f64 {
    m.max_rss as f64 / (1024.0 * 1024.0)
}

fn read_json(path: PathBuf) -> Result<serde_json::Value> {
    Ok(serde_json::from_slice(&std::fs::read(&path).with_context(|| path.display().to_string())?)?)
}

/// The allocator `hrloop` itself runs with (see hrloop-cli's main.rs), so time and memory are
/// what the command would show.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(i) = args.iter().position(|a| a == "--step") {
        let (name, dir) = (args.get(i + 1).context("step name")?, args.get(i + 2).context("lake dir")?);
        return rt.block_on(step(name, Path::new(dir)));
    }
    // The workspace root: the model spec and the DuckDB script are read from there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf();
    let sizes = std::env::var("HRLOOP_BENCH_LAKE_ROWS").unwrap_or_else(|_| "1000000,10000000".into());
    let base = std::env::var("HRLOOP_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let exe = std::env::current_exe()?;
    println!("| decision rows | step | time | peak RSS |");
    println!("| --- | --- | --- | --- |");
    for rows in sizes.split(',').map(|s| s.trim().parse::<usize>()) {
        let rows = rows.context("HRLOOP_BENCH_LAKE_ROWS: comma-separated row counts")?;
        let tmp = tempfile::tempdir_in(&base)?;
        let dir = tmp.path();
        // Linux counts a parent's resident memory at fork in its child's peak, so this process
        // stays small: even generating runs in a child.
        let run = |name: &str| -> Result<(Measured, serde_json::Value)> {
            let m = measure(
                Command::new(&exe)
                    .current_dir(&root)
                    .env("HRLOOP_BENCH_STEP_ROWS", rows.to_string())
                    .args(["--step", name])
                    .arg(dir),
            )?;
            Ok((m, read_json(dir.join(format!("{name}.json")))?))
        };
        let (_, g) = run("generate")?;
        println!("| {rows} | generate (not a contender) | {:.1} s | |", g["s"].as_f64().unwrap_or_default());
        // DuckDB first, on the lake exactly as generated (the kpi step appends a minute).
        let duck = measure(
            Command::new("python3")
                .current_dir(&root)
                .args(["benches/lake_kpis_duckdb.py", "--out"])
                .arg(dir.join("duckdb.json"))
                .arg(dir),
        )?;
        let duck_json = read_json(dir.join("duckdb.json"))?;
        let (kpi, k) = run("kpi")?;
        let check = Command::new("python3")
            .current_dir(&root)
            .args(["benches/lake_kpis_duckdb.py", "--check"])
            .arg(dir.join("kpis.prom"))
            .arg("--answers")
            .arg(dir.join("duckdb.json"))
            .status()?;
        anyhow::ensure!(check.success(), "DuckDB and hrloop disagree on retention");
        println!(
            "| {rows} | KPI refresh, full (hrloop, {} files) | {:.2} s | {:.0} MiB (with the incremental) |",
            k["full_files"],
            k["full_s"].as_f64().unwrap_or_default(),
            mib(&kpi)
        );
        println!(
            "| {rows} | KPI refresh, incremental (hrloop, {} new file) | {:.3} s | |",
            k["incremental_files"],
            k["incremental_s"].as_f64().unwrap_or_default()
        );
        println!(
            "| {rows} | KPI query, decision-log part (DuckDB) | {:.2} s | {:.0} MiB |",
            duck_json["query_s"].as_f64().unwrap_or_default(),
            mib(&duck)
        );
        let (train, tr) = run("train")?;
        println!(
            "| {rows} | training-set assembly + 12-month logistic ({} rows, AUC {:.3}) | {:.2} s | {:.0} MiB |",
            tr["rows"],
            tr["auc"].as_f64().unwrap_or_default(),
            tr["s"].as_f64().unwrap_or_default(),
            mib(&train)
        );
        let (analyse, a) = run("analyse")?;
        println!(
            "| {rows} | experiment analysis (28 days, verdict {}) | {:.2} s | {:.0} MiB |",
            a["decision"],
            a["s"].as_f64().unwrap_or_default(),
            mib(&analyse)
        );
        let (rejudge, j) = run("rejudge")?;
        println!(
            "| {rows} | re-judging v1 and v2 | {:.2} s | {:.0} MiB |",
            j["s"].as_f64().unwrap_or_default(),
            mib(&rejudge)
        );
        let (erase, e) = run("erase")?;
        println!(
            "| {rows} | erasure of one person | {:.2} s | {:.0} MiB |",
            e["s"].as_f64().unwrap_or_default(),
            mib(&erase)
        );
        println!(
            "(wall time with process start: KPI {:.1} s, train {:.1} s, erase {:.1} s)",
            kpi.wall.as_secs_f64(),
            train.wall.as_secs_f64(),
            erase.wall.as_secs_f64()
        );
    }
    Ok(())
}
