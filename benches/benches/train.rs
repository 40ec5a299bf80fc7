//! Training benchmark: hrloop's logistic regression (linfa) and tree ensemble (smartcore CART,
//! bagged) against scikit-learn on the same data, in the same run: fit time and holdout AUC.
//!
//! Data: applicants drawn by the simulator's generator and labelled by its ground truth
//! (`hrloop_sim::success_logit` plus noise), 8 real features + 22 derived and noise features
//! = 30. Single-threaded on both sides (scikit-learn `n_jobs=1`).
//!
//! Run: `cargo bench -p hrloop-benches --bench train` (needs python3 with scikit-learn).
//! `HRLOOP_BENCH_ROWS` (default 1000000) and `HRLOOP_BENCH_TREE_ROWS` (default 100000: the
//! tree ensembles are timed on a subsample, see the output) set the sizes.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use hrloop_models::metrics::roc_auc;
use hrloop_models::model::Estimator;
use hrloop_models::spec::Algorithm;

const FEATURES: usize = 30;

fn dataset(rows: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::with_capacity(rows);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let competence = next();
        let f = hrloop_sim::Features {
            years_experience: (-6.0 * (1.0 - next()).ln()).min(45.0),
            skill_match: 0.5 * competence + 0.5 * next(),
            assessment_score: (40.0 + 50.0 * competence + 16.0 * (next() - 0.5)).clamp(0.0, 100.0),
            interview_score: Some((1.0 + 4.0 * (0.5 * competence + 0.5 * next())).clamp(1.0, 5.0)),
            education_level: (next() * 5.0) as u8,
            career_changer: next() < 0.12,
            foreign_experience: next() < 0.2,
            soft_skill_score: next(),
        };
        let logit = hrloop_sim::success_logit(&f, competence, false) + 1.2 * (next() - 0.5);
        let mut row = vec![
            f.years_experience,
            f.skill_match,
            f.assessment_score,
            f.interview_score.unwrap_or(3.0),
            f64::from(f.education_level),
            f64::from(u8::from(f.career_changer)),
            f64::from(u8::from(f.foreign_experience)),
            f.soft_skill_score,
        ];
        while row.len() < FEATURES {
            // Derived (products) and pure noise features, as real feature stores carry.
            let i = row.len();
            row.push(if i % 2 == 0 { row[i % 8] * row[(i + 3) % 8] } else { next() });
        }
        x.push(row);
        y.push(logit > 0.0);
    }
    (x, y)
}

fn standardise(train: &mut [Vec<f64>], other: &mut [Vec<f64>]) {
    for c in 0..FEATURES {
        let n = train.len() as f64;
        let mean = train.iter().map(|r| r[c]).sum::<f64>() / n;
        let sd = (train.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-12);
        for r in train.iter_mut().chain(other.iter_mut()) {
            r[c] = (r[c] - mean) / sd;
        }
    }
}

