//! The query layer: every question asked of the lake is a polars [`LazyFrame`] over a table's
//! committed Parquet files, so only the columns a query names are read (projection pushdown),
//! filters are applied while reading (predicate pushdown, row-group statistics), and the
//! streaming engine keeps memory to what the answer needs rather than to the table's age.
//!
//! - [`Lake::lazy`] is the one entry: the files come from the same listing every reader uses
//!   (nothing staged or hidden), at the store's own URL (a local directory, or `s3://`,
//!   `gs://`, `az://` read through polars' object_store 0.13, the one the lake builds, with the
//!   same credentials from the environment). Partition directories (`month=2026-03/`,
//!   `milestone=12m/`) become text columns.
//! - Erased people are filtered out here and nowhere else: a row that names an erased
//!   pseudonym in a person column (or, in quarantine, anywhere in its text) never reaches a
//!   query, even while an erasure's rewrite is still under way.
//! - [`collect`] runs a query on a blocking thread with the streaming engine.
//!
//! Column names come from [`crate::rows`], never typed in an analysis.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ObjectMeta;
use polars::prelude::*;

use crate::tables::{Kind, PartitionRule, Table};
use crate::{Error, Lake, Result};

impl Lake {
    /// A lazy scan of `table`'s committed files with partition columns, without the rows of
    /// erased people. Nothing is read until the query is collected.
    pub async fn lazy(&self, table: Table) -> Result<LazyFrame> {
        let files = self.list_files(table, None).await?;
        self.lazy_files(table, &files, None).await
    }

    /// [`Lake::lazy`] over some of `table`'s committed files only (as [`Lake::list_files`]
    /// gives them), for readers that keep state between reads and open only what is new.
    /// With `file_column`, every row also carries its file's store location
    /// (`lake/decisions/month=2026-03/part-….parquet`) in that column; locations sort as the
    /// listing does, file by file in commit order.
    pub async fn lazy_files(&self, table: Table, files: &[ObjectMeta], file_column: Option<&str>) -> Result<LazyFrame> {
        let erased = self.erased().await?;
        let scan = if files.is_empty() {
            let empty = DataFrame::empty_with_schema(&table_schema(table)?).lazy();
            match file_column {
                Some(name) => empty.with_column(lit(NULL).cast(DataType::String).alias(name)),
                None => empty,
            }
        } else {
            let paths: Vec<PlRefPath> =
                files.iter().map(|m| PlRefPath::new(self.url_of(m.location.as_ref()))).collect();
            // Partition values start after `lake/<table>/`, the same in every path.
            let marker = format!("lake/{}/", table.name());
            let first = paths[0].as_str();
            let hive_start_idx = first.rfind(&marker).map(|i| i + marker.len()).ok_or_else(|| Error::Schema {
                table: table.name(),
                path: first.to_string(),
                reason: format!("path does not contain {marker}"),
            })?;
            let args = ScanArgsParquet {
                hive_options: HiveOptions {
                    enabled: Some(true),
                    hive_start_idx,
                    schema: Some(Arc::new(partition_schema(table))),
                    try_parse_dates: false,
                },
                glob: false,
                cache: false,
                include_file_paths: file_column.map(PlSmallStr::from),
                ..ScanArgsParquet::default()
            };
            let scan =
                LazyFrame::scan_parquet_files(paths.into_iter().collect(), args).map_err(|e| query_error(table, e))?;
            // A field kept only in the path is seen under its catalog name (`table=` of
            // quarantine is `target_table`).
            let (dirs, fields): (Vec<&str>, Vec<&str>) = table
                .def()
                .partitions
                .iter()
                .map(|(name, _)| (*name, column_of_partition(table, name)))
                .filter(|(dir, field)| dir != field)
                .unzip();
            let scan = if dirs.is_empty() { scan } else { scan.rename(dirs, fields, true) };
            match file_column {
                // polars names the file by the path or URL it read; the store's root goes.
                Some(name) => {
                    let root = self.url_of("");
                    scan.with_column(col(name).str().strip_prefix(lit(root)))
                }
                None => scan,
            }
        };
        Ok(match without_erased(table, &erased) {
            Some(keep) => scan.filter(keep),
            None => scan,
        })
    }

