//! `hrloop report`: documents for people outside the data team. `bias-audit` writes the
//! selection and scoring rates per protected group, with impact ratios, as CSV, JSON and one
//! self-contained HTML page; `model` the technical documentation of one version (EU AI Act
//! Annex IV) as JSON and HTML.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use hrloop_models::bias::{AuditRequest, AuditSource, BiasAudit, bias_audit};
use hrloop_report::bias_audit::{FOUR_FIFTHS, csv, html, json};

use crate::context::Global;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Bias audit: selection rates and scoring rates per protected group and intersection, with
    /// impact ratios and 95 % intervals, for every model that served (and for imported ATS
    /// history), as New York City's Local Law 144 asks of automated employment decision tools.
    #[command(after_help = "Selection rate: the share of decided applications advanced or hired (a candidate the\n\
        recruiter passed over in a served ranking counts as not selected; requisitions nobody decided on\n\
        yet are left out). Scoring rate: the share scored above the sample's median score. Impact ratio:\n\
        a group's rate over the highest group's; below 0.8 (the four-fifths rule of thumb) is marked.\n\
        Groups under 2 % of the known applications are shown but not compared; candidates without a\n\
        recorded attribute are counted as unknown. Attributes are those of the protected_attributes\n\
        table (--attributes picks and orders them; each pair is also audited as an intersection).\n\
        The HTML loads nothing from the network: it can be mailed or archived as it is.\n\n\
        Example: hrloop report bias-audit --from 2026-01-01 --to 2026-12-31 --attributes gender,ethnicity")]
    BiasAudit(BiasAuditArgs),
    /// Technical documentation of one model version under the headings of the EU AI Act's
    /// Annex IV: training data, metrics with intervals, fairness by group and intersection,
    /// human oversight, record-keeping, post-market monitoring and change history, from the
    /// store; the headings only a person can write are listed as such.
    #[command(after_help = "Writes reports/model_<name>_<version>.html (and .json). The serving period is read\n\
        from the version's alias events; oversight and monitoring cover that period.\n\n\
        Example: hrloop report model success12m_logistic/v1")]
    Model(ModelArgs),
}

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The version to document, as NAME/vN.
    #[arg(value_name = "NAME/vN")]
    model_version: String,
    /// Formats to write, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "json,html")]
    format: Vec<Format>,
    /// Directory the files are written to (created if missing).
    #[arg(long, default_value = "reports")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BiasAuditArgs {
    /// First day of the audit period (YYYY-MM-DD, or an RFC 3339 time). Default: a year before --to.
    #[arg(long)]
    from: Option<String>,
    /// Last day of the audit period, included (YYYY-MM-DD, or an RFC 3339 time, excluded). Default: today.
    #[arg(long)]
    to: Option<String>,
    /// A model name (all its versions), or `all`.
    #[arg(long, default_value = "all", value_name = "NAME|all")]
    model: String,
    /// Rankings hrloop served, imported ATS history (the process before hrloop), or both.
    #[arg(long, value_enum, default_value = "all")]
    source: SourceArg,
    /// Protected attributes to audit, comma-separated, as named in the protected_attributes
    /// table. Default: every attribute recorded.
    #[arg(long, value_delimiter = ',')]
    attributes: Vec<String>,
    /// The model's top K are compared with the recruiters' selection.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top_k: usize,
    /// Formats to write, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "csv,json,html")]
    format: Vec<Format>,
    /// Directory the files are written to (created if missing).
    #[arg(long, default_value = "reports")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SourceArg {
    Served,
    Imported,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Csv,
    Json,
    Html,
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    match command {
        Command::BiasAudit(args) => bias(global, args).await,
        Command::Model(args) => model(global, args).await,
    }
}

