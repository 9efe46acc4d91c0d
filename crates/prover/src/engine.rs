//! The accelerator engine inside halo2's prover.
//!
//! halo2-axiom computes every KZG commitment with one MSM and every polynomial transform with
//! one FFT, behind functions its public API does not let us replace; the workspace patches it
//! (`vendor/halo2-axiom`, see `PATCHED.md`) with a process-wide hook. [`install`] puts an
//! [`EngineAccelerator`] there: BN254 MSMs against the SRS bases (commitments to advice,
//! lookup, permutation and quotient polynomials) and Fr FFTs of at least
//! [`MIN_ACCELERATED_LOG_SIZE`] (coefficient/Lagrange/extended-domain conversions) then run on
//! a [`proofmill_accel::Backend`] — a GPU, or our CPU engine — and so do the quotient's custom
//! gates, coset part by coset part: halo2's compiled gate expressions are translated into a
//! [`GateProgram`] that the backend interprets. Everything else (the permutation and lookup
//! terms of the quotient, the grand products, the multi-opening) still runs inside
//! halo2-axiom on the CPU. Results are bit-identical to the stock code (tested), and every
//! proof is still checked by the stock verifier before it leaves.
//!
//! Several devices at once: a [`DevicePool`] is a rayon pool whose threads all carry one
//! device's accelerator (the hook's per-thread override), so a proof run through
//! [`DevicePool::run`] uses that device while other pools (or the process-wide engine) use
//! theirs. The job server runs one worker per GPU this way.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Instant,
};

use halo2_base::halo2_proofs::{
    accel::{
        set_accelerator, set_thread_accelerator, Accelerator, Calculation, GateData, Gates,
        ValueSource,
    },
    halo2curves::bn256::{Fr, G1Affine, G1},
};
use proofmill_accel::gates::{GateInputs, GateProgram, Op, Operand, Step};
use proofmill_accel::{omega_for, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig};

use crate::ProverError;

/// Smaller MSMs and FFTs (the multi-opening's few-point MSMs, tiny domains) stay with the
/// stock code: handing them over costs more than it saves.
pub const MIN_ACCELERATED_LOG_SIZE: u32 = 10;

/// Base vectors kept resident at once (an SRS's monomial and Lagrange bases per `k` in use).
const RESIDENT_BASES: usize = 8;

/// Routes halo2's MSMs and FFTs to a backend.
#[derive(Debug)]
pub struct EngineAccelerator {
    backend: Arc<dyn Backend>,
    resident: Mutex<Vec<Resident>>,
    stats: Counters,
}

/// One base vector handed to the backend, recognised by address, length and three points.
#[derive(Debug)]
struct Resident {
    address: usize,
    fingerprint: [G1Affine; 3],
    handle: Arc<BasesHandle>,
}

#[derive(Debug, Default)]
struct Counters {
    msm_calls: AtomicU64,
    msm_nanos: AtomicU64,
    fft_calls: AtomicU64,
    fft_nanos: AtomicU64,
    gate_calls: AtomicU64,
    gate_nanos: AtomicU64,
    declined: AtomicU64,
    errors: AtomicU64,
}

/// What the engine has done since it was installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EngineStats {
    /// MSMs computed by the backend.
    pub msm_calls: u64,
    /// Seconds spent in them (loading bases included).
    pub msm_seconds: f64,
    /// FFTs computed by the backend.
    pub fft_calls: u64,
    /// Seconds spent in them.
    pub fft_seconds: f64,
    /// Coset parts whose custom gates the backend evaluated.
    pub gate_calls: u64,
    /// Seconds spent in them (the program's translation included).
    pub gate_seconds: f64,
    /// Calls left to the stock code (too small, or another root of unity).
    pub declined: u64,
    /// Calls the backend failed; the stock code computed them instead.
    pub errors: u64,
}

impl EngineStats {
    /// `self - earlier`: what happened in between (e.g. during one proof).
    pub fn since(&self, earlier: &EngineStats) -> EngineStats {
        EngineStats {
            msm_calls: self.msm_calls - earlier.msm_calls,
            msm_seconds: self.msm_seconds - earlier.msm_seconds,
            fft_calls: self.fft_calls - earlier.fft_calls,
            fft_seconds: self.fft_seconds - earlier.fft_seconds,
            gate_calls: self.gate_calls - earlier.gate_calls,
            gate_seconds: self.gate_seconds - earlier.gate_seconds,
            declined: self.declined - earlier.declined,
            errors: self.errors - earlier.errors,
        }
    }
}

