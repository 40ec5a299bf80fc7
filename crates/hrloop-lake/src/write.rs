//! Writing rows into a table: per-partition column builders, spilled to staged Parquet files
//! with bounded memory, committed all at once at the end of a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, MapBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use crate::delta::{Change, NewFile};
use crate::rows::Row;
use crate::tables::{Kind, PartitionRule, Table, TableDef};
use crate::{Error, Lake, Result, Store};

/// Rows buffered in Arrow builders (all partitions together) before they are spilled.
const BUFFERED_ROWS: usize = 64 * 1024;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// One typed value of a row, in table-field order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    FloatMap(Vec<(String, f64)>),
    StrMap(Vec<(String, String)>),
}

impl Value {
    /// Stable bytes for hashing (never change them: keys are compared across versions).
    fn hash_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Str(s) => {
                out.push(1);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(x) => {
                out.push(3);
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            Value::Bool(b) => out.extend_from_slice(&[4, *b as u8]),
            Value::Date(d) => {
                out.push(5);
                out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(6);
                out.extend_from_slice(&t.timestamp_micros().to_le_bytes());
            }
            Value::FloatMap(m) => {
                out.push(7);
                for (k, v) in m {
                    out.extend_from_slice(k.as_bytes());
                    out.push(0x1f);
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
            Value::StrMap(m) => {
                out.push(8);
                for (k, v) in m {
                    out.extend_from_slice(k.as_bytes());
                    out.push(0x1f);
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
        out.push(0x1e);
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The identity of a row: its natural event key and a hash of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowKeys {
    pub event_key: [u8; 16],
    pub row_hash: [u8; 8],
}

impl RowKeys {
    /// Compute the keys of a row laid out in `def.fields` order.
    pub fn of(def: &TableDef, row: &[Value]) -> RowKeys {
        // Bytes gathered first, hashed once: the same digests as hashing piece by piece, without
        // a hasher call per field and map entry (this runs for every row written).
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(def.table.name().as_bytes());
        for name in def.key {
            let (i, _) = def.field(name).expect("catalog test: keys name fields");
            row[i].hash_bytes(&mut buf);
        }
        let k = Sha256::digest(&buf);
        buf.clear();
        for v in row {
            v.hash_bytes(&mut buf);
        }
        let c = Sha256::digest(&buf);
        RowKeys { event_key: k[..16].try_into().expect("16 bytes"), row_hash: c[..8].try_into().expect("8 bytes") }
    }
}

/// The directory (`k=v/k=v`) a row belongs in.
pub fn partition_of(def: &TableDef, row: &[Value]) -> Result<String> {
    let mut out = String::new();
    for (name, rule) in def.partitions {
        let (field, month) = match rule {
            PartitionRule::Identity(f) => (*f, false),
            PartitionRule::Month(f) => (*f, true),
        };
        let (i, _) = def.field(field).expect("catalog test: partitions name fields");
        let value = match (&row[i], month) {
            (Value::Date(d), true) => format!("{:04}-{:02}", d.year(), d.month()),
            (Value::Timestamp(t), true) => format!("{:04}-{:02}", t.year(), t.month()),
            (Value::Str(s), false) if is_safe_segment(s) => s.clone(),
            (other, _) => {
                return Err(Error::Row {
                    table: def.table.name(),
                    reason: format!("partition field {field} has unusable value {other:?}"),
                });
            }
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&value);
    }
    Ok(out)
}

fn is_safe_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

enum Col {
    Utf8(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    FloatMap(MapBuilder<StringBuilder, Float64Builder>),
    StrMap(MapBuilder<StringBuilder, StringBuilder>),
}

impl Col {
    fn new(kind: Kind) -> Col {
        match kind {
            Kind::Utf8 | Kind::Pseudonym(_) | Kind::Milestone => Col::Utf8(StringBuilder::new()),
            Kind::Int => Col::Int(Int64Builder::new()),
            Kind::Float => Col::Float(Float64Builder::new()),
            Kind::Bool => Col::Bool(BooleanBuilder::new()),
            Kind::Date => Col::Date(Date32Builder::new()),
            Kind::Timestamp => Col::Ts(TimestampMicrosecondBuilder::new().with_timezone("+00:00")),
            Kind::FloatMap => Col::FloatMap(MapBuilder::new(
                Some(crate::tables::map_field_names()),
                StringBuilder::new(),
                Float64Builder::new(),
            )),
            Kind::Utf8Map => Col::StrMap(MapBuilder::new(
                Some(crate::tables::map_field_names()),
                StringBuilder::new(),
                StringBuilder::new(),
            )),
        }
    }

    fn push(&mut self, v: &Value, field: &'static str, table: &'static str) -> Result<()> {
        let mismatch = || Error::Row { table, reason: format!("field {field} cannot hold {v:?}") };
        match (self, v) {
            (Col::Utf8(b), Value::Str(s)) => b.append_value(s),
            (Col::Utf8(b), Value::Null) => b.append_null(),
            (Col::Int(b), Value::Int(i)) => b.append_value(*i),
            (Col::Int(b), Value::Null) => b.append_null(),
            (Col::Float(b), Value::Float(x)) => b.append_value(*x),
            (Col::Float(b), Value::Null) => b.append_null(),
            (Col::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Col::Bool(b), Value::Null) => b.append_null(),
            (Col::Date(b), Value::Date(d)) => b.append_value(days_since_epoch(*d)),
            (Col::Date(b), Value::Null) => b.append_null(),
            (Col::Ts(b), Value::Timestamp(t)) => b.append_value(t.timestamp_micros()),
            (Col::Ts(b), Value::Null) => b.append_null(),
            (Col::FloatMap(b), Value::FloatMap(m)) => {
                for (k, x) in m {
                    b.keys().append_value(k);
                    b.values().append_value(*x);
                }
                b.append(true)?;
            }
            (Col::FloatMap(b), Value::Null) => b.append(false)?,
            (Col::StrMap(b), Value::StrMap(m)) => {
                for (k, x) in m {
                    b.keys().append_value(k);
                    b.values().append_value(x);
                }
                b.append(true)?;
            }
            (Col::StrMap(b), Value::Null) => b.append(false)?,
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Utf8(b) => Arc::new(b.finish()),
            Col::Int(b) => Arc::new(b.finish()),
            Col::Float(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::FloatMap(b) => Arc::new(b.finish()),
            Col::StrMap(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::Utf8(b) => b.len(),
            Col::Int(b) => b.len(),
            Col::Float(b) => b.len(),
            Col::Bool(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Ts(b) => b.len(),
            Col::FloatMap(b) => b.len(),
            Col::StrMap(b) => b.len(),
        }
    }
}

pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

struct Part {
    cols: Vec<Col>,
    rows: u64,
    /// Rows spilled so far, as an uncompressed Arrow IPC stream in the staging directory.
    spill: Option<(arrow_ipc::writer::StreamWriter<std::io::BufWriter<File>>, PathBuf)>,
}

/// A file a batch added to the lake.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WrittenFile {
    pub path: String,
    pub rows: u64,
}

/// Writes one batch of rows into one table, in memory bounded by [`BUFFERED_ROWS`] whatever
/// the input size and number of partitions: buffered rows are spilled per partition to Arrow
/// IPC files (cheap to write), and each partition is encoded to Parquet once, at commit, on
/// all cores (straight from memory when it never spilled). Nothing is visible until [`commit`]; dropping the writer without committing
/// removes its staged files.
///
/// [`commit`]: PartitionedWriter::commit
pub struct PartitionedWriter {
    def: &'static TableDef,
    store: Store,
    batch_id: String,
    source_file: String,
    ingested_at: DateTime<Utc>,
    staging: PathBuf,
    /// Indexes into `def.fields` of the columns stored in the file.
    file_fields: Vec<usize>,
    parts: BTreeMap<String, Part>,
    buffered: usize,
    schema: arrow_schema::SchemaRef,
    props: WriterProperties,
    /// Files this writer created in staging, removed unless committed.
    temp_files: Vec<PathBuf>,
    committed: bool,
    /// The erasures (tombstone ids) the caller already kept out of the rows it pushed.
    known_erasures: BTreeSet<String>,
}

impl std::fmt::Debug for PartitionedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedWriter").field("table", &self.def.table).field("batch_id", &self.batch_id).finish()
    }
}

impl PartitionedWriter {
    pub fn new(
        lake: &Lake,
        table: Table,
        batch_id: &str,
        source_file: &str,
        ingested_at: DateTime<Utc>,
    ) -> Result<Self> {
        let def = table.def();
        let file_fields = (0..def.fields.len()).filter(|&i| !def.in_path_only(def.fields[i].name)).collect();
        Ok(Self {
            def,
            store: lake.store().clone(),
            batch_id: batch_id.to_string(),
            source_file: source_file.to_string(),
            ingested_at,
            staging: lake.store().staging_dir()?,
            file_fields,
            parts: BTreeMap::new(),
            buffered: 0,
            schema: def.file_schema(),
            props: writer_props(def)?,
            temp_files: Vec::new(),
            committed: false,
            known_erasures: BTreeSet::new(),
        })
    }

    /// Say that the rows pushed were checked against `erased` (every writer checks before it
    /// stores a row). At the commit only erasures recorded since are looked for in the batch;
    /// without this, the batch is checked against every erasure.
    pub fn knowing(mut self, erased: &crate::ErasedSet) -> Self {
        self.known_erasures = erased.tombstone_ids().clone();
        self
    }

    pub fn table(&self) -> Table {
        self.def.table
    }

    /// Add a typed row of this writer's table (computing its keys); returns the keys.
    pub fn push_row<R: Row>(&mut self, row: &R) -> Result<RowKeys> {
        if R::TABLE != self.def.table {
            return Err(Error::Row {
                table: self.def.table.name(),
                reason: format!("a {} row cannot be written to {}", R::TABLE, self.def.table),
            });
        }
        let values = row.values();
        let keys = RowKeys::of(self.def, &values);
        self.push(&values, &keys)?;
        Ok(keys)
    }

    /// Add a row (values in `def.fields` order, as the catalog-driven ingestion builds them) to
    /// the partition it belongs to.
    pub fn push(&mut self, row: &[Value], keys: &RowKeys) -> Result<()> {
        let partition = partition_of(self.def, row)?;
        self.push_to(&partition, row, keys)
    }

    /// Add a row whose partition the caller already computed with [`partition_of`].
    pub fn push_to(&mut self, partition: &str, row: &[Value], keys: &RowKeys) -> Result<()> {
        if row.len() != self.def.fields.len() {
            return Err(Error::Row {
                table: self.def.table.name(),
                reason: format!("{} values for {} fields", row.len(), self.def.fields.len()),
            });
        }
        if !self.parts.contains_key(partition) {
            let mut cols: Vec<Col> = self.file_fields.iter().map(|&i| Col::new(self.def.fields[i].kind)).collect();
            for k in [Kind::Utf8, Kind::Utf8, Kind::Utf8, Kind::Utf8, Kind::Timestamp] {
                cols.push(Col::new(k));
            }
            self.parts.insert(partition.to_string(), Part { cols, rows: 0, spill: None });
        }
        let part = self.parts.get_mut(partition).expect("inserted above");
        let table = self.def.table.name();
        for (col, &i) in part.cols.iter_mut().zip(&self.file_fields) {
            col.push(&row[i], self.def.fields[i].name, table)?;
        }
        let n = self.file_fields.len();
        let mut hex_buf = [0u8; 32];
        let sys = &mut part.cols[n..];
        if let Col::Utf8(b) = &mut sys[0] {
            b.append_value(hex_str(&keys.event_key, &mut hex_buf));
        }
        if let Col::Utf8(b) = &mut sys[1] {
            b.append_value(hex_str(&keys.row_hash, &mut hex_buf));
        }
        if let Col::Utf8(b) = &mut sys[2] {
            b.append_value(&self.batch_id);
        }
        if let Col::Utf8(b) = &mut sys[3] {
            b.append_value(&self.source_file);
        }
        if let Col::Ts(b) = &mut sys[4] {
            b.append_value(self.ingested_at.timestamp_micros());
        }
        part.rows += 1;
        self.buffered += 1;
        if self.buffered >= BUFFERED_ROWS {
            self.spill()?;
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.parts.values().map(|p| p.rows).sum()
    }

    /// Append every partition's buffered rows to its spill file.
    fn spill(&mut self) -> Result<()> {
        for part in self.parts.values_mut() {
            let Some(batch) = part.take_batch(&self.schema)? else { continue };
            if part.spill.is_none() {
                let path = self.staging.join(format!("{}-{}.arrows", self.batch_id, uuid::Uuid::new_v4()));
                self.temp_files.push(path.clone());
                let file = File::create(&path).map_err(Error::io("create spill file", &path))?;
                let writer = arrow_ipc::writer::StreamWriter::try_new_buffered(file, &self.schema)?;
                part.spill = Some((writer, path));
            }
            part.spill.as_mut().expect("set above").0.write(&batch)?;
        }
        self.buffered = 0;
        Ok(())
    }

    /// Encode every partition to a staged Parquet file (in parallel), move the files into the
    /// table's directories, then add them all in one Delta commit: the batch becomes visible
    /// whole, or (after a crash before the commit) not at all. Returns the files written.
    pub async fn commit(mut self) -> Result<Vec<WrittenFile>> {
        use rayon::prelude::*;
        let mut jobs = Vec::new();
        for (i, (partition, mut part)) in std::mem::take(&mut self.parts).into_iter().enumerate() {
            // A partition that never spilled is encoded straight from memory; one that did gets
            // its last rows appended to its spill file, which is then encoded.
            let input = match part.spill.take() {
                Some((mut writer, spill)) => {
                    if let Some(batch) = part.take_batch(&self.schema)? {
                        writer.write(&batch)?;
                    }
                    writer.finish()?;
                    Input::Spilled(spill)
                }
                None => match part.take_batch(&self.schema)? {
                    Some(batch) => Input::InMemory(batch),
                    None => continue,
                },
            };
            let staged = self.staging.join(format!("{}-{i}.parquet", self.batch_id));
            self.temp_files.push(staged.clone());
            let name = format!("part-{}-{i}.parquet", self.batch_id);
            let dest = Path::from(format!("lake/{}/{}/{}", self.def.table.name(), partition, name));
            jobs.push((input, staged, dest, part.rows));
        }
        let (schema, props) = (self.schema.clone(), self.props.clone());
        // Encoding is CPU work: off the async workers, on all cores.
        let jobs = tokio::task::spawn_blocking(move || -> Result<_> {
            jobs.par_iter()
                .map(|(input, staged, _, _)| encode(input, staged, &schema, &props))
                .collect::<Result<Vec<()>>>()?;
            Ok(jobs)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        crate::fault::hit("after_stage");
        // Before the first file enters a table directory (a crash may leave it there).
        Lake::new(self.store.clone()).ensure_delta_lake().await?;
        let mut written = Vec::new();
        let mut added = Vec::new();
        for (input, staged, dest, rows) in jobs {
            if let Input::Spilled(spill) = input {
                let _ = std::fs::remove_file(&spill);
            }
            let file = NewFile::staged(dest.to_string(), rows, &staged)?;
            self.store.commit_file(&staged, &dest).await?;
            added.push(file);
            written.push(WrittenFile { path: dest.to_string(), rows });
            crate::fault::hit("after_first_commit");
        }
        // The files are in place but invisible until this one Delta commit adds them all.
        if !added.is_empty() {
            let known = std::mem::take(&mut self.known_erasures);
            Lake::new(self.store.clone()).commit_files(self.def.table, &added, &[], Change::Append { known }).await?;
        }
        self.committed = true;
        Ok(written)
    }
}

/// What a partition's Parquet file is encoded from.
enum Input {
    /// Rows spilled to an Arrow IPC file (the batch outgrew memory).
    Spilled(PathBuf),
    /// All the partition's rows, never spilled.
    InMemory(RecordBatch),
}

impl Part {
    /// The rows buffered since the last spill, as one batch (`None` when there are none).
    fn take_batch(&mut self, schema: &arrow_schema::SchemaRef) -> Result<Option<RecordBatch>> {
        if self.cols.first().is_none_or(|c| c.len() == 0) {
            return Ok(None);
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        Ok(Some(RecordBatch::try_new(schema.clone(), arrays)?))
    }
}

/// How every Parquet file of a table is encoded: zstd level 1, as pyarrow and Spark use by
/// default. Columns that are unique per row (keys, hashes, pseudonyms) skip dictionary
/// encoding and min/max statistics: random values make a dictionary cost memory and time for
/// nothing, and their min/max prune no row group. Map keys (feature names) skip statistics too.
/// One Parquet file of a table written outside a [`PartitionedWriter`] (a rewrite without
/// some rows, a compaction's merge): encoded in staging, then put in place, not yet committed.
/// Dropped unplaced, the staged file is removed.
pub(crate) struct StagedFile {
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl StagedFile {
    pub(crate) fn new(store: &Store, def: &TableDef, schema: arrow_schema::SchemaRef) -> Result<StagedFile> {
        let path = store.staging_dir()?.join(format!("file-{}.parquet", uuid::Uuid::new_v4().simple()));
        let file = File::create(&path).map_err(Error::io("create staged file", &path))?;
        let writer = ArrowWriter::try_new(file, schema, Some(writer_props(def)?))?;
        Ok(StagedFile { path, writer: Some(writer), rows: 0 })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows() as u64;
            self.writer.as_mut().expect("open until placed").write(batch)?;
        }
        Ok(())
    }

    /// Finish the file and put it at `dest` (durable, but in no Delta version yet).
    pub(crate) async fn place(mut self, store: &Store, dest: &Path) -> Result<NewFile> {
        self.writer.take().expect("placed once").close()?;
        let file = NewFile::staged(dest.to_string(), self.rows, &self.path)?;
        store.commit_file(&self.path, dest).await?;
        Ok(file)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) fn writer_props(def: &TableDef) -> Result<WriterProperties> {
    use parquet::file::properties::EnabledStatistics;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("hrloop {}", env!("CARGO_PKG_VERSION")));
    let unique = def.fields.iter().filter(|f| matches!(f.kind, Kind::Pseudonym(_))).map(|f| f.name);
    for name in unique.chain(["event_key", "row_hash"]) {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
    }
    for f in def.fields.iter().filter(|f| matches!(f.kind, Kind::FloatMap | Kind::Utf8Map)) {
        let keys = ColumnPath::new(vec![f.name.to_string(), "entries".into(), "key".into()]);
        props = props.set_column_statistics_enabled(keys, EnabledStatistics::None);
    }
    Ok(props.build())
}

/// One partition's spilled rows to one Parquet file.
fn encode(input: &Input, staged: &PathBuf, schema: &arrow_schema::SchemaRef, props: &WriterProperties) -> Result<()> {
    let output = File::create(staged).map_err(Error::io("create staged file", staged))?;
    let mut writer = ArrowWriter::try_new(output, schema.clone(), Some(props.clone()))?;
    match input {
        Input::Spilled(spill) => {
            let file = File::open(spill).map_err(Error::io("open spill file", spill))?;
            for batch in arrow_ipc::reader::StreamReader::try_new_buffered(file, None)? {
                writer.write(&batch?)?;
            }
        }
        Input::InMemory(batch) => writer.write(batch)?,
    }
    writer.close()?;
    Ok(())
}

fn hex_str<'a>(bytes: &[u8], buf: &'a mut [u8; 32]) -> &'a str {
    let out = &mut buf[..bytes.len() * 2];
    hex::encode_to_slice(bytes, out).expect("buffer fits");
    std::str::from_utf8(out).expect("hex is ASCII")
}

impl Drop for PartitionedWriter {
    fn drop(&mut self) {
        self.parts.clear();
        for path in &self.temp_files {
            if !self.committed || path.extension().is_some_and(|e| e == "arrows") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lake;
    use arrow_array::cast::AsArray;
    use chrono::TimeZone;

    pub(super) fn outcome(employee: &str, milestone: &str, date: &str, rating: Option<i64>) -> Vec<Value> {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        crate::rows::outcomes::OutcomeRow {
            employee_id: employee.into(),
            hire_date: d - chrono::Duration::days(365),
            milestone: milestone.parse().unwrap(),
            milestone_date: d,
            employed: rating.is_some(),
            performance_rating: rating,
            exit_reason: None,
        }
        .values()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn rows_land_in_hive_partitions_and_read_back_with_partition_columns() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut w = PartitionedWriter::new(&lake, Table::Outcomes, "b1", "export.csv", now()).unwrap();
        for (e, m, d, r) in [
            ("p1", "12m", "2025-03-04", Some(4)),
            ("p2", "12m", "2025-03-09", None),
            ("p3", "3m", "2025-04-01", Some(3)),
        ] {
            let row = outcome(e, m, d, r);
            w.push(&row, &RowKeys::of(Table::Outcomes.def(), &row)).unwrap();
        }
        let files = w.commit().await.unwrap();
        let mut paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        assert!(paths[0].starts_with("lake/outcomes/milestone=12m/month=2025-03/part-b1-"), "{paths:?}");
        assert!(paths[1].starts_with("lake/outcomes/milestone=3m/month=2025-04/"), "{paths:?}");
        let scan = lake.scan(Table::Outcomes, Some(&["employee_id", "milestone", "performance_rating"])).await.unwrap();
        assert_eq!(scan.num_rows(), 3);
        let mut seen = Vec::new();
        for b in &scan.batches {
            let ids = b.column_by_name("employee_id").unwrap().as_string::<i32>();
            let ms = b.column_by_name("milestone").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                seen.push((ids.value(i).to_string(), ms.value(i).to_string()));
            }
        }
        seen.sort();
        assert_eq!(seen, vec![("p1".into(), "12m".into()), ("p2".into(), "12m".into()), ("p3".into(), "3m".into())]);
        assert!(dir.path().join("_staging").read_dir().unwrap().next().is_none(), "staging is empty after commit");
    }

    #[tokio::test]
    async fn an_uncommitted_writer_leaves_nothing_visible() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        {
            let mut w = PartitionedWriter::new(&lake, Table::Outcomes, "b2", "x.csv", now()).unwrap();
            for i in 0..(BUFFERED_ROWS + 10) {
                let row = outcome(&format!("p{i}"), "6m", "2025-06-01", Some(3));
                w.push(&row, &RowKeys::of(Table::Outcomes.def(), &row)).unwrap();
            }
            // Spilled to staging, then dropped without commit (a refused file).
        }
        assert_eq!(lake.list_files(Table::Outcomes, None).await.unwrap().len(), 0);
        assert!(dir.path().join("_staging").read_dir().unwrap().next().is_none());
    }

    #[tokio::test]
    async fn existing_keys_tell_same_rows_from_changed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let row = outcome("p1", "12m", "2025-03-04", Some(4));
        let keys = RowKeys::of(Table::Outcomes.def(), &row);
        let mut w = PartitionedWriter::new(&lake, Table::Outcomes, "b3", "x.csv", now()).unwrap();
        w.push(&row, &keys).unwrap();
        w.commit().await.unwrap();
        let stored = lake.existing_keys(Table::Outcomes, Some("milestone=12m/month=2025-03")).await.unwrap();
        assert_eq!(stored.get(&keys.event_key), Some(&keys.row_hash));
        let changed = outcome("p1", "12m", "2025-03-04", Some(2));
        let k2 = RowKeys::of(Table::Outcomes.def(), &changed);
        assert_eq!(k2.event_key, keys.event_key, "same employee and milestone: same event");
        assert_ne!(k2.row_hash, keys.row_hash, "different rating: different content");
    }

    #[test]
    fn unsafe_partition_values_are_refused() {
        let mut row = outcome("p1", "12m", "2025-03-04", Some(4));
        let (milestone, _) = Table::Outcomes.def().field(crate::rows::outcomes::MILESTONE).unwrap();
        row[milestone] = Value::Str("../../etc".into());
        assert!(partition_of(Table::Outcomes.def(), &row).is_err());
    }
}

#[cfg(test)]
mod key_stability {
    use super::*;
    use crate::rows::decisions::DecisionRow;
    use hrloop_core::{Arm, Route, Source};

    /// Event keys and row hashes are stored in every file and compared across hrloop versions
    /// (re-ingesting an export must find its rows): the bytes hashed may never change. The
    /// typed row must give the very values (and so the very keys) the positional rows of
    /// earlier versions gave.
    #[test]
    fn row_keys_are_the_same_as_ever() {
        let row = DecisionRow {
            requisition_id: "r1".into(),
            candidate_id: "pabc".into(),
            job_family: "sales".into(),
            decided_at: DateTime::from_timestamp_micros(1_767_225_600_000_000).unwrap(),
            source: Source::Serving,
            stage_reached: None,
            decision: None,
            skills: None,
            features: Some(vec![("a".into(), 1.5), ("b".into(), -2.0)]),
            decision_id: Some("d1".into()),
            model_version: Some("m/v1".into()),
            arm: Some(Arm::Champion),
            score: Some(0.75),
            route: Some(Route::Auto),
            shadow_version: None,
            shadow_score: None,
        }
        .values();
        let k = RowKeys::of(Table::Decisions.def(), &row);
        assert_eq!(hex::encode(k.event_key), "7060308cb83e6af81f9168200a8097fe");
        assert_eq!(hex::encode(k.row_hash), "a61a6a9d26c0ff09");
        let k = RowKeys::of(Table::Outcomes.def(), &super::tests::outcome("p1", "6m", "2025-06-01", Some(3)));
        assert_eq!(hex::encode(k.event_key), "5e8942a5ecef98cd7d9809ecf6dc9c6b");
        assert_eq!(hex::encode(k.row_hash), "7807e5c3c8c03d25");
    }
}
