//! `hrloop demo`: simulate a company and ingest its whole history, so a new user sees the lake,
//! the quality reports and milestone tracking in one command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::cmd::{ingest, lake, milestones, simulate};
use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Runs on the local store (./data by default). Pseudonyms are keyed like every\n\
    other command's: --key-file / HRLOOP_KEY_FILE, else HRLOOP_PSEUDONYM_KEY, else a demo key\n\
    created at data/secrets/pseudonym.key. Safe to run twice: the second run ingests nothing new.")]
pub struct Args {
    /// Random seed of the simulated company.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Months of history.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// Open positions per month (90: enough matured 12-month outcomes for a model that passes
    /// its gates; fewer is quicker but the 12-month models then have too little to learn from).
    #[arg(long, default_value_t = 90)]
    pub requisitions_per_month: u32,
    /// Folder with the mappings for the simulated exports.
    #[arg(long, default_value = "data/mappings", value_name = "DIR")]
    pub mappings: PathBuf,
    /// Print a JSON summary instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    exports: PathBuf,
    batches: Vec<hrloop_ingest::BatchReport>,
    refused: Vec<ingest::Refused>,
    tables: Vec<lake::TableStats>,
    milestones: hrloop_core::milestones::MilestoneStatus,
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let json = args.json;
    let summary = ingest_only(global, args).await?;
    let lake = global.lake()?;
    if json {
        print_json(&summary)?;
    } else {
        let mut t = TextTable::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec!["export", "table", "read", "accepted", "quarantined", "already present", "status"]);
        for b in &summary.batches {
            t.add_row(vec![
                b.source_file.clone(),
                b.table.clone(),
                b.rows_read.to_string(),
                b.rows_accepted.to_string(),
                b.rows_quarantined.to_string(),
                b.rows_already_present.to_string(),
                b.status.clone(),
            ]);
        }
        println!("Ingested the simulated exports (names, e-mails and personnummer were dropped at the door):\n{t}\n");
        for b in &summary.batches {
            if let Some(s) = b.quarantine_samples.first() {
                println!("  e.g. {}: {s}", b.source_file);
            }
        }
        println!("\nThe lake ({}):\n{}\n", lake.store().location(), lake::render(&summary.tables));
        println!("{}\n", milestones::render(&summary.milestones));
        println!("Next: `hrloop ingest --help`, `hrloop milestones status`, or read the lake without hrloop:");
        println!(
            "  python3 -c \"import polars as pl; print(pl.read_delta('{}/lake/outcomes'))\"",
            lake.store().location().trim_end_matches('/')
        );
    }
    for r in &summary.refused {
        eprintln!("error: {}", r.reason);
    }
    Ok(if summary.refused.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Simulate the company and ingest its exports; the summary of what landed.
pub async fn ingest_only(global: &Global, args: Args) -> Result<Summary> {
    // The demo may bring its own throwaway key; a configured one still wins (Global::pseudonymiser).
    let mut global_demo = global.clone();
    global_demo.demo_key = true;
    let lake = global_demo.lake()?;
    let root = lake.store().local_root().map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    let exports = root.join("inbox").join(format!("sim-seed{}", args.seed));
    let sim = simulate::Args {
        months: args.months,
        seed: args.seed,
        out: exports.clone(),
        requisitions_per_month: args.requisitions_per_month,
        start: "2024-11-01".into(),
        bad_row_rate: 0.015,
        json: false,
        closed_loop: false,
        bad_challenger_month: 15,
        recruiter_taste: false,
        calibration: simulate::CalibrationArgs::default(),
        overrides: false,
        blend_recruiter: 0.2,
        replications: 5,
    };
    let config = sim.config()?;
    if !args.json {
        eprintln!("Simulating {} months of a company (seed {}) into {} ...", args.months, args.seed, exports.display());
    }
    hrloop_sim::run(&config, &exports).with_context(|| format!("writing exports to {}", exports.display()))?;
    let plan = [
        ("ats_applications.csv", "ats_applications.toml"),
        ("ats_hires.jsonl", "ats_hires.toml"),
        ("protected_attributes.csv", "protected_attributes.toml"),
        ("hris_outcomes.csv", "hris_outcomes.toml"),
    ];
    let mut batches = Vec::new();
    let mut refused = Vec::new();
    for (file, mapping) in plan {
        let out =
            ingest::ingest_all(&global_demo, &[exports.join(file)], &args.mappings.join(mapping), !args.json).await?;
        batches.extend(out.batches);
        refused.extend(out.refused);
    }
    let today = global_demo.clock()?.now().date_naive();
    let summary = Summary {
        exports,
        batches,
        refused,
        tables: lake::stats(&lake).await?,
        milestones: milestones::compute(&lake, today, 14).await?,
    };
    Ok(summary)
}