impl EngineAccelerator {
    /// An accelerator over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            resident: Mutex::new(Vec::new()),
            stats: Counters::default(),
        }
    }

    /// The backend the work goes to.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Counters since this accelerator was made.
    pub fn stats(&self) -> EngineStats {
        let s = &self.stats;
        EngineStats {
            msm_calls: s.msm_calls.load(Ordering::Relaxed),
            msm_seconds: s.msm_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            fft_calls: s.fft_calls.load(Ordering::Relaxed),
            fft_seconds: s.fft_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            gate_calls: s.gate_calls.load(Ordering::Relaxed),
            gate_seconds: s.gate_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            declined: s.declined.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
        }
    }

    /// The resident handle for `bases`, loading them on first sight.
    fn resident(
        &self,
        bases: &[G1Affine],
    ) -> Result<Arc<BasesHandle>, proofmill_accel::AccelError> {
        let address = bases.as_ptr() as usize;
        let fingerprint = [bases[0], bases[bases.len() / 2], bases[bases.len() - 1]];
        let mut resident = self.resident.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = resident.iter().find(|r| {
            r.address == address && r.handle.len() == bases.len() && r.fingerprint == fingerprint
        }) {
            return Ok(r.handle.clone());
        }
        let handle = Arc::new(self.backend.load_bases(bases)?);
        if resident.len() == RESIDENT_BASES {
            resident.remove(0);
        }
        resident.push(Resident {
            address,
            fingerprint,
            handle: handle.clone(),
        });
        Ok(handle)
    }

    fn declined<T>(&self, value: T) -> T {
        self.stats.declined.fetch_add(1, Ordering::Relaxed);
        value
    }

    fn failed<T>(&self, what: &str, error: &dyn std::fmt::Display, value: T) -> T {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = %self.backend.description(), %error, "{what} failed on the engine; computed by the stock code instead");
        value
    }
}

impl Accelerator for EngineAccelerator {
    fn msm(&self, coeffs: &[Fr], bases: &[G1Affine]) -> Option<G1> {
        if coeffs.len() < 1 << MIN_ACCELERATED_LOG_SIZE || coeffs.len() != bases.len() {
            return self.declined(None);
        }
        let start = Instant::now();
        let result = self
            .resident(bases)
            .and_then(|handle| self.backend.msm(&handle, coeffs, &MsmConfig::default()));
        match result {
            Ok(point) => {
                self.stats.msm_calls.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .msm_nanos
                    .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                Some(point)
            }
            Err(e) => self.failed("an MSM", &e, None),
        }
    }

    fn fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) -> bool {
        // halo2's FFT leaves the 1/n scaling to its caller; the engine's inverse includes it.
        let undo = Fr::from(1u64 << log_n.min(63));
        self.run_ntt(a, omega, log_n, inverse, None, undo)
    }

    fn coset_fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, shift: Fr) -> bool {
        if shift == Fr::from(0u64) {
            return self.declined(false); // the engine refuses a zero generator; halo2 copes
        }
        self.run_ntt(a, omega, log_n, false, Some(shift), Fr::from(1u64))
    }

    fn ifft(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32, divisor: Fr) -> bool {
        // The engine's inverse already multiplies by 1/n; halo2's divisor is 1/n (or 1/n of
        // the extended domain, the same thing), so usually nothing is left to do.
        let rest = divisor * Fr::from(1u64 << log_n.min(63));
        self.run_ntt(a, omega_inv, log_n, true, None, rest)
    }

    fn custom_gates(&self, gates: &Gates<'_>, data: &GateData<'_>, values: &mut [Fr]) -> bool {
        if values.len() < 1 << MIN_ACCELERATED_LOG_SIZE || !engine_gates_enabled() {
            return self.declined(false);
        }
        let start = Instant::now();
        let program = match gate_program(gates, data) {
            Ok(program) => program,
            Err(e) => return self.failed("translating the custom gates", &e, false),
        };
        let [beta, gamma, theta, y] = data.beta_gamma_theta_y;
        let scalars: Vec<Fr> = gates
            .constants
            .iter()
            .chain(data.challenges)
            .chain(&[beta, gamma, theta, y])
            .copied()
            .collect();
        let columns: Vec<&[Fr]> = data
            .fixed
            .iter()
            .chain(data.advice)
            .chain(data.instance)
            .map(|p| &p[..])
            .collect();
        let inputs = GateInputs {
            scalars: &scalars,
            columns: &columns,
        };
        if let Err(e) = self.backend.evaluate_gates(&program, &inputs, values) {
            return self.failed("the custom gates", &e, false);
        }
        self.stats.gate_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .gate_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        true
    }
}

