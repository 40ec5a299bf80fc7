//! `hrloop experiments`: champion vs challenger — verdicts with their evidence, and the human
//! decision when a verdict is inconclusive.

use std::process::ExitCode;

use anyhow::{Result, bail};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_models::experiment::{self, ArmKpis, Decision, Policy, Rate, Verdict};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The latest verdict (or all with --all) with per-arm KPIs and intervals.
    Show {
        #[arg(default_value = "success12m_logistic")]
        model: String,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Analyse the running experiment now and store the verdict (does not act on it).
    Analyse {
        #[arg(default_value = "success12m_logistic")]
        model: String,
        /// Days the experiment must run before a promotion.
        #[arg(long, default_value_t = 14)]
        min_days: i64,
        /// Recruiter feedback rows needed per arm.
        #[arg(long, default_value_t = 100)]
        min_feedback: usize,
        #[arg(long)]
        json: bool,
    },
    /// A person decides: promote the challenger or withdraw it, with a reason (recorded as a
    /// verdict, in the changelog and the audit trail).
    Decide {
        #[arg(default_value = "success12m_logistic")]
        model: String,
        #[arg(long, value_parser = ["promote", "rollback"])]
        verdict: String,
        #[arg(long)]
        reason: String,
        /// Who decides. Defaults to $USER.
        #[arg(long, env = "USER", default_value = "unknown")]
        actor: String,
    },
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let lake = global.lake()?;
    let now = global.clock()?.now();
    match command {
        Command::Show { model, all, json } => {
            let mut verdicts = experiment::verdicts(&lake, &model, None).await?;
            if !all && let Some(last) = verdicts.pop() {
                verdicts = vec![last];
            }
            if json {
                print_json(&verdicts)?;
            } else if verdicts.is_empty() {
                println!(
                    "{model}: no verdicts yet (`hrloop experiments analyse {model}` or the daily pipeline makes one)"
                );
            } else {
                for v in &verdicts {
                    print_verdict(v);
                }
            }
            if !json && let Some(r) = hrloop_models::rejudge::latest(&lake, &model).await? {
                println!("\nre-judged on matured outcomes ({}): {}", r.at.format("%Y-%m-%d"), r.finding);
                for v in &r.versions {
                    println!("  {}: {} of {} hires met the label at {}", v.version, v.successes, v.hires, r.milestone);
                }
                for p in &r.shadow_pairs {
                    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
                    println!(
                        "  shadow pair {} (served) / {} (shadow) on {} hires: AUC {} vs {}",
                        p.served,
                        p.shadow,
                        p.hires,
                        f(p.auc_served),
                        f(p.auc_shadow)
                    );
                }
            }
        }
        Command::Analyse { model, min_days, min_feedback, json } => {
            let policy = Policy { min_days, min_feedback_per_arm: min_feedback, ..Policy::default() };
            let Some(v) = experiment::analyse(&lake, &model, &policy, Vec::new(), now).await? else {
                bail!(
                    "{model} has no challenger: start an experiment with `hrloop models promote {model} VERSION --alias challenger`"
                );
            };
            let v = experiment::record(&lake, v).await?;
            if json {
                print_json(&v)?;
            } else {
                print_verdict(&v);
            }
        }
        Command::Decide { model, verdict, reason, actor } => {
            let Some(mut v) = experiment::analyse(&lake, &model, &Policy::default(), Vec::new(), now).await? else {
                bail!("{model} has no challenger to decide about");
            };
            v.decision = if verdict == "promote" { Decision::Promote } else { Decision::Rollback };
            v.reason = format!("decided by {actor}: {reason}");
            v.decided_by = Some(actor.clone());
            let v = experiment::record(&lake, v).await?;
            let done = hrloop_scheduler::steps::act_on(&lake, &v, &actor, now).await.map_err(anyhow::Error::msg)?;
            println!("{model}: {done}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rate(r: &Rate) -> String {
    match (r.value, r.ci) {
        (Some(v), Some((lo, hi))) => format!("{:.1} % [{:.1}, {:.1}] n={}", v * 100.0, lo * 100.0, hi * 100.0, r.n),
        _ => "n/a".into(),
    }
}

fn print_verdict(v: &Verdict) {
    println!(
        "{}: {} vs champion {} ({} mode), running {} days since {} — verdict #{} {}",
        v.model,
        v.challenger,
        v.champion.as_deref().unwrap_or("none"),
        v.mode,
        v.days_running,
        v.started_at.format("%Y-%m-%d"),
        v.seq,
        v.decision.as_str().to_uppercase()
    );
    println!("  {}", v.reason);
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let arms: Vec<&ArmKpis> = v.arms.iter().collect();
    let mut header = vec!["KPI (95 % interval)".to_string()];
    header.extend(arms.iter().map(|a| format!("{} {}", a.arm, a.version.as_deref().unwrap_or(""))));
    t.set_header(header);
    let row = |name: &str, f: &dyn Fn(&ArmKpis) -> String| {
        let mut r = vec![name.to_string()];
        r.extend(arms.iter().map(|a| f(a)));
        r
    };
    t.add_row(row("requisitions", &|a| a.requisitions.to_string()));
    t.add_row(row("feedback rows", &|a| a.feedback.to_string()));
    t.add_row(row("recruiter agreement with top 5", &|a| rate(&a.agreement_top5)));
    t.add_row(row("override rate", &|a| rate(&a.override_rate)));
    t.add_row(row(
        "time to shortlist (days)",
        &|a| match (a.time_to_shortlist_days.value, a.time_to_shortlist_days.ci) {
            (Some(m), Some((lo, hi))) => format!("{m:.1} [{lo:.1}, {hi:.1}] n={}", a.time_to_shortlist_days.n),
            _ => "n/a".into(),
        },
    ));
    t.add_row(row("offer rate", &|a| rate(&a.offer_rate)));
    t.add_row(row("human review rate", &|a| rate(&a.human_review_rate)));
    for m in ["6m", "12m"] {
        t.add_row(row(&format!("retention at {m}"), &|a| a.retention.get(m).map_or("not matured".into(), rate)));
    }
    println!("{t}");
    if let Some(d) = &v.override_difference {
        println!(
            "  override rate, challenger minus champion: {:+.1} points; {:.0} % interval {:+.1} to {:+.1} ({}){}",
            d.estimate * 100.0,
            (1.0 - d.alpha) * 100.0,
            d.interval.0 * 100.0,
            d.interval.1 * 100.0,
            d.method(),
            d.narrowed_by.map_or(String::new(), |k| format!(
                "; adjusted for each recruiter's override rate before the experiment (CUPED), {:.0} % narrower",
                k * 100.0
            ))
        );
    }
    if let Some(p) = &v.power {
        println!("  power: {}", p.sentence(v.days_running));
    }
    if let Some(p) = v.srm_p_value {
        println!("  sample ratio check: p = {p:.3}{}", if p < 0.001 { " — MISMATCH" } else { "" });
    }
    for g in &v.guardrails {
        let state = if g.inconclusive {
            "?"
        } else if g.ok {
            "ok"
        } else {
            "FAILED"
        };
        println!("  guardrail {}: {state} — {}", g.name, g.detail);
    }
}
