//! Ingestion against a real local lake: formats, quarantine, refusal, idempotency, privacy.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type};
use chrono::{TimeZone, Utc};
use hrloop_ingest::{BatchReport, IngestOptions, Pseudonymiser, ResolvedMapping, Taxonomy, ingest_file};
use hrloop_lake::{Lake, Table};

mod malformed;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Fixture {
    dir: tempfile::TempDir,
    lake: Lake,
    taxonomy: Taxonomy,
    pseudo: Pseudonymiser,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("store").to_str().unwrap()).unwrap();
        Fixture {
            lake,
            taxonomy: Taxonomy::load(&repo().join("data/taxonomy")).unwrap(),
            pseudo: Pseudonymiser::new(&[42u8; 32]).unwrap(),
            dir,
        }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn mapping(&self, name: &str) -> ResolvedMapping {
        ResolvedMapping::load(&repo().join("data/mappings").join(format!("{name}.toml")), &self.taxonomy).unwrap()
    }

    async fn ingest(&self, path: &Path, mapping: &str) -> hrloop_ingest::Result<BatchReport> {
        let opts = IngestOptions {
            clock: std::sync::Arc::new(hrloop_core::ManualClock::new(
                Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
            )),
            progress: false,
        };
        ingest_file(&self.lake, path, &self.mapping(mapping), &self.pseudo, &self.taxonomy, &opts).await
    }

    async fn rows(&self, t: Table) -> usize {
        self.lake.scan(t, None).await.unwrap().num_rows()
    }

    async fn quarantine_reasons(&self) -> Vec<String> {
        let scan = self.lake.scan(Table::Quarantine, Some(&["reason"])).await.unwrap();
        let mut out: Vec<String> = scan
            .batches
            .iter()
            .flat_map(|b| {
                let r = b.column_by_name("reason").unwrap().as_string::<i32>();
                (0..b.num_rows()).map(|i| r.value(i).to_string()).collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }
}

const OUTCOMES_HEADER: &str = "Employee ID;Full name;E-mail;Personnummer;Hire date;Milestone date;Still employed;Performance rating;Exit reason\n";

fn outcomes_csv(rows: &[&str]) -> Vec<u8> {
    let mut s = String::from("\u{feff}");
    s.push_str(OUTCOMES_HEADER);
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

#[tokio::test]
async fn semicolon_csv_with_bom_quotes_nordic_text_and_mixed_dates() {
    let fx = Fixture::new();
    let path = fx.file(
        "hris.csv",
        &outcomes_csv(&[
            "E1;\"Ødegård, Åsa\";asa@example.se;19850101-1234;2025-03-01;01.03.2026;Ja;4;",
            "E2;Björn Sjöberg;bjorn@example.se;19900202-2345;01.03.2025;2025-06-03T09:00:00Z;Nej;;resigned; \"moved\" to Malmö",
            "E3;\"Märta \"\"Mä\"\" Løvås\";m@example.se;19700303-3456;15.01.2025;2025-07-15;yes;3,0;",
        ]),
    );
    let report = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((report.rows_read, report.rows_accepted, report.rows_quarantined), (3, 2, 1), "{}", report.render());
    // The row with an unquoted field containing quotes and an extra ';' has 10 fields.
    let reasons = fx.quarantine_reasons().await;
    assert_eq!(reasons, vec!["line 3: has 10 fields, the header has 9".to_string()]);
    let scan = fx.lake.scan(Table::Outcomes, None).await.unwrap();
    let mut got = Vec::new();
    for b in &scan.batches {
        let hire = b.column_by_name("hire_date").unwrap().as_primitive::<Date32Type>();
        let rating = b.column_by_name("performance_rating").unwrap().as_primitive::<Int64Type>();
        let m = b.column_by_name("milestone").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            got.push((hire.value(i), m.value(i).to_string(), rating.value(i)));
        }
    }
    got.sort();
    let days = |s: &str| {
        (chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    };
    assert_eq!(got, vec![(days("2025-01-15"), "6m".to_string(), 3), (days("2025-03-01"), "12m".to_string(), 4)]);
}

#[tokio::test]
async fn bad_rows_are_quarantined_with_line_and_field_and_good_rows_land() {
    let fx = Fixture::new();
    let path = fx.file(
        "hris.csv",
        &outcomes_csv(&[
            "E1;A;a@x.se;1;2025-01-10;2025-04-10;Ja;4;",
            "E2;B;b@x.se;2;2025-01-10;2025-04-10;Ja;7;",
            "E3;C;c@x.se;3;2025-01-10;2025-04-10;kanske;3;",
            ";D;d@x.se;4;2025-01-10;2025-04-10;Ja;3;",
            "E5;E;e@x.se;5;2025-01-10;2025-10-10;Ja;3;",
            "E6;F;f@x.se;6;2025-02-30;2025-04-10;Ja;3;",
            "E7;G;g@x.se;7;2025-01-10;2025-07-12;Ja;bra;",
        ]),
    );
    let report = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((report.rows_accepted, report.rows_quarantined), (1, 6));
    assert_eq!(report.status, "attention");
    assert_eq!(fx.rows(Table::Outcomes).await, 1);
    let reasons = fx.quarantine_reasons().await;
    let expect = [
        "line 3: field performance_rating (column \"Performance rating\"): 7 is above the maximum 5",
        "line 4: field employed (column \"Still employed\"): \"kanske\" is not yes/no",
        "line 5: field employee_id (column \"Employee ID\"): required value is missing",
        "line 6: field milestone: milestone_date 2025-10-10 is not 3, 6, 12 or 24 months (±20 days) after hire_date 2025-01-10",
        "line 7: field hire_date (column \"Hire date\"): \"2025-02-30\" is not a date (expected e.g. 2025-03-01 or 01.03.2025)",
        "line 8: field performance_rating (column \"Performance rating\"): \"bra\" is not a whole number",
    ];
    assert_eq!(reasons, expect);
    let rating = report.fields.iter().find(|f| f.field == "performance_rating").unwrap();
    assert_eq!((rating.range_violations, rating.type_violations), (1, 1));
    // employee_id is critical (required) and 6/7 complete: flagged.
    let id = report.fields.iter().find(|f| f.field == "employee_id").unwrap();
    assert!(id.flagged && id.critical, "{id:?}");
}

#[tokio::test]
async fn same_export_twice_changes_nothing_and_conflicts_are_held_back() {
    let fx = Fixture::new();
    let rows = [
        "E1;A;a;1;2025-01-10;2025-04-10;Ja;4;",
        "E2;B;b;2;2025-01-10;2025-04-10;Ja;3;",
        "E2;B;b;2;2025-01-10;2025-04-10;Ja;3;",
    ];
    let path = fx.file("hris.csv", &outcomes_csv(&rows));
    let first = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((first.rows_accepted, first.duplicates_in_file), (2, 1));
    let files_before = fx.lake.list_files(Table::Outcomes, None).await.unwrap().len();
    let again = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((again.rows_accepted, again.rows_already_present, again.duplicates_in_file), (0, 2, 1));
    assert_eq!(fx.rows(Table::Outcomes).await, 2);
    assert_eq!(fx.lake.list_files(Table::Outcomes, None).await.unwrap().len(), files_before, "no empty files either");
    // A later export that overlaps and corrects E1's rating: E3 lands, E1's change is held back.
    let later = fx.file(
        "hris2.csv",
        &outcomes_csv(&["E1;A;a;1;2025-01-10;2025-04-10;Ja;2;", "E3;C;c;3;2025-01-12;2025-04-12;Ja;5;"]),
    );
    let r = fx.ingest(&later, "hris_outcomes").await.unwrap();
    assert_eq!((r.rows_accepted, r.conflicts, r.rows_quarantined), (1, 1, 1));
    assert_eq!(fx.rows(Table::Outcomes).await, 3);
    assert!(fx.quarantine_reasons().await[0].contains("same employee_id + milestone as a stored record"));
    // Quarantine is idempotent too.
    fx.ingest(&later, "hris_outcomes").await.unwrap();
    assert_eq!(fx.rows(Table::Quarantine).await, 1);
}

#[tokio::test]
async fn idempotent_for_any_split_of_an_export_into_overlapping_batches() {
    // Property: however an export is cut into overlapping, reordered batches, the table ends
    // with exactly the distinct rows.
    let all: Vec<String> = (0..60)
        .map(|i| format!("E{i};N;e;1;2025-01-{:02};2025-04-{:02};Ja;{};", 1 + i % 28, 1 + i % 28, 1 + i % 5))
        .collect();
    for seed in 0..6u64 {
        let fx = Fixture::new();
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        for b in 0..5 {
            let (start, len) = (next(50), 5 + next(30));
            let mut batch: Vec<&str> = all.iter().cycle().skip(start).take(len).map(String::as_str).collect();
            batch.reverse();
            let path = fx.file(&format!("b{b}.csv"), &outcomes_csv(&batch));
            fx.ingest(&path, "hris_outcomes").await.unwrap();
        }
        let full = fx.file("all.csv", &outcomes_csv(&all.iter().map(String::as_str).collect::<Vec<_>>()));
        fx.ingest(&full, "hris_outcomes").await.unwrap();
        assert_eq!(fx.rows(Table::Outcomes).await, 60, "seed {seed}");
    }
}

#[tokio::test]
async fn unreadable_files_are_refused_whole_and_nothing_is_written() {
    let fx = Fixture::new();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", vec![], "the file is empty"),
        ("binary.csv", vec![0u8, 159, 146, 150, 0, 1, 2], "NUL bytes"),
        ("utf16.csv", "\u{feff}Employee ID;Hire date".encode_utf16().flat_map(|u| u.to_le_bytes()).collect(), "NUL bytes"),
        ("wrong.csv", b"id,name\n1,x\n".to_vec(), "missing column(s) \"Employee ID\""),
        ("latin1.csv", b"Employee ID;Full name;E-mail;Personnummer;Hire date;Milestone date;Still employed;Performance rating;Exit r\xe4son\n".to_vec(), "not UTF-8"),
        ("fake.parquet", b"this is not parquet".to_vec(), "not a Parquet file"),
        ("table.jsonl", b"[1,2,3]\n".to_vec(), "is not a JSON object"),
        ("notes.docx", b"hello".to_vec(), "unknown file type"),
    ];
    for (name, bytes, want) in cases {
        let path = fx.file(name, &bytes);
        let mapping = if name.ends_with(".jsonl") { "ats_hires" } else { "hris_outcomes" };
        let err = fx.ingest(&path, mapping).await.expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert!(err.to_string().contains(name), "{name}: the reason names the file: {err}");
    }
    for t in Table::ALL {
        assert_eq!(fx.rows(t).await, 0, "{t} must stay empty");
    }
}

#[tokio::test]
async fn json_lines_and_parquet_inputs() {
    let fx = Fixture::new();
    let jsonl = fx.file(
        "hires.jsonl",
        concat!(
            "{\"candidate_id\":\"C-1\",\"employee_number\":\"E1\",\"requisition\":\"R1\",\"job_family\":\"sales\",\"start_date\":\"2025-03-01\",\"name\":\"Åsa Öberg\"}\n",
            "\n",
            "{\"candidate_id\":\"C-2\",\"employee_number\":42,\"requisition\":\"R1\",\"job_family\":\"astronaut\",\"start_date\":\"01.04.2025\"}\n",
            "{\"candidate_id\":\"C-3\",\"employee_number\":\"E3\",\"requis\n",
        )
        .as_bytes(),
    );
    let r = fx.ingest(&jsonl, "ats_hires").await.unwrap();
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (3, 2, 1));
    assert!(fx.quarantine_reasons().await[0].starts_with("line 4: not a JSON object"));
    let jf = r.fields.iter().find(|f| f.field == "job_family").unwrap();
    assert_eq!((jf.unknown_values, jf.unknown_samples.clone()), (1, vec!["astronaut".to_string()]));

    // Parquet with typed columns (dates, integers, booleans): read through the same mapping.
    use arrow_array::{ArrayRef, BooleanArray, Date32Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let d = |s: &str| {
        (chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("Employee ID", Arc::new(StringArray::from(vec!["E1", "E2"]))),
        ("Full name", Arc::new(StringArray::from(vec!["Åsa Öberg", "Bo Ek"]))),
        ("Hire date", Arc::new(Date32Array::from(vec![d("2025-03-01"), d("2025-03-01")]))),
        ("Milestone date", Arc::new(Date32Array::from(vec![d("2025-06-01"), d("2026-03-02")]))),
        ("Still employed", Arc::new(BooleanArray::from(vec![true, false]))),
        ("Performance rating", Arc::new(Int64Array::from(vec![Some(5), None]))),
        ("Exit reason", Arc::new(StringArray::from(vec![None, Some("resigned")]))),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let path = fx.dir.path().join("hris.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let r = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (2, 2, 0), "{}", r.render());
}

#[tokio::test]
async fn personal_data_never_reaches_the_lake() {
    let fx = Fixture::new();
    let exports = fx.dir.path().join("sim");
    let cfg = hrloop_sim::SimConfig { months: 8, requisitions_per_month: 6, ..Default::default() };
    hrloop_sim::run(&cfg, &exports).unwrap();
    for (file, mapping) in [
        ("ats_applications.csv", "ats_applications"),
        ("ats_hires.jsonl", "ats_hires"),
        ("hris_outcomes.csv", "hris_outcomes"),
        ("protected_attributes.csv", "protected_attributes"),
    ] {
        fx.ingest(&exports.join(file), mapping).await.unwrap();
    }
    // Collect every name, e-mail and personnummer from the raw exports.
    let mut pii = std::collections::BTreeSet::new();
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_path(exports.join("ats_applications.csv")).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        for i in 1..=3 {
            if let Some(v) = rec.get(i).filter(|v| v.len() > 5) {
                pii.insert(v.to_string());
            }
        }
        // Raw identifiers must not be stored either.
        if let Some(v) = rec.get(0).filter(|v| !v.is_empty()) {
            pii.insert(v.to_string());
        }
    }
    assert!(pii.len() > 1000);
    let text = hrloop_lake_dump(&fx.lake).await + &dump_files(&fx.dir.path().join("store"));
    let pii: Vec<&String> = pii.iter().collect();
    let matcher = aho_corasick::AhoCorasick::new(&pii).unwrap();
    // Positive control: the same matcher does find the personal data in the export itself.
    assert!(matcher.is_match(&std::fs::read_to_string(exports.join("ats_applications.csv")).unwrap()));
    let found: Vec<&str> = matcher.find_iter(&text).take(5).map(|m| pii[m.pattern().as_usize()].as_str()).collect();
    assert!(found.is_empty(), "personal data found in the store: {found:?}");
}

/// Every value of every table rendered as text (Parquet pages are compressed, so scanning raw
/// bytes alone would prove nothing).
async fn hrloop_lake_dump(lake: &Lake) -> String {
    let mut out = String::new();
    for t in Table::ALL {
        for b in lake.scan(t, None).await.unwrap().batches {
            let opts = arrow_cast::display::FormatOptions::default();
            for col in b.columns() {
                let f = arrow_cast::display::ArrayFormatter::try_new(col.as_ref(), &opts).unwrap();
                for i in 0..b.num_rows() {
                    out.push_str(&f.value(i).to_string());
                    out.push('\n');
                }
            }
        }
    }
    out
}

fn dump_files(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.push_str(&dump_files(&p));
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn mappings_must_declare_identifiers_and_map_required_fields() {
    let tax = Taxonomy::default();
    let check = |toml_text: &str, want: &str| {
        let m: hrloop_ingest::Mapping = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
        let err = ResolvedMapping::resolve(m, Path::new("m.toml"), &tax).unwrap_err().to_string();
        assert!(err.contains(want), "want {want:?} in {err}");
    };
    let base = "format_version = 1\nname = \"x\"\ntable = \"hires\"\n";
    check(
        &format!("{base}[fields.employee_id]\ncolumn = \"Emp\"\n"),
        "employee_id is a person identifier: list column \"Emp\" under [pii] identifiers",
    );
    check(
        &format!("{base}[pii]\nidentifiers=[\"Emp\"]\n[fields.employee_id]\ncolumn = \"Emp\"\n"),
        "table hires requires field candidate_id",
    );
    check(&format!("{base}[fields.salary]\ncolumn = \"S\"\n"), "field \"salary\" is not in table hires");
    check(
        &format!(
            "{base}[pii]\nidentifiers=[\"E\", \"C\"]\ndrop=[\"Name\"]\n[fields.employee_id]\ncolumn=\"E\"\n\
             [fields.candidate_id]\ncolumn=\"C\"\n[fields.requisition_id]\ncolumn=\"R\"\n\
             [fields.hire_date]\ncolumn=\"D\"\n[fields.job_family]\ncolumn = \"Name\"\n"
        ),
        "declared pii.drop but mapped",
    );
    check("format_version = 2\nname = \"x\"\ntable = \"hires\"\n[fields]\n", "format_version 2 is not supported");
    check("format_version = 1\nname = \"x\"\ntable = \"quarantine\"\n[fields]\n", "not an ingestible table");
    assert!(
        toml::from_str::<hrloop_ingest::Mapping>(
            "format_version = 1\nname=\"x\"\ntable=\"hires\"\ncolour=1\n[fields]\n"
        )
        .is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn shipped_mappings_all_resolve() {
    let tax = Taxonomy::load(&repo().join("data/taxonomy")).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("data/mappings")).unwrap() {
        let p = entry.unwrap().path();
        ResolvedMapping::load(&p, &tax).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 4);
}

#[tokio::test]
async fn no_input_panics_mutated_exports_are_quarantined_or_refused() {
    // Deterministic mutation fuzzing: flip, delete, duplicate and insert bytes (including
    // invalid UTF-8, quotes, delimiters and NULs) in a valid export. Each attempt must end in a
    // report or a refusal; a panic fails the test.
    let fx = Fixture::new();
    let valid = outcomes_csv(&[
        "E1;\"Ødegård, Åsa\";a@x.se;1;2025-01-10;2025-04-10;Ja;4;",
        "E2;B;b@x.se;2;10.01.2025;2025-07-12T10:00:00Z;Nej;;resigned",
        "E3;C;c@x.se;3;2025-01-10;2026-01-10;ja;5;",
    ]);
    let jsonl = b"{\"candidate_id\":\"C-1\",\"employee_number\":\"E1\",\"requisition\":\"R1\",\"job_family\":\"sales\",\"start_date\":\"2025-03-01\"}\n".to_vec();
    let alphabet: &[u8] = b";,\"\n\r\x00\xff\xc3\xa5{}[]:9-.";
    let mut x: u64 = 0x2545f4914f6cdd1d;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let (mut reports, mut refusals) = (0, 0);
    for i in 0..300 {
        let (base, name, mapping) = if i % 3 == 0 {
            (&jsonl, format!("f{i}.jsonl"), "ats_hires")
        } else {
            (&valid, format!("f{i}.csv"), "hris_outcomes")
        };
        let mut bytes = base.clone();
        for _ in 0..1 + rnd(6) {
            let pos = rnd(bytes.len().max(1));
            match rnd(4) {
                0 if !bytes.is_empty() => {
                    let at = pos.min(bytes.len() - 1);
                    bytes[at] = alphabet[rnd(alphabet.len())];
                }
                1 if !bytes.is_empty() => {
                    bytes.remove(pos.min(bytes.len() - 1));
                }
                2 => bytes.insert(pos, alphabet[rnd(alphabet.len())]),
                _ => bytes.truncate(pos),
            }
        }
        match fx.ingest(&fx.file(&name, &bytes), mapping).await {
            Ok(r) => {
                assert_eq!(
                    r.rows_read,
                    r.rows_accepted + r.rows_quarantined + r.rows_already_present + r.duplicates_in_file
                );
                reports += 1;
            }
            Err(hrloop_ingest::Error::Unreadable { .. }) => refusals += 1,
            Err(other) => panic!("unexpected error kind for {name}: {other}"),
        }
    }
    assert!(reports > 30 && refusals > 30, "both paths exercised: reports {reports}, refusals {refusals}");
}
