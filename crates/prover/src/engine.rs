//! The accelerator engine inside halo2's prover.
//!
//! halo2-axiom computes every KZG commitment with one MSM and every polynomial transform with
//! one FFT, behind functions its public API does not let us replace; the workspace patches it
//! (`vendor/halo2-axiom`, see `PATCHED.md`) with a process-wide hook. [`install`] puts an
//! [`EngineAccelerator`] there: BN254 MSMs against the SRS bases (commitments to advice,
//! lookup, permutation and quotient polynomials) and Fr FFTs of at least
//! [`MIN_ACCELERATED_LOG_SIZE`] (coefficient/Lagrange/extended-domain conversions) then run on
//! a [`proofmill_accel::Backend`] — a GPU, or our CPU engine — and so does the quotient's
//! arithmetic, coset part by coset part: halo2's compiled gate expressions and the
//! permutation and lookup terms become one [`proofmill_accel::gates::GateProgram`] that the
//! backend evaluates (`quotient`). Everything else (the lookups' sorting, the grand products,
//! the multi-opening) still runs inside halo2-axiom on the CPU. Results are bit-identical to the stock code (tested), and every
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
    accel::{set_accelerator, set_thread_accelerator, Accelerator, QuotientPart},
    halo2curves::bn256::{Fr, G1Affine, G1},
};
use proofmill_accel::gates::GateInputs;
use proofmill_accel::{omega_for, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig};

use crate::ProverError;

mod quotient;
use quotient::QuotientProgram;

/// Smaller MSMs and FFTs (the multi-opening's few-point MSMs, tiny domains) stay with the
/// stock code: handing them over costs more than it saves.
pub const MIN_ACCELERATED_LOG_SIZE: u32 = 10;

/// Base vectors kept resident at once (an SRS's monomial and Lagrange bases per `k` in use).
const RESIDENT_BASES: usize = 8;

/// Routes halo2's MSMs and FFTs to a backend.
#[derive(Debug)]
pub struct EngineAccelerator {
    backend: Arc<dyn Backend>,
    /// False once the backend failed the gate-program check: quotient parts go to halo2.
    quotient: std::sync::atomic::AtomicBool,
    resident: Mutex<Vec<Resident>>,
    stats: Counters,
    /// The latest call the backend failed, and why.
    last_error: Mutex<Option<String>>,
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
    quotient_calls: AtomicU64,
    quotient_nanos: AtomicU64,
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
    /// Coset parts of the quotient the backend evaluated (custom gates, permutation and
    /// lookup terms; one per part and proof in a batch).
    pub quotient_calls: u64,
    /// Seconds spent in them (building the part's program included).
    pub quotient_seconds: f64,
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
            quotient_calls: self.quotient_calls - earlier.quotient_calls,
            quotient_seconds: self.quotient_seconds - earlier.quotient_seconds,
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
            quotient: std::sync::atomic::AtomicBool::new(true),
            resident: Mutex::new(Vec::new()),
            stats: Counters::default(),
            last_error: Mutex::new(None),
        }
    }

    /// The latest call the backend failed (what and why), if any did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What a job's record should say when calls failed on this engine since `before` (a GPU
    /// out of memory, a driver error): how many, that halo2's CPU code computed them
    /// instead, and the latest reason. `None` when none failed.
    pub fn fallback_note(&self, before: &EngineStats) -> Option<String> {
        let failed = self.stats().since(before).errors;
        (failed > 0).then(|| {
            format!(
                "{failed} engine call(s) failed on {} and were computed by halo2's CPU code instead; the latest: {}",
                self.backend.description(),
                self.last_error().unwrap_or_else(|| "unknown".into())
            )
        })
    }

    /// Runs a random gate program over 2^12 rows on a GPU backend against the reference;
    /// when the GPU gets it wrong, this engine leaves the quotient to halo2's code from then
    /// on (its MSMs and FFTs, checked separately, stay on the GPU). Returns whether the
    /// quotient stays on the engine. The CPU backend is the reference: nothing to check.
    pub fn check_quotient(&self) -> bool {
        if self.backend.kind() == BackendKind::Cpu {
            return true;
        }
        match proofmill_accel::conformance::check_gates(self.backend.as_ref(), 1 << 12, 100, 0x5e1f)
        {
            Ok(()) => true,
            Err(mismatch) => {
                tracing::error!(%mismatch, "GPU gate-program check failed: the quotient stays with halo2's code");
                self.quotient.store(false, Ordering::Relaxed);
                false
            }
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
            quotient_calls: s.quotient_calls.load(Ordering::Relaxed),
            quotient_seconds: s.quotient_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            declined: s.declined.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
        }
    }

    /// The resident handle for `bases`, loading them on first sight.
    ///
    /// The lock is not held while the bases load: loading runs on rayon, and a rayon thread
    /// waiting there may pick up another proof's task that asks for bases here, which would
    /// then wait on a lock its own thread holds (a deadlock that stalled every proof of a
    /// process in a CI run). Two first sights of the same bases may both load; one is kept.
    fn resident(
        &self,
        bases: &[G1Affine],
    ) -> Result<Arc<BasesHandle>, proofmill_accel::AccelError> {
        let address = bases.as_ptr() as usize;
        let fingerprint = [bases[0], bases[bases.len() / 2], bases[bases.len() - 1]];
        let find = |resident: &[Resident]| {
            resident
                .iter()
                .find(|r| {
                    r.address == address
                        && r.handle.len() == bases.len()
                        && r.fingerprint == fingerprint
                })
                .map(|r| r.handle.clone())
        };
        if let Some(handle) = find(&self.resident.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(handle);
        }
        let loaded = Arc::new(self.backend.load_bases(bases)?);
        let mut resident = self.resident.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = find(&resident) {
            return Ok(handle); // loaded meanwhile by another proof
        }
        if resident.len() == RESIDENT_BASES {
            resident.remove(0);
        }
        resident.push(Resident {
            address,
            fingerprint,
            handle: loaded.clone(),
        });
        Ok(loaded)
    }

    fn declined<T>(&self, value: T) -> T {
        self.stats.declined.fetch_add(1, Ordering::Relaxed);
        value
    }

    fn failed<T>(&self, what: &str, error: &dyn std::fmt::Display, value: T) -> T {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(format!("{what}: {error}"));
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

    fn quotient_part(&self, part: &QuotientPart<'_>, values: &mut [Fr]) -> bool {
        if values.len() < 1 << MIN_ACCELERATED_LOG_SIZE
            || !engine_quotient_enabled()
            || !self.quotient.load(Ordering::Relaxed)
        {
            return self.declined(false);
        }
        let start = Instant::now();
        let quotient = match QuotientProgram::new(part) {
            Ok(quotient) => quotient,
            Err(e) => return self.failed("compiling a quotient part", &e, false),
        };
        let columns = quotient.columns(part);
        let inputs = GateInputs {
            scalars: &quotient.scalars,
            columns: &columns,
        };
        if let Err(e) = self
            .backend
            .evaluate_gates(&quotient.program, &inputs, values)
        {
            return self.failed("a quotient part", &e, false);
        }
        self.stats.quotient_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .quotient_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        true
    }
}

