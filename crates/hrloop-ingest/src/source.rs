//! Reading export files row by row, in constant memory, as text cells for the mapping's
//! columns. Problems that make the whole file unusable (wrong encoding, missing columns, not a
//! Parquet file) are errors; problems of one row are handed on as [`RawRow::Broken`].

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::{Array, StringArray};
use arrow_schema::DataType;
use indicatif::ProgressBar;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" | "tsv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// One data row as read: the mapped columns' text (checked to be UTF-8) as bytes, an unparsed
/// JSON line, or why the row could not be split.
#[derive(Debug)]
pub enum RawCells {
    Fields(csv::ByteRecord),
    JsonLine(Vec<u8>),
    Broken(String),
}

/// A row and where it is in the file: the line for CSV and JSON lines (so a person can open
/// the file there), the 1-based row for Parquet.
#[derive(Debug)]
pub struct RawRecord {
    pub line: u64,
    pub cells: RawCells,
}

/// Rows handed over at a time.
pub const CHUNK_ROWS: usize = 4096;

/// Call `f` with chunks of rows holding only the mapping's `columns`, in that order. Returns
/// the number of data rows.
pub fn read_chunks(
    path: &Path,
    format: Format,
    columns: &[String],
    delimiter: Option<&str>,
    progress: &ProgressBar,
    f: &mut dyn FnMut(Vec<RawRecord>) -> Result<()>,
) -> Result<u64> {
    match format {
        Format::Csv => read_csv(path, columns, delimiter, progress, f),
        Format::Jsonl => read_jsonl(path, progress, f),
        Format::Parquet => read_parquet(path, columns, progress, f),
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::unreadable(path, format!("cannot open: {e}")))
}

fn find_columns(path: &Path, header: &[String], columns: &[String]) -> Result<Vec<usize>> {
    let norm = |s: &str| s.trim().trim_start_matches('\u{feff}').to_lowercase();
    let header_norm: Vec<String> = header.iter().map(|h| norm(h)).collect();
    let mut idx = Vec::with_capacity(columns.len());
    let mut missing = Vec::new();
    for c in columns {
        match header_norm.iter().position(|h| *h == norm(c)) {
            Some(i) => idx.push(i),
            None => missing.push(format!("{c:?}")),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = header.iter().take(12).map(String::as_str).collect();
        return Err(Error::unreadable(
            path,
            format!(
                "missing column(s) {} required by the mapping (the file has: {})",
                missing.join(", "),
                shown.join(", ")
            ),
        ));
    }
    Ok(idx)
}

fn sniff_delimiter(first_line: &str) -> u8 {
    let count = |c: char| first_line.matches(c).count();
    [(count(';'), b';'), (count('\t'), b'\t'), (count(','), b',')]
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .filter(|(n, _)| *n > 0)
        .map_or(b',', |(_, d)| d)
}

/// Collects rows and hands them on in chunks.
struct Chunker<'a> {
    rows: Vec<RawRecord>,
    f: &'a mut dyn FnMut(Vec<RawRecord>) -> Result<()>,
}

impl Chunker<'_> {
    fn push(&mut self, line: u64, cells: RawCells) -> Result<()> {
        self.rows.push(RawRecord { line, cells });
        if self.rows.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.rows.is_empty() {
            let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(CHUNK_ROWS));
            (self.f)(rows)?;
        }
        Ok(())
    }
}

