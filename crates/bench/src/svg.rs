//! A log-log chart of median time against size, one polyline per device and operation, as
//! hand-written SVG (no plotting crate: the chart is a few hundred lines of markup).
//!
//! It draws what a [`Report`] holds; it measures nothing.

use std::fmt::Write as _;

use super::report::{op_name, Report};

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = WIDTH - 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = HEIGHT - 60.0;

/// Operations drawn, with their colours (transfers are in bytes, on another scale: left out).
const OPS: [(&str, &str); 4] = [
    ("msm", "#1f77b4"),
    ("ntt", "#ff7f0e"),
    ("prove", "#2ca02c"),
    ("aggregate", "#d62728"),
];
/// Dash patterns, one per device, in report order.
const DASHES: [&str; 4] = ["", "8 4", "3 3", "12 4 3 4"];

/// One line of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour.
    pub color: &'static str,
    /// SVG dash pattern (empty for solid).
    pub dash: &'static str,
    /// (size, median seconds), by size.
    pub points: Vec<(f64, f64)>,
}

/// The series of a report: per device, per drawn operation, the medians by size.
pub fn series(report: &Report) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, device) in report.devices.iter().enumerate() {
        for (op, color) in OPS {
            let mut points: Vec<(f64, f64)> = device
                .results
                .iter()
                .filter(|m| m.op == op && m.size > 0 && m.seconds.median > 0.0)
                .map(|m| (m.size as f64, m.seconds.median))
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            out.push(Series {
                name: format!("{} {}", device.id, op_name(op)),
                color,
                dash: DASHES[i % DASHES.len()],
                points,
            });
        }
    }
    out
}

/// Maps `value` on a log scale whose ends, as logarithms in `base`, are `range`, onto the
/// pixel interval `pixels` (which may run backwards, as the y axis does).
pub fn scale_log(value: f64, base: f64, range: (f64, f64), pixels: (f64, f64)) -> f64 {
    let t = (value.log(base) - range.0) / (range.1 - range.0);
    pixels.0 + t * (pixels.1 - pixels.0)
}

/// Whole-number log bounds around `values`, at least one step apart.
fn log_bounds(values: impl Iterator<Item = f64>, base: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v.log(base)), hi.max(v.log(base)))
    });
    let (lo, hi) = (lo.floor(), hi.ceil());
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A decade as a time: `1 µs`, `10 ms`, `100 s`.
fn decade_label(exponent: i32) -> String {
    let (unit, base) = match exponent {
        e if e < -6 => ("ns", -9),
        e if e < -3 => ("µs", -6),
        e if e < 0 => ("ms", -3),
        _ => ("s", 0),
    };
    format!("{} {unit}", 10u64.pow((exponent - base).clamp(0, 9) as u32))
}

/// The chart of `report` as an SVG document.
pub fn chart(report: &Report) -> String {
    let series = series(report);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        escape(&format!(
            "proofmill bench — {} — {}",
            report.machine.hostname, report.date
        ))
    );
    if series.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text>"#,
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
        svg.push_str("</svg>\n");
        return svg;
    }
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let xr = log_bounds(all().map(|p| p.0), 2.0);
    let yr = log_bounds(all().map(|p| p.1), 10.0);
    let x = |v: f64| scale_log(v, 2.0, xr, (LEFT, RIGHT));
    let y = |v: f64| scale_log(v, 10.0, yr, (BOTTOM, TOP));

    // Grid, ticks and labels.
    let x_step = if xr.1 - xr.0 > 12.0 { 2 } else { 1 };
    for e in (xr.0 as i32..=xr.1 as i32).step_by(x_step) {
        let px = x(2f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{BOTTOM}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{}" text-anchor="middle">2<tspan dy="-6" font-size="9">{e}</tspan></text>"#,
            BOTTOM + 18.0
        );
    }
    for e in yr.0 as i32..=yr.1 as i32 {
        let py = y(10f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py + 4.0,
            decade_label(e)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">size (MSM points, NTT elements, proof rows 2^k) — log scale</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{0}" text-anchor="middle" transform="rotate(-90 18 {0})">median time — log scale</text>"#,
        (TOP + BOTTOM) / 2.0
    );

    // One polyline (and its point markers) per series, and the legend.
    for (i, s) in series.iter().enumerate() {
        let points = s
            .points
            .iter()
            .map(|&(sx, sy)| format!("{:.1},{:.1}", x(sx), y(sy)))
            .collect::<Vec<_>>()
            .join(" ");
        let dash = if s.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, s.dash)
        };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{points}"><title>{}</title></polyline>"#,
            s.color,
            escape(&s.name)
        );
        for &(sx, sy) in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                x(sx),
                y(sy),
                s.color
            );
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#,
            RIGHT + 16.0,
            RIGHT + 46.0,
            s.color
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            RIGHT + 52.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{measurement, report};
    use crate::report::DeviceReport;

    #[test]
    fn log_scale_maps_ends_and_middle() {
        let px = |v| scale_log(v, 2.0, (10.0, 20.0), (100.0, 600.0));
        assert!((px(1024.0) - 100.0).abs() < 1e-9);
        assert!((px(1_048_576.0) - 600.0).abs() < 1e-9);
        assert!((px(32_768.0) - 350.0).abs() < 1e-9, "2^15 is half way");
        // y runs downwards: larger times are higher up (smaller pixel values).
        let py = |v| scale_log(v, 10.0, (-3.0, 1.0), (500.0, 100.0));
        assert!((py(0.001) - 500.0).abs() < 1e-9);
        assert!((py(10.0) - 100.0).abs() < 1e-9);
        assert!(py(1.0) < py(0.1));
    }

    #[test]
    fn bounds_are_whole_and_never_empty() {
        assert_eq!(log_bounds([1000.0, 5000.0].into_iter(), 2.0), (9.0, 13.0));
        assert_eq!(log_bounds([0.02, 0.05].into_iter(), 10.0), (-2.0, -1.0));
        assert_eq!(
            log_bounds([1024.0].into_iter(), 2.0),
            (9.0, 11.0),
            "one point"
        );
        assert_eq!(decade_label(-6), "1 µs");
        assert_eq!(decade_label(-2), "10 ms");
        assert_eq!(decade_label(2), "100 s");
    }

    #[test]
    fn chart_has_a_polyline_per_device_and_operation() {
        let device = |id: &str| DeviceReport {
            id: id.to_owned(),
            kind: "cpu".to_owned(),
            name: "x".to_owned(),
            results: vec![
                measurement("msm", "2^12", 4096, &[0.01]),
                measurement("msm", "2^14", 16384, &[0.03]),
                measurement("ntt", "2^12", 4096, &[0.001]),
                measurement("h2d", "1 MiB", 1 << 20, &[0.001]),
            ],
            skipped: vec![],
            notes: vec![],
        };
        let r = report(vec![device("cpu"), device("cuda:0")]);
        let s = series(&r);
        assert_eq!(
            s.len(),
            4,
            "msm and ntt for two devices; transfers left out"
        );
        assert_ne!(s[0].dash, s[2].dash, "devices differ by dash");
        let svg = chart(&r);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(svg.contains("cuda:0 MSM"));
    }

    #[test]
    fn empty_report_still_gives_a_document() {
        let svg = chart(&report(vec![]));
        assert!(svg.starts_with("<svg") && svg.contains("no data") && svg.contains("</svg>"));
    }
}