    /// The rows of `table` whose month-partitioned time (`decided_at`, `recorded_at`, ...) is at
    /// or after `since`: the filter on the `month` directories prunes whole files before any is
    /// opened, so the cost follows the window, not the table's age; then the rows before
    /// `since` in its first month are dropped. Tables without a month partition are read whole
    /// and filtered.
    pub async fn lazy_since(&self, table: Table, since: DateTime<Utc>) -> Result<LazyFrame> {
        let scan = self.lazy(table).await?;
        Ok(match at_or_after(table, since) {
            Some(keep) => scan.filter(keep),
            None => scan,
        })
    }

    /// Where polars reads an object of this store: a local path, or the bucket URL.
    fn url_of(&self, location: &str) -> String {
        match self.store().local_root() {
            Some(root) => root.join(location).to_string_lossy().into_owned(),
            None => format!("{}/{location}", self.store().location().trim_end_matches('/')),
        }
    }
}

/// Run a query to a [`DataFrame`] on a blocking thread (Parquet decoding is CPU work), with
/// polars' streaming engine (operators it cannot stream fall back to in-memory ones). The
/// answer comes back in one chunk per column, so reading it row by row is direct.
pub async fn collect(query: LazyFrame) -> Result<DataFrame> {
    let result = tokio::task::spawn_blocking(move || {
        // One query, one sink: always a single frame (several come only from `collect_all`).
        let mut df = query.collect_with_engine(Engine::Streaming)?.unwrap_single();
        df.rechunk_mut();
        Ok::<_, PolarsError>(df)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    Ok(result?)
}

/// The predicate "`table`'s month-partitioned time (`decided_at`, `recorded_at`, ...) is at or
/// after `since`", on the `month` directory first so whole files are pruned before any is
/// opened, then on the field itself (`None`: the table has no month partition).
pub fn at_or_after(table: Table, since: DateTime<Utc>) -> Option<Expr> {
    let (dir, field) = table.def().partitions.iter().find_map(|(name, rule)| match rule {
        PartitionRule::Month(field) => Some((*name, *field)),
        PartitionRule::Identity(_) => None,
    })?;
    let kind = table.def().fields.iter().find(|f| f.name == field).map(|f| f.kind);
    let at = match kind {
        Some(Kind::Date) => {
            let days = (since.date_naive() - chrono::NaiveDate::default()).num_days();
            col(field).cast(DataType::Int32).gt_eq(lit(days as i32))
        }
        _ => col(field).cast(DataType::Int64).gt_eq(lit(since.timestamp_micros())),
    };
    Some(col(dir).gt_eq(lit(since.format("%Y-%m").to_string())).and(at))
}

fn query_error(table: Table, e: PolarsError) -> Error {
    Error::Schema { table: table.name(), path: format!("lake/{table}"), reason: e.to_string() }
}

/// The keep-predicate for `table` given the erased pseudonyms (`None`: nothing to drop).
fn without_erased(table: Table, erased: &crate::ErasedSet) -> Option<Expr> {
    if erased.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = erased.iter().map(String::as_str).collect();
    names.sort_unstable();
    let set = || lit(Series::new("erased".into(), names.as_slice()));
    let list = || set().implode(false);
    let def = table.def();
    let people: Vec<Expr> = def
        .fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Pseudonym(_)))
        .map(|f| col(f.name).is_in(list(), false).fill_null(lit(false)).not())
        .collect();
    if !people.is_empty() {
        return people.into_iter().reduce(Expr::and);
    }
    // Tables without a person column (quarantine) can still mention a person in free text.
    def.fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Utf8) && !def.in_path_only(f.name))
        .map(|f| col(f.name).str().contains_any(set(), false).fill_null(lit(false)).not())
        .reduce(Expr::and)
}

