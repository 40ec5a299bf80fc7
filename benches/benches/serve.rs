//! Serving benchmark: `POST /v1/rank` with 100 candidates x 30 features, loaded by `wrk` from a
//! second process on loopback. Side by side in one run: hrloop ranking (A/B), hrloop in shadow
//! mode, hrloop's parse-and-echo endpoint (the floor), FastAPI + scikit-learn scoring the same
//! model, and hrloop ranking while 100 promote/rollback swaps happen.
//!
//! Run: `cargo bench -p hrloop-benches --bench serve` (needs `wrk`, and python3 with fastapi,
//! uvicorn, scikit-learn). `HRLOOP_BENCH_SECONDS` (default 8) sets each run's length.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hrloop_core::SystemClock;
use hrloop_ingest::Pseudonymiser;
use hrloop_lake::Lake;
use hrloop_models::features::{FeaturePipeline, RawFeatures};
use hrloop_models::model::{Estimator, TrainedModel};
use hrloop_models::spec::{Algorithm, FeatureSpec};
use hrloop_models::{Alias, ChangeRequest, ModelCard, ModelSpec, Registry};
use hrloop_serve::{Mode, Role, ServeConfig, TokenStore};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FEATURES: usize = 30;
const FAMILIES: [&str; 6] =
    ["software_engineering", "data_science", "product_management", "sales", "customer_support", "finance"];

fn names() -> Vec<String> {
    (0..FEATURES).map(|i| format!("f{i:02}")).collect()
}

fn model(seed: u64) -> TrainedModel {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let spec = FeatureSpec { numeric: names(), categorical: vec!["job_family".into()], ..Default::default() };
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for i in 0..4000 {
        let mut r = RawFeatures::default();
        let mut z = 0.0;
        for (j, n) in names().iter().enumerate() {
            let v = next();
            if (i + j) % 17 != 0 {
                r.numeric.insert(n.clone(), v);
            }
            z += if j % 3 == 0 { v - 0.5 } else { 0.0 };
        }
        r.categorical.insert("job_family".into(), FAMILIES[i % 6].to_string());
        rows.push(r);
        y.push(z + 0.3 * (next() - 0.5) > 0.0);
    }
    let pipeline = FeaturePipeline::fit(&spec, &rows);
    let x = pipeline.matrix(rows.iter().map(|r| pipeline.align(r)));
    let estimator =
        Estimator::fit(&Algorithm::LogisticRegression { l2: 1.0, max_iterations: 200 }, x.view(), &y).expect("fits");
    TrainedModel { pipeline, estimator }
}

fn card() -> Result<ModelCard> {
    let spec: ModelSpec = toml::from_str(include_str!("../../models/success12m_logistic.toml"))?;
    Ok(ModelCard::new(spec, "bench", chrono::Utc::now()))
}

fn body() -> String {
    let candidates: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            let f: serde_json::Map<String, serde_json::Value> = names()
                .into_iter()
                .enumerate()
                .map(|(j, n)| (n, serde_json::json!(((i * 31 + j * 17) % 100) as f64 / 100.0)))
                .collect();
            serde_json::json!({"id": format!("CAND-{i:04}"), "features": f})
        })
        .collect();
    serde_json::json!({"requisition": {"id": "REQ-ID", "job_family": "sales"}, "candidates": candidates}).to_string()
}

#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn parse_ms(v: &str) -> f64 {
    let num: f64 = v.trim_end_matches(|c: char| c.is_alphabetic()).parse().unwrap_or(f64::NAN);
    if v.ends_with("us") {
        num / 1000.0
    } else if v.ends_with("ms") {
        num
    } else if v.ends_with('s') {
        num * 1000.0
    } else {
        num
    }
}

fn wrk(url: &str, body: &Path, token: &str, seconds: u64) -> Result<Load> {
    wrk_with(url, body, token, seconds, 16)
}

