//! The README's main job on a fresh store, twice, read back without hrloop.

use crate::{hrloop, json, reader_counts, run_ok, table_rows};

#[test]
fn demo_fills_delta_tables_that_deltalake_polars_and_duckdb_read_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let demo = || {
        json(&run_ok(hrloop(&store).args([
            "--now",
            "2026-01-20",
            "demo",
            "--months",
            "14",
            "--requisitions-per-month",
            "12",
            "--json",
        ])))
    };
    let first = demo();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("inbox/sim-seed7/manifest.json")).unwrap()).unwrap();
    // Every export lands exactly as the simulator says: broken rows quarantined, repeats once.
    for b in first["batches"].as_array().unwrap() {
        let m = &manifest["files"][b["source_file"].as_str().unwrap()];
        let expected =
            m["rows"].as_u64().unwrap() - m["bad_rows"].as_u64().unwrap() - m["duplicates"].as_u64().unwrap();
        assert_eq!(b["rows_accepted"].as_u64().unwrap(), expected, "{}", b["source_file"]);
        assert_eq!(b["rows_quarantined"], m["bad_rows"], "{}", b["source_file"]);
    }
    let counts = table_rows(&store);
    assert!(counts["outcomes"] > 100 && counts["decisions"] > 1000, "{counts:?}");
    // Every table, read by the three Delta readers without hrloop, at its newest version.
    let tables: Vec<&str> = counts.keys().map(String::as_str).collect();
    for (table, [deltalake, polars, duckdb]) in reader_counts(&store, &tables, None) {
        let rows = counts[&table];
        assert_eq!((deltalake, polars, duckdb), (rows, rows, rows), "deltalake, polars, DuckDB on {table}");
    }
    // And one past version: the quarantine table's first commit holds the first export's bad
    // rows only (each export is one batch, one commit).
    let stats = json(&run_ok(hrloop(&store).args(["lake", "stats", "--json"])));
    let quarantine = stats.as_array().unwrap().iter().find(|t| t["table"] == "quarantine").unwrap();
    assert!(quarantine["version"].as_u64().unwrap() >= 1, "{quarantine}");
    let first_batch =
        first["batches"].as_array().unwrap().iter().find(|b| b["rows_quarantined"].as_u64().unwrap() > 0).unwrap();
    let v0 = first_batch["rows_quarantined"].as_u64().unwrap();
    assert!(v0 < counts["quarantine"]);
    let [a, b, c] = reader_counts(&store, &["quarantine"], Some(0))["quarantine"];
    assert_eq!((a, b, c), (v0, v0, v0), "deltalake, polars, DuckDB on quarantine at version 0");
    // The demo key is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.join("secrets/pseudonym.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Again: nothing changes.
    let second = demo();
    for b in second["batches"].as_array().unwrap() {
        assert_eq!(b["rows_accepted"], 0, "{}", b["source_file"]);
    }
    assert_eq!(table_rows(&store), counts);

    // Milestones: completeness per milestone against the 90 % / 95 % targets.
    let status = json(&run_ok(hrloop(&store).args(["--now", "2026-01-20", "milestones", "status", "--json"])));
    let six = status["completeness"].as_array().unwrap().iter().find(|c| c["milestone"] == "6m").unwrap();
    assert_eq!(six["target"], 0.9);
    assert!(six["due"].as_u64().unwrap() > 50, "{six}");
    let c = six["completeness"].as_f64().unwrap();
    assert!((0.7..=1.0).contains(&c), "{six}");
}

#[test]
fn the_same_export_ingested_by_the_cli_twice_changes_no_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let exports = dir.path().join("exports");
    run_ok(hrloop(&store).args([
        "simulate",
        "--months",
        "6",
        "--requisitions-per-month",
        "4",
        "--out",
        exports.to_str().unwrap(),
    ]));
    let file = exports.join("hris_outcomes.csv");
    let ingest = |store: &std::path::Path| {
        json(&run_ok(hrloop(store).args([
            "--demo-key",
            "ingest",
            file.to_str().unwrap(),
            "--mapping",
            "data/mappings/hris_outcomes.toml",
            "--json",
        ])))
    };
    let a = ingest(&store);
    let after_first = table_rows(&store);
    let b = ingest(&store);
    assert_eq!(table_rows(&store), after_first);
    assert_eq!(b["batches"][0]["rows_accepted"], 0);
    assert_eq!(b["batches"][0]["rows_already_present"], a["batches"][0]["rows_accepted"]);
}

/// Past ten commits a table has a checkpoint, and the three readers read it from the
/// checkpoint alone (the earlier JSON commits hidden), at the same count as hrloop.
#[test]
fn a_table_past_ten_commits_is_read_from_its_checkpoint_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let exports = dir.path().join("exports");
    run_ok(hrloop(&store).args([
        "simulate",
        "--months",
        "8",
        "--requisitions-per-month",
        "6",
        "--out",
        exports.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(exports.join("hris_outcomes.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = rows.lines().collect();
    assert!(rows.len() >= 12, "{} outcome rows", rows.len());
    // Twelve batches, twelve commits (versions 0 to 11).
    let chunk = rows.len() / 12;
    for i in 0..12 {
        let part = if i == 11 { &rows[i * chunk..] } else { &rows[i * chunk..(i + 1) * chunk] };
        let file = dir.path().join(format!("outcomes-{i:02}.csv"));
        std::fs::write(&file, format!("{header}\n{}\n", part.join("\n"))).unwrap();
        run_ok(hrloop(&store).args([
            "--demo-key",
            "ingest",
            file.to_str().unwrap(),
            "--mapping",
            "data/mappings/hris_outcomes.toml",
            "--no-progress",
        ]));
    }
    let log = store.join("lake/outcomes/_delta_log");
    assert!(log.join("00000000000000000010.checkpoint.parquet").exists());
    let rows = table_rows(&store)["outcomes"];
    let hidden = dir.path().join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    for v in 0..10 {
        let name = format!("{v:020}.json");
        std::fs::rename(log.join(&name), hidden.join(&name)).unwrap();
    }
    assert_eq!(reader_counts(&store, &["outcomes"], None)["outcomes"], [rows; 3]);
    assert_eq!(table_rows(&store)["outcomes"], rows, "hrloop reads it from the checkpoint too");
}
