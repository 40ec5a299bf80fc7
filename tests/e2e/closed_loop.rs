//! The whole loop, 24 simulated months: the loop's champions hire better than the initial
//! model would have on the same applicants, a better challenger is promoted, the bad vendor
//! challenger is withdrawn before it can become champion, and the chart marks both. Its store
//! is then audited for bias, and the audit is read in a browser.

use crate::{hrloop, json, run_ok};

#[test]
fn twenty_four_months_of_the_loop_beat_the_static_model_and_stop_the_bad_challenger() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("loop");
    let started = std::time::Instant::now();
    let s = json(&run_ok(
        hrloop(&dir.path().join("unused"))
            .args(["simulate", "--months", "24", "--seed", "7", "--loop", "--json", "--out"])
            .arg(&out),
    ));
    eprintln!("closed loop: {:.0} s", started.elapsed().as_secs_f64());

    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 24);
    let (ql, qs) = (s["quality_loop_13_24"].as_f64().unwrap(), s["quality_static_13_24"].as_f64().unwrap());
    assert!(ql > qs + 0.03, "the loop's hires in months 13-24 ({ql:.3}) beat the static model's ({qs:.3})");
    assert_eq!(s["loop_beats_static"], true);

    let events = s["events"].as_array().unwrap();
    let promotions: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["change"] == "promote" && e["actor"].as_str().unwrap().starts_with("scheduler"))
        .collect();
    assert!(!promotions.is_empty(), "a retrained challenger was promoted by a verdict: {events:#?}");
    for p in &promotions {
        let reason = p["reason"].as_str().unwrap();
        assert!(reason.contains("override the challenger less often"), "readable reason: {reason}");
    }
    let withdrawn: Vec<&serde_json::Value> =
        events.iter().filter(|e| matches!(e["change"].as_str(), Some("retire" | "rollback"))).collect();
    assert!(!withdrawn.is_empty(), "at least one rollback");

    let bad = &s["bad_challenger"];
    assert_eq!(bad["became_champion"], false, "{bad}");
    let days = bad["days_live"].as_i64().expect("the bad challenger was withdrawn");
    assert!(days <= 49, "withdrawn within one analysis window (max_days 49): {days} days");
    assert!(bad["reason"].as_str().unwrap().starts_with("experiment verdict rollback"), "{bad}");

    // Feedback completeness per milestone, month by month.
    let last = rows.last().unwrap();
    for m in ["3m", "6m", "12m"] {
        assert!(last["feedback_completeness"][m].as_f64().is_some(), "{m} completeness reported: {last}");
    }
    // The outputs: a month-by-month table, the summary, and a chart marking both changes.
    let csv = std::fs::read_to_string(out.join("kpis.csv")).unwrap();
    assert_eq!(csv.lines().count(), 25);
    assert!(out.join("summary.json").exists());
    let svg = std::fs::read_to_string(out.join("loop.svg")).unwrap();
    let lower = svg.to_lowercase();
    assert!(
        svg.starts_with("<svg") && lower.contains("#2ca02c") && lower.contains("#d62728"),
        "promotion and rollback marked"
    );
    assert!(svg.contains("override the challenger more often"), "the rollback's reason is in the chart");
    // The run's own pipelines all ran, none failed for good.
    for (name, runs) in s["pipeline_runs"].as_object().unwrap() {
        assert!(runs.get("succeeded").and_then(|v| v.as_u64()).unwrap_or(0) > 0, "{name}: {runs}");
        assert_eq!(runs.get("failed").and_then(|v| v.as_u64()).unwrap_or(0), 0, "{name}: {runs}");
    }

    bias_audit_of_the_loop_reads_in_a_browser(&out.join("store"), dir.path());
}

/// `hrloop report bias-audit` over the loop's decisions (served rankings with the recruiters'
/// feedback; the imported history is audited in the demo's test): the files are written, the HTML shows the
/// period, the models and a chart per table with drawn marks, and fetches nothing.
fn bias_audit_of_the_loop_reads_in_a_browser(store: &std::path::Path, dir: &std::path::Path) {
    let reports = dir.join("reports");
    let started = std::time::Instant::now();
    let out = run_ok(
        hrloop(store)
            .args(["--demo-key", "report", "bias-audit", "--from", "2020-01-01", "--to", "2030-12-31", "--out"])
            .arg(&reports),
    );
    eprintln!("bias audit of the loop's store: {:.1} s", started.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Bias audit of decisions from 2020-01-01 to 2030-12-31"), "{stdout}");
    let stem = reports.join("bias-audit_2020-01-01_2030-12-31");
    let audit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    let tools = audit["tools"].as_array().unwrap();
    let served = tools.iter().find(|t| t["tool"] == "success6m_logistic").unwrap_or_else(|| panic!("{tools:#?}"));
    for table in ["selection", "scoring", "model_top_k"] {
        let dims = served[table]["dimensions"].as_array().unwrap_or_else(|| panic!("{table}: {served}"));
        let names: Vec<&str> = dims.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["age_band", "gender", "age_band × gender"], "{table}");
        // Each dimension's groups and unknowns add up to the table's applications.
        let apps = served[table]["applications"].as_u64().unwrap();
        for d in dims {
            let counted: u64 = d["groups"].as_array().unwrap().iter().map(|g| g["count"].as_u64().unwrap()).sum();
            assert_eq!(counted + d["unknown"].as_u64().unwrap(), apps, "{table} {}", d["name"]);
        }
    }
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with("tool,measure,dimension,group,applications,positive,rate"), "{csv}");

    let page = crate::browser::render(&stem.with_extension("html"), 1100, 2400);
    assert!(page.requests.is_empty(), "the report fetched {:?}", page.requests);
    // One chart per dimension (age_band, gender, their intersection) of selection, scoring,
    // and the model's top k beside the recruiters' selection.
    assert_eq!(page.charts.len(), 3 * 3, "{:?}", page.charts);
    for (title, marks) in &page.charts {
        assert!(title.trim().starts_with("Impact ratio "), "{title}");
        assert!(*marks > 500, "chart {title:?} drew {marks} coloured pixels");
    }
    let version = served["versions"][0].as_str().unwrap();
    for text in ["Bias audit", "2020-01-01 to 2030-12-31", version, "To be completed by a person"] {
        assert!(page.text.contains(text), "{text:?} not on the page");
    }
    assert!(page.screenshot.exists());
}
