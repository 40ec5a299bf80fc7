//! Erasure, retention and the audit trail through the CLI, on a simulated company.

use std::path::Path;

use crate::{SMALL_DEMO, delta_rows, hrloop, json, run_ok, table_rows};

const INGESTS: [(&str, &str); 4] = [
    ("ats_applications.csv", "ats_applications"),
    ("ats_hires.jsonl", "ats_hires"),
    ("hris_outcomes.csv", "hris_outcomes"),
    ("protected_attributes.csv", "protected_attributes"),
];

fn demo(store: &Path, now: &str, requisitions_per_month: &str) {
    run_ok(hrloop(store).args(["--now", now, "demo", "--requisitions-per-month", requisitions_per_month, "--json"]));
}

/// A hire whose 3-month outcome the HRIS reported: (candidate id, employee id) as the source
/// systems know them.
fn hired_person_with_outcomes(exports: &Path) -> (String, String) {
    let outcomes = std::fs::read_to_string(exports.join("hris_outcomes.csv")).unwrap();
    for line in std::fs::read_to_string(exports.join("ats_hires.jsonl")).unwrap().lines() {
        let Ok(h) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let (Some(c), Some(e)) = (h["candidate_id"].as_str(), h["employee_number"].as_str())
            && outcomes.lines().filter(|l| l.contains(e)).count() >= 2
        {
            return (c.to_string(), e.to_string());
        }
    }
    panic!("the simulated company has no hire with outcomes");
}

