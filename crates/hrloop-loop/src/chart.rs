//! The loop's chart as SVG: quality of hire (loop vs the static initial model), 12-month
//! retention, adverse impact ratio, feedback completeness, month by month, with promotions
//! (green) and rollbacks / withdrawn challengers (red) marked and listed with their reasons.
//! Drawn with the reports' chart module (`hrloop_report::chart`), like every other chart.

use hrloop_report::chart::{Line, Marker, Panel, Series, panels};

use crate::{MonthRow, Summary};

type Getter = fn(&MonthRow) -> Option<f64>;

fn line(s: &Summary, name: &str, series: Series, get: Getter) -> Line {
    Line { name: name.into(), series, values: s.rows.iter().map(get).collect() }
}

pub fn svg(s: &Summary) -> Result<String, hrloop_report::Error> {
    let months: Vec<String> = s.rows.iter().map(|r| r.month.clone()).collect();
    let panel = |title: &str, lines: Vec<Line>, max: f64, target: Option<f64>| Panel {
        title: title.into(),
        lines,
        min: 0.0,
        max,
        target,
    };
    let charts = [
        panel(
            "Quality of hire: true success probability of hires",
            vec![
                line(s, "loop", Series::Primary, |r| r.quality_loop),
                line(s, "static initial model", Series::Muted, |r| r.quality_static),
            ],
            1.0,
            None,
        ),
        panel(
            "12-month retention (expected) of the loop's hires",
            vec![line(s, "loop", Series::Good, |r| r.retention_12m_loop)],
            1.0,
            None,
        ),
        panel(
            "Adverse impact ratio, gender, served top 5",
            vec![line(s, "women vs men", Series::Extra, |r| r.adverse_impact_ratio_gender)],
            1.2,
            Some(0.8),
        ),
        panel(
            "Feedback completeness at 6 months",
            vec![line(s, "6m", Series::Secondary, |r| r.feedback_completeness.get("6m").copied())],
            1.0,
            Some(0.9),
        ),
    ];
    let markers: Vec<Marker> = s
        .events
        .iter()
        .filter_map(|e| {
            let x = s.rows.iter().position(|r| r.month == e.month)?;
            let series = match e.change.as_str() {
                "promote" => Series::Good,
                "rollback" | "retire" => Series::Bad,
                _ => return None,
            };
            let text = format!(
                "{} {} {} → {}: {}",
                e.month,
                e.change,
                e.from_version.as_deref().unwrap_or("-"),
                e.to_version.as_deref().unwrap_or("-"),
                e.reason
            );
            // A long reason is cut so the line fits the chart's width.
            let text = if text.chars().count() > 140 {
                format!("{}…", text.chars().take(139).collect::<String>())
            } else {
                text
            };
            Some(Marker { x, series, text })
        })
        .collect();
    panels(
        &format!(
            "hrloop closed loop, seed {}, drift at {} — green: promotion, red: rollback or withdrawn challenger",
            s.seed, s.drift_month
        ),
        &months,
        &charts,
        &markers,
    )
}
