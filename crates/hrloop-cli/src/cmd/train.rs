//! `hrloop train`: one new model version from the lake, registered with its card.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_models::{ModelCard, ModelSpec, Registry, TrainOptions};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Trains on hires whose label milestone has passed: a hire whose 12-month outcome is\n\
    not yet due is left out (never counted as a failure); someone who left earlier counts as not\n\
    retained. The newest months are held out for evaluation. The version is registered with its\n\
    model card; it does not go live until `hrloop models promote`.\n\n\
    The card records the Delta version of every table it read. `--as-of success6m_logistic/v3`\n\
    trains again on exactly the data v3 saw (those table versions, v3's spec unless --model is\n\
    given, v3's training date): the card's features_sha256 then equals v3's. `--as-of\n\
    2026-03-01T00:00:00Z` reads each table as it was committed at that instant. A version\n\
    whose files an erasure deleted can no longer be read; the error names it.")]
pub struct Args {
    /// Model spec, e.g. models/success12m_logistic.toml (optional with `--as-of NAME/vN`:
    /// that version's spec).
    #[arg(long, value_name = "FILE", required_unless_present = "as_of")]
    pub model: Option<PathBuf>,
    /// Train on the lake as it was: the table versions of a registered model version
    /// (`NAME/vN`), or each table as committed at a time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "NAME/vN|TIME")]
    pub as_of: Option<String>,
    /// Who trains (recorded in the card). Defaults to $USER.
    #[arg(long, env = "USER", default_value = "unknown")]
    pub actor: String,
    /// Print the model card as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn render_card(card: &ModelCard) -> String {
    let m = &card.metrics;
    let f = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.3}"));
    let mut out = format!(
        "{}/{} — {}\ntrained by {} at {} on {} rows ({} positive), held out {} (hires after {}); parent {}\n",
        card.name,
        card.version,
        card.spec.description,
        card.created_by,
        card.created_at.format("%Y-%m-%d %H:%M"),
        card.rows.train,
        card.rows.positives_train,
        card.rows.holdout,
        card.holdout_from.map_or("—".into(), |d| d.to_string()),
        card.parent_version.as_deref().unwrap_or("none"),
    );
    out.push_str(&format!(
        "excluded: {} not yet due, {} missing outcome, {} without features\n",
        card.rows.excluded_not_due, card.rows.excluded_missing_outcome, card.rows.excluded_no_features
    ));
    if !card.training_data.table_versions.is_empty() {
        let v: Vec<String> = card.training_data.table_versions.iter().map(|(t, v)| format!("{t} v{v}")).collect();
        out.push_str(&format!(
            "data: Delta tables {} (reproduce with --as-of {}/{}); features sha256 {}\n",
            v.join(", "),
            card.name,
            card.version,
            card.training_data.features_sha256.get(..12).unwrap_or("—")
        ));
    }
    if let Some(w) = &card.weighting {
        let mut how = Vec::new();
        if let Some(h) = w.spec.recency_half_life_days {
            how.push(format!("a hire's weight halves every {h:.0} days"));
        }
        if let Some(a) = &w.spec.reweigh {
            let cells: Vec<String> = w.cells.iter().map(|(c, f)| format!("{c} ×{f:.2}")).collect();
            how.push(format!("reweighed by {a} ({}; {} rows without it)", cells.join(", "), w.rows_without_group));
        }
        out.push_str(&format!(
            "weighting: {}; worth {:.0} equally weighted rows (weights {:.2}–{:.2})\n",
            how.join("; "),
            w.effective_rows,
            w.min_weight,
            w.max_weight
        ));
    }
    if let Some(r) = &card.recruiter_preference {
        let e = &r.evidence;
        out.push_str(&format!(
            "blend: {:.0} % outcome model, {:.0} % recruiters' preferences, learnt from {} preference pairs ({} overrides) by {} recruiters on {} requisitions{}\n",
            100.0 * r.blend.outcomes,
            100.0 * r.blend.recruiter,
            e.pairs,
            e.overrides,
            e.recruiters,
            e.requisitions,
            if r.job_families.is_empty() {
                String::new()
            } else {
                format!("; job families with weights of their own: {}", r.job_families.join(", "))
            }
        ));
    }
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["metric (holdout)", "value"]);
    t.add_row(vec!["ROC AUC".to_string(), f(m.roc_auc)]);
    t.add_row(vec![
        format!("NDCG@{} per requisition ({} requisitions)", card.spec.evaluation.ndcg_k, m.ranking_groups),
        f(m.ndcg_at_k),
    ]);
    t.add_row(vec![format!("precision@{} per requisition", card.spec.evaluation.precision_k), f(m.precision_at_k)]);
    t.add_row(vec!["Brier score".to_string(), format!("{:.3}", m.brier)]);
    t.add_row(vec!["expected calibration error".to_string(), format!("{:.3}", m.expected_calibration_error)]);
    t.add_row(vec!["training ROC AUC".to_string(), f(m.train_roc_auc)]);
    out.push_str(&t.to_string());
    out.push('\n');
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["fairness (top-k selection)", "groups (rate, n)", "adverse impact ratio"]);
    for fr in &card.fairness {
        let groups: Vec<String> = fr
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{} {:.2} (n={}){}",
                    g.group,
                    g.selection_rate,
                    g.candidates,
                    if g.small { " small" } else { "" }
                )
            })
            .collect();
        t.add_row(vec![
            fr.attribute.clone(),
            groups.join(", "),
            match (fr.adverse_impact_ratio, fr.passes_four_fifths, fr.p_value) {
                (Some(r), Some(true), _) => format!("{r:.2} ok"),
                (Some(r), _, Some(p)) if p >= 0.05 => format!("{r:.2} below 0.8, not significant (p={p:.2})"),
                (Some(r), _, p) => format!("{r:.2} BELOW 0.8 (p={:.3})", p.unwrap_or(f64::NAN)),
                (None, _, _) => "—".into(),
            },
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    if card.gates.passed {
        out.push_str("gates: passed — eligible for promotion\n");
    } else {
        out.push_str(&format!("gates: FAILED — {}\n", card.gates.failures.join("; ")));
    }
    out
}

pub async fn run(global: &Global, args: Args) -> Result<ExitCode> {
    let live = global.lake()?;
    let registry = Registry::new(live.store().clone());
    let mut now = global.clock()?.now();
    let (lake, as_of_spec) = match args.as_of.as_deref() {
        None => (live, None),
        Some(v) => match v.split_once('/') {
            Some((name, version)) => {
                let card = registry.card(name, version).await.with_context(|| format!("--as-of {v}"))?;
                if card.training_data.table_versions.is_empty() {
                    anyhow::bail!(
                        "--as-of {v}: its card records no table versions (trained before the lake used Delta tables)"
                    );
                }
                // The same "today" as then, so the same hires are due.
                now = card.created_at;
                (live.at_versions(card.training_data.table_versions.clone()), Some(card.spec))
            }
            None => {
                let at = crate::context::parse_time(v)
                    .with_context(|| format!("--as-of {v}: neither NAME/vN nor a time"))?;
                (live.at_versions(live.versions_at(at).await?), None)
            }
        },
    };
    let spec = match (&args.model, as_of_spec) {
        (Some(path), _) => ModelSpec::load(path)?,
        (None, Some(spec)) => spec,
        (None, None) => anyhow::bail!("--model FILE is needed (only --as-of NAME/vN brings its own spec)"),
    };
    let opts = TrainOptions { now, actor: args.actor.clone(), grace_days: 14 };
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} fitting {msg} [{bar:30}] {pos}/{len}")
            .expect("static template"),
    );
    bar.set_message(spec.name.clone());
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let trained = hrloop_models::train_with_progress(&lake, &registry, &spec, &opts, &mut progress)
        .await
        .with_context(|| format!("training {}", spec.name))?;
    bar.finish_and_clear();
    if args.json {
        print_json(&trained.card)?;
    } else {
        println!("{}", render_card(&trained.card));
    }
    Ok(ExitCode::SUCCESS)
}