fn write_csv(path: &std::path::Path, x: &[Vec<f64>], y: &[bool]) -> Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "label,{}", (0..FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>().join(","))?;
    for (r, l) in x.iter().zip(y) {
        write!(w, "{}", u8::from(*l))?;
        for v in r {
            write!(w, ",{v}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let rows: usize = std::env::var("HRLOOP_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let tree_rows: usize = std::env::var("HRLOOP_BENCH_TREE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let (trees, depth, leaf) = (100u16, 6u16, 5usize);
    let (mut x, y) = dataset(rows, 7);
    let (mut xh, yh) = dataset(rows / 5, 8);
    let dir = tempfile::tempdir()?;
    println!("training benchmark: {rows} rows x {FEATURES} features (holdout {}), single-threaded", rows / 5);
    println!("{:<48} {:>9} {:>10} {:>8}", "contender", "rows", "fit s", "AUC");

    // Raw features for scikit-learn (it standardises inside its pipeline for LR).
    write_csv(&dir.path().join("train.csv"), &x, &y)?;
    write_csv(&dir.path().join("hold.csv"), &xh, &yh)?;
    write_csv(&dir.path().join("train_trees.csv"), &x[..tree_rows.min(rows)], &y[..tree_rows.min(rows)])?;

    standardise(&mut x, &mut xh);
    let t = Instant::now();
    let iterations: u64 = std::env::var("HRLOOP_BENCH_LR_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let lr = Estimator::fit(&Algorithm::LogisticRegression { l2: 1.0, max_iterations: iterations }, &x, &y)?;
    let lr_s = t.elapsed().as_secs_f64();
    let lr_auc = roc_auc(&yh, &lr.predict(&xh)?).context("two classes")?;
    println!("{:<48} {:>9} {:>10.2} {:>8.4}", "hrloop logistic regression (linfa)", rows, lr_s, lr_auc);

    let n = tree_rows.min(rows);
    let t = Instant::now();
    let rf = Estimator::fit(
        &Algorithm::RandomForest { trees, max_depth: depth, min_samples_leaf: leaf, seed: 7 },
        &x[..n],
        &y[..n],
    )?;
    let rf_s = t.elapsed().as_secs_f64();
    let rf_auc = roc_auc(&yh, &rf.predict(&xh)?).context("two classes")?;
    println!(
        "{:<48} {:>9} {:>10.2} {:>8.4}",
        format!("hrloop bagged trees (smartcore, {trees} trees)"),
        n,
        rf_s,
        rf_auc
    );

    let run = |train: &str, which: &str| -> Result<serde_json::Value> {
        // One thread for BLAS too, so both sides are measured single-threaded.
        let out = Command::new("python3")
            .envs([("OMP_NUM_THREADS", "1"), ("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1")])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/train_sklearn.py"))
            .arg(dir.path().join(train))
            .arg(dir.path().join("hold.csv"))
            .args([trees.to_string(), depth.to_string(), leaf.to_string(), which.to_string()])
            .output()?;
        anyhow::ensure!(out.status.success(), "scikit-learn failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let full = run("train.csv", "lr,hgb")?;
    let sub = run("train_trees.csv", "rf")?;
    let sk = |v: &serde_json::Value, k: &str| {
        (v[k]["seconds"].as_f64().unwrap_or(f64::NAN), v[k]["auc"].as_f64().unwrap_or(f64::NAN))
    };
    let (sk_lr_s, sk_lr_auc) = sk(&full, "logistic_regression");
    let (sk_rf_s, sk_rf_auc) = sk(&sub, "random_forest");
    let (sk_hgb_s, sk_hgb_auc) = sk(&full, "hist_gradient_boosting");
    println!("{:<48} {:>9} {:>10.2} {:>8.4}", "scikit-learn LogisticRegression (lbfgs)", rows, sk_lr_s, sk_lr_auc);
    println!(
        "{:<48} {:>9} {:>10.2} {:>8.4}",
        format!("scikit-learn RandomForestClassifier ({trees} trees)"),
        n,
        sk_rf_s,
        sk_rf_auc
    );
    println!(
        "{:<48} {:>9} {:>10.2} {:>8.4}",
        "scikit-learn HistGradientBoostingClassifier", rows, sk_hgb_s, sk_hgb_auc
    );
    println!();
    let verdict = |ratio: f64, d_auc: f64| {
        if ratio <= 2.0 && d_auc.abs() <= 0.01 { "MET" } else { "NOT MET" }
    };
    println!(
        "logistic regression: time {:.2}x scikit-learn, AUC {:+.4} (targets <= 2x, within 0.01): {}",
        lr_s / sk_lr_s,
        lr_auc - sk_lr_auc,
        verdict(lr_s / sk_lr_s, lr_auc - sk_lr_auc)
    );
    println!(
        "tree ensemble: time {:.2}x scikit-learn, AUC {:+.4} at {n} rows: {}",
        rf_s / sk_rf_s,
        rf_auc - sk_rf_auc,
        verdict(rf_s / sk_rf_s, rf_auc - sk_rf_auc)
    );
    Ok(())
}