/// Set to `off` to leave the quotient's custom gates to halo2's own evaluator (to measure
/// the engine's against it, or to rule it out); MSMs and FFTs stay on the engine.
pub const ENGINE_GATES_ENV: &str = "PROOFMILL_ENGINE_GATES";

fn engine_gates_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| !std::env::var(ENGINE_GATES_ENV).is_ok_and(|v| v == "off"))
}

/// halo2's compiled custom gates as a [`GateProgram`]: scalars are laid out as the
/// constants, the challenges, then beta, gamma, theta and y; columns as the fixed, advice
/// and instance columns, in that order.
fn gate_program(
    gates: &Gates<'_>,
    data: &GateData<'_>,
) -> Result<GateProgram, proofmill_accel::AccelError> {
    let constants = gates.constants.len() as u32;
    let named = constants + data.challenges.len() as u32;
    let (fixed, advice) = (data.fixed.len() as u32, data.advice.len() as u32);
    let operand = |v: &ValueSource| match *v {
        ValueSource::Constant(i) => Operand::Scalar(i as u32),
        ValueSource::Challenge(i) => Operand::Scalar(constants + i as u32),
        ValueSource::Beta() => Operand::Scalar(named),
        ValueSource::Gamma() => Operand::Scalar(named + 1),
        ValueSource::Theta() => Operand::Scalar(named + 2),
        ValueSource::Y() => Operand::Scalar(named + 3),
        ValueSource::Intermediate(t) => Operand::Intermediate(t as u32),
        ValueSource::Fixed(c, r) => Operand::Column {
            column: c as u32,
            rotation: r as u32,
        },
        ValueSource::Advice(c, r) => Operand::Column {
            column: fixed + c as u32,
            rotation: r as u32,
        },
        ValueSource::Instance(c, r) => Operand::Column {
            column: fixed + advice + c as u32,
            rotation: r as u32,
        },
        ValueSource::PreviousValue() => Operand::Previous,
    };
    let steps: Vec<Step> = gates
        .calculations
        .iter()
        .map(|info| Step {
            target: info.target as u32,
            op: match &info.calculation {
                Calculation::Add(a, b) => Op::Add(operand(a), operand(b)),
                Calculation::Sub(a, b) => Op::Sub(operand(a), operand(b)),
                Calculation::Mul(a, b) => Op::Mul(operand(a), operand(b)),
                Calculation::Square(a) => Op::Square(operand(a)),
                Calculation::Double(a) => Op::Double(operand(a)),
                Calculation::Negate(a) => Op::Negate(operand(a)),
                Calculation::Horner(start, parts, factor) => Op::Horner {
                    start: operand(start),
                    parts: parts.iter().map(operand).collect(),
                    factor: operand(factor),
                },
                Calculation::Store(a) => Op::Store(operand(a)),
            },
        })
        .collect();
    GateProgram::new(&steps, gates.rotations)
}

impl EngineAccelerator {
    /// The engine's NTT of `a` in halo2's terms (`omega` the root halo2 passes; on the
    /// coset `coset` when given), and for an inverse, every element multiplied by `post`
    /// afterwards (skipped when it is one).
    fn run_ntt(
        &self,
        a: &mut [Fr],
        omega: Fr,
        log_n: u32,
        inverse: bool,
        coset: Option<Fr>,
        post: Fr,
    ) -> bool {
        if log_n < MIN_ACCELERATED_LOG_SIZE || a.len() != 1 << log_n {
            return self.declined(false);
        }
        let root = omega_for(log_n);
        let expected = if inverse {
            Option::from(root.invert())
        } else {
            Some(root)
        };
        if expected != Some(omega) {
            return self.declined(false);
        }
        let start = Instant::now();
        let base = if inverse {
            NttConfig::inverse()
        } else {
            NttConfig::forward()
        };
        let config = NttConfig { coset, ..base };
        if let Err(e) = self.backend.ntt(a, log_n, &config) {
            return self.failed("an FFT", &e, false);
        }
        if inverse && post != Fr::from(1u64) {
            use rayon::prelude::*;
            a.par_iter_mut().for_each(|x| *x *= post);
        }
        self.stats.fft_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fft_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        true
    }
}

