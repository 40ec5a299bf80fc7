//! The command line's promises: help a newcomer can read, one-line errors, non-zero exits.

use crate::{hrloop, json, run_ok};

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(hrloop(dir.path()).arg("--help"));
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "up --demo",
        "demo",
        "ingest",
        "milestones",
        "simulate",
        "lake",
        "pipelines",
        "experiments",
        "erase",
        "purge",
        "--store",
        "HRLOOP_STORE",
        "3, 6, 12 and 24 months",
    ] {
        assert!(text.contains(word), "--help lacks {word:?}:\n{text}");
    }
    let out = run_ok(hrloop(dir.path()).args(["ingest", "--help"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("quarantine") && text.contains("--mapping") && text.contains("Examples"), "{text}");
}

#[test]
fn ingest_without_a_key_is_refused_with_one_line_that_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "Employee ID;Hire date\nE1;2025-01-01\n").unwrap();
    let out = hrloop(&dir.path().join("store"))
        .args(["ingest", csv.to_str().unwrap(), "--mapping", "data/mappings/hris_outcomes.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: no pseudonymisation key") && err.contains("HRLOOP_KEY_FILE"), "{err}");
}

#[test]
fn a_refused_file_exits_non_zero_naming_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("wrong.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let out = hrloop(&dir.path().join("store"))
        .args([
            "--demo-key",
            "ingest",
            csv.to_str().unwrap(),
            "--mapping",
            "data/mappings/hris_outcomes.toml",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong.csv") && err.contains("missing column(s) \"Employee ID\""), "{err}");
    let body = json(&out);
    assert_eq!(body["refused"].as_array().unwrap().len(), 1);
}

#[test]
fn a_bad_mapping_is_named_with_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "format_version = 1\nname = \"m\"\ntable = \"outcomes\"\n[fields.employee_id]\ncolumn = \"Employee ID\"\n",
    )
    .unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "Employee ID\nE1\n").unwrap();
    let out = hrloop(&dir.path().join("store"))
        .args(["--demo-key", "ingest", csv.to_str().unwrap(), "--mapping", mapping.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("m.toml") && err.contains("[pii] identifiers"), "{err}");
}
