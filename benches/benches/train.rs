//! Training benchmark: hrloop's logistic regression (weighted and not) and tree ensemble
//! (smartcore CART, bagged) against scikit-learn on the same rows, in the same run: fit time,
//! holdout AUC and peak memory.
//!
//! Data: applicants drawn by the simulator's generator and labelled by its ground truth
//! (`hrloop_sim::success_logit` plus noise), 8 real features + 22 derived and noise features
//! = 30, standardised once and written as binary files that every contender reads. Each fit
//! runs in a process of its own, so peak RSS (from `wait4`) is that fit's with its data; only
//! the fit is timed. Both sides get the same thread count (`HRLOOP_BENCH_THREADS`, default 2:
//! rayon for hrloop, OpenMP/BLAS and `n_jobs` for scikit-learn). The weighted fit uses
//! recency weights (half-life one year over four years of hires), as `[weighting]` computes
//! them.
//!
//! Run: `cargo bench -p hrloop-benches --bench train` (needs python3 with scikit-learn).
//! `HRLOOP_BENCH_ROWS` (default 1000000) and `HRLOOP_BENCH_TREE_ROWS` (default 100000) set the
//! sizes; logistic regression also runs at a tenth of the rows to show how time grows.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use hrloop_benches::{Measured, measure};
use hrloop_models::metrics::roc_auc;
use hrloop_models::model::Estimator;
use hrloop_models::spec::Algorithm;
use hrloop_models::weighting::{WeightingSpec, weights};

const FEATURES: usize = 30;
const TREES: u16 = 100;
const DEPTH: u16 = 6;
const LEAF: usize = 5;

fn dataset(rows: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut x = Vec::with_capacity(rows * FEATURES);
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
        x.extend(row);
        y.push(logit > 0.0);
    }
    (x, y)
}

/// Standardise every column by the training rows' mean and standard deviation.
fn standardise(train: &mut [f64], other: &mut [f64]) {
    let n = (train.len() / FEATURES) as f64;
    for c in 0..FEATURES {
        let mean = train.iter().skip(c).step_by(FEATURES).sum::<f64>() / n;
        let sd =
            (train.iter().skip(c).step_by(FEATURES).map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-12);
        for v in train.iter_mut().skip(c).step_by(FEATURES).chain(other.iter_mut().skip(c).step_by(FEATURES)) {
            *v = (*v - mean) / sd;
        }
    }
}

fn write_f64(path: &Path, values: &[f64]) -> Result<()> {
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(w.flush()?)
}

fn read_f64(path: &Path, count: usize) -> Result<Vec<f64>> {
    let mut r = BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::with_capacity(count);
    let mut b = [0u8; 8];
    for _ in 0..count {
        r.read_exact(&mut b)?;
        out.push(f64::from_le_bytes(b));
    }
    Ok(out)
}

fn read_labels(path: &Path, count: usize) -> Result<Vec<bool>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.iter().take(count).map(|&b| b == 1).collect())
}

/// Child mode: the training and holdout rows, labels and recency weights as binary files in `d`.
fn child_data(d: &Path, rows: usize) -> Result<()> {
    let (mut x, y) = dataset(rows, 7);
    let (mut xh, yh) = dataset(rows / 5, 8);
    standardise(&mut x, &mut xh);
    write_f64(&d.join("train.f64"), &x)?;
    write_f64(&d.join("hold.f64"), &xh)?;
    std::fs::write(d.join("train.u8"), y.iter().map(|&b| u8::from(b)).collect::<Vec<_>>())?;
    std::fs::write(d.join("hold.u8"), yh.iter().map(|&b| u8::from(b)).collect::<Vec<_>>())?;
    // Hires spread over four years in row order, weighted by a one-year recency half-life.
    let first = chrono::NaiveDate::from_ymd_opt(2021, 1, 1).context("date")?;
    let dates: Vec<chrono::NaiveDate> =
        (0..rows).map(|i| first + chrono::Days::new((i * 1460 / rows) as u64)).collect();
    let spec = WeightingSpec { recency_half_life_days: Some(365.0), reweigh: None };
    let (w, report) = weights(&spec, &dates, &y, &vec![None; rows]);
    write_f64(&d.join("weights.f64"), &w)?;
    println!(
        "weighted: recency half-life 365 days over 4 years, weights {:.3}..{:.3}, worth {:.0} equally weighted rows",
        report.min_weight, report.max_weight, report.effective_rows
    );
    Ok(())
}

/// Child mode: one hrloop fit of `what` on the first `rows` training rows; prints seconds and AUC.
fn child(dir: &Path, rows: usize, what: &str) -> Result<()> {
    let x = ndarray::Array2::from_shape_vec((rows, FEATURES), read_f64(&dir.join("train.f64"), rows * FEATURES)?)?;
    let y = read_labels(&dir.join("train.u8"), rows)?;
    let hold_rows = std::fs::metadata(dir.join("hold.u8"))?.len() as usize;
    let xh =
        ndarray::Array2::from_shape_vec((hold_rows, FEATURES), read_f64(&dir.join("hold.f64"), hold_rows * FEATURES)?)?;
    let yh = read_labels(&dir.join("hold.u8"), hold_rows)?;
    let w = (what == "lr_weighted").then(|| read_f64(&dir.join("weights.f64"), rows)).transpose()?;
    let algorithm = match what {
        "lr" | "lr_weighted" => Algorithm::LogisticRegression { l2: 1.0, max_iterations: 300 },
        "rf" => Algorithm::RandomForest { trees: TREES, max_depth: DEPTH, min_samples_leaf: LEAF, seed: 7 },
        other => anyhow::bail!("unknown model {other}"),
    };
    let t = Instant::now();
    let est = Estimator::fit_weighted(&algorithm, x.view(), &y, w.as_deref(), &mut |_, _| {})?;
    let seconds = t.elapsed().as_secs_f64();
    let auc = roc_auc(&yh, &est.predict(xh.view())?).context("two classes")?;
    println!("{}", serde_json::json!({ "seconds": seconds, "auc": auc }));
    Ok(())
}

