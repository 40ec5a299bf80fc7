//! `hrloop audit`: read and verify the hash-chained audit trail.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_lake::audit::Audit;

use crate::context::{Global, parse_time, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Who did what, when: model changes, person-level reads and writes through the API.
    Show {
        /// Only records at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check the whole chain; exits 1 and names the first changed, removed or reordered record.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let audit = Audit::new(global.lake()?.store().clone());
    match command {
        Command::Show { since, json } => {
            let since = since.as_deref().map(parse_time).transpose()?;
            let records: Vec<_> =
                audit.records().await?.into_iter().filter(|r| since.is_none_or(|t| r.entry.at >= t)).collect();
            if json {
                print_json(&records)?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["#", "when", "who", "action", "target", "details"]);
                for r in &records {
                    t.add_row(vec![
                        r.seq.to_string(),
                        r.entry.at.to_rfc3339(),
                        r.entry.actor.clone(),
                        r.entry.action.clone(),
                        r.entry.target.clone(),
                        r.entry.details.to_string(),
                    ]);
                }
                println!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { json } => {
            let v = audit.verify().await?;
            if json {
                print_json(&v)?;
            } else if v.ok {
                println!("audit trail intact: {} records, every hash and link checks out", v.records);
            } else {
                println!("audit trail BROKEN after {} good records: {}", v.records, v.problem.as_deref().unwrap_or(""));
            }
            Ok(if v.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
