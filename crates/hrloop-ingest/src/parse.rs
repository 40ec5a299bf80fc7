//! Text to typed values, accepting what real exports contain: several date layouts, decimal
//! commas, yes/no in English and Scandinavian languages. Errors are sentences for a human.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A cell's text as hrloop reads it: surrounding white space dropped and byte-order marks
/// (U+FEFF) removed wherever they are. Exports joined into one file put a BOM at the start of a
/// line; left inside an identifier it would make a different pseudonym for the same person.
pub fn clean(s: &str) -> Cow<'_, str> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.contains('\u{feff}') { Cow::Owned(t.replace('\u{feff}', "")) } else { Cow::Borrowed(t) }
}

const DATE_FORMATS: [&str; 4] = ["%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y"];
const DATETIME_FORMATS: [&str; 3] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M"];

/// `2025-03-01` and `01.03.2025` without going through a format string: they are nearly every
/// date in real exports, and this is the hot path of ingestion.
fn fast_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let (y, m, d) = match (b[4], b[7], b[2], b[5]) {
        (b'-', b'-', _, _) => (num(0..4)?, num(5..7)?, num(8..10)?),
        (_, _, b'.', b'.') => (num(6..10)?, num(3..5)?, num(0..2)?),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

pub fn date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if let Some(d) = fast_date(s) {
        return Ok(d);
    }
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Ok(d);
        }
    }
    timestamp(s)
        .map(|t| t.date_naive())
        .map_err(|_| format!("{s:?} is not a date (expected e.g. 2025-03-01 or 01.03.2025)"))
}

pub fn timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(d) = fast_date(s) {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in DATETIME_FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
        }
    }
    Err(format!("{s:?} is not a date and time (expected e.g. 2025-03-01T09:00:00Z)"))
}

pub fn float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    // A decimal comma ("4,5") is how Scandinavian exports write numbers.
    let parsed =
        if t.contains(',') && !t.contains('.') { t.replace(',', ".").parse::<f64>() } else { t.parse::<f64>() };
    match parsed {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{t:?} is not a number")),
    }
}

pub fn int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Ok(i);
    }
    match float(t) {
        Ok(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(x as i64),
        _ => Err(format!("{t:?} is not a whole number")),
    }
}

pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "ja" | "j" | "kyllä" | "employed" | "active" => Ok(true),
        "false" | "f" | "no" | "n" | "0" | "nej" | "nei" | "ei" | "left" | "terminated" | "inactive" => Ok(false),
        other => Err(format!("{other:?} is not yes/no")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(f: impl Fn(&str) -> Result<T, String>, cases: &[(&str, Option<T>)]) {
        for (input, want) in cases {
            assert_eq!(f(input).ok().as_ref(), want.as_ref(), "input {input:?}");
        }
    }

    #[test]
    fn cells_lose_white_space_and_byte_order_marks() {
        check(
            |s| Ok::<_, String>(clean(s).into_owned()),
            &[
                (" E1 ", Some("E1".to_string())),
                ("\u{feff}E1", Some("E1".to_string())),
                ("\u{feff} E1\u{feff}", Some("E1".to_string())),
                ("E\u{feff}1", Some("E1".to_string())),
                ("Ødegård, Åsa", Some("Ødegård, Åsa".to_string())),
            ],
        );
    }

    #[test]
    fn dates_in_export_formats() {
        let d = |y, m, dd| Some(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        check(
            date,
            &[
                ("2025-03-01", d(2025, 3, 1)),
                ("01.03.2025", d(2025, 3, 1)),
                ("2025-03-01T09:00:00Z", d(2025, 3, 1)),
                ("2025-03-01T23:30:00-02:00", d(2025, 3, 2)),
                (" 2025/03/01 ", d(2025, 3, 1)),
                ("2025-02-30", None),
                ("March 1st", None),
                ("", None),
            ],
        );
    }

    #[test]
    fn numbers_and_booleans() {
        check(
            float,
            &[("4.5", Some(4.5)), ("4,5", Some(4.5)), ("NaN", None), ("inf", None), ("", None), ("1e3", Some(1000.0))],
        );
        check(int, &[("4", Some(4)), ("4.0", Some(4)), ("4.5", None), ("x", None)]);
        check(
            boolean,
            &[("Ja", Some(true)), ("nej", Some(false)), ("YES", Some(true)), ("0", Some(false)), ("maybe", None)],
        );
    }
}
