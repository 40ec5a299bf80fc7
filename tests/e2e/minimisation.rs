//! Data minimisation: a whole run of hrloop (simulated company, training, serving with
//! rankings, feedback and outcome exports over HTTP, metrics, an erasure, a purge) writes no
//! name, e-mail or national id anywhere: lake, reports, registry, audit trail, decision logs,
//! the server's debug log, the metrics output, any command's output.

use std::process::{Command, Output};

use crate::serve::{post, request, start_logged};
use crate::{hrloop, python, run_ok};

#[test]
fn no_name_email_or_national_id_is_written_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let exports = store.join("inbox/sim-seed7");
    let written = std::cell::RefCell::new(String::new());
    let run = |cmd: &mut Command| -> Output {
        let out = run_ok(cmd);
        written.borrow_mut().push_str(&String::from_utf8_lossy(&out.stdout));
        written.borrow_mut().push_str(&String::from_utf8_lossy(&out.stderr));
        out
    };
    let now = ["--now", "2026-11-05T12:00:00Z"];
    run(hrloop(&store).args(now).args(["demo", "--requisitions-per-month", "20"]));
    run(hrloop(&store).args(now).args(["train", "--model", "models/success6m_logistic.toml"]));
    run(hrloop(&store).args(["models", "promote", "success6m_logistic", "v1", "--reason", "e2e", "--force"]));
    let token = |name: &str, role: &str| {
        let out = run(hrloop(&store).args(["tokens", "add", name, "--role", role]));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (ats, hris, dpo) = (token("ats", "recruiter"), token("hris", "data_team"), token("dpo", "admin"));

    let (mut server, addr, log) = start_logged(&store, &["-vv"]);
    let hires: Vec<serde_json::Value> = std::fs::read_to_string(exports.join("ats_hires.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ids: Vec<&str> = hires.iter().filter_map(|h| h["candidate_id"].as_str()).take(40).collect();
    for (r, chunk) in ids.chunks(10).enumerate() {
        let candidates: Vec<String> = chunk
            .iter()
            .map(|id| format!(r#"{{"id": "{id}", "features": {{"interview_score": 3, "assessment_score": 70}}}}"#))
            .collect();
        let body = format!(
            r#"{{"requisition": {{"id": "REQ-MIN-{r}", "job_family": "sales"}}, "candidates": [{}]}}"#,
            candidates.join(",")
        );
        let (status, resp) = post(&addr, "/v1/rank", &ats, &body);
        assert_eq!(status, 200, "{resp}");
        written.borrow_mut().push_str(&resp);
        let fb = format!(
            r#"[{{"requisition_id": "REQ-MIN-{r}", "candidate_id": "{}", "recruiter_id": "REC-7", "decision": "advanced", "overrides_model": true, "reason_code": "portfolio", "reason_text": "strong portfolio"}}]"#,
            chunk[0]
        );
        let (status, resp) = post(&addr, "/v1/feedback", &ats, &fb);
        assert_eq!(status, 200, "{resp}");
        written.borrow_mut().push_str(&resp);
    }
    // The HRIS posts its export as is, names and personnummer included: dropped at the door.
    let hris_csv: String = std::fs::read_to_string(exports.join("hris_outcomes.csv"))
        .unwrap()
        .lines()
        .take(60)
        .collect::<Vec<_>>()
        .join("\n");
    let (status, resp) = request(&addr, "POST", "/v1/outcomes", &hris, "text/csv", &hris_csv);
    assert_eq!(status, 200, "{resp}");
    written.borrow_mut().push_str(&resp);
    let (status, resp) =
        post(&addr, "/v1/erasures", &dpo, &format!(r#"{{"person": "{}", "reason": "request 9"}}"#, ids[0]));
    assert_eq!(status, 200, "{resp}");
    written.borrow_mut().push_str(&resp);
    let (status, metrics) = request(&addr, "GET", "/metrics", "", "text/plain", "");
    assert_eq!(status, 200);
    written.borrow_mut().push_str(&metrics);
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(server.wait().unwrap().success(), "SIGTERM stops the server gracefully");
    written.borrow_mut().push_str(&log.lock().unwrap());
    assert!(written.borrow().contains("decisions flushed to the lake"), "the server log was captured");

    run(hrloop(&store).args(["--demo-key", "erase", "--verify", ids[0]]));
    run(hrloop(&store).args(["--now", "2027-06-01", "purge", "--dry-run"]));
    run(hrloop(&store).args(["audit", "show"]));
    run(hrloop(&store).args(["lake", "stats"]));
    run(hrloop(&store).args(["models", "show", "success6m_logistic/v1"]));
    // Whichever part wrote it (demo, training, tokens, the server's decision log and audit
    // trail, erasure), nothing in the store is open to other users.
    #[cfg(unix)]
    crate::assert_owner_only(&store);
    let mut written = written.into_inner();

    // Everything in the store except the source systems' own exports (inbox/): Parquet decoded
    // cell by cell, every other file as bytes.
    let dump = python(&format!(
        r#"
import os, pyarrow.parquet as pq
root = {root:?}
out = []
for d, dirs, files in os.walk(root):
    if os.path.relpath(d, root).split(os.sep)[0] == "inbox":
        continue
    for f in files:
        p = os.path.join(d, f)
        if f.endswith(".parquet"):
            for col in pq.read_table(p).columns:
                out.extend(str(v) for v in col.to_pylist())
        else:
            out.append(open(p, "rb").read().decode("utf-8", "replace"))
print("\n".join(out))
"#,
        root = store.to_str().unwrap()
    ));
    assert!(dump.len() > 1_000_000, "the dump covers the lake ({} bytes)", dump.len());
    written.push_str(&dump);

    // Every name, e-mail and personnummer the simulator put in its exports.
    let mut pii = std::collections::BTreeSet::new();
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_path(exports.join("ats_applications.csv")).unwrap();
    for rec in rdr.records().flatten() {
        for i in 1..=3 {
            if let Some(v) = rec.get(i).filter(|v| v.len() > 5) {
                pii.insert(v.to_string());
            }
        }
    }
    for h in &hires {
        for k in ["name", "email", "personnummer"] {
            if let Some(v) = h[k].as_str().filter(|v| v.len() > 5) {
                pii.insert(v.to_string());
            }
        }
    }
    assert!(pii.len() > 1000);
    let pii: Vec<&String> = pii.iter().collect();
    let matcher = aho_corasick::AhoCorasick::new(&pii).unwrap();
    assert!(matcher.is_match(&hris_csv), "positive control: the matcher finds the personal data in an export");
    let found: Vec<&str> = matcher.find_iter(&written).take(5).map(|m| pii[m.pattern().as_usize()].as_str()).collect();
    assert!(found.is_empty(), "personal data written by hrloop: {found:?}");
}
