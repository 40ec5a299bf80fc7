//! `hrloop insights overrides`: what recruiters weigh differently from the model, learned from
//! their overrides; and the rendering of its simulator backtest (`hrloop simulate --overrides`).

use std::process::ExitCode;

use anyhow::Result;
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_models::preference::{Blend, MIN_PAIRS_FOR_WEIGHTS, OverridesReport, overrides_report};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// What recruiters weigh differently from the model, from their overrides: per job family
    /// and reason code, how the candidates they chose differ from the model's pick they passed
    /// over, and a preference model's weights beside the champion's.
    #[command(after_help = "A preference pair is a candidate a recruiter hired or advanced over one they\n\
        rejected, in the same served ranking; an override is a pair where the model had ranked the\n\
        rejected candidate higher. Differences are chosen minus the model's pick, in the feature's\n\
        own units, with a 95 % interval over requisitions (±). \"beyond chance\" means the interval\n\
        excludes 0. Weights are per standard deviation of the feature: log-odds of being preferred\n\
        by a recruiter, beside the champion's log-odds of success (when the champion is linear).\n\
        A large gap is what recruiters weigh that the model does not: a signal to look into, not a\n\
        truth (recruiters' preferences can carry bias; a blended model must still win its verdict\n\
        and pass the fairness gates).\n\n\
        Example: hrloop insights overrides --model success6m_logistic --days 180")]
    Overrides {
        /// The model whose champion the recruiters are compared with.
        #[arg(long, default_value = "success6m_logistic")]
        model: String,
        /// Feedback on rankings served in the last DAYS days.
        #[arg(long, default_value_t = 365, value_name = "DAYS")]
        days: i64,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    match command {
        Command::Overrides { model, days, json } => {
            anyhow::ensure!(days > 0, "--days must be at least 1");
            let lake = global.lake()?;
            let registry = hrloop_models::Registry::new(lake.store().clone());
            let report = overrides_report(&lake, &registry, &model, global.clock()?.now(), days).await?;
            if json {
                print_json(&report)?;
            } else {
                println!("{}", render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An empty table in the CLI's style.
fn table() -> TextTable {
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t
}

pub fn render(r: &OverridesReport) -> String {
    let e = &r.insights.evidence;
    let mut out = format!(
        "Recruiter overrides since {} ({} pairs, {} against the model, from {} recruiters on {} requisitions)\n",
        r.since.format("%Y-%m-%d"),
        e.pairs,
        e.overrides,
        e.recruiters,
        e.requisitions
    );
    if e.overrides == 0 {
        out.push_str("No overrides yet: recruiters have not gone against a served ranking in this window.\n");
        return out;
    }
    for s in &r.insights.sentences {
        out.push_str(&format!("  {s}\n"));
    }
    let mut t = table();
    t.set_header(vec!["job family", "reason", "overrides", "share", "chosen − model's pick (95 %)"]);
    for g in &r.insights.groups {
        let diffs: Vec<String> = g
            .differences
            .iter()
            .take(3)
            .map(|d| {
                let m = d.margin.map_or("—".to_string(), |m| format!("±{m:.2}"));
                format!("{} {:+.2} {m}{}", d.feature, d.mean, if d.clear() { "" } else { " (chance)" })
            })
            .collect();
        t.add_row(vec![
            g.job_family.clone(),
            g.reason.clone().unwrap_or_else(|| "(all)".into()),
            g.overrides.to_string(),
            format!("{:.0} %", 100.0 * g.share),
            diffs.join("\n"),
        ]);
    }
    out.push_str(&format!("\n{t}\n"));
    if !r.selection.is_empty() {
        let mut f = table();
        f.set_header(vec![
            "attribute",
            "group",
            "candidates",
            "model's top k (impact ratio)",
            "recruiters' choices (impact ratio)",
        ]);
        let cell = |rate: f64, ratio: Option<f64>, small: bool| {
            let ratio = match (ratio, small) {
                (Some(x), _) => format!("{x:.2}"),
                (None, true) => "too few".into(),
                (None, false) => "—".into(),
            };
            format!("{:.1} % ({ratio})", 100.0 * rate)
        };
        for g in &r.selection {
            f.add_row(vec![
                g.attribute.clone(),
                g.group.clone(),
                g.candidates.to_string(),
                cell(g.top_k_rate, g.top_k_impact_ratio, g.small),
                cell(g.chosen_rate, g.chosen_impact_ratio, g.small),
            ]);
        }
        out.push_str(&format!(
            "\nSelection side by side, in the rankings recruiters decided on (impact ratio: the group's rate over the highest group's):\n{f}\n"
        ));
    }
    if r.weights.is_empty() {
        out.push_str(&format!("(A preference model is fitted from {MIN_PAIRS_FOR_WEIGHTS} pairs on.)\n"));
        return out;
    }
    let mut w = table();
    let champion = r.champion.as_deref().map_or("no champion".to_string(), |c| format!("{} {c}", r.model));
    w.set_header(vec![
        "job family".to_string(),
        "feature".into(),
        "recruiters".into(),
        format!("outcome model ({champion})"),
    ]);
    let mut shown: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for c in &r.weights {
        let n = shown.entry(&c.job_family).or_default();
        *n += 1;
        if *n > 4 {
            continue;
        }
        w.add_row(vec![
            c.job_family.clone(),
            c.feature.clone(),
            format!("{:+.2}", c.recruiters),
            c.outcome_model.map_or("—".into(), |v| format!("{v:+.2}")),
        ]);
    }
    out.push_str(&format!(
        "\nWeights per standard deviation (largest gaps first; recruiters: log-odds of being preferred, outcome model: of success):\n{w}\n"
    ));
    out
}

/// `hrloop simulate --overrides`: run the backtest on `replications` companies and print its
/// three answers (the first company in full, then every company's and the pooled answers).
pub fn backtest(
    seed: u64,
    requisitions_per_month: u32,
    blend: Blend,
    replications: usize,
    json: bool,
) -> Result<ExitCode> {
    use hrloop_loop::overrides::{BacktestConfig, replicate};
    anyhow::ensure!(replications >= 1, "--replications must be at least 1");
    let started = std::time::Instant::now();
    let cfg = BacktestConfig { seed, requisitions_per_month, blend, ..BacktestConfig::default() };
    let all = replicate(&cfg, replications)?;
    if json {
        print_json(&all)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &all.runs[0];
    println!(
        "Backtest of recruiter overrides as training signal (seed {seed}): {} requisitions of feedback, {} held out ({} pairs)\n",
        r.training_requisitions, r.held_out_requisitions, r.held_out_pairs
    );
    let mut t = table();
    t.set_header(vec!["overrides", "pairs", "preference model", "outcome model", "difference (95 %)"]);
    for c in &r.curve {
        t.add_row(vec![
            c.overrides.to_string(),
            c.pairs.to_string(),
            format!("{:.1} %", 100.0 * c.preference_accuracy),
            format!("{:.1} %", 100.0 * c.outcome_accuracy),
            format!("[{:+.1}, {:+.1}] points", 100.0 * c.difference_low, 100.0 * c.difference_high),
        ]);
    }
    println!("1. Predicting which candidate of a held-out pair the recruiter chose:\n{t}");
    match r.overrides_needed {
        Some(n) => println!(
            "   The preference model predicts recruiters better than the outcome model from {n} overrides on.\n"
        ),
        None => {
            println!("   The preference model did not predict recruiters better than the outcome model at any step.\n")
        }
    }
    let mut q = table();
    q.set_header(vec![
        "ranking",
        "hires",
        "true quality of hire",
        "override rate",
        "top 5: women / men (ratio)",
        "recruiters' choices: women / men (ratio)",
        "chosen of the top 5: women / men (ratio)",
    ]);
    for k in [&r.outcome_ranking, &r.blended_ranking] {
        q.add_row(vec![
            k.name.clone(),
            k.hires.to_string(),
            format!("{:.3}", k.quality),
            format!("{:.1} %", 100.0 * k.override_rate),
            format!("{:.2} % / {:.2} % ({:.2})", 100.0 * k.top5_rate_women, 100.0 * k.top5_rate_men, k.top5_ratio),
            format!(
                "{:.2} % / {:.2} % ({:.2})",
                100.0 * k.chosen_rate_women,
                100.0 * k.chosen_rate_men,
                k.chosen_ratio
            ),
            format!(
                "{:.0} % / {:.0} % ({:.2})",
                100.0 * k.chosen_given_top5_women,
                100.0 * k.chosen_given_top5_men,
                k.chosen_given_top5_ratio
            ),
        ]);
    }
    println!(
        "2. The blend ({:.0} % outcome, {:.0} % recruiter appeal) against the outcome model on the held-out requisitions:\n{q}",
        100.0 * r.blend.outcomes,
        100.0 * r.blend.recruiter
    );
    println!(
        "   Blend − outcome model, true quality of hire per requisition: {:+.4} [{:+.4}, {:+.4}] (95 %).\n",
        r.quality_difference, r.quality_difference_low, r.quality_difference_high
    );
    let o = &r.outcome_ranking;
    println!(
        "3. Bias in the overrides: recruiters chose {:.0} % of the women and {:.0} % of the men the outcome model put in its top 5 (ratio {:.2});\n   the selection ratio women / men goes from {:.2} in the top 5 to {:.2} among the recruiters' choices.\n",
        100.0 * o.chosen_given_top5_women,
        100.0 * o.chosen_given_top5_men,
        o.chosen_given_top5_ratio,
        o.top5_ratio,
        o.chosen_ratio
    );
    let mut w = table();
    w.set_header(vec!["feature", "outcome model", "recruiters: customer support", "recruiters: software engineering"]);
    for x in &r.weights {
        w.add_row(vec![
            x.feature.clone(),
            format!("{:+.2}", x.outcome),
            format!("{:+.2}", x.preference_customer_support),
            format!("{:+.2}", x.preference_software_engineering),
        ]);
    }
    println!("What each model weighs, per standard deviation:\n{w}");
    if all.runs.len() > 1 {
        let mut p = table();
        p.set_header(vec![
            "seed",
            "overrides needed",
            "blend − outcome: quality of hire (95 %)",
            "override rate: outcome / blend",
            "chosen of the top 5: women / men",
            "selection ratio women / men: top 5 → choices",
        ]);
        for x in &all.runs {
            p.add_row(vec![
                x.seed.to_string(),
                x.overrides_needed.map_or("never".into(), |n| n.to_string()),
                format!(
                    "{:+.4} [{:+.4}, {:+.4}]",
                    x.quality_difference, x.quality_difference_low, x.quality_difference_high
                ),
                format!(
                    "{:.1} % / {:.1} %",
                    100.0 * x.outcome_ranking.override_rate,
                    100.0 * x.blended_ranking.override_rate
                ),
                format!("{:.2}", x.outcome_ranking.chosen_given_top5_ratio),
                format!("{:.2} → {:.2}", x.outcome_ranking.top5_ratio, x.outcome_ranking.chosen_ratio),
            ]);
        }
        println!(
            "\nThe same on {} companies (seeds {}..{}):\n{p}",
            all.runs.len(),
            seed,
            seed + all.runs.len() as u64 - 1
        );
        println!(
            "Pooled: overrides needed (median) {}; blend − outcome quality of hire {:+.4} [{:+.4}, {:+.4}] (95 %);\n\
             override rate {:.1} % → {:.1} % with the blend; recruiters chose women of the top 5 at {:.2}× the rate of men;\n\
             selection ratio women / men {:.2} in the top 5, {:.2} among the recruiters' choices.",
            all.overrides_needed_median.map_or("never".into(), |n| n.to_string()),
            all.quality_difference,
            all.quality_difference_low,
            all.quality_difference_high,
            100.0 * all.override_rate_outcome,
            100.0 * all.override_rate_blend,
            all.chosen_given_top5_ratio,
            all.top5_ratio,
            all.chosen_ratio
        );
    }
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
