//! `hrloop models`: the registry — versions, model cards, champion/challenger, history.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_models::{Alias, ChangeRequest, Registry};
use serde::Serialize;

use crate::cmd::train::render_card;
use crate::context::{Global, parse_time, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every model with its versions, champion and challenger.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The model card of one version, e.g. `success12m_logistic/v3`.
    Show {
        #[arg(value_name = "NAME/VERSION")]
        model_version: String,
        #[arg(long)]
        json: bool,
    },
    /// Every champion/challenger change with who, when and why; `--at` says what was live then.
    History {
        name: String,
        /// Show the aliases as they were at this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Make VERSION the champion (or the challenger with --alias challenger).
    Promote {
        name: String,
        #[arg(value_name = "VERSION")]
        model_version: String,
        /// Why, in words the on-call engineer and HR will read later.
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, default_value = "champion")]
        alias: AliasArg,
        /// Promote even though the version failed its gates (the history records it).
        #[arg(long)]
        force: bool,
        /// Who (recorded in the history). Defaults to $USER.
        #[arg(long, env = "USER", default_value = "unknown")]
        actor: String,
        #[arg(long)]
        json: bool,
    },
    /// What changed for HR, in plain language: each promotion and withdrawn challenger, with
    /// who or what decided.
    Changelog {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Put the previous champion back (or --to a named version).
    Rollback {
        name: String,
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "unknown")]
        actor: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AliasArg {
    Champion,
    Challenger,
}

#[derive(Debug, Serialize)]
struct ModelRow {
    name: String,
    versions: Vec<String>,
    champion: Option<String>,
    challenger: Option<String>,
}

pub async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let lake = global.lake()?;
    let registry = Registry::new(lake.store().clone());
    let now = global.clock()?.now();
    match command {
        Command::List { json } => {
            let mut rows = Vec::new();
            for name in registry.names().await? {
                let state = registry.state(&name).await?;
                rows.push(ModelRow {
                    versions: registry.versions(&name).await?,
                    champion: state.champion,
                    challenger: state.challenger,
                    name,
                });
            }
            if json {
                print_json(&rows)?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["model", "versions", "champion", "challenger"]);
                for r in rows {
                    t.add_row(vec![
                        r.name,
                        r.versions.join(" "),
                        r.champion.unwrap_or_else(|| "—".into()),
                        r.challenger.unwrap_or_else(|| "—".into()),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::Show { model_version, json } => {
            let Some((name, v)) = model_version.split_once('/') else {
                bail!("give the version as NAME/VERSION, e.g. success12m_logistic/v1")
            };
            let card = registry.card(name, v).await?;
            if json {
                print_json(&card)?;
            } else {
                println!("{}", render_card(&card));
            }
        }
        Command::Changelog { name, json } => {
            let entries = registry.changelog(&name).await?;
            if json {
                print_json(&entries)?;
            } else if entries.is_empty() {
                println!("{name}: no changes recorded yet (promotions by experiment verdicts are listed here)");
            } else {
                for e in &entries {
                    println!(
                        "{}  {} {} → {} (decided by {})\n    {}",
                        e.at.format("%Y-%m-%d"),
                        e.change,
                        e.from_version.as_deref().unwrap_or("none"),
                        e.to_version.as_deref().unwrap_or("none"),
                        e.decided_by,
                        e.summary
                    );
                }
            }
        }
        Command::History { name, at, json } => {
            let events = registry.events(&name).await?;
            let at = at.as_deref().map(parse_time).transpose()?;
            let state = match at {
                Some(t) => registry.state_at(&name, t).await?,
                None => registry.state(&name).await?,
            };
            if json {
                print_json(&serde_json::json!({ "name": name, "at": at, "state": state, "events": events }))?;
            } else {
                let mut t = TextTable::new();
                t.load_style(UTF8_FULL_CONDENSED);
                t.set_header(vec!["#", "when", "who", "change", "reason"]);
                for e in &events {
                    let change = format!(
                        "{:?} {:?}: {} → {}",
                        e.alias,
                        e.action,
                        e.from_version.as_deref().unwrap_or("none"),
                        e.to_version.as_deref().unwrap_or("none")
                    )
                    .to_lowercase();
                    t.add_row(vec![e.seq.to_string(), e.at.to_rfc3339(), e.actor.clone(), change, e.reason.clone()]);
                }
                println!("{t}");
                let when = at.map_or("now".to_string(), |t| format!("at {}", t.to_rfc3339()));
                println!(
                    "{when}: champion {}, challenger {}",
                    state.champion.as_deref().unwrap_or("none"),
                    state.challenger.as_deref().unwrap_or("none")
                );
            }
        }
        Command::Promote { name, model_version: version, reason, alias, actor, force, json } => {
            let card = registry.card(&name, &version).await?;
            if !card.gates.passed && !force {
                bail!(
                    "{name}/{version} failed its gates ({}); promote with --force to override, and say why in --reason",
                    card.gates.failures.join("; ")
                );
            }
            let req = ChangeRequest {
                actor,
                reason,
                evidence: serde_json::json!({ "metrics": card.metrics, "gates": card.gates, "forced": force }),
                at: now,
            };
            let alias = match alias {
                AliasArg::Champion => Alias::Champion,
                AliasArg::Challenger => Alias::Challenger,
            };
            let e = registry.promote(&name, &version, alias, req).await.context("promote")?;
            record(&lake, &e, "model.promote").await?;
            if json {
                print_json(&e)?;
            } else {
                println!(
                    "{name}: {} is now {} (was {}); event {}",
                    version,
                    format!("{alias:?}").to_lowercase(),
                    e.from_version.as_deref().unwrap_or("none"),
                    e.seq
                );
                if !card.gates.passed {
                    println!("note: promoted although it failed its gates: {}", card.gates.failures.join("; "));
                }
            }
        }
        Command::Rollback { name, to, reason, actor, json } => {
            let req = ChangeRequest { actor, reason, evidence: serde_json::Value::Null, at: now };
            let e = registry.rollback(&name, to.as_deref(), req).await.context("rollback")?;
            record(&lake, &e, "model.rollback").await?;
            if json {
                print_json(&e)?;
            } else {
                println!(
                    "{name}: champion rolled back from {} to {}; event {}",
                    e.from_version.as_deref().unwrap_or("none"),
                    e.to_version.as_deref().unwrap_or("none"),
                    e.seq
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Model state changes go to the audit trail too.
async fn record(lake: &hrloop_lake::Lake, e: &hrloop_models::AliasEvent, action: &str) -> Result<()> {
    let entry = hrloop_lake::audit::AuditEntry {
        at: e.at,
        actor: e.actor.clone(),
        action: action.into(),
        target: format!("model {}", e.name),
        details: serde_json::json!({"seq": e.seq, "alias": e.alias, "from": e.from_version, "to": e.to_version, "reason": e.reason}),
    };
    hrloop_lake::audit::Audit::new(lake.store().clone()).append(vec![entry]).await?;
    Ok(())
}
