//! The benchmark report: its JSON shape (`proofmill-bench/1`), the comparison with an
//! earlier report, and its renderings as a terminal table and as Markdown.
//!
//! It formats and compares numbers; it measures nothing and touches no device.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::machine::Machine;
use super::stats::Summary;

/// The `format` of every report this version writes.
pub const FORMAT: &str = "proofmill-bench/1";

/// A whole benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// `quick` or `full`.
    pub mode: String,
    /// The command line, for reproducing the run.
    pub command: String,
    /// proofmill, rustc and crate versions.
    pub versions: BTreeMap<String, String>,
    /// The machine.
    pub machine: Machine,
    /// Price of the machine per hour, when given (`--price-per-hour`).
    pub price_per_hour_usd: Option<f64>,
    /// One entry per device benchmarked.
    pub devices: Vec<DeviceReport>,
    /// The report compared with (`--baseline`), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
}

/// The results of one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// Stable id used to match reports: `cpu`, `cuda:0`, …
    pub id: String,
    /// `cpu` or `cuda`.
    pub kind: String,
    /// What it is, e.g. the GPU or CPU model.
    pub name: String,
    /// Measurements, in the order taken.
    pub results: Vec<Measurement>,
    /// What was not measured on this device, and why.
    pub skipped: Vec<Skipped>,
    /// What else a reader should know about these figures (e.g. what the GPU engine did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An operation not measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The operation.
    pub op: String,
    /// Why.
    pub reason: String,
}

/// One operation at one size, repeated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `msm`, `ntt`, `h2d`, `d2h`, `prove` or `aggregate`.
    pub op: String,
    /// Human label of the size, e.g. `2^16` or `transfer_batch/d16-b8`.
    pub label: String,
    /// The size as a number, in `size_unit`.
    pub size: u64,
    /// `points` (MSM), `elements` (NTT), `bytes` (transfers) or `rows` (proofs: 2^k).
    pub size_unit: String,
    /// Circuit `k`, for proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// How `seconds` was measured.
    pub timing: String,
    /// Untimed runs before the timed ones.
    pub warmups: usize,
    /// Time of one operation, over the repetitions.
    pub seconds: Summary,
    /// GPU: the kernels alone (CUDA events), without transfers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_seconds: Option<Summary>,
    /// GPU: host wall clock of the whole call (conversions and transfers included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<Summary>,
    /// Work per second at the median time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Average board power (NVML) during each repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_watts: Option<Summary>,
    /// Energy of one operation (NVML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<Summary>,
    /// Device-seconds at the median times the price per hour / 3600, for proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The same measurement in the baseline report, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Comparison>,
}

/// Work per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Amount per second.
    pub per_second: f64,
    /// What is counted: `points`, `elements`, `bytes`, `proofs`.
    pub unit: String,
}

/// A measurement against the baseline's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's median seconds.
    pub median_seconds: f64,
    /// This median / the baseline's: below 1 is faster.
    pub ratio: f64,
}

/// Which report the ratios are against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineInfo {
    /// The file given.
    pub path: String,
    /// Its date.
    pub date: String,
    /// Its machine, one line.
    pub machine: String,
    /// Measurements matched (same device id, operation and size).
    pub matched: usize,
    /// Measurements of this run with no counterpart in the baseline.
    pub unmatched: usize,
}

impl Measurement {
    /// The key that matches a measurement across reports.
    fn key(&self) -> (String, String) {
        (self.op.clone(), self.label.clone())
    }
}

/// Adds to `report` the ratios of its medians to `base`'s, matching device id, operation
/// and size label; returns how many matched.
pub fn compare(report: &mut Report, base: &Report, path: &str) -> usize {
    let mut baseline = BTreeMap::new();
    for d in &base.devices {
        for m in &d.results {
            baseline.insert((d.id.clone(), m.key()), m.seconds.median);
        }
    }
    let (mut matched, mut unmatched) = (0, 0);
    for d in &mut report.devices {
        for m in &mut d.results {
            match baseline.get(&(d.id.clone(), m.key())) {
                Some(&median) if median > 0.0 => {
                    m.baseline = Some(Comparison {
                        median_seconds: median,
                        ratio: m.seconds.median / median,
                    });
                    matched += 1;
                }
                _ => {
                    m.baseline = None;
                    unmatched += 1;
                }
            }
        }
    }
    report.baseline = Some(BaselineInfo {
        path: path.to_owned(),
        date: base.date.clone(),
        machine: base.machine.one_line(),
        matched,
        unmatched,
    });
    matched
}