/// The column a partition directory's value is seen as: the catalog field it holds (identity
/// partitions) or its own name (`month`).
fn column_of_partition(table: Table, name: &'static str) -> &'static str {
    table
        .def()
        .partitions
        .iter()
        .find_map(|(n, rule)| match rule {
            PartitionRule::Identity(field) if *n == name => Some(*field),
            _ => None,
        })
        .unwrap_or(name)
}

/// Partition directories as the scan reads them: text.
fn partition_schema(table: Table) -> Schema {
    table.def().partitions.iter().map(|(name, _)| Field::new((*name).into(), DataType::String)).collect()
}

/// The columns a scan of `table` yields (file columns, then partition columns): the schema of
/// an empty table.
fn table_schema(table: Table) -> Result<Schema> {
    let def = table.def();
    let utc = TimeZone::opt_try_new(Some("+00:00")).map_err(|e| query_error(table, e))?;
    let dtype = |kind: Kind| match kind {
        Kind::Utf8 | Kind::Pseudonym(_) | Kind::Milestone => DataType::String,
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Date,
        Kind::Timestamp => DataType::Datetime(TimeUnit::Microseconds, utc.clone()),
        Kind::FloatMap => DataType::List(Box::new(DataType::Struct(vec![
            Field::new("key".into(), DataType::String),
            Field::new("value".into(), DataType::Float64),
        ]))),
        Kind::Utf8Map => DataType::List(Box::new(DataType::Struct(vec![
            Field::new("key".into(), DataType::String),
            Field::new("value".into(), DataType::String),
        ]))),
    };
    let mut schema: Schema =
        def.file_schema().fields().iter().map(|f| Field::new(f.name().as_str().into(), DataType::Null)).collect();
    for f in def.fields.iter().filter(|f| !def.in_path_only(f.name)) {
        schema.set_dtype(f.name, dtype(f.kind));
    }
    for name in crate::tables::SYSTEM_COLUMNS {
        let kind = if name == "ingested_at" { Kind::Timestamp } else { Kind::Utf8 };
        schema.set_dtype(name, dtype(kind));
    }
    for (name, _) in def.partitions {
        schema.with_column(column_of_partition(table, name).into(), DataType::String);
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::hires::{self, HireRow};
    use crate::rows::outcomes::{self, OutcomeRow};
    use crate::rows::quarantine::{self, QuarantineRow};
    use crate::{PartitionedWriter, Row, Tombstone};
    use chrono::{NaiveDate, TimeZone, Utc};
    use hrloop_core::Milestone;

    const A: &str = "p0123456789abcdef0123456789abcdef";
    const B: &str = "pfedcba9876543210fedcba9876543210";

    async fn write<R: Row>(lake: &Lake, batch: &str, rows: &[R]) {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut w = PartitionedWriter::new(lake, R::TABLE, batch, "f.csv", now).unwrap();
        for r in rows {
            w.push_row(r).unwrap();
        }
        w.commit().await.unwrap();
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn outcome(employee: &str, milestone: Milestone, at: &str, rating: Option<i64>) -> OutcomeRow {
        OutcomeRow {
            employee_id: employee.into(),
            hire_date: day("2024-01-01"),
            milestone,
            milestone_date: day(at),
            employed: rating.is_some(),
            performance_rating: rating,
            exit_reason: None,
        }
    }

    fn strs(df: &DataFrame, name: &str) -> Vec<String> {
        df.column(name).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("∅").to_string()).collect()
    }

    #[tokio::test]
    async fn every_tenth_version_writes_a_checkpoint_that_reads_like_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for i in 0..12 {
            let who = format!("p{i:032x}");
            write(&lake, &format!("b{i:02}"), &[outcome(&who, Milestone::M3, "2024-04-01", Some(3))]).await;
        }
        let log = dir.path().join("lake/outcomes/_delta_log");
        assert!(log.join("00000000000000000010.checkpoint.parquet").exists());
        assert!(log.join("_last_checkpoint").exists());
        assert_eq!(lake.versions().await.unwrap()["outcomes"], 11);
        assert_eq!(collect(lake.lazy(Table::Outcomes).await.unwrap()).await.unwrap().height(), 12);
        let at_ten = lake.at_versions([("outcomes".to_string(), 10)].into());
        assert_eq!(collect(at_ten.lazy(Table::Outcomes).await.unwrap()).await.unwrap().height(), 11);
    }

    #[tokio::test]
    async fn tables_keep_removed_files_listed_and_migrate_sets_it_on_older_tables() {
        use deltalake_core::table::config::TableProperty;
        let key = TableProperty::DeletedFileRetentionDuration.as_ref();
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        write(&lake, "b1", &[outcome(A, Milestone::M3, "2024-04-01", Some(3))]).await;
        let setting = || async {
            let t = lake.delta_table(Table::Outcomes, None).await.unwrap().unwrap();
            t.snapshot().unwrap().metadata().configuration().get(key).cloned()
        };
        assert_eq!(setting().await.as_deref(), Some(crate::delta::KEEP_REMOVED_FILES_LISTED));
        // A table as created before the lake set it: Delta's 7 days.
        let t = lake.delta_table(Table::Outcomes, None).await.unwrap().unwrap();
        t.set_tbl_properties()
            .with_properties([(key.to_string(), "interval 7 days".to_string())].into())
            .await
            .unwrap();
        let outcomes = |m: Vec<crate::Migration>| m.into_iter().find(|m| m.table == "outcomes").unwrap();
        let done = outcomes(lake.migrate().await.unwrap());
        assert!(done.already_delta && done.kept_removes_listed, "{done:?}");
        assert_eq!(done.version, Some(2));
        assert_eq!(setting().await.as_deref(), Some(crate::delta::KEEP_REMOVED_FILES_LISTED));
        let again = outcomes(lake.migrate().await.unwrap());
        assert!(!again.kept_removes_listed && again.version == Some(2), "{again:?}");
        assert_eq!(collect(lake.lazy(Table::Outcomes).await.unwrap()).await.unwrap().height(), 1);
    }

    #[tokio::test]
    async fn a_pinned_lake_reads_one_snapshot_while_batches_and_rewrites_land() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let rows = |l: Lake| async move { collect(l.lazy(Table::Outcomes).await.unwrap()).await.unwrap().height() };
        write(&lake, "b1", &[outcome(A, Milestone::M12, "2025-01-02", Some(4))]).await;
        let pinned = lake.pinned().await.unwrap();
        assert_eq!(pinned.versions().await.unwrap()["outcomes"], 0);
        assert!(!pinned.versions().await.unwrap().contains_key("hires"), "never written: not named");
        // A batch, and a rewrite that removes A's row, land after the pin.
        write(&lake, "b2", &[outcome(B, Milestone::M3, "2024-04-01", None)]).await;
        let cols = [outcomes::EMPLOYEE_ID];
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        lake.remove_rows(
            Table::Outcomes,
            &crate::removal::Removal { columns: Some(&cols), dry_run: false, at, fence: false },
            |b| {
                let c = b.column_by_name(outcomes::EMPLOYEE_ID).unwrap();
                let c = c.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
                c.iter().map(|v| v == Some(B)).collect()
            },
        )
        .await
        .unwrap();
        assert_eq!(lake.versions().await.unwrap()["outcomes"], 2);
        assert_eq!(rows(pinned.clone()).await, 1, "the pinned lake still reads version 0");
        assert_eq!(rows(lake.at_versions(pinned.versions().await.unwrap())).await, 1);
        assert_eq!(rows(lake.clone()).await, 1, "the live lake reads version 2 (b2's row removed)");
        pinned.check_readable().await.unwrap();
        // Version 1 listed b2's file, which the rewrite deleted: named, not a polars error.
        let gone = lake.at_versions([("outcomes".to_string(), 1)].into()).check_readable().await.unwrap_err();
        assert!(gone.to_string().contains("outcomes at version 1 can no longer be read"), "{gone}");
    }

    #[tokio::test]
    async fn scans_read_partitions_as_columns_and_push_filters_down() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        write(
            &lake,
            "b1",
            &[
                outcome(A, Milestone::M12, "2025-01-02", Some(4)),
                outcome(B, Milestone::M3, "2024-04-01", None),
                outcome(B, Milestone::M12, "2025-01-05", Some(2)),
            ],
        )
        .await;
        let q = lake
            .lazy(Table::Outcomes)
            .await
            .unwrap()
            .filter(col(outcomes::MILESTONE).eq(lit(Milestone::M12.label())))
            .select([col(outcomes::EMPLOYEE_ID), col("month"), col(outcomes::PERFORMANCE_RATING)])
            .sort([outcomes::EMPLOYEE_ID], SortMultipleOptions::default());
        let df = collect(q).await.unwrap();
        assert_eq!(strs(&df, outcomes::EMPLOYEE_ID), vec![A, B]);
        assert_eq!(strs(&df, "month"), vec!["2025-01", "2025-01"]);
        let ratings: Vec<Option<i64>> =
            df.column(outcomes::PERFORMANCE_RATING).unwrap().i64().unwrap().iter().collect();
        assert_eq!(ratings, vec![Some(4), Some(2)]);
    }

    #[tokio::test]
    async fn erased_people_never_reach_a_query_even_before_their_rows_are_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let hire = |employee: &str, candidate: &str| HireRow {
            employee_id: employee.into(),
            candidate_id: candidate.into(),
            requisition_id: "r1".into(),
            job_family: "sales".into(),
            hire_date: day("2025-02-03"),
        };
        let c = "pcccccccccccccccccccccccccccccccc";
        write(&lake, "b1", &[hire(A, c), hire("peeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", B), hire("pe2", "pc2")]).await;
        let bad = |row_number: i64, raw: &str| QuarantineRow {
            target_table: Table::Hires,
            source_sha256: "ab".into(),
            row_number,
            field: None,
            reason: "line 3: bad date".into(),
            raw: Some(raw.into()),
            quarantined_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        write(&lake, "b2", &[bad(1, &format!(r#"{{"employee_id":"{A}"}}"#)), bad(2, r#"{"employee_id":"pe3"}"#)]).await;
        let all = collect(lake.lazy(Table::Hires).await.unwrap()).await.unwrap();
        assert_eq!(all.height(), 3);
        // Erased (tombstone written) but the rewrite has not run yet: A as an employee, B as a
        // candidate, and A inside quarantined text.
        let t = Tombstone {
            id: "e1".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            actor: "dpo".into(),
            reason: "request".into(),
            pseudonyms: vec![A.into(), B.into()],
        };
        lake.add_tombstone(&t).await.unwrap();
        let left = collect(lake.lazy(Table::Hires).await.unwrap().select([col(hires::EMPLOYEE_ID)])).await.unwrap();
        assert_eq!(strs(&left, hires::EMPLOYEE_ID), vec!["pe2"]);
        let q = collect(lake.lazy(Table::Quarantine).await.unwrap()).await.unwrap();
        let rows: Vec<i64> = q.column(quarantine::ROW_NUMBER).unwrap().i64().unwrap().iter().flatten().collect();
        assert_eq!(rows, vec![2]);
        assert_eq!(strs(&q, quarantine::TARGET_TABLE), vec!["hires"], "the table= directory under its field name");
    }

    #[tokio::test]
    async fn a_scan_since_a_time_opens_no_file_of_an_earlier_month() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let hire = |employee: &str, date: &str| HireRow {
            employee_id: employee.into(),
            candidate_id: format!("c-{employee}"),
            requisition_id: "r1".into(),
            job_family: "sales".into(),
            hire_date: day(date),
        };
        write(&lake, "b1", &[hire("pe1", "2022-03-10"), hire("pe2", "2025-02-01"), hire("pe3", "2025-02-20")]).await;
        // A file no reader could open, in a month before the window: reading it would fail.
        let old = dir.path().join("lake/hires/month=2023-05");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("part-broken-0.parquet"), b"not parquet").unwrap();
        // Not in the Delta log yet: invisible to every reader.
        assert_eq!(collect(lake.lazy(Table::Hires).await.unwrap()).await.unwrap().height(), 3);
        let broken = crate::delta::NewFile {
            path: "lake/hires/month=2023-05/part-broken-0.parquet".into(),
            rows: 1,
            size: 11,
            modified_ms: 0,
        };
        lake.commit_files(Table::Hires, &[broken], &[], crate::delta::Change::Append { known: Default::default() })
            .await
            .unwrap();
        assert!(
            collect(lake.lazy(Table::Hires).await.unwrap()).await.is_err(),
            "the whole table reads the broken file"
        );
        let since = Utc.with_ymd_and_hms(2025, 2, 10, 12, 0, 0).unwrap();
        let q = lake.lazy_since(Table::Hires, since).await.unwrap().select([col(hires::EMPLOYEE_ID)]);
        let df = collect(q).await.unwrap();
        assert_eq!(strs(&df, hires::EMPLOYEE_ID), vec!["pe3"], "same month, earlier day: dropped by the row filter");
    }

    #[tokio::test]
    async fn an_empty_table_has_the_columns_a_full_one_has() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let empty = collect(lake.lazy(Table::Outcomes).await.unwrap()).await.unwrap();
        assert_eq!(empty.height(), 0);
        write(&lake, "b1", &[outcome(A, Milestone::M6, "2024-07-01", Some(3))]).await;
        let full = collect(lake.lazy(Table::Outcomes).await.unwrap()).await.unwrap();
        assert_eq!(full.height(), 1);
        let names = |df: &DataFrame| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> =
                df.schema().iter().map(|(n, t)| (n.to_string(), format!("{t:?}"))).collect();
            v.sort();
            v
        };
        assert_eq!(names(&empty), names(&full));
    }

    #[test]
    fn bucket_stores_are_read_at_their_own_url() {
        // Building an S3 client contacts nothing.
        let lake = Lake::open("s3://hr-bucket/lake-root").unwrap();
        assert_eq!(
            lake.url_of("lake/hires/month=2025-01/part-b-0.parquet"),
            "s3://hr-bucket/lake-root/lake/hires/month=2025-01/part-b-0.parquet"
        );
        let dir = tempfile::tempdir().unwrap();
        let local = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let url = local.url_of("lake/hires/x.parquet");
        assert!(url.starts_with('/') && url.ends_with("/lake/hires/x.parquet"), "{url}");
    }
}
