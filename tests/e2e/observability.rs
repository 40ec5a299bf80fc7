//! KPIs proven against a real Prometheus: hrloop serves traffic on a simulated company, a
//! Prometheus on loopback scrapes it and loads the shipped alert rules, an experiment verdict
//! evaluates a PromQL guardrail against that Prometheus, and every expression of every
//! dashboard panel and alert rule runs through Prometheus' query API. promtool checks the
//! config, the rules, the rule tests and the metrics output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve::post;
use crate::{hrloop, json, repo, run_ok};

const NOW: &str = "2026-11-05T12:00:00Z";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn need(tool: &str) {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is not installed: `apt-get install prometheus` (scripts/test does it)");
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).current_dir(repo()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over HTTP/1.0 (so no chunked encoding): status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// An instant query; returns the parsed response (status success asserted by the caller).
fn query(prom: &str, expr: &str) -> serde_json::Value {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", encode(expr)));
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("Prometheus answered {status}: {body}"))
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn start_server(store: &Path, pipelines: &Path) -> (Killed, String) {
    let mut child = hrloop(store)
        .args(["--demo-key", "--now", NOW, "serve", "--listen", "127.0.0.1:0", "--kpi-refresh-seconds", "1"])
        .args(["--model", "success6m_logistic"])
        .arg("--pipelines-dir")
        .arg(pipelines)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("hrloop serving on http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), addr)
}

fn start_prometheus(dir: &Path, target: &str) -> (Killed, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    let rules = repo().join("dashboards/prometheus/alerts.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: hrloop\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.display()
        ),
    )
    .unwrap();
    promtool(&["check", "config", config.to_str().unwrap()]);
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Killed(child), format!("127.0.0.1:{port}"))
}

/// Every `expr` of every panel of every dashboard, with the panel's title.
fn dashboard_exprs() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let dir = repo().join("dashboards/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 5, "five dashboards");
    for f in files {
        let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(vars.iter().any(|v| v["type"] == "datasource"), "{}: data source variable", f.display());
        for p in d["panels"].as_array().unwrap() {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}: {} uses the variable", f.display(), p["title"]);
            let exprs =
                p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()).collect();
            out.push((format!("{} / {}", d["title"].as_str().unwrap(), p["title"].as_str().unwrap()), exprs));
        }
    }
    out
}

