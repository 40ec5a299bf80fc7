//! `hrloop lake`: what is stored.

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
}

#[derive(Debug, Serialize)]
pub struct TableStats {
    pub table: String,
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
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
            path: format!("{}/lake/{}", lake.store().location().trim_end_matches('/'), t.name()),
        });
    }
    Ok(out)
}

pub fn render(stats: &[TableStats]) -> String {
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["table", "rows", "files", "size", "path"]);
    for s in stats {
        t.add_row(vec![
            s.table.clone(),
            s.rows.to_string(),
            s.files.to_string(),
            format!("{:.1} KiB", s.bytes as f64 / 1024.0),
            s.path.clone(),
        ]);
    }
    t.to_string()
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let Command::Stats { json } = command;
    let s = stats(&global.lake()?).await?;
    if json {
        print_json(&s)?;
    } else {
        println!("{}", render(&s));
    }
    Ok(ExitCode::SUCCESS)
}
