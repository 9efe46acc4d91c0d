//! Taking the measurements: MSM, NTT, host<->device transfers, proofs and aggregation on one
//! device, with warm-ups, fresh random inputs for every repetition, CUDA-event timing on GPUs
//! and NVML power sampling.
//!
//! It drives the accelerator backends and the prover as a user would; it changes neither and
//! knows nothing of how the results are printed.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{BenchError, StepContext};

type Result<T, E = BenchError> = std::result::Result<T, E>;
use indicatif::{ProgressBar, ProgressStyle};
use proofmill_accel::conformance::{random_bases, random_scalars};
use proofmill_accel::{Backend, BasesHandle, CpuBackend, CudaBackend, MsmConfig, NttConfig};
use proofmill_circuits::CatalogCircuit;
use proofmill_prover::{KeySource, ProofCircuit, Prover, Stage, Transcript, AGGREGATION_K};

use super::report::{Measurement, Throughput};
use super::stats::Summary;

/// What to measure on one device.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// log2 sizes of the MSMs.
    pub msm_logs: Vec<u32>,
    /// log2 sizes of the NTTs.
    pub ntt_logs: Vec<u32>,
    /// Buffer sizes of the transfers (GPUs only).
    pub transfer_bytes: Vec<usize>,
    /// Circuits to prove.
    pub circuits: Vec<CatalogCircuit>,
    /// The circuit two proofs of which are aggregated, when aggregation is measured.
    pub aggregate: Option<CatalogCircuit>,
    /// Timed repetitions of MSM, NTT and transfers.
    pub reps: usize,
    /// Timed repetitions of proofs.
    pub proof_reps: usize,
    /// Timed repetitions of the aggregation.
    pub aggregate_reps: usize,
    /// Untimed runs before the timed ones (MSM, NTT, transfers, proofs below
    /// [`PROOF_WARMUP_MAX_K`]).
    pub warmups: usize,
    /// MSM window widths to measure each size with; empty: the backend's own choice.
    pub msm_windows: Vec<u32>,
}

impl BenchPlan {
    /// Rows this plan produces (for the progress bar).
    pub fn steps(&self) -> usize {
        self.msm_logs.len() * self.msm_windows.len().max(1)
            + self.ntt_logs.len()
            + 2 * self.transfer_bytes.len()
            + self.circuits.len()
            + usize::from(self.aggregate.is_some())
    }
}

/// Proofs of circuits up to this `k` get a warm-up proof; larger ones take long enough that
/// one changes nothing measurable but costs minutes (their keys and SRS are loaded, untimed,
/// before the first timed proof either way).
pub const PROOF_WARMUP_MAX_K: u32 = 17;

/// The device being measured.
pub enum Device {
    /// The CPU backend (and halo2's stock CPU prover).
    Cpu(CpuBackend),
    /// One GPU.
    Cuda {
        /// The backend (device timing on while MSM and NTT are measured).
        backend: Arc<CudaBackend>,
        /// NVML UUID, for power readings.
        uuid: Option<String>,
    },
}

impl Device {
    fn backend(&self) -> &dyn Backend {
        match self {
            Device::Cpu(b) => b,
            Device::Cuda { backend, .. } => backend.as_ref(),
        }
    }

    /// Device-side time of the last MSM/NTT, on GPUs.
    fn last_device_time(&self) -> Option<proofmill_accel::cuda::DeviceTime> {
        match self {
            Device::Cpu(_) => None,
            Device::Cuda { backend, .. } => backend.last_device_time(),
        }
    }
}

