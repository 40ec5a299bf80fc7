//! `hrloop milestones status`: due / arrived / missing outcomes per cohort and milestone.

use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_core::Milestone;
use hrloop_core::milestones::MilestoneStatus;
use hrloop_lake::Lake;

use crate::context::{Global, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Per hire month and milestone: outcomes due, arrived, missing; completeness vs targets
    /// (> 90 % at 6 months, > 95 % at 12 months).
    Status {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Days after a milestone before its outcome counts as due (the HRIS export cycle).
        #[arg(long, default_value_t = 14)]
        grace_days: i64,
    },
}

pub async fn compute(lake: &Lake, today: NaiveDate, grace_days: i64) -> Result<MilestoneStatus> {
    Ok(hrloop_models::data::milestone_status(lake, today, grace_days).await?)
}

pub fn render(s: &MilestoneStatus) -> String {
    let mut out = format!("Outcome milestones as of {} (due = milestone date + {} days)\n", s.as_of, s.grace_days);
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["milestone", "due", "arrived", "completeness", "target", ""]);
    for c in &s.completeness {
        t.add_row(vec![
            c.milestone.to_string(),
            c.due.to_string(),
            c.arrived.to_string(),
            c.completeness.map_or("—".into(), |x| format!("{:.1} %", x * 100.0)),
            c.target.map_or("—".into(), |x| format!("> {:.0} %", x * 100.0)),
            match c.meets_target {
                Some(true) => "on target".into(),
                Some(false) => "BELOW TARGET".into(),
                None => String::new(),
            },
        ]);
    }
    out.push_str(&t.to_string());
    out.push_str("\n\nPer hire cohort (due / arrived / missing; pending = not yet due)\n");
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec!["cohort".to_string(), "hires".to_string()];
    header.extend(Milestone::ALL.iter().map(|m| m.to_string()));
    t.set_header(header);
    let mut cohorts: Vec<&str> = s.cohorts.iter().map(|c| c.cohort.as_str()).collect();
    cohorts.dedup();
    for cohort in cohorts {
        let cells: Vec<_> = s.cohorts.iter().filter(|c| c.cohort == cohort).collect();
        let mut row = vec![cohort.to_string(), cells.first().map_or(0, |c| c.hires).to_string()];
        for m in Milestone::ALL {
            row.push(match cells.iter().find(|c| c.milestone == m) {
                Some(c) if c.due > 0 => format!("{} / {} / {}", c.due, c.arrived, c.missing),
                Some(c) => format!("pending {}", c.pending),
                None => String::new(),
            });
        }
        t.add_row(row);
    }
    out.push_str(&t.to_string());
    out
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let Command::Status { json, grace_days } = command;
    let lake = global.lake()?;
    let today = global.clock()?.now().date_naive();
    let s = compute(&lake, today, grace_days).await?;
    if json {
        print_json(&s)?;
    } else {
        println!("{}", render(&s));
    }
    Ok(ExitCode::SUCCESS)
}
