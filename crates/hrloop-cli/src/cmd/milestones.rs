//! `hrloop milestones status`: due / arrived / missing outcomes per cohort and milestone.

use std::process::ExitCode;

use anyhow::{Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_core::Milestone;
use hrloop_core::milestones::{HireRef, MilestoneStatus, OutcomeRef, status};
use hrloop_lake::{Lake, Table};

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

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a std::sync::Arc<dyn Array>> {
    batch.column_by_name(name).with_context(|| format!("lake column {name} is missing"))
}

pub async fn compute(lake: &Lake, today: NaiveDate, grace_days: i64) -> Result<MilestoneStatus> {
    let hires = lake.scan(Table::Hires, Some(&["employee_id", "hire_date"])).await?;
    let outcomes = lake.scan(Table::Outcomes, Some(&["employee_id", "milestone", "employed"])).await?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let mut hire_rows: Vec<(String, NaiveDate)> = Vec::new();
    for b in &hires.batches {
        let ids = column(b, "employee_id")?.as_string::<i32>();
        let dates = column(b, "hire_date")?.as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            hire_rows.push((ids.value(i).to_string(), epoch + chrono::Duration::days(dates.value(i) as i64)));
        }
    }
    let mut outcome_rows: Vec<(String, Milestone, bool)> = Vec::new();
    for b in &outcomes.batches {
        let ids = column(b, "employee_id")?.as_string::<i32>();
        let ms = column(b, "milestone")?.as_string::<i32>();
        let emp = column(b, "employed")?.as_boolean();
        for i in 0..b.num_rows() {
            let m: Milestone = ms.value(i).parse()?;
            outcome_rows.push((ids.value(i).to_string(), m, emp.value(i)));
        }
    }
    let hires: Vec<HireRef<'_>> = hire_rows.iter().map(|(id, d)| HireRef { employee_id: id, hire_date: *d }).collect();
    let outcomes: Vec<OutcomeRef<'_>> =
        outcome_rows.iter().map(|(id, m, e)| OutcomeRef { employee_id: id, milestone: *m, employed: *e }).collect();
    Ok(status(&hires, &outcomes, today, grace_days))
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