/// `1.23 ms`, `45.6 s`: three significant digits in a readable unit.
pub fn format_seconds(s: f64) -> String {
    let (value, unit) = if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    format!("{} {unit}", three_digits(value))
}

fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `12.3 M points/s`, `5.20 GB/s`.
pub fn format_throughput(t: &Throughput) -> String {
    let v = t.per_second;
    if t.unit == "bytes" {
        return format!("{} GB/s", three_digits(v / 1e9));
    }
    let (value, prefix) = if v >= 1e9 {
        (v / 1e9, "G ")
    } else if v >= 1e6 {
        (v / 1e6, "M ")
    } else if v >= 1e3 {
        (v / 1e3, "k ")
    } else {
        (v, "")
    };
    format!("{} {prefix}{}/s", three_digits(value), t.unit)
}

/// A label for an operation.
pub fn op_name(op: &str) -> &str {
    match op {
        "msm" => "MSM",
        "ntt" => "NTT",
        "h2d" => "host->device",
        "d2h" => "device->host",
        other => other,
    }
}

/// `0.91x` (time ratio to the baseline).
fn format_ratio(c: &Comparison) -> String {
    format!("{:.2}x", c.ratio)
}

/// Column set and rows of one device's table.
fn rows(device: &DeviceReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let results = &device.results;
    let kernels = results.iter().any(|m| m.kernel_seconds.is_some());
    let power = results.iter().any(|m| m.power_watts.is_some());
    let cost = results.iter().any(|m| m.cost_usd.is_some());
    let base = results.iter().any(|m| m.baseline.is_some());
    let mut header = vec![
        "operation",
        "size",
        "median",
        "min",
        "max",
        "reps",
        "throughput",
    ];
    if kernels {
        header.push("kernels");
    }
    if power {
        header.extend(["power", "energy/op"]);
    }
    if cost {
        header.push("cost/proof");
    }
    if base {
        header.push("vs baseline");
    }
    let rows = results
        .iter()
        .map(|m| {
            let mut row = vec![
                op_name(&m.op).to_owned(),
                m.label.clone(),
                format_seconds(m.seconds.median),
                format_seconds(m.seconds.min),
                format_seconds(m.seconds.max),
                m.seconds.samples.len().to_string(),
                m.throughput
                    .as_ref()
                    .map_or("-".to_owned(), format_throughput),
            ];
            if kernels {
                row.push(
                    m.kernel_seconds
                        .as_ref()
                        .map_or("-".to_owned(), |k| format_seconds(k.median)),
                );
            }
            if power {
                row.push(
                    m.power_watts
                        .as_ref()
                        .map_or("n/a".to_owned(), |p| format!("{:.0} W", p.median)),
                );
                row.push(
                    m.energy_joules
                        .as_ref()
                        .map_or("n/a".to_owned(), |e| format_joules(e.median)),
                );
            }
            if cost {
                row.push(m.cost_usd.map_or("-".to_owned(), |c| format!("${c:.6}")));
            }
            if base {
                row.push(m.baseline.as_ref().map_or("-".to_owned(), format_ratio));
            }
            row
        })
        .collect();
    (header, rows)
}

fn format_joules(j: f64) -> String {
    if j < 1.0 {
        format!("{} mJ", three_digits(j * 1e3))
    } else {
        format!("{} J", three_digits(j))
    }
}

/// The report as fixed-width text for a terminal.
pub fn terminal_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "proofmill bench {} ({}) {}",
        report.versions.get("proofmill").map_or("?", String::as_str),
        report.mode,
        report.date
    );
    let _ = writeln!(out, "machine: {}", report.machine.one_line());
    if let Some(b) = &report.baseline {
        let _ = writeln!(
            out,
            "baseline: {} ({}, {}): 'vs baseline' = median time / baseline median, below 1 is faster",
            b.path, b.date, b.machine
        );
    }
    for d in &report.devices {
        let _ = writeln!(out, "\n{} — {}", d.id, d.name);
        let (header, rows) = rows(d);
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let pad = w.saturating_sub(c.chars().count());
                    if i < 2 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let _ = writeln!(
            out,
            "{}",
            line(header.iter().map(|h| h.to_uppercase()).collect())
        );
        for r in rows {
            let _ = writeln!(out, "{}", line(r));
        }
        for s in &d.skipped {
            let _ = writeln!(out, "  {}: {}", op_name(&s.op), s.reason);
        }
        for n in &d.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    out
}

