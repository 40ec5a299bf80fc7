//! The nouns of the loop: requisitions, candidates, decisions, recruiter feedback, hires and
//! outcomes at the 3/6/12/24-month milestones.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, NaiveDate, Utc};
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

/// A keyed HMAC pseudonym for a person. The raw identifier never travels past ingestion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PersonId(pub String);

/// An open position that candidates apply to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requisition {
    pub id: String,
    pub job_family: String,
    pub opened_on: NaiveDate,
}

/// An applicant to a requisition, known only by pseudonym, with the features a ranker sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: PersonId,
    pub features: Vec<(String, f64)>,
}

/// How far an application got in the recruiting funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Applied,
    Screened,
    Interviewed,
    Offered,
    Hired,
}

/// What a recruiter (or the historical process) did with an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecruiterDecision {
    Advanced,
    Rejected,
    Hired,
    Withdrawn,
}

/// A decision about one candidate on one requisition, as made or as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub requisition_id: String,
    pub candidate_id: PersonId,
    pub job_family: String,
    pub at: DateTime<Utc>,
    pub stage_reached: Stage,
    pub decision: RecruiterDecision,
    pub features: Vec<(String, f64)>,
    /// Set when a model scored this candidate; `None` for imported history.
    pub model_version: Option<String>,
    pub score: Option<f64>,
}

/// A recruiter's verdict on a served ranking, the override signal for training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecruiterFeedback {
    pub requisition_id: String,
    pub candidate_id: PersonId,
    pub decision: RecruiterDecision,
    /// The recruiter went against the model's suggestion.
    pub overrides_model: bool,
    pub reason_code: Option<String>,
    pub at: DateTime<Utc>,
}

/// A candidate who became an employee. Links the ATS pseudonym to the HRIS pseudonym.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hire {
    pub employee_id: PersonId,
    pub candidate_id: PersonId,
    pub requisition_id: String,
    pub job_family: String,
    pub hire_date: NaiveDate,
}

/// What the HRIS reports about an employee at a milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub employee_id: PersonId,
    pub hire_date: NaiveDate,
    pub milestone: Milestone,
    pub milestone_date: NaiveDate,
    pub employed: bool,
    /// Performance rating 1–5; absent for people who have left.
    pub performance_rating: Option<u8>,
    pub exit_reason: Option<String>,
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
}
