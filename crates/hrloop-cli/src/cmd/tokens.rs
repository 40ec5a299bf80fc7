//! `hrloop tokens`: API tokens and their roles.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use hrloop_serve::{Role, TokenStore};

use crate::context::{Global, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a token; it is printed once and only its hash is kept.
    Add {
        name: String,
        /// recruiter, hr_viewer, data_team, on_call or admin.
        #[arg(long)]
        role: String,
    },
    /// Token names, roles and whether they are revoked (never the tokens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name; the server stops accepting it within a second.
    Revoke { name: String },
}

pub fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let lake = global.lake()?;
    let root = global
        .state_dir(&lake)
        .context("tokens live in a local directory: give --state-dir for a store in a bucket")?;
    let store = TokenStore::in_store(&root);
    match command {
        Command::Add { name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let token = store.add(&name, role, global.clock()?.now())?;
            println!("{token}");
            eprintln!("token {name:?} ({}) created; it is shown only now", role.name());
        }
        Command::List { json } => {
            let entries = store.list()?;
            if json {
                print_json(&entries.iter().map(|e| serde_json::json!({"name": e.name, "role": e.role, "created_at": e.created_at, "revoked": e.revoked})).collect::<Vec<_>>())?;
            } else {
                for e in entries {
                    println!(
                        "{:<24} {:<10} {} {}",
                        e.name,
                        e.role.name(),
                        e.created_at.format("%Y-%m-%d"),
                        if e.revoked { "revoked" } else { "active" }
                    );
                }
            }
        }
        Command::Revoke { name } => {
            if !store.revoke(&name)? {
                bail!("no active token named {name:?}");
            }
            println!("revoked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