/// The report as Markdown; `chart` names the SVG written next to it, when there is one.
pub fn markdown(report: &Report, chart: Option<&str>) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(out, "# proofmill bench: {} ({})\n", m.hostname, report.date);
    let _ = writeln!(
        out,
        "Mode: **{}**. Command: `{}`.\n",
        report.mode, report.command
    );
    let _ = writeln!(out, "| machine | |\n|---|---|");
    let _ = writeln!(out, "| host | {} ({}) |", m.hostname, m.os);
    let _ = writeln!(
        out,
        "| CPU | {} — {} cores, {} threads |",
        m.cpu_model, m.cpu_cores, m.cpu_threads
    );
    if let Some(b) = m.memory_bytes {
        let _ = writeln!(out, "| memory | {:.1} GiB |", proofmill_accel::host::gib(b));
    }
    if m.gpus.is_empty() {
        let _ = writeln!(
            out,
            "| GPUs | none: {} |",
            m.no_gpu_reason.as_deref().unwrap_or("none found")
        );
    }
    for g in &m.gpus {
        let mem = g.memory_bytes.map_or(String::new(), |b| {
            format!(", {:.0} GiB", proofmill_accel::host::gib(b))
        });
        let cc = g
            .compute_capability
            .as_deref()
            .map_or(String::new(), |c| format!(", compute {c}"));
        let usable = g
            .unusable_reason
            .as_deref()
            .map_or(String::new(), |r| format!(" — not usable: {r}"));
        let _ = writeln!(out, "| GPU {} | {}{mem}{cc}{usable} |", g.index, g.name);
    }
    if let Some(d) = &m.gpu_driver {
        let _ = writeln!(out, "| NVIDIA driver | {d} |");
    }
    let versions = report
        .versions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(out, "| software | {versions} |");
    if let Some(p) = report.price_per_hour_usd {
        let _ = writeln!(
            out,
            "| price | ${p}/hour (cost per proof = device-seconds x price / 3600) |"
        );
    }
    if let Some(b) = &report.baseline {
        let _ = writeln!(
            out,
            "\nCompared with `{}` ({}, {}): **vs baseline** is this run's median time divided by \
             the baseline's; below 1 is faster. {} measurements matched, {} had no counterpart.",
            b.path, b.date, b.machine, b.matched, b.unmatched
        );
    }
    for d in &report.devices {
        let _ = writeln!(out, "\n## {} — {}\n", d.id, d.name);
        let (header, rows) = rows(d);
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}|",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i < 2 { "---" } else { "---:" })
                .collect::<Vec<_>>()
                .join("|")
        );
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        if !d.skipped.is_empty() || !d.notes.is_empty() {
            out.push('\n');
            for s in &d.skipped {
                let _ = writeln!(out, "- {}: {}", op_name(&s.op), s.reason);
            }
            for n in &d.notes {
                let _ = writeln!(out, "- note: {n}");
            }
        }
        let timings: std::collections::BTreeSet<String> = d
            .results
            .iter()
            .map(|m| format!("{}: {}", op_name(&m.op), m.timing))
            .collect();
        if !timings.is_empty() {
            let _ = writeln!(out, "\nTiming:");
            for t in timings {
                let _ = writeln!(out, "- {t}");
            }
        }
    }
    if let Some(chart) = chart {
        let _ = writeln!(
            out,
            "\n## Time against size\n\n![median time against size, log-log]({chart})"
        );
    }
    let _ = writeln!(
        out,
        "\nEvery figure is the min / median / max over the repetitions (reps column), after \
         untimed warm-ups; each repetition gets fresh random inputs. The JSON report has every sample."
    );
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn measurement(op: &str, label: &str, size: u64, samples: &[f64]) -> Measurement {
        Measurement {
            op: op.to_owned(),
            label: label.to_owned(),
            size,
            size_unit: "points".to_owned(),
            k: None,
            timing: "host wall clock".to_owned(),
            warmups: 1,
            seconds: Summary::of(samples).expect("samples"),
            kernel_seconds: None,
            wall_seconds: None,
            throughput: None,
            power_watts: None,
            energy_joules: None,
            cost_usd: None,
            baseline: None,
        }
    }

    pub(crate) fn report(devices: Vec<DeviceReport>) -> Report {
        Report {
            format: FORMAT.to_owned(),
            date: "2026-11-25T00:00:00Z".to_owned(),
            mode: "quick".to_owned(),
            command: "proofmill bench --quick".to_owned(),
            versions: BTreeMap::from([("proofmill".to_owned(), "0.1.0".to_owned())]),
            machine: Machine {
                hostname: "h".to_owned(),
                os: "linux x86_64".to_owned(),
                cpu_model: "CPU".to_owned(),
                cpu_cores: 2,
                cpu_threads: 2,
                memory_bytes: Some(1 << 30),
                gpu_driver: None,
                nvrtc: None,
                gpus: vec![],
                no_gpu_reason: Some("none".to_owned()),
            },
            price_per_hour_usd: None,
            devices,
            baseline: None,
        }
    }

    fn device(id: &str, results: Vec<Measurement>) -> DeviceReport {
        DeviceReport {
            id: id.to_owned(),
            kind: "cpu".to_owned(),
            name: "CPU".to_owned(),
            results,
            skipped: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn baseline_ratios_match_by_device_operation_and_size() {
        let base = report(vec![device(
            "cpu",
            vec![
                measurement("msm", "2^12", 4096, &[2.0]),
                measurement("ntt", "2^12", 4096, &[1.0]),
            ],
        )]);
        let mut now = report(vec![
            device(
                "cpu",
                vec![
                    measurement("msm", "2^12", 4096, &[1.0, 1.0, 1.0]),
                    measurement("msm", "2^14", 16384, &[1.0]),
                ],
            ),
            device("cuda:0", vec![measurement("msm", "2^12", 4096, &[1.0])]),
        ]);
        assert_eq!(compare(&mut now, &base, "old.json"), 1);
        let r = &now.devices[0].results;
        assert_eq!(
            r[0].baseline,
            Some(Comparison {
                median_seconds: 2.0,
                ratio: 0.5
            })
        );
        assert_eq!(r[1].baseline, None, "no 2^14 in the baseline");
        assert_eq!(now.devices[1].results[0].baseline, None, "other device");
        let info = now.baseline.as_ref().expect("baseline info");
        assert_eq!((info.matched, info.unmatched), (1, 2));
        assert!(terminal_table(&now).contains("0.50x"));
        assert!(markdown(&now, None).contains("| 0.50x |"));
    }

    #[test]
    fn a_report_against_itself_has_ratio_one_everywhere() {
        let mut now = report(vec![device(
            "cpu",
            vec![measurement("ntt", "2^10", 1024, &[0.3, 0.1, 0.2])],
        )]);
        let base = now.clone();
        assert_eq!(compare(&mut now, &base, "same.json"), 1);
        assert_eq!(
            now.devices[0].results[0].baseline.as_ref().map(|c| c.ratio),
            Some(1.0)
        );
    }

    #[test]
    fn report_survives_json_round_trip() {
        let now = report(vec![device(
            "cpu",
            vec![measurement("msm", "2^12", 4096, &[0.001, 0.002])],
        )]);
        let text = serde_json::to_string(&now).expect("serialize");
        let back: Report = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, now);
    }

    #[test]
    fn seconds_and_throughput_are_readable() {
        assert_eq!(format_seconds(0.000_012_34), "12.3 µs");
        assert_eq!(format_seconds(0.001_5), "1.50 ms");
        assert_eq!(format_seconds(46.62), "46.6 s");
        assert_eq!(format_seconds(123.4), "123 s");
        let t = Throughput {
            per_second: 12_345_678.0,
            unit: "points".to_owned(),
        };
        assert_eq!(format_throughput(&t), "12.3 M points/s");
        let b = Throughput {
            per_second: 5.2e9,
            unit: "bytes".to_owned(),
        };
        assert_eq!(format_throughput(&b), "5.20 GB/s");
    }
}
