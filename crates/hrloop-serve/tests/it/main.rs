//! The API in process (no network): auth matrix, sticky A/B shares, human-review routing,
//! bad input, hot swaps under load, the decision log.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use hrloop_core::ManualClock;
use hrloop_ingest::Pseudonymiser;
use hrloop_lake::{Lake, Table};
use hrloop_models::features::{FeaturePipeline, RawFeatures};
use hrloop_models::model::{Estimator, TrainedModel};
use hrloop_models::spec::FeatureSpec;
use hrloop_models::{Alias, ChangeRequest, ModelCard, ModelSpec, Registry};
use hrloop_serve::{AppState, Role, ServeConfig, TokenStore, router};
use tower::ServiceExt;

mod hardening;

const FEATURES: [&str; 3] = ["interview_score", "assessment_score", "soft_skill_score"];

fn model(weight: f64) -> TrainedModel {
    let spec = FeatureSpec {
        numeric: FEATURES.iter().map(|s| s.to_string()).collect(),
        categorical: vec!["job_family".into()],
        ..Default::default()
    };
    let rows: Vec<RawFeatures> = (0..50)
        .map(|i| RawFeatures {
            numeric: FEATURES.iter().map(|f| (f.to_string(), (i % 10) as f64)).collect(),
            categorical: [("job_family".to_string(), if i % 2 == 0 { "sales" } else { "finance" }.to_string())].into(),
        })
        .collect();
    let pipeline = FeaturePipeline::fit(&spec, &rows);
    let n = pipeline.columns().len();
    TrainedModel {
        pipeline,
        estimator: Estimator::Logistic { weights: vec![weight; n], intercept: 0.0 },
        recruiter: None,
    }
}

fn card() -> ModelCard {
    let spec: ModelSpec = toml::from_str(include_str!("../../../../models/success12m_logistic.toml")).unwrap();
    ModelCard::new(spec, "test", Utc::now())
}

fn req(reason: &str) -> ChangeRequest {
    ChangeRequest { actor: "test".into(), reason: reason.into(), evidence: serde_json::Value::Null, at: Utc::now() }
}

struct Fx {
    _dir: tempfile::TempDir,
    lake: Lake,
    registry: Registry,
    state: Arc<AppState>,
    tokens: Vec<(Role, String)>,
}

async fn fixture(config: ServeConfig) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let registry = Registry::new(lake.store().clone());
    for w in [3.0, -3.0] {
        registry.register("m", serde_json::to_vec(&model(w)).unwrap().into(), card()).await.unwrap();
    }
    registry.promote("m", "v1", Alias::Champion, req("first")).await.unwrap();
    registry.promote("m", "v2", Alias::Challenger, req("try")).await.unwrap();
    let store = TokenStore::in_store(dir.path());
    let tokens = Role::ALL.iter().map(|r| (*r, store.add(r.name(), *r, Utc::now()).unwrap())).collect();
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()));
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let config = ServeConfig {
        model: "m".into(),
        flush_ms: 3_600_000,
        outcomes_mapping: data.join("mappings/hris_outcomes.toml"),
        feedback_mapping: data.join("mappings/api_feedback.toml"),
        taxonomy: data.join("taxonomy"),
        ..config
    };
    let state =
        hrloop_serve::start(config, lake.clone(), Pseudonymiser::new(&[9u8; 32]).unwrap(), clock).await.unwrap();
    Fx { _dir: dir, lake, registry, state, tokens }
}

