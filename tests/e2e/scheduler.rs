//! The scheduler as processes: two `hrloop pipelines tick` at once run each slot once; a run
//! killed after its first step is resumed from the second by the next process.

use std::path::Path;

use crate::{hrloop, json, run_ok};

/// An hourly pipeline with two cheap real steps.
fn pipelines(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("pipelines");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("hourly.toml"),
        "format_version = 1\nname = \"hourly\"\ncatch_up = \"all\"\n[trigger]\ncron = \"0 * * * *\"\n\
         [[step]]\nkind = \"validate\"\n[[step]]\nkind = \"purge\"\npolicy = \"data/retention.toml\"\n",
    )
    .unwrap();
    p
}

#[test]
fn two_processes_ticking_at_once_run_each_slot_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let p = pipelines(dir.path());
    let tick = |now: &str| {
        let mut c = hrloop(&store);
        c.args(["--now", now, "pipelines", "--pipelines"]).arg(&p).args(["tick", "--json"]);
        c
    };
    run_ok(&mut tick("2026-03-01T00:30:00Z"));
    for round in 0..3 {
        let now = format!("2026-03-01T{:02}:30:00Z", 6 * (round + 1));
        let (a, b) = (tick(&now).spawn().unwrap(), tick(&now).spawn().unwrap());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let history =
        json(&run_ok(hrloop(&store).args(["pipelines", "--pipelines"]).arg(&p).args(["history", "hourly", "--json"])));
    let attempts = history.as_array().unwrap();
    let mut slots: Vec<&str> = attempts.iter().map(|a| a["slot"].as_str().unwrap()).collect();
    assert_eq!(slots.len(), 18, "one attempt for each of the 18 hourly slots");
    slots.dedup();
    assert_eq!(slots.len(), 18, "no slot ran twice");
    assert!(attempts.iter().all(|a| a["status"] == "succeeded"));
    let owners: std::collections::BTreeSet<&str> = attempts.iter().map(|a| a["owner"].as_str().unwrap()).collect();
    assert!(owners.len() >= 2, "both processes did work: {owners:?}");
}

#[test]
fn a_run_killed_after_its_first_step_is_resumed_from_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let p = pipelines(dir.path());
    run_ok(hrloop(&store).args(["--now", "2026-03-01T00:30:00Z", "pipelines", "--pipelines"]).arg(&p).arg("tick"));
    let crashed = hrloop(&store)
        .env("HRLOOP_FAULT", "after_step")
        .args(["--now", "2026-03-01T01:05:00Z", "pipelines", "--pipelines"])
        .arg(&p)
        .arg("tick")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the injected crash stops the process");
    let status = |now: &str| {
        json(&run_ok(
            hrloop(&store).args(["--now", now, "pipelines", "--pipelines"]).arg(&p).args(["status", "--json"]),
        ))
    };
    assert_eq!(status("2026-03-01T01:06:00Z")[0]["last_status"], "running");
    // Within the lease nobody touches it; after it, the next tick resumes.
    let early = json(&run_ok(
        hrloop(&store)
            .args(["--now", "2026-03-01T01:20:00Z", "pipelines", "--pipelines"])
            .arg(&p)
            .args(["tick", "--json"]),
    ));
    assert_eq!(early.as_array().unwrap().len(), 0);
    let resumed = json(&run_ok(
        hrloop(&store)
            .args(["--now", "2026-03-01T01:40:00Z", "pipelines", "--pipelines"])
            .arg(&p)
            .args(["tick", "--json"]),
    ));
    let r = &resumed[0];
    assert_eq!(
        (r["attempt"].as_u64(), r["kind"].as_str(), r["status"].as_str()),
        (Some(2), Some("resumed"), Some("succeeded"))
    );
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["finished_at"], steps[0]["started_at"], "step 1 is carried over from the killed attempt");
    assert!(steps[0]["started_at"].as_str().unwrap().starts_with("2026-03-01T01:05"));
    assert!(steps[1]["started_at"].as_str().unwrap().starts_with("2026-03-01T01:40"));
}
