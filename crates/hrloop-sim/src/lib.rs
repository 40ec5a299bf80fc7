//! A simulated company: requisitions, applicants, biased historical recruiting, hires, and
//! outcomes at 3/6/12/24 months drawn from a hidden ground truth. It writes the exports an ATS
//! and an HRIS would produce — personal data and messy rows included — so hrloop's ingestion is
//! exercised exactly as in production. Deterministic per seed.
//!
//! Calibration (DESIGN.md, "The simulated company"): ~200 applicants per engineering opening,
//! about 80 % clearly unqualified, 15 % superficial matches, 5 % genuinely interesting;
//! time-to-hire around 70 days; quality-of-hire around 3.8 on 1–5; foreign work experience
//! goes with ~30 % higher retention; cover-letter soft skills predict success better than
//! grades; career changers succeed more often than keyword matching predicts; the historical
//! recruiter is a keyword ranker (years of experience, keyword match) with a bias against
//! one gender; the world drifts at month 12 so a static model decays.

mod company;
mod export;
mod people;
mod world;

pub use company::{Applicant, Company, Features, Hire, OutcomeRow, Requisition, SimConfig, success_logit};
pub use export::{ExportManifest, write_exports};
pub use people::Person;
pub use world::{CUSTOMER_FACING, Fate, Judgement, RecruiterTaste, World};

/// Simulate and write exports into `out`. Returns what was written.
pub fn run(config: &SimConfig, out: &std::path::Path) -> std::io::Result<ExportManifest> {
    let company = Company::simulate(config);
    write_exports(&company, config, out)
}
