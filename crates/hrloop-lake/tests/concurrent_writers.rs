//! Several writers and erasures commit to one Delta table at the same moment (DESIGN: the lake,
//! "erasure vs. writers"): conflicts are retried, nothing acknowledged is lost or doubled, and
//! an erased person is never brought back by a batch that started before their erasure.
//!
//! The same scenario runs on a local store here and on a real S3 server in the e2e suite
//! (`s3::concurrent_writers_on_s3`), through [`run`].

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::cast::AsArray;
use chrono::{NaiveDate, TimeZone, Utc};
use hrloop_lake::removal::{Removal, text_columns};
use hrloop_lake::rows::protected_attributes::{CANDIDATE_ID, ProtectedAttributesRow};
use hrloop_lake::{ErasedSet, Lake, PartitionedWriter, Table, Tombstone};

const A: &str = "p0123456789abcdef0123456789abcdef";

fn row(candidate: &str) -> ProtectedAttributesRow {
    ProtectedAttributesRow {
        candidate_id: candidate.to_string(),
        attributes: vec![("gender".to_string(), "f".to_string())],
        recorded_at: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    }
}

/// A pseudonym-shaped id for writer `w`'s batch `b`, row `k`.
fn other(w: usize, b: usize, k: usize) -> String {
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
async fn erase(lake: &Lake, id: &str, pseudonym: &str) -> u64 {
    lake.add_tombstone(&tombstone(id, pseudonym)).await.unwrap();
    let erased: ErasedSet = [pseudonym].into_iter().collect();
    let cols = text_columns(Table::ProtectedAttributes);
    let how = Removal { columns: Some(&cols), dry_run: false, at: Utc::now(), fence: true };
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
                    PartitionedWriter::new(&lake, Table::ProtectedAttributes, &format!("w{w}b{b}"), "t", Utc::now())
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
    assert!(!seen.contains_key(A), "the erased person came back: {} rows", seen[A]);
    assert!(!seen.contains_key(&second), "the second erased person came back");
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "rows doubled: {doubled:?}");
    let kept: BTreeSet<String> = seen.into_keys().collect();
    let lost: Vec<_> = acked.difference(&kept).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    assert_eq!(kept, acked, "rows nobody wrote");
    acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_and_erasures_at_the_same_moment_lose_nothing_and_resurrect_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let acked = run(lake, 6, 12).await;
    assert_eq!(acked, 6 * 12 * 2 - 1);
}

#[tokio::test]
async fn a_batch_written_before_an_erasure_and_committed_after_it_leaves_the_person_out() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let b = other(9, 9, 9);
    let mut first = PartitionedWriter::new(&lake, Table::ProtectedAttributes, "b0", "t", Utc::now()).unwrap();
    first.push_row(&row(&b)).unwrap();
    first.commit().await.unwrap();
    // The writer checked the erasures (none) and staged A's row...
    let erased = lake.erased().await.unwrap();
    let mut late =
        PartitionedWriter::new(&lake, Table::ProtectedAttributes, "late", "t", Utc::now()).unwrap().knowing(&erased);
    late.push_row(&row(A)).unwrap();
    late.push_row(&row(&other(9, 9, 8))).unwrap();
    let mut only_a =
        PartitionedWriter::new(&lake, Table::ProtectedAttributes, "only-a", "t", Utc::now()).unwrap().knowing(&erased);
    only_a.push_row(&row(A)).unwrap();
    // ...then A was erased (nothing to remove yet: the fence commit only)...
    let before = lake.versions().await.unwrap()["protected_attributes"];
    assert_eq!(erase(&lake, "e1", A).await, 0);
    assert_eq!(lake.versions().await.unwrap()["protected_attributes"], before + 1, "the erasure fences the table");
    // ...and only then the batches commit.
    late.commit().await.unwrap();
    only_a.commit().await.unwrap();
    let seen = candidates(&lake).await;
    assert!(!seen.contains_key(A), "A resurrected");
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), vec![other(9, 9, 8), b], "the rest of the batch is kept");
    // A file the erasure's rows were cut from is not left behind beside the table.
    let table_dir = dir.path().join("lake/protected_attributes");
    let parquet: Vec<_> = walk(&table_dir).into_iter().filter(|p| p.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 2, "{parquet:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.file_name().unwrap().to_string_lossy().starts_with('_') {
                out.extend(walk(&p));
            }
        } else {
            out.push(p.to_string_lossy().to_string());
        }
    }
    out
}
