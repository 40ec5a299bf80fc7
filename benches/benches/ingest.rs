//! Ingest benchmark: 1 M HRIS outcome rows from CSV into the lake, side by side with pyarrow
//! (and polars, if installed) converting the same CSV to Parquet. Each contender runs in its own
//! process; wall time and peak RSS come from `wait4`. A second, 4x smaller file shows whether
//! hrloop's memory grows with the input.
//!
//! Run: `cargo bench -p hrloop-benches --bench ingest` (needs python3 with pyarrow).
//! `HRLOOP_BENCH_ROWS=200000` for a quicker run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use hrloop_benches::{Measured, measure};
use hrloop_ingest::{IngestOptions, Pseudonymiser, ResolvedMapping, Taxonomy, ingest_file};
use hrloop_lake::Lake;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An HRIS export of `rows` outcome rows in the shipped mapping's layout, personal data included.
fn write_export(path: &Path, rows: u64) -> Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all("\u{feff}Employee ID;Full name;E-mail;Personnummer;Hire date;Milestone date;Still employed;Performance rating;Exit reason\n".as_bytes())?;
    let base = chrono::NaiveDate::from_ymd_opt(2022, 1, 1).expect("date");
    let months = [3u32, 6, 12, 24];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let employee = i / 4;
        let m = months[(i % 4) as usize];
        let hire = base + chrono::Duration::days((employee % 1400) as i64);
        let at =
            hire.checked_add_months(chrono::Months::new(m)).expect("date") + chrono::Duration::days((x % 6) as i64);
        let employed = x % 10 != 0;
        let rating = if employed { ((x >> 8) % 5 + 1).to_string() } else { String::new() };
        writeln!(
            w,
            "E{employee:08};Åsa Öberg {employee};asa.oberg{employee}@example.se;19{:02}0101-{:04};{};{};{};{};{}",
            employee % 90,
            employee % 10000,
            hire.format("%d.%m.%Y"),
            at.format("%Y-%m-%d"),
            if employed { "Ja" } else { "Nej" },
            rating,
            if employed { "" } else { "resigned" }
        )?;
    }
    w.flush()?;
    Ok(())
}

/// Child mode: ingest one file into a fresh store and print the report's counts.
fn child(csv: &Path, store: &Path) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let lake = Lake::open(store.to_str().context("utf-8 path")?)?;
        let taxonomy = Taxonomy::load(&repo().join("data/taxonomy"))?;
        let mapping = ResolvedMapping::load(&repo().join("data/mappings/hris_outcomes.toml"), &taxonomy)?;
        let pseudo = Pseudonymiser::new(&[7u8; 32])?;
        let opts = IngestOptions { clock: std::sync::Arc::new(hrloop_core::SystemClock), progress: false };
        let r = ingest_file(&lake, csv, &mapping, &pseudo, &taxonomy, &opts).await?;
        println!("{} {} {}", r.rows_read, r.rows_accepted, r.rows_quarantined);
        anyhow::Ok(())
    })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-ingest") {
        return child(Path::new(&args[i + 1]), Path::new(&args[i + 2]));
    }
    let rows: u64 = std::env::var("HRLOOP_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let me = std::env::current_exe()?;
    let has_polars = Command::new("python3").args(["-c", "import polars"]).output().is_ok_and(|o| o.status.success());
    println!(
        "ingest benchmark: HRIS outcomes CSV -> Parquet (zstd), one process per contender, 2 runs each, best time"
    );
    println!("{:<44} {:>10} {:>10} {:>12} {:>12}", "contender", "rows", "seconds", "rows/s", "peak RSS MiB");
    let mut results: Vec<(String, u64, Measured)> = Vec::new();
    for n in [rows / 4, rows] {
        let csv = dir.path().join(format!("hris_{n}.csv"));
        write_export(&csv, n)?;
        let mut contenders: Vec<(String, Box<dyn Fn(&Path) -> Command>)> = vec![
            (
                "hrloop ingest (validate+pseudonymise+dedup)".into(),
                Box::new(|out: &Path| {
                    let mut c = Command::new(&me);
                    c.arg("--child-ingest").arg(&csv).arg(out).stdout(std::process::Stdio::null());
                    c
                }),
            ),
            (
                "pyarrow read_csv + write_dataset".into(),
                Box::new(|out: &Path| {
                    let mut c = Command::new("python3");
                    c.arg(repo().join("benches/ingest_pyarrow.py")).arg(&csv).arg(out);
                    c
                }),
            ),
        ];
        if has_polars {
            contenders.push((
                "polars read_csv + write_parquet".into(),
                Box::new(|out: &Path| {
                    let mut c = Command::new("python3");
                    c.arg(repo().join("benches/ingest_pyarrow.py")).arg(&csv).arg(out).arg("polars");
                    c
                }),
            ));
        }
        for (name, make) in &contenders {
            let mut best: Option<Measured> = None;
            for run in 0..2 {
                let out = dir.path().join(format!("out-{}-{n}-{run}", results.len()));
                let m = measure(&mut make(&out)).with_context(|| format!("running {name}"))?;
                best = Some(match best {
                    Some(b) if b.wall <= m.wall => Measured { max_rss: b.max_rss.max(m.max_rss), ..b },
                    Some(b) => Measured { max_rss: b.max_rss.max(m.max_rss), ..m },
                    None => m,
                });
                let _ = std::fs::remove_dir_all(&out);
            }
            let m = best.expect("two runs");
            println!(
                "{:<44} {:>10} {:>10.2} {:>12.0} {:>12.1}",
                name,
                n,
                m.wall.as_secs_f64(),
                n as f64 / m.wall.as_secs_f64(),
                mib(m.max_rss)
            );
            results.push((name.clone(), n, m));
        }
        std::fs::remove_file(&csv)?;
    }
    let get = |prefix: &str, n: u64| {
        results.iter().find(|(name, r, _)| name.starts_with(prefix) && *r == n).map(|(_, _, m)| *m)
    };
    if let (Some(h), Some(p)) = (get("hrloop", rows), get("pyarrow", rows)) {
        let ratio = h.wall.as_secs_f64() / p.wall.as_secs_f64();
        println!(
            "\nhrloop / pyarrow time at {rows} rows: {ratio:.2}x (target <= 1.5x): {}",
            if ratio <= 1.5 { "MET" } else { "NOT MET" }
        );
    }
    if let (Some(small), Some(big)) = (get("hrloop", rows / 4), get("hrloop", rows)) {
        println!(
            "hrloop peak RSS: {:.1} MiB at {} rows, {:.1} MiB at {} rows ({:.2}x memory for 4x input)",
            mib(small.max_rss),
            rows / 4,
            mib(big.max_rss),
            rows,
            big.max_rss as f64 / small.max_rss as f64
        );
    }
    Ok(())
}
