//! Issue 12: the server under starvation and hostile or careless clients.

use super::*;

/// Run `test` (this binary's test of that name) in a child process of its own with `HRLOOP_CHILD`
/// set: for tests that change process-wide state (the file limit) which would starve the
/// other tests of this binary.
fn in_child_process(test: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("HRLOOP_CHILD", "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child process failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

fn is_child() -> bool {
    std::env::var_os("HRLOOP_CHILD").is_some()
}

/// Take every free file descriptor, as hundreds of idle sockets would: lower the soft limit a
/// little above what is open now, then open /dev/null until the kernel refuses.
fn exhaust_file_descriptors() -> Vec<std::fs::File> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = Some(open_now + 64);
    setrlimit(Resource::Nofile, limit).unwrap();
    let mut held = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        held.push(f);
    }
    assert!(std::fs::File::open("/dev/null").is_err(), "descriptors exhausted");
    held
}

#[test]
fn no_acknowledged_decision_is_lost_when_file_descriptors_run_out() {
    if !is_child() {
        return in_child_process("hardening::no_acknowledged_decision_is_lost_when_file_descriptors_run_out");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Seal every 50 ms, move sealed segments at once.
        let fx = with_log_timing(50, 0).await;
        let mut acked = 0;
        let mut refused = 0;
        let mut rank = async |fx: &Fx, name: String| {
            let (s, v) = fx.rank(&name, 3).await;
            match s {
                StatusCode::OK => acked += 3,
                StatusCode::SERVICE_UNAVAILABLE => refused += 1,
                other => panic!("{name}: {other} {v}"),
            }
        };
        let starved = exhaust_file_descriptors();
        // Seals fall due while no file can be opened.
        for i in 0..10 {
            rank(&fx, format!("REQ-STARVED-{i}")).await;
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        }
        // Descriptors come back; the mover gets to whatever was sealed meanwhile.
        drop(starved);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        for i in 0..10 {
            rank(&fx, format!("REQ-AFTER-{i}")).await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        fx.state.log.flush().await.unwrap();
        assert!(acked > 0, "nothing was acknowledged ({refused} refused)");
        assert_eq!(
            decisions_in_lake(&fx).await,
            acked,
            "every acknowledged decision is in the lake ({refused} refused)"
        );
    });
}

/// A server on a real socket with short timeouts; returns its address and the fixture.
async fn listening(config: ServeConfig) -> (std::net::SocketAddr, Fx) {
    let fx = fixture(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hrloop_serve::server::serve(listener, fx.state.clone(), std::future::pending()));
    (addr, fx)
}

