//! The bias audit as files an auditor and a works council can read: CSV (one row per group),
//! JSON (the whole [`BiasAudit`]), and one self-contained HTML page with a chart per table.

use std::fmt::Write as _;

use hrloop_models::bias::{BiasAudit, Dimension, RateTable, SMALL_GROUP_SHARE, ToolAudit};

use crate::Result;
use crate::chart::{Bar, Series, bars};
use crate::html::{esc, page};

/// The four-fifths rule of thumb (US EEOC Uniform Guidelines, 29 CFR 1607.4(D)): an impact
/// ratio below it is commonly read as evidence of adverse impact.
pub const FOUR_FIFTHS: f64 = 0.8;

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "tool",
    "measure",
    "dimension",
    "group",
    "applications",
    "positive",
    "rate",
    "share_of_known",
    "impact_ratio",
    "impact_ratio_low95",
    "impact_ratio_high95",
    "reference",
    "excluded_under_2pct",
];

/// The tables of one tool, with their measure names and what "positive" means.
fn measures(t: &ToolAudit) -> Vec<(&'static str, &'static str, &RateTable)> {
    let mut out = vec![("selection", "selected (advanced or hired)", &t.selection)];
    if let Some(s) = &t.scoring {
        out.push(("scoring", "scored above the median", s));
    }
    if let Some(s) = &t.model_top_k {
        out.push(("model_top_k", "in the model's top k", s));
    }
    out
}

