//! The reports' charts, as SVG for inline use in one self-contained HTML file (nothing loaded
//! from the network): drawn with plotters' SVG back-end, text left to the browser's fonts.

use plotters::prelude::*;

use crate::{Error, Result};

/// One bar: a label, a value, and its 95 % interval where there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub interval: Option<(f64, f64)>,
    pub series: Series,
}

/// Which colour a bar is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Blue: the measure itself (or the model, beside the recruiters).
    Primary,
    /// Orange: the second of two measures compared (the recruiters).
    Secondary,
    /// Grey: something reported but not compared.
    Muted,
    /// Green: a good event (a promotion) or a good measure.
    Good,
    /// Red: a bad event (a rollback).
    Bad,
    /// Purple: a third measure.
    Extra,
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREY: RGBColor = RGBColor(170, 170, 170);
const RED: RGBColor = RGBColor(214, 39, 40);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// Horizontal bars with interval whiskers, a value axis from 0 to `max` (at least the largest
/// value or interval end), and a dashed vertical line at `threshold` (e.g. the four-fifths
/// rule's 0.8) with its caption.
pub fn bars(title: &str, bars: &[Bar], max: f64, threshold: Option<(f64, &str)>) -> Result<String> {
    let longest = bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(4);
    let label_width = (longest as u32 * 8 + 16).clamp(60, 280);
    let (width, height) = (680u32, 70 + 30 * bars.len().max(1) as u32);
    let top = bars
        .iter()
        .flat_map(|b| [b.value, b.interval.map_or(0.0, |i| i.1)])
        .chain(threshold.map(|t| t.0))
        .fold(max, f64::max);
    // Whiskers that run off to infinity (a group nobody selected) stop at the edge.
    let top = top.min(max * 2.0).max(max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let n = bars.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..top, 0.0..n)
            .map_err(draw)?;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len().max(1) * 2 + 1)
            .y_label_formatter(&|y| {
                // Labels sit at the middle of each bar's band.
                let i = (n - y - 0.5).round();
                if (n - y - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.1}"))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw)?;
        for (i, b) in bars.iter().enumerate() {
            let y = n - i as f64 - 1.0;
            let colour = colour(b.series);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.2), (b.value.clamp(0.0, top), y + 0.8)],
                    colour.filled(),
                )))
                .map_err(draw)?;
            if let Some((lo, hi)) = b.interval {
                let (lo, hi) = (lo.clamp(0.0, top), hi.clamp(0.0, top));
                let mid = y + 0.5;
                let whisker = [(lo, mid), (hi, mid)];
                chart.draw_series(std::iter::once(PathElement::new(whisker, BLACK.stroke_width(1)))).map_err(draw)?;
                for x in [lo, hi] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            [(x, mid - 0.15), (x, mid + 0.15)],
                            BLACK.stroke_width(1),
                        )))
                        .map_err(draw)?;
                }
            }
        }
        if let Some((t, caption)) = threshold {
            let dashes = (0..40).map(|k| {
                let y0 = n * k as f64 / 40.0;
                PathElement::new([(t, y0), (t, y0 + n / 80.0)], RED.stroke_width(2))
            });
            chart.draw_series(dashes).map_err(draw)?;
            // The caption beside the line's top, in the title band.
            let (x, _) = chart.backend_coord(&(t, n));
            root.draw(&Text::new(caption.to_string(), (x + 4, 30), ("sans-serif", 12).into_font().color(&RED)))
                .map_err(draw)?;
        }
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// One line of a [`lines`] chart: a name for the legend, its colour, and a value per x label
/// (None where there is none).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub series: Series,
    pub values: Vec<Option<f64>>,
}

/// Lines over labelled x positions (e.g. months), a y axis from 0 to `max`, with a legend.
pub fn lines(title: &str, x_labels: &[String], lines: &[Line], max: f64) -> Result<String> {
    let (width, height) = (680u32, 300u32);
    let n = x_labels.len().max(2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..(n - 1) as f64, 0.0..max)
            .map_err(draw)?;
        let every = x_labels.len().div_ceil(8).max(1);
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| every_nth(x_labels, every, *x))
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .label_style(("sans-serif", 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw)?;
        for line in lines {
            let colour = colour(line.series);
            let points: Vec<(f64, f64)> =
                line.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as f64, v.clamp(0.0, max)))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(draw)?
                .label(line.name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled()))).map_err(draw)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(GREY)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// One panel of a [`panels`] chart: lines on a y range, and a dashed target line.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub lines: Vec<Line>,
    pub min: f64,
    pub max: f64,
    pub target: Option<f64>,
}

/// A vertical marker through every panel at an x position (e.g. a promotion), with the text
/// listed under the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub x: usize,
    pub series: Series,
    pub text: String,
}

