//! `hrloop validity`: which inputs predict later performance and retention.

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_core::Milestone;
use hrloop_models::data::LakeData;
use hrloop_models::validity::{ValidityReport, report};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Spearman rank correlation of every feature in the decision log with the performance\n\
    rating (of those still employed) and with retention, at 3, 6, 12 and 24 months, over hires whose\n\
    milestone has passed. [low, high] is a 95 % confidence interval; n the number of hires. An\n\
    interval that contains 0 means the data cannot yet tell whether the input predicts anything.")]
pub struct Args {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Days after a milestone before its outcome counts as due.
    #[arg(long, default_value_t = 14)]
    pub grace_days: i64,
}

pub fn render(r: &ValidityReport) -> String {
    let mut out = format!("Predictive validity as of {} (Spearman ρ [95 % CI], n)\n", r.as_of);
    for (outcome, title) in [("rating", "performance rating"), ("retained", "still employed")] {
        let mut t = TextTable::new();
        t.load_style(UTF8_FULL_CONDENSED);
        let mut header = vec![format!("feature vs {title}")];
        header.extend(Milestone::ALL.iter().map(|m| m.to_string()));
        t.set_header(header);
        let mut features: Vec<&str> = r.rows.iter().map(|x| x.feature.as_str()).collect();
        features.dedup();
        for f in features {
            let mut row = vec![f.replace('_', " ")];
            for m in Milestone::ALL {
                let cell = r.rows.iter().find(|x| x.feature == f && x.milestone == m && x.outcome == outcome);
                row.push(match cell {
                    Some(c) => match (c.spearman, c.ci_low, c.ci_high) {
                        (Some(s), Some(lo), Some(hi)) => format!("{s:+.2} [{lo:+.2}, {hi:+.2}] n={}", c.n),
                        _ => format!("— n={}", c.n),
                    },
                    None => String::new(),
                });
            }
            t.add_row(row);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let lake = global.lake()?;
    let data = LakeData::load(&lake).await?;
    let r = report(&data, global.clock()?.now().date_naive(), args.grace_days);
    if args.json {
        print_json(&r)?;
    } else {
        println!("{}", render(&r));
    }
    Ok(ExitCode::SUCCESS)
}
