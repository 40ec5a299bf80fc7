//! Writing the exports as real systems produce them: the ATS's applications (CSV, `,`), its
//! hires (JSON lines), the HRIS's milestone outcomes (CSV, `;`, with a byte-order mark and
//! Scandinavian date formats), and protected attributes kept apart for fairness measurement.
//! A small share of rows is broken or repeated on purpose; the manifest says how many.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::company::{Company, SimConfig};

/// What one export file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileManifest {
    /// Data rows written, broken and repeated ones included.
    pub rows: u64,
    /// Rows made invalid on purpose: ingestion must quarantine exactly these.
    pub bad_rows: u64,
    /// Verbatim repeats of earlier rows: ingestion must store them once.
    pub duplicates: u64,
}

impl FileManifest {
    pub fn expected_accepted(&self) -> u64 {
        self.rows - self.bad_rows - self.duplicates
    }

    /// Count a row just written; returns whether to write it once more, verbatim.
    fn count(&mut self, damaged: bool, mess: &mut Mess) -> bool {
        self.rows += 1;
        self.bad_rows += damaged as u64;
        let again = !damaged && mess.repeat();
        if again {
            self.rows += 1;
            self.duplicates += 1;
        }
        again
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExportManifest {
    pub seed: u64,
    pub months: u32,
    pub start: String,
    pub end: String,
    pub requisitions: u64,
    pub files: BTreeMap<String, FileManifest>,
}

pub const APPLICATIONS: &str = "ats_applications.csv";
pub const HIRES: &str = "ats_hires.jsonl";
pub const OUTCOMES: &str = "hris_outcomes.csv";
pub const PROTECTED: &str = "protected_attributes.csv";

fn iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn nordic(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// Decide per row: keep, break (with the kind of damage), or repeat.
struct Mess {
    rng: StdRng,
    bad_rate: f64,
    dup_rate: f64,
}

impl Mess {
    fn damage(&mut self, kinds: usize) -> Option<usize> {
        self.rng.random_bool(self.bad_rate).then(|| self.rng.random_range(0..kinds))
    }
    fn repeat(&mut self) -> bool {
        self.rng.random_bool(self.dup_rate)
    }
}

pub fn write_exports(company: &Company, config: &SimConfig, out: &Path) -> std::io::Result<ExportManifest> {
    std::fs::create_dir_all(out)?;
    let mut mess = Mess {
        rng: StdRng::seed_from_u64(config.seed ^ 0x5eed),
        bad_rate: config.bad_row_rate,
        dup_rate: config.duplicate_rate,
    };
    let mut manifest = ExportManifest {
        seed: config.seed,
        months: config.months,
        start: iso(config.start),
        end: iso(company.end),
        requisitions: company.requisitions.len() as u64,
        files: BTreeMap::new(),
    };
    manifest.files.insert(APPLICATIONS.into(), applications(company, &mut mess, &out.join(APPLICATIONS))?);
    manifest.files.insert(HIRES.into(), hires(company, &mut mess, &out.join(HIRES))?);
    manifest.files.insert(OUTCOMES.into(), outcomes(company, &mut mess, &out.join(OUTCOMES))?);
    manifest.files.insert(PROTECTED.into(), protected(company, &out.join(PROTECTED))?);
    truth(company, &out.join("truth"))?;
    std::fs::write(out.join("manifest.json"), serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?)?;
    Ok(manifest)
}

fn csv_writer(path: &Path, delimiter: u8, bom: bool) -> std::io::Result<csv::Writer<BufWriter<File>>> {
    let mut file = BufWriter::new(File::create(path)?);
    if bom {
        file.write_all(b"\xEF\xBB\xBF")?;
    }
    Ok(csv::WriterBuilder::new().delimiter(delimiter).flexible(true).from_writer(file))
}

fn applications(c: &Company, mess: &mut Mess, path: &Path) -> std::io::Result<FileManifest> {
    let mut w = csv_writer(path, b',', false)?;
    w.write_record([
        "Candidate ID",
        "Full name",
        "E-mail",
        "Personnummer",
        "Requisition",
        "Job family",
        "Applied at",
        "Location",
        "Skills",
        "Years of experience",
        "Skill match",
        "Assessment score",
        "Interview score",
        "Education level",
        "Career changer",
        "Foreign work experience",
        "Cover letter soft skills",
        "Stage reached",
        "Decision",
    ])?;
    let mut m = FileManifest::default();
    for (i, a) in c.applicants.iter().enumerate() {
        let req = &c.requisitions[a.requisition];
        let f = &a.features;
        let applied = match i % 3 {
            0 => format!("{}T09:{:02}:00Z", iso(a.applied_on), i % 60),
            1 => iso(a.applied_on),
            _ => nordic(a.applied_on),
        };
        let mut skills = a.skills.join("|");
        if i % 97 == 0 {
            skills.push_str("|pyhton"); // a typo the taxonomy report should surface
        }
        let yn = |b: bool, sv: bool| match (b, sv) {
            (true, false) => "yes",
            (false, false) => "no",
            (true, true) => "Ja",
            (false, true) => "Nej",
        };
        let mut row: Vec<String> = vec![
            a.candidate_ref.clone(),
            a.person.full_name.clone(),
            a.person.email.clone(),
            a.person.personnummer.clone(),
            req.id.clone(),
            req.job_family.to_string(),
            applied,
            a.location.to_string(),
            skills,
            format!("{}", f.years_experience),
            format!("{}", f.skill_match),
            format!("{}", f.assessment_score),
            f.interview_score.map(|s| s.to_string()).unwrap_or_default(),
            f.education_level.to_string(),
            yn(f.career_changer, false).into(),
            yn(f.foreign_experience, true).into(),
            format!("{}", f.soft_skill_score),
            a.stage.to_string(),
            a.decision.to_string(),
        ];
        let damage = mess.damage(5);
        match damage {
            Some(0) => row[6] = "2025-13-45".into(),
            Some(1) => row[11] = "140".into(),
            Some(2) => row[0] = String::new(),
            Some(3) => row.truncate(15),
            Some(_) => row[9] = "ten".into(),
            None => {}
        }
        w.write_record(&row)?;
        if m.count(damage.is_some(), mess) {
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    Ok(m)
}

fn hires(c: &Company, mess: &mut Mess, path: &Path) -> std::io::Result<FileManifest> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut m = FileManifest::default();
    for h in c.hires.iter().filter(|h| h.hire_date <= c.end) {
        let a = &c.applicants[h.applicant];
        let req = &c.requisitions[a.requisition];
        let mut obj = serde_json::json!({
            "candidate_id": a.candidate_ref,
            "employee_number": h.employee_ref,
            "requisition": req.id,
            "job_family": req.job_family,
            "start_date": iso(h.hire_date),
            "name": a.person.full_name,
            "email": a.person.email,
            "personnummer": a.person.personnummer,
        });
        let damage = mess.damage(3);
        let line = match damage {
            Some(0) => {
                obj["start_date"] = "soon".into();
                obj.to_string()
            }
            Some(1) => {
                obj["employee_number"] = serde_json::Value::Null;
                obj.to_string()
            }
            Some(_) => {
                // A line cut off mid-write by the exporting system.
                let s = obj.to_string();
                s[..s.len() / 2].to_string()
            }
            None => obj.to_string(),
        };
        writeln!(w, "{line}")?;
        if m.count(damage.is_some(), mess) {
            writeln!(w, "{line}")?;
        }
    }
    w.flush()?;
    Ok(m)
}

fn outcomes(c: &Company, mess: &mut Mess, path: &Path) -> std::io::Result<FileManifest> {
    let mut w = csv_writer(path, b';', true)?;
    w.write_record([
        "Employee ID",
        "Full name",
        "E-mail",
        "Personnummer",
        "Hire date",
        "Milestone date",
        "Still employed",
        "Performance rating",
        "Exit reason",
    ])?;
    let mut m = FileManifest::default();
    for (i, o) in c.outcomes.iter().enumerate() {
        let h = &c.hires[o.hire];
        if h.hire_date > c.end {
            continue;
        }
        let a = &c.applicants[h.applicant];
        let date = |d: NaiveDate| if i % 4 == 0 { iso(d) } else { nordic(d) };
        let mut row: Vec<String> = vec![
            h.employee_ref.clone(),
            a.person.full_name.clone(),
            a.person.email.clone(),
            a.person.personnummer.clone(),
            date(h.hire_date),
            date(o.milestone_date),
            if o.employed { "Ja" } else { "Nej" }.into(),
            o.rating.map(|r| r.to_string()).unwrap_or_default(),
            o.exit_reason.unwrap_or_default().into(),
        ];
        let damaged = match mess.damage(5) {
            Some(0) => {
                row[7] = "7".into();
                true
            }
            Some(1) => {
                row[7] = "bra".into();
                true
            }
            Some(2) => {
                row[6] = "kanske".into();
                true
            }
            Some(3) => {
                row[5] = date(h.hire_date + chrono::Months::new(9));
                true
            }
            Some(_) => {
                row[0] = String::new();
                true
            }
            None => false,
        };
        w.write_record(&row)?;
        if m.count(damaged, mess) {
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    Ok(m)
}

fn protected(c: &Company, path: &Path) -> std::io::Result<FileManifest> {
    let mut w = csv_writer(path, b',', false)?;
    w.write_record(["Candidate ID", "Gender", "Age band", "Collected on"])?;
    for a in &c.applicants {
        w.write_record([a.candidate_ref.as_str(), a.gender, a.age_band, &iso(a.applied_on)])?;
    }
    w.flush()?;
    Ok(FileManifest { rows: c.applicants.len() as u64, bad_rows: 0, duplicates: 0 })
}

/// The hidden ground truth, for evaluating the loop later. Not an export: no names, and it
/// lives in its own folder so `hrloop ingest` of the export folder never picks it up.
fn truth(c: &Company, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut w = csv_writer(&dir.join("ground_truth.csv"), b',', false)?;
    w.write_record(["candidate_ref", "requisition", "competence", "p_success_12m"])?;
    for a in &c.applicants {
        w.write_record([
            a.candidate_ref.clone(),
            c.requisitions[a.requisition].id.clone(),
            format!("{:.4}", a.competence),
            format!("{:.4}", a.p_success),
        ])?;
    }
    w.flush()
}