/// Progress on stderr: a bar on a terminal, one line per finished row otherwise.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `steps` rows.
    pub fn new(steps: usize) -> Self {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:24} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(150));
        Self { bar }
    }

    /// What is running now.
    pub fn status(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    /// A line above the bar (or on stderr when there is no bar).
    pub fn line(&self, message: &str) {
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }

    /// A row is done.
    pub fn row(&self, device: &str, m: &Measurement) {
        self.bar.inc(1);
        self.line(&format!(
            "  {device} {} {}: median {} (min {}, max {}, {} reps)",
            super::report::op_name(&m.op),
            m.label,
            super::report::format_seconds(m.seconds.median),
            super::report::format_seconds(m.seconds.min),
            super::report::format_seconds(m.seconds.max),
            m.seconds.samples.len()
        ));
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Board power during a closure, from NVML.
pub struct PowerMeter<'n> {
    device: nvml_wrapper::Device<'n>,
}

/// What a [`PowerMeter`] saw.
#[derive(Clone, Debug, Default)]
pub struct PowerReading {
    /// Power samples, watts, every [`POWER_SAMPLE_INTERVAL`].
    pub samples: Vec<f64>,
    /// Energy from the GPU's energy counter, joules, when it has one.
    pub counter_joules: Option<f64>,
    /// Wall time of the closure.
    pub seconds: f64,
}

/// How often power is sampled.
pub const POWER_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

impl PowerReading {
    /// Average watts: counter energy / time when the counter is there, else the mean sample.
    pub fn average_watts(&self) -> Option<f64> {
        match self.counter_joules {
            Some(j) if self.seconds > 0.0 && j > 0.0 => Some(j / self.seconds),
            _ if !self.samples.is_empty() => {
                Some(self.samples.iter().sum::<f64>() / self.samples.len() as f64)
            }
            _ => None,
        }
    }

    /// Joules: the counter's, else average power x time.
    pub fn joules(&self) -> Option<f64> {
        match self.counter_joules {
            Some(j) if j > 0.0 => Some(j),
            _ => self.average_watts().map(|w| w * self.seconds),
        }
    }
}

impl<'n> PowerMeter<'n> {
    /// A meter for the GPU with this NVML UUID.
    pub fn new(nvml: &'n nvml_wrapper::Nvml, uuid: &str) -> Result<Self> {
        Ok(Self {
            device: nvml
                .device_by_uuid(uuid)
                .map_err(|e| BenchError::Nvml(format!("no GPU {uuid}: {e}")))?,
        })
    }

    /// Runs `f` while a background thread samples board power.
    pub fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, PowerReading) {
        let energy = || self.device.total_energy_consumption().ok();
        let stop = AtomicBool::new(false);
        let before = energy();
        let start = Instant::now();
        let (value, samples) = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut samples = Vec::new();
                loop {
                    if let Ok(mw) = self.device.power_usage() {
                        samples.push(f64::from(mw) / 1000.0);
                    }
                    if stop.load(Ordering::Relaxed) {
                        break samples;
                    }
                    std::thread::sleep(POWER_SAMPLE_INTERVAL);
                }
            });
            let value = f();
            stop.store(true, Ordering::Relaxed);
            (value, sampler.join().unwrap_or_default())
        });
        let seconds = start.elapsed().as_secs_f64();
        let counter_joules = match (before, energy()) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1000.0),
            _ => None,
        };
        (
            value,
            PowerReading {
                samples,
                counter_joules,
                seconds,
            },
        )
    }
}

/// Everything one device's measurements need.
pub struct Bench<'a> {
    /// The device.
    pub device: &'a Device,
    /// Its id in the report.
    pub id: &'a str,
    /// The prover (SRS and keys under the data directory).
    pub prover: &'a Prover,
    /// Progress output.
    pub progress: &'a Progress,
    /// Power meter, on GPUs with NVML.
    pub power: Option<&'a PowerMeter<'a>>,
    /// Machine price per hour, for cost per proof.
    pub price_per_hour: Option<f64>,
    /// Mixed into every input seed so that no two runs see the same inputs.
    pub nonce: u64,
    /// How this device proves, in words (for the timing notes).
    pub prove_path: &'a str,
}

/// One timed repetition.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Host wall clock of the call.
    wall: f64,
    /// Device-side total (CUDA events), on GPUs.
    device: Option<f64>,
    /// Kernels alone (CUDA events), on GPUs.
    kernels: Option<f64>,
}

const CPU_TIMING: &str = "host wall clock around the call";
const GPU_TIMING: &str =
    "CUDA events from the first upload to the end of the last download (host-side conversions excluded); kernels alone and host wall clock in the JSON";