pub use proofmill_accel::Engine;

/// What [`install`] put in place.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The accelerator, `None` for [`Engine::Stock`].
    pub accelerator: Option<Arc<EngineAccelerator>>,
    /// The backend in words (for logs and `proofmill devices`).
    pub description: String,
    /// Why `auto` did not take a GPU.
    pub fallback_reason: Option<String>,
}

/// Selects the backend for `engine` and installs it in halo2's prover for the whole process.
/// `cuda` without a usable GPU is an error naming why; `auto` then falls back to the CPU.
pub fn install(engine: Engine) -> Result<Installed, ProverError> {
    let selected = proofmill_accel::select(engine)
        .map_err(|e| ProverError::Engine(format!("backend {engine}: {e}")))?;
    let Some(selected) = selected else {
        set_accelerator(None);
        return Ok(Installed {
            accelerator: None,
            description: "stock halo2-axiom (no engine)".into(),
            fallback_reason: None,
        });
    };
    let mut fallback_reason = selected.fallback_reason;
    let mut backend: Arc<dyn Backend> = Arc::from(selected.backend);
    if backend.kind() != BackendKind::Cpu {
        // A GPU takes part in proofs only after it computed a small MSM and NTT exactly as
        // the CPU does.
        if let Err(mismatch) = quick_self_check(backend.as_ref()) {
            let reason = format!("GPU self-check failed: {mismatch}");
            if engine == Engine::Cuda {
                return Err(ProverError::Engine(format!("backend cuda: {reason}")));
            }
            tracing::error!(%reason, "not using the GPU");
            fallback_reason = Some(reason);
            backend = Arc::new(proofmill_accel::CpuBackend::new());
        }
    }
    let description = backend.description();
    let accelerator = Arc::new(EngineAccelerator::new(backend));
    set_accelerator(Some(accelerator.clone()));
    Ok(Installed {
        accelerator: Some(accelerator),
        description,
        fallback_reason,
    })
}

/// An engine on GPU `ordinal` alone, for a [`DevicePool`]: opens the GPU (compiling or loading
/// its kernels) and runs [`quick_self_check`] on it; an error says why the GPU cannot prove.
pub fn gpu_accelerator(ordinal: usize) -> Result<Arc<EngineAccelerator>, ProverError> {
    let backend = proofmill_accel::CudaBackend::new(ordinal)
        .map_err(|e| ProverError::Engine(format!("GPU {ordinal}: {e}")))?;
    quick_self_check(&backend)
        .map_err(|e| ProverError::Engine(format!("GPU {ordinal}: self-check failed: {e}")))?;
    Ok(Arc::new(EngineAccelerator::new(Arc::new(backend))))
}

/// A rayon pool whose threads prove through one accelerator: halo2's MSMs and FFTs inside
/// [`DevicePool::run`] go to it, whatever the process-wide engine is.
#[derive(Debug)]
pub struct DevicePool {
    pool: rayon::ThreadPool,
    accelerator: Arc<EngineAccelerator>,
}

impl DevicePool {
    /// A pool of `threads` threads named `{name}-{i}`, each carrying `accelerator`.
    pub fn new(
        name: &str,
        accelerator: Arc<EngineAccelerator>,
        threads: usize,
    ) -> Result<Self, ProverError> {
        let hook: Arc<dyn Accelerator> = accelerator.clone();
        let prefix = name.to_owned();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("{prefix}-{i}"))
            .start_handler(move |_| {
                set_thread_accelerator(Some(hook.clone()));
            })
            .exit_handler(|_| {
                set_thread_accelerator(None);
            })
            .build()
            .map_err(|e| ProverError::Engine(format!("{name}: thread pool: {e}")))?;
        Ok(Self { pool, accelerator })
    }

    /// Runs `work` on the pool (and so on its device); blocks until it returns.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.pool.install(work)
    }

    /// The accelerator its threads carry.
    pub fn accelerator(&self) -> &Arc<EngineAccelerator> {
        &self.accelerator
    }
}

