//! The technical documentation of one model version (EU AI Act Annex IV) as one
//! self-contained HTML page, from a [`ModelDocumentation`]. Each heading says whether it is
//! filled from data or needs a person's words.

use std::fmt::Write as _;

use hrloop_models::documentation::{ModelDocumentation, RELIANCE_FLAG, RELIANCE_MIN_REQUISITIONS};

use crate::Result;
use crate::chart::{Line, Series, lines};
use crate::html::{esc, page};

/// The Annex IV headings this report fills from data, and those a person must write; the page
/// says the same at its end.
pub const FROM_DATA: &[&str] = &[
    "1. General description: name, version, when and by whom it was trained, what it predicts",
    "2. Development: design, features, label, training data (snapshot, rows, period, exclusions)",
    "3. Performance and fairness: holdout metrics with intervals, gates, fairness by group and intersection, calibration",
    "4. Human oversight (Art. 14): routing to people, overrides and their reasons, reliance per recruiter",
    "5. Record-keeping (Art. 12): the share of rankings fully logged",
    "6. Post-market monitoring (Art. 72): month by month since it served, re-judgement on matured outcomes",
    "7. Change history: alias events, verdicts and changelog entries with their reasons",
];
pub const NEEDS_A_PERSON: &[&str] = &[
    "Intended purpose and its limits beyond the spec's description, and foreseeable misuse (Annex IV 1(a), Art. 13(3)(b))",
    "The risk management system (Art. 9) and the assessment of risks to people's rights",
    "Alerts fired (Alertmanager keeps them, not the lake) and incidents reported (Art. 73)",
    "The provider, the deployer's contact, the EU declaration of conformity and the standards applied",
];

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn rows_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut b = String::from("<table>\n");
    if header.iter().any(|h| !h.is_empty()) {
        b.push_str("<tr>");
        for h in header {
            let _ = write!(b, "<th>{}</th>", esc(h));
        }
        b.push_str("</tr>\n");
    }
    for r in rows {
        b.push_str("<tr>");
        for c in r {
            let _ = write!(b, "<td>{}</td>", esc(c));
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</table>\n");
    b
}

/// The whole documentation as one HTML page.
pub fn html(doc: &ModelDocumentation) -> Result<String> {
    let c = &doc.card;
    let id = format!("{}/{}", doc.name, doc.version);
    let day = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format("%Y-%m-%d").to_string());
    let period = match (day(doc.served_from), day(doc.served_to)) {
        (Some(f), Some(t)) => format!("served from {f} to {t}"),
        (Some(f), None) => format!("serving since {f}"),
        _ => "never served".to_string(),
    };
    let mut b = format!(
        "<h1>Technical documentation: {}</h1>\n<p class=\"meta\">EU AI Act Annex IV · {} · generated {} by hrloop {}</p>\n\
         <p class=\"note\">Headings marked <b>from data</b> are counted from hrloop's store; headings marked <b>needs a person</b> \
         cannot be filled from data and are listed at the end.</p>\n",
        esc(&id),
        esc(&period),
        doc.generated_at.format("%Y-%m-%d %H:%M UTC"),
        esc(&c.hrloop_version)
    );

    // 1. General description.
    let label = format!("{} at {}", c.spec.label.condition, c.spec.label.milestone);
    let _ = write!(
        b,
        "<h2>1. General description <small>(from data; intended purpose needs a person)</small></h2>\n\
         <p>{}</p>\n",
        esc(if c.spec.description.is_empty() { "(the spec has no description)" } else { &c.spec.description })
    );
    b.push_str(&rows_table(
        &["", ""],
        &[
            vec!["Model version".into(), id.clone()],
            vec!["Trained".into(), format!("{} by {}", c.created_at.format("%Y-%m-%d %H:%M UTC"), c.created_by)],
            vec!["Predicts".into(), format!("the probability of: {label}")],
            vec!["Use".into(), "ranks the applicants of a requisition for recruiters, who decide".into()],
            vec!["Previous version".into(), c.parent_version.clone().unwrap_or_else(|| "none".into())],
            vec!["Period".into(), period.clone()],
        ],
    ));

    // 2. Development.
    let _ = write!(
        b,
        "<h2>2. Development and training data <small>(from data)</small></h2>\n\
         <p>Algorithm: <code>{}</code>. Features: {}{}. Protected attributes are never inputs; they are measured only.</p>\n",
        esc(&format!("{:?}", c.spec.algorithm)),
        esc(&c.spec.features.numeric.join(", ")),
        if c.spec.features.categorical.is_empty() {
            String::new()
        } else {
            format!(", and the categories {}", esc(&c.spec.features.categorical.join(", ")))
        }
    );
    let versions: Vec<String> = c.training_data.table_versions.iter().map(|(t, v)| format!("{t} v{v}")).collect();
    b.push_str(&rows_table(
        &["training data", ""],
        &[
            vec![
                "Label".into(),
                format!("{label} (a hire whose {} milestone has not passed is not used)", c.spec.label.milestone),
            ],
            vec![
                "Lake snapshot".into(),
                format!("{} files; Delta {}", c.training_data.files.len(), versions.join(", ")),
            ],
            vec!["Content hash (SHA-256)".into(), c.training_data.content_sha256.clone()],
            vec!["Training rows".into(), format!("{} ({} successes)", c.rows.train, c.rows.positives_train)],
            vec![
                "Holdout rows".into(),
                format!(
                    "{}{} — hires after {}",
                    c.rows.holdout,
                    c.rows.positives_holdout.map_or_else(String::new, |p| format!(" ({p} successes)")),
                    c.holdout_from.map_or_else(|| "?".into(), |d| d.to_string())
                ),
            ],
            vec!["Excluded: milestone not due".into(), c.rows.excluded_not_due.to_string()],
            vec![
                "Excluded: outcome missing".into(),
                format!("{} (the HRIS has not reported it)", c.rows.excluded_missing_outcome),
            ],
            vec!["Excluded: no features logged".into(), c.rows.excluded_no_features.to_string()],
            vec![
                "Weighting".into(),
                c.weighting.as_ref().map_or_else(
                    || "none (every hire counts once)".into(),
                    |w| {
                        format!(
                            "{:.0} effective rows, weights {:.2}–{:.2}",
                            w.effective_rows, w.min_weight, w.max_weight
                        )
                    },
                ),
            ],
        ],
    ));

    // 3. Performance, fairness, calibration.
    let m = &c.metrics;
    let _ = writeln!(b, "<h2>3. Performance, fairness and calibration <small>(from data)</small></h2>");
    b.push_str(&rows_table(
        &["holdout metric", "value", "95 % interval"],
        &[
            vec![
                "ROC AUC".into(),
                num(m.roc_auc, 3),
                doc.auc_interval.map_or_else(
                    || "not kept for this card".into(),
                    |(lo, hi)| format!("{lo:.3} – {hi:.3} (Hanley–McNeil)"),
                ),
            ],
            vec![format!("NDCG@{}", c.spec.evaluation.ndcg_k), num(m.ndcg_at_k, 3), String::new()],
            vec![format!("precision@{}", c.spec.evaluation.precision_k), num(m.precision_at_k, 3), String::new()],
            vec!["Brier score".into(), format!("{:.4}", m.brier), String::new()],
            vec!["expected calibration error".into(), format!("{:.4}", m.expected_calibration_error), String::new()],
        ],
    ));
    let _ = writeln!(
        b,
        "<p>Gates: {}.</p>",
        if c.gates.passed { "passed".to_string() } else { format!("failed ({})", esc(&c.gates.failures.join("; "))) }
    );
    for f in &c.fairness {
        let rows: Vec<Vec<String>> = f
            .groups
            .iter()
            .map(|g| {
                vec![
                    g.group.clone(),
                    g.candidates.to_string(),
                    g.selected.to_string(),
                    pct(Some(g.selection_rate)),
                    if g.small { "small: not gated".into() } else { String::new() },
                ]
            })
            .collect();
        let _ = writeln!(
            b,
            "<h3>Holdout fairness by {}: adverse impact ratio {} (p = {})</h3>",
            esc(&f.attribute),
            num(f.adverse_impact_ratio, 2),
            num(f.p_value, 3)
        );
        b.push_str(&rows_table(
            &["group", "candidates", &format!("in top {}", c.spec.fairness.top_k), "rate", ""],
            &rows,
        ));
    }
    match &doc.bias {
        Some(t) => {
            b.push_str("<h3>Fairness of its served rankings, by group and intersection</h3>\n");
            b.push_str(&crate::bias_audit::tool(t, c.spec.fairness.top_k)?);
        }
        None => b.push_str("<p>It never served: no fairness of served rankings to show.</p>\n"),
    }
    if doc.calibrations.is_empty() {
        b.push_str("<p>Calibration: the score as trained (no recalibration recorded).</p>\n");
    } else {
        let rows: Vec<Vec<String>> = doc
            .calibrations
            .iter()
            .map(|k| {
                vec![
                    k.fitted_at.format("%Y-%m-%d").to_string(),
                    k.method.clone(),
                    k.rows.to_string(),
                    format!("{:.4}", k.ece_before),
                    format!("{:.4}", k.ece_after),
                ]
            })
            .collect();
        b.push_str("<h3>Recalibrations</h3>\n");
        b.push_str(&rows_table(&["fitted", "method", "matured hires", "ECE before", "ECE after"], &rows));
    }

    // 4. Human oversight.
    let o = &doc.oversight;
    let _ = write!(
        b,
        "<h2>4. Human oversight (Art. 14) <small>(from data)</small></h2>\n\
         <p>{} rankings of {} candidates; {} routed to a person before a recruiter saw them. Recruiters decided on {} of \
         its candidates and went against its ranking {} times ({}).</p>\n",
        o.rankings,
        o.candidates,
        pct(o.human_share),
        o.feedback,
        o.overrides,
        pct(o.override_rate)
    );
    if !o.routed.is_empty() {
        let rows: Vec<Vec<String>> = o.routed.iter().map(|(r, n)| vec![r.clone(), n.to_string()]).collect();
        b.push_str(&rows_table(&["route to a person", "candidates"], &rows));
    }
    if !o.reasons.is_empty() {
        let rows: Vec<Vec<String>> = o.reasons.iter().map(|(r, n)| vec![r.clone(), n.to_string()]).collect();
        b.push_str(&rows_table(&["override reason", "overrides"], &rows));
    }
    if !o.recruiters.is_empty() {
        let _ = writeln!(
            b,
            "<p>Automation-bias indicator: per recruiter pseudonym, the share of requisitions decided without any override. \
             {} % or more over at least {} requisitions is flagged: the recruiter may be accepting the ranking without judging it.</p>",
            RELIANCE_FLAG * 100.0,
            RELIANCE_MIN_REQUISITIONS
        );
        let rows: Vec<Vec<String>> = o
            .recruiters
            .iter()
            .map(|r| {
                vec![
                    r.recruiter.clone(),
                    r.requisitions.to_string(),
                    r.unchanged.to_string(),
                    pct(Some(r.share)),
                    if r.flagged { "flagged".into() } else { String::new() },
                ]
            })
            .collect();
        b.push_str(&rows_table(&["recruiter", "requisitions", "as ranked", "share", ""], &rows));
    }

    // 5. Record-keeping.
    let l = &doc.logging;
    let _ = write!(
        b,
        "<h2>5. Record-keeping (Art. 12) <small>(from data)</small></h2>\n\
         <p>Of the {} rankings served since {} (all versions), {} are fully logged ({}): each names a registered model \
         version, its arm, route and score, and each override has its reason code. {} of {} recruiter decisions join no \
         served ranking. The alert HrloopLoggingIncomplete fires below 99 %.</p>\n",
        l.rankings,
        l.since.format("%Y-%m-%d"),
        l.complete,
        pct(l.share),
        l.orphan_feedback,
        l.feedback
    );
    if !l.gaps.is_empty() {
        let rows: Vec<Vec<String>> = l.gaps.iter().map(|(g, n)| vec![g.clone(), n.to_string()]).collect();
        b.push_str(&rows_table(&["gap", "rankings"], &rows));
    }

    // 6. Post-market monitoring.
    let _ = writeln!(
        b,
        "<h2>6. Post-market monitoring (Art. 72) <small>(from data; alerts fired need a person)</small></h2>"
    );
    if doc.monthly.is_empty() {
        b.push_str("<p>It never served: nothing to monitor yet.</p>\n");
    } else {
        let months: Vec<String> = doc.monthly.iter().map(|m| m.month.clone()).collect();
        let svg = lines(
            &format!("{id}, month by month"),
            &months,
            &[
                Line {
                    name: "recruiter override rate".into(),
                    series: Series::Secondary,
                    values: doc.monthly.iter().map(|m| m.override_rate).collect(),
                },
                Line {
                    name: "routed to a person".into(),
                    series: Series::Primary,
                    values: doc.monthly.iter().map(|m| Some(m.human_share)).collect(),
                },
            ],
            1.0,
        )?;
        let _ = writeln!(
            b,
            "<figure>{svg}<figcaption>Share of recruiter decisions that went against the ranking (orange) and of candidates routed to a person (blue), per month of service.</figcaption></figure>"
        );
        let rows: Vec<Vec<String>> = doc
            .monthly
            .iter()
            .map(|m| {
                vec![
                    m.month.clone(),
                    m.rankings.to_string(),
                    m.candidates.to_string(),
                    pct(Some(m.human_share)),
                    m.feedback.to_string(),
                    pct(m.override_rate),
                ]
            })
            .collect();
        b.push_str(&rows_table(&["month", "rankings", "candidates", "to a person", "decisions", "overrides"], &rows));
    }
    match &doc.rejudgement {
        Some(r) => {
            let _ = writeln!(
                b,
                "<p>Newest re-judgement on matured outcomes ({}, {}): {}</p>",
                r.at.format("%Y-%m-%d"),
                r.milestone,
                esc(&r.finding)
            );
        }
        None => b.push_str("<p>No re-judgement on matured outcomes yet.</p>\n"),
    }

    // 7. Change history.
    b.push_str("<h2>7. Change history <small>(from data)</small></h2>\n");
    let rows: Vec<Vec<String>> = doc
        .events
        .iter()
        .map(|e| {
            vec![
                e.at.format("%Y-%m-%d %H:%M").to_string(),
                format!("{:?} {:?}", e.action, e.alias).to_lowercase(),
                format!("{} → {}", e.from_version.as_deref().unwrap_or("–"), e.to_version.as_deref().unwrap_or("–")),
                e.actor.clone(),
                e.reason.clone(),
            ]
        })
        .collect();
    b.push_str(&rows_table(&["when", "change", "versions", "by", "why"], &rows));
    for v in &doc.verdicts {
        let _ = writeln!(
            b,
            "<p><b>Verdict {} ({}):</b> {}</p>",
            v.analysed_at.format("%Y-%m-%d"),
            esc(v.decision.as_str()),
            esc(&hrloop_models::experiment::plain_summary(v))
        );
    }
    for e in &doc.changelog {
        let _ = writeln!(
            b,
            "<p><b>Changelog {}:</b> {} ({})</p>",
            e.at.format("%Y-%m-%d"),
            esc(&e.summary),
            esc(&e.decided_by)
        );
    }

    // What a person writes.
    b.push_str("<h2>Filled from data, and what needs a person</h2>\n<div class=\"person\"><p>From data:</p><ul>\n");
    for h in FROM_DATA {
        let _ = writeln!(b, "<li>{}</li>", esc(h));
    }
    b.push_str("</ul><p>Needs a person's words:</p><ul>\n");
    for h in NEEDS_A_PERSON {
        let _ = writeln!(b, "<li>{}</li>", esc(h));
    }
    b.push_str("</ul></div>\n");
    Ok(page(&format!("Technical documentation {id}"), &b))
}
