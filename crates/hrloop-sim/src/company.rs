//! The simulated company and its hidden ground truth.

use chrono::{Datelike, Duration, Months, NaiveDate};
use hrloop_core::Milestone;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::people::{Person, person};
use crate::world::RecruiterTaste;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub months: u32,
    pub seed: u64,
    /// First day of the simulated history.
    pub start: NaiveDate,
    pub requisitions_per_month: u32,
    /// Share of export rows made invalid on purpose (bad dates, out-of-range ratings, ...).
    pub bad_row_rate: f64,
    /// Share of export rows repeated verbatim.
    pub duplicate_rate: f64,
    /// Month (from the start) at which what predicts success changes.
    pub drift_month: u32,
    /// What recruiters weigh on top of the interview when they judge candidates a ranking
    /// suggested ([`crate::World::judge`]). None by default: the closed loop's recruiters judge
    /// by the interview; the overrides backtest gives them [`RecruiterTaste::SIMULATED`].
    pub recruiter_taste: RecruiterTaste,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            months: 24,
            seed: 7,
            start: NaiveDate::from_ymd_opt(2024, 11, 1).expect("valid date"),
            requisitions_per_month: 30,
            bad_row_rate: 0.015,
            duplicate_rate: 0.003,
            drift_month: 12,
            recruiter_taste: RecruiterTaste::NONE,
        }
    }
}

/// Job families with the share of requisitions and applicants per opening.
pub const JOB_FAMILIES: [(&str, f64, u32); 6] = [
    ("software_engineering", 0.35, 210),
    ("data_science", 0.15, 120),
    ("product_management", 0.10, 90),
    ("sales", 0.15, 80),
    ("customer_support", 0.15, 60),
    ("finance", 0.10, 50),
];

const SKILLS: [&str; 14] = [
    "python",
    "rust",
    "java",
    "sql",
    "kubernetes",
    "aws",
    "machine_learning",
    "statistics",
    "negotiation",
    "crm",
    "accounting",
    "excel",
    "communication",
    "leadership",
];

#[derive(Debug, Clone)]
pub struct Requisition {
    pub id: String,
    pub job_family: &'static str,
    pub opened_on: NaiveDate,
    pub openings: u32,
    pub month: u32,
}

#[derive(Debug, Clone)]
pub struct Features {
    pub years_experience: f64,
    /// Keyword overlap between CV and job ad: what a keyword ranker sees.
    pub skill_match: f64,
    pub assessment_score: f64,
    pub interview_score: Option<f64>,
    pub education_level: u8,
    pub career_changer: bool,
    pub foreign_experience: bool,
    /// Soft skills shown in the cover letter, 0–1.
    pub soft_skill_score: f64,
}

#[derive(Debug, Clone)]
pub struct Applicant {
    pub candidate_ref: String,
    pub requisition: usize,
    pub person: Person,
    pub applied_on: NaiveDate,
    pub gender: &'static str,
    pub age_band: &'static str,
    pub location: &'static str,
    pub skills: Vec<&'static str>,
    pub features: Features,
    /// Hidden real competence, 0–1.
    pub competence: f64,
    pub stage: &'static str,
    pub decision: &'static str,
    /// Ground truth: probability of success at 12 months (employed, rating >= 3) if hired now.
    pub p_success: f64,
}

#[derive(Debug, Clone)]
pub struct Hire {
    pub applicant: usize,
    pub employee_ref: String,
    pub hire_date: NaiveDate,
    /// Months after hire at which the person left, if within 24.
    pub left_after_months: Option<u32>,
    pub exit_reason: &'static str,
    /// Latent success logit that drives ratings and attrition.
    pub latent: f64,
}

