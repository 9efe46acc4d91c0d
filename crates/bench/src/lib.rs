//! `proofmill bench`: a hardware benchmark report people can compare. It measures, on every
//! usable GPU and on the CPU, MSM and NTT over a range of sizes, host<->device transfers
//! (GPUs), end-to-end `transfer_batch` proofs and an aggregation of two proofs, with GPU power
//! and energy from NVML; then prints a table and writes JSON, Markdown and an SVG chart,
//! optionally compared with an earlier JSON report.
//!
//! This crate owns the benchmark's plan and its outputs, and `proofmill selftest`
//! ([`selftest`]). It uses the accelerator backends and the prover through their public APIs
//! and changes neither; the binary only parses the flags and calls [`run`].

mod error;
mod machine;
mod measure;
mod report;
pub mod selftest;
mod stats;
mod svg;

pub use error::BenchError;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use proofmill_accel::{CpuBackend, CudaBackend, DeviceInventory};
use proofmill_circuits::{transfer_batch::TransferBatchConfig, CatalogCircuit};
use proofmill_prover::engine::{DevicePool, EngineAccelerator};
use proofmill_prover::Prover;

use machine::Machine;
use measure::{Bench, BenchPlan, Device, PowerMeter, Progress};

type Result<T, E = BenchError> = std::result::Result<T, E>;
use report::{DeviceReport, Measurement, Report, Skipped};

/// Flags of `proofmill bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// A short run (under a minute on a 2-core CPU): small sizes, 3 repetitions, small
    /// proofs, no aggregation.
    #[arg(long)]
    pub quick: bool,
    /// Devices to measure: cpu, cuda (every usable GPU) or all. The global `--backend` does
    /// not apply here: each device proves with the prover's engine on that device (the CPU
    /// with our CPU engine).
    #[arg(long, default_value = "all", value_parser = ["cpu", "cuda", "all"])]
    pub device: String,
    /// Timed repetitions of each MSM, NTT and transfer [default: 5; quick: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: Option<u32>,
    /// Timed repetitions of each proof and of the aggregation [default: 2 per proof, 1
    /// aggregation].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub proof_reps: Option<u32>,
    /// Write bench.json, bench.md and bench.svg into this directory.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Write the JSON report to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the Markdown report to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the SVG chart to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// An earlier JSON report: show each median as a ratio to its (same device id,
    /// operation and size).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// The machine's price in USD per hour: adds the cost per proof
    /// (device-seconds x price / 3600).
    #[arg(long)]
    pub price_per_hour: Option<f64>,
    /// Catalog circuits to prove, comma-separated [default: the catalog (on the CPU, up to
    /// k=19); quick: two small transfer_batch configurations].
    #[arg(long, value_delimiter = ',')]
    pub circuits: Vec<String>,
    /// Skip the aggregation of two proofs (it takes minutes and ~8 GB of memory).
    #[arg(long)]
    pub no_aggregate: bool,
    /// Skip proofs and aggregation: MSM, NTT and transfers only.
    #[arg(long)]
    pub no_prove: bool,
    /// Measure each MSM size once per Pippenger window width in this list (comma-separated,
    /// 1..=20 bits) instead of once with the backend's own choice: to tune the window for
    /// a card or CPU. Rows read "2^18 c=13".
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=20))]
    pub msm_windows: Vec<u32>,
}

/// The largest `k` proven on the CPU by default: d32-b64 (k=21) takes tens of minutes per
/// proof on a small CPU. `--circuits` overrides it.
const CPU_DEFAULT_MAX_K: u32 = 19;

/// The small circuits a quick run proves: the real `transfer_batch` circuit, with a smaller
/// tree, batch and lookup table than the catalog's, so that a proof takes seconds.
const QUICK_CIRCUITS: [TransferBatchConfig; 2] = [
    TransferBatchConfig {
        depth: 4,
        batch_size: 1,
        lookup_bits: 8,
    },
    TransferBatchConfig {
        depth: 8,
        batch_size: 2,
        lookup_bits: 8,
    },
];

/// How the CPU proves: the prover's CPU engine, as `proofmill prove` does without a GPU.
const CPU_PROVE_PATH: &str = "the prover's CPU engine (commitment MSMs and FFTs on our CPU backend; the rest in halo2-axiom)";
/// How a GPU proves: the prover's engine on that GPU.
const GPU_PROVE_PATH: &str = "the prover's engine on this GPU (commitment MSMs and FFTs on the GPU; quotient evaluation and multi-opening on the CPU)";

