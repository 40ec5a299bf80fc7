//! Options every command shares, and what they turn into: the lake, the clock, the key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use hrloop_core::{Clock, ManualClock, SystemClock};
use hrloop_ingest::{KeySource, Pseudonymiser, Taxonomy};
use hrloop_lake::Lake;

use crate::{env, modes};

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Where hrloop keeps its data: a directory, or s3://bucket/prefix, gs://..., az://...
    /// Tables live under <store>/lake/<table>/.
    #[arg(long, global = true, env = env::STORE, default_value = "./data", value_name = "URL")]
    pub store: String,

    /// Pseudonymisation key file (hex, mode 0600). Alternatively set HRLOOP_PSEUDONYM_KEY.
    /// Every command uses the same key: this file, else HRLOOP_PSEUDONYM_KEY, else (demos only)
    /// the demo key.
    #[arg(long, global = true, env = env::KEY_FILE, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Demo only: when no key is configured, create (or reuse) a random key at
    /// <store>/secrets/pseudonym.key. `hrloop demo` and `hrloop up --demo` imply it.
    #[arg(long, global = true)]
    pub demo_key: bool,

    /// Pretend it is this time (RFC 3339 or YYYY-MM-DD); for reproducible reports and tests.
    #[arg(long, global = true, env = env::NOW, value_name = "TIME")]
    pub now: Option<String>,

    /// Folder of the vocabularies (job families, skills) used in quality reports.
    #[arg(long, global = true, default_value = "data/taxonomy", value_name = "DIR")]
    pub taxonomy: PathBuf,

    /// A local directory for what a server keeps on its own disk: the decision write-ahead log
    /// (`_wal/`, fsynced before a ranking is answered) and the API tokens. Default: the store
    /// itself when it is a directory; needed when the store is a bucket (s3://...).
    #[arg(long, global = true, env = env::STATE_DIR, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// More log output (-v info, -vv debug). HRLOOP_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The lake; the first time in a process, a local store is also checked for anything others
    /// can read.
    pub fn lake(&self) -> Result<Lake> {
        let lake = Lake::open(&self.store).with_context(|| format!("cannot open store {}", self.store))?;
        if let Some(root) = lake.store().local_root() {
            static CHECKED: Once = Once::new();
            CHECKED.call_once(|| modes::warn_if_exposed(root));
        }
        Ok(lake)
    }

    /// Where the server's write-ahead log and tokens live: `--state-dir`, else the store's own
    /// directory (`None` for a bucket store without `--state-dir`).
    pub fn state_dir(&self, lake: &Lake) -> Option<PathBuf> {
        self.state_dir.clone().or_else(|| lake.store().local_root().map(Path::to_path_buf))
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
        let config = KeyConfig {
            file: self.key_file.clone(),
            hex: std::env::var(env::PSEUDONYM_KEY).ok(),
            demo_allowed: self.demo_key,
        };
        let source = config.source(lake.store().local_root(), &self.store)?;
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            let key = describe(&source);
            // A demo that expected its throwaway key is told it writes with the real one.
            if self.demo_key && !matches!(source, KeySource::DemoFile(_)) {
                tracing::warn!(key, "a pseudonymisation key is configured: it is used, not the demo key");
            } else {
                tracing::info!(key, "pseudonymisation key");
            }
        });
        Ok(Pseudonymiser::load(&source)?)
    }
}

/// What a command may take its pseudonymisation key from. Every command decides through
/// [`KeyConfig::source`], so pseudonyms written by `demo` or `up --demo` are the ones `ingest`,
/// `serve` and `erase` compute: an erasure finds everyone.
struct KeyConfig {
    /// --key-file or HRLOOP_KEY_FILE.
    file: Option<PathBuf>,
    /// HRLOOP_PSEUDONYM_KEY.
    hex: Option<String>,
    /// --demo-key, `hrloop demo`, `hrloop up --demo`.
    demo_allowed: bool,
}

impl KeyConfig {
    /// The key file, else HRLOOP_PSEUDONYM_KEY, else, only where a demo is allowed, the demo
    /// key in the local store at `local_root`.
    fn source(self, local_root: Option<&Path>, store: &str) -> Result<KeySource> {
        if let Some(path) = self.file {
            return Ok(KeySource::File(path));
        }
        if let Some(hex) = self.hex {
            return Ok(KeySource::Hex(hex));
        }
        if self.demo_allowed {
            let Some(root) = local_root else {
                bail!("a demo key needs a local store; give a real key with --key-file for {store}")
            };
            return Ok(KeySource::DemoFile(root.join("secrets").join("pseudonym.key")));
        }
        bail!(
            "no pseudonymisation key: identifiers cannot be stored without one. Set {}=PATH \
             (create it with `openssl rand -hex 32 > hrloop.key && chmod 600 hrloop.key`) or {}=HEX, \
             or pass --demo-key to create a throwaway key for a demo",
            env::KEY_FILE,
            env::PSEUDONYM_KEY
        )
    }
}

/// Where a key comes from, for the log (never the key itself).
fn describe(source: &KeySource) -> String {
    match source {
        KeySource::File(path) => format!("key file {}", path.display()),
        KeySource::Hex(_) => env::PSEUDONYM_KEY.to_string(),
        KeySource::DemoFile(path) => format!("demo key {}", path.display()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One rule for every command: key file, else HRLOOP_PSEUDONYM_KEY, else the demo key where
    /// a demo is allowed, else a refusal.
    #[test]
    fn the_key_comes_from_the_file_then_the_environment_then_a_demo() {
        let root = Path::new("/store");
        let demo = KeySource::DemoFile(root.join("secrets/pseudonym.key"));
        let file = || Some(PathBuf::from("/etc/hrloop.key"));
        let hex = || Some("ab".repeat(32));
        let check = |file: Option<PathBuf>, hex: Option<String>, demo_allowed: bool, expected: Option<&KeySource>| {
            let got = KeyConfig { file, hex, demo_allowed }.source(Some(root), "/store");
            match (got, expected) {
                (Ok(got), Some(expected)) => assert_eq!(format!("{got:?}"), format!("{expected:?}")),
                (Err(e), None) => assert!(e.to_string().contains("no pseudonymisation key"), "{e}"),
                (got, expected) => panic!("{:?} instead of {expected:?}", got.map_err(|e| e.to_string())),
            }
        };
        for demo_allowed in [false, true] {
            check(file(), hex(), demo_allowed, Some(&KeySource::File(file().unwrap())));
            check(None, hex(), demo_allowed, Some(&KeySource::Hex(hex().unwrap())));
        }
        check(None, None, true, Some(&demo));
        check(None, None, false, None);
        let err = KeyConfig { file: None, hex: None, demo_allowed: true }.source(None, "s3://b/p").unwrap_err();
        assert!(err.to_string().contains("local store") && err.to_string().contains("s3://b/p"), "{err}");
        assert_eq!(describe(&KeySource::Hex(hex().unwrap())), "HRLOOP_PSEUDONYM_KEY", "the key is never logged");
    }
}
