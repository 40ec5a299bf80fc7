//! The company as a world to act in, month by month, for the closed-loop simulation: the
//! simulation decides whom to hire (through whatever ranks the applicants), and the world says
//! how interviews go and how the hires turn out, from the same hidden ground truth and drift
//! as [`crate::Company::simulate`].
//!
//! Everything that a counterfactual must share (an applicant's interview result, a hire's
//! latent success) is a deterministic function of the seed and the person, so "what would the
//! static model have hired?" is answered on the same applicants with the same luck.

use chrono::{Datelike, Duration, Months, NaiveDate};
use hrloop_core::Milestone;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::company::{applicant, normal, pick_family, sigmoid};
use crate::{Applicant, Requisition, SimConfig, success_logit};

/// How one hire turns out.
#[derive(Debug, Clone)]
pub struct Fate {
    pub hire_date: NaiveDate,
    /// Latent success (drives ratings and attrition).
    pub latent: f64,
    /// Months after hire at which the person leaves, if within 24.
    pub left_after_months: Option<u32>,
    /// Ground truth: probability of success (employed, rating >= 3) as the hire starts.
    pub p_success: f64,
    /// Ground truth: probability of still being employed at 12 months.
    pub p_retained_12m: f64,
}

/// Job families where recruiters weigh soft skills higher (customer-facing roles).
pub const CUSTOMER_FACING: [&str; 2] = ["sales", "customer_support"];

/// What the simulated recruiters weigh on top of the interview, on the interview's 1-5 scale.
/// [`RecruiterTaste::SIMULATED`] is partly right, partly not, so a backtest can tell whether
/// learning from overrides helps: soft skills do predict success everywhere
/// ([`success_logit`]), education level does not predict it at all, and the judgement of women
/// is lower for no reason the truth supports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecruiterTaste {
    /// Per unit of `soft_skill_score` (0-1) above 0.5, in sales and customer support.
    pub soft_skills_customer_facing: f64,
    /// Per `education_level` above 2 (levels 0-4).
    pub education_per_level: f64,
    /// Subtracted from women's judgement (not a feature: it shows only in who is chosen).
    pub against_women: f64,
}

impl RecruiterTaste {
    pub const SIMULATED: RecruiterTaste =
        RecruiterTaste { soft_skills_customer_facing: 2.0, education_per_level: 0.25, against_women: 0.3 };
    /// Recruiters who judge by the interview alone.
    pub const NONE: RecruiterTaste =
        RecruiterTaste { soft_skills_customer_facing: 0.0, education_per_level: 0.0, against_women: 0.0 };
}

/// A recruiter's judgement of an interviewed applicant: a score on the interview's scale
/// (advance at 3 or more) and the reason they would give for turning the applicant down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub score: f64,
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct World {
    pub config: SimConfig,
    rng: StdRng,
    serial: u64,
}

fn stable_rng(seed: u64, key: &str, salt: u64) -> StdRng {
    // FNV-1a over the key: deterministic across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    StdRng::seed_from_u64(h)
}

impl World {
    pub fn new(config: SimConfig) -> World {
        let rng = StdRng::seed_from_u64(config.seed ^ 0x5eed_100b);
        World { config, rng, serial: 0 }
    }

    pub fn month_start(&self, month: u32) -> NaiveDate {
        self.config.start.checked_add_months(Months::new(month)).expect("date in range")
    }

    pub fn drifted(&self, date: NaiveDate) -> bool {
        date >= self.month_start(self.config.drift_month)
    }

    /// The requisitions opened in `month` with their applicants (interview scores not yet known).
    pub fn month(&mut self, month: u32) -> Vec<(Requisition, Vec<Applicant>)> {
        let start = self.month_start(month);
        let seasonal = if matches!(start.month(), 7 | 12) { 0.6 } else { 1.0 };
        let n = ((self.config.requisitions_per_month as f64) * seasonal).round().max(1.0) as u32;
        let drifted = month >= self.config.drift_month;
        let mut out = Vec::new();
        for r in 0..n {
            let family = pick_family(&mut self.rng);
            let req = Requisition {
                id: format!("REQ-{:04}{:02}-{:03}", start.year(), start.month(), r + 1),
                job_family: family.0,
                opened_on: start + Duration::days(self.rng.random_range(0..28)),
                openings: 1,
                month,
            };
            let n_app = ((family.2 as f64) * self.rng.random_range(0.7..1.3)).round() as usize;
            let pool = (0..n_app)
                .map(|_| {
                    self.serial += 1;
                    applicant(&mut self.rng, &req, out.len(), self.serial, drifted)
                })
                .collect();
            out.push((req, pool));
        }
        out
    }