#[test]
fn an_erased_person_is_gone_stays_gone_is_traced_to_models_and_the_audit_trail_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    demo(&store, "2026-01-20T08:00:00Z", "20");
    let exports = store.join("inbox/sim-seed7");
    let (candidate, employee) = hired_person_with_outcomes(&exports);
    let model = json(&run_ok(hrloop(&store).args([
        "--now",
        "2026-01-20T09:00:00Z",
        "train",
        "--model",
        "models/success6m_logistic.toml",
        "--json",
    ])));
    let version = model["version"].as_str().unwrap().to_string();

    // Positive control: before the erasure the scan finds them, and says where.
    let before = hrloop(&store).args(["--demo-key", "erase", "--verify", &candidate, "--json"]).output().unwrap();
    assert_eq!(before.status.code(), Some(1), "the person is in the lake before erasure");
    let found = json(&before);
    let places: Vec<&str> =
        found["findings"].as_array().unwrap().iter().map(|f| f["location"].as_str().unwrap()).collect();
    for table in ["decisions", "hires", "outcomes", "protected_attributes"] {
        assert!(places.iter().any(|p| p.starts_with(&format!("lake/{table}/"))), "{table} not in {places:?}");
    }
    let rows_before = table_rows(&store);

    let report = json(&run_ok(hrloop(&store).args([
        "--demo-key",
        "--now",
        "2026-01-20T12:00:00Z",
        "erase",
        "--person",
        &candidate,
        "--reason",
        "GDPR art. 17 request 42",
        "--actor",
        "dpo",
        "--json",
    ])));
    let removed = |table: &str| {
        report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap()["rows_removed"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(removed("hires"), 1);
    assert_eq!(removed("protected_attributes"), 1);
    assert!(removed("decisions") >= 1);
    assert!(removed("outcomes") >= 2, "the employee side is found through the hire");
    assert_eq!(report["verification"]["absent"], true, "{}", report["verification"]);
    let after = table_rows(&store);
    for (table, n) in &rows_before {
        assert_eq!(after[table], n - removed(table), "{table}: exactly the person's rows are gone");
        assert_eq!(delta_rows(&store, table), after[table], "deltalake reads the rewritten {table}");
    }
    let lineage = report["trained_on_person"].as_array().unwrap();
    assert!(
        lineage.iter().any(|h| h["model"] == "success6m_logistic" && h["version"] == version.as_str()),
        "the version trained on the person is named: {lineage:?}"
    );
    // The report names the versions: the removal's commit per table, and the trained version's
    // table versions.
    let hires_report = report["tables"].as_array().unwrap().iter().find(|t| t["table"] == "hires").unwrap();
    assert!(
        hires_report["version"].as_u64().unwrap() > model["training_data"]["table_versions"]["hires"].as_u64().unwrap()
    );
    let hit = lineage.iter().find(|h| h["version"] == version.as_str()).unwrap();
    assert_eq!(hit["table_versions"], model["training_data"]["table_versions"]);
    // The versions that held the person can no longer be read, by hrloop or anyone else.
    let gone = hrloop(&store).args(["train", "--as-of", &format!("success6m_logistic/{version}")]).output().unwrap();
    assert!(!gone.status.success());
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(err.contains("can no longer be read"), "{err}");
    let held = model["training_data"]["table_versions"]["hires"].as_u64().unwrap();
    let old_read = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "from deltalake import DeltaTable; DeltaTable({:?}, version={held}).to_pyarrow_table()",
            store.join("lake/hires").to_str().unwrap()
        ))
        .output()
        .unwrap();
    assert!(!old_read.status.success(), "deltalake cannot read hires at version {held} either");
    for id in [&candidate, &employee] {
        run_ok(hrloop(&store).args(["--demo-key", "erase", "--verify", id]));
    }

    // Re-ingesting the original exports does not bring them back.
    let mut dropped = 0;
    for (file, mapping) in INGESTS {
        let mapping = format!("data/mappings/{mapping}.toml");
        let r = json(&run_ok(hrloop(&store).args(["--demo-key", "ingest"]).arg(exports.join(file)).args([
            "--mapping",
            &mapping,
            "--json",
        ])));
        let r = &r["batches"][0];
        assert_eq!(r["rows_accepted"], 0, "{file}: {r}");
        dropped += r["rows_erased"].as_u64().unwrap();
    }
    // Every stored row of theirs came from these exports: at least as many are dropped again
    // (repeats and broken rows of theirs are dropped too).
    assert!(dropped >= rows_before.values().sum::<u64>() - after.values().sum::<u64>() - removed("quarantine"));
    run_ok(hrloop(&store).args(["--demo-key", "erase", "--verify", &candidate]));
    assert_eq!(table_rows(&store), after);

    // A model trained now is not on the person's data; the earlier one stays named.
    run_ok(hrloop(&store).args([
        "--now",
        "2026-01-21T09:00:00Z",
        "train",
        "--model",
        "models/success6m_logistic.toml",
    ]));
    let again = json(&run_ok(hrloop(&store).args([
        "--demo-key",
        "--now",
        "2026-01-21T12:00:00Z",
        "erase",
        "--person",
        &candidate,
        "--reason",
        "repeat",
        "--json",
    ])));
    assert_eq!(again["rows_removed"], 0, "erasure is idempotent");

    // The audit trail records it without the person's identifiers, and verifies.
    let audit = json(&run_ok(hrloop(&store).args(["audit", "show", "--json"])));
    let erase = audit.as_array().unwrap().iter().find(|r| r["action"] == "erase").expect("erasure audited");
    assert_eq!(erase["actor"], "dpo");
    assert_eq!(erase["details"]["reason"], "GDPR art. 17 request 42");
    let audit_text = audit.to_string();
    assert!(!audit_text.contains(&candidate) && !audit_text.contains(&employee));
    run_ok(hrloop(&store).args(["audit", "verify"]));

    // Editing one record by hand breaks the chain at that record.
    let seq = erase["seq"].as_u64().unwrap();
    let mut edited = false;
    for entry in std::fs::read_dir(store.join("audit")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        if text.contains("GDPR art. 17 request 42") {
            std::fs::write(entry.path(), text.replace("request 42", "request 24")).unwrap();
            edited = true;
        }
    }
    assert!(edited);
    let broken = hrloop(&store).args(["audit", "verify"]).output().unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let says = String::from_utf8_lossy(&broken.stdout);
    assert!(says.contains(&format!("record {seq} ")) && says.contains("changed"), "{says}");
}