fn log_range(from: u32, to: u32, step: usize) -> Vec<u32> {
    (from..=to).step_by(step).collect()
}

fn plans(args: &BenchArgs) -> Result<(BenchPlan, BenchPlan)> {
    let reps = args
        .reps
        .map_or(if args.quick { 3 } else { 5 }, |r| r as usize);
    let proof_reps = args.proof_reps.map_or(2, |r| r as usize);
    // An aggregation takes minutes and ~8 GB: once, unless asked for more.
    let aggregate_reps = args.proof_reps.map_or(1, |r| r as usize);
    let circuits: Vec<CatalogCircuit> = if args.no_prove {
        vec![]
    } else if !args.circuits.is_empty() {
        args.circuits
            .iter()
            .map(|c| proofmill_circuits::lookup(c.trim()))
            .collect::<Result<_, _>>()?
    } else if args.quick {
        QUICK_CIRCUITS
            .iter()
            .map(|&c| CatalogCircuit::new(c))
            .collect()
    } else {
        proofmill_circuits::catalog()
    };
    let aggregate = if args.quick || args.no_aggregate || args.no_prove {
        None
    } else {
        proofmill_circuits::catalog().into_iter().next()
    };
    let cpu_circuits = if args.circuits.is_empty() && !args.quick {
        circuits
            .iter()
            .filter(|c| c.shape().k <= CPU_DEFAULT_MAX_K)
            .cloned()
            .collect()
    } else {
        circuits.clone()
    };
    let cpu = BenchPlan {
        msm_logs: if args.quick {
            log_range(10, 16, 2)
        } else {
            log_range(12, 20, 2)
        },
        ntt_logs: if args.quick {
            log_range(10, 18, 2)
        } else {
            log_range(12, 22, 2)
        },
        transfer_bytes: vec![],
        circuits: cpu_circuits,
        aggregate: aggregate.clone(),
        reps,
        proof_reps,
        aggregate_reps,
        warmups: 1,
        msm_windows: args.msm_windows.clone(),
    };
    let gpu = BenchPlan {
        msm_logs: if args.quick {
            log_range(16, 20, 2)
        } else {
            log_range(16, 24, 2)
        },
        ntt_logs: if args.quick {
            log_range(16, 20, 2)
        } else {
            log_range(16, 24, 2)
        },
        transfer_bytes: if args.quick {
            vec![1 << 20, 16 << 20]
        } else {
            vec![1 << 20, 16 << 20, 256 << 20, 1 << 30]
        },
        circuits,
        aggregate,
        reps,
        proof_reps,
        aggregate_reps,
        warmups: 1,
        msm_windows: args.msm_windows.clone(),
    };
    Ok((cpu, gpu))
}

fn read_report(path: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.to_owned(),
        source,
    })?;
    let report: Report = serde_json::from_str(&text).map_err(|e| BenchError::Report {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if report.format != report::FORMAT {
        return Err(BenchError::Report {
            path: path.to_owned(),
            message: format!("format {:?}, expected {:?}", report.format, report::FORMAT),
        });
    }
    Ok(report)
}

fn write(path: &Path, text: &str) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BenchError::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, text).map_err(io(path))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// How a benchmark run went, once its report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchOutcome {
    /// Some device or step failed (the report says which): the binary exits 1.
    pub failed: bool,
}

