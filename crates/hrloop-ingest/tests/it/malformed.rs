//! Malformed exports: an unterminated quote, a byte-order mark inside the file, bytes that are
//! not UTF-8, a bad first JSON line. Each names the line, and no row goes missing unreported.

use arrow_array::cast::AsArray;
use hrloop_lake::Table;

use super::{Fixture, outcomes_csv};

const ROW_1: &str = "E1;A;a@x.se;1;2025-01-10;2025-04-10;Ja;4;";
const ROW_2: &str = "E2;B;b@x.se;2;2025-01-10;2025-04-10;Ja;4;";
const ROW_4: &str = "E4;D;d@x.se;4;2025-01-10;2025-04-10;Ja;3;";
const ROW_5: &str = "E5;E;e@x.se;5;2025-01-10;2025-04-10;Nej;;resigned";

impl Fixture {
    /// The stored pseudonyms of `field`, sorted.
    async fn ids(&self, table: Table, field: &str) -> Vec<String> {
        let scan = self.lake.scan(table, Some(&[field])).await.unwrap();
        let mut out: Vec<String> = scan
            .batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name(field).unwrap().as_string::<i32>();
                (0..b.num_rows()).map(|i| c.value(i).to_string()).collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    fn pseudonyms(&self, namespace: &str, ids: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = ids.iter().map(|id| self.pseudo.pseudonym(namespace, id)).collect();
        out.sort();
        out
    }
}

#[tokio::test]
async fn unterminated_quote_is_quarantined_on_its_line_and_the_rows_it_swallowed_are_read() {
    // (what the third row looks like, what the fifth looks like)
    let cases = [
        // Open quote in a dropped column, never closed: it runs to the end of the file.
        ("E3;\"Märta Løvås;m@x.se;3;2025-01-10;2025-04-10;Ja;3;", ROW_5),
        // Open quote in the last column: the swallowed rows would make one 9-field row.
        ("E3;C;c@x.se;3;2025-01-10;2025-04-10;Nej;;\"moved to Malmö", ROW_5),
        // Closed by the opening quote of a later row.
        ("E3;\"Märta Løvås;m@x.se;3;2025-01-10;2025-04-10;Ja;3;", "E5;E;e@x.se;5;2025-01-10;2025-04-10;Nej;;\"moved\""),
    ];
    for (row_3, row_5) in cases {
        let fx = Fixture::new();
        let path = fx.file("hris.csv", &outcomes_csv(&[ROW_1, ROW_2, row_3, ROW_4, row_5]));
        let r = fx.ingest(&path, "hris_outcomes").await.unwrap();
        assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (5, 4, 1), "{row_3}\n{}", r.render());
        let reasons = fx.quarantine_reasons().await;
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("line 4: a quote opened on this line"), "{}", reasons[0]);
        assert!(reasons[0].contains("lines 5–6"), "it says what it swallowed: {}", reasons[0]);
        assert_eq!(fx.ids(Table::Outcomes, "employee_id").await, fx.pseudonyms("employee", &["E1", "E2", "E4", "E5"]));
    }

    // A quoted line break that is closed is a multi-line value, not an error.
    let fx = Fixture::new();
    let row_3 = "E3;C;c@x.se;3;2025-01-10;2025-04-10;Nej;;\"moved\nto Malmö\"";
    let path = fx.file("hris.csv", &outcomes_csv(&[ROW_1, ROW_2, row_3, ROW_4, ROW_5]));
    let r = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (5, 5, 0), "{}", r.render());
}

