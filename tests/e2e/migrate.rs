//! A store written before the lake used Delta tables: named in the error, and turned into Delta
//! tables in place by `hrloop lake migrate`, even when that is killed half way.

use std::path::Path;

use crate::{SMALL_DEMO, hrloop, json, reader_counts, run_ok, table_rows};

/// Turn a Delta store back into what hrloop wrote before Delta: the same Parquet files in the
/// same Hive directories, without any `_delta_log` or the lake marker.
fn strip_delta(store: &Path) {
    let lake = store.join("lake");
    std::fs::remove_file(lake.join("_delta_lake.json")).unwrap();
    for t in std::fs::read_dir(&lake).unwrap().flatten() {
        let log = t.path().join("_delta_log");
        if log.exists() {
            std::fs::remove_dir_all(log).unwrap();
        }
    }
}

fn stderr(c: &mut std::process::Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} should fail on a pre-Delta store");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_pre_delta_store_is_named_and_migrated_in_place_even_when_killed_half_way() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    run_ok(hrloop(&store).args(SMALL_DEMO));
    let truth = table_rows(&store);
    assert!(truth["decisions"] > 100 && truth["outcomes"] > 0, "{truth:?}");
    strip_delta(&store);

    // Reads and writes both refuse, and say what to do; nothing is hidden or overwritten.
    let err = stderr(hrloop(&store).args(["lake", "stats"]));
    assert!(err.contains("run `hrloop lake migrate`"), "{err}");
    let err = stderr(hrloop(&store).args(SMALL_DEMO));
    assert!(err.contains("run `hrloop lake migrate`"), "{err}");

    // Killed after its first table: that table is a Delta table, the others are not yet.
    let out = hrloop(&store).args(["lake", "migrate"]).env("HRLOOP_FAULT", "migrate_after_table").output().unwrap();
    assert!(!out.status.success(), "the injected crash stops the migration");
    assert!(store.join("lake/decisions/_delta_log").exists());
    assert!(!store.join("lake/outcomes/_delta_log").exists());
    let err = stderr(hrloop(&store).args(["lake", "stats"]));
    assert!(err.contains("run `hrloop lake migrate`"), "{err}");

    // The re-run finishes the job: every row once, every reader agrees.
    let done = json(&run_ok(hrloop(&store).args(["lake", "migrate", "--json"])));
    let decisions = done.as_array().unwrap().iter().find(|m| m["table"] == "decisions").unwrap();
    assert_eq!(decisions["already_delta"], true, "{done}");
    let outcomes = done.as_array().unwrap().iter().find(|m| m["table"] == "outcomes").unwrap();
    assert_eq!(
        (outcomes["already_delta"].as_bool(), outcomes["rows"].as_u64()),
        (Some(false), Some(truth["outcomes"]))
    );
    assert_eq!(table_rows(&store), truth);
    let tables: Vec<&str> = truth.keys().map(String::as_str).collect();
    for (table, counts) in reader_counts(&store, &tables, None) {
        assert_eq!(counts, [truth[&table]; 3], "deltalake, polars, DuckDB on {table}");
    }

    // Once more: nothing to do. And the store works again: the demo re-run adds nothing.
    let again = json(&run_ok(hrloop(&store).args(["lake", "migrate", "--json"])));
    assert!(again.as_array().unwrap().iter().all(|m| m["already_delta"] == true || m["version"].is_null()), "{again}");
    let rerun = json(&run_ok(hrloop(&store).args(SMALL_DEMO)));
    for b in rerun["batches"].as_array().unwrap() {
        assert_eq!(b["rows_accepted"], 0, "{}", b["source_file"]);
    }
    assert_eq!(table_rows(&store), truth);
}