/// Runs the benchmark; SRS files and keys come from (and go to) `data_dir`.
pub fn run(args: &BenchArgs, data_dir: &Path) -> Result<BenchOutcome> {
    if let Some(p) = args.price_per_hour {
        if !p.is_finite() || p < 0.0 {
            return Err(BenchError::Invalid(format!(
                "--price-per-hour {p}: give a non-negative price in USD per hour"
            )));
        }
    }
    // Read the baseline before minutes of measuring, so that a bad path fails at once.
    let baseline = args
        .baseline
        .as_deref()
        .map(|p| read_report(p).map(|r| (p, r)))
        .transpose()?;
    let (cpu_plan, gpu_plan) = plans(args)?;
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let inventory = DeviceInventory::probe();
    let machine = Machine::probe(&inventory);
    let prover = Prover::new(data_dir);
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());

    let mut devices: Vec<(String, String, Device)> = Vec::new();
    let mut unopened: Vec<DeviceReport> = Vec::new();
    let mut failed = false;
    if args.device != "cpu" {
        let usable: Vec<_> = inventory.gpus.iter().filter(|g| g.usable()).collect();
        if usable.is_empty() {
            let reason = inventory
                .cuda_unavailable_reason()
                .unwrap_or_else(|| "no usable GPU".to_owned());
            if args.device == "cuda" {
                return Err(BenchError::NoGpu(reason));
            }
            eprintln!("no GPU: {reason} — benchmarking the CPU only");
        }
        for g in usable {
            let id = format!("cuda:{}", g.index);
            match CudaBackend::new(g.index as usize) {
                Ok(backend) => {
                    let name = format!("{} ({})", g.name, backend.arch());
                    devices.push((
                        id,
                        name,
                        Device::Cuda {
                            backend: Arc::new(backend),
                            uuid: g.uuid.clone(),
                        },
                    ));
                }
                Err(e) => {
                    eprintln!("GPU {} ({}): cannot be benchmarked: {e}", g.index, g.name);
                    failed = true;
                    unopened.push(DeviceReport {
                        id,
                        kind: "cuda".to_owned(),
                        name: g.name.clone(),
                        results: vec![],
                        skipped: vec![Skipped {
                            op: "all".to_owned(),
                            reason: format!("FAILED to open: {e}"),
                        }],
                        notes: vec![],
                    });
                }
            }
        }
    }
    if args.device != "cuda" {
        devices.push((
            "cpu".to_owned(),
            format!("{} ({} threads)", machine.cpu_model, inventory.cpu_threads),
            Device::Cpu(CpuBackend::new()),
        ));
    }
    let nvml = devices
        .iter()
        .any(|(_, _, d)| matches!(d, Device::Cuda { .. }))
        .then(nvml_wrapper::Nvml::init)
        .and_then(|r| {
            r.map_err(|e| eprintln!("NVML unavailable ({e}): no power or energy figures"))
                .ok()
        });

    let steps: usize = devices
        .iter()
        .map(|(_, _, d)| match d {
            Device::Cpu(_) => cpu_plan.steps(),
            Device::Cuda { .. } => gpu_plan.steps(),
        })
        .sum();
    let progress = Progress::new(steps);
    progress.line(&format!("machine: {}", machine.one_line()));
    let mut reports = unopened;
    for (id, name, device) in &devices {
        let (plan, kind) = match device {
            Device::Cpu(_) => (&cpu_plan, "cpu"),
            Device::Cuda { .. } => (&gpu_plan, "cuda"),
        };
        let meter = match (device, &nvml) {
            (
                Device::Cuda {
                    uuid: Some(uuid), ..
                },
                Some(nvml),
            ) => PowerMeter::new(nvml, uuid)
                .map_err(|e| progress.line(&format!("{id}: no power readings: {e}")))
                .ok(),
            _ => None,
        };
        let bench = Bench {
            device,
            id,
            prover: &prover,
            progress: &progress,
            power: meter.as_ref(),
            price_per_hour: args.price_per_hour,
            nonce,
            prove_path: if kind == "cpu" {
                CPU_PROVE_PATH
            } else {
                GPU_PROVE_PATH
            },
        };
        let mut results: Vec<Measurement> = Vec::new();
        let mut skipped: Vec<Skipped> = Vec::new();
        let mut push = |m: Measurement| results.push(m);
        let mut check = |op: &str, r: Result<()>, skipped: &mut Vec<Skipped>| {
            if let Err(e) = r {
                progress.line(&format!("{id} {op}: FAILED: {e}"));
                failed = true;
                skipped.push(Skipped {
                    op: op.to_owned(),
                    reason: format!("FAILED: {e}"),
                });
            }
        };
        let mut notes: Vec<String> = Vec::new();
        if let Device::Cuda { backend, .. } = device {
            backend.set_device_timing(true);
        }
        check("msm", bench.msm(plan, &mut push), &mut skipped);
        check("ntt", bench.ntt(plan, &mut push), &mut skipped);
        match device {
            Device::Cuda { backend, .. } => check(
                "transfer",
                bench.transfers(backend, plan, &mut push),
                &mut skipped,
            ),
            Device::Cpu(_) => skipped.push(Skipped {
                op: "transfer".to_owned(),
                reason: "n/a: the CPU works in host memory (no host<->device copies)".to_owned(),
            }),
        }
        let gpu_broken = kind == "cuda" && skipped.iter().any(|s| s.reason.starts_with("FAILED"));
        if args.no_prove {
            skipped.push(Skipped {
                op: "prove".to_owned(),
                reason: "skipped (--no-prove)".to_owned(),
            });
        } else if gpu_broken {
            skipped.push(Skipped {
                op: "prove".to_owned(),
                reason: "not measured: this GPU's MSM, NTT or transfers failed above".to_owned(),
            });
        } else {
            // Each device proves through the engine on that device, on a pool of threads
            // that carry it (as the job server's device workers do).
            let backend: Arc<dyn proofmill_accel::Backend> = match device {
                Device::Cuda { backend, .. } => {
                    backend.set_device_timing(false); // no events inside proofs
                    backend.clone()
                }
                Device::Cpu(_) => Arc::new(CpuBackend::new()),
            };
            let engine = Arc::new(EngineAccelerator::new(backend));
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            match DevicePool::new(&format!("bench-{id}"), engine.clone(), threads) {
                Err(e) => check("prove", Err(e.into()), &mut skipped),
                Ok(pool) => {
                    let (proved, rows) = pool.run(|| {
                        let mut rows = Vec::new();
                        (bench.proofs(plan, &mut |m| rows.push(m)), rows)
                    });
                    results.extend(rows);
                    check("prove", proved, &mut skipped);
                    match &plan.aggregate {
                        Some(circuit) => {
                            let (aggregated, rows) = pool.run(|| {
                                let mut rows = Vec::new();
                                (
                                    bench.aggregation(circuit, plan, &mut |m| rows.push(m)),
                                    rows,
                                )
                            });
                            results.extend(rows);
                            check("aggregate", aggregated, &mut skipped);
                        }
                        None => skipped.push(Skipped {
                            op: "aggregate".to_owned(),
                            reason: if args.quick {
                                "skipped in --quick mode (minutes and ~8 GB of memory)".to_owned()
                            } else {
                                "skipped (--no-aggregate)".to_owned()
                            },
                        }),
                    }
                }
            }
            let s = engine.stats();
            notes.push(format!(
                "engine over all proofs on this device: {} MSMs ({:.2} s), {} FFTs ({:.2} s) and {} coset parts of the quotient ({:.2} s) on the engine, {} small calls left to halo2's code",
                s.msm_calls, s.msm_seconds, s.fft_calls, s.fft_seconds, s.quotient_calls, s.quotient_seconds, s.declined
            ));
            if s.errors > 0 {
                failed = true;
                notes.push(format!(
                    "WARNING: {} MSM/FFT/quotient calls failed on the engine and were computed by halo2's code: these proof times are not the engine's",
                    s.errors
                ));
            }
        }
        if kind == "cpu" {
            let power = "n/a: NVML reports GPU power only";
            skipped.push(Skipped {
                op: "power".to_owned(),
                reason: power.to_owned(),
            });
        }
        reports.push(DeviceReport {
            id: id.clone(),
            kind: kind.to_owned(),
            name: name.clone(),
            results,
            skipped,
            notes,
        });
    }
    progress.finish();

    let mut report = Report {
        format: report::FORMAT.to_owned(),
        date,
        mode: if args.quick { "quick" } else { "full" }.to_owned(),
        command: std::iter::once("proofmill".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        versions: machine::versions(),
        machine,
        price_per_hour_usd: args.price_per_hour,
        devices: reports,
        baseline: None,
    };
    if let Some((path, base)) = &baseline {
        let matched = report::compare(&mut report, base, &path.display().to_string());
        if matched == 0 {
            eprintln!(
                "baseline {}: no measurement matches this run (device ids, operations and sizes differ)",
                path.display()
            );
        }
    }
    println!("{}", report::terminal_table(&report));

    let (json, markdown, svg) = match &args.out_dir {
        Some(dir) => (
            Some(args.json.clone().unwrap_or_else(|| dir.join("bench.json"))),
            Some(
                args.markdown
                    .clone()
                    .unwrap_or_else(|| dir.join("bench.md")),
            ),
            Some(args.svg.clone().unwrap_or_else(|| dir.join("bench.svg"))),
        ),
        None => (args.json.clone(), args.markdown.clone(), args.svg.clone()),
    };
    if let Some(path) = &json {
        write(
            path,
            &format!(
                "{}\n",
                serde_json::to_string_pretty(&report).map_err(|e| BenchError::Invalid(format!(
                    "the report does not serialize: {e}"
                )))?
            ),
        )?;
    }
    if let Some(path) = &svg {
        write(path, &svg::chart(&report))?;
    }
    if let Some(path) = &markdown {
        // Link the chart relative to the Markdown file when both were written.
        let chart = svg.as_ref().map(|s| match (s.parent(), path.parent()) {
            (Some(a), Some(b)) if a == b => s.file_name().map_or_else(
                || s.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            _ => s.display().to_string(),
        });
        write(path, &report::markdown(&report, chart.as_deref()))?;
    }
    Ok(BenchOutcome { failed })
}
