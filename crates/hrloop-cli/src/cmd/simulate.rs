//! `hrloop simulate`: a simulated company's exports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use hrloop_sim::SimConfig;

use crate::cmd::insights;
use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Writes ats_applications.csv, ats_hires.jsonl, hris_outcomes.csv and\n\
    protected_attributes.csv as an ATS and an HRIS would export them: with names, e-mails and\n\
    personnummer, mixed date formats and ~1.5 % broken rows, so ingestion is tested for real.\n\
    manifest.json says how many rows of each file are broken or repeated; truth/ holds the\n\
    hidden ground truth (no personal data).\n\n\
    With --loop it runs the whole feedback loop instead, on an accelerated clock: rankings\n\
    through the real server code, recruiter feedback, weekly HRIS exports ingested by the\n\
    scheduler's pipelines, monthly retraining, A/B experiments and their verdicts, a drift at\n\
    month 12 and a bad vendor challenger at month 15. It writes DIR/kpis.csv (month by month),\n\
    DIR/summary.json, DIR/loop.svg (the chart) and the store it used (DIR/store).\n\n\
    Example: hrloop simulate --months 24 --seed 7 --loop --out data/sim-loop --json\n\n\
    With --experiments N it calibrates experiment verdicts instead: N simulated A/B experiments\n\
    per scenario, rate and correlation, with a known truth, each judged day by day by the same\n\
    decision rule as the daily analysis pipeline (its default policy, fairness guardrail and\n\
    power planning included). It prints how often the verdict is wrong (with a 95 % interval),\n\
    how often it is right (in all, and within max_days), the median days to a verdict, how often\n\
    the first analysis said it cannot tell in time, and how often nobody decided.\n\n\
    Example: hrloop simulate --experiments 2000 --scenario aa,better,worse,unfair --rate 3,10,30 --icc 0,0.1,0.3\n\n\
    With --overrides it backtests recruiter overrides as training signal instead: simulated\n\
    recruiters with a known taste (soft skills in sales and customer support, which predict\n\
    success; education level, which does not; a bias against women) give feedback on an\n\
    outcome model's rankings. It prints how many overrides a preference model needs before it\n\
    predicts the recruiters' choices better than the outcome model, whether blending it into\n\
    the ranking (--blend-recruiter) improves the true quality of hire, and the selection rates\n\
    of women and men in the top 5 and among the recruiters' choices.\n\n\
    Example: hrloop simulate --overrides --blend-recruiter 0.2")]
pub struct Args {
    /// Months of history to simulate.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// Random seed: the same seed gives the same company.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Folder to write the exports to.
    #[arg(long, default_value = "data/inbox/sim", value_name = "DIR")]
    pub out: PathBuf,
    /// Open positions per month (before seasonal dips).
    #[arg(long, default_value_t = 30)]
    pub requisitions_per_month: u32,
    /// First day of the simulated history.
    #[arg(long, default_value = "2024-11-01", value_name = "YYYY-MM-DD")]
    pub start: String,
    /// Share of rows broken on purpose.
    #[arg(long, default_value_t = 0.015)]
    pub bad_row_rate: f64,
    /// Print the manifest (or the loop's summary) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run the closed loop (serve, feedback, ingestion, pipelines, experiments) instead of only
    /// writing exports.
    #[arg(long = "loop")]
    pub closed_loop: bool,
    /// With --loop: the month in which a bad vendor model is pushed as challenger.
    #[arg(long, default_value_t = 15)]
    pub bad_challenger_month: u32,
    /// With --loop: recruiters judge suggested candidates with a taste on top of the interview
    /// (soft skills in sales and customer support, education level, and a bias against women:
    /// the taste --overrides backtests), and give `communication` or `qualifications` as the
    /// reason for an override where that taste decided. Without it they judge by the interview.
    #[arg(long)]
    pub recruiter_taste: bool,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    /// Backtest recruiter overrides as training signal (see below) instead of writing exports.
    #[arg(long)]
    pub overrides: bool,
    /// With --overrides: the recruiters' share of the blended score (the outcome model has the
    /// rest), as in a model spec's `[label] blend = { outcomes = 0.8, recruiter = 0.2 }`.
    #[arg(long, default_value_t = 0.2)]
    pub blend_recruiter: f64,
    /// With --overrides: how many simulated companies (seeds --seed, --seed + 1, ...).
    #[arg(long, default_value_t = 5)]
    pub replications: usize,
}

