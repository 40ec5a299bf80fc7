//! `hrloop pipelines`: the scheduled jobs in pipelines/*.toml and their runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_scheduler::{Attempt, LoopSteps, Pipeline, Scheduler, Status};

use crate::context::{Global, print_json};

#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Where {
    /// Folder of pipeline files.
    #[arg(long, global = true, default_value = "pipelines", value_name = "DIR")]
    pub pipelines: PathBuf,
    /// Prometheus for PromQL guardrails of experiment analyses (when a pipeline names none).
    #[arg(long, global = true, env = "HRLOOP_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The pipelines: trigger, catch-up policy, steps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Per pipeline: next slot, last run and its outcome, last success.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Every run (attempt) of one pipeline or all, with each step's result.
    History {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a pipeline now, whatever its trigger.
    Run {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Run everything due now once (resume, retry, catch up), then exit: for cron or a
    /// systemd timer when `hrloop up` is not used.
    Tick {
        #[arg(long)]
        json: bool,
    },
}

/// The scheduler with the real steps, on this store and clock.
pub fn scheduler(global: &Global, place: &Where) -> Result<Scheduler<LoopSteps>> {
    let lake = global.lake()?;
    let pipelines = Pipeline::load_dir(&place.pipelines)?;
    let clock = global.clock()?;
    let steps = LoopSteps {
        pseudo: global.pseudonymiser(&lake).ok(),
        taxonomy: global.taxonomy()?,
        lake: lake.clone(),
        clock: clock.clone(),
        base: std::env::current_dir()?,
        prometheus_url: place.prometheus_url.clone(),
        http: hrloop_scheduler::steps::HttpClient::default(),
    };
    Ok(Scheduler::new(lake, pipelines, steps, clock))
}

pub async fn run(global: &Global, place: Where, command: Command) -> Result<ExitCode> {
    match command {
        Command::List { json } => {
            let all = Pipeline::load_dir(&place.pipelines)?;
            if json {
                print_json(&all.iter().map(|p| &p.file).collect::<Vec<_>>())?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["pipeline", "trigger", "catch-up", "steps", "what it does"]);
                for p in &all {
                    let steps: Vec<&str> = p.file.steps.iter().map(|s| s.kind()).collect();
                    t.add_row(vec![
                        p.name().to_string(),
                        p.describe_trigger(),
                        format!("{:?}", p.file.catch_up).to_lowercase(),
                        steps.join(" → "),
                        p.file.description.clone(),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::Status { json } => {
            let s = scheduler(global, &place)?;
            let status = s.status().await?;
            if json {
                print_json(&status)?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["pipeline", "next", "last run", "last success", "runs"]);
                for p in &status {
                    let last = match (&p.last_slot, &p.last_status) {
                        (Some(slot), Some(st)) => {
                            let mut s = format!("{} {}", slot.format("%Y-%m-%d %H:%M"), st.as_str());
                            if let (Status::Failed, Some(e)) = (st, &p.last_error) {
                                s.push_str(&format!(": {e}"));
                            }
                            s
                        }
                        _ => "never".into(),
                    };
                    let runs: Vec<String> = p.runs.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    t.add_row(vec![
                        p.name.clone(),
                        p.next_slot.map_or_else(|| p.trigger.clone(), |n| n.format("%Y-%m-%d %H:%M UTC").to_string()),
                        last,
                        p.last_success.map_or("never".into(), |x| x.format("%Y-%m-%d %H:%M").to_string()),
                        runs.join(", "),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::History { name, json } => {
            let s = scheduler(global, &place)?;
            let attempts = s.runs().attempts(name.as_deref()).await?;
            if json {
                print_json(&attempts)?;
            } else {
                print_attempts(&attempts);
            }
        }
        Command::Run { name, json } => {
            let s = scheduler(global, &place)?;
            let a = s.run_now(&name).await?;
            if json {
                print_json(&a)?;
            } else {
                print_attempts(std::slice::from_ref(&a));
            }
            return Ok(if a.status == Status::Failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
        }
        Command::Tick { json } => {
            let s = scheduler(global, &place)?;
            let made = s.tick().await?;
            if json {
                print_json(&made)?;
            } else if made.is_empty() {
                println!("nothing due");
            } else {
                print_attempts(&made);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_attempts(attempts: &[Attempt]) {
    for a in attempts {
        println!(
            "{} slot {} attempt {} ({:?}, {}): {}",
            a.pipeline,
            a.slot.format("%Y-%m-%d %H:%M"),
            a.attempt,
            a.kind,
            a.owner,
            a.status.as_str()
        );
        for s in &a.steps {
            println!("  {} {}: {}", if s.ok { "✓" } else { "✗" }, s.kind, s.summary);
        }
        if let Some(e) = &a.error
            && a.status != Status::Failed
        {
            println!("  {e}");
        }
    }
}