/// One row per tool, measure, dimension and group, plus one "unknown" row per dimension.
pub fn csv(audit: &BiasAudit) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    let num = |v: f64| format!("{v:.6}");
    let opt = |v: Option<f64>| v.map(num).unwrap_or_default();
    for t in &audit.tools {
        for (measure, _, table) in measures(t) {
            for d in &table.dimensions {
                for g in &d.groups {
                    w.write_record([
                        t.tool.clone(),
                        measure.into(),
                        d.name.clone(),
                        g.group.clone(),
                        g.count.to_string(),
                        g.positive.to_string(),
                        num(g.rate),
                        num(g.share),
                        opt(g.impact_ratio),
                        opt(g.interval.map(|i| i.0)),
                        opt(g.interval.map(|i| i.1)),
                        g.reference.to_string(),
                        g.excluded.to_string(),
                    ])?;
                }
                w.write_record([
                    t.tool.as_str(),
                    measure,
                    &d.name,
                    "unknown",
                    &d.unknown.to_string(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "false",
                    "false",
                ])?;
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn json(audit: &BiasAudit) -> Result<String> {
    Ok(serde_json::to_string_pretty(audit)?)
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |r| format!("{r:.2}"))
}

fn interval(v: Option<(f64, f64)>) -> String {
    v.map_or_else(String::new, |(lo, hi)| format!(" [{lo:.2}, {hi:.2}]"))
}

/// The whole audit as one HTML page.
pub fn html(audit: &BiasAudit) -> Result<String> {
    let last = audit.to - chrono::Duration::seconds(1);
    let period = format!("{} to {}", audit.from.format("%Y-%m-%d"), last.format("%Y-%m-%d"));
    let tools: Vec<&str> = audit.tools.iter().map(|t| t.tool.as_str()).collect();
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>Bias audit</h1>\n<p class=\"meta\">Decisions from {} · generated {} by hrloop · tools: {} · attributes: {}</p>",
        esc(&period),
        audit.generated_at.format("%Y-%m-%d %H:%M UTC"),
        esc(&if tools.is_empty() { "none".into() } else { tools.join(", ") }),
        esc(&audit.attributes.join(", ")),
    );
    b.push_str(&intro(audit));
    if audit.tools.is_empty() {
        b.push_str("<p class=\"note\">No decisions in this period: nothing to audit. Check --from, --to, --model and --source.</p>\n");
    }
    for t in &audit.tools {
        b.push_str(&tool(t, audit.top_k)?);
    }
    b.push_str(PERSON);
    Ok(page(&format!("Bias audit {period}"), &b))
}

fn intro(audit: &BiasAudit) -> String {
    format!(
        "<h2>What this audit measures</h2>\n\
         <p>Every number below is counted from hrloop's lake: the decisions of the period (rankings as served, and \
         imported ATS history), the recruiters' decisions on them, and the protected attributes recorded for each \
         candidate. Protected attributes are never inputs of a model; they are kept to measure fairness.</p>\n<ul>\n\
         <li><b>Selection rate</b>: of the decided applications (one candidate on one requisition), the share \
         advanced or hired. On a ranking hrloop served, a candidate the recruiter did not decide on was passed over; \
         a requisition with no recruiter decision yet is left out. Withdrawals are not counted.</li>\n\
         <li><b>Scoring rate</b> (for tools that score): the share scored above the median score of the sample, \
         as New York City's Local Law 144 defines it.</li>\n\
         <li><b>The model's top {k} beside the recruiters' selection</b>, on the same applications: whether the \
         recruiters' overrides raise or lower the impact ratio.</li>\n\
         <li><b>Impact ratio</b>: a group's rate over the highest group's rate. Ratios below {ff} (the \
         four-fifths rule of thumb) are marked. The 95 % interval counts the candidates of one requisition as one \
         unit (they share a recruiter, a pool and a job), so it is wider than a count of people alone would \
         give.</li>\n\
         <li>Groups under {small:.0} % of the applications with a known value are shown but not compared, as the \
         rules allow. Candidates with no recorded value are counted as unknown.</li>\n</ul>\n",
        k = audit.top_k,
        ff = FOUR_FIFTHS,
        small = SMALL_GROUP_SHARE * 100.0,
    )
}

pub(crate) fn tool(t: &ToolAudit, top_k: usize) -> Result<String> {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h2>{}</h2>\n<p class=\"meta\">{} applications on {} requisitions{}{}</p>",
        esc(&t.tool),
        t.applications,
        t.requisitions,
        if t.versions.is_empty() { String::new() } else { format!(" · versions {}", esc(&t.versions.join(", "))) },
        t.median_score.map_or_else(String::new, |m| format!(" · median score {m:.3}")),
    );
    let _ = writeln!(
        b,
        "<h3>Selection rates</h3>\n<p>{} of {} decided applications selected ({}).</p>",
        (t.selection.rate * t.selection.applications as f64).round(),
        t.selection.applications,
        pct(t.selection.rate)
    );
    for d in &t.selection.dimensions {
        b.push_str(&dimension(&t.tool, "selection", d)?);
    }
    if let Some(s) = &t.scoring {
        let _ = writeln!(
            b,
            "<h3>Scoring rates</h3>\n<p>{} scored applications; {} above the median score.</p>",
            s.applications,
            pct(s.rate)
        );
        for d in &s.dimensions {
            b.push_str(&dimension(&t.tool, "scoring", d)?);
        }
    }
    if let Some(top) = &t.model_top_k {
        let _ = write!(
            b,
            "<h3>The model's top {top_k} beside the recruiters' selection</h3>\n\
             <p>The same {} decided applications: who the model put in its top {top_k}, and who the recruiters \
             advanced or hired.</p>\n",
            top.applications
        );
        for (m, s) in top.dimensions.iter().zip(&t.selection.dimensions) {
            b.push_str(&side_by_side(m, s, top_k)?);
        }
    }
    Ok(b)
}

fn dimension(tool: &str, measure: &str, d: &Dimension) -> Result<String> {
    let mut b = format!(
        "<table>\n<caption>{} — {} by {}</caption>\n<tr><th>{}</th><th>applications</th><th>{}</th><th>rate</th><th>impact ratio [95 %]</th><th></th></tr>\n",
        esc(tool),
        measure,
        esc(&d.name),
        esc(&d.name),
        if measure == "selection" { "selected" } else { "above median" }
    );
    for g in &d.groups {
        let low = g.impact_ratio.is_some_and(|r| r < FOUR_FIFTHS);
        let note = if g.reference {
            "highest rate (reference)".to_string()
        } else if g.excluded {
            format!("under {:.0} %: not compared", SMALL_GROUP_SHARE * 100.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}{}</td><td>{}</td></tr>",
            esc(&g.group),
            g.count,
            g.positive,
            pct(g.rate),
            if low { " class=\"low\"" } else { "" },
            ratio(g.impact_ratio),
            interval(g.interval),
            note
        );
    }
    let _ = writeln!(
        b,
        "<tr><td>unknown</td><td>{}</td><td></td><td></td><td></td><td>not recorded</td></tr>\n</table>",
        d.unknown
    );
    let chart: Vec<Bar> = d
        .groups
        .iter()
        .filter(|g| g.impact_ratio.is_some())
        .map(|g| Bar {
            label: g.group.clone(),
            value: g.impact_ratio.unwrap_or(0.0),
            interval: g.interval,
            series: Series::Primary,
        })
        .collect();
    b.push_str(&impact_figure(
        &format!("Impact ratio of {measure} rates by {}", d.name),
        &chart,
        &format!(
            "Bars: each group's {measure} rate over the highest group's; whiskers: 95 % intervals; red dashes: 0.8."
        ),
    )?);
    Ok(b)
}

fn side_by_side(model: &Dimension, recruiters: &Dimension, top_k: usize) -> Result<String> {
    let mut b = format!(
        "<table>\n<caption>{} — the model's top {top_k} and the recruiters' selection</caption>\n\
         <tr><th>{}</th><th>applications</th><th>model top {top_k}</th><th>impact ratio</th><th>recruiters selected</th><th>impact ratio</th><th>overrides</th></tr>\n",
        esc(&model.name),
        esc(&model.name)
    );
    for m in &model.groups {
        let r = recruiters.groups.iter().find(|r| r.group == m.group);
        let effect = match (m.impact_ratio, r.and_then(|r| r.impact_ratio)) {
            (Some(a), Some(c)) if c > a + 0.005 => "raise it",
            (Some(a), Some(c)) if c < a - 0.005 => "lower it",
            (Some(_), Some(_)) => "leave it",
            _ => "",
        };
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.group),
            m.count,
            pct(m.rate),
            ratio(m.impact_ratio),
            r.map_or_else(String::new, |r| pct(r.rate)),
            ratio(r.and_then(|r| r.impact_ratio)),
            effect
        );
    }
    b.push_str("</table>\n");
    let mut chart = Vec::new();
    for m in &model.groups {
        let r = recruiters.groups.iter().find(|r| r.group == m.group);
        if let (Some(a), Some(r)) = (m.impact_ratio, r.filter(|r| r.impact_ratio.is_some())) {
            let label = |who: &str| format!("{} · {who}", m.group);
            let bar = |label: String, value: f64, interval, series| Bar { label, value, interval, series };
            chart.push(bar(label(&format!("top {top_k}")), a, m.interval, Series::Primary));
            chart.push(bar(label("recruiters"), r.impact_ratio.unwrap_or(0.0), r.interval, Series::Secondary));
        }
    }
    b.push_str(&impact_figure(&format!("Impact ratio by {}: the model's top {top_k} and the recruiters' selection", model.name), &chart, &format!("Blue: the model's top {top_k}; orange: the recruiters' selection, on the same applications; whiskers: 95 % intervals."))?);
    Ok(b)
}