/// `--experiments N` and its grid.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrationArgs {
    /// Calibrate experiment verdicts with this many simulated experiments per grid cell.
    #[arg(long, value_name = "N")]
    pub experiments: Option<usize>,
    /// With --experiments: the truth, comma-separated. `aa`: challenger identical to the
    /// champion; `better` / `worse`: overridden --effect less / more often; `unfair`: overridden
    /// as often, but its top 5 has an adverse impact ratio of 0.6.
    #[arg(long, value_delimiter = ',', default_value = "aa,better,worse,unfair")]
    pub scenario: Vec<String>,
    /// With --experiments: requisitions a day, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3,10,30")]
    pub rate: Vec<f64>,
    /// With --experiments: correlation of two feedback rows of one requisition, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.3")]
    pub icc: Vec<f64>,
    /// With --experiments: the champion's override rate.
    #[arg(long, default_value_t = 0.35)]
    pub base_override: f64,
    /// With --experiments: how much less (better) or more (worse) the challenger is overridden.
    #[arg(long, default_value_t = 0.10)]
    pub effect: f64,
    /// With --experiments: the share of requisitions the challenger serves.
    #[arg(long, default_value_t = 0.2)]
    pub share: f64,
    /// With --experiments: how the override-rate test spends its error budget over the daily
    /// looks (Hwang–Shih–DeCani gamma; -4 is O'Brien–Fleming-like, 1 Pocock-like). Default:
    /// the policy's.
    #[arg(long, allow_hyphen_values = true)]
    pub spending_gamma: Option<f64>,
    /// With --experiments: compare the raw override rates, without the CUPED adjustment for
    /// each recruiter's override rate before the experiment (to see what it gains).
    #[arg(long)]
    pub no_cuped: bool,
}

impl Default for CalibrationArgs {
    fn default() -> Self {
        Self {
            experiments: None,
            scenario: vec!["aa".into(), "better".into(), "worse".into(), "unfair".into()],
            rate: vec![3.0, 10.0, 30.0],
            icc: vec![0.0, 0.1, 0.3],
            base_override: 0.35,
            effect: 0.10,
            share: 0.2,
            spending_gamma: None,
            no_cuped: false,
        }
    }
}

impl Args {
    pub fn config(&self) -> Result<SimConfig> {
        let start =
            NaiveDate::parse_from_str(&self.start, "%Y-%m-%d").with_context(|| format!("--start {:?}", self.start))?;
        anyhow::ensure!((0.0..=0.5).contains(&self.bad_row_rate), "--bad-row-rate must be between 0 and 0.5");
        anyhow::ensure!((1..=120).contains(&self.months), "--months must be between 1 and 120");
        Ok(SimConfig {
            months: self.months,
            seed: self.seed,
            start,
            requisitions_per_month: self.requisitions_per_month.max(1),
            bad_row_rate: self.bad_row_rate,
            recruiter_taste: if self.recruiter_taste {
                hrloop_sim::RecruiterTaste::SIMULATED
            } else {
                hrloop_sim::RecruiterTaste::NONE
            },
            ..SimConfig::default()
        })
    }
}

