//! The whole loop, 24 simulated months: the loop's champions hire better than the initial
//! model would have on the same applicants, a better challenger is promoted, the bad vendor
//! challenger is withdrawn before it can become champion, and the chart marks both.

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
    assert!(
        svg.starts_with("<svg") && svg.contains("#2ca02c") && svg.contains("#d62728"),
        "promotion and rollback marked"
    );
    assert!(svg.contains("override the challenger more often"), "the rollback's reason is in the chart");
    // The run's own pipelines all ran, none failed for good.
    for (name, runs) in s["pipeline_runs"].as_object().unwrap() {
        assert!(runs.get("succeeded").and_then(|v| v.as_u64()).unwrap_or(0) > 0, "{name}: {runs}");
        assert_eq!(runs.get("failed").and_then(|v| v.as_u64()).unwrap_or(0), 0, "{name}: {runs}");
    }
}