/// A chart of impact ratios (0 to 1.2, the four-fifths line drawn) with its caption; nothing
/// without bars.
fn impact_figure(title: &str, chart: &[Bar], caption: &str) -> Result<String> {
    if chart.is_empty() {
        return Ok(String::new());
    }
    let svg = bars(title, chart, 1.2, Some((FOUR_FIFTHS, "four-fifths (0.8)")))?;
    Ok(format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", esc(caption)))
}

/// What the audit cannot fill in from data.
const PERSON: &str = "<h2>To be completed by a person</h2>\n<div class=\"person\"><ul>\n\
    <li>The independent auditor's name and the date of the audit (Local Law 144 requires an auditor who is \
    independent of the employer and of the tool's vendor).</li>\n\
    <li>The source and an explanation of the data (historical data of this employer, or test data), and the \
    date the tool was first used.</li>\n\
    <li>Where the summary of results is published, and the notices given to candidates.</li>\n\
    </ul></div>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use hrloop_models::bias::{AuditSource, GroupRate};

    fn audit() -> BiasAudit {
        let group = |g: &str, count, positive, ir: Option<f64>, reference| GroupRate {
            group: g.into(),
            count,
            positive,
            rate: positive as f64 / count as f64,
            share: 0.5,
            reference,
            excluded: false,
            impact_ratio: ir,
            interval: ir.filter(|_| !reference).map(|r| (r * 0.7, r * 1.3)),
        };
        let table = RateTable {
            applications: 200,
            rate: 0.3,
            dimensions: vec![Dimension {
                name: "gender".into(),
                attributes: vec!["gender".into()],
                unknown: 7,
                groups: vec![group("female", 100, 40, Some(1.0), true), group("male", 100, 20, Some(0.5), false)],
            }],
        };
        BiasAudit {
            generated_at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            from: Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            source: AuditSource::All,
            attributes: vec!["gender".into()],
            top_k: 5,
            tools: vec![ToolAudit {
                tool: "success12m_logistic".into(),
                versions: vec!["success12m_logistic/v1".into()],
                applications: 220,
                requisitions: 40,
                median_score: Some(0.41),
                selection: table.clone(),
                scoring: Some(table.clone()),
                model_top_k: Some(table),
            }],
        }
    }

    #[test]
    fn csv_has_a_row_per_group_and_the_unknowns() {
        let text = csv(&audit()).unwrap();
        let mut r = ::csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
        let rows: Vec<::csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        // 3 measures × (2 groups + unknown).
        assert_eq!(rows.len(), 9);
        let male = rows.iter().find(|r| &r[1] == "selection" && &r[3] == "male").unwrap();
        assert_eq!((&male[4], &male[5], &male[8], &male[9]), ("100", "20", "0.500000", "0.350000"));
        let unknown = rows.iter().find(|r| &r[1] == "scoring" && &r[3] == "unknown").unwrap();
        assert_eq!(&unknown[4], "7");
    }

    #[test]
    fn html_names_the_period_the_tool_and_marks_low_ratios() {
        let page = html(&audit()).unwrap();
        for text in ["2025-12-01 to 2026-11-30", "success12m_logistic/v1", "0.50 [0.35, 0.65]", "class=\"low\"", "<svg"]
        {
            assert!(page.contains(text), "{text} missing");
        }
        assert!(!page.contains("src=") && !page.contains("url(") && !page.contains("href="), "nothing to fetch");
        assert!(!page.contains("<script"), "no script");
        assert!(page.contains("To be completed by a person"));
    }
}
