//! The loop's chart as SVG: quality of hire (loop vs the static initial model), 12-month
//! retention, adverse impact ratio, feedback completeness, month by month, with promotions
//! (green) and rollbacks / withdrawn challengers (red) marked.

use crate::{MonthRow, Summary};

const W: f64 = 900.0;
const PANEL_H: f64 = 150.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 40.0;

type Getter = fn(&MonthRow) -> Option<f64>;

/// Title, lines (name, colour, value), y range, target line.
type Panel<'a> = (&'a str, Vec<(&'a str, &'a str, Getter)>, f64, f64, Option<f64>);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn svg(s: &Summary) -> String {
    let n = s.rows.len().max(2);
    let x = |i: usize| LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64;
    let panels: [Panel<'_>; 4] = [
        (
            "Quality of hire: true success probability of hires",
            vec![("loop", "#1f77b4", |r| r.quality_loop), ("static initial model", "#999999", |r| r.quality_static)],
            0.0,
            1.0,
            None,
        ),
        (
            "12-month retention (expected) of the loop's hires",
            vec![("loop", "#2ca02c", |r| r.retention_12m_loop)],
            0.0,
            1.0,
            None,
        ),
        (
            "Adverse impact ratio, gender, served top 5",
            vec![("women vs men", "#9467bd", |r| r.adverse_impact_ratio_gender)],
            0.0,
            1.2,
            Some(0.8),
        ),
        (
            "Feedback completeness at 6 months",
            vec![("6m", "#ff7f0e", |r| r.feedback_completeness.get("6m").copied())],
            0.0,
            1.0,
            Some(0.9),
        ),
    ];
    let height = TOP + panels.len() as f64 * (PANEL_H + GAP) + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"15\">hrloop closed loop, seed {}, drift at {} — green: promotion, red: rollback or withdrawn challenger</text>\n",
        s.seed, s.drift_month
    );
    for (p, (title, lines, lo, hi, target)) in panels.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL_H + GAP);
        let y = |v: f64| top + PANEL_H - (v - lo) / (hi - lo) * PANEL_H;
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{}\" font-size=\"12\">{}</text>\n<rect x=\"{LEFT}\" y=\"{top}\" width=\"{}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#ccc\"/>\n",
            top - 6.0,
            esc(title),
            W - LEFT - RIGHT
        ));
        for v in [*lo, (lo + hi) / 2.0, *hi] {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.2}</text>\n",
                LEFT - 6.0,
                y(v) + 4.0
            ));
        }
        if let Some(t) = target {
            out.push_str(&format!(
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>\n",
                W - RIGHT,
                y(*t),
                y(*t)
            ));
        }
        for (i, e) in s.events.iter().enumerate() {
            let Some(m) = s.rows.iter().position(|r| r.month == e.month) else { continue };
            let colour = match e.change.as_str() {
                "promote" => "#2ca02c",
                "rollback" | "retire" => "#d62728",
                _ => continue,
            };
            out.push_str(&format!(
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{top}\" y2=\"{1}\" stroke=\"{colour}\" stroke-width=\"2\" opacity=\"0.6\"><title>{2}</title></line>\n",
                x(m) + (i % 3) as f64,
                top + PANEL_H,
                esc(&format!("{} {} → {}: {}", e.change, e.from_version.as_deref().unwrap_or("-"), e.to_version.as_deref().unwrap_or("-"), e.reason))
            ));
        }
        for (li, (name, colour, get)) in lines.iter().enumerate() {
            let pts: Vec<String> = s
                .rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| get(r).map(|v| format!("{:.1},{:.1}", x(i), y(v.clamp(*lo, *hi)))))
                .collect();
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>\n",
                pts.join(" "),
                W - RIGHT - 160.0,
                top + 14.0 + 13.0 * li as f64,
                esc(name)
            ));
        }
    }
    let bottom = TOP + panels.len() as f64 * (PANEL_H + GAP) - GAP + 16.0;
    for (i, r) in s.rows.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        out.push_str(&format!("<text x=\"{:.1}\" y=\"{bottom}\" text-anchor=\"middle\">{}</text>\n", x(i), r.month));
    }
    out.push_str("</svg>\n");
    out
}
