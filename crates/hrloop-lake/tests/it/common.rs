//! The concurrent-writers scenario, run on a local store (`concurrent_writers.rs`) and on a real
//! S3 server (`s3.rs`).

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::cast::AsArray;
use chrono::{NaiveDate, TimeZone, Utc};
use hrloop_lake::removal::{Removal, text_columns};
use hrloop_lake::rows::protected_attributes::{CANDIDATE_ID, ProtectedAttributesRow};
use hrloop_lake::{ErasedSet, Lake, PartitionedWriter, Table, Tombstone};

/// The time every write and removal in these tests records (a fixed clock).
pub fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap()
}

pub const A: &str = "p0123456789abcdef0123456789abcdef";

pub fn row(candidate: &str) -> ProtectedAttributesRow {
    ProtectedAttributesRow {
        candidate_id: candidate.to_string(),
        attributes: vec![("gender".to_string(), "f".to_string())],
        recorded_at: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    }
}

/// A pseudonym-shaped id for writer `w`'s batch `b`, row `k`.
pub fn other(w: usize, b: usize, k: usize) -> String {
    format!("p{:032x}", 0x1000_0000 + w * 10_000 + b * 10 + k)
}

fn tombstone(id: &str, pseudonym: &str) -> Tombstone {
    Tombstone {
        id: id.to_string(),
        at: Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
        actor: "dpo".into(),
        reason: "test".into(),
        pseudonyms: vec![pseudonym.to_string()],
    }
}

/// Erase `pseudonym` from the table the way `hrloop privacy erase` does: tombstone first, then
/// the removal with its fence.
pub async fn erase(lake: &Lake, id: &str, pseudonym: &str) -> u64 {
    lake.add_tombstone(&tombstone(id, pseudonym)).await.unwrap();
    let erased: ErasedSet = [pseudonym].into_iter().collect();
    let cols = text_columns(Table::ProtectedAttributes);
    let how = Removal { columns: Some(&cols), dry_run: false, at: now(), fence: true };
    lake.remove_rows(Table::ProtectedAttributes, &how, |b| erased.batch_mentions(b)).await.unwrap().rows_removed
}

/// Candidate ids in the table's newest snapshot, with how often each appears.
pub async fn candidates(lake: &Lake) -> BTreeMap<String, usize> {
    let scan = lake.scan(Table::ProtectedAttributes, Some(&[CANDIDATE_ID])).await.unwrap();
    let mut out = BTreeMap::new();
    for b in &scan.batches {
        for c in b.column_by_name(CANDIDATE_ID).unwrap().as_string::<i32>().iter().flatten() {
            *out.entry(c.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// `writers` tasks commit `batches` batches each (every batch: A, unless the writer already
/// knows A is erased, and two rows of its own), while A is erased and, later, one of the
/// acknowledged rows' people too. Checks the outcome and returns how many rows were acknowledged.
pub async fn run(lake: Lake, writers: usize, batches: usize) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let lake = lake.clone();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for b in 0..batches {
                // Like ingestion and the decision mover: filter with the erasures known now.
                let erased = lake.erased().await.unwrap();
                let mut writer =
                    PartitionedWriter::new(&lake, Table::ProtectedAttributes, &format!("w{w}b{b}"), "t", now())
                        .unwrap()
                        .knowing(&erased);
                if !erased.contains(A) {
                    writer.push_row(&row(A)).unwrap();
                }
                for k in 0..2 {
                    writer.push_row(&row(&other(w, b, k))).unwrap();
                }
                writer.commit().await.unwrap();
                acked.extend((0..2).map(|k| other(w, b, k)));
            }
            acked
        });
    }
    // Erase A while the writers are busy.
    while candidates(&lake).await.get(A).copied().unwrap_or(0) < writers {
        tokio::task::yield_now().await;
    }
    erase(&lake, "erase-a", A).await;
    // And someone already acknowledged, while the writers go on.
    let second = other(0, 0, 1);
    erase(&lake, "erase-second", &second).await;
    let mut acked = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.unwrap());
    }
    acked.remove(&second);
    let seen = candidates(&lake).await;
    if seen.contains_key(A) {
        panic!("the erased person came back: {} rows; the log:\n{}", seen[A], history(&lake).await);
    }
    assert!(!seen.contains_key(&second), "the second erased person came back");
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "rows doubled: {doubled:?}");
    let kept: BTreeSet<String> = seen.into_keys().collect();
    let lost: Vec<_> = acked.difference(&kept).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    assert_eq!(kept, acked, "rows nobody wrote");
    acked.len()
}

/// Each commit of the table: operation and the files it added and removed (for failures).
async fn history(lake: &Lake) -> String {
    let newest = lake.versions().await.unwrap()["protected_attributes"];
    let mut out = String::new();
    for v in 0..=newest {
        let path = format!("lake/protected_attributes/_delta_log/{v:020}.json");
        let bytes = lake.store().get(&path.as_str().into()).await.unwrap();
        let mut line = format!("v{v}:");
        for action in String::from_utf8_lossy(&bytes).lines() {
            let a: serde_json::Value = serde_json::from_str(action).unwrap();
            if let Some(op) = a.pointer("/commitInfo/operation") {
                line += &format!(" {op} t={}", a.pointer("/commitInfo/timestamp").unwrap_or(&serde_json::Value::Null));
            }
            for kind in ["add", "remove"] {
                if let Some(p) = a.pointer(&format!("/{kind}/path")) {
                    line += &format!(" {kind} {}", p.as_str().unwrap().rsplit('/').next().unwrap());
                }
            }
        }
        out += &line;
        out.push('\n');
    }
    out
}
