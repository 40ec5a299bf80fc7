//! `hrloop simulate`: a simulated company's exports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use hrloop_sim::SimConfig;

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Writes ats_applications.csv, ats_hires.jsonl, hris_outcomes.csv and\n\
    protected_attributes.csv as an ATS and an HRIS would export them: with names, e-mails and\n\
    personnummer, mixed date formats and ~1.5 % broken rows, so ingestion is tested for real.\n\
    manifest.json says how many rows of each file are broken or repeated; truth/ holds the\n\
    hidden ground truth (no personal data).")]
pub struct Args {
    /// Months of history to simulate.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// Random seed: the same seed gives the same company.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Folder to write the exports to.
    #[arg(long, default_value = "data/inbox/sim", value_name = "DIR")]
    pub out: PathBuf,
    /// Open positions per month (before seasonal dips).
    #[arg(long, default_value_t = 30)]
    pub requisitions_per_month: u32,
    /// First day of the simulated history.
    #[arg(long, default_value = "2024-11-01", value_name = "YYYY-MM-DD")]
    pub start: String,
    /// Share of rows broken on purpose.
    #[arg(long, default_value_t = 0.015)]
    pub bad_row_rate: f64,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn config(&self) -> Result<SimConfig> {
        let start =
            NaiveDate::parse_from_str(&self.start, "%Y-%m-%d").with_context(|| format!("--start {:?}", self.start))?;
        anyhow::ensure!((0.0..=0.5).contains(&self.bad_row_rate), "--bad-row-rate must be between 0 and 0.5");
        anyhow::ensure!((1..=120).contains(&self.months), "--months must be between 1 and 120");
        Ok(SimConfig {
            months: self.months,
            seed: self.seed,
            start,
            requisitions_per_month: self.requisitions_per_month.max(1),
            bad_row_rate: self.bad_row_rate,
            ..SimConfig::default()
        })
    }
}

pub fn run(_global: &Global, args: Args) -> Result<ExitCode> {
    let config = args.config()?;
    let manifest =
        hrloop_sim::run(&config, &args.out).with_context(|| format!("writing exports to {}", args.out.display()))?;
    if args.json {
        print_json(&manifest)?;
    } else {
        println!(
            "Simulated {} months from {} (seed {}), {} requisitions:",
            manifest.months, manifest.start, manifest.seed, manifest.requisitions
        );
        for (file, m) in &manifest.files {
            println!(
                "  {:<28} {:>7} rows ({} broken, {} repeated)",
                args.out.join(file).display(),
                m.rows,
                m.bad_rows,
                m.duplicates
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