#[derive(Debug, Clone)]
pub struct OutcomeRow {
    pub hire: usize,
    pub milestone: Milestone,
    pub milestone_date: NaiveDate,
    pub employed: bool,
    pub rating: Option<u8>,
    pub exit_reason: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Company {
    pub requisitions: Vec<Requisition>,
    pub applicants: Vec<Applicant>,
    pub hires: Vec<Hire>,
    /// Outcome rows the HRIS reported by the end of the simulation.
    pub outcomes: Vec<OutcomeRow>,
    pub end: NaiveDate,
}

/// A job family drawn with the shares of [`JOB_FAMILIES`].
pub(crate) fn pick_family(rng: &mut impl Rng) -> (&'static str, f64, u32) {
    let pick: f64 = rng.random();
    let mut acc = 0.0;
    for jf in JOB_FAMILIES {
        acc += jf.1;
        if pick <= acc {
            return jf;
        }
    }
    JOB_FAMILIES[0]
}

pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Ground-truth success logit. Before the drift, hidden competence dominates; after it, the
/// work changes: assessment results and soft skills matter more, keyword-visible skills less.
pub fn success_logit(f: &Features, competence: f64, drifted: bool) -> f64 {
    let (w_comp, w_soft, w_assess) = if drifted { (1.4, 2.6, 1.2) } else { (3.0, 1.6, 0.2) };
    let interview = f.interview_score.unwrap_or(3.0);
    -0.9 + w_comp * (competence - 0.45)
        + w_soft * (f.soft_skill_score - 0.5)
        + w_assess * (f.assessment_score - 60.0) / 25.0
        + 0.35 * f.foreign_experience as u8 as f64
        + 0.9 * (f.career_changer as u8 as f64) * f.soft_skill_score
        + 0.25 * (interview - 3.0)
        + 0.12 * (1.0 + f.years_experience).ln()
}

impl Company {
    pub fn simulate(config: &SimConfig) -> Company {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let end = config.start.checked_add_months(Months::new(config.months)).expect("date in range");
        let mut requisitions = Vec::new();
        let mut applicants: Vec<Applicant> = Vec::new();
        let mut hires = Vec::new();
        let mut serial = 0u64;
        for month in 0..config.months {
            let month_start = config.start.checked_add_months(Months::new(month)).expect("date in range");
            // Hiring dips in July and December.
            let seasonal = match month_start.month() {
                7 | 12 => 0.6,
                _ => 1.0,
            };
            let n_reqs = ((config.requisitions_per_month as f64) * seasonal).round().max(1.0) as u32;
            for r in 0..n_reqs {
                let family = pick_family(&mut rng);
                let req = Requisition {
                    id: format!("REQ-{:04}{:02}-{:03}", month_start.year(), month_start.month(), r + 1),
                    job_family: family.0,
                    opened_on: month_start + Duration::days(rng.random_range(0..28)),
                    openings: if rng.random_bool(0.15) { 2 } else { 1 },
                    month,
                };
                let ri = requisitions.len();
                let n_app = ((family.2 as f64) * rng.random_range(0.7..1.3)).round() as usize;
                let first = applicants.len();
                for _ in 0..n_app {
                    serial += 1;
                    applicants.push(applicant(&mut rng, &req, ri, serial, month >= config.drift_month));
                }
                recruit(&mut rng, &mut applicants[first..], req.openings as usize);
                // Hires: the accepted offers.
                for (offset, a) in applicants[first..].iter().enumerate() {
                    if a.decision == "hired" {
                        let days = (70.0 + 12.0 * normal(&mut rng)).clamp(35.0, 120.0) as i64;
                        let hire_date = req.opened_on + Duration::days(days);
                        let drifted = hire_date
                            >= config.start.checked_add_months(Months::new(config.drift_month)).expect("date");
                        let latent = success_logit(&a.features, a.competence, drifted) + 0.5 * normal(&mut rng);
                        // Monthly hazard of leaving falls with fit.
                        let hazard = (0.035 * (-0.9 * latent).exp()).clamp(0.002, 0.25);
                        let left = (1..=24u32).find(|_| rng.random_bool(hazard));
                        let exit_reason = ["resigned", "resigned", "dismissed", "relocated", "end_of_probation"]
                            [rng.random_range(0..5)];
                        hires.push(Hire {
                            applicant: first + offset,
                            employee_ref: format!("E{:06}", 100000 + hires.len() as u64),
                            hire_date,
                            left_after_months: left,
                            exit_reason,
                            latent,
                        });
                    }
                }
                requisitions.push(req);
            }
        }
        let outcomes = outcomes(&mut rng, &hires, end);
        Company { requisitions, applicants, hires, outcomes, end }
    }
}

pub(crate) fn applicant(rng: &mut StdRng, req: &Requisition, ri: usize, serial: u64, drifted: bool) -> Applicant {
    let class: f64 = rng.random();
    // 80 % clearly unqualified, 15 % superficial keyword matches, 5 % genuinely interesting.
    let (competence, skill_match, years_mean, career_changer_p) = if class < 0.80 {
        (rng.random_range(0.0..0.35f64), rng.random_range(0.0..0.45f64), 4.0, 0.08)
    } else if class < 0.95 {
        (rng.random_range(0.3..0.6), rng.random_range(0.55..0.98), 8.0, 0.05)
    } else {
        (rng.random_range(0.6..1.0), rng.random_range(0.2..0.85), 6.0, 0.35)
    };
    let years_experience = ((-years_mean * (1.0 - rng.random::<f64>()).ln()).min(45.0) * 10.0).round() / 10.0;
    let career_changer = rng.random_bool(career_changer_p);
    let foreign_experience = rng.random_bool(0.2);
    let soft_skill_score = (rng.random_range(0.15..0.75f64) + if class >= 0.95 { 0.2 } else { 0.0 }).min(1.0);
    let assessment_score = (40.0 + 50.0 * competence + 8.0 * normal(rng)).clamp(0.0, 100.0).round();
    let education_level = (rng.random_range(0..4u8) + (competence > 0.5) as u8).min(4);
    let gender = match rng.random_range(0..100) {
        0..45 => "F",
        45..95 => "M",
        _ => "X",
    };
    let age_band = match rng.random_range(0..100) {
        0..35 => "<30",
        35..80 => "30-44",
        _ => "45+",
    };
    let birth_year = match age_band {
        "<30" => rng.random_range(1997..2003),
        "30-44" => rng.random_range(1982..1995),
        _ => rng.random_range(1960..1980),
    };
    let location = ["Stockholm", "Göteborg", "Malmö", "Oslo", "København", "Remote"][rng.random_range(0..6)];
    let mut skills: Vec<&'static str> =
        (0..rng.random_range(1..5)).map(|_| SKILLS[rng.random_range(0..SKILLS.len())]).collect();
    skills.sort_unstable();
    skills.dedup();
    let features = Features {
        years_experience,
        skill_match: (skill_match * 100.0).round() / 100.0,
        assessment_score,
        interview_score: None,
        education_level,
        career_changer,
        foreign_experience,
        soft_skill_score: (soft_skill_score * 100.0).round() / 100.0,
    };
    let applied_on = req.opened_on + Duration::days(rng.random_range(0..21));
    let p_success = sigmoid(success_logit(&features, competence, drifted));
    Applicant {
        candidate_ref: format!("C-{serial:07}"),
        requisition: ri,
        person: person(rng, serial, birth_year),
        applied_on,
        gender,
        age_band,
        location,
        skills,
        features,
        competence,
        stage: "applied",
        decision: "rejected",
        p_success,
    }
}

/// The historical process: a keyword ranker screens, interviews the top five, offers to the
/// best interview; it under-rates women (the bias the fairness report must find).
fn recruit(rng: &mut StdRng, pool: &mut [Applicant], openings: usize) {
    let mut score: Vec<(usize, f64)> = pool
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let f = &a.features;
            let bias = if a.gender == "F" { -0.35 } else { 0.0 };
            (
                i,
                1.5 * f.skill_match
                    + 0.08 * f.years_experience.min(15.0)
                    + 0.075 * f.education_level as f64
                    + bias
                    + 0.2 * normal(rng),
            )
        })
        .collect();
    score.sort_by(|a, b| b.1.total_cmp(&a.1));
    let screened = (pool.len() / 10).max(3).min(pool.len());
    for &(i, _) in &score[..screened] {
        pool[i].stage = "screened";
    }
    let interviewed: Vec<usize> = score[..screened].iter().take(5).map(|(i, _)| *i).collect();
    let mut by_interview = Vec::new();
    for &i in &interviewed {
        let a = &mut pool[i];
        let s =
            (1.0 + 4.0 * (0.5 * a.competence + 0.5 * a.features.soft_skill_score) + 0.4 * normal(rng)).clamp(1.0, 5.0);
        a.features.interview_score = Some((s * 2.0).round() / 2.0);
        a.stage = "interviewed";
        by_interview.push((i, s + 0.5 * score.iter().find(|(j, _)| *j == i).map_or(0.0, |x| x.1)));
    }
    by_interview.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut hired = 0;
    for (i, _) in by_interview {
        if hired == openings {
            break;
        }
        pool[i].stage = "offered";
        if rng.random_bool(0.1) {
            pool[i].decision = "withdrawn";
            continue;
        }
        pool[i].stage = "hired";
        pool[i].decision = "hired";
        hired += 1;
    }
    for a in pool.iter_mut() {
        if a.stage == "screened" || a.stage == "interviewed" {
            a.decision = if a.stage == "interviewed" { "rejected" } else { "advanced" };
        }
    }
}