fn read_csv(
    path: &Path,
    columns: &[String],
    delimiter: Option<&str>,
    progress: &ProgressBar,
    f: &mut dyn FnMut(Vec<RawRecord>) -> Result<()>,
) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let head = reader.fill_buf().map_err(|e| Error::unreadable(path, e.to_string()))?;
    if head.is_empty() {
        return Err(Error::unreadable(path, "the file is empty"));
    }
    if head.iter().take(8192).any(|&b| b == 0) {
        return Err(Error::unreadable(
            path,
            "not a text file (it contains NUL bytes; UTF-16 or binary?): export as UTF-8 CSV",
        ));
    }
    let delim = match delimiter.unwrap_or("auto") {
        "auto" => {
            let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
            sniff_delimiter(&String::from_utf8_lossy(&head[..end]))
        }
        "\\t" | "\t" | "tab" => b'\t',
        d if d.len() == 1 => d.as_bytes()[0],
        d => return Err(Error::unreadable(path, format!("delimiter {d:?} must be one character"))),
    };
    let mut csv = csv::ReaderBuilder::new().delimiter(delim).flexible(true).has_headers(true).from_reader(reader);
    let header_bytes =
        csv.byte_headers().map_err(|e| Error::unreadable(path, format!("cannot read the header: {e}")))?.clone();
    let mut header = Vec::with_capacity(header_bytes.len());
    for h in header_bytes.iter() {
        header.push(
            std::str::from_utf8(h)
                .map_err(|_| Error::unreadable(path, "the header is not UTF-8: export the file as UTF-8"))?
                .to_string(),
        );
    }
    let idx = find_columns(path, &header, columns)?;
    let file_len = std::fs::metadata(path).map_err(|e| Error::unreadable(path, e.to_string()))?.len();
    // A second handle on the file, to look at the raw text of a record whose quote ran away.
    let mut raw_file: Option<File> = None;
    // Read as text: the csv crate checks every field, mapped or not, so a file that is not
    // UTF-8 is refused wherever the bad bytes are.
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    let mut chunks = Chunker { rows: Vec::with_capacity(CHUNK_ROWS), f };
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(path, &header, rows, &e)),
        }
        rows += 1;
        // Records read from a reader always have a position.
        let start = record.position().cloned().unwrap_or_else(csv::Position::new);
        let line = start.line();
        if rows.is_multiple_of(8192) {
            progress.set_position(start.byte());
        }
        let end = csv.position().clone();
        let mut raw_text = |from: u64, to: u64| -> Result<Vec<u8>> {
            let file = match &mut raw_file {
                Some(f) => f,
                None => raw_file.insert(open(path)?),
            };
            read_span(file, from, to).map_err(|e| Error::unreadable(path, e.to_string()))
        };
        if record.get(0).is_some_and(|f| f.starts_with('\u{feff}')) {
            // Exports joined into one file: the next one's byte-order mark starts a line. Read
            // the record again from its text after the mark, as at the start of a file, so a
            // quoted first field stays quoted.
            let raw = raw_text(start.byte(), end.byte())?;
            let text = raw.windows(3).position(|w| w == "\u{feff}".as_bytes()).map_or(&raw[..], |at| &raw[at + 3..]);
            let mut again =
                csv::ReaderBuilder::new().delimiter(delim).has_headers(false).flexible(true).from_reader(text);
            let mut reread = csv::StringRecord::new();
            if let Ok(true) = again.read_record(&mut reread) {
                reread.set_position(Some(start.clone()));
                record = reread;
            }
        }
        // A record ending more than one line on, or the last one, may hold a quote that ran away.
        if end.line() > start.line() + 1 || end.byte() >= file_len {
            let raw = raw_text(start.byte(), end.byte())?;
            let span = QuotedSpan::of(&raw, &start, end.byte() >= file_len, delim);
            if let Some(why) = span.broken(record.len(), header.len()) {
                chunks.push(span.line, RawCells::Broken(why))?;
                if let Some(next) = span.next_line {
                    csv.seek(next).map_err(|e| {
                        Error::unreadable(path, format!("cannot read again from line {}: {e}", span.line + 1))
                    })?;
                }
                continue;
            }
        }
        if record.len() != header.len() {
            chunks.push(
                line,
                RawCells::Broken(format!("has {} fields, the header has {}", record.len(), header.len())),
            )?;
            continue;
        }
        let mut projected = csv::ByteRecord::with_capacity(64, idx.len());
        for &i in &idx {
            projected.push_field(record[i].as_bytes());
        }
        chunks.push(line, RawCells::Fields(projected))?;
    }
    chunks.flush()?;
    Ok(rows)
}

