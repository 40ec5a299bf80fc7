//! `hrloop lake`: what is stored, and turning a store from before Delta into Delta tables.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_lake::{Lake, Table};
use serde::Serialize;

use crate::context::{Global, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Files and rows per table.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make every table of a store written before hrloop used Delta tables (plain
    /// Hive-partitioned Parquet) a Delta table, in place. No data file is moved or rewritten:
    /// each table gets a first Delta commit that adds the files it holds. Safe to re-run, and
    /// safe to interrupt (a re-run finishes the job; nothing is lost or counted twice). A Delta
    /// table created by an older hrloop gets the current settings (it keeps listing removed
    /// files in checkpoints, so an erasure finds a compaction's inputs). Stop every other hrloop
    /// process on the store first.
    Migrate {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
pub struct TableStats {
    pub table: String,
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
    /// The table's newest Delta version (`None`: never written).
    pub version: Option<u64>,
    pub path: String,
}

pub async fn stats(lake: &Lake) -> Result<Vec<TableStats>> {
    let mut out = Vec::new();
    for t in Table::ALL {
        let scan = lake.scan(t, Some(&["event_key"])).await?;
        out.push(TableStats {
            table: t.name().to_string(),
            files: scan.files.len(),
            rows: scan.num_rows(),
            bytes: scan.files.iter().map(|f| f.size).sum(),
            version: lake.delta_table(t, None).await?.and_then(|d| d.version()).map(|v| v as u64),
            path: format!("{}/lake/{}", lake.store().location().trim_end_matches('/'), t.name()),
        });
    }
    Ok(out)
}

pub fn render(stats: &[TableStats]) -> String {
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["table", "version", "rows", "files", "size", "path"]);
    for s in stats {
        t.add_row(vec![
            s.table.clone(),
            s.version.map_or("-".to_string(), |v| v.to_string()),
            s.rows.to_string(),
            s.files.to_string(),
            format!("{:.1} KiB", s.bytes as f64 / 1024.0),
            s.path.clone(),
        ]);
    }
    t.to_string()
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    match command {
        Command::Stats { json } => {
            let s = stats(&global.lake()?).await?;
            if json {
                print_json(&s)?;
            } else {
                println!("{}", render(&s));
            }
        }
        Command::Migrate { json } => {
            let done = global.lake()?.migrate().await?;
            if json {
                print_json(&done)?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["table", "result", "files", "rows", "version"]);
                for m in &done {
                    let result = match (m.already_delta, m.version) {
                        (true, _) if m.kept_removes_listed => {
                            "already a Delta table; now keeps removed files listed (for erasure)"
                        }
                        (true, _) => "already a Delta table",
                        (false, Some(_)) => "migrated",
                        (false, None) => "empty, nothing to do",
                    };
                    t.add_row(vec![
                        m.table.to_string(),
                        result.to_string(),
                        m.files.to_string(),
                        m.rows.to_string(),
                        m.version.map_or("-".to_string(), |v| v.to_string()),
                    ]);
                }
                println!("{t}");
                println!(
                    "every table is a Delta table; readers now see exactly the files listed in each table's _delta_log"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
