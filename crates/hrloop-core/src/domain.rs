//! The loop's vocabulary: the 3/6/12/24-month milestones and the small closed sets the lake
//! stores as text (arm, source, route, stage, recruiter decision), each with one stable on-disk
//! form. The rows these appear in are defined once, per table, in `hrloop_lake::rows`.

use std::fmt;
use std::str::FromStr;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// A point after a hire at which an outcome (still employed? rating?) becomes known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Milestone {
    #[serde(rename = "3m")]
    M3,
    #[serde(rename = "6m")]
    M6,
    #[serde(rename = "12m")]
    M12,
    #[serde(rename = "24m")]
    M24,
}

impl Milestone {
    pub const ALL: [Milestone; 4] = [Milestone::M3, Milestone::M6, Milestone::M12, Milestone::M24];

    pub fn months(self) -> u32 {
        match self {
            Milestone::M3 => 3,
            Milestone::M6 => 6,
            Milestone::M12 => 12,
            Milestone::M24 => 24,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Milestone::M3 => "3m",
            Milestone::M6 => "6m",
            Milestone::M12 => "12m",
            Milestone::M24 => "24m",
        }
    }

    /// The calendar date the milestone falls on for a hire made on `hire_date`.
    pub fn date_after(self, hire_date: NaiveDate) -> NaiveDate {
        hire_date.checked_add_months(Months::new(self.months())).unwrap_or(NaiveDate::MAX)
    }

    /// Feedback-completeness target HR works to at this milestone, if any
    /// (DESIGN.md: > 90 % at 6 months, > 95 % at 12 months).
    pub fn completeness_target(self) -> Option<f64> {
        match self {
            Milestone::M6 => Some(0.90),
            Milestone::M12 => Some(0.95),
            _ => None,
        }
    }

    /// Recognise the milestone a pair of dates describes, allowing `tolerance_days` either way
    /// (HRIS exports are run on a schedule, not on the exact anniversary).
    pub fn from_dates(hire_date: NaiveDate, at: NaiveDate, tolerance_days: i64) -> Option<Milestone> {
        Milestone::ALL.into_iter().find(|m| (at - m.date_after(hire_date)).num_days().abs() <= tolerance_days)
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Error for text that names no milestone.
#[derive(Debug, thiserror::Error)]
#[error("unknown milestone {0:?}: expected one of 3m, 6m, 12m, 24m")]
pub struct UnknownMilestone(pub String);

impl FromStr for Milestone {
    type Err = UnknownMilestone;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let rest = t[digits.len()..].trim();
        let unit_ok = matches!(rest, "" | "m" | "mo" | "month" | "months" | "mån" | "mnd" | "måneder" | "månader");
        match (digits.as_str(), unit_ok) {
            ("3", true) => Ok(Milestone::M3),
            ("6", true) => Ok(Milestone::M6),
            ("12", true) => Ok(Milestone::M12),
            ("24", true) => Ok(Milestone::M24),
            _ => Err(UnknownMilestone(s.to_string())),
        }
    }
}

/// Error for text that is none of an enum's on-disk forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: unknown value {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    /// The column (or field) whose value it is.
    pub field: &'static str,
    pub value: String,
    pub expected: String,
}

/// An enum stored as text in the lake: each variant has one stable on-disk string, and the
/// strings are what Parquet files, DuckDB queries and dashboards see. Changing one is a format
/// change (the lake's schema test pins them).
macro_rules! on_disk_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every on-disk form, in declaration order.
            pub const LABELS: &'static [&'static str] = &[$($text),+];

            /// The on-disk form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { field: $field, value: s.to_string(), expected: Self::LABELS.join(", ") }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

on_disk_enum! {
    /// Which side of an experiment produced a served score (the decisions table's `arm`).
    Arm, "arm" {
        Champion = "champion",
        Challenger = "challenger",
        /// The challenger's score of a candidate another version served (shadow mode): never
        /// who ranked the candidate.
        Shadow = "shadow",
    }
}

on_disk_enum! {
    /// Where a decision row came from (the decisions table's `source`).
    Source, "source" {
        /// Imported ATS history.
        AtsImport = "ats_import",
        /// Scored and served by hrloop (features as served).
        Serving = "serving",
    }
}