impl Bench<'_> {
    fn seed(&self, op: u64, log: u32, rep: usize) -> u64 {
        self.nonce ^ (op << 56) ^ (u64::from(log) << 48) ^ rep as u64
    }

    /// Builds a row from samples; `power` applies to the whole set of repetitions.
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        op: &str,
        label: String,
        size: u64,
        size_unit: &str,
        samples: &[Sample],
        power: Option<&PowerReading>,
        per_second: Option<(f64, &str)>,
        warmups: usize,
    ) -> Result<Measurement> {
        let device_times: Option<Vec<f64>> = samples.iter().map(|s| s.device).collect();
        let kernel_times: Option<Vec<f64>> = samples.iter().map(|s| s.kernels).collect();
        let walls: Vec<f64> = samples.iter().map(|s| s.wall).collect();
        let (primary, timing, wall_seconds) = match &device_times {
            Some(d) => (d.clone(), GPU_TIMING, Summary::of(&walls)),
            None => (walls.clone(), CPU_TIMING, None),
        };
        let seconds = Summary::of(&primary)
            .ok_or_else(|| BenchError::Invalid(format!("{op} {label}: no valid samples")))?;
        let throughput = per_second.and_then(|(amount, unit)| {
            (seconds.median > 0.0).then(|| Throughput {
                per_second: amount / seconds.median,
                unit: unit.to_owned(),
            })
        });
        let (power_watts, energy_joules) = match power.and_then(|p| p.average_watts()) {
            Some(watts) => (
                Summary::of(&power.map(|p| p.samples.clone()).unwrap_or_default())
                    .or_else(|| Summary::of(&[watts])),
                Summary::of(&primary.iter().map(|s| s * watts).collect::<Vec<_>>()),
            ),
            None => (None, None),
        };
        Ok(Measurement {
            op: op.to_owned(),
            label,
            size,
            size_unit: size_unit.to_owned(),
            k: None,
            timing: timing.to_owned(),
            warmups,
            seconds,
            kernel_seconds: kernel_times.as_deref().and_then(Summary::of),
            wall_seconds,
            throughput,
            power_watts,
            energy_joules,
            cost_usd: None,
            baseline: None,
        })
    }

    /// Runs `f` under the power meter when there is one.
    fn metered<T>(&self, f: impl FnOnce() -> T) -> (T, Option<PowerReading>) {
        match self.power {
            Some(meter) => {
                let (value, reading) = meter.measure(f);
                (value, Some(reading))
            }
            None => (f(), None),
        }
    }

    fn sample(&self, wall: Duration) -> Sample {
        let device = self.device.last_device_time();
        Sample {
            wall: wall.as_secs_f64(),
            device: device.map(|d| d.total.as_secs_f64()),
            kernels: device.map(|d| d.kernels.as_secs_f64()),
        }
    }

    /// MSMs against bases loaded once (as the prover keeps its SRS), fresh scalars per rep.
    pub fn msm(&self, plan: &BenchPlan, out: &mut dyn FnMut(Measurement)) -> Result<()> {
        let Some(&max) = plan.msm_logs.iter().max() else {
            return Ok(());
        };
        self.progress
            .status(&format!("{}: generating 2^{max} MSM bases", self.id));
        let bases = random_bases(1 << max, self.nonce);
        let backend = self.device.backend();
        let handle = backend
            .load_bases(&bases)
            .step(|| "loading MSM bases".to_owned())?;
        if let (Device::Cuda { .. }, Some(&min)) = (self.device, plan.msm_logs.iter().min()) {
            // A fast wrong kernel is no result: check one MSM against the CPU backend first.
            let n = 1usize << min;
            let cpu = CpuBackend::new();
            let scalars = random_scalars(n, self.seed(1, min, 999));
            let expected = cpu.msm(
                &cpu.load_bases(&bases[..n])?,
                &scalars,
                &MsmConfig::default(),
            )?;
            if backend.msm(&handle, &scalars, &MsmConfig::default())? != expected {
                return Err(BenchError::Mismatch(format!(
                    "the GPU's MSM of 2^{min} points differs from the CPU backend's"
                )));
            }
        }
        drop(bases);
        let windows: Vec<Option<u32>> = if plan.msm_windows.is_empty() {
            vec![None]
        } else {
            plan.msm_windows.iter().copied().map(Some).collect()
        };
        for &log in &plan.msm_logs {
            for &window_bits in &windows {
                self.msm_row(plan, &handle, log, window_bits, out)?;
            }
        }
        Ok(())
    }

    /// One MSM row: 2^`log` points with the given window width (`None`: the backend's).
    fn msm_row(
        &self,
        plan: &BenchPlan,
        handle: &BasesHandle,
        log: u32,
        window_bits: Option<u32>,
        out: &mut dyn FnMut(Measurement),
    ) -> Result<()> {
        let backend = self.device.backend();
        let cfg = MsmConfig { window_bits };
        let n = 1usize << log;
        let size = match window_bits {
            Some(c) => format!("2^{log} c={c}"),
            None => format!("2^{log}"),
        };
        self.progress.status(&format!("{}: MSM {size}", self.id));
        for w in 0..plan.warmups {
            let scalars = random_scalars(n, self.seed(1, log, 1000 + w));
            black_box(backend.msm(handle, &scalars, &cfg)?);
        }
        let run = || -> Result<Vec<Sample>> {
            let mut samples = Vec::with_capacity(plan.reps);
            for rep in 0..plan.reps {
                let scalars = random_scalars(n, self.seed(1, log, rep));
                let start = Instant::now();
                black_box(backend.msm(handle, &scalars, &cfg)?);
                samples.push(self.sample(start.elapsed()));
            }
            Ok(samples)
        };
        let (samples, power) = self.metered(run);
        let m = self.row(
            "msm",
            size,
            n as u64,
            "points",
            &samples?,
            power.as_ref(),
            Some((n as f64, "points")),
            plan.warmups,
        )?;
        self.progress.row(self.id, &m);
        out(m);
        Ok(())
    }

    /// Forward NTTs of fresh random vectors (twiddles are built by the warm-up).
    pub fn ntt(&self, plan: &BenchPlan, out: &mut dyn FnMut(Measurement)) -> Result<()> {
        let backend = self.device.backend();
        if let (Device::Cuda { .. }, Some(&min)) = (self.device, plan.ntt_logs.iter().min()) {
            let mut expected = random_scalars(1 << min, self.seed(2, min, 999));
            let mut got = expected.clone();
            CpuBackend::new().ntt(&mut expected, min, &NttConfig::forward())?;
            backend.ntt(&mut got, min, &NttConfig::forward())?;
            if got != expected {
                return Err(BenchError::Mismatch(format!(
                    "the GPU's NTT of 2^{min} elements differs from the CPU backend's"
                )));
            }
        }
        for &log in &plan.ntt_logs {
            let n = 1usize << log;
            self.progress.status(&format!("{}: NTT 2^{log}", self.id));
            for w in 0..plan.warmups {
                let mut values = random_scalars(n, self.seed(2, log, 1000 + w));
                backend.ntt(&mut values, log, &NttConfig::forward())?;
                black_box(&values);
            }
            let run = || -> Result<Vec<Sample>> {
                let mut samples = Vec::with_capacity(plan.reps);
                for rep in 0..plan.reps {
                    let mut values = random_scalars(n, self.seed(2, log, rep));
                    let start = Instant::now();
                    backend.ntt(&mut values, log, &NttConfig::forward())?;
                    samples.push(self.sample(start.elapsed()));
                    black_box(&values);
                }
                Ok(samples)
            };
            let (samples, power) = self.metered(run);
            let m = self.row(
                "ntt",
                format!("2^{log}"),
                n as u64,
                "elements",
                &samples?,
                power.as_ref(),
                Some((n as f64, "elements")),
                plan.warmups,
            )?;
            self.progress.row(self.id, &m);
            out(m);
        }
        Ok(())
    }

    /// Host<->device copies the way the backend moves data (page-locked staging, or
    /// pageable memory with `PROOFMILL_CUDA_PAGEABLE=1`), GPUs only.
    pub fn transfers(
        &self,
        backend: &CudaBackend,
        plan: &BenchPlan,
        out: &mut dyn FnMut(Measurement),
    ) -> Result<()> {
        for &bytes in &plan.transfer_bytes {
            let label = format_bytes(bytes);
            self.progress
                .status(&format!("{}: transfers of {label}", self.id));
            let words = |rep: usize| -> Vec<u32> {
                let salt = self.seed(3, 0, rep) as u32 | 1;
                (0..bytes / 4)
                    .map(|i| (i as u32).wrapping_mul(salt))
                    .collect()
            };
            for w in 0..plan.warmups {
                backend.measure_transfer(&words(1000 + w))?;
            }
            let (mut h2d, mut d2h) = (Vec::new(), Vec::new());
            for rep in 0..plan.reps {
                let data = words(rep);
                let start = Instant::now();
                let t = backend.measure_transfer(&data)?;
                let wall = start.elapsed().as_secs_f64();
                h2d.push(Sample {
                    wall,
                    device: Some(t.host_to_device.as_secs_f64()),
                    kernels: None,
                });
                d2h.push(Sample {
                    wall,
                    device: Some(t.device_to_host.as_secs_f64()),
                    kernels: None,
                });
            }
            for (op, samples) in [("h2d", h2d), ("d2h", d2h)] {
                let mut m = self.row(
                    op,
                    label.clone(),
                    bytes as u64,
                    "bytes",
                    &samples,
                    None,
                    Some((bytes as f64, "bytes")),
                    plan.warmups,
                )?;
                m.timing = if backend.pinned_transfers() {
                    "CUDA events around one copy from/to the page-locked staging buffer"
                } else {
                    "CUDA events around one copy from/to pageable host memory"
                }
                .to_owned();
                m.wall_seconds = None;
                self.progress.row(self.id, &m);
                out(m);
            }
        }
        Ok(())
    }

    /// End-to-end proofs (witness, halo2 `create_proof`, stock-verifier self-check) of fresh
    /// example batches, keys and SRS loaded (or generated) before timing.
    pub fn proofs(&self, plan: &BenchPlan, out: &mut dyn FnMut(Measurement)) -> Result<()> {
        for circuit in &plan.circuits {
            let name = circuit.name();
            let k = circuit.shape().k;
            let status = |s: Stage| self.progress.status(&format!("{}: {name}: {s}", self.id));
            self.prover
                .keys(circuit, KeySource::Generate, &status)
                .step(|| format!("keys of {name}"))?;
            let warmups = if k <= PROOF_WARMUP_MAX_K {
                plan.warmups
            } else {
                0
            };
            for w in 0..warmups {
                status(Stage::Proving);
                let input = circuit.example_input(self.seed(4, k, 1000 + w));
                self.prover
                    .prove(circuit, &input, Transcript::Poseidon, &|_| {})
                    .step(|| format!("warm-up proof of {name}"))?;
            }
            let mut samples = Vec::new();
            let mut readings = Vec::new();
            for rep in 0..plan.proof_reps {
                self.progress.status(&format!(
                    "{}: proving {name} ({}/{})",
                    self.id,
                    rep + 1,
                    plan.proof_reps
                ));
                let input = circuit.example_input(self.seed(4, k, rep));
                let start = Instant::now();
                let (result, power) = self.metered(|| {
                    self.prover
                        .prove(circuit, &input, Transcript::Poseidon, &|_| {})
                });
                let wall = start.elapsed();
                result.step(|| format!("proof of {name}"))?;
                samples.push(Sample {
                    wall: wall.as_secs_f64(),
                    device: None,
                    kernels: None,
                });
                readings.extend(power);
            }
            let m = self.proof_row(
                "prove",
                proof_label(circuit),
                k,
                &samples,
                &readings,
                warmups,
                &format!(
                    "host wall clock of one end-to-end proof with {}: witness, create_proof (SHPLONK, poseidon transcript), stock-verifier self-check",
                    self.prove_path
                ),
            )?;
            self.progress.row(self.id, &m);
            out(m);
        }
        Ok(())
    }

    /// Aggregations of two proofs of consecutive batches; the inner proofs are made (untimed)
    /// for every repetition from a fresh chain, and the aggregation keys before timing.
    pub fn aggregation(
        &self,
        circuit: &CatalogCircuit,
        plan: &BenchPlan,
        out: &mut dyn FnMut(Measurement),
    ) -> Result<()> {
        let name = circuit.name();
        let agg = ProofCircuit::Aggregate(vec![
            ProofCircuit::App(circuit.clone()),
            ProofCircuit::App(circuit.clone()),
        ]);
        let status = |s: Stage| {
            self.progress
                .status(&format!("{}: aggregation of 2 x {name}: {s}", self.id))
        };
        self.prover
            .keys_for(&agg, KeySource::Generate, &status)
            .step(|| "aggregation keys".to_owned())?;
        let mut samples = Vec::new();
        let mut readings = Vec::new();
        for rep in 0..plan.aggregate_reps {
            let inputs = circuit.example_inputs(self.seed(5, 0, rep), 2);
            let mut proofs = Vec::with_capacity(2);
            for (i, input) in inputs.iter().enumerate() {
                self.progress.status(&format!(
                    "{}: inner proof {}/2 of {name} for aggregation {}/{}",
                    self.id,
                    i + 1,
                    rep + 1,
                    plan.aggregate_reps
                ));
                proofs.push(
                    self.prover
                        .prove(circuit, input, Transcript::Poseidon, &|_| {})
                        .step(|| "inner proof for aggregation".to_owned())?,
                );
            }
            self.progress.status(&format!(
                "{}: aggregating ({}/{})",
                self.id,
                rep + 1,
                plan.aggregate_reps
            ));
            let start = Instant::now();
            let (result, power) = self.metered(|| {
                self.prover
                    .aggregate_with(&proofs, false, KeySource::Generate, &|_| {})
            });
            let wall = start.elapsed();
            result.step(|| "aggregation".to_owned())?;
            samples.push(Sample {
                wall: wall.as_secs_f64(),
                device: None,
                kernels: None,
            });
            readings.extend(power);
        }
        let m = self.proof_row(
            "aggregate",
            format!("aggregate(2 x {name})"),
            AGGREGATION_K,
            &samples,
            &readings,
            0,
            &format!(
                "host wall clock of Prover::aggregate with {}: both inputs verified, the aggregation proof (k=21), its self-check",
                self.prove_path
            ),
        )?;
        self.progress.row(self.id, &m);
        out(m);
        Ok(())
    }

    /// A proof row: per-repetition power and energy, and cost at the median.
    #[allow(clippy::too_many_arguments)]
    fn proof_row(
        &self,
        op: &str,
        label: String,
        k: u32,
        samples: &[Sample],
        readings: &[PowerReading],
        warmups: usize,
        timing: &str,
    ) -> Result<Measurement> {
        let mut m = self.row(op, label, 1u64 << k, "rows", samples, None, None, warmups)?;
        m.k = Some(k);
        m.timing = timing.to_owned();
        let watts: Vec<f64> = readings
            .iter()
            .filter_map(PowerReading::average_watts)
            .collect();
        let joules: Vec<f64> = readings.iter().filter_map(PowerReading::joules).collect();
        if watts.len() == samples.len() {
            m.power_watts = Summary::of(&watts);
        }
        if joules.len() == samples.len() {
            m.energy_joules = Summary::of(&joules);
        }
        m.cost_usd = self
            .price_per_hour
            .map(|price| m.seconds.median * price / 3600.0);
        Ok(m)
    }
}

/// `transfer_batch/d16-b8 (k=17)`; circuits outside the catalog (the quick run's) also name
/// their lookup table, which their catalog name does not show.
pub fn proof_label(circuit: &CatalogCircuit) -> String {
    let k = circuit.shape().k;
    if proofmill_circuits::catalog().contains(circuit) {
        format!("{} (k={k})", circuit.name())
    } else {
        format!(
            "{} (k={k}, {}-bit lookup)",
            circuit.name(),
            circuit.lookup_bits()
        )
    }
}

/// `1 MiB`, `256 MiB`, `1 GiB`.
pub fn format_bytes(bytes: usize) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
