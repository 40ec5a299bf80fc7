//! An erasure interrupted after its tombstone was written (before any file was rewritten)
//! already keeps the person out of training and out of re-ingestion; running it again finishes.

use std::path::Path;
use std::sync::Arc;

use hrloop_core::ManualClock;
use hrloop_ingest::{IngestOptions, Pseudonymiser, ResolvedMapping, Taxonomy, ingest_file};
use hrloop_lake::{Lake, Tombstone};
use hrloop_models::data::LakeData;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_alone_keeps_the_person_out_and_a_rerun_finishes_the_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("sim");
    let cfg = hrloop_sim::SimConfig { months: 8, requisitions_per_month: 6, ..Default::default() };
    hrloop_sim::run(&cfg, &exports).unwrap();
    let lake = Lake::open(dir.path().join("store").to_str().unwrap()).unwrap();
    let pseudo = Pseudonymiser::new(&[7u8; 32]).unwrap();
    let taxonomy = Taxonomy::load(&repo().join("data/taxonomy")).unwrap();
    let opts =
        IngestOptions { clock: Arc::new(ManualClock::new("2025-09-01T00:00:00Z".parse().unwrap())), progress: false };
    let ingest_all = async || {
        let mut erased = 0;
        for (file, mapping) in [("ats_applications.csv", "ats_applications"), ("ats_hires.jsonl", "ats_hires")] {
            let m = ResolvedMapping::load(&repo().join(format!("data/mappings/{mapping}.toml")), &taxonomy).unwrap();
            erased += ingest_file(&lake, &exports.join(file), &m, &pseudo, &taxonomy, &opts).await.unwrap().rows_erased;
        }
        erased
    };
    assert_eq!(ingest_all().await, 0);
    let hire: serde_json::Value = std::fs::read_to_string(exports.join("ats_hires.jsonl"))
        .unwrap()
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|h| h["employee_number"].is_string()))
        .unwrap();
    let person = hire["candidate_id"].as_str().unwrap();
    let set = hrloop_privacy::erase::person_pseudonyms(&lake, &pseudo, person).await.unwrap();
    let candidate = pseudo.pseudonym("candidate", person);
    let employee = pseudo.pseudonym("employee", hire["employee_number"].as_str().unwrap());
    assert!(set.contains(&candidate) && set.contains(&employee), "linked through the hire");

    let before = LakeData::load(&lake).await.unwrap();
    assert!(before.applicants.iter().any(|a| a.candidate == candidate));
    assert!(before.hires.iter().any(|h| h.employee == employee));

    // The "crash": the tombstone is durable, no file was rewritten yet.
    lake.add_tombstone(&Tombstone {
        id: "interrupted".into(),
        at: "2025-09-02T00:00:00Z".parse().unwrap(),
        actor: "dpo".into(),
        reason: "test".into(),
        pseudonyms: set.iter().cloned().collect(),
    })
    .await
    .unwrap();
    assert!(
        !hrloop_privacy::verify(&lake, &pseudo, person, "test", "2025-09-02T12:00:00Z".parse().unwrap())
            .await
            .unwrap()
            .absent,
        "rows are still in the files"
    );
    let data = LakeData::load(&lake).await.unwrap();
    assert!(!data.applicants.iter().any(|a| a.candidate == candidate), "training never sees them");
    assert!(!data.hires.iter().any(|h| h.employee == employee || h.candidate == candidate));
    assert!(ingest_all().await > 0, "re-ingestion drops their rows");

    let req = hrloop_privacy::ErasureRequest {
        external_id: person.into(),
        reason: "test, again".into(),
        actor: "dpo".into(),
        at: "2025-09-03T00:00:00Z".parse().unwrap(),
    };
    let report = hrloop_privacy::erase(&lake, &pseudo, &req).await.unwrap();
    assert!(report.rows_removed >= 2, "{report:?}");
    assert!(report.verification.absent);
}