on_disk_enum! {
    /// Why a ranked candidate goes to a human rather than straight through.
    ReviewReason, "route" {
        EdgeCase = "edge_case",
        LowConfidence = "low_confidence",
        RandomAudit = "random_audit",
        OutOfRange = "out_of_range",
    }
}

on_disk_enum! {
    /// How far an application got in the recruiting funnel (`stage_reached`).
    Stage, "stage_reached" {
        Applied = "applied",
        Screened = "screened",
        Interviewed = "interviewed",
        Offered = "offered",
        Hired = "hired",
    }
}

on_disk_enum! {
    /// What a recruiter (or the historical process) did with an application (`decision`).
    RecruiterDecision, "decision" {
        Advanced = "advanced",
        Rejected = "rejected",
        Hired = "hired",
        Withdrawn = "withdrawn",
    }
}

/// How a served candidate is routed (the decisions table's `route`): `auto`, or
/// `human:<reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Auto,
    Human(ReviewReason),
}

impl Route {
    /// The prefix every human route's on-disk form starts with.
    pub const HUMAN_PREFIX: &'static str = "human:";

    /// The on-disk form.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Auto => "auto",
            Route::Human(ReviewReason::EdgeCase) => "human:edge_case",
            Route::Human(ReviewReason::LowConfidence) => "human:low_confidence",
            Route::Human(ReviewReason::RandomAudit) => "human:random_audit",
            Route::Human(ReviewReason::OutOfRange) => "human:out_of_range",
        }
    }

    pub fn is_human(self) -> bool {
        matches!(self, Route::Human(_))
    }
}

impl From<Option<ReviewReason>> for Route {
    fn from(reason: Option<ReviewReason>) -> Self {
        reason.map_or(Route::Auto, Route::Human)
    }
}

impl FromStr for Route {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownValue {
            field: "route",
            value: s.to_string(),
            expected: std::iter::once("auto".to_string())
                .chain(ReviewReason::LABELS.iter().map(|r| format!("{}{r}", Route::HUMAN_PREFIX)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        match s.strip_prefix(Route::HUMAN_PREFIX) {
            None if s == "auto" => Ok(Route::Auto),
            None => Err(unknown()),
            Some(reason) => reason.parse().map(Route::Human).map_err(|_| unknown()),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn milestone_parsing_accepts_export_spellings() {
        for (input, want) in [
            ("3m", Some(Milestone::M3)),
            ("6 months", Some(Milestone::M6)),
            ("12 mån", Some(Milestone::M12)),
            ("24", Some(Milestone::M24)),
            (" 12M ", Some(Milestone::M12)),
            ("9m", None),
            ("twelve", None),
            ("", None),
        ] {
            assert_eq!(input.parse::<Milestone>().ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn milestone_dates_follow_calendar_months() {
        assert_eq!(Milestone::M3.date_after(d("2025-11-30")), d("2026-02-28"));
        assert_eq!(Milestone::M24.date_after(d("2024-02-29")), d("2026-02-28"));
        assert_eq!(Milestone::from_dates(d("2025-01-15"), d("2025-07-20"), 14), Some(Milestone::M6));
        assert_eq!(Milestone::from_dates(d("2025-01-15"), d("2025-09-15"), 14), None);
    }

    /// Every on-disk form parses back to its variant, and text that is none of them is refused
    /// with the field named.
    #[test]
    fn on_disk_forms_round_trip() {
        for a in Arm::ALL {
            assert_eq!(a.as_str().parse::<Arm>().unwrap(), *a);
        }
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), *s);
        }
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), *s);
        }
        for r in std::iter::once(Route::Auto).chain(ReviewReason::ALL.iter().map(|r| Route::Human(*r))) {
            assert_eq!(r.as_str().parse::<Route>().unwrap(), r);
        }
        assert_eq!(Route::Human(ReviewReason::RandomAudit).as_str(), "human:random_audit");
        let e = "human:bored".parse::<Route>().unwrap_err();
        assert_eq!(e.field, "route");
        assert!(e.to_string().contains("human:low_confidence"), "{e}");
        let e = "Champion".parse::<Arm>().unwrap_err();
        assert_eq!(e.to_string(), "arm: unknown value \"Champion\"; expected one of champion, challenger, shadow");
        assert_eq!(serde_json::to_string(&RecruiterDecision::Hired).unwrap(), "\"hired\"");
        assert_eq!(serde_json::from_str::<Source>("\"serving\"").unwrap(), Source::Serving);
    }
}
