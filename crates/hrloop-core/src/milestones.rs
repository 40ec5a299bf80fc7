//! Which outcomes are due, which arrived, which are missing, per hire cohort and milestone.
//!
//! An outcome at milestone M is *known* when the HRIS reported on the person at M, or reported
//! them as gone at an earlier milestone (someone who left before M is known not to be retained
//! at M). It is *due* once the milestone date plus a grace period for the export cycle has passed.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use crate::Milestone;

/// One hire as milestone tracking sees it.
#[derive(Debug, Clone)]
pub struct HireRef<'a> {
    pub employee_id: &'a str,
    pub hire_date: NaiveDate,
}

/// One reported outcome as milestone tracking sees it.
#[derive(Debug, Clone)]
pub struct OutcomeRef<'a> {
    pub employee_id: &'a str,
    pub milestone: Milestone,
    pub employed: bool,
}

/// Counts for one hire cohort (month) at one milestone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CohortMilestone {
    /// Hire month, `YYYY-MM`.
    pub cohort: String,
    pub milestone: Milestone,
    pub hires: u64,
    /// Milestone date plus grace has passed.
    pub due: u64,
    /// Due and known (reported, or left earlier).
    pub arrived: u64,
    pub missing: u64,
    /// Not yet due.
    pub pending: u64,
}

/// Feedback completeness at one milestone over all cohorts, against HR's target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MilestoneCompleteness {
    pub milestone: Milestone,
    pub due: u64,
    pub arrived: u64,
    /// `arrived / due`; `None` while nothing is due.
    pub completeness: Option<f64>,
    pub target: Option<f64>,
    /// `Some(false)` when below target.
    pub meets_target: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MilestoneStatus {
    pub as_of: NaiveDate,
    pub grace_days: i64,
    pub cohorts: Vec<CohortMilestone>,
    pub completeness: Vec<MilestoneCompleteness>,
}

/// Compute milestone status as of `today`.
pub fn status(
    hires: &[HireRef<'_>],
    outcomes: &[OutcomeRef<'_>],
    today: NaiveDate,
    grace_days: i64,
) -> MilestoneStatus {
    // For each employee: milestones reported, and the earliest milestone reported as gone.
    let mut reported: HashMap<&str, (u8, Option<Milestone>)> = HashMap::new();
    for o in outcomes {
        let entry = reported.entry(o.employee_id).or_insert((0, None));
        entry.0 |= bit(o.milestone);
        if !o.employed {
            entry.1 = Some(entry.1.map_or(o.milestone, |m| m.min(o.milestone)));
        }
    }
    // Cells by (year, month, milestone): the same order as the cohort labels, which are made
    // once per cell rather than once per hire.
    let mut cells: BTreeMap<(i32, u32, Milestone), CohortMilestone> = BTreeMap::new();
    for h in hires {
        let (year, month) = (h.hire_date.year(), h.hire_date.month());
        let known = reported.get(h.employee_id);
        for m in Milestone::ALL {
            let cell = cells.entry((year, month, m)).or_insert_with(|| CohortMilestone {
                cohort: format!("{year:04}-{month:02}"),
                milestone: m,
                hires: 0,
                due: 0,
                arrived: 0,
                missing: 0,
                pending: 0,
            });
            cell.hires += 1;
            if m.date_after(h.hire_date) + Duration::days(grace_days) > today {
                cell.pending += 1;
                continue;
            }
            cell.due += 1;
            let arrived = known.is_some_and(|(bits, left)| bits & bit(m) != 0 || left.is_some_and(|l| l < m));
            if arrived {
                cell.arrived += 1;
            } else {
                cell.missing += 1;
            }
        }
    }
    let cohorts: Vec<CohortMilestone> = cells.into_values().collect();
    let completeness = Milestone::ALL
        .into_iter()
        .map(|m| {
            let (due, arrived) =
                cohorts.iter().filter(|c| c.milestone == m).fold((0, 0), |(d, a), c| (d + c.due, a + c.arrived));
            let completeness = (due > 0).then(|| arrived as f64 / due as f64);
            let target = m.completeness_target();
            MilestoneCompleteness {
                milestone: m,
                due,
                arrived,
                completeness,
                target,
                meets_target: completeness.zip(target).map(|(c, t)| c > t),
            }
        })
        .collect();
    MilestoneStatus { as_of: today, grace_days, cohorts, completeness }
}

fn bit(m: Milestone) -> u8 {
    1 << (m as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn due_arrived_missing_and_leavers_count_as_known() {
        let hires = [
            HireRef { employee_id: "a", hire_date: d("2025-01-10") },
            HireRef { employee_id: "b", hire_date: d("2025-01-20") },
            HireRef { employee_id: "c", hire_date: d("2025-01-25") },
        ];
        let outcomes = [
            OutcomeRef { employee_id: "a", milestone: Milestone::M3, employed: true },
            OutcomeRef { employee_id: "a", milestone: Milestone::M6, employed: true },
            // b left before 3 months: 6m is known (not retained) without a row.
            OutcomeRef { employee_id: "b", milestone: Milestone::M3, employed: false },
        ];
        // 2025-08-15: 3m and 6m are due (+14 days grace) for all three, 12m for none.
        let s = status(&hires, &outcomes, d("2025-08-15"), 14);
        let cell = |m| s.cohorts.iter().find(|c| c.milestone == m).unwrap().clone();
        assert_eq!((cell(Milestone::M3).due, cell(Milestone::M3).arrived, cell(Milestone::M3).missing), (3, 2, 1));
        assert_eq!((cell(Milestone::M6).due, cell(Milestone::M6).arrived, cell(Milestone::M6).missing), (3, 2, 1));
        assert_eq!((cell(Milestone::M12).due, cell(Milestone::M12).pending), (0, 3));
        let six = s.completeness.iter().find(|c| c.milestone == Milestone::M6).unwrap();
        assert_eq!(six.target, Some(0.90));
        assert_eq!(six.meets_target, Some(false));
        assert!((six.completeness.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let twelve = s.completeness.iter().find(|c| c.milestone == Milestone::M12).unwrap();
        assert_eq!(twelve.completeness, None);
    }

    #[test]
    fn grace_period_delays_due() {
        let hires = [HireRef { employee_id: "a", hire_date: d("2025-01-10") }];
        let s = status(&hires, &[], d("2025-04-20"), 14);
        let three = s.cohorts.iter().find(|c| c.milestone == Milestone::M3).unwrap();
        assert_eq!((three.due, three.pending), (0, 1));
    }
}