    /// The interview score (1–5, halves) the applicant gets if interviewed: the same whoever
    /// invites them.
    pub fn interview(&self, a: &Applicant) -> f64 {
        let mut rng = stable_rng(self.config.seed, &a.candidate_ref, 1);
        let s = (1.0 + 4.0 * (0.5 * a.competence + 0.5 * a.features.soft_skill_score) + 0.4 * normal(&mut rng))
            .clamp(1.0, 5.0);
        (s * 2.0).round() / 2.0
    }

    /// How the recruiters judge an interviewed applicant for `req`: the interview, plus what
    /// they weigh on top of it (their taste, `SimConfig::recruiter_taste`). Deterministic, like
    /// the interview, so counterfactual rankings meet the same judgement.
    pub fn judge(&self, a: &Applicant, req: &Requisition) -> Judgement {
        let t = self.config.recruiter_taste;
        let interview = self.interview(a);
        let soft = if CUSTOMER_FACING.contains(&req.job_family) {
            t.soft_skills_customer_facing * (a.features.soft_skill_score - 0.5)
        } else {
            0.0
        };
        let education = t.education_per_level * (f64::from(a.features.education_level) - 2.0);
        let gender = if a.gender == "F" { -t.against_women } else { 0.0 };
        let score = interview + soft + education + gender;
        // The reason a recruiter gives for turning someone down: the stated term that weighed
        // most against them. The gender term is never stated.
        let reason = if soft < -0.2 && soft <= education {
            "communication"
        } else if education < -0.2 {
            "qualifications"
        } else {
            "interview"
        };
        Judgement { score, reason }
    }

    /// How the applicant fares if hired for `req`.
    pub fn fate(&self, a: &Applicant, req: &Requisition) -> Fate {
        let mut rng = stable_rng(self.config.seed, &a.candidate_ref, 2);
        let days = (70.0 + 12.0 * normal(&mut rng)).clamp(35.0, 120.0) as i64;
        let hire_date = req.opened_on + Duration::days(days);
        let mut f = a.features.clone();
        f.interview_score = Some(self.interview(a));
        let det = success_logit(&f, a.competence, self.drifted(hire_date));
        let latent = det + 0.5 * normal(&mut rng);
        let hazard = |l: f64| (0.035 * (-0.9 * l).exp()).clamp(0.002, 0.25);
        let h = hazard(latent);
        let left_after_months = (1..=24u32).find(|_| rng.random_bool(h));
        Fate {
            hire_date,
            latent,
            left_after_months,
            p_success: sigmoid(det),
            p_retained_12m: (1.0 - hazard(det)).powi(12),
        }
    }

    /// What the HRIS reports at `milestone` for a hire (None: the report is never sent, or the
    /// person left at an earlier milestone).
    pub fn report(&self, a: &Applicant, fate: &Fate, milestone: Milestone) -> Option<(NaiveDate, bool, Option<u8>)> {
        let mut rng = stable_rng(self.config.seed, &a.candidate_ref, 3 + u64::from(milestone.months()));
        let date = milestone.date_after(fate.hire_date) + Duration::days(rng.random_range(0..7));
        let earlier_exit = Milestone::ALL
            .iter()
            .take_while(|m| **m != milestone)
            .any(|m| fate.left_after_months.is_some_and(|l| l <= m.months()));
        if earlier_exit || rng.random_bool(0.04) {
            return None;
        }
        let left = fate.left_after_months.is_some_and(|l| l <= milestone.months());
        let rating = (!left).then(|| (3.6 + 0.7 * fate.latent + 0.6 * normal(&mut rng)).round().clamp(1.0, 5.0) as u8);
        Some((date, !left, rating))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_person_has_the_same_interview_and_fate_whoever_asks() {
        let mut w = World::new(SimConfig { requisitions_per_month: 3, ..SimConfig::default() });
        let month = w.month(0);
        let (req, pool) = &month[0];
        let a = &pool[0];
        assert_eq!(w.interview(a), w.interview(a));
        let (f1, f2) = (w.fate(a, req), w.fate(a, req));
        assert_eq!((f1.hire_date, f1.latent, f1.left_after_months), (f2.hire_date, f2.latent, f2.left_after_months));
        assert!(pool.len() > 20);
    }

    #[test]
    fn competent_applicants_interview_better_and_succeed_more() {
        let mut w = World::new(SimConfig { requisitions_per_month: 10, ..SimConfig::default() });
        let month = w.month(0);
        let (mut hi, mut lo) = (Vec::new(), Vec::new());
        for (req, pool) in &month {
            for a in pool {
                let p = w.fate(a, req).p_success;
                if a.competence > 0.6 {
                    hi.push((w.interview(a), p))
                } else if a.competence < 0.3 {
                    lo.push((w.interview(a), p))
                }
            }
        }
        let mean =
            |v: &[(f64, f64)], i: usize| v.iter().map(|x| if i == 0 { x.0 } else { x.1 }).sum::<f64>() / v.len() as f64;
        assert!(mean(&hi, 0) > mean(&lo, 0) + 1.0);
        assert!(mean(&hi, 1) > mean(&lo, 1) + 0.2);
    }
}
