//! Crash safety: a reader never sees part of a batch (nor a partial file), an acknowledged
//! write survives, and an interrupted ingest completes on re-run without duplicates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{delta_rows, hrloop, json, python, run_ok, table_rows};

fn exports(dir: &Path, months: u32, reqs: u32) -> PathBuf {
    let out = dir.join("exports");
    run_ok(hrloop(&dir.join("unused")).args([
        "simulate",
        "--months",
        &months.to_string(),
        "--requisitions-per-month",
        &reqs.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]));
    out
}

fn expected(exports: &Path, file: &str) -> u64 {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(exports.join("manifest.json")).unwrap()).unwrap();
    let f = &m["files"][file];
    f["rows"].as_u64().unwrap() - f["bad_rows"].as_u64().unwrap() - f["duplicates"].as_u64().unwrap()
}

fn ingest_cmd(store: &Path, file: &Path, mapping: &str) -> std::process::Command {
    let mut c = hrloop(store);
    c.args([
        "--demo-key",
        "ingest",
        file.to_str().unwrap(),
        "--mapping",
        &format!("data/mappings/{mapping}.toml"),
        "--json",
        "--no-progress",
    ]);
    c
}

/// Everything a reader can see is whole: pyarrow reads every file of every table's newest Delta
/// snapshot, and the `deltalake` package reads each table. Files a crashed batch left outside
/// the log are allowed; no reader sees them.
fn assert_every_visible_file_is_whole(store: &Path) {
    let lake = store.join("lake");
    if !lake.exists() {
        return;
    }
    python(&format!(
        r#"
import os, pyarrow.parquet as pq
from deltalake import DeltaTable
for t in os.listdir({lake:?}):
    p = os.path.join({lake:?}, t)
    if not os.path.isdir(os.path.join(p, '_delta_log')):
        continue
    d = DeltaTable(p)
    for f in d.file_uris():
        pq.read_table(f)
    d.to_pyarrow_dataset().count_rows()
"#,
        lake = lake.to_str().unwrap()
    ));
}

#[test]
fn injected_crash_before_commit_leaves_nothing_visible_and_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let ex = exports(dir.path(), 6, 8);
    let file = ex.join("ats_applications.csv");
    let out = ingest_cmd(&store, &file, "ats_applications").env("HRLOOP_FAULT", "after_stage").output().unwrap();
    assert!(!out.status.success(), "the injected crash must stop the process");
    assert!(std::fs::read_dir(store.join("_staging")).unwrap().count() > 0, "data was staged before the crash");
    assert_eq!(delta_rows(&store, "decisions"), 0, "nothing staged is visible");
    assert_every_visible_file_is_whole(&store);
    run_ok(&mut ingest_cmd(&store, &file, "ats_applications"));
    assert_eq!(delta_rows(&store, "decisions"), expected(&ex, "ats_applications.csv"));
}

#[test]
fn injected_crash_mid_commit_shows_nothing_of_the_batch_and_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let ex = exports(dir.path(), 6, 8);
    let file = ex.join("ats_applications.csv");
    let out = ingest_cmd(&store, &file, "ats_applications").env("HRLOOP_FAULT", "after_first_commit").output().unwrap();
    assert!(!out.status.success());
    // One partition file is in its directory, but the batch's Delta commit never happened.
    let on_disk = walkdir(&store.join("lake/decisions"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(on_disk >= 1, "a file was moved into the table before the crash");
    assert_eq!(delta_rows(&store, "decisions"), 0, "a batch is visible whole or not at all");
    assert_eq!(table_rows(&store)["decisions"], 0);
    assert_every_visible_file_is_whole(&store);
    let report = json(&run_ok(&mut ingest_cmd(&store, &file, "ats_applications")));
    assert_eq!(report["batches"][0]["rows_already_present"].as_u64().unwrap(), 0);
    assert_eq!(delta_rows(&store, "decisions"), expected(&ex, "ats_applications.csv"));
    assert_eq!(table_rows(&store)["decisions"], expected(&ex, "ats_applications.csv"));
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walkdir(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn killed_at_random_moments_readers_see_whole_files_and_acknowledged_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let ex = exports(dir.path(), 10, 14);
    // Acknowledged first: the outcomes batch returned success.
    run_ok(&mut ingest_cmd(&store, &ex.join("hris_outcomes.csv"), "hris_outcomes"));
    let acknowledged = table_rows(&store)["outcomes"];
    assert_eq!(acknowledged, expected(&ex, "hris_outcomes.csv"));
    let file = ex.join("ats_applications.csv");
    // Time one full run to spread the kills over it.
    let start = std::time::Instant::now();
    let probe_store = dir.path().join("probe");
    run_ok(&mut ingest_cmd(&probe_store, &file, "ats_applications"));
    let full = start.elapsed();
    for i in 1..=6u32 {
        let mut child = ingest_cmd(&store, &file, "ats_applications")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(f64::from(i) / 7.0));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_every_visible_file_is_whole(&store);
        assert_eq!(delta_rows(&store, "outcomes"), acknowledged, "acknowledged outcomes survive kill {i}");
        assert!(delta_rows(&store, "decisions") <= expected(&ex, "ats_applications.csv"));
    }
    std::thread::sleep(Duration::from_millis(10));
    run_ok(&mut ingest_cmd(&store, &file, "ats_applications"));
    assert_eq!(delta_rows(&store, "decisions"), expected(&ex, "ats_applications.csv"));
    assert_eq!(table_rows(&store)["decisions"], expected(&ex, "ats_applications.csv"));
}