/// Set to `off` to leave the quotient's coset parts (custom gates, permutation and lookup
/// terms) to halo2's own code, e.g. to measure the engine's against it; MSMs and FFTs stay
/// on the engine.
pub const ENGINE_QUOTIENT_ENV: &str = "PROOFMILL_ENGINE_QUOTIENT";

fn engine_quotient_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| !std::env::var(ENGINE_QUOTIENT_ENV).is_ok_and(|v| v == "off"))
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
    accelerator.check_quotient();
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
    let accelerator = EngineAccelerator::new(Arc::new(backend));
    accelerator.check_quotient();
    Ok(Arc::new(accelerator))
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
/// with identities, duplicates and negations) and batched NTTs (plain, inverse, coset)
/// against the reference results.
pub fn quick_self_check(
    backend: &dyn Backend,
) -> Result<(), proofmill_accel::conformance::Mismatch> {
    use proofmill_accel::conformance::{check_msm, check_ntt};
    check_msm(backend, 1 << 12, 0x5e1f, &[])?;
    check_ntt(backend, 12, 2, 0x5e1f)
}

#[cfg(test)]
mod tests {
    use halo2_base::halo2_proofs::{
        accel::stock_quotient_part, fft, halo2curves::group::Curve, halo2curves::msm::msm_best,
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
        /// (permutation sets, lookups) of every quotient part checked.
        quotient_shapes: Mutex<Vec<(usize, usize)>>,
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

        fn quotient_part(&self, part: &QuotientPart<'_>, values: &mut [Fr]) -> bool {
            let mut stock = values.to_vec();
            if !self.engine.quotient_part(part, values) {
                return false;
            }
            stock_quotient_part(part, &mut stock);
            self.quotient_shapes.lock().unwrap().push((
                part.permutation_product_cosets.len(),
                part.lookup_cosets.len(),
            ));
            self.record(values, &stock, || {
                format!(
                    "quotient part over {} rows ({} permutation sets, {} lookups)",
                    values.len(),
                    part.permutation_product_cosets.len(),
                    part.lookup_cosets.len()
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

    /// A real proof (keygen included) with every MSM, FFT and quotient part the engine takes
    /// checked against halo2's own result: all identical, and the proof verifies.
    #[test]
    fn cpu_engine_computes_exactly_what_halo2_computes_inside_a_proof() {
        let dir = tempfile::tempdir().unwrap();
        let prover = Prover::new(dir.path());
        let circuit = CatalogCircuit::new(TransferBatchConfig::new(8, 2));
        let checking = Arc::new(Checking {
            engine: EngineAccelerator::new(Arc::new(proofmill_accel::CpuBackend::new())),
            checked: AtomicU64::new(0),
            mismatches: Mutex::new(Vec::new()),
            quotient_shapes: Mutex::new(Vec::new()),
        });
        set_accelerator(Some(checking.clone()));
        let result = prover.prove(
            &circuit,
            &circuit.example_input(1),
            Transcript::Poseidon,
            &|_| {},
        );
        set_accelerator(None);

        // A difference is reported by name first (the proof would then fail the verifier).
        assert_eq!(*checking.mismatches.lock().unwrap(), Vec::<String>::new());
        // `prove` returns a proof only after the stock verifier accepted it.
        let envelope = result.unwrap();
        assert_eq!(envelope.circuit, circuit.name());
        let stats = checking.engine.stats();
        assert!(
            stats.msm_calls > 0 && stats.fft_calls > 0 && stats.quotient_calls > 0,
            "{stats:?}"
        );
        assert_eq!(stats.errors, 0, "{stats:?}");
        // The parts checked had every kind of term: custom gates, several permutation
        // sets (so the terms linking sets ran) and lookups.
        let shapes = checking.quotient_shapes.lock().unwrap().clone();
        assert!(
            shapes
                .iter()
                .any(|&(sets, lookups)| sets > 1 && lookups > 0),
            "{shapes:?}"
        );
        assert_eq!(
            checking.checked.load(Ordering::Relaxed),
            stats.msm_calls + stats.fft_calls + stats.quotient_calls
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

    /// A backend whose device is out of memory for MSMs of 2^12 points or more, as a GPU
    /// with too little room answers; everything else is the CPU backend's.
    #[derive(Debug)]
    struct OutOfMemory(proofmill_accel::CpuBackend);

    #[allow(unsafe_code)] // delegates to the CPU backend under the same contract
    impl proofmill_accel::Backend for OutOfMemory {
        fn kind(&self) -> BackendKind {
            self.0.kind()
        }
        fn instance_id(&self) -> u64 {
            self.0.instance_id()
        }
        fn description(&self) -> String {
            "a backend out of memory".into()
        }
        fn load_bases_unchecked(
            &self,
            bases: &[G1Affine],
        ) -> Result<BasesHandle, proofmill_accel::AccelError> {
            self.0.load_bases_unchecked(bases)
        }
        unsafe fn msm_unchecked(
            &self,
            bases: &BasesHandle,
            scalars: &[Fr],
            cfg: &MsmConfig,
        ) -> Result<G1, proofmill_accel::AccelError> {
            if scalars.len() >= 1 << 12 {
                return Err(proofmill_accel::AccelError::Driver {
                    op: "device allocation",
                    detail: "CUDA_ERROR_OUT_OF_MEMORY".into(),
                });
            }
            // SAFETY: the caller upholds msm_unchecked's contract, which is the same.
            unsafe { self.0.msm_unchecked(bases, scalars, cfg) }
        }
        unsafe fn ntt_unchecked(
            &self,
            values: &mut [Fr],
            log_n: u32,
            cfg: &NttConfig,
        ) -> Result<(), proofmill_accel::AccelError> {
            // SAFETY: as above.
            unsafe { self.0.ntt_unchecked(values, log_n, cfg) }
        }
        unsafe fn evaluate_gates_unchecked(
            &self,
            program: &proofmill_accel::gates::GateProgram,
            inputs: &GateInputs<'_>,
            values: &mut [Fr],
        ) -> Result<(), proofmill_accel::AccelError> {
            // SAFETY: as above.
            unsafe { self.0.evaluate_gates_unchecked(program, inputs, values) }
        }
    }

    /// A device that runs out of memory mid-proof costs speed, not the proof: every failed
    /// MSM is computed by halo2's code, the proof verifies, and the engine says how many
    /// calls failed and why.
    #[test]
    fn calls_a_device_fails_fall_back_to_the_cpu_and_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let prover = Prover::new(dir.path());
        let circuit = CatalogCircuit::new(TransferBatchConfig::new(8, 2));
        let input = circuit.example_input(5);
        let engine = Arc::new(EngineAccelerator::new(Arc::new(OutOfMemory(
            proofmill_accel::CpuBackend::new(),
        ))));
        let pool = DevicePool::new("short-of-memory", engine.clone(), 2).unwrap();
        let before = engine.stats();
        assert_eq!(engine.fallback_note(&before), None);
        let envelope = pool
            .run(|| prover.prove(&circuit, &input, Transcript::Poseidon, &|_| {}))
            .expect("the proof is made (and verified) despite the failures");
        assert_eq!(envelope.circuit, circuit.name());
        let stats = engine.stats().since(&before);
        assert!(stats.errors > 0 && stats.fft_calls > 0, "{stats:?}");
        let note = engine.fallback_note(&before).unwrap();
        assert!(
            note.starts_with(&format!(
                "{} engine call(s) failed on a backend out of memory",
                stats.errors
            )) && note.contains(
                "an MSM: CUDA driver error during device allocation: CUDA_ERROR_OUT_OF_MEMORY"
            ),
            "{note}"
        );
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
