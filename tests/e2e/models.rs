//! Training and the registry through the CLI, on a simulated company.

use crate::{hrloop, json, run_ok};

#[test]
fn train_promote_rollback_with_reasons_and_refuse_protected_features() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let now = ["--now", "2026-11-05T12:00:00Z"];
    run_ok(hrloop(&store).args(now).args(["demo", "--requisitions-per-month", "20", "--json"]));

    let card =
        json(&run_ok(hrloop(&store).args(now).args(["train", "--model", "models/success6m_logistic.toml", "--json"])));
    assert_eq!(card["version"], "v1");
    assert_eq!(card["format_version"], 1);
    for metric in ["roc_auc", "ndcg_at_k", "precision_at_k", "brier", "expected_calibration_error"] {
        assert!(card["metrics"][metric].is_number(), "card lacks {metric}: {}", card["metrics"]);
    }
    let auc = card["metrics"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.6, "6-month model should find the simulator's signal: AUC {auc}");
    assert!(card["rows"]["excluded_not_due"].as_u64().unwrap() > 0, "recent hires are excluded, not failures");
    assert!(!card["training_data"]["files"].as_array().unwrap().is_empty());
    assert_eq!(card["training_data"]["content_sha256"].as_str().unwrap().len(), 64);
    let genders = card["fairness"].as_array().unwrap().iter().find(|f| f["attribute"] == "gender").unwrap();
    assert!(genders["groups"].as_array().unwrap().len() >= 2);
    assert!(
        card["fairness"].as_array().unwrap().iter().any(|f| f["attribute"] == "gender x age_band"),
        "intersections"
    );

    // Re-weighting through a pipeline's train step: the card says how, and the gender × outcome
    // cells of the weighted training rows are independent.
    let dir_p = dir.path().join("pipelines");
    std::fs::create_dir_all(&dir_p).unwrap();
    std::fs::write(
        dir_p.join("reweigh.toml"),
        "format_version = 1\nname = \"reweigh\"\n[trigger]\ncron = \"0 4 1 * *\"\n[[step]]\nkind = \"train\"\n\
         model = \"models/success6m_logistic.toml\"\n\
         weighting = { recency_half_life_days = 365, reweigh = \"gender\" }\n",
    )
    .unwrap();
    let run = json(&run_ok(
        hrloop(&store).args(now).args(["pipelines", "run", "reweigh", "--json"]).arg("--pipelines").arg(&dir_p),
    ));
    assert_eq!(run["status"], "succeeded", "{run}");
    let summary = run["steps"][0]["summary"].as_str().unwrap();
    assert!(summary.contains("re-weighted: worth"), "{summary}");
    let version = run["steps"][0]["outputs"]["version"].as_str().unwrap();
    let weighted =
        json(&run_ok(hrloop(&store).args(["models", "show", &format!("success6m_logistic/{version}"), "--json"])));
    let w = &weighted["weighting"];
    assert_eq!(w["spec"]["reweigh"], "gender", "{w}");
    let cells = w["cells"].as_object().unwrap();
    assert!(cells.len() >= 4 && cells.keys().any(|k| k.ends_with("/ no success")), "{cells:?}");
    assert!(w["effective_rows"].as_f64().unwrap() < weighted["rows"]["train"].as_f64().unwrap(), "{w}");
    assert!(weighted["metrics"]["roc_auc"].as_f64().unwrap() > 0.55, "still a model: {}", weighted["metrics"]);

    let forest =
        json(&run_ok(hrloop(&store).args(now).args(["train", "--model", "models/success12m_forest.toml", "--json"])));
    assert_eq!(forest["name"], "success12m_forest");

    // Second version of the 6-month model, then promote, promote, roll back.
    run_ok(hrloop(&store).args([
        "--now",
        "2026-11-06T12:00:00Z",
        "train",
        "--model",
        "models/success6m_logistic.toml",
    ]));
    let name = "success6m_logistic";
    for (at, args) in [
        ("2026-11-06T13:00:00Z", vec!["promote", name, "v1", "--reason", "first champion", "--force"]),
        ("2026-11-07T13:00:00Z", vec!["promote", name, "v2", "--reason", "fresher data", "--force"]),
        ("2026-11-08T13:00:00Z", vec!["rollback", name, "--reason", "override rate doubled"]),
    ] {
        run_ok(hrloop(&store).args(["--now", at, "models"]).args(args).args(["--actor", "oncall"]));
    }
    let history = json(&run_ok(hrloop(&store).args(["models", "history", name, "--json"])));
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["action"], "rollback");
    assert_eq!(events[2]["reason"], "override rate doubled");
    assert_eq!(events[1]["reason"], "fresher data");
    assert_eq!(history["state"]["champion"], "v1");
    let then =
        json(&run_ok(hrloop(&store).args(["models", "history", name, "--at", "2026-11-07T20:00:00Z", "--json"])));
    assert_eq!(then["state"]["champion"], "v2", "what was champion then");

    // Calibration: a numbered record beside the champion, fitted on fresh outcomes.
    let cal = json(&run_ok(hrloop(&store).args(now).args(["calibrate", name, "--json"])));
    assert_eq!(cal["seq"], 1);
    assert!(cal["rows"].as_u64().unwrap() >= 30);
    assert!(cal["ece_after"].as_f64().unwrap() <= cal["ece_before"].as_f64().unwrap() + 1e-9, "{cal}");

    // Validity: which inputs predict later performance, with intervals.
    let validity = json(&run_ok(hrloop(&store).args(now).args(["validity", "--json"])));
    let row = validity["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["feature"] == "interview_score" && r["milestone"] == "6m" && r["outcome"] == "rating")
        .unwrap();
    assert!(row["n"].as_u64().unwrap() >= 10, "{row}");
    let (rho, lo, hi) =
        (row["spearman"].as_f64().unwrap(), row["ci_low"].as_f64().unwrap(), row["ci_high"].as_f64().unwrap());
    assert!(lo < rho && rho < hi && rho > 0.0, "interview scores predict ratings in the simulator: {row}");

    // Family search for the served model: each family trained as a version of it, the best that
    // passes its gates becomes its challenger, the card says which family won.
    // (Gates relaxed for this small company: the point is who competes, not the numbers.)
    let text = std::fs::read_to_string(crate::repo().join("models/success6m_logistic.toml"))
        .unwrap()
        .replace("max_expected_calibration_error = 0.15", "max_expected_calibration_error = 0.5")
        .replace("min_training_rows = 100", "min_training_rows = 30")
        .replace("min_auc = 0.6", "min_auc = 0.55");
    let logistic = dir.path().join("success6m_logistic.toml");
    std::fs::write(&logistic, &text).unwrap();
    let forest = dir.path().join("success6m_forest.toml");
    let algo_at = text.find("[algorithm]").unwrap();
    let eval_at = text.find("[evaluation]").unwrap();
    let forest_text = format!(
        "{}[algorithm]\nkind = \"random_forest\"\ntrees = 30\nmax_depth = 5\nseed = 3\n\n{}",
        &text[..algo_at].replace("success6m_logistic", "success6m_forest"),
        &text[eval_at..]
    );
    std::fs::write(&forest, forest_text).unwrap();
    std::fs::write(
        dir_p.join("search.toml"),
        format!(
            "format_version = 1\nname = \"search\"\n[trigger]\ncron = \"0 5 1 1 *\"\n[[step]]\nkind = \"family_search\"\n\
             models = [{:?}, {:?}]\nserve_as = \"success6m_logistic\"\n",
            logistic.to_str().unwrap(),
            forest.to_str().unwrap()
        ),
    )
    .unwrap();
    let before = json(&run_ok(hrloop(&store).args(["models", "history", name, "--json"])))["state"].clone();
    let run = json(&run_ok(
        hrloop(&store).args(now).args(["pipelines", "run", "search", "--json"]).arg("--pipelines").arg(&dir_p),
    ));
    assert_eq!(run["status"], "succeeded", "{run}");
    let summary = run["steps"][0]["summary"].as_str().unwrap();
    assert!(summary.contains("logistic regression") && summary.contains("random forest"), "{summary}");
    let after = json(&run_ok(hrloop(&store).args(["models", "history", name, "--json"])))["state"].clone();
    assert_eq!(after["champion"], before["champion"], "the champion stays until an experiment says otherwise");
    let Some(challenger) = after["challenger"].as_str() else {
        panic!("the winner is the served model's challenger: {summary}; {after}")
    };
    let card = json(&run_ok(hrloop(&store).args(["models", "show", &format!("{name}/{challenger}"), "--json"])));
    assert!(summary.contains(&format!("{name}/{challenger}")), "{summary}");
    assert!(card["gates"]["passed"].as_bool().unwrap(), "{}", card["gates"]);
    // Models of different labels are not compared.
    std::fs::write(
        dir_p.join("mixed.toml"),
        "format_version = 1\nname = \"mixed\"\n[trigger]\ncron = \"0 5 1 1 *\"\n[[step]]\nkind = \"family_search\"\n\
         models = [\"models/success6m_logistic.toml\", \"models/success12m_logistic.toml\"]\n",
    )
    .unwrap();
    let out =
        hrloop(&store).args(now).args(["pipelines", "run", "mixed"]).arg("--pipelines").arg(&dir_p).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("family search compares models of one label"), "{text}");

    // A spec with a protected attribute as a feature is refused.
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(crate::repo().join("models/success6m_logistic.toml"))
        .unwrap()
        .replace("\"soft_skill_score\",", "\"soft_skill_score\", \"gender\",");
    std::fs::write(&bad, text).unwrap();
    let out = hrloop(&store).args(["train", "--model", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protected attribute") && err.contains("gender"), "{err}");
}

/// A card names the Delta version of every table it read; `train --as-of NAME/vN` rebuilds
/// that exact training set after the lake has moved on, and a plain retrain does not.
#[test]
fn train_as_of_a_version_rebuilds_byte_identical_features_after_the_lake_moved_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let now = ["--now", "2026-11-05T12:00:00Z"];
    run_ok(hrloop(&store).args(now).args(["demo", "--requisitions-per-month", "10", "--json"]));
    let train = |extra: &[&str]| {
        json(&run_ok(
            hrloop(&store).args(now).args(["train", "--model", "models/success6m_logistic.toml", "--json"]).args(extra),
        ))
    };
    let v1 = train(&[]);
    let versions = v1["training_data"]["table_versions"].clone();
    for t in ["decisions", "hires", "outcomes"] {
        assert!(versions[t].is_u64(), "the card names {t}'s version: {versions}");
    }
    assert_eq!(v1["training_data"]["features_sha256"].as_str().unwrap().len(), 64);

    // The lake moves on: another company's exports (new people, new event keys).
    let more = dir.path().join("more");
    run_ok(hrloop(&store).args([
        "simulate",
        "--seed",
        "8",
        "--months",
        "18",
        "--requisitions-per-month",
        "6",
        "--out",
        more.to_str().unwrap(),
    ]));
    for (file, mapping) in [
        ("ats_applications.csv", "ats_applications"),
        ("ats_hires.jsonl", "ats_hires"),
        ("hris_outcomes.csv", "hris_outcomes"),
    ] {
        run_ok(hrloop(&store).args(now).args([
            "--demo-key",
            "ingest",
            more.join(file).to_str().unwrap(),
            "--mapping",
            &format!("data/mappings/{mapping}.toml"),
            "--json",
        ]));
    }

    let again = json(&run_ok(hrloop(&store).args(["train", "--as-of", "success6m_logistic/v1", "--json"])));
    assert_eq!(again["training_data"]["table_versions"], versions);
    assert_eq!(
        again["training_data"]["features_sha256"], v1["training_data"]["features_sha256"],
        "byte-identical features"
    );
    assert_eq!(again["training_data"]["content_sha256"], v1["training_data"]["content_sha256"]);
    assert_eq!(again["rows"], v1["rows"]);
    assert_eq!(again["metrics"]["roc_auc"], v1["metrics"]["roc_auc"]);

    // Negative control: the live lake gives a different training set.
    let live = train(&[]);
    assert_ne!(live["training_data"]["table_versions"], versions);
    assert_ne!(live["training_data"]["features_sha256"], v1["training_data"]["features_sha256"]);
    assert!(live["rows"]["train"].as_u64() > v1["rows"]["train"].as_u64());
}