/// What the HRIS reports by `end`: a row per milestone reached while employed, one row at the
/// first milestone after someone left, and some rows never sent (missing feedback).
fn outcomes(rng: &mut StdRng, hires: &[Hire], end: NaiveDate) -> Vec<OutcomeRow> {
    let mut rows = Vec::new();
    for (hi, h) in hires.iter().enumerate() {
        for m in Milestone::ALL {
            let date = m.date_after(h.hire_date) + Duration::days(rng.random_range(0..7));
            let missing_p = match m {
                Milestone::M3 => 0.05,
                Milestone::M6 => 0.06,
                Milestone::M12 => 0.03,
                Milestone::M24 => 0.05,
            };
            let skip = rng.random_bool(missing_p);
            if date > end {
                break;
            }
            let left = h.left_after_months.is_some_and(|l| l <= m.months());
            if !skip {
                let rating = (!left).then(|| (3.6 + 0.7 * h.latent + 0.6 * normal(rng)).round().clamp(1.0, 5.0) as u8);
                rows.push(OutcomeRow {
                    hire: hi,
                    milestone: m,
                    milestone_date: date,
                    employed: !left,
                    rating,
                    exit_reason: left.then_some(h.exit_reason),
                });
            }
            if left {
                break;
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_company_and_calibration_holds() {
        let cfg = SimConfig { months: 6, requisitions_per_month: 10, ..SimConfig::default() };
        let a = Company::simulate(&cfg);
        let b = Company::simulate(&cfg);
        assert_eq!(a.applicants.len(), b.applicants.len());
        assert_eq!(a.hires.len(), b.hires.len());
        assert_eq!(a.applicants[17].person.email, b.applicants[17].person.email);
        let c = Company::simulate(&SimConfig { seed: 8, ..cfg });
        assert_ne!(a.applicants[17].person.email, c.applicants[17].person.email);
        // Engineering openings draw ~200 applicants.
        let eng: Vec<usize> = a
            .requisitions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.job_family == "software_engineering")
            .map(|(i, _)| a.applicants.iter().filter(|x| x.requisition == i).count())
            .collect();
        let mean = eng.iter().sum::<usize>() as f64 / eng.len() as f64;
        assert!((170.0..250.0).contains(&mean), "mean applicants per engineering opening {mean}");
    }

    #[test]
    fn historical_recruiting_is_biased_against_women() {
        let cfg = SimConfig { months: 12, requisitions_per_month: 20, ..SimConfig::default() };
        let c = Company::simulate(&cfg);
        let rate = |g: &str| {
            let pool: Vec<&Applicant> = c.applicants.iter().filter(|a| a.gender == g).collect();
            pool.iter().filter(|a| a.stage != "applied").count() as f64 / pool.len() as f64
        };
        let ratio = rate("F") / rate("M");
        assert!(ratio < 0.8, "screening rate ratio F/M {ratio} should fail the four-fifths rule");
    }

    #[test]
    fn foreign_experience_goes_with_higher_retention() {
        let cfg = SimConfig { months: 24, requisitions_per_month: 60, ..SimConfig::default() };
        let c = Company::simulate(&cfg);
        let retained = |foreign: bool| {
            let hs: Vec<&Hire> =
                c.hires.iter().filter(|h| c.applicants[h.applicant].features.foreign_experience == foreign).collect();
            hs.iter().filter(|h| h.left_after_months.is_none_or(|m| m > 12)).count() as f64 / hs.len() as f64
        };
        let (with, without) = (retained(true), retained(false));
        assert!(with > without, "12-month retention with foreign experience {with} vs without {without}");
    }
}
