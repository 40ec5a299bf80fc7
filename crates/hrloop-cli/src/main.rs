//! `hrloop`: the command line. Thin: it parses arguments, builds the context (store, clock,
//! key) and calls into the library crates. Errors end the process with one line and exit 1.

mod cmd;
mod context;
mod env;
mod modes;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use context::Global;

/// mimalloc: the serving path allocates per candidate and glibc's allocator spent a third of
/// the CPU in malloc/free under load (measured with perf in benches/serve).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hrloop closes the feedback loop for HR ranking models: it ingests hiring decisions and the
/// outcomes that arrive 3, 6, 12 and 24 months after each hire into a Parquet lake, so models
/// can be retrained, compared and promoted or rolled back on what really happened.
///
/// Start with `hrloop up --demo`: it fills ./data with a simulated company's history, trains a
/// champion, serves rankings on 127.0.0.1:8080 and runs the scheduled pipelines.
#[derive(Debug, Parser)]
#[command(name = "hrloop", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Server and scheduler in one process on the local store; `--demo` seeds an empty store first.
    Up(cmd::up::Args),
    /// Simulate a company and ingest its history into the store: the quickest way to see hrloop work.
    Demo(cmd::demo::Args),
    /// Load an ATS or HRIS export (CSV, JSON lines, Parquet) into the lake through a mapping.
    Ingest(cmd::ingest::Args),
    /// Which 3/6/12/24-month outcomes are due, arrived and missing, per hire cohort.
    #[command(subcommand)]
    Milestones(cmd::milestones::Command),
    /// Write a simulated company's ATS and HRIS exports (with personal data and messy rows).
    Simulate(cmd::simulate::Args),
    /// Inspect the lake (tables, Delta versions, files, row counts), or migrate a store from
    /// before Delta tables.
    #[command(subcommand)]
    Lake(cmd::lake::Command),
    /// Train a new model version on matured outcomes and register it with its model card.
    Train(cmd::train::Args),
    /// The model registry: list, show cards, history, promote and roll back champions.
    #[command(subcommand)]
    Models(cmd::models::Command),
    /// Which inputs (interview, assessment, ...) predict later performance and retention.
    Validity(cmd::validity::Args),
    /// What recruiters weigh differently from the model, learned from their overrides.
    #[command(subcommand)]
    Insights(cmd::insights::Command),
    /// Documents for auditors, works councils and HR: the bias audit, a version's technical documentation.
    #[command(subcommand)]
    Report(cmd::report::Command),
    /// Refit a version's score-to-probability calibration on the newest matured outcomes.
    Calibrate(cmd::calibrate::Args),
    /// Serve ranked shortlists over HTTP (A/B or shadow, human review routing, decision log).
    Serve(cmd::serve::Args),
    /// API tokens: add (printed once), list, revoke.
    #[command(subcommand)]
    Tokens(cmd::tokens::Command),
    /// The tamper-evident audit trail: show it, verify it.
    #[command(subcommand)]
    Audit(cmd::audit::Command),
    /// Right to erasure: remove a person from every table for good, or prove they are gone.
    Erase(cmd::privacy::EraseArgs),
    /// Delete what the retention policy says has aged out (data/retention.toml).
    Purge(cmd::privacy::PurgeArgs),
    /// Scheduled jobs (pipelines/*.toml): list, status, history, run one now, run what is due.
    Pipelines {
        #[command(flatten)]
        place: cmd::pipelines::Where,
        #[command(subcommand)]
        command: cmd::pipelines::Command,
    },
    /// Champion vs challenger: verdicts with evidence, and the human decision when inconclusive.
    #[command(subcommand)]
    Experiments(cmd::experiments::Command),
}

fn main() -> ExitCode {
    // Before anything is written: the store holds personal data (see modes.rs).
    modes::owner_only();
    let cli = Cli::parse();
    context::init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => cmd::demo::run(&cli.global, args).await,
            Command::Ingest(args) => cmd::ingest::run(&cli.global, args).await,
            Command::Milestones(c) => cmd::milestones::run(&cli.global, c).await,
            Command::Simulate(args) => cmd::simulate::run(&cli.global, args).await,
            Command::Lake(c) => cmd::lake::run(&cli.global, c).await,
            Command::Train(args) => cmd::train::run(&cli.global, args).await,
            Command::Models(c) => cmd::models::run(&cli.global, c).await,
            Command::Validity(args) => cmd::validity::run(&cli.global, args).await,
            Command::Insights(c) => cmd::insights::run(&cli.global, c).await,
            Command::Report(c) => cmd::report::run(&cli.global, c).await,
            Command::Calibrate(args) => cmd::calibrate::run(&cli.global, args).await,
            Command::Serve(args) => cmd::serve::run(&cli.global, args).await,
            Command::Tokens(c) => cmd::tokens::run(&cli.global, c),
            Command::Audit(c) => cmd::audit::run(&cli.global, c).await,
            Command::Erase(args) => cmd::privacy::erase(&cli.global, args).await,
            Command::Purge(args) => cmd::privacy::purge(&cli.global, args).await,
            Command::Pipelines { place, command } => cmd::pipelines::run(&cli.global, place, command).await,
            Command::Experiments(c) => cmd::experiments::run(&cli.global, c).await,
            Command::Up(args) => cmd::up::run(&cli.global, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
