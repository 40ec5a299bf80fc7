//! Options every command shares, and what they turn into: the lake, the clock, the key.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use hrloop_core::{Clock, ManualClock, SystemClock};
use hrloop_ingest::{KeySource, Pseudonymiser, Taxonomy};
use hrloop_lake::Lake;

use crate::env;

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Where hrloop keeps its data: a directory, or s3://bucket/prefix, gs://..., az://...
    /// Tables live under <store>/lake/<table>/.
    #[arg(long, global = true, env = env::STORE, default_value = "./data", value_name = "URL")]
    pub store: String,

    /// Pseudonymisation key file (hex, mode 0600). Alternatively set HRLOOP_PSEUDONYM_KEY.
    #[arg(long, global = true, env = env::KEY_FILE, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Demo only: create (or reuse) a random key at <store>/secrets/pseudonym.key.
    #[arg(long, global = true)]
    pub demo_key: bool,

    /// Pretend it is this time (RFC 3339 or YYYY-MM-DD); for reproducible reports and tests.
    #[arg(long, global = true, env = env::NOW, value_name = "TIME")]
    pub now: Option<String>,

    /// Folder of the vocabularies (job families, skills) used in quality reports.
    #[arg(long, global = true, default_value = "data/taxonomy", value_name = "DIR")]
    pub taxonomy: PathBuf,

    /// More log output (-v info, -vv debug). HRLOOP_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    pub fn lake(&self) -> Result<Lake> {
        Lake::open(&self.store).with_context(|| format!("cannot open store {}", self.store))
    }

    pub fn clock(&self) -> Result<Arc<dyn Clock>> {
        Ok(match &self.now {
            None => Arc::new(SystemClock),
            Some(text) => Arc::new(ManualClock::new(parse_time(text)?)),
        })
    }

    pub fn taxonomy(&self) -> Result<Taxonomy> {
        Ok(Taxonomy::load(&self.taxonomy)?)
    }

    /// The pseudonymiser, or a refusal that says how to provide a key.
    pub fn pseudonymiser(&self, lake: &Lake) -> Result<Pseudonymiser> {
        let source = if self.demo_key {
            let Some(root) = lake.store().local_root() else {
                bail!("--demo-key needs a local store; give a real key with --key-file for {}", self.store)
            };
            KeySource::DemoFile(root.join("secrets").join("pseudonym.key"))
        } else if let Some(path) = &self.key_file {
            KeySource::File(path.clone())
        } else if let Ok(hex) = std::env::var(env::PSEUDONYM_KEY) {
            KeySource::Hex(hex)
        } else {
            bail!(
                "no pseudonymisation key: identifiers cannot be stored without one. Set {}=PATH \
                 (create it with `openssl rand -hex 32 > hrloop.key && chmod 600 hrloop.key`) or {}=HEX, \
                 or pass --demo-key to create a throwaway key for a demo",
                env::KEY_FILE,
                env::PSEUDONYM_KEY
            )
        };
        Ok(Pseudonymiser::load(&source)?)
    }
}

pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{text:?} is not a time: use RFC 3339 (2026-03-01T12:00:00Z) or YYYY-MM-DD"))?;
    Ok(d.and_hms_opt(12, 0, 0).expect("noon").and_utc())
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