#[test]
fn retention_purge_deletes_what_aged_out_reports_it_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    demo(&store, "2026-01-20T08:00:00Z", "8");
    let before = table_rows(&store);
    assert!(before["quarantine"] > 0);
    let purge = |now: &str, extra: &[&str]| {
        json(&run_ok(hrloop(&store).args(["--now", now, "purge", "--json", "--actor", "scheduler"]).args(extra)))
    };
    // Nothing has aged out on the day of ingestion except old rejected applicants.
    let today = purge("2026-01-20T09:00:00Z", &["--dry-run"]);
    let rule = |r: &serde_json::Value, name: &str| {
        r["rules"].as_array().unwrap().iter().find(|x| x["rule"] == name).unwrap()["rows_removed"].as_u64().unwrap()
    };
    assert_eq!(rule(&today, "quarantined rows"), 0);
    assert_eq!(rule(&today, "decision logs"), 0);

    // 18 months later: quarantine (90 days) is all gone, applicants never hired whose last
    // decision is over 24 months old are gone, hires and outcomes are untouched.
    let dry = purge("2027-07-20T09:00:00Z", &["--dry-run"]);
    assert_eq!(table_rows(&store), before, "a dry run changes nothing");
    let done = purge("2027-07-20T09:00:00Z", &[]);
    // A dry run counts a row two rules match under both; the real run removes it once.
    assert!(dry["rows_removed"].as_u64() >= done["rows_removed"].as_u64());
    assert!(rule(&done, "rejected applicants") > 0, "{done}");
    let after = table_rows(&store);
    assert_eq!(after.get("quarantine").copied().unwrap_or(0), 0);
    let total = |t: &std::collections::BTreeMap<String, u64>| t.values().sum::<u64>();
    assert_eq!(total(&before) - total(&after), done["rows_removed"].as_u64().unwrap());
    assert_eq!((after["hires"], after["outcomes"]), (before["hires"], before["outcomes"]));
    assert!(after["decisions"] < before["decisions"]);
    for (table, n) in &after {
        assert_eq!(delta_rows(&store, table), *n, "deltalake reads {table} after the purge");
    }
    assert_eq!(purge("2027-07-20T09:00:00Z", &[])["rows_removed"], 0, "a second purge removes nothing");
    assert!(after["protected_attributes"] > 0, "the hires' attributes are kept while bias monitoring needs them");

    // Data minimisation: 36 months after the last application, no protected attribute is
    // left, while the hires and their outcomes stay.
    let later = purge("2030-01-20T09:00:00Z", &[]);
    assert!(rule(&later, "protected attributes") > 0, "{later}");
    let last = table_rows(&store);
    assert_eq!(last.get("protected_attributes").copied().unwrap_or(0), 0, "{last:?}");
    assert_eq!((last["hires"], last["outcomes"]), (before["hires"], before["outcomes"]));
    let audit = json(&run_ok(hrloop(&store).args(["audit", "show", "--json"])));
    assert_eq!(audit.as_array().unwrap().iter().filter(|r| r["action"] == "purge").count(), 3);
    run_ok(hrloop(&store).args(["audit", "verify"]));
}

/// `demo` keys pseudonyms like every other command: with HRLOOP_PSEUDONYM_KEY set it uses that
/// key, not a demo key, so an erasure with the real key finds the demo's people.
#[test]
fn the_demo_uses_the_configured_key_so_erasure_with_it_finds_the_demos_people() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let key = "5e".repeat(32);
    let out = run_ok(hrloop(&store).env("HRLOOP_PSEUDONYM_KEY", &key).args(SMALL_DEMO));
    let hires = std::fs::read_to_string(store.join("inbox/sim-seed7/ats_hires.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(hires.lines().next().unwrap()).unwrap();
    let candidate = first["candidate_id"].as_str().unwrap().to_string();
    let verify = |key: &str| {
        hrloop(&store)
            .env("HRLOOP_PSEUDONYM_KEY", key)
            .args(["erase", "--verify", &candidate, "--json"])
            .output()
            .unwrap()
    };
    let found = verify(&key);
    assert_eq!(found.status.code(), Some(1), "found with the key: {}", String::from_utf8_lossy(&found.stderr));
    assert!(!json(&found)["findings"].as_array().unwrap().is_empty());
    // Another key finds nobody: the match above is the key's doing.
    assert_eq!(verify(&"a1".repeat(32)).status.code(), Some(0));
    assert!(!store.join("secrets/pseudonym.key").exists(), "no demo key was made");
    // And the demo says which key it used, without printing it.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("it is used, not the demo key") && err.contains("HRLOOP_PSEUDONYM_KEY"), "{err}");
    assert!(!err.contains(&key), "{err}");
}