#[test]
fn every_dashboard_panel_and_alert_rule_works_against_a_real_prometheus() {
    need("prometheus");
    need("promtool");
    promtool(&["check", "config", "dashboards/prometheus/prometheus.yml"]);
    promtool(&["check", "rules", "dashboards/prometheus/alerts.yml"]);
    promtool(&["test", "rules", "dashboards/prometheus/alerts_test.yml"]);

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let at = |t: &str| ["--now".to_string(), t.to_string()];
    run_ok(hrloop(&store).args(at(NOW)).args(["demo", "--requisitions-per-month", "20", "--json"]));
    let name = "success6m_logistic";
    for (i, (when, alias)) in [
        ("2026-11-05T08:00:00Z", "champion"),
        ("2026-11-05T09:00:00Z", "champion"),
        ("2026-11-05T10:00:00Z", "challenger"),
    ]
    .iter()
    .enumerate()
    {
        run_ok(hrloop(&store).args(at(when)).args(["train", "--model", "models/success6m_logistic.toml", "--json"]));
        let v = format!("v{}", i + 1);
        run_ok(
            hrloop(&store)
                .args(at(when))
                .args(["models", "promote", name, &v, "--alias", alias, "--reason", "e2e", "--force"]),
        );
    }
    let token = |who: &str, role: &str| {
        String::from_utf8(run_ok(hrloop(&store).args(["tokens", "add", who, "--role", role])).stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let ats = token("ats", "recruiter");

    // A pipeline that succeeds (for the pipeline metrics) and the analysis with a PromQL guardrail.
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(
        pipelines.join("daily-validate.toml"),
        "format_version = 1\nname = \"daily-validate\"\n[trigger]\ncron = \"0 6 * * *\"\n[[step]]\nkind = \"validate\"\n",
    )
    .unwrap();
    run_ok(
        hrloop(&store).args(at(NOW)).args(["pipelines", "--pipelines"]).arg(&pipelines).args(["run", "daily-validate"]),
    );

    let (_server, addr) = start_server(&store, &pipelines);
    let (_prom, prom) = start_prometheus(dir.path(), &addr);
    wait_for("Prometheus to scrape hrloop's KPIs", Duration::from_secs(60), || {
        std::net::TcpStream::connect(&prom).is_ok()
            && query(&prom, "hrloop_model_info")["data"]["result"].as_array().is_some_and(|r| r.len() == 2)
    });

    // Traffic while Prometheus scrapes: rankings on both arms, feedback, a refused request.
    for r in 0..60 {
        let candidates: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"id": "OBS-{r}-{i}", "features": {{"interview_score": {}, "assessment_score": {}}}}}"#,
                    1 + i % 5,
                    40 + 5 * i
                )
            })
            .collect();
        let body = format!(
            r#"{{"requisition": {{"id": "REQ-OBS-{r}", "job_family": "sales"}}, "candidates": [{}]}}"#,
            candidates.join(",")
        );
        let (status, resp) = post(&addr, "/v1/rank", &ats, &body);
        assert_eq!(status, 200, "{resp}");
        // The recruiter advances the weakest candidate and, every third requisition, rejects the
        // strongest: an override with a reason, which the override insights turn into a pair.
        let rejected = if r % 3 == 0 {
            format!(
                r#", {{"requisition_id": "REQ-OBS-{r}", "candidate_id": "OBS-{r}-9", "decision": "rejected", "overrides_model": true, "reason_code": "communication"}}"#
            )
        } else {
            String::new()
        };
        let fb = format!(
            r#"[{{"requisition_id": "REQ-OBS-{r}", "candidate_id": "OBS-{r}-0", "decision": "advanced", "overrides_model": {}}}{rejected}]"#,
            r % 3 == 0
        );
        let (status, resp) = post(&addr, "/v1/feedback", &ats, &fb);
        assert_eq!(status, 200, "{resp}");
        // Spread over several scrapes, so rates see the counters grow.
        std::thread::sleep(Duration::from_millis(80));
    }
    let (status, _) =
        post(&addr, "/v1/rank", &ats, r#"{"requisition": {"id": "", "job_family": "sales"}, "candidates": []}"#);
    assert_eq!(status, 422);
    // Decisions reach the lake at the decision log's next flush (5 s): wait until the KPIs show
    // the served arms' overrides.
    wait_for("served decisions in the KPIs", Duration::from_secs(60), || {
        query(&prom, "hrloop_recruiter_override_ratio")["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
    });
    std::thread::sleep(Duration::from_secs(3));

    // An experiment verdict whose guardrail is a PromQL query against this Prometheus.
    std::fs::write(
        pipelines.join("analysis.toml"),
        format!(
            "format_version = 1\nname = \"analysis\"\n[trigger]\ncron = \"30 6 * * *\"\n[[step]]\nkind = \"analyse_experiment\"\n\
             model = \"{name}\"\nprometheus_url = \"http://{prom}\"\n[[step.guardrail]]\nname = \"champion error rate\"\n\
             query = '(sum(rate(hrloop_rank_requests_total{{status=\"error\"}}[1m])) or vector(0)) / sum(rate(hrloop_rank_requests_total[1m]))'\nmax = 0.01\n"
        ),
    )
    .unwrap();
    run_ok(hrloop(&store).args(at(NOW)).args(["pipelines", "--pipelines"]).arg(&pipelines).args(["run", "analysis"]));
    // The override insights report, whose numbers the HR dashboard's override panels show.
    std::fs::write(
        pipelines.join("insights.toml"),
        format!("format_version = 1\nname = \"insights\"\n[trigger]\ncron = \"15 7 * * *\"\n[[step]]\nkind = \"override_insights\"\nmodel = \"{name}\"\n"),
    )
    .unwrap();
    run_ok(hrloop(&store).args(at(NOW)).args(["pipelines", "--pipelines"]).arg(&pipelines).args(["run", "insights"]));
    wait_for("the override insights in the KPIs", Duration::from_secs(60), || {
        query(&prom, "hrloop_override_feature_difference_units")["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });

    // Record-keeping (EU AI Act Art. 12): every ranking above names its version, arm, route and
    // score, and every override requisition has its reason code: fully logged, the alert quiet.
    std::fs::write(
        pipelines.join("logging.toml"),
        "format_version = 1\nname = \"logging\"\n[trigger]\ncron = \"30 6 * * *\"\n[[step]]\nkind = \"logging_completeness\"\n",
    )
    .unwrap();
    let out = run_ok(
        hrloop(&store).args(at(NOW)).args(["pipelines", "--pipelines"]).arg(&pipelines).args(["run", "logging"]),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("60 of 60 rankings fully logged (100.00 %); 0 of 80 feedback rows join no ranking"),
        "{said}"
    );
    wait_for("the record-keeping check in the KPIs", Duration::from_secs(60), || {
        query(&prom, "hrloop_logging_completeness_ratio")["data"]["result"]
            .as_array()
            .is_some_and(|r| r.first().is_some_and(|s| s["value"][1] == "1"))
    });

    // A blended challenger (80 % outcomes, 20 % what recruiters prefer) is trained from that
    // feedback, states what it learnt from, and is served as an ordinary challenger.
    let spec = std::fs::read_to_string(repo().join("models/success6m_logistic.toml")).unwrap().replace(
        "condition = \"employed and rating >= 3\"",
        "condition = \"employed and rating >= 3\"\nblend = { outcomes = 0.8, recruiter = 0.2 }",
    );
    assert!(spec.contains("blend ="), "the shipped spec's label changed: update this test");
    let blended = dir.path().join("success6m_blended.toml");
    std::fs::write(&blended, spec).unwrap();
    let trained = json(&run_ok(hrloop(&store).args(at(NOW)).args(["train", "--model"]).arg(&blended).arg("--json")));
    let rp = &trained["recruiter_preference"];
    assert_eq!(rp["blend"]["recruiter"], 0.2, "{rp}");
    assert_eq!(rp["evidence"]["pairs"], 20, "one pair per override of the traffic above: {rp}");
    assert_eq!(rp["evidence"]["overrides"], 20, "{rp}");
    let v = trained["version"].as_str().unwrap().to_string();
    run_ok(hrloop(&store).args(at(NOW)).args([
        "models",
        "promote",
        name,
        &v,
        "--alias",
        "challenger",
        "--reason",
        "e2e blend",
        "--force",
    ]));
    let mut served_by = std::collections::BTreeSet::new();
    wait_for("the blended challenger to serve its share", Duration::from_secs(30), || {
        for r in 0..20 {
            let body = format!(
                r#"{{"requisition": {{"id": "REQ-BLEND-{r}-{}", "job_family": "sales"}}, "candidates": [{{"id": "B-{r}-0", "features": {{"interview_score": 3}}}}, {{"id": "B-{r}-1", "features": {{"interview_score": 4}}}}]}}"#,
                served_by.len()
            );
            let (status, resp) = post(&addr, "/v1/rank", &ats, &body);
            assert_eq!(status, 200, "{resp}");
            let resp: serde_json::Value = serde_json::from_str(&resp).unwrap();
            served_by.insert((
                resp["arm"].as_str().unwrap().to_string(),
                resp["model_version"].as_str().unwrap().to_string(),
            ));
        }
        served_by.contains(&("challenger".to_string(), format!("{name}/{v}")))
    });
    let verdict = json(&run_ok(hrloop(&store).args(["experiments", "show", name, "--json"])));
    let g = verdict[0]["guardrails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "champion error rate")
        .unwrap()
        .clone();
    assert_eq!((g["ok"].as_bool(), g["inconclusive"].as_bool()), (Some(true), Some(false)), "evaluated: {g}");
    assert!(g["detail"].as_str().unwrap().contains("= 0.0000"), "{g}");

    // Every panel: no error, at least one series.
    let mut empty = Vec::new();
    for (panel, exprs) in dashboard_exprs() {
        let mut series = 0;
        for e in exprs {
            let q = e.replace("$__rate_interval", "30s");
            let r = query(&prom, &q);
            assert_eq!(r["status"], "success", "{panel}: `{q}`: {r}");
            series += r["data"]["result"].as_array().map_or(0, Vec::len);
        }
        if series == 0 {
            empty.push(panel);
        }
    }
    assert!(empty.is_empty(), "panels without data: {empty:#?}");

    // Every alert rule evaluates without error (Prometheus evaluates them every second).
    std::thread::sleep(Duration::from_secs(2));
    let (_, rules) = get(&prom, "/api/v1/rules");
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let all: Vec<&serde_json::Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let shipped = std::fs::read_to_string(repo().join("dashboards/prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(shipped >= 9, "{shipped} alerts shipped");
    assert_eq!(all.len(), shipped, "every shipped alert is loaded");
    for r in all {
        assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        let q = query(&prom, r["query"].as_str().unwrap());
        assert_eq!(q["status"], "success", "{}", r["name"]);
    }

    // promtool's linter accepts the exposition.
    let (_, metrics) = get(&addr, "/metrics");
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The champion's (v2's) technical documentation (EU AI Act Annex IV), read in a browser: its
    // rankings, the recruiters' overrides with their reason, the record-keeping check above.
    let reports = dir.path().join("reports");
    let started = std::time::Instant::now();
    run_ok(
        hrloop(&store)
            .args(at("2026-11-05T13:00:00Z"))
            .args(["report", "model", &format!("{name}/v2"), "--out"])
            .arg(&reports),
    );
    eprintln!("report model: {:.1} s", started.elapsed().as_secs_f64());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join(format!("model_{name}_v2.json"))).unwrap()).unwrap();
    let o = &doc["oversight"];
    assert!(o["rankings"].as_u64().unwrap() > 0 && o["overrides"].as_u64().unwrap() > 0, "{o}");
    assert!(o["reasons"]["communication"].as_u64().unwrap() > 0, "{o}");
    assert_eq!(doc["logging"]["share"], 1.0, "{}", doc["logging"]);
    assert!(doc["bias"]["selection"]["applications"].as_u64().unwrap() > 0, "{}", doc["bias"]);
    let page = crate::browser::render(&reports.join(format!("model_{name}_v2.html")), 1100, 3000);
    assert!(page.requests.is_empty(), "{:?}", page.requests);
    assert!(!page.charts.is_empty(), "{:?}", page.charts);
    // The monthly chart has one month here: a point per line and the legend's strokes.
    for (title, marks) in &page.charts {
        assert!(*marks > 100, "chart {title:?} drew {marks} coloured pixels");
    }
    assert_eq!(doc["served_to"], serde_json::Value::Null, "v2 is still champion");
    for text in [format!("{name}/v2"), "serving since 2026-11-05".into(), "Needs a person".into(), "Annex IV".into()] {
        assert!(page.text.contains(&text), "{text:?} not on the page");
    }
}