/// 2^12 MSMs (random, zero and skewed scalars that fill a few buckets; random bases and bases
/// with identities, duplicates and negations), batched NTTs (plain, inverse, coset) and a
/// random gate program over 2^12 rows against the reference results.
pub fn quick_self_check(
    backend: &dyn Backend,
) -> Result<(), proofmill_accel::conformance::Mismatch> {
    use proofmill_accel::conformance::{check_gates, check_msm, check_ntt};
    check_msm(backend, 1 << 12, 0x5e1f, &[])?;
    check_ntt(backend, 12, 2, 0x5e1f)?;
    check_gates(backend, 1 << 12, 100, 0x5e1f)
}

#[cfg(test)]
mod tests {
    use halo2_base::halo2_proofs::{
        accel::stock_custom_gates, fft, halo2curves::group::Curve, halo2curves::msm::msm_best,
    };
    use proofmill_circuits::{transfer_batch::TransferBatchConfig, CatalogCircuit};

    use super::*;
    use crate::{Prover, Transcript};

    /// Runs every call through the engine and through halo2's own code, and records any
    /// difference. (Whole proofs cannot be compared byte for byte: halo2-axiom's lookup
    /// argument orders equal rows through a randomly seeded `HashMap`, so even two stock
    /// proofs with the same blinding randomness differ.)
    #[derive(Debug)]
    struct Checking {
        engine: EngineAccelerator,
        checked: AtomicU64,
        mismatches: Mutex<Vec<String>>,
    }

    impl Accelerator for Checking {
        fn msm(&self, coeffs: &[Fr], bases: &[G1Affine]) -> Option<G1> {
            let ours = self.engine.msm(coeffs, bases)?;
            let stock = msm_best(coeffs, bases);
            self.checked.fetch_add(1, Ordering::Relaxed);
            if ours.to_affine() != stock.to_affine() {
                self.mismatches
                    .lock()
                    .unwrap()
                    .push(format!("MSM of {} points", coeffs.len()));
            }
            Some(ours)
        }

        fn fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) -> bool {
            let mut stock = a.to_vec();
            if !self.engine.fft(a, omega, log_n, inverse) {
                return false;
            }
            stock_fft(&mut stock, omega, log_n, inverse);
            self.record(a, &stock, || format!("FFT 2^{log_n} inverse={inverse}"))
        }

