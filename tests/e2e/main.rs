//! End-to-end scenarios: start `hrloop` as a user would, look at what it leaves behind with
//! hrloop's own reader and with the Delta readers data teams use (the `deltalake` package,
//! polars, DuckDB's delta extension), and kill it at bad moments.
//!
//! Needs python3 with pyarrow, deltalake, polars, duckdb and duckdb-extension-delta
//! (`scripts/test` installs them).

mod browser;
mod cli;
mod closed_loop;
mod crash;
mod demo;
mod migrate;
mod minimisation;
mod models;
#[cfg(unix)]
mod modes;
mod observability;
mod privacy;
mod reports;
mod s3;
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

/// Run a Python snippet; panics with a clear message when a reader is missing.
pub fn python(code: &str) -> String {
    let out = Command::new("python3").arg("-c").arg(code).output().expect("python3 is installed");
    assert!(
        out.status.success(),
        "python failed (the readers: `pip install pyarrow deltalake polars duckdb==1.5.5 duckdb-extension-delta==1.5.5`, as scripts/test does):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Python that opens the three Delta readers: `DeltaTable` (the `deltalake` package), `pl`
/// (polars) and `con`, a DuckDB connection with the delta extension loaded from its PyPI wheel.
pub const DELTA_READERS: &str = r#"
import glob, os, duckdb, polars as pl, duckdb_extension_delta
from deltalake import DeltaTable
_ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__), 'extensions', 'v' + duckdb.__version__, '*.duckdb_extension'))
assert _ext, 'no delta extension for duckdb ' + duckdb.__version__ + ': pip install duckdb-extension-delta==' + duckdb.__version__
con = duckdb.connect()
con.load_extension(_ext[0])
"#;

/// Rows of a table as the Python `deltalake` package sees its newest version, without
/// hrloop (0 for a table never committed).
pub fn delta_rows(store: &Path, table: &str) -> u64 {
    let dir = store.join("lake").join(table);
    if !dir.join("_delta_log").exists() {
        return 0;
    }
    python(&format!(
        "from deltalake import DeltaTable; print(DeltaTable({:?}).to_pyarrow_dataset().count_rows())",
        dir.to_str().unwrap()
    ))
    .parse()
    .unwrap()
}

/// Rows of each table at `version` (newest: `None`) as (deltalake, polars, DuckDB) count them
/// (zeros for a table never written).
pub fn reader_counts(
    store: &Path,
    tables: &[&str],
    version: Option<u64>,
) -> std::collections::BTreeMap<String, [u64; 3]> {
    let dirs: Vec<String> = tables.iter().map(|t| store.join("lake").join(t).to_str().unwrap().to_string()).collect();
    let v = version.map_or("None".to_string(), |v| v.to_string());
    let duck_version = version.map_or(String::new(), |v| format!(", version := {v}"));
    let out = python(&format!(
        r#"{DELTA_READERS}
import json
out = {{}}
for name, p in zip({tables:?}, {dirs:?}):
    if not os.path.isdir(os.path.join(p, '_delta_log')):
        out[name] = [0, 0, 0]  # never written: no reader has a table to open
        continue
    a = DeltaTable(p, version={v}).to_pyarrow_dataset().count_rows()
    b = pl.scan_delta(p, version={v}).select(pl.len()).collect().item()
    c = con.sql(f"select count(*) from delta_scan('{{p}}'{duck_version})").fetchall()[0][0]
    out[name] = [a, b, c]
print(json.dumps(out))
"#
    ));
    serde_json::from_str(&out).unwrap()
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