/// Panels stacked over shared x labels (e.g. the loop's months), with markers drawn through
/// each and listed, in their colour, under the chart.
pub fn panels(title: &str, x_labels: &[String], panels: &[Panel], markers: &[Marker]) -> Result<String> {
    const PANEL_H: u32 = 190;
    let width = 900u32;
    let legend_h = 18 * markers.len() as u32 + 16;
    let height = 40 + PANEL_H * panels.len() as u32 + legend_h;
    let n = x_labels.len().max(2);
    let every = x_labels.len().div_ceil(12).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let (head, rest) = root.split_vertically(40);
        head.draw(&Text::new(title.to_string(), (12, 12), ("sans-serif", 15))).map_err(draw)?;
        let (body, foot) = rest.split_vertically(PANEL_H * panels.len() as u32);
        let areas = body.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 13))
                .margin(8)
                .x_label_area_size(22)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..(n - 1) as f64, panel.min..panel.max)
                .map_err(draw)?;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| every_nth(x_labels, every, *x))
                .y_labels(5)
                .y_label_formatter(&|y| format!("{y:.2}"))
                .label_style(("sans-serif", 11))
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(draw)?;
            if let Some(t) = panel.target {
                let dashes = (0..60).map(|k| {
                    let x0 = (n - 1) as f64 * k as f64 / 60.0;
                    PathElement::new([(x0, t), (x0 + (n - 1) as f64 / 120.0, t)], RED.stroke_width(1))
                });
                chart.draw_series(dashes).map_err(draw)?;
            }
            for (k, m) in markers.iter().enumerate() {
                // Markers of one month side by side, a pixel-ish apart.
                let x = m.x as f64 + (k % 3) as f64 * 0.03;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        [(x, panel.min), (x, panel.max)],
                        colour(m.series).mix(0.6).stroke_width(2),
                    )))
                    .map_err(draw)?;
            }
            for line in &panel.lines {
                let c = colour(line.series);
                let points: Vec<(f64, f64)> = line
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as f64, v.clamp(panel.min, panel.max))))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))
                    .map_err(draw)?
                    .label(line.name.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(GREY)
                .label_font(("sans-serif", 11))
                .draw()
                .map_err(draw)?;
        }
        for (k, m) in markers.iter().enumerate() {
            let style = ("sans-serif", 12).into_font().color(&colour(m.series));
            foot.draw(&Text::new(m.text.clone(), (12, 8 + 18 * k as i32), style)).map_err(draw)?;
        }
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

/// The label at integer x positions that are a multiple of `every`; nothing elsewhere.
fn every_nth(labels: &[String], every: usize, x: f64) -> String {
    let i = x.round() as usize;
    if (x - i as f64).abs() < 1e-6 && i.is_multiple_of(every) {
        labels.get(i).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

fn colour(series: Series) -> RGBColor {
    match series {
        Series::Primary => BLUE,
        Series::Secondary => ORANGE,
        Series::Muted => GREY,
        Series::Good => GREEN,
        Series::Bad => RED,
        Series::Extra => PURPLE,
    }
}

fn draw<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Chart(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_draw_one_rectangle_per_bar_and_the_threshold() {
        let b = |label: &str, value: f64| Bar {
            label: label.into(),
            value,
            interval: Some((value * 0.8, value * 1.1)),
            series: Series::Primary,
        };
        let svg = bars("Impact ratio", &[b("female", 1.0), b("male", 0.62)], 1.2, Some((0.8, "four-fifths"))).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["Impact ratio", "female", "male", "four-fifths"] {
            assert!(svg.contains(text), "{text} missing from {svg}");
        }
        let months: Vec<String> = ["2026-01", "2026-02", "2026-03"].map(String::from).to_vec();
        let line = |name: &str, series, values: Vec<Option<f64>>| Line { name: name.into(), series, values };
        let svg2 = lines(
            "Each month",
            &months,
            &[
                line("override rate", Series::Secondary, vec![Some(0.2), None, Some(0.25)]),
                line("routed", Series::Primary, vec![Some(0.1); 3]),
            ],
            1.0,
        )
        .unwrap();
        assert!(svg2.contains("override rate") && svg2.contains("2026-03") && svg2.contains("<polyline"), "{svg2}");
        assert_eq!(svg2.matches("<circle").count(), 2 + 3, "a point per value: {svg2}");
        // The background and one blue rectangle per bar.
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert_eq!(svg.matches("fill=\"#1F77B4\"").count(), 2, "{svg}");
    }

    #[test]
    fn panels_draw_each_panel_and_list_the_markers() {
        let months: Vec<String> = (1..=6).map(|m| format!("2026-0{m}")).collect();
        let panel = |title: &str| Panel {
            title: title.into(),
            lines: vec![Line { name: "loop".into(), series: Series::Primary, values: vec![Some(0.5); 6] }],
            min: 0.0,
            max: 1.0,
            target: Some(0.8),
        };
        let markers = [
            Marker { x: 2, series: Series::Good, text: "2026-03 promote v1 → v2: better".into() },
            Marker { x: 4, series: Series::Bad, text: "2026-05 retire v3 → -: worse".into() },
        ];
        let svg = panels("The loop", &months, &[panel("Quality"), panel("Retention")], &markers).unwrap();
        for text in ["The loop", "Quality", "Retention", "promote v1 → v2: better", "retire v3 → -: worse"] {
            assert!(svg.contains(text), "{text} missing");
        }
        let lower = svg.to_lowercase();
        // Each panel's line and its legend entry, in blue.
        assert_eq!(lower.matches("stroke=\"#1f77b4\"").count(), 4, "{svg}");
        assert!(lower.contains("#2ca02c") && lower.contains("#d62728"), "markers in their colours");
    }
}
