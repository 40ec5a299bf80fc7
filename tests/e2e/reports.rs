//! `hrloop report bias-audit` on the demo's imported ATS history, checked against the same
//! rates computed independently with polars and pyarrow from the lake's Delta tables.

use crate::{SMALL_DEMO, hrloop, python, run_ok};

#[test]
fn the_bias_audit_of_imported_history_matches_polars_on_the_delta_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    run_ok(hrloop(&store).args(SMALL_DEMO));
    let reports = dir.path().join("reports");
    let started = std::time::Instant::now();
    run_ok(
        hrloop(&store)
            .args(["--now", "2025-05-01", "report", "bias-audit", "--source", "imported", "--from", "2024-11-01"])
            .args(["--to", "2025-04-30", "--attributes", "gender,age_band", "--format", "csv,html", "--out"])
            .arg(&reports),
    );
    eprintln!("bias audit of the small demo: {:.1} s", started.elapsed().as_secs_f64());
    let csv_path = reports.join("bias-audit_2024-11-01_2025-04-30.csv");
    let mut rows = csv::Reader::from_path(&csv_path).unwrap();
    let mut ours: Vec<String> = rows
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[1] == "selection" && (&r[2] == "gender" || &r[2] == "age_band"))
        .map(|r| format!("{} {} {} {}", &r[2], &r[3], &r[4], &r[5]))
        .collect();
    ours.sort();
    // The same definition without hrloop: an imported application (requisition, candidate) of
    // the period is selected when any of its decisions advanced or hired it, not selected when
    // it was only rejected, and not counted when withdrawn; the attribute is the last recorded.
    let theirs = python(&format!(
        r#"
import polars as pl, deltalake, datetime as dt
store = {store:?}
d = pl.read_delta(store + "/lake/decisions").filter(
    (pl.col("source") == "ats_import")
    & (pl.col("decided_at") >= dt.datetime(2024, 11, 1, tzinfo=dt.timezone.utc))
    & (pl.col("decided_at") < dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc)))
apps = d.group_by("requisition_id", "candidate_id").agg(
    sel=pl.col("decision").is_in(["advanced", "hired"]).any(),
    rej=(pl.col("decision") == "rejected").any()).filter(pl.col("sel") | pl.col("rej"))
attrs = {{}}
for row in deltalake.DeltaTable(store + "/lake/protected_attributes").to_pyarrow_table().to_pylist():
    attrs.setdefault(row["candidate_id"], {{}}).update(dict(row["attributes"]))
lines = []
for attr in ["gender", "age_band"]:
    groups = {{}}
    unknown = 0
    for cand, sel in zip(apps["candidate_id"], apps["sel"]):
        g = attrs.get(cand, {{}}).get(attr)
        if g is None:
            unknown += 1
            continue
        n, y = groups.get(g, (0, 0))
        groups[g] = (n + 1, y + int(sel))
    for g, (n, y) in groups.items():
        lines.append(f"{{attr}} {{g}} {{n}} {{y}}")
    lines.append(f"{{attr}} unknown {{unknown}} ")
print("\n".join(sorted(lines)))
"#,
        store = store.display().to_string()
    ));
    let theirs: Vec<String> = theirs.lines().map(|l| l.trim_end().to_string()).collect();
    let ours: Vec<String> = ours.iter().map(|l| l.trim_end().to_string()).collect();
    assert!(ours.len() >= 5, "{ours:?}");
    assert_eq!(ours, theirs, "hrloop's counts against polars'");

    let page = crate::browser::render(&reports.join("bias-audit_2024-11-01_2025-04-30.html"), 1100, 1600);
    assert!(page.requests.is_empty(), "{:?}", page.requests);
    assert!(page.text.contains("imported ATS history") && page.text.contains("2024-11-01 to 2025-04-30"));
    assert!(!page.charts.is_empty() && page.charts.iter().all(|(_, marks)| *marks > 500), "{:?}", page.charts);
}