        fn coset_fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, shift: Fr) -> bool {
            let mut stock = a.to_vec();
            if !self.engine.coset_fft(a, omega, log_n, shift) {
                return false;
            }
            let mut power = Fr::from(1u64);
            for x in stock.iter_mut() {
                *x *= power;
                power *= shift;
            }
            stock_fft(&mut stock, omega, log_n, false);
            self.record(a, &stock, || format!("coset FFT 2^{log_n}"))
        }

        fn ifft(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32, divisor: Fr) -> bool {
            let mut stock = a.to_vec();
            if !self.engine.ifft(a, omega_inv, log_n, divisor) {
                return false;
            }
            stock_fft(&mut stock, omega_inv, log_n, true);
            stock.iter_mut().for_each(|x| *x *= divisor);
            self.record(a, &stock, || format!("inverse FFT 2^{log_n} with divisor"))
        }

        fn custom_gates(&self, gates: &Gates<'_>, data: &GateData<'_>, values: &mut [Fr]) -> bool {
            let mut stock = values.to_vec();
            if !self.engine.custom_gates(gates, data, values) {
                return false;
            }
            stock_custom_gates(gates, data, &mut stock);
            self.record(values, &stock, || {
                format!(
                    "custom gates over {} rows ({} steps)",
                    values.len(),
                    gates.calculations.len()
                )
            })
        }
    }

    /// halo2's own FFT of `values` (unscaled, like the hook's `fft`).
    fn stock_fft(values: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) {
        let root = omega_for(log_n);
        let data = fft::recursive::FFTData::new(1 << log_n, root, root.invert().unwrap());
        fft::fft(values, omega, log_n, &data, inverse);
    }

    impl Checking {
        /// Counts one checked call and records `what` when the engine's result differs
        /// from halo2's; returns true (the engine's result stands).
        fn record(&self, ours: &[Fr], stock: &[Fr], what: impl FnOnce() -> String) -> bool {
            self.checked.fetch_add(1, Ordering::Relaxed);
            if stock != ours {
                self.mismatches.lock().unwrap().push(what());
            }
            true
        }
    }

    /// A real proof (keygen included) with every MSM and FFT the engine takes checked against
    /// halo2's own result: all identical, and the proof verifies.
    #[test]
    fn cpu_engine_computes_exactly_what_halo2_computes_inside_a_proof() {
        let dir = tempfile::tempdir().unwrap();
        let prover = Prover::new(dir.path());
        let circuit = CatalogCircuit::new(TransferBatchConfig::new(8, 2));
        let checking = Arc::new(Checking {
            engine: EngineAccelerator::new(Arc::new(proofmill_accel::CpuBackend::new())),
            checked: AtomicU64::new(0),
            mismatches: Mutex::new(Vec::new()),
        });
        set_accelerator(Some(checking.clone()));
        let result = prover.prove(
            &circuit,
            &circuit.example_input(1),
            Transcript::Poseidon,
            &|_| {},
        );
        set_accelerator(None);

        // `prove` returns a proof only after the stock verifier accepted it.
        let envelope = result.unwrap();
        assert_eq!(envelope.circuit, circuit.name());
        assert_eq!(*checking.mismatches.lock().unwrap(), Vec::<String>::new());
        let stats = checking.engine.stats();
        assert!(
            stats.msm_calls > 0 && stats.fft_calls > 0 && stats.gate_calls > 0,
            "{stats:?}"
        );
        assert_eq!(stats.errors, 0, "{stats:?}");
        assert_eq!(
            checking.checked.load(Ordering::Relaxed),
            stats.msm_calls + stats.fft_calls + stats.gate_calls
        );
    }

    #[test]
    fn engine_names_parse_and_cuda_without_a_gpu_is_an_error() {
        for name in ["auto", "cpu", "cuda", "stock"] {
            assert_eq!(name.parse::<Engine>().unwrap().to_string(), name);
        }
        assert!("tpu".parse::<Engine>().is_err());
        if proofmill_accel::DeviceInventory::probe()
            .first_usable_gpu()
            .is_none()
        {
            let err = install(Engine::Cuda).unwrap_err();
            assert!(err.to_string().contains("cuda"), "{err}");
        }
    }

    /// Each pool proves through its own accelerator, not the process-wide one, also when two
    /// pools prove at the same time; the proofs verify.
    #[test]
    fn device_pools_route_proofs_to_their_own_engine() {
        let dir = tempfile::tempdir().unwrap();
        let prover = Prover::new(dir.path());
        let circuit = CatalogCircuit::new(TransferBatchConfig::new(8, 2));
        let input = circuit.example_input(3);
        let engine = || {
            Arc::new(EngineAccelerator::new(Arc::new(
                proofmill_accel::CpuBackend::new(),
            )))
        };
        let a = DevicePool::new("pool-a", engine(), 2).unwrap();
        let b = DevicePool::new("pool-b", engine(), 2).unwrap();
        let prove = |pool: &DevicePool| {
            pool.run(|| prover.prove(&circuit, &input, Transcript::Poseidon, &|_| {}))
                .unwrap()
        };

        prove(&a);
        let (a1, b1) = (a.accelerator().stats(), b.accelerator().stats());
        assert!(a1.msm_calls > 0 && a1.fft_calls > 0, "pool a: {a1:?}");
        assert_eq!(
            (b1.msm_calls, b1.fft_calls),
            (0, 0),
            "pool b was idle: {b1:?}"
        );

        prove(&b);
        let (a2, b2) = (a.accelerator().stats(), b.accelerator().stats());
        assert_eq!((a2.msm_calls, a2.fft_calls), (a1.msm_calls, a1.fft_calls));
        assert!(b2.msm_calls > 0 && b2.fft_calls > 0, "pool b: {b2:?}");

        std::thread::scope(|s| {
            s.spawn(|| prove(&a));
            s.spawn(|| prove(&b));
        });
        let (a3, b3) = (a.accelerator().stats(), b.accelerator().stats());
        assert!(a3.msm_calls > a2.msm_calls && b3.msm_calls > b2.msm_calls);
        assert_eq!(a3.errors + b3.errors, 0);
    }
}
