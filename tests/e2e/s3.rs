//! The whole path on a real S3-compatible server (SeaweedFS on loopback): ingest (the demo's
//! exports), train, serve with the decision log moved into the bucket's lake after a kill -9,
//! and an erasure, with the lake read by hrloop and by the `deltalake` package and polars
//! straight from the bucket.

#[path = "../s3/seaweed.rs"]
mod seaweed;

use std::process::Command;

use crate::serve::{post, rank_body, start_command};
use crate::{json, run_ok};

const STORE: &str = "s3://hrloop/company";

/// `hrloop` against the bucket store, its server state in `state`.
fn hrloop_s3(s3: &seaweed::Seaweed, state: &std::path::Path) -> Command {
    let mut c = crate::hrloop(std::path::Path::new("unused"));
    c.env("HRLOOP_STORE", STORE)
        .env("HRLOOP_STATE_DIR", state)
        .env("HRLOOP_PSEUDONYM_KEY", "5e".repeat(32))
        .envs(s3.env());
    c
}

/// Start a server on the bucket (moving what earlier runs left in the decision log), rank
/// `requisitions`, each acknowledged, and kill it without a flush.
fn serve_and_die(s3: &seaweed::Seaweed, state: &std::path::Path, token: &str, requisitions: std::ops::Range<usize>) {
    let (mut server, addr, _) = start_command(hrloop_s3(s3, state), &[]);
    for r in requisitions {
        let (status, resp) = post(&addr, "/v1/rank", token, &rank_body(r));
        assert_eq!(status, 200, "{resp}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Served decisions in the bucket, as (deltalake, polars) count them.
fn serving_decisions(s3: &seaweed::Seaweed) -> [u64; 2] {
    let code = format!(
        r#"
import json, polars as pl
from deltalake import DeltaTable
p = '{STORE}/lake/decisions'
a = DeltaTable(p).to_pyarrow_table(filters=[('source', '=', 'serving')]).num_rows
b = pl.scan_delta(p).filter(pl.col('source') == 'serving').select(pl.len()).collect().item()
print(json.dumps([a, b]))
"#
    );
    let out = Command::new("python3").arg("-c").arg(code).envs(s3.env()).output().unwrap();
    assert!(out.status.success(), "python on S3: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ingest_train_serve_move_and_erase_on_a_real_s3_server() {
    let Some(s3) = seaweed::Seaweed::start() else { return };
    let state = tempfile::tempdir().unwrap();
    let now = ["--now", "2026-11-05T12:00:00Z"];
    let demo = json(&run_ok(hrloop_s3(&s3, state.path()).args(now).args([
        "demo",
        "--requisitions-per-month",
        "20",
        "--json",
    ])));
    assert!(demo.to_string().contains("s3://hrloop/company/lake/"), "{demo}");
    let card = json(&run_ok(hrloop_s3(&s3, state.path()).args(now).args([
        "train",
        "--model",
        "models/success6m_logistic.toml",
        "--json",
    ])));
    let versions = &card["training_data"]["table_versions"];
    assert!(versions["hires"].is_u64() && versions["decisions"].is_u64(), "the card names table versions: {versions}");
    run_ok(hrloop_s3(&s3, state.path()).args([
        "models",
        "promote",
        "success6m_logistic",
        "v1",
        "--reason",
        "e2e",
        "--force",
    ]));
    let token = String::from_utf8(
        run_ok(hrloop_s3(&s3, state.path()).args(["tokens", "add", "ats", "--role", "recruiter"])).stdout,
    )
    .unwrap()
    .trim()
    .to_string();

    // Serve, acknowledge, die without flushing: the write-ahead log is on local disk, and the
    // next start moves it into the bucket.
    serve_and_die(&s3, state.path(), &token, 0..4);
    serve_and_die(&s3, state.path(), &token, 0..0);
    assert_eq!(serving_decisions(&s3), [40, 40], "every acknowledged decision, once, in the bucket");

    // Erase one served candidate: gone from the bucket's lake, and the scan proves it.
    let report = json(&run_ok(hrloop_s3(&s3, state.path()).args([
        "erase",
        "--person",
        "E2E-0-0",
        "--reason",
        "e2e on S3",
        "--actor",
        "dpo",
        "--json",
    ])));
    assert!(report["rows_removed"].as_u64().unwrap() >= 1, "{report}");
    run_ok(hrloop_s3(&s3, state.path()).args(["erase", "--verify", "E2E-0-0"]));
    assert_eq!(serving_decisions(&s3), [39, 39]);

    // The scheduled compaction runs on the bucket too, with its run record, and keeps every row.
    let run = json(&run_ok(hrloop_s3(&s3, state.path()).args(["pipelines", "run", "lake-compaction", "--json"])));
    assert!(run.to_string().contains("compacted decisions"), "{run}");
    assert_eq!(serving_decisions(&s3), [39, 39]);
    let history = run_ok(hrloop_s3(&s3, state.path()).args(["pipelines", "history", "lake-compaction"]));
    assert!(String::from_utf8_lossy(&history.stdout).contains("compacted decisions"));

    // Three more server runs, one requisition each: with the 2026-12 files before, enough small
    // files in one month for the compaction to merge them (each segment moves at the next start).
    for r in 4..7 {
        serve_and_die(&s3, state.path(), &token, r..r + 1);
    }
    serve_and_die(&s3, state.path(), &token, 0..0);
    // A manual run's slot is its second: this second run names a later one, so it is never
    // taken for the first (the scheduler refuses a slot already claimed).
    let later = ["--now", "2030-01-01T00:00:00Z"];
    let run =
        json(&run_ok(hrloop_s3(&s3, state.path()).args(later).args(["pipelines", "run", "lake-compaction", "--json"])));
    let merged = run["steps"][0]["outputs"][0]["files_merged"].as_u64().unwrap();
    assert!(merged >= 4, "{run}");
    assert_eq!(serving_decisions(&s3), [69, 69]);

    // An erasure after that compaction: the merged inputs, kept for the versions before it, held
    // the person too; they go as well, so the scan of every object in the bucket finds nothing.
    let report = json(&run_ok(hrloop_s3(&s3, state.path()).args([
        "erase",
        "--person",
        "E2E-1-0",
        "--reason",
        "e2e on S3",
        "--actor",
        "dpo",
        "--json",
    ])));
    let superseded: usize =
        report["tables"].as_array().unwrap().iter().map(|t| t["superseded_deleted"].as_array().unwrap().len()).sum();
    assert!(superseded >= 1, "{report}");
    assert_eq!(report["verification"]["absent"], true, "{report}");
    run_ok(hrloop_s3(&s3, state.path()).args(["erase", "--verify", "E2E-1-0"]));
    assert_eq!(serving_decisions(&s3), [68, 68]);
}
