//! `hrloop calibrate`: refit the score-to-probability mapping of a version on fresh outcomes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use hrloop_models::Registry;
use hrloop_models::calibrate::{CalibrateOptions, calibrate};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Fits Platt scaling on the newest matured outcomes (the spec's holdout window) and stores\n\
    it as a numbered calibration beside the version; the version itself never changes. Run daily by\n\
    the calibration pipeline.")]
pub struct Args {
    /// Model name, e.g. success12m_logistic.
    pub name: String,
    /// Version to calibrate; defaults to the champion, else the newest version.
    #[arg(long = "model-version", value_name = "VERSION")]
    pub model_version: Option<String>,
    #[arg(long, env = "USER", default_value = "unknown")]
    pub actor: String,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let lake = global.lake()?;
    let registry = Registry::new(lake.store().clone());
    let version = match args.model_version {
        Some(v) => v,
        None => match registry.state(&args.name).await?.champion {
            Some(v) => v,
            None => {
                registry.versions(&args.name).await?.pop().with_context(|| format!("{} has no versions", args.name))?
            }
        },
    };
    let opts = CalibrateOptions { now: global.clock()?.now(), actor: args.actor, grace_days: 14 };
    let cal = calibrate(&lake, &registry, &args.name, &version, &opts)
        .await
        .with_context(|| format!("calibrating {}/{version}", args.name))?;
    if args.json {
        print_json(&cal)?;
    } else {
        println!(
            "{}/{version}: calibration #{} (Platt a={:.3}, b={:.3}) on {} outcomes since {}\n  expected calibration error {:.3} → {:.3}, Brier {:.3} → {:.3}",
            args.name,
            cal.seq,
            cal.a,
            cal.b,
            cal.rows,
            cal.window_from,
            cal.ece_before,
            cal.ece_after,
            cal.brier_before,
            cal.brier_after
        );
    }
    Ok(ExitCode::SUCCESS)
}