impl Fx {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let mut b = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let resp = router(self.state.clone()).oneshot(b.body(body.into()).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&bytes).into())),
        )
    }

    async fn rank(&self, requisition: &str, n: usize) -> (StatusCode, serde_json::Value) {
        let candidates: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"id": format!("{requisition}-C{i}"), "features": {
                "interview_score": (i % 10) as f64, "assessment_score": ((i * 7) % 10) as f64, "soft_skill_score": ((i * 3) % 10) as f64}}))
            .collect();
        let body =
            serde_json::json!({"requisition": {"id": requisition, "job_family": "sales"}, "candidates": candidates});
        self.call("POST", "/v1/rank", Some(self.token(Role::Recruiter)), body.to_string()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_every_role() {
    let fx = fixture(ServeConfig::default()).await;
    let rank = serde_json::json!({"requisition": {"id": "R1", "job_family": "sales"}, "candidates": [{"id": "C1", "features": {}}]}).to_string();
    let change = r#"{"version": "v1", "reason": "matrix"}"#;
    let feedback =
        r#"[{"requisition_id": "R1", "candidate_id": "C1", "decision": "advanced", "overrides_model": true}]"#;
    let outcomes = r#"[{"Employee ID": "E1", "Hire date": "2025-01-10", "Milestone date": "2025-04-10", "Still employed": "Ja", "Performance rating": "4", "Exit reason": ""}]"#;
    // (method, path, body, roles allowed besides admin)
    let endpoints: Vec<(&str, &str, &str, Vec<Role>)> = vec![
        ("POST", "/v1/rank", &rank, vec![Role::Recruiter]),
        ("GET", "/v1/models", "", Role::ALL.to_vec()),
        ("POST", "/v1/models/m/promote", change, vec![Role::OnCall]),
        ("POST", "/v1/feedback", feedback, vec![Role::Recruiter]),
        ("POST", "/v1/outcomes", outcomes, vec![Role::DataTeam]),
        ("POST", "/v1/models/m/rollback", change, vec![Role::OnCall]),
        ("POST", "/v1/erasures/verify", r#"{"person": "C404"}"#, vec![]),
        ("POST", "/v1/erasures", r#"{"person": "C404", "reason": "matrix"}"#, vec![]),
    ];
    for (method, path, body, allowed) in &endpoints {
        let (s, _) = fx.call(method, path, None, body.to_string()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
        let (s, _) = fx.call(method, path, Some("hrl_forged"), body.to_string()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} with a forged token");
        for role in Role::ALL {
            let (s, v) = fx.call(method, path, Some(fx.token(role)), body.to_string()).await;
            if role == Role::Admin || allowed.contains(&role) {
                assert!(
                    s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN && !s.is_server_error(),
                    "{method} {path} as {role:?}: {s} {v}"
                );
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path} as {role:?}: {v}");
            }
        }
    }
    for open in ["/healthz", "/readyz", "/metrics"] {
        let (s, _) = fx.call("GET", open, None, "").await;
        assert_eq!(s, StatusCode::OK, "{open} needs no token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_percent_of_requisitions_go_to_the_challenger_and_stay_there() {
    let fx = fixture(ServeConfig::default()).await;
    let live = fx.state.live.snapshot();
    let n = 10_000;
    let on_challenger = (0..n)
        .filter(|i| hrloop_serve::api::assign(&live, &fx.state.config, &format!("REQ-{i}")) == "challenger")
        .count();
    let share = on_challenger as f64 / n as f64;
    assert!((0.18..=0.22).contains(&share), "challenger share {share}");
    // Sticky: the same requisition always lands on the same arm, through the API too.
    for i in 0..30 {
        let r = format!("REQ-{i}");
        let (_, a) = fx.rank(&r, 2).await;
        let (_, b) = fx.rank(&r, 2).await;
        assert_eq!(a["arm"], b["arm"]);
        assert_eq!(a["arm"], hrloop_serve::api::assign(&live, &fx.state.config, &r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn about_ten_percent_are_sampled_for_human_audit() {
    // A confident model (|weight| large) on complete profiles: only the audit sample goes to humans.
    let fx = fixture(ServeConfig { challenger_share: 0.0, ..ServeConfig::default() }).await;
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    let mut total = 0;
    let mut explained = 0;
    for r in 0..100 {
        let (s, v) = fx.rank(&format!("REQ-{r}"), 100).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for c in v["candidates"].as_array().unwrap() {
            total += 1;
            let key = c["route"]["reason"].as_str().unwrap_or("auto").to_string();
            *reasons.entry(key).or_default() += 1;
            let why = c["explanation"].as_array().unwrap();
            assert!(why.len() <= 3, "{why:?}");
            assert!(
                why.iter().all(|t| !t.as_str().unwrap().ends_with("by 0.00")),
                "no reason that moved nothing: {why:?}"
            );
            explained += why.len();
        }
    }
    assert!(explained > 2 * total, "most candidates get three reasons: {explained} for {total}");
    let audit = *reasons.get("random_audit").unwrap_or(&0) as f64 / total as f64;
    let low = *reasons.get("low_confidence").unwrap_or(&0) as f64 / total as f64;
    // Audit is drawn among candidates not already routed for low confidence.
    let expected = 0.10 * (1.0 - low);
    assert!((audit - expected).abs() < 0.015, "audit share {audit}, expected about {expected} ({reasons:?})");
    assert_eq!(reasons.get("edge_case"), None, "complete profiles in a known job family are not edge cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_4xx_with_the_offending_field() {
    let fx = fixture(ServeConfig { max_candidates: 5, max_body_bytes: 64 * 1024, ..ServeConfig::default() }).await;
    let t = fx.token(Role::Recruiter);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "key must be a string"),
        ("".into(), StatusCode::BAD_REQUEST, "EOF"),
        (r#"{"candidates": []}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "requisition"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": []}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates: at least one"),
        (r#"{"requisition": {"id": 7, "job_family": "sales"}, "candidates": []}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "requisition.id"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "C", "features": {"interview_score": "high"}}]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[0].features.interview_score"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "C", "features": {"x": 1e999}}]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[0].features.x: must be a finite number"),
        // A feature given twice (the second spelled with an escape) is refused, not silently resolved.
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "C", "features": {"interview_score": 3, "interview\u005fscore": 4}}]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[0].features.interview_score: given twice"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "C", "colour": 1}]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[0]"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": ""}]}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[0].id"),
        (format!(r#"{{"requisition": {{"id": "R", "job_family": "sales"}}, "candidates": [{}]}}"#, vec![r#"{"id": "C"}"#; 6].join(",")), StatusCode::UNPROCESSABLE_ENTITY, "at most 5"),
        (format!(r#"{{"requisition": {{"id": "R", "job_family": "{}"}}, "candidates": []}}"#, "x".repeat(100_000)), StatusCode::PAYLOAD_TOO_LARGE, ""),
    ];
    for (body, want, text) in cases {
        let (s, v) = fx.call("POST", "/v1/rank", Some(t), body.clone()).await;
        assert_eq!(s, want, "body {}: {v}", &body[..body.len().min(80)]);
        assert!(v.to_string().contains(text), "{v} should mention {text:?}");
    }
    let (s, _) = fx.call("GET", "/v1/nothing", Some(t), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_never_fail_or_mix_versions() {
    let fx = Arc::new(fixture(ServeConfig { challenger_share: 0.0, ..ServeConfig::default() }).await);
    let mut load = Vec::new();
    for w in 0..4 {
        let fx = fx.clone();
        load.push(tokio::spawn(async move {
            let mut versions = std::collections::BTreeSet::new();
            for i in 0..60 {
                let (s, v) = fx.rank(&format!("W{w}-{i}"), 20).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                versions.insert(v["model_version"].as_str().unwrap().to_string());
            }
            versions
        }));
    }
    for i in 0..20 {
        // Another process changes the registry; the server follows on refresh (its poller).
        let target = if i % 2 == 0 { "v2" } else { "v1" };
        fx.registry.promote("m", target, Alias::Champion, req("swap")).await.unwrap();
        fx.state.live.refresh().await.unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in load {
        seen.extend(t.await.unwrap());
    }
    assert!(seen.iter().all(|v| v == "m/v1" || v == "m/v2"), "{seen:?}");
    // Rollback through the API: the very next response comes from the previous version.
    let (_, before) = fx.rank("R-after", 3).await;
    let (s, e) = fx
        .call("POST", "/v1/models/m/rollback", Some(fx.token(Role::OnCall)), r#"{"reason": "bad override rate"}"#)
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, after) = fx.rank("R-after", 3).await;
    assert_eq!(after["model_version"], format!("m/{}", e["to_version"].as_str().unwrap()));
    assert_ne!(after["model_version"], before["model_version"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_decisions_reach_the_lake_pseudonymised() {
    let fx = fixture(ServeConfig::default()).await;
    let (s, v) = fx.rank("REQ-LOG", 7).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Durable before the response: the write-ahead log already holds all seven.
    let wal_root = fx.lake.store().local_root().unwrap().join("_wal");
    let instances: Vec<_> = std::fs::read_dir(&wal_root).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(instances.len(), 1, "one log per server process: {instances:?}");
    let wal = std::fs::read(instances[0].join("decisions.wal")).unwrap();
    let logged = hrloop_serve::decision_log::read_segment(&wal);
    assert_eq!(logged.len(), 1, "one frame per ranking");
    assert_eq!(logged[0].candidates.len(), 7);
    assert_eq!(logged[0].requisition_id, "REQ-LOG");
    assert_eq!(logged[0].feature_names.len(), 3, "names once per ranking");
    assert!(logged[0].candidates.iter().all(|c| c.candidate_id.starts_with('p')
        && matches!(&c.features, hrloop_serve::decision_log::Features::Values(v) if v.iter().count() == 3)));
    assert!(!String::from_utf8_lossy(&wal).contains("REQ-LOG-C0"), "raw candidate ids never reach the log");
    fx.state.log.flush().await.unwrap();
    let scan =
        fx.lake.scan(Table::Decisions, Some(&["decision_id", "candidate_id", "source", "arm", "route"])).await.unwrap();
    assert_eq!(scan.num_rows(), 7);
    // Flushing again adds nothing.
    fx.state.log.flush().await.unwrap();
    assert_eq!(fx.lake.scan(Table::Decisions, Some(&["decision_id"])).await.unwrap().num_rows(), 7);
    // The read of person-level data is in the audit trail: who, what, when.
    fx.state.audit.flush().await;
    let audit = hrloop_lake::audit::Audit::new(fx.lake.store().clone());
    let records = audit.records().await.unwrap();
    let rank = records.iter().find(|r| r.entry.action == "rank").expect("a rank record");
    assert_eq!(rank.entry.actor, "recruiter");
    assert_eq!(rank.entry.target, "requisition REQ-LOG");
    assert_eq!(rank.entry.details["candidates"], 7);
    assert!(audit.verify().await.unwrap().ok);
}

/// Source files (segment names) of the served decisions in the lake.
async fn moved_segments(lake: &Lake) -> std::collections::BTreeSet<String> {
    use arrow_array::cast::AsArray;
    let scan = lake.scan(Table::Decisions, Some(&["source_file"])).await.unwrap();
    scan.batches
        .iter()
        .flat_map(|b| b.column(0).as_string::<i32>().iter().flatten().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_moved_again_after_its_files_were_compacted_is_not_doubled() {
    let fx = fixture(ServeConfig::default()).await;
    let wal_root = fx.lake.store().local_root().unwrap().join("_wal");
    let instance = std::fs::read_dir(&wal_root).unwrap().flatten().next().unwrap().path();
    let mut copy = Vec::new();
    for r in 0..4 {
        fx.rank(&format!("REQ-{r}"), 5).await;
        // The last segment as the crash will leave it: moved, but not yet removed.
        copy = std::fs::read(instance.join("decisions.wal")).unwrap();
        fx.state.log.flush().await.unwrap();
    }
    let before = moved_segments(&fx.lake).await;
    assert_eq!(before.len(), 4, "{before:?}");
    let rows = fx.lake.scan(Table::Decisions, Some(&["decision_id"])).await.unwrap().num_rows();
    assert_eq!(rows, 20);
    // The compaction renames the segments' files...
    let how = hrloop_lake::Compaction { min_files: 2, at: Utc::now(), ..Default::default() };
    let compacted = fx.lake.compact(Table::Decisions, &how).await.unwrap();
    assert_eq!(compacted.files_merged, 4, "{compacted:?}");
    // ...then a server that died between the last segment's commit and its removal restarts.
    let crashed = tempfile::tempdir().unwrap();
    let dead = crashed.path().join("dead-instance");
    std::fs::create_dir_all(&dead).unwrap();
    let name = before.into_iter().max().unwrap();
    std::fs::write(dead.join(&name), &copy).unwrap();
    hrloop_serve::decision_log::move_abandoned(&fx.lake, crashed.path()).await.unwrap();
    assert_eq!(fx.lake.scan(Table::Decisions, Some(&["decision_id"])).await.unwrap().num_rows(), 20, "doubled");
    assert!(!dead.exists(), "the dead server's log is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_and_outcomes_go_through_ingestion_with_quarantine() {
    let fx = fixture(ServeConfig::default()).await;
    let fb = r#"{"rows": [
        {"requisition_id": "R1", "candidate_id": "ATS-77", "recruiter_id": "rec-9", "decision": "reject", "overrides_model": true, "reason_code": "culture", "reason_text": "not now"},
        {"requisition_id": "R1", "candidate_id": "ATS-78", "decision": "maybe", "overrides_model": false}
    ]}"#;
    let (s, report) = fx.call("POST", "/v1/feedback", Some(fx.token(Role::Recruiter)), fb).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!((report["rows_accepted"].as_u64(), report["rows_quarantined"].as_u64()), (Some(1), Some(1)), "{report}");
    let scan = fx.lake.scan(Table::Feedback, Some(&["candidate_id", "decision", "overrides_model"])).await.unwrap();
    assert_eq!(scan.num_rows(), 1);
    let dump = format!("{:?}", scan.batches);
    assert!(!dump.contains("ATS-77") && dump.contains("rejected"), "pseudonymised, canonical decision: {dump}");

    let csv = "Employee ID;Hire date;Milestone date;Still employed;Performance rating;Exit reason\nE1;2025-01-10;2025-04-10;Ja;4;\nE2;2025-01-10;2025-04-10;Ja;9;\n";
    // Media types are case-insensitive: this is CSV.
    let mut b = Request::builder().method("POST").uri("/v1/outcomes").header("content-type", "Text/CSV; charset=UTF-8");
    b = b.header("authorization", format!("Bearer {}", fx.token(Role::DataTeam)));
    let resp = router(fx.state.clone()).oneshot(b.body(Body::from(csv)).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let report: serde_json::Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!((report["rows_accepted"].as_u64(), report["rows_quarantined"].as_u64()), (Some(1), Some(1)), "{report}");
    assert!(report["quarantine_samples"][0].as_str().unwrap().contains("9 is above the maximum 5"));
    // A JSON row without the export's fields is quarantined like a bad file row.
    let (s, r) = fx.call("POST", "/v1/outcomes", Some(fx.token(Role::DataTeam)), r#"[{"nope": 1}]"#).await;
    assert_eq!((s, r["rows_quarantined"].as_u64()), (StatusCode::OK, Some(1)), "{r}");
    assert!(r["quarantine_samples"][0].as_str().unwrap().contains("employee_id"), "{r}");
    // A body that is not rows at all is refused whole.
    let (s, e) = fx.call("POST", "/v1/outcomes", Some(fx.token(Role::DataTeam)), r#"{"rows": 3}"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, e) = fx.call("POST", "/v1/feedback", Some(fx.token(Role::Recruiter)), r#"[]"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let fx = fixture(ServeConfig::default()).await;
    let (s, doc) = fx.call("GET", "/openapi.json", None, "").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            // Every documented operation is routed: no 404/405 (401 without a token is fine).
            let concrete = path.replace("{name}", "m");
            let (s, v) = fx.call(&method.to_uppercase(), &concrete, None, "{}").await;
            assert!(s != StatusCode::NOT_FOUND && s != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {s} {v}");
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        vec![
            "GET /healthz",
            "GET /metrics",
            "GET /readyz",
            "GET /v1/models",
            "POST /v1/erasures",
            "POST /v1/erasures/verify",
            "POST /v1/feedback",
            "POST /v1/models/{name}/promote",
            "POST /v1/models/{name}/rollback",
            "POST /v1/outcomes",
            "POST /v1/rank",
        ]
    );
    assert!(doc["components"]["schemas"]["RankRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_store_keep_their_own_logs() {
    let fx = fixture(ServeConfig::default()).await;
    let (s, _) = fx.rank("REQ-A", 5).await;
    assert_eq!(s, StatusCode::OK);
    // A second server starts on the same store while the first is live: it must not touch the
    // first one's log (moving it would lose whatever the first writes next).
    let second = hrloop_serve::start(
        fx.state.config.clone(),
        fx.lake.clone(),
        Pseudonymiser::new(&[9u8; 32]).unwrap(),
        Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())),
    )
    .await
    .unwrap();
    let (s, _) = fx.rank("REQ-B", 5).await;
    assert_eq!(s, StatusCode::OK);
    let wal_root = fx.lake.store().local_root().unwrap().join("_wal");
    assert_eq!(std::fs::read_dir(&wal_root).unwrap().count(), 2, "one log directory per live server");
    fx.state.log.flush().await.unwrap();
    second.log.flush().await.unwrap();
    assert_eq!(fx.lake.scan(Table::Decisions, Some(&["decision_id"])).await.unwrap().num_rows(), 10, "nothing lost");
}

/// Rank `n` requisitions, then give recruiter feedback on each ranking's top 3: a recruiter
/// advances a candidate whose interview score is at least 5 when `prefers_high`, else one below
/// 5, and marks every other one as an override. Returns requisitions per arm.
async fn run_experiment(fx: &Fx, n: usize, prefers_high: bool) -> (usize, usize) {
    let (mut champion, mut challenger) = (0, 0);
    let mut rows = Vec::new();
    for r in 0..n {
        let req = format!("EXP-{r}");
        let (s, v) = fx.rank(&req, 10).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["arm"] == "challenger" {
            challenger += 1
        } else {
            champion += 1
        }
        for c in v["candidates"].as_array().unwrap().iter().take(3) {
            let id = c["id"].as_str().unwrap();
            let i: usize = id.rsplit('C').next().unwrap().parse().unwrap();
            let good = ((i % 10) >= 5) == prefers_high;
            rows.push(serde_json::json!({"requisition_id": req, "candidate_id": id,
                "decision": if good { "advanced" } else { "rejected" }, "overrides_model": !good}));
        }
        // The ATS sends feedback in batches.
        if rows.len() >= 150 || r + 1 == n {
            let batch = serde_json::Value::from(std::mem::take(&mut rows)).to_string();
            let (s, v) = fx.call("POST", "/v1/feedback", Some(fx.token(Role::Recruiter)), batch).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
    fx.state.log.flush().await.unwrap();
    (champion, challenger)
}

async fn restart_experiment_before_the_traffic(fx: &Fx) {
    let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let r = |reason: &str| ChangeRequest {
        actor: "test".into(),
        reason: reason.into(),
        evidence: serde_json::Value::Null,
        at,
    };
    fx.registry.retire("m", r("restart")).await.unwrap();
    fx.registry.promote("m", "v2", Alias::Challenger, r("experiment")).await.unwrap();
    // Serve the new state before the traffic starts (the poller might have caught the moment
    // without a challenger, which the sample-ratio check would rightly flag).
    fx.state.live.refresh().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_promotes_a_challenger_recruiters_agree_with_and_rolls_back_one_they_override() {
    use hrloop_models::experiment::{Decision, Policy, analyse};
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let policy = Policy { min_days: 14, min_feedback_per_arm: 60, ..Policy::default() };

    // Recruiters prefer what the challenger (negative weights) ranks first: promote.
    let fx = fixture(ServeConfig::default()).await;
    restart_experiment_before_the_traffic(&fx).await;
    let (champ, chall) = run_experiment(&fx, 300, false).await;
    let v = analyse(&fx.lake, "m", &policy, vec![], now).await.unwrap().unwrap();
    assert_eq!(v.arms[0].requisitions, champ);
    assert_eq!(v.arms[1].requisitions, chall);
    assert!(v.srm_p_value.unwrap() > 0.001, "hash assignment has no sample ratio mismatch");
    assert!(v.arms[1].override_rate.value < v.arms[0].override_rate.value);
    assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    assert!(v.reason.contains("override the challenger less often"), "{}", v.reason);
    // The same evidence a week in: not long enough.
    let early = analyse(&fx.lake, "m", &policy, vec![], Utc.with_ymd_and_hms(2026, 2, 8, 0, 0, 0).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(early.decision, Decision::KeepRunning, "{}", early.reason);
    // Too little feedback: "not enough data yet", whatever the rates say.
    let strict = Policy { min_feedback_per_arm: 10_000, ..policy.clone() };
    let v = analyse(&fx.lake, "m", &strict, vec![], now).await.unwrap().unwrap();
    assert_eq!(v.decision, Decision::KeepRunning);
    assert!(v.reason.starts_with("not enough data yet"), "{}", v.reason);
    // A guardrail that cannot be evaluated makes it inconclusive; a failing one rolls back.
    let g = |ok: bool, inconclusive: bool| hrloop_models::experiment::GuardrailResult {
        name: "p99".into(),
        ok,
        detail: "x".into(),
        inconclusive,
    };
    assert_eq!(
        analyse(&fx.lake, "m", &policy, vec![g(false, true)], now).await.unwrap().unwrap().decision,
        Decision::Inconclusive
    );
    assert_eq!(
        analyse(&fx.lake, "m", &policy, vec![g(false, false)], now).await.unwrap().unwrap().decision,
        Decision::Rollback
    );

    // Recruiters prefer what the champion ranks first: roll back the challenger.
    let fx = fixture(ServeConfig::default()).await;
    restart_experiment_before_the_traffic(&fx).await;
    run_experiment(&fx, 300, true).await;
    let v = analyse(&fx.lake, "m", &policy, vec![], now).await.unwrap().unwrap();
    assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
    assert!(v.reason.contains("override the challenger more often"), "{}", v.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_split_is_flagged_as_a_sample_ratio_mismatch() {
    use hrloop_models::experiment::{Decision, Policy, analyse};
    let fx = fixture(ServeConfig::default()).await;
    restart_experiment_before_the_traffic(&fx).await;
    run_experiment(&fx, 200, false).await;
    // The server split 80/20, the analysis expects 50/50.
    let policy = Policy { challenger_share: 0.5, min_feedback_per_arm: 10, min_days: 0, ..Policy::default() };
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let v = analyse(&fx.lake, "m", &policy, vec![], now).await.unwrap().unwrap();
    assert!(v.srm_p_value.unwrap() < 0.001);
    assert_eq!(v.decision, Decision::Inconclusive);
    assert!(v.reason.starts_with("sample ratio mismatch"), "{}", v.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_added_while_serving_works_at_once() {
    let fx = fixture(ServeConfig { poll_ms: 3_600_000, ..ServeConfig::default() }).await;
    let store = TokenStore::in_store(fx._dir.path());
    let fresh = store.add("late", Role::HrViewer, Utc::now()).unwrap();
    let (s, v) = fx.call("GET", "/v1/models", Some(&fresh), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = fx.call("GET", "/v1/models", Some("hrl_unknown"), "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_serves_the_champion_and_logs_the_challengers_scores_beside_it() {
    use arrow_array::cast::AsArray;
    let fx = fixture(ServeConfig { mode: hrloop_serve::Mode::Shadow, ..ServeConfig::default() }).await;
    restart_experiment_before_the_traffic(&fx).await;
    for r in 0..20 {
        let (s, v) = fx.rank(&format!("SH-{r}"), 10).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["arm"], "champion", "shadow mode always serves the champion");
    }
    // The challenger scores on a background thread: wait for its rows.
    let mut shadow_rows = 0;
    for _ in 0..50 {
        fx.state.log.flush().await.unwrap();
        let scan = fx
            .lake
            .scan(Table::Decisions, Some(&["arm", "model_version", "shadow_version", "shadow_score"]))
            .await
            .unwrap();
        shadow_rows = 0;
        for b in &scan.batches {
            let (arm, ver, sv) = (
                b.column_by_name("arm").unwrap().as_string::<i32>(),
                b.column_by_name("model_version").unwrap().as_string::<i32>(),
                b.column_by_name("shadow_version").unwrap().as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                if arm.value(i) == "shadow" {
                    assert_eq!((ver.value(i), sv.value(i)), ("m/v2", "m/v1"), "challenger scored, champion beside it");
                    shadow_rows += 1;
                }
            }
        }
        if shadow_rows == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shadow_rows, 200, "every ranked candidate also scored by the challenger");
    // The verdict compares both arms on the same requisitions (the challenger arm used to be
    // empty in shadow mode).
    let policy = hrloop_models::experiment::Policy::default();
    let verdict = hrloop_models::experiment::analyse(&fx.lake, "m", &policy, Vec::new(), fx.state.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verdict.mode, "shadow");
    let counts: Vec<(usize, usize)> = verdict.arms.iter().map(|a| (a.requisitions, a.candidates_scored)).collect();
    assert_eq!(counts, vec![(20, 200), (20, 200)], "{:?}", verdict.arms);
    // Recruiters saw only the champion's ranking: overrides are not compared, and the verdict
    // says why in words.
    assert!(verdict.override_difference.is_none() && verdict.power.is_none(), "{verdict:?}");
    assert!(verdict.reason.contains("Shadow mode: recruiters saw only the champion's ranking"), "{}", verdict.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matured_outcomes_flag_a_champion_whose_hires_do_worse_than_its_predecessors() {
    use hrloop_ingest::{IngestOptions, ResolvedMapping, Taxonomy, ingest_file};
    let fx = fixture(ServeConfig::default()).await;
    // v1 serves everything first.
    let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let r = |reason: &str| ChangeRequest {
        actor: "t".into(),
        reason: reason.into(),
        evidence: serde_json::Value::Null,
        at,
    };
    fx.registry.retire("m", r("no experiment")).await.unwrap();
    fx.state.live.refresh().await.unwrap();
    let mut hires = Vec::new();
    let mut outcomes = vec![
        "Employee ID;Full name;E-mail;Personnummer;Hire date;Milestone date;Still employed;Performance rating;Exit reason"
            .to_string(),
    ];
    let mut rank_and_hire = async |prefix: &str, n: usize, succeed: &dyn Fn(usize) -> bool| {
        for i in 0..n {
            let req = format!("{prefix}-{i}");
            let (s, v) = fx.rank(&req, 3).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let top = v["candidates"][0]["id"].as_str().unwrap().to_string();
            let emp = format!("E-{prefix}-{i}");
            hires.push(
                serde_json::json!({"candidate_id": top, "employee_number": emp, "requisition": req,
                "job_family": "sales", "start_date": "2025-01-10"})
                .to_string(),
            );
            let ok = succeed(i);
            outcomes.push(format!(
                "{emp};Name;x@example.se;19900101-0000;2025-01-10;2026-01-12;{};{};{}",
                if ok { "Ja" } else { "Nej" },
                if ok { "4" } else { "" },
                if ok { "" } else { "resigned" }
            ));
        }
    };
    rank_and_hire("OLD", 40, &|i| i % 10 != 0).await; // v1: 90 % succeed
    // v2 becomes champion; its hires do much worse.
    fx.registry.promote("m", "v2", Alias::Champion, r("new champion")).await.unwrap();
    fx.state.live.refresh().await.unwrap();
    rank_and_hire("NEW", 40, &|i| i % 2 == 0).await; // v2: 50 % succeed
    // v1 also scored the NEW candidates in shadow, logged as the shadow worker logs it (arm
    // `shadow`, after the served rows): v1 stays the shadow of those hires, never their ranker.
    for i in 0..40 {
        use hrloop_serve::decision_log::{Decision, Features, Scored};
        use std::borrow::Cow;
        let req = format!("NEW-{i}");
        let candidates = (0..3)
            .map(|c| Scored {
                candidate_id: Cow::Owned(fx.state.pseudo.pseudonym("candidate", &format!("{req}-C{c}"))),
                score: 0.5,
                route: Cow::Borrowed("auto"),
                shadow_score: Some(0.6),
                features: Features::Named(Cow::Borrowed(&[])),
            })
            .collect();
        let shadow = Decision {
            decision_id: Cow::Owned(format!("{req}-shadow")),
            requisition_id: Cow::Owned(req.clone()),
            job_family: "sales".into(),
            decided_at_us: fx.state.clock.now().timestamp_micros(),
            model_version: "m/v1".into(),
            arm: "shadow".into(),
            shadow_version: Some("m/v2".into()),
            feature_names: Vec::new(),
            candidates,
        };
        fx.state.log.append(&shadow).await.unwrap();
    }
    fx.state.log.flush().await.unwrap();
    let dir = fx._dir.path();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let tax = Taxonomy::load(&data.join("taxonomy")).unwrap();
    let opts = IngestOptions { clock: Arc::new(ManualClock::new(Utc::now())), progress: false };
    let pseudo = Pseudonymiser::new(&[9u8; 32]).unwrap();
    for (file, lines, mapping) in [("hires.jsonl", &hires, "ats_hires"), ("hris.csv", &outcomes, "hris_outcomes")] {
        let path = dir.join(file);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let m = ResolvedMapping::load(&data.join(format!("mappings/{mapping}.toml")), &tax).unwrap();
        let report = ingest_file(&fx.lake, &path, &m, &pseudo, &tax, &opts).await.unwrap();
        assert_eq!(report.rows_quarantined, 0, "{}", report.render());
    }
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let j = hrloop_models::rejudge::rejudge(&fx.lake, "m", now, 14, 0.05, 30).await.unwrap().unwrap();
    let v = |name: &str| j.versions.iter().find(|x| x.version == name).unwrap().clone();
    assert_eq!((v("v1").hires, v("v1").successes), (40, 36));
    assert_eq!((v("v2").hires, v("v2").successes), (40, 20));
    let pair = j.shadow_pairs.iter().find(|p| (p.served.as_str(), p.shadow.as_str()) == ("v2", "v1"));
    assert_eq!(pair.map(|p| p.hires), Some(40), "{:?}", j.shadow_pairs);
    assert!(j.champion_worse, "{}", j.finding);
    assert!(j.finding.contains("significantly worse than the previous champion v1"), "{}", j.finding);
    // Too few hires to compare: no flag.
    let few = hrloop_models::rejudge::rejudge(&fx.lake, "m", now, 14, 0.05, 100).await.unwrap().unwrap();
    assert!(!few.champion_worse && few.finding.starts_with("not enough matured"), "{}", few.finding);

    // The scheduler's re-judging step with `act = true` rolls the champion back to its
    // predecessor, with the finding as the reason, and says so in the changelog.
    let clock = Arc::new(ManualClock::new(now));
    let scheduler = one_step_scheduler(&fx, "kind = \"rejudge\"\nmodel = \"m\"\nact = true\nmin_hires = 30", &clock);
    let run = scheduler.run_now("one-step").await.unwrap();
    assert_eq!(run.status, hrloop_scheduler::Status::Succeeded, "{:?}", run.error);
    assert!(run.steps[0].summary.ends_with("rolled back to v1"), "{}", run.steps[0].summary);
    assert_eq!(fx.registry.state("m").await.unwrap().champion.as_deref(), Some("v1"));
    let last = fx.registry.changelog("m").await.unwrap().pop().unwrap();
    assert_eq!((last.change.as_str(), last.to_version.as_deref()), ("rollback", Some("v1")));
    assert!(last.summary.contains("replaced by the earlier v1"), "{}", last.summary);
    // The server follows: the next ranking comes from v1.
    fx.state.live.refresh().await.unwrap();
    let (_, v) = fx.rank("AFTER-ROLLBACK", 3).await;
    assert_eq!(v["model_version"], "m/v1");
    // Judged again a day later, v1 (now champion, no predecessor of its own) is not flagged, and
    // nothing moves.
    clock.advance(chrono::Duration::days(1));
    let again = scheduler.run_now("one-step").await.unwrap();
    assert!(!again.steps[0].summary.contains("rolled back"), "{}", again.steps[0].summary);
    assert_eq!(fx.registry.state("m").await.unwrap().champion.as_deref(), Some("v1"));
}

/// A scheduler on the fixture's store with one pipeline, `one-step`, of the one step `step`
/// (TOML), on `clock`.
fn one_step_scheduler(
    fx: &Fx,
    step: &str,
    clock: &Arc<ManualClock>,
) -> hrloop_scheduler::Scheduler<hrloop_scheduler::LoopSteps> {
    let pipeline = hrloop_scheduler::Pipeline::parse(
        &format!("format_version = 1\nname = \"one-step\"\n[trigger]\ncron = \"0 6 * * *\"\n[[step]]\n{step}\n"),
        std::path::Path::new("one-step.toml"),
    )
    .unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let steps = hrloop_scheduler::LoopSteps {
        lake: fx.lake.clone(),
        pseudo: None,
        taxonomy: hrloop_ingest::Taxonomy::load(&data.join("taxonomy")).unwrap(),
        clock: clock.clone(),
        base: data.join(".."),
        prometheus_url: None,
        http: hrloop_scheduler::steps::HttpClient::new(),
    };
    hrloop_scheduler::Scheduler::new(fx.lake.clone(), vec![pipeline], steps, clock.clone())
}

async fn decisions_in_lake(fx: &Fx) -> usize {
    fx.lake.scan(Table::Decisions, Some(&["decision_id"])).await.map_or(0, |s| s.num_rows())
}

/// Poll until `want` rows are in lake/decisions (or `within` passes); returns what was seen.
async fn wait_for_lake(fx: &Fx, want: usize, within: std::time::Duration) -> usize {
    let until = std::time::Instant::now() + within;
    loop {
        let n = decisions_in_lake(fx).await;
        if n >= want || std::time::Instant::now() > until {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A fixture whose server seals its log every `flush_ms` and moves segments at the latest
/// `lake_max_delay_ms` after sealing (the plain fixture seals hourly).
async fn with_log_timing(flush_ms: u64, lake_max_delay_ms: u64) -> Fx {
    let fx = fixture(ServeConfig::default()).await;
    let config = ServeConfig { flush_ms, lake_max_delay_ms, ..fx.state.config.clone() };
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()));
    let state =
        hrloop_serve::start(config, fx.lake.clone(), Pseudonymiser::new(&[9u8; 32]).unwrap(), clock).await.unwrap();
    Fx { state, ..fx }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_decisions_move_to_the_lake_in_a_quiet_moment_without_a_flush() {
    // The fixture seals hourly; this server seals every 200 ms and may wait up to an hour.
    let fx = with_log_timing(200, 3_600_000).await;
    let (s, _) = fx.rank("REQ-QUIET", 6).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(wait_for_lake(&fx, 6, std::time::Duration::from_secs(20)).await, 6, "moved once the server was quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_constant_load_decisions_still_reach_the_lake_within_the_max_delay() {
    let fx = with_log_timing(100, 300).await;
    // Never quiet for 100 ms: a ranking every few milliseconds until rows show up in the lake.
    let started = std::time::Instant::now();
    let mut ranked = 0;
    while decisions_in_lake(&fx).await == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "nothing moved under load");
        let (s, _) = fx.rank(&format!("REQ-BUSY-{ranked}"), 2).await;
        assert_eq!(s, StatusCode::OK);
        ranked += 1;
    }
    fx.state.log.flush().await.unwrap();
    assert_eq!(decisions_in_lake(&fx).await, ranked * 2, "everything, once, after a flush");
}

/// The value of gauge `name` whose labels include `labels`.
fn gauge_value(families: &[prometheus::proto::MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = families.iter().find(|f| f.name() == name)?;
    family
        .get_metric()
        .iter()
        .find(|m| labels.iter().all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v)))
        .map(|m| m.get_gauge().get_value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_count_human_routes_and_overrides_per_arm_as_served() {
    let fx = fixture(ServeConfig::default()).await;
    // (human, total) candidates and (overrides, feedback rows) per arm, as the responses say.
    let mut routed: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut overridden: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut feedback = Vec::new();
    for r in 0..60 {
        let req = format!("KPI-{r}");
        let (s, v) = fx.rank(&req, 10).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let arm = v["arm"].as_str().unwrap().to_string();
        for (i, c) in v["candidates"].as_array().unwrap().iter().enumerate() {
            let e = routed.entry(arm.clone()).or_default();
            e.0 += usize::from(c["route"]["kind"] == "human");
            e.1 += 1;
            if i < 2 {
                let overrides = (r + i) % 3 == 0;
                let e = overridden.entry(arm.clone()).or_default();
                e.0 += usize::from(overrides);
                e.1 += 1;
                feedback.push(serde_json::json!({"requisition_id": req, "candidate_id": c["id"],
                    "decision": if overrides { "rejected" } else { "advanced" }, "overrides_model": overrides}));
            }
        }
    }
    let (s, v) = fx
        .call("POST", "/v1/feedback", Some(fx.token(Role::Recruiter)), serde_json::Value::from(feedback).to_string())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    fx.state.log.flush().await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let families = hrloop_serve::kpis::compute(&fx.lake, &[], now).await.unwrap();
    assert_eq!(routed.len(), 2, "both arms served: {routed:?}");
    for (arm, (human, total)) in &routed {
        let got = gauge_value(&families, "hrloop_human_review_ratio", &[("arm", arm)]).unwrap();
        assert!((got - *human as f64 / *total as f64).abs() < 1e-12, "{arm}: {got} vs {human}/{total}");
    }
    for (arm, (o, n)) in &overridden {
        let got = gauge_value(&families, "hrloop_recruiter_override_ratio", &[("arm", arm)]).unwrap();
        assert!((got - *o as f64 / *n as f64).abs() < 1e-12, "{arm}: {got} vs {o}/{n}");
        assert_eq!(gauge_value(&families, "hrloop_recruiter_feedback_rows", &[("arm", arm)]), Some(*n as f64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_nobody_decides_expires_so_the_next_retrain_can_compete() {
    let fx = fixture(ServeConfig::default()).await;
    restart_experiment_before_the_traffic(&fx).await; // v2 challenger since 2026-02-01
    // Day 30: past max_days (28) with no verdict; a person still has time to decide.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 3, 6, 0, 0).unwrap()));
    let scheduler = one_step_scheduler(&fx, "kind = \"analyse_experiment\"\nmodel = \"m\"\nact = true", &clock);
    let run = scheduler.run_now("one-step").await.unwrap();
    assert!(!run.steps[0].summary.contains("retired"), "{}", run.steps[0].summary);
    assert_eq!(fx.registry.state("m").await.unwrap().challenger.as_deref(), Some("v2"));
    // Day 36: max_days + decide_within_days (7) have passed undecided: the challenger goes.
    clock.advance(chrono::Duration::days(6));
    let run = scheduler.run_now("one-step").await.unwrap();
    assert!(run.steps[0].summary.contains("expired"), "{}", run.steps[0].summary);
    let state = fx.registry.state("m").await.unwrap();
    assert_eq!((state.champion.as_deref(), state.challenger.as_deref()), (Some("v1"), None), "the champion stays");
    let last = fx.registry.changelog("m").await.unwrap().pop().unwrap();
    assert_eq!(last.change, "retire");
    assert!(last.summary.contains("no one decided"), "{}", last.summary);
    // On-call is told: the retirement is counted under its own reason class.
    let families = hrloop_serve::kpis::compute(&fx.lake, &[], hrloop_core::Clock::now(clock.as_ref())).await.unwrap();
    let counter = |labels: &[(&str, &str)]| {
        families
            .iter()
            .find(|f| f.name() == "hrloop_model_alias_changes_total")
            .and_then(|f| {
                f.get_metric().iter().find(|m| {
                    labels.iter().all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v))
                })
            })
            .map(|m| m.get_counter().get_value())
    };
    assert_eq!(counter(&[("model", "m"), ("action", "retire"), ("reason_class", "expired")]), Some(1.0));
}
