//! Helpers the unit tests share: a fixed instant and writing rows to a test lake.

use chrono::{DateTime, Duration, TimeZone, Utc};
use hrloop_lake::{Lake, PartitionedWriter, Row};

/// `h` hours after 2026-03-02 09:00 UTC.
pub(crate) fn at(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::hours(h)
}

/// Commit `rows` as one batch.
pub(crate) async fn write<R: Row>(lake: &Lake, batch: &str, rows: &[R]) {
    let mut w = PartitionedWriter::new(lake, R::TABLE, batch, "test.csv", at(0)).unwrap();
    for r in rows {
        w.push_row(r).unwrap();
    }
    w.commit().await.unwrap();
}