fn read_error(path: &Path, header: &[String], rows: u64, e: &csv::Error) -> Error {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => {
            let line = pos.as_ref().map_or(rows + 2, csv::Position::line);
            let column =
                header.get(err.field()).map_or_else(|| format!("field {}", err.field() + 1), |h| format!("{h:?}"));
            Error::unreadable(path, format!("line {line} is not UTF-8 (column {column}): export the file as UTF-8"))
        }
        // Otherwise the csv crate only fails on IO errors: the file cannot be finished.
        _ => Error::unreadable(path, format!("read error after {rows} rows: {e}")),
    }
}

fn read_span(file: &mut File, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(from))?;
    let mut raw = Vec::new();
    file.take(to.saturating_sub(from)).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Where a CSV record's text lies, seen from its raw bytes: the line it starts on, the lines its
/// quoted line breaks took in, and whether a quote is still open at the end of the file.
#[derive(Debug)]
struct QuotedSpan {
    line: u64,
    /// The line breaks inside the record: lines `line + 1 ..= line + swallowed` belong to it.
    swallowed: u64,
    /// The start of the line after `line`, when there is one inside the record.
    next_line: Option<csv::Position>,
    open_quote: bool,
}

impl QuotedSpan {
    fn of(raw: &[u8], start: &csv::Position, at_eof: bool, delimiter: u8) -> QuotedSpan {
        // The csv crate skips blank lines before a record but counts its position from them.
        let skip = raw.iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
        let blank = raw[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
        let body = &raw[skip..];
        let line = start.line() + blank;
        let text = body.strip_suffix(b"\n").unwrap_or(body);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let swallowed = text.iter().filter(|&&b| b == b'\n').count() as u64;
        let next_line = text.iter().position(|&b| b == b'\n').map(|i| {
            let mut p = csv::Position::new();
            p.set_byte(start.byte() + (skip + i + 1) as u64).set_line(line + 1).set_record(start.record() + 1);
            p
        });
        QuotedSpan { line, swallowed, next_line, open_quote: at_eof && quote_left_open(body, delimiter) }
    }

    /// Why the record cannot be a row: a quote never closed, or a quoted line break that made a
    /// row of the wrong width (a stray quote closed by one on a later line). A closed quoted
    /// line break in a row of the right width is a value over several lines: not broken.
    fn broken(&self, fields: usize, header_fields: usize) -> Option<String> {
        let lines = match self.swallowed {
            1 => format!("line {}", self.line + 1),
            n => format!("lines {}–{}", self.line + 1, self.line + n),
        };
        if self.open_quote {
            Some(match self.swallowed {
                0 => "a quote opened on this line is never closed".to_string(),
                _ => format!(
                    "a quote opened on this line is never closed: it swallowed {lines}, which are read again as rows of their own"
                ),
            })
        } else if self.swallowed > 0 && fields != header_fields {
            Some(format!(
                "a quote opened on this line is only closed on line {}, making a row of {fields} fields (the header has {header_fields}): {lines} are read again as rows of their own",
                self.line + self.swallowed
            ))
        } else {
            None
        }
    }
}

/// Whether `record` (its raw text) ends inside a quoted field. The csv crate closes such a field
/// silently at the end of the file; its core parser, given one more line break, still asks for
/// more input.
fn quote_left_open(record: &[u8], delimiter: u8) -> bool {
    let mut input = record.to_vec();
    input.push(b'\n');
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let (mut out, mut ends) = (vec![0u8; input.len()], vec![0usize; input.len() + 1]);
    let (result, ..) = reader.read_record(&input, &mut out, &mut ends);
    matches!(result, csv_core::ReadRecordResult::InputEmpty)
}

fn read_jsonl(path: &Path, progress: &ProgressBar, f: &mut dyn FnMut(Vec<RawRecord>) -> Result<()>) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let (mut line_no, mut rows, mut bytes) = (0u64, 0u64, 0u64);
    // A bad line is quarantined like any other, but a file in which no line is a JSON object is
    // not JSON lines at all: the first bad line is kept until a good one is seen.
    let (mut seen_object, mut first_bad) = (false, None);
    let mut chunks = Chunker { rows: Vec::with_capacity(CHUNK_ROWS), f };
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::unreadable(path, e.to_string()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as u64;
        if std::str::from_utf8(&buf).is_err() {
            return Err(Error::unreadable(path, format!("line {line_no} is not UTF-8: export the file as UTF-8")));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        rows += 1;
        if rows.is_multiple_of(8192) {
            progress.set_position(bytes);
        }
        if !seen_object {
            match parse_json_object(&buf) {
                Ok(_) => seen_object = true,
                Err(e) => {
                    first_bad.get_or_insert((line_no, e));
                }
            }
        }
        chunks.push(line_no, RawCells::JsonLine(buf))?;
    }
    if let (false, Some((line, e))) = (seen_object, first_bad) {
        return Err(Error::unreadable(
            path,
            format!(
                "line {line} is not a JSON object ({e}) and no other line is one either; is this a JSON lines file?"
            ),
        ));
    }
    chunks.flush()?;
    Ok(rows)
}

/// Parse one JSON line (BOM tolerated) into an object.
pub fn parse_json_object(line: &[u8]) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let text = text.trim().trim_start_matches('\u{feff}');
    serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))
}

