//! `proofmill bench`: the real binary's quick run writes a JSON report of the documented
//! shape, a Markdown report and an SVG chart, and compares a later run with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

fn proofmill(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofmill"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir())
        .current_dir(cwd)
        .output()
        .expect("runs proofmill")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn summary_ok(s: &Value, what: &str) {
    let (min, median, max) = (
        s["min"].as_f64().unwrap_or(f64::NAN),
        s["median"].as_f64().unwrap_or(f64::NAN),
        s["max"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(median > 0.0, "{what}: median {median}");
    assert!(
        min <= median && median <= max,
        "{what}: {min} {median} {max}"
    );
    let samples = s["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{what}: no samples");
}

#[test]
fn quick_run_writes_json_markdown_and_svg_and_compares_with_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let start = Instant::now();
    let run = proofmill(
        &["bench", "--quick", "--out-dir", out.to_str().unwrap()],
        dir.path(),
    );
    eprintln!("bench --quick took {:.1}s", start.elapsed().as_secs_f64());
    assert!(run.status.success(), "{}", text(&run));

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "proofmill-bench/1");
    assert_eq!(json["mode"], "quick");
    assert!(json["date"].as_str().unwrap().starts_with("20"));
    let machine = &json["machine"];
    assert!(!machine["hostname"].as_str().unwrap().is_empty());
    assert!(!machine["cpu_model"].as_str().unwrap().is_empty());
    assert!(machine["cpu_cores"].as_u64().unwrap() >= 1);
    assert!(machine["memory_bytes"].as_u64().unwrap() > 0);
    for key in ["proofmill", "rustc", "halo2-axiom", "halo2-base"] {
        assert!(
            json["versions"][key]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "version of {key}"
        );
    }
    let gpus_usable = machine["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["unusable_reason"].is_null());
    if !gpus_usable {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("no GPU: "), "says so loudly:\n{stderr}");
        assert!(machine["no_gpu_reason"].as_str().is_some());
    }

    let devices = json["devices"].as_array().unwrap();
    let cpu = devices
        .iter()
        .find(|d| d["id"] == "cpu")
        .expect("the CPU is benchmarked");
    let results = cpu["results"].as_array().unwrap();
    for op in ["msm", "ntt", "prove"] {
        assert!(
            results.iter().filter(|m| m["op"] == op).count() >= 2,
            "{op} at several sizes"
        );
    }
    for device in devices {
        for m in device["results"].as_array().unwrap() {
            let what = format!("{} {} {}", device["id"], m["op"], m["label"]);
            summary_ok(&m["seconds"], &what);
            assert!(m["size"].as_u64().unwrap() > 0, "{what}");
            assert!(!m["timing"].as_str().unwrap().is_empty(), "{what}");
            for optional in [
                "kernel_seconds",
                "wall_seconds",
                "power_watts",
                "energy_joules",
            ] {
                if !m[optional].is_null() {
                    summary_ok(&m[optional], &format!("{what} {optional}"));
                }
            }
        }
    }
    let skipped = cpu["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["op"] == "transfer" && s["reason"].as_str().unwrap().contains("n/a")),
        "transfers are n/a on the CPU: {skipped:?}"
    );
    assert!(skipped.iter().any(|s| s["op"] == "aggregate"));

    let table = String::from_utf8_lossy(&run.stdout);
    assert!(
        table.contains("MEDIAN") && table.contains("MSM") && table.contains("prove"),
        "{table}"
    );

    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.starts_with("# proofmill bench"), "{md}");
    assert!(
        md.contains("| operation | size | median | min | max |"),
        "{md}"
    );
    assert!(md.contains("| MSM | 2^"), "{md}");
    assert!(md.contains("](bench.svg)"), "links the chart: {md}");

    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<polyline"), "{svg}");
    for tag in ["text", "polyline", "svg"] {
        assert_eq!(
            svg.matches(&format!("<{tag}")).count(),
            svg.matches(&format!("</{tag}>")).count(),
            "<{tag}> opened and closed"
        );
    }

    // A second, lighter run (no proofs) against the first: ratios for what both measured.
    let baseline = out.join("bench.json");
    let out2 = dir.path().join("out2");
    let run2 = proofmill(
        &[
            "bench",
            "--quick",
            "--no-prove",
            "--baseline",
            baseline.to_str().unwrap(),
            "--json",
            out2.join("b.json").to_str().unwrap(),
            "--markdown",
            out2.join("b.md").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(run2.status.success(), "{}", text(&run2));
    assert!(
        String::from_utf8_lossy(&run2.stdout).contains("VS BASELINE"),
        "{}",
        text(&run2)
    );
    let json2: Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("b.json")).unwrap()).unwrap();
    assert!(json2["baseline"]["matched"].as_u64().unwrap() > 0);
    let cpu2 = json2["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "cpu")
        .unwrap();
    for m in cpu2["results"].as_array().unwrap() {
        let ratio = m["baseline"]["ratio"].as_f64().unwrap_or(f64::NAN);
        assert!(ratio > 0.0 && ratio.is_finite(), "{m}");
    }
    let md2 = std::fs::read_to_string(out2.join("b.md")).unwrap();
    assert!(md2.contains("vs baseline"), "{md2}");
    assert!(
        !out2.join("bench.svg").exists(),
        "no --svg, no --out-dir: no chart"
    );
}

#[test]
fn unusable_baseline_fails_at_once_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not-a-report.json");
    std::fs::write(&bad, "{\"format\": \"something else\"}").unwrap();
    let start = Instant::now();
    let run = proofmill(
        &["bench", "--quick", "--baseline", bad.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("not-a-report.json"),
        "{}",
        text(&run)
    );
    assert!(start.elapsed().as_secs() < 10, "before measuring anything");

    let run = proofmill(&["bench", "--quick", "--price-per-hour=-1"], dir.path());
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
}