/// One request on a new connection (closed after it): status and body.
async fn request(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let msg = format!("{head}\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    c.write_all(msg.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

fn rank_body(requisition: &str) -> String {
    serde_json::json!({"requisition": {"id": requisition, "job_family": "sales"},
        "candidates": [{"id": "C1", "features": {"interview_score": 4, "assessment_score": 7, "soft_skill_score": 5}}]})
    .to_string()
}

/// How a hostile connection behaves: what it sends first, then one byte every 100 ms.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Connects and sends nothing.
    Idle,
    /// Half a request head, then a header byte at a time.
    SlowHead,
    /// A whole head announcing 1000 bytes of body, then a body byte at a time.
    SlowBody,
    /// One whole request, then nothing (a kept-alive connection left idle).
    KeptAlive,
}

/// Hold a connection the hostile way; returns how long the server took to close it (`None`:
/// still open after 6 s) and whether it answered 408 first.
async fn hold(addr: std::net::SocketAddr, how: Hostile, token: String) -> (Option<std::time::Duration>, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let first = match how {
        Hostile::Idle => String::new(),
        Hostile::SlowHead => "POST /v1/rank HTTP/1.1\r\nhost: x\r\nx-slow: ".into(),
        Hostile::SlowBody => format!(
            "POST /v1/rank HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"requisition\""
        ),
        Hostile::KeptAlive => "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n".into(),
    };
    c.write_all(first.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = started + std::time::Duration::from_secs(6);
    while std::time::Instant::now() < until {
        tokio::select! {
            r = c.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let answered_408 = String::from_utf8_lossy(&got).contains("HTTP/1.1 408");
                    return (Some(started.elapsed()), answered_408);
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if matches!(how, Hostile::SlowHead | Hostile::SlowBody) {
                    let _ = c.write_all(b"a").await;
                }
            }
        }
    }
    (None, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_lose_their_connections_while_ranking_goes_on() {
    let config =
        ServeConfig { header_timeout_ms: 1000, body_timeout_ms: 1000, max_connections: 200, ..ServeConfig::default() };
    let (addr, fx) = listening(config).await;
    let token = fx.token(Role::Recruiter).to_string();
    let mut hostile = tokio::task::JoinSet::new();
    for (how, n) in [(Hostile::Idle, 40), (Hostile::SlowHead, 20), (Hostile::SlowBody, 20), (Hostile::KeptAlive, 20)] {
        for _ in 0..n {
            let token = token.clone();
            hostile.spawn(async move { (how, hold(addr, how, token).await) });
        }
    }
    // Meanwhile, ranking works.
    let auth = format!("authorization: Bearer {token}\r\ncontent-type: application/json");
    for i in 0..15 {
        let (s, b) = request(addr, &format!("POST /v1/rank HTTP/1.1\r\n{auth}"), &rank_body(&format!("R-{i}"))).await;
        assert_eq!(s, 200, "{b}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    while let Some(done) = hostile.join_next().await {
        let (how, (closed_after, answered_408)) = done.unwrap();
        let closed_after = closed_after.unwrap_or_else(|| panic!("{how:?}: still open after 6 s"));
        assert!(
            closed_after >= std::time::Duration::from_millis(900)
                && closed_after < std::time::Duration::from_millis(2500),
            "{how:?}: closed after {closed_after:?}, the timeout is 1 s"
        );
        if matches!(how, Hostile::SlowBody) {
            assert!(answered_408, "a body that does not arrive in time is answered 408");
        }
    }
    assert_eq!(fx.state.metrics.connections_open.get(), 0, "every connection is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_connection_replaces_the_longest_idle_one_or_gets_503() {
    let config = ServeConfig { header_timeout_ms: 10_000, max_connections: 4, ..ServeConfig::default() };
    let (addr, fx) = listening(config).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // All four were active a moment ago: no room, a clear 503.
    let (s, body) = request(addr, "GET /healthz HTTP/1.1", "").await;
    assert_eq!(s, 503, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["error"]["code"], "too_many_connections", "{e}");
    assert_eq!(fx.state.metrics.connections_refused.get(), 1);
    // Idle for over a second, long before their header timeout: a new caller takes the place
    // of the connection idle longest, and is served.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let auth = format!("authorization: Bearer {}\r\ncontent-type: application/json", fx.token(Role::Recruiter));
    for i in 0..3 {
        let (s, body) =
            request(addr, &format!("POST /v1/rank HTTP/1.1\r\n{auth}"), &rank_body(&format!("R-CAP-{i}"))).await;
        assert_eq!(s, 200, "{body}");
        // The server frees the slot when it sees the close, a moment after the client read its
        // answer (later on a loaded machine): wait for it, as a caller's next request would find
        // it freed by then.
        for _ in 0..200 {
            if fx.state.metrics.connections_open.get() <= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(fx.state.metrics.connections_open.get(), 3, "the three idle ones are left");
    }
    // The first took an idle one's place; the others the slot each predecessor freed on closing.
    assert_eq!(fx.state.metrics.connections_evicted.get(), 1);
    assert_eq!(fx.state.metrics.connections_refused.get(), 1, "no more refusals");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_a_clear_answer_in_the_callers_terms() {
    let fx = fixture(ServeConfig::default()).await;
    let t = fx.token(Role::Recruiter);
    let good = rank_body("R-1");
    let dup =
        r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "A"}, {"id": "B"}, {"id": "A"}]}"#;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (format!("{good}xx"), StatusCode::BAD_REQUEST, "exactly one JSON document"),
        (format!("{good}{good}"), StatusCode::BAD_REQUEST, "exactly one JSON document"),
        (dup.into(), StatusCode::UNPROCESSABLE_ENTITY, "candidates[2].id: \"A\" is also candidates[0]"),
        (r#"{"requisition": "R", "candidates": []}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "requisition: invalid type: string \"R\", expected an object"),
        (r#"{"requisition": {"id": "R\q", "job_family": "sales"}, "candidates": []}"#.into(), StatusCode::BAD_REQUEST, "invalid escape"),
        (r#"{"requisition": {"id": "R", "job_family": "sales"}, "candidates": [{"id": "1"}, {"id": "2"}, {"id": "3"}, {"id": "4", "features": {"interview_score": [1]}}]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY, "candidates[3].features.interview_score: invalid type: sequence"),
    ];
    for (body, want, text) in cases {
        let (s, v) = fx.call("POST", "/v1/rank", Some(t), body.clone()).await;
        assert_eq!(s, want, "body {}: {v}", &body[..body.len().min(100)]);
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "{v} should say {text:?}");
        for rust in ["struct ", "RankRequest", "RequisitionIn", "CandidateIn", "?", "f64"] {
            assert!(!message.contains(rust), "{message:?} names {rust:?}");
        }
    }
    // 413 and 405 answer with the same JSON error body as every other error.
    let big = format!("{{\"x\": \"{}\"}}", "x".repeat(3 << 20));
    let (s, v) = fx.call("POST", "/v1/rank", Some(t), big).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("2 MiB"), "{v}");
    let (s, v) = fx.call("GET", "/v1/rank", Some(t), "").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")), "{v}");
    // Names and versions that cannot exist are unknown (404), not storage errors (503).
    let on_call = fx.token(Role::OnCall);
    let long = "x".repeat(300);
    for (path, body) in [
        ("/v1/models/m/promote".to_string(), format!(r#"{{"version": "{long} ü", "reason": "r"}}"#)),
        ("/v1/models/m/promote".to_string(), r#"{"version": "../../v1", "reason": "r"}"#.to_string()),
        (format!("/v1/models/{long}/rollback"), r#"{"reason": "r"}"#.to_string()),
    ] {
        let (s, v) = fx.call("POST", &path, Some(on_call), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    // A change the aliases' state does not allow is a conflict.
    let (s, v) =
        fx.call("POST", "/v1/models/m/promote", Some(on_call), r#"{"version": "v1", "reason": "again"}"#).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_model_never_saw_go_to_a_human_and_are_named() {
    let fx = fixture(ServeConfig { audit_rate: 0.0, ..ServeConfig::default() }).await;
    let t = fx.token(Role::Recruiter);
    // Trained on values 0-9 for every feature.
    let body = serde_json::json!({"requisition": {"id": "R-OOR", "job_family": "sales"}, "candidates": [
        {"id": "usual", "features": {"interview_score": 9, "assessment_score": 9, "soft_skill_score": 9}},
        {"id": "fifty", "features": {"interview_score": 50, "assessment_score": 9, "soft_skill_score": 9}},
        {"id": "huge", "features": {"interview_score": 1e6, "assessment_score": 1e6, "soft_skill_score": 1e6}}]});
    let (s, v) = fx.call("POST", "/v1/rank", Some(t), body.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let by_id = |id: &str| v["candidates"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    assert_ne!(by_id("usual")["route"]["reason"], "out_of_range", "{v}");
    let fifty = by_id("fifty");
    assert_eq!(
        fifty["route"],
        serde_json::json!({"kind": "human", "reason": "out_of_range", "features": ["interview_score"]})
    );
    assert!(fifty["explanation"][0].as_str().unwrap().contains("interview score is 50"), "{fifty}");
    let huge = by_id("huge");
    assert_eq!(huge["route"]["reason"], "out_of_range");
    assert_eq!(huge["route"]["features"].as_array().unwrap().len(), 3, "{huge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_check_is_audited() {
    let fx = fixture(ServeConfig::default()).await;
    let (s, v) = fx.call("POST", "/v1/erasures/verify", Some(fx.token(Role::Admin)), r#"{"person": "ATS-1"}"#).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let audit = hrloop_lake::audit::Audit::new(fx.lake.store().clone());
    let records = audit.records().await.unwrap();
    let check = records.iter().find(|r| r.entry.action == "erasure.verify").expect("an erasure.verify record");
    assert_eq!(check.entry.actor, "admin");
    assert_eq!(check.entry.details["absent"], true);
    assert!(!serde_json::to_string(&check.entry).unwrap().contains("ATS-1"), "the trail names no person");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_outside_its_declared_range_is_refused_naming_candidate_and_field() {
    let fx = fixture(ServeConfig::default()).await;
    let mut declared = model(3.0);
    declared.pipeline.numeric[0].valid = Some((1.0, 5.0)); // interview_score, as a 1-5 scale
    let v = fx.registry.register("m", serde_json::to_vec(&declared).unwrap().into(), card()).await.unwrap();
    fx.registry.promote("m", &v, Alias::Champion, req("declared ranges")).await.unwrap();
    fx.state.live.refresh().await.unwrap();
    let body = |score: f64| {
        serde_json::json!({"requisition": {"id": "R-VALID", "job_family": "sales"}, "candidates": [
            {"id": "ok", "features": {"interview_score": 4}},
            {"id": "C-77", "features": {"interview_score": score, "assessment_score": 5}}]})
        .to_string()
    };
    let t = fx.token(Role::Recruiter);
    let (s, v) = fx.call("POST", "/v1/rank", Some(t), body(5.0)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = fx.call("POST", "/v1/rank", Some(t), body(50.0)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("candidates[1].features.interview_score: 50 is outside the valid range 1 to 5"),
        "{message}"
    );
    assert!(message.contains("\"C-77\""), "{message}");
}
