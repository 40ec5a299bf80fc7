//! `hrloop up`: the ranking server and the scheduler in one process on one store. With
//! `--demo`, an empty store is first seeded with a simulated company's history and a trained
//! champion, so a new user has a working system in about a minute.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hrloop_models::{Alias, ChangeRequest, ModelSpec, Registry, TrainOptions};

use crate::cmd::{demo, pipelines, serve};
use crate::context::Global;

#[derive(Debug, clap::Args)]
#[command(after_help = "Try it:\n  \
    hrloop up --demo                                  # seed ./data, train a champion, serve, schedule\n  \
    hrloop pipelines status                           # in another terminal: what runs when\n  \
    TOKEN=$(hrloop tokens add me --role recruiter)\n  \
    curl -s -H \"Authorization: Bearer $TOKEN\" localhost:8080/v1/rank -d @request.json")]
pub struct Args {
    #[command(flatten)]
    pub serve: serve::Args,
    #[command(flatten)]
    pub place: pipelines::Where,
    /// Seed an empty store with a simulated company (24 months of history), train the served
    /// model and make it champion. Uses a demo pseudonymisation key unless one is configured.
    #[arg(long)]
    pub demo: bool,
    /// Seconds between scheduler ticks (each tick runs whatever is due).
    #[arg(long, default_value_t = 30)]
    pub tick_seconds: u64,
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let mut global = global.clone();
    if args.demo {
        // A demo key only if none is configured: the same rule as every command.
        global.demo_key = true;
        seed(&global, &args.serve.model).await?;
    }
    let scheduler = Arc::new(pipelines::scheduler(&global, &args.place)?);
    let mut serve_args = args.serve;
    serve_args.pipelines_dir = args.place.pipelines.clone();
    eprintln!(
        "hrloop scheduler: {} pipelines from {} (see `hrloop pipelines status`), tick every {} s",
        scheduler.pipelines().len(),
        args.place.pipelines.display(),
        args.tick_seconds
    );
    let every = Duration::from_secs(args.tick_seconds.max(1));
    tokio::spawn(async move {
        loop {
            match scheduler.tick().await {
                Ok(made) => {
                    for a in made {
                        tracing::info!(pipeline = %a.pipeline, slot = %a.slot, status = a.status.as_str(), "run finished");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
            }
            tokio::time::sleep(every).await;
        }
    });
    // A run interrupted by shutdown stays "running" in its record and is resumed by the next
    // process once its lease expires.
    serve::run(&global, serve_args).await
}

/// Fill an empty store: the demo company, then a champion for `model`.
async fn seed(global: &Global, model: &str) -> Result<()> {
    let lake = global.lake()?;
    let registry = Registry::new(lake.store().clone());
    if lake.list_files(hrloop_lake::Table::Decisions, None).await?.is_empty() {
        eprintln!("hrloop up --demo: the store is empty; seeding it with a simulated company");
        let args = demo::Args {
            seed: 7,
            months: 24,
            requisitions_per_month: 90,
            mappings: "data/mappings".into(),
            json: true,
        };
        demo::ingest_only(global, args).await?;
    }
    if registry.state(model).await?.champion.is_some() {
        return Ok(());
    }
    let path = std::path::PathBuf::from(format!("models/{model}.toml"));
    let spec = ModelSpec::load(&path).with_context(|| format!("--demo trains models/{model}.toml"))?;
    let now = global.clock()?.now();
    let opts = TrainOptions { now, actor: "hrloop up --demo".into(), grace_days: 14 };
    eprintln!("hrloop up --demo: training {model} ...");
    let trained = hrloop_models::train(&lake, &registry, &spec, &opts).await?;
    let gates = if trained.card.gates.passed {
        "gates passed".to_string()
    } else {
        format!("gates failed ({}), promoted anyway for the demo", trained.card.gates.failures.join("; "))
    };
    let req = ChangeRequest {
        actor: "hrloop up --demo".into(),
        reason: format!("demo: first champion; {gates}"),
        evidence: serde_json::json!({"auc": trained.card.metrics.roc_auc}),
        at: now,
    };
    registry.promote(model, &trained.version, Alias::Champion, req).await?;
    eprintln!("hrloop up --demo: {model}/{} is champion ({gates})", trained.version);
    Ok(())
}
