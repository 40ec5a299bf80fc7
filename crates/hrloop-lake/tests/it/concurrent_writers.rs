//! Several writers and erasures commit to one Delta table at the same moment (DESIGN: the lake,
//! "erasure vs. writers"): conflicts are retried, nothing acknowledged is lost or doubled, and
//! an erased person is never brought back by a batch that started before their erasure.
//!
//! The same scenario runs on a local store here and on a real S3 server (`s3.rs`).

use crate::common::{A, candidates, erase, now, other, row, run};
use hrloop_lake::{Lake, PartitionedWriter, Table};

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
    let mut first = PartitionedWriter::new(&lake, Table::ProtectedAttributes, "b0", "t", now()).unwrap();
    first.push_row(&row(&b)).unwrap();
    first.commit().await.unwrap();
    // The writer checked the erasures (none) and staged A's row...
    let erased = lake.erased().await.unwrap();
    let mut late =
        PartitionedWriter::new(&lake, Table::ProtectedAttributes, "late", "t", now()).unwrap().knowing(&erased);
    late.push_row(&row(A)).unwrap();
    late.push_row(&row(&other(9, 9, 8))).unwrap();
    let mut only_a =
        PartitionedWriter::new(&lake, Table::ProtectedAttributes, "only-a", "t", now()).unwrap().knowing(&erased);
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