/// One contender's fit: seconds and AUC it reports, peak RSS and wall time of its process.
struct Run {
    seconds: f64,
    auc: f64,
    measured: Measured,
}

fn run(mut cmd: Command, out: &Path) -> Result<Run> {
    cmd.stdout(Stdio::from(std::fs::File::create(out)?));
    let measured = measure(&mut cmd)?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out)?)?;
    Ok(Run { seconds: v["seconds"].as_f64().context("seconds")?, auc: v["auc"].as_f64().context("auc")?, measured })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-fit") {
        return child(Path::new(&args[i + 1]), args[i + 2].parse()?, &args[i + 3]);
    }
    if let Some(i) = args.iter().position(|a| a == "--child-data") {
        return child_data(Path::new(&args[i + 1]), args[i + 2].parse()?);
    }
    let env = |k: &str, default: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rows = env("HRLOOP_BENCH_ROWS", 1_000_000);
    let tree_rows = env("HRLOOP_BENCH_TREE_ROWS", 100_000).min(rows);
    let threads = env("HRLOOP_BENCH_THREADS", 2);
    let dir = tempfile::tempdir()?;
    let d = dir.path();

    let me = std::env::current_exe()?;
    // The rows are made in a child too: a process forked from a large parent would start its
    // peak RSS at the parent's size.
    let made = Command::new(&me).arg("--child-data").arg(d).arg(rows.to_string()).output()?;
    anyhow::ensure!(made.status.success(), "making the rows: {}", String::from_utf8_lossy(&made.stderr));

    println!(
        "training benchmark: {rows} rows x {FEATURES} features (holdout {}), {threads} threads on both sides, one process per fit",
        rows / 5
    );
    print!("{}", String::from_utf8_lossy(&made.stdout));
    println!("{:<52} {:>9} {:>8} {:>8} {:>13}", "contender", "rows", "fit s", "AUC", "peak RSS MiB");
    let hrloop = |n: usize, what: &str| {
        let mut c = Command::new(&me);
        c.arg("--child-fit").arg(d).arg(n.to_string()).arg(what).env("RAYON_NUM_THREADS", threads.to_string());
        c
    };
    let sklearn = |n: usize, what: &str| {
        let mut c = Command::new("python3");
        c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/train_sklearn.py")).arg(d);
        c.args([n.to_string(), what.to_string(), threads.to_string()]);
        c.args([TREES.to_string(), DEPTH.to_string(), LEAF.to_string()]);
        for k in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] {
            c.env(k, threads.to_string());
        }
        c
    };
    let out = d.join("out.json");
    let show = |name: &str, n: usize, cmd: Command| -> Result<Run> {
        let r = run(cmd, &out).with_context(|| format!("running {name}"))?;
        let mib = r.measured.max_rss as f64 / (1024.0 * 1024.0);
        println!("{name:<52} {n:>9} {:>8.2} {:>8.4} {mib:>13.0}", r.seconds, r.auc);
        Ok(r)
    };
    let small = rows / 10;
    let lr_small = show("hrloop logistic regression", small, hrloop(small, "lr"))?;
    let sk_small = show("scikit-learn LogisticRegression (lbfgs)", small, sklearn(small, "lr"))?;
    let lr = show("hrloop logistic regression", rows, hrloop(rows, "lr"))?;
    let sk = show("scikit-learn LogisticRegression (lbfgs)", rows, sklearn(rows, "lr"))?;
    let lrw = show("hrloop logistic regression, weighted", rows, hrloop(rows, "lr_weighted"))?;
    let skw = show("scikit-learn LogisticRegression, sample_weight", rows, sklearn(rows, "lr_weighted"))?;
    let rf =
        show(&format!("hrloop bagged trees (smartcore, {TREES} trees, 1 core)"), tree_rows, hrloop(tree_rows, "rf"))?;
    let skrf =
        show(&format!("scikit-learn RandomForestClassifier ({TREES} trees)"), tree_rows, sklearn(tree_rows, "rf"))?;
    show("scikit-learn HistGradientBoostingClassifier", rows, sklearn(rows, "hgb"))?;
    println!();

    let verdict = |name: &str, ours: &Run, theirs: &Run, max_ratio: f64, max_auc: f64| {
        let (ratio, d_auc) = (ours.seconds / theirs.seconds, ours.auc - theirs.auc);
        let met = ratio <= max_ratio && d_auc.abs() <= max_auc;
        println!(
            "{name}: time {ratio:.2}x scikit-learn, AUC {d_auc:+.4}, peak memory {:.2}x (targets <= {max_ratio}x, AUC within {max_auc}): {}",
            ours.measured.max_rss as f64 / theirs.measured.max_rss as f64,
            if met { "MET" } else { "NOT MET" }
        );
    };
    verdict("logistic regression", &lr, &sk, 1.5, 0.001);
    verdict("logistic regression, weighted", &lrw, &skw, 1.5, 0.001);
    verdict(&format!("tree ensemble at {tree_rows} rows"), &rf, &skrf, 1.0, 0.005);
    println!(
        "logistic regression time from {small} to {rows} rows: hrloop {:.1}x, scikit-learn {:.1}x",
        lr.seconds / lr_small.seconds,
        sk.seconds / sk_small.seconds
    );
    Ok(())
}