pub async fn run(_global: &Global, args: Args) -> Result<ExitCode> {
    if let Some(n) = args.calibration.experiments {
        return calibrate(n, &args.calibration, args.seed, args.json);
    }
    if args.overrides {
        anyhow::ensure!((0.0..=1.0).contains(&args.blend_recruiter), "--blend-recruiter must be between 0 and 1");
        let blend =
            hrloop_models::preference::Blend { outcomes: 1.0 - args.blend_recruiter, recruiter: args.blend_recruiter };
        return insights::backtest(args.seed, args.requisitions_per_month, blend, args.replications, args.json);
    }
    let config = args.config()?;
    if args.closed_loop {
        return closed_loop(config, args).await;
    }
    let manifest =
        hrloop_sim::run(&config, &args.out).with_context(|| format!("writing exports to {}", args.out.display()))?;
    if args.json {
        print_json(&manifest)?;
    } else {
        println!(
            "Simulated {} months from {} (seed {}), {} requisitions:",
            manifest.months, manifest.start, manifest.seed, manifest.requisitions
        );
        for (file, m) in &manifest.files {
            println!(
                "  {:<28} {:>7} rows ({} broken, {} repeated)",
                args.out.join(file).display(),
                m.rows,
                m.bad_rows,
                m.duplicates
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--experiments N`: the verdict calibration table.
fn calibrate(n: usize, args: &CalibrationArgs, seed: u64, json: bool) -> Result<ExitCode> {
    use hrloop_loop::experiments::{Scenario, Settings, calibrate};
    anyhow::ensure!(n > 0, "--experiments must be at least 1");
    let started = std::time::Instant::now();
    let mut summaries = Vec::new();
    for name in &args.scenario {
        let scenario =
            Scenario::parse(name).with_context(|| format!("--scenario {name:?}: use aa, better, worse or unfair"))?;
        for &rate in &args.rate {
            for &icc in &args.icc {
                let defaults = Settings::new(scenario, rate, icc, n, seed);
                let settings = Settings {
                    policy: hrloop_models::experiment::Policy {
                        challenger_share: args.share,
                        spending_gamma: args.spending_gamma.unwrap_or(defaults.policy.spending_gamma),
                        ..defaults.policy.clone()
                    },
                    base_override: args.base_override,
                    effect: args.effect,
                    cuped: !args.no_cuped,
                    ..defaults
                };
                summaries.push(calibrate(&settings)?);
            }
        }
    }
    if json {
        print_json(&summaries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "scenario",
        "req/day",
        "icc",
        "experiments",
        "wrong verdict (95 % CI)",
        "right verdict (≤ max_days)",
        "median days",
        "first says: cannot tell",
        "nobody decided",
        "CUPED narrows",
    ]);
    let pct = |k: usize| format!("{:.1} %", 100.0 * k as f64 / n as f64);
    for s in &summaries {
        t.add_row(vec![
            s.scenario.name().to_string(),
            format!("{}", s.rate),
            format!("{}", s.icc),
            s.experiments.to_string(),
            format!("{} ({:.1}–{:.1} %)", pct(s.wrong), s.wrong_ci.0 * 100.0, s.wrong_ci.1 * 100.0),
            format!("{} ({})", pct(s.right), pct(s.right_within_max_days)),
            s.median_days_to_verdict.map_or("—".into(), |d| d.to_string()),
            pct(s.cannot_tell_at_first),
            pct(s.person_decides),
            s.cuped_narrowing.map_or("—".into(), |k| format!("{:.0} %", k * 100.0)),
        ]);
    }
    println!("{t}");
    println!(
        "each experiment judged daily by the analysis pipeline's rule and default policy; champion override rate {}, effect {}, challenger share {}, unfair AIR 0.6 ({:.0} s)",
        args.base_override,
        args.effect,
        args.share,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn closed_loop(sim: SimConfig, args: Args) -> Result<ExitCode> {
    let out = if args.out == std::path::Path::new("data/inbox/sim") {
        PathBuf::from("data/sim-loop")
    } else {
        args.out.clone()
    };
    let config = hrloop_loop::LoopConfig {
        sim,
        out: out.clone(),
        bad_challenger_month: args.bad_challenger_month,
        repo: std::env::current_dir()?,
        progress: !args.json,
    };
    let s = hrloop_loop::run(&config).await.map_err(anyhow::Error::msg)?;
    if args.json {
        print_json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "month",
        "champion",
        "challenger",
        "hires",
        "quality loop",
        "quality static",
        "retention 12m",
        "AIR gender",
        "overrides",
        "complete 6m",
    ]);
    let f = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.3}"));
    for r in &s.rows {
        t.add_row(vec![
            r.month.clone(),
            r.champion.clone().unwrap_or_default(),
            r.challenger.clone().unwrap_or_default(),
            r.hires.to_string(),
            f(r.quality_loop),
            f(r.quality_static),
            f(r.retention_12m_loop),
            f(r.adverse_impact_ratio_gender),
            f(r.override_rate),
            f(r.feedback_completeness.get("6m").copied()),
        ]);
    }
    println!("{t}");
    for e in s.events.iter().filter(|e| e.change != "challenger" || e.actor != "simulator") {
        println!(
            "{} {} {} → {}: {}",
            e.at.format("%Y-%m-%d"),
            e.change,
            e.from_version.as_deref().unwrap_or("none"),
            e.to_version.as_deref().unwrap_or("none"),
            e.reason
        );
    }
    println!(
        "\nmonths 13-24: the loop's hires have a true success probability of {} against {} for the initial model on the same applicants",
        f(s.quality_loop_13_24),
        f(s.quality_static_13_24)
    );
    if let Some(b) = &s.bad_challenger {
        println!(
            "bad challenger {}: {}",
            b.version,
            match (b.became_champion, b.days_live) {
                (true, _) => "BECAME CHAMPION".to_string(),
                (false, Some(d)) => format!("withdrawn after {d} days: {}", b.reason.as_deref().unwrap_or("")),
                (false, None) => "never withdrawn".to_string(),
            }
        );
    }
    println!("wrote {}/kpis.csv, summary.json, loop.svg ({:.0} s)", out.display(), s.wall_seconds);
    Ok(ExitCode::SUCCESS)
}
