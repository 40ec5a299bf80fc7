//! End-to-end scenarios: start `hrloop` as a user would, look at what it leaves behind with
//! hrloop's own reader and with pyarrow/DuckDB, and kill it at bad moments.
//!
//! Needs python3 with pyarrow and duckdb (`.ci/run` installs them).

mod cli;
mod closed_loop;
mod crash;
mod demo;
mod minimisation;
mod models;
#[cfg(unix)]
mod modes;
mod observability;
mod privacy;
mod scheduler;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `hrloop demo` of half a year of a small company: a second's work, every kind of file.
pub const SMALL_DEMO: [&str; 8] =
    ["--now", "2025-05-01", "demo", "--months", "6", "--requisitions-per-month", "4", "--json"];

/// `hrloop` with a clean environment, run from the repository (for data/mappings and
/// data/taxonomy), against `store`.
pub fn hrloop(store: &Path) -> Command {
    hrloop_under(&[], store)
}

/// [`hrloop`] run through a wrapper command, e.g. `prlimit --nofile=256:256 --`.
pub fn hrloop_under(wrapper: &[&str], store: &Path) -> Command {
    let mut c = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_hrloop"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_hrloop")),
    };
    c.current_dir(repo());
    for (k, _) in std::env::vars() {
        if k.starts_with("HRLOOP_") {
            c.env_remove(k);
        }
    }
    c.env("HRLOOP_STORE", store);
    c
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("hrloop runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Run a Python snippet; panics with a clear message when pyarrow/duckdb are missing.
pub fn python(code: &str) -> String {
    let out = Command::new("python3").arg("-c").arg(code).output().expect("python3 is installed");
    assert!(
        out.status.success(),
        "python failed (install the readers with `pip install pyarrow duckdb`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Rows of a table as pyarrow sees it (hive partitioning), without hrloop.
pub fn pyarrow_rows(store: &Path, table: &str) -> u64 {
    let dir = store.join("lake").join(table);
    if !dir.exists() {
        return 0;
    }
    python(&format!(
        "import pyarrow.dataset as d; print(d.dataset({:?}, partitioning='hive').to_table().num_rows)",
        dir.to_str().unwrap()
    ))
    .parse()
    .unwrap()
}

pub fn table_rows(store: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = run_ok(hrloop(store).args(["lake", "stats", "--json"]));
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_string(), t["rows"].as_u64().unwrap()))
        .collect()
}

/// Nothing under `store` (nor the store itself) is open to group or others: 0600 files, 0700
/// directories.
#[cfg(unix)]
pub fn assert_owner_only(store: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut dirs = vec![store.to_path_buf()];
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    if mode(store) & 0o077 != 0 {
        open.push(format!("{} {:o}", store.display(), mode(store)));
    }
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = mode(&path);
            if m & 0o077 != 0 {
                open.push(format!("{} {m:o}", path.strip_prefix(store).unwrap().display()));
            }
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    assert!(open.is_empty(), "{} paths others can read, e.g. {:?}", open.len(), &open[..open.len().min(10)]);
}
