//! `hrloop ingest`: exports into the lake, with a quality report per file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use hrloop_ingest::{BatchReport, IngestOptions, ResolvedMapping, ingest_file};
use serde::Serialize;

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    hrloop ingest data/inbox/hris_outcomes.csv --mapping data/mappings/hris_outcomes.toml --key-file hrloop.key\n  \
    hrloop ingest export.jsonl --mapping data/mappings/ats_hires.toml --json\n\n\
    Rows that fail validation go to the quarantine table with the line and field to blame;\n\
    the rest land. Ingesting the same export again changes nothing. A file that cannot be\n\
    read at all is refused whole and the command exits with status 1.")]
pub struct Args {
    /// Export file(s): .csv (, or ; separated), .jsonl, or .parquet.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Mapping that says which columns go where and which are personal data.
    #[arg(long, short, value_name = "FILE")]
    pub mapping: PathBuf,

    /// Print the quality reports as JSON instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Serialize)]
pub struct Refused {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub batches: Vec<BatchReport>,
    pub refused: Vec<Refused>,
}

/// Ingest files with one mapping; refusals are collected, not fatal to the other files.
pub async fn ingest_all(
    global: &Global,
    paths: &[PathBuf],
    mapping: &std::path::Path,
    progress: bool,
) -> Result<Outcome> {
    let lake = global.lake()?;
    let taxonomy = global.taxonomy()?;
    let mapping = ResolvedMapping::load(mapping, &taxonomy)?;
    let pseudo = global.pseudonymiser(&lake)?;
    let opts = IngestOptions { clock: global.clock()?, progress };
    let mut out = Outcome { batches: Vec::new(), refused: Vec::new() };
    for path in paths {
        match ingest_file(&lake, path, &mapping, &pseudo, &taxonomy, &opts).await {
            Ok(report) => out.batches.push(report),
            Err(e @ hrloop_ingest::Error::Unreadable { .. }) => {
                out.refused.push(Refused { file: path.display().to_string(), reason: e.to_string() })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let out = ingest_all(global, &args.paths, &args.mapping, !args.no_progress && !args.json).await?;
    if args.json {
        print_json(&out)?;
    } else {
        for b in &out.batches {
            println!("{}", b.render());
        }
    }
    for r in &out.refused {
        eprintln!("error: {}", r.reason);
    }
    Ok(if out.refused.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
