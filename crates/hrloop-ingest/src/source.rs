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

/// One data row: the text of each requested column, or why the row could not be split.
#[derive(Debug)]
pub enum RawRow<'a> {
    Values(&'a [Option<&'a str>]),
    Broken(String),
}

/// Call `f(row_number, row)` for every data row. Row numbers are file line numbers for CSV and
/// JSON lines (so a person can open the file at that line) and 1-based row indexes for Parquet.
pub fn read_rows(
    path: &Path,
    format: Format,
    columns: &[String],
    delimiter: Option<&str>,
    progress: &ProgressBar,
    f: &mut dyn FnMut(u64, RawRow<'_>) -> Result<()>,
) -> Result<u64> {
    match format {
        Format::Csv => read_csv(path, columns, delimiter, progress, f),
        Format::Jsonl => read_jsonl(path, columns, progress, f),
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

fn read_csv(
    path: &Path,
    columns: &[String],
    delimiter: Option<&str>,
    progress: &ProgressBar,
    f: &mut dyn FnMut(u64, RawRow<'_>) -> Result<()>,
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
        d => {
            return Err(Error::unreadable(path, format!("delimiter {d:?} must be one character")));
        }
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
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // The csv crate only fails on IO errors: the file cannot be finished.
                return Err(Error::unreadable(path, format!("read error after {rows} rows: {e}")));
            }
        }
        rows += 1;
        let line = record.position().map_or(rows + 1, |p| p.line());
        if rows.is_multiple_of(8192) {
            progress.set_position(record.position().map_or(0, |p| p.byte()));
        }
        if record.len() != header.len() {
            let msg = format!("has {} fields, the header has {}", record.len(), header.len());
            f(line, RawRow::Broken(msg))?;
            continue;
        }
        let mut cells: Vec<Option<&str>> = Vec::with_capacity(idx.len());
        let mut bad_utf8 = None;
        for (ci, &i) in idx.iter().enumerate() {
            match std::str::from_utf8(&record[i]) {
                Ok(s) => cells.push(Some(s)),
                Err(_) => {
                    bad_utf8 = Some(ci);
                    break;
                }
            }
        }
        if let Some(ci) = bad_utf8 {
            f(line, RawRow::Broken(format!("column {:?} is not valid UTF-8", columns[ci])))?;
            continue;
        }
        f(line, RawRow::Values(&cells))?;
    }
    Ok(rows)
}

fn read_jsonl(
    path: &Path,
    columns: &[String],
    progress: &ProgressBar,
    f: &mut dyn FnMut(u64, RawRow<'_>) -> Result<()>,
) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, open(path)?);
    let wanted: Vec<String> = columns.iter().map(|c| c.trim().to_lowercase()).collect();
    let mut buf = Vec::new();
    let (mut line_no, mut rows, mut bytes, mut seen_object) = (0u64, 0u64, 0u64, false);
    let mut texts: Vec<Option<String>> = vec![None; columns.len()];
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::unreadable(path, e.to_string()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as u64;
        let Ok(text) = std::str::from_utf8(&buf) else {
            rows += 1;
            f(line_no, RawRow::Broken("not valid UTF-8".into()))?;
            continue;
        };
        let text = text.trim().trim_start_matches('\u{feff}');
        if text.is_empty() {
            continue;
        }
        rows += 1;
        if rows.is_multiple_of(8192) {
            progress.set_position(bytes);
        }
        let obj = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Ok(o) => o,
            Err(e) if !seen_object => {
                return Err(Error::unreadable(
                    path,
                    format!("line {line_no} is not a JSON object ({e}); is this a JSON lines file?"),
                ));
            }
            Err(e) => {
                f(line_no, RawRow::Broken(format!("not a JSON object: {e}")))?;
                continue;
            }
        };
        seen_object = true;
        texts.iter_mut().for_each(|t| *t = None);
        for (k, v) in &obj {
            if let Some(i) = wanted.iter().position(|w| *w == k.trim().to_lowercase()) {
                texts[i] = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
            }
        }
        let view: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        f(line_no, RawRow::Values(&view))?;
    }
    Ok(rows)
}

fn read_parquet(
    path: &Path,
    columns: &[String],
    progress: &ProgressBar,
    f: &mut dyn FnMut(u64, RawRow<'_>) -> Result<()>,
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
    for batch in reader {
        let batch = batch.map_err(|e| Error::unreadable(path, format!("corrupt data after row {row}: {e}")))?;
        let mut cols: Vec<StringArray> = Vec::with_capacity(idx.len());
        for &i in &idx {
            let c = batch.column(i);
            let as_text = arrow_cast::cast(c, &DataType::Utf8)
                .map_err(|e| Error::unreadable(path, format!("column {:?} cannot be read as text: {e}", header[i])))?;
            cols.push(as_text.as_string::<i32>().clone());
        }
        let mut view: Vec<Option<&str>> = Vec::with_capacity(idx.len());
        for r in 0..batch.num_rows() {
            row += 1;
            view.clear();
            view.extend(cols.iter().map(|c| (!c.is_null(r)).then(|| c.value(r))));
            f(row, RawRow::Values(&view))?;
        }
        progress.set_position(row);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter("a;b;c"), b';');
        assert_eq!(sniff_delimiter("a,b,c"), b',');
        assert_eq!(sniff_delimiter("\"x,y\";b;c"), b';');
        assert_eq!(sniff_delimiter("a\tb"), b'\t');
        assert_eq!(sniff_delimiter("single"), b',');
    }
}