/// A period bound: a day starts at midnight UTC; `end` days are included (the bound is the
/// next midnight). An RFC 3339 time is taken as it is.
fn bound(text: &str, end: bool, flag: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{flag} {text:?} is not a date: use YYYY-MM-DD (or an RFC 3339 time)"))?;
    let day = if end { day + Duration::days(1) } else { day };
    Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

async fn bias(global: &Global, args: BiasAuditArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let now = global.clock()?.now();
    let to = match &args.to {
        Some(t) => bound(t, true, "--to")?,
        None => bound(&now.format("%Y-%m-%d").to_string(), true, "--to")?,
    };
    let from = match &args.from {
        Some(t) => bound(t, false, "--from")?,
        None => to - Duration::days(365),
    };
    anyhow::ensure!(args.top_k > 0, "--top-k must be at least 1");
    let req = AuditRequest {
        from,
        to,
        model: (args.model != "all").then(|| args.model.clone()),
        source: match args.source {
            SourceArg::Served => AuditSource::Served,
            SourceArg::Imported => AuditSource::Imported,
            SourceArg::All => AuditSource::All,
        },
        attributes: args.attributes.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
        top_k: args.top_k,
    };
    let lake = global.lake()?;
    let audit = bias_audit(&lake, &req, now).await?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let stem = format!("bias-audit_{}_{}", from.format("%Y-%m-%d"), (to - Duration::seconds(1)).format("%Y-%m-%d"));
    for format in &args.format {
        let (ext, body) = match format {
            Format::Csv => ("csv", csv(&audit)?),
            Format::Json => ("json", json(&audit)?),
            Format::Html => ("html", html(&audit)?),
        };
        let path = args.out.join(format!("{stem}.{ext}"));
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    print!("{}", summary(&audit));
    println!("in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

async fn model(global: &Global, args: ModelArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (name, version) = args
        .model_version
        .split_once('/')
        .filter(|(n, v)| !n.is_empty() && v.starts_with('v'))
        .with_context(|| format!("{:?} is not NAME/vN (e.g. success12m_logistic/v1)", args.model_version))?;
    let now = global.clock()?.now();
    let lake = global.lake()?;
    let registry = hrloop_models::Registry::new(lake.store().clone());
    let doc = hrloop_models::documentation::document(&lake, &registry, name, version, now).await?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for format in &args.format {
        let (ext, body) = match format {
            Format::Json => ("json", serde_json::to_string_pretty(&doc)?),
            Format::Html => ("html", hrloop_report::model_report::html(&doc)?),
            Format::Csv => anyhow::bail!("the model documentation is written as json or html, not csv"),
        };
        let path = args.out.join(format!("model_{name}_{version}.{ext}"));
        std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let o = &doc.oversight;
    println!(
        "{name}/{version}: {} rankings served, {} routed to a person, override rate {}; {} verdicts, {} alias events",
        o.rankings,
        o.human_share.map_or_else(|| "–".into(), |s| format!("{:.1} %", s * 100.0)),
        o.override_rate.map_or_else(|| "–".into(), |s| format!("{:.1} %", s * 100.0)),
        doc.verdicts.len(),
        doc.events.len()
    );
    println!("in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The lines a person reads first: per tool, the lowest impact ratio of each measure.
fn summary(audit: &BiasAudit) -> String {
    let mut out = format!(
        "Bias audit of decisions from {} to {}\n",
        audit.from.format("%Y-%m-%d"),
        (audit.to - Duration::seconds(1)).format("%Y-%m-%d")
    );
    if audit.tools.is_empty() {
        out.push_str("  no decisions in this period: nothing to audit (check --from, --to, --model, --source)\n");
    }
    for t in &audit.tools {
        out.push_str(&format!("  {}: {} applications on {} requisitions\n", t.tool, t.applications, t.requisitions));
        let tables = [
            ("selection", Some(&t.selection)),
            ("scoring", t.scoring.as_ref()),
            ("model top k", t.model_top_k.as_ref()),
        ];
        for (name, table) in tables {
            let Some(table) = table else { continue };
            let lowest = table
                .dimensions
                .iter()
                .flat_map(|d| d.groups.iter().filter_map(move |g| g.impact_ratio.map(|r| (r, d, g))))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            match lowest {
                Some((r, d, g)) => out.push_str(&format!(
                    "    {name}: lowest impact ratio {r:.2} ({} = {}, {} of {}){}\n",
                    d.name,
                    g.group,
                    g.positive,
                    g.count,
                    if r < FOUR_FIFTHS { " — below 0.8" } else { "" }
                )),
                None => out.push_str(&format!("    {name}: no groups to compare\n")),
            }
        }
    }
    out
}
