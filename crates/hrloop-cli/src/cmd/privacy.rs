//! `hrloop erase` and `hrloop purge`: the right to erasure and the retention policy.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use hrloop_privacy::erase::{ErasureRequest, VerifyReport};
use hrloop_privacy::retention::Policy;

use crate::context::{Global, print_json};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["person", "verify"])))]
pub struct EraseArgs {
    /// Erase this person: their id as the ATS or HRIS knows it (candidate, employee or
    /// recruiter id). Every row about them is removed from every table, a tombstone keeps them
    /// from coming back with an old export, and the model versions trained on them are listed.
    #[arg(long, value_name = "EXTERNAL_ID", requires = "reason")]
    person: Option<String>,
    /// Why (e.g. "GDPR art. 17 request #123"). Stored in the audit trail: do not put the
    /// person's name here.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Only check: scan the whole store (lake, quarantine, decision logs, reports) for this
    /// person and exit 1 if anything is found.
    #[arg(long, value_name = "EXTERNAL_ID", conflicts_with = "reason")]
    verify: Option<String>,
    /// Who asks (recorded in the audit trail). Defaults to $USER.
    #[arg(long, env = "USER", default_value = "unknown")]
    actor: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// The retention policy: how long each kind of data is kept.
    #[arg(long, default_value = "data/retention.toml", value_name = "FILE")]
    policy: PathBuf,
    /// Report what would be deleted, delete nothing. (A row two rules match is counted under
    /// both; the real run removes it once.)
    #[arg(long)]
    dry_run: bool,
    /// Who runs it (recorded in the audit trail). Defaults to $USER.
    #[arg(long, env = "USER", default_value = "unknown")]
    actor: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn erase(global: &Global, args: EraseArgs) -> Result<ExitCode> {
    let lake = global.lake()?;
    let pseudo = global.pseudonymiser(&lake)?;
    // Decision logs of servers that stopped hold rows not yet in the lake: move them in first
    // (the mover drops rows of erased people), so the scan below covers everything.
    let live_logs = match global.state_dir(&lake) {
        Some(root) => hrloop_serve::decision_log::move_abandoned(&lake, &root.join("_wal")).await?,
        None => Vec::new(),
    };
    if let Some(id) = args.verify {
        let report = hrloop_privacy::verify(&lake, &pseudo, &id, &args.actor, global.clock()?.now()).await?;
        if args.json {
            print_json(&report)?;
        } else {
            print_verification(&report);
        }
        return Ok(if report.absent { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let (Some(person), Some(reason)) = (args.person, args.reason) else { bail!("give --person and --reason") };
    if reason.trim().is_empty() {
        bail!("--reason must say why the person is erased");
    }
    let req = ErasureRequest { external_id: person, reason, actor: args.actor, at: global.clock()?.now() };
    let report = hrloop_privacy::erase(&lake, &pseudo, &req).await?;
    if args.json {
        print_json(&report)?;
    } else {
        println!("erasure {}: {} rows removed", report.erasure_id, report.rows_removed);
        let mut t = TextTable::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec!["table", "rows removed", "files rewritten", "files deleted", "Delta version"]);
        for r in &report.tables {
            t.add_row(vec![
                r.table.clone(),
                r.rows_removed.to_string(),
                r.files_rewritten.len().to_string(),
                r.files_deleted.len().to_string(),
                r.version
                    .map_or("-".to_string(), |v| format!("v{v}: earlier versions holding the rows are unreadable")),
            ]);
        }
        println!("{t}");
        if report.trained_on_person.is_empty() {
            println!("no registered model version was trained on this person's data");
        } else {
            println!("model versions trained on this person's data (decide whether to retrain):");
            for h in &report.trained_on_person {
                let v: Vec<String> = h.table_versions.iter().map(|(t, v)| format!("{t} v{v}")).collect();
                println!(
                    "  - {}/{} (trained {} on {}; `train --as-of` it can no longer read those versions)",
                    h.model,
                    h.version,
                    h.trained_at.format("%Y-%m-%d"),
                    if v.is_empty() { "files from before Delta".to_string() } else { v.join(", ") }
                );
            }
        }
        print_verification(&report.verification);
    }
    if !live_logs.is_empty() {
        eprintln!(
            "note: {} running server(s) hold decision logs not yet in the lake; rows about this person there are \
             dropped when they are moved (within the servers' flush interval)",
            live_logs.len()
        );
    }
    Ok(if report.verification.absent { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_verification(v: &VerifyReport) {
    if v.absent {
        println!(
            "verified: none of the person's {} pseudonyms appears in any of {} files scanned (not scanned: {})",
            v.pseudonyms_checked,
            v.files_scanned,
            v.not_scanned.join(", ")
        );
    } else {
        println!("FOUND: the person still appears in {} files:", v.findings.len());
        for f in &v.findings {
            println!("  - {} ({} rows or occurrences)", f.location, f.count);
        }
    }
}

pub async fn purge(global: &Global, args: PurgeArgs) -> Result<ExitCode> {
    let lake = global.lake()?;
    let now = global.clock()?.now();
    let policy = Policy::load(&args.policy, now)?;
    let report = hrloop_privacy::purge(&lake, &policy, now, args.dry_run, &args.actor).await?;
    if args.json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = TextTable::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec!["rule", "older than", "rows", "files rewritten", "files deleted"]);
    for r in &report.rules {
        let rewritten: usize = r.tables.iter().map(|t| t.files_rewritten.len()).sum();
        let deleted: usize = r.tables.iter().map(|t| t.files_deleted.len()).sum();
        let rule = match r.applicants {
            Some(n) => format!("{} ({n} applicants)", r.rule),
            None => r.rule.clone(),
        };
        t.add_row(vec![
            rule,
            r.cutoff.format("%Y-%m-%d").to_string(),
            r.rows_removed.to_string(),
            rewritten.to_string(),
            deleted.to_string(),
        ]);
    }
    println!("{t}");
    let verb = if report.dry_run { "would remove" } else { "removed" };
    println!("retention purge {verb} {} rows", report.rows_removed);
    Ok(ExitCode::SUCCESS)
}