/// `wrk` with `connections` open connections (on at most two threads).
fn wrk_with(url: &str, body: &Path, token: &str, seconds: u64, connections: u32) -> Result<Load> {
    let out = Command::new("wrk")
        .args([
            &format!("-t{}", connections.min(2)),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/rank.lua"))
        .arg(url)
        .env("HRLOOP_BENCH_BODY", body)
        .env("HRLOOP_BENCH_TOKEN", token)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut load = Load { rps: f64::NAN, p50_ms: f64::NAN, p99_ms: f64::NAN, non_2xx: 0 };
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.as_slice() {
            ["Requests/sec:", v] => load.rps = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => load.p50_ms = parse_ms(v),
            ["99%", v] => load.p99_ms = parse_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => load.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    if load.rps.is_nan() {
        bail!("wrk printed no result:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(load)
}

async fn server(lake: &Lake, mode: Mode, lake_max_delay_ms: u64) -> Result<(String, Arc<hrloop_serve::AppState>)> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let config = ServeConfig {
        model: "bench".into(),
        mode,
        echo: true,
        lake_max_delay_ms,
        // The KPI refresh (background analytics over the whole store, every 60 s by default at
        // the lowest CPU priority) stays out of this serving measurement: four servers in one
        // process would otherwise scan the multi-million-row lake four times a minute.
        kpi_refresh_ms: 3_600_000,
        outcomes_mapping: data.join("mappings/hris_outcomes.toml"),
        feedback_mapping: data.join("mappings/api_feedback.toml"),
        taxonomy: data.join("taxonomy"),
        ..ServeConfig::default()
    };
    let state = hrloop_serve::start(config, lake.clone(), Pseudonymiser::new(&[1u8; 32])?, Arc::new(SystemClock))
        .await
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The server loop `hrloop serve` runs (connection cap, timeouts), not a bare axum::serve.
    tokio::spawn(hrloop_serve::server::serve(listener, state.clone(), std::future::pending()));
    Ok((format!("http://{addr}"), state))
}

fn fastapi(model_json: &Path, token: &str, port: u16) -> Result<Child> {
    let child = Command::new("python3")
        .args([
            "-m",
            "uvicorn",
            "serve_fastapi:app",
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--port",
            &port.to_string(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HRLOOP_BENCH_MODEL", model_json)
        .env("HRLOOP_BENCH_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so stopping it stops uvicorn's worker processes too.
        .process_group(0)
        .spawn()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("FastAPI did not start (pip install fastapi uvicorn scikit-learn)")
}

fn main() -> Result<()> {
    let seconds: u64 = std::env::var("HRLOOP_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    // The server runs in this process on its own 2-thread runtime; wrk is the second process.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let lake = Lake::open(dir.path().to_str().context("utf-8")?)?;
    let registry = Registry::new(lake.store().clone());
    let m1 = model(1);
    rt.block_on(async {
        registry.register("bench", serde_json::to_vec(&m1)?.into(), card()?).await?;
        registry.register("bench", serde_json::to_vec(&model(2))?.into(), card()?).await?;
        let req = |r: &str| ChangeRequest {
            actor: "bench".into(),
            reason: r.into(),
            evidence: serde_json::Value::Null,
            at: chrono::Utc::now(),
        };
        registry.promote("bench", "v1", Alias::Champion, req("bench")).await?;
        registry.promote("bench", "v2", Alias::Challenger, req("bench")).await?;
        anyhow::Ok(())
    })?;
    let token = TokenStore::in_store(dir.path()).add("wrk", Role::Recruiter, chrono::Utc::now())?;
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, body())?;
    let Estimator::Logistic { weights, intercept } = &m1.estimator else { bail!("logistic") };
    let model_json = dir.path().join("model.json");
    std::fs::write(
        &model_json,
        serde_json::to_vec(&serde_json::json!({
            "numeric": m1.pipeline.numeric, "levels": m1.pipeline.categorical[0].levels,
            "weights": weights, "intercept": intercept,
        }))?,
    )?;

    let default_delay = hrloop_serve::ServeConfig::default().lake_max_delay_ms;
    let (ab_url, ab_state) = rt.block_on(server(&lake, Mode::Ab, default_delay))?;
    let (shadow_url, shadow_state) = rt.block_on(server(&lake, Mode::Shadow, default_delay))?;
    // The same A/B server, but moving decisions to the lake as they come: what the server
    // sustains when the Parquet encoding must keep up with the load.
    let (eager_url, eager_state) = rt.block_on(server(&lake, Mode::Ab, 0))?;
    println!(
        "serving benchmark: 100 candidates x {FEATURES} features per request, wrk -t2 -c16 -d{seconds}s, 2 cores shared"
    );
    println!("{:<52} {:>10} {:>9} {:>9} {:>8}", "contender", "req/s", "p50 ms", "p99 ms", "non-2xx");
    let row = |name: &str, l: &Load| {
        println!("{name:<52} {:>10.0} {:>9.2} {:>9.2} {:>8}", l.rps, l.p50_ms, l.p99_ms, l.non_2xx)
    };
    // For profiling: just one path (`rank` or `shadow`).
    match std::env::var("HRLOOP_BENCH_ONLY").as_deref() {
        Ok("rank") => {
            row("hrloop /v1/rank, A/B 20 %", &wrk(&format!("{ab_url}/v1/rank"), &body_path, &token, seconds)?);
            return Ok(());
        }
        Ok("shadow") => {
            row("hrloop /v1/rank, shadow", &wrk(&format!("{shadow_url}/v1/rank"), &body_path, &token, seconds)?);
            return Ok(());
        }
        _ => {}
    }
    // Logged decisions reach the lake when the server is quiet: after each run, everything is
    // moved before the next run starts (so no run pays for an earlier one), and how long that
    // takes is reported.
    let mut lake_lag = Vec::new();
    let mut drain = |name: &str, state: &hrloop_serve::AppState| -> Result<()> {
        let t = std::time::Instant::now();
        rt.block_on(state.log.flush()).map_err(anyhow::Error::msg)?;
        lake_lag.push(format!("{name} {:.1} s", t.elapsed().as_secs_f64()));
        Ok(())
    };
    let echo = wrk(&format!("{ab_url}/v1/echo"), &body_path, &token, seconds)?;
    row("hrloop parse-and-echo (floor)", &echo);
    let ab = wrk(&format!("{ab_url}/v1/rank"), &body_path, &token, seconds)?;
    row("hrloop /v1/rank, A/B 20 % (score, explain, log+fsync)", &ab);
    drain("A/B", &ab_state)?;
    // The same ranking without the decision log, audit and metrics: what scoring alone costs.
    let score = wrk(&format!("{ab_url}/v1/score"), &body_path, &token, seconds)?;
    row("hrloop scoring only (no log, audit, metrics)", &score);
    let shadow = wrk(&format!("{shadow_url}/v1/rank"), &body_path, &token, seconds)?;
    row("hrloop /v1/rank, shadow (challenger off-path)", &shadow);
    drain("shadow", &shadow_state)?;
    let sustained = wrk(&format!("{eager_url}/v1/rank"), &body_path, &token, seconds)?;
    row("hrloop /v1/rank, A/B, moving to the lake meanwhile", &sustained);
    drain("moving meanwhile", &eager_state)?;

    // 100 swaps during the load: another "process" (the registry) flips the champion.
    let swaps = {
        let registry = registry.clone();
        let state = ab_state.clone();
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let mut done = 0;
            for i in 0..100 {
                std::thread::sleep(Duration::from_millis(seconds * 1000 / 110));
                let r = handle.block_on(async {
                    let req = ChangeRequest {
                        actor: "bench".into(),
                        reason: "swap".into(),
                        evidence: serde_json::Value::Null,
                        at: chrono::Utc::now(),
                    };
                    let target = if i % 2 == 0 { "v2" } else { "v1" };
                    registry.promote("bench", target, Alias::Champion, req).await?;
                    state.live.refresh().await?;
                    anyhow::Ok(())
                });
                if r.is_ok() {
                    done += 1;
                }
            }
            done
        })
    };
    let during = wrk(&format!("{ab_url}/v1/rank"), &body_path, &token, seconds)?;
    let swaps_done = swaps.join().map_err(|_| anyhow::anyhow!("swap thread panicked"))?;
    row(&format!("hrloop /v1/rank during {swaps_done} promote/rollback swaps"), &during);
    drain("swaps", &ab_state)?;

    let port = 18000 + (std::process::id() % 1000) as u16;
    let mut py = fastapi(&model_json, &token, port)?;
    let fast = wrk(&format!("http://127.0.0.1:{port}/v1/rank"), &body_path, &token, seconds);
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", py.id())]).status();
    let _ = py.wait();
    let fast = fast?;
    row("FastAPI + scikit-learn (2 workers, same model)", &fast);

    // One request at a time: what a single ranking costs over parse-and-echo when nothing queues.
    let echo_one = wrk_with(&format!("{ab_url}/v1/echo"), &body_path, &token, seconds / 2, 1)?;
    row("hrloop parse-and-echo, 1 connection", &echo_one);
    let rank_one = wrk_with(&format!("{ab_url}/v1/rank"), &body_path, &token, seconds / 2, 1)?;
    row("hrloop /v1/rank A/B, 1 connection", &rank_one);
    drain("1 connection", &ab_state)?;

    println!();
    println!(
        "logged decisions all in the lake (Parquet) after the load stopped: {} (each run's rows moved before the next run)",
        lake_lag.join(", ")
    );
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "throughput vs FastAPI: {:.1}x (target >= 10x), p99 {:.2} vs {:.2} ms (target lower): {}",
        ab.rps / fast.rps,
        ab.p99_ms,
        fast.p99_ms,
        verdict(ab.rps >= 10.0 * fast.rps && ab.p99_ms < fast.p99_ms)
    );
    let overhead = echo.rps / ab.rps - 1.0;
    println!(
        "scoring overhead over parse-and-echo: {:+.0} % time per request (target <= 30 %): {}",
        overhead * 100.0,
        verdict(overhead <= 0.30)
    );
    println!(
        "  of which scoring alone {:+.0} %, the durable decision log + audit + metrics {:+.0} %",
        (echo.rps / score.rps - 1.0) * 100.0,
        (echo.rps / ab.rps - echo.rps / score.rps) * 100.0
    );
    let shadow_p99 = shadow.p99_ms / ab.p99_ms - 1.0;
    println!(
        "  one request at a time: ranking p50 {:.2} ms vs echo {:.2} ms ({:+.0} %)",
        rank_one.p50_ms,
        echo_one.p50_ms,
        (rank_one.p50_ms / echo_one.p50_ms - 1.0) * 100.0
    );
    println!("shadow mode p99: {:+.0} % (target <= 10 %): {}", shadow_p99 * 100.0, verdict(shadow_p99 <= 0.10));
    println!(
        "swaps: {swaps_done} done, {} non-2xx responses during them (target 0): {}",
        during.non_2xx,
        verdict(during.non_2xx == 0 && swaps_done == 100)
    );
    Ok(())
}