fn read_parquet(
    path: &Path,
    columns: &[String],
    progress: &ProgressBar,
    f: &mut dyn FnMut(Vec<RawRecord>) -> Result<()>,
) -> Result<u64> {
    let mut file = open(path)?;
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != b"PAR1" {
        return Err(Error::unreadable(path, "not a Parquet file (no PAR1 header)"));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(open(path)?)
        .map_err(|e| Error::unreadable(path, format!("not a readable Parquet file: {e}")))?;
    let header: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let idx = find_columns(path, &header, columns)?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    progress.set_length(total);
    let reader = builder.with_batch_size(8192).build().map_err(|e| Error::unreadable(path, e.to_string()))?;
    let mut row = 0u64;
    let mut chunks = Chunker { rows: Vec::with_capacity(CHUNK_ROWS), f };
    for batch in reader {
        let batch = batch.map_err(|e| Error::unreadable(path, format!("corrupt data after row {row}: {e}")))?;
        let mut cols: Vec<StringArray> = Vec::with_capacity(idx.len());
        for &i in &idx {
            let as_text = arrow_cast::cast(batch.column(i), &DataType::Utf8)
                .map_err(|e| Error::unreadable(path, format!("column {:?} cannot be read as text: {e}", header[i])))?;
            cols.push(as_text.as_string::<i32>().clone());
        }
        for r in 0..batch.num_rows() {
            row += 1;
            let mut rec = csv::ByteRecord::with_capacity(64, idx.len());
            for c in &cols {
                rec.push_field(if c.is_null(r) { b"" } else { c.value(r).as_bytes() });
            }
            chunks.push(row, RawCells::Fields(rec))?;
        }
        progress.set_position(row);
    }
    chunks.flush()?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_left_open_at_the_end() {
        for (raw, open) in [
            ("a;b\n", false),
            ("a;\"b\nc\"\n", false),
            ("a;\"b\nc\n", true),
            ("a;\"b\"\"", true),
            ("a;\"b\"\"\"", false),
            ("a;b\"c", false),
        ] {
            assert_eq!(quote_left_open(raw.as_bytes(), b';'), open, "{raw:?}");
        }
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter("a;b;c"), b';');
        assert_eq!(sniff_delimiter("a,b,c"), b',');
        assert_eq!(sniff_delimiter("\"x,y\";b;c"), b';');
        assert_eq!(sniff_delimiter("a\tb"), b'\t');
        assert_eq!(sniff_delimiter("single"), b',');
    }
}