#[tokio::test]
async fn byte_order_mark_inside_the_file_does_not_change_a_pseudonym() {
    let fx = Fixture::new();
    // Exports joined together: each part's byte-order mark lands at the start of a line.
    let (row_4, row_6) = (format!("\u{feff}{ROW_4}"), "\u{feff}\"E6\";F;f@x.se;6;2025-01-10;2025-04-10;Ja;2;");
    let csv = outcomes_csv(&[ROW_1, ROW_2, &row_4, ROW_5, row_6]);
    let path = fx.file("joined.csv", &csv);
    let r = fx.ingest(&path, "hris_outcomes").await.unwrap();
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (5, 5, 0), "{}", r.render());
    assert_eq!(
        fx.ids(Table::Outcomes, "employee_id").await,
        fx.pseudonyms("employee", &["E1", "E2", "E4", "E5", "E6"])
    );

    // Inside a JSON string too.
    let jsonl = "{\"candidate_id\":\"\u{feff}C-1\",\"employee_number\":\"E1\u{feff}\",\"requisition\":\"R1\",\"job_family\":\"sales\",\"start_date\":\"2025-03-01\"}\n";
    let r = fx.ingest(&fx.file("hires.jsonl", jsonl.as_bytes()), "ats_hires").await.unwrap();
    assert_eq!(r.rows_accepted, 1, "{}", r.render());
    assert_eq!(fx.ids(Table::Hires, "candidate_id").await, fx.pseudonyms("candidate", &["C-1"]));
    assert_eq!(fx.ids(Table::Hires, "employee_id").await, fx.pseudonyms("employee", &["E1"]));
}

/// `text` in Latin-1, as old HR systems export it.
fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character")).collect()
}

fn hire_line(candidate: &str, extra: &str) -> String {
    format!(
        "{{\"candidate_id\":\"{candidate}\",\"employee_number\":\"E{candidate}\",\"requisition\":\"R1\",\"job_family\":\"sales\",\"start_date\":\"2025-03-01\"{extra}}}\n"
    )
}

#[tokio::test]
async fn bytes_that_are_not_utf8_refuse_the_file_whichever_column_holds_them() {
    let fx = Fixture::new();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        // A name: dropped, never stored, but the file is still not UTF-8.
        (
            "dropped.csv",
            [outcomes_csv(&[ROW_1]), latin1("E2;Bä;b@x.se;2;2025-01-10;2025-04-10;Ja;4;\n")].concat(),
            "line 3",
            "\"Full name\"",
        ),
        (
            "mapped.csv",
            [outcomes_csv(&[ROW_1, ROW_2]), latin1("E3;C;c@x.se;3;2025-01-10;2025-04-10;Ja;4;hälsa\n")].concat(),
            "line 4",
            "\"Exit reason\"",
        ),
        (
            "hires.jsonl",
            [hire_line("C-1", "").into_bytes(), latin1(&hire_line("C-2", ",\"name\":\"Säll\""))].concat(),
            "line 2",
            "",
        ),
    ];
    for (name, bytes, line, column) in cases {
        let path = fx.file(name, &bytes);
        let mapping = if name.ends_with(".jsonl") { "ats_hires" } else { "hris_outcomes" };
        let err = fx.ingest(&path, mapping).await.expect_err(name).to_string();
        for want in ["not UTF-8", line, column, name] {
            assert!(err.contains(want), "{name}: want {want:?} in {err}");
        }
    }
    for t in Table::ALL {
        assert_eq!(fx.rows(t).await, 0, "{t} must stay empty");
    }
}

#[tokio::test]
async fn bad_first_json_line_is_quarantined_like_any_other() {
    let fx = Fixture::new();
    let text = format!("{{\"candidate_id\":\"C-0\",\"employ\n{}{}", hire_line("C-1", ""), hire_line("C-2", ""));
    let r = fx.ingest(&fx.file("hires.jsonl", text.as_bytes()), "ats_hires").await.unwrap();
    assert_eq!((r.rows_read, r.rows_accepted, r.rows_quarantined), (3, 2, 1), "{}", r.render());
    let reasons = fx.quarantine_reasons().await;
    assert!(reasons[0].starts_with("line 1: not a JSON object"), "{reasons:?}");

    // A file in which no line is a JSON object is not JSON lines at all: refused whole.
    let err = fx.ingest(&fx.file("export.jsonl", b"id,name\n1,x\n2,y\n"), "ats_hires").await.expect_err("csv");
    assert!(err.to_string().contains("line 1 is not a JSON object"), "{err}");
    assert!(err.to_string().contains("no other line is one either"), "{err}");
    assert_eq!(fx.rows(Table::Hires).await, 2);
}
