//! The backend seam: one trait for the prover's heavy primitives, with checked public
//! methods that validate sizes and ownership over unchecked methods each backend implements.
//!
//! # Today and the road to device-resident polynomials
//! Bases are the only device-resident data today: [`Backend::load_bases`] hands them over
//! once (a CUDA backend uploads them, the CPU backend keeps its own copy) and returns a
//! [`BasesHandle`] that many [`Backend::msm`] calls reuse. Scalars and NTT vectors still
//! travel from host slices on every call. The planned next step is a `PolyHandle`, created
//! the same way as [`BasesHandle`] (owned by one backend instance, checked on every call),
//! so that a commit -> NTT -> quotient pipeline can stay on the device; the checked methods
//! will then also validate placement (host vs device) the way icicle's `HostOrDeviceSlice`
//! does. Until that exists, no method here pretends to keep vectors on a device.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ff::{Field, PrimeField, WithSmallOrderMulGroup};
use group::Group;
use halo2curves::bn256::{Fr, G1Affine, G1};

use crate::gates::{GateInputs, GateProgram};
use crate::AccelError;

/// Largest supported transform: Fr has 2-adicity 28.
pub const MAX_LOG_NTT_SIZE: u32 = Fr::S;

/// Smallest and largest Pippenger window a caller may force through [`MsmConfig`].
pub(crate) const WINDOW_RANGE: (u32, u32) = (1, 20);

/// Which implementation a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Host CPU, rayon-parallel.
    Cpu,
    /// An NVIDIA GPU through CUDA.
    Cuda,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a backend instance, so handles cannot cross instances unnoticed.
pub(crate) fn next_instance_id() -> u64 {
    NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed)
}

/// MSM bases handed to a backend once and kept resident (in host memory for the CPU
/// backend, in device memory for CUDA). Cheap to clone; the data is shared.
#[derive(Clone)]
pub struct BasesHandle {
    backend: BackendKind,
    instance: u64,
    len: usize,
    inner: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for BasesHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasesHandle")
            .field("backend", &self.backend)
            .field("instance", &self.instance)
            .field("len", &self.len)
            .finish()
    }
}

impl BasesHandle {
    /// Wraps backend-private resident data. Only backends create handles.
    pub(crate) fn new<T: Any + Send + Sync>(
        backend: BackendKind,
        instance: u64,
        len: usize,
        inner: T,
    ) -> Self {
        Self {
            backend,
            instance,
            len,
            inner: Arc::new(inner),
        }
    }

    /// Number of bases.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no bases were loaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The backend kind that owns the data.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The id of the backend instance that owns the data.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The backend-private data, when it is of type `T`.
    pub(crate) fn inner<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }
}

/// Options of one MSM. `Default` is what callers should use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsmConfig {
    /// Force the Pippenger window size in bits (1..=20); `None` lets the backend choose
    /// from the input size. Meant for tuning and tests; every value gives the same result.
    pub window_bits: Option<u32>,
}

/// Direction of a transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NttDirection {
    /// Coefficients -> evaluations at the powers of omega (halo2's `fft`).
    #[default]
    Forward,
    /// Evaluations -> coefficients, including the 1/n scaling (halo2's `ifft`).
    Inverse,
}

/// Options of one (batched) NTT. `Default` is a plain forward transform.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NttConfig {
    /// Forward or inverse.
    pub direction: NttDirection,
    /// Evaluate on the coset `g·<omega>` instead of `<omega>`. Forward: `a_i *= g^i` then the
    /// NTT. Inverse: the inverse NTT then `a_i *= g^-i`. halo2 uses `g = Fr::ZETA`
    /// (see [`NttConfig::halo2_coset`]).
    pub coset: Option<Fr>,
}

impl NttConfig {
    /// Plain forward transform.
    pub fn forward() -> Self {
        Self::default()
    }

    /// Plain inverse transform (with 1/n).
    pub fn inverse() -> Self {
        Self {
            direction: NttDirection::Inverse,
            coset: None,
        }
    }

    /// halo2's extended-domain coset (generator `Fr::ZETA`), matching
    /// `EvaluationDomain::coeff_to_extended` (forward) and `extended_to_coeff` (inverse,
    /// before truncation).
    pub fn halo2_coset(direction: NttDirection) -> Self {
        Self {
            direction,
            coset: Some(Fr::ZETA),
        }
    }
}

/// The primitive of order 2^log_n that halo2's `EvaluationDomain` uses for that size.
pub fn omega_for(log_n: u32) -> Fr {
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in log_n..Fr::S {
        omega = omega.square();
    }
    omega
}

/// A backend for BN254 MSM and Fr NTT.
///
/// Callers use the provided checked methods ([`load_bases`](Backend::load_bases),
/// [`msm`](Backend::msm), [`ntt`](Backend::ntt)); backends implement the `_unchecked`
/// methods, which may assume the checks passed. Those are `unsafe fn`: a GPU backend reads
/// device memory by the sizes it is given, so a call that breaks the stated conditions can
/// read past a buffer (icicle's wrappers draw the same line). Every backend computes exactly
/// the same function as [`crate::CpuBackend`] (and hence as halo2curves / halo2_proofs).
pub trait Backend: Send + Sync + fmt::Debug {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// Id of this instance; handles remember it.
    fn instance_id(&self) -> u64;

    /// One line for logs and `proofmill devices`, e.g. the GPU name and arch.
    fn description(&self) -> String;

    /// Make `bases` resident. No validation needed beyond what [`Backend::load_bases`] did.
    fn load_bases_unchecked(&self, bases: &[G1Affine]) -> Result<BasesHandle, AccelError>;

    /// `sum_i scalars[i] * bases[i]` over the first `scalars.len()` bases.
    ///
    /// # Safety
    /// The handle is this instance's, `scalars.len() <= bases.len()`, `scalars` is not empty
    /// and `cfg.window_bits` is within the supported range ([`Backend::msm`] checks all of
    /// it). A GPU backend reads `scalars.len()` resident bases whatever the handle holds.
    #[allow(unsafe_code)] // the contract above; the checked `msm` is the safe entry point
    unsafe fn msm_unchecked(
        &self,
        bases: &BasesHandle,
        scalars: &[Fr],
        cfg: &MsmConfig,
    ) -> Result<G1, AccelError>;

    /// In-place transform of `values.len() / 2^log_n` consecutive vectors.
    ///
    /// # Safety
    /// `log_n <= MAX_LOG_NTT_SIZE`, `values.len()` is a non-zero multiple of `2^log_n` and
    /// the coset generator, if any, is not zero ([`Backend::ntt`] checks all of it). A GPU
    /// backend sizes its device buffers and launches by these numbers.
    #[allow(unsafe_code)] // the contract above; the checked `ntt` is the safe entry point
    unsafe fn ntt_unchecked(
        &self,
        values: &mut [Fr],
        log_n: u32,
        cfg: &NttConfig,
    ) -> Result<(), AccelError>;

    /// `values[i] = program(row i)` for every row of one coset part: the quotient's terms
    /// folded into the running values (see [`crate::gates`]).
    ///
    /// # Safety
    /// `inputs` fit `program` and `values` ([`Backend::evaluate_gates`] checks it): enough
    /// scalars and columns, every column read as long as `values`, and `values` not empty
    /// and shorter than 2^32. A GPU backend copies and indexes the columns by these sizes.
    #[allow(unsafe_code)] // the contract above; the checked `evaluate_gates` is the entry point
    unsafe fn evaluate_gates_unchecked(
        &self,
        program: &GateProgram,
        inputs: &GateInputs<'_>,
        values: &mut [Fr],
    ) -> Result<(), AccelError>;

    /// Evaluates the gate `program` at every row: `values[i]` becomes the program's result
    /// at row `i`, reading `values[i]` as it was where the program reads the previous value.
    fn evaluate_gates(
        &self,
        program: &GateProgram,
        inputs: &GateInputs<'_>,
        values: &mut [Fr],
    ) -> Result<(), AccelError> {
        program.check(inputs, values.len())?;
        // SAFETY: the inputs were checked against the program and the values above.
        #[allow(unsafe_code)]
        unsafe {
            self.evaluate_gates_unchecked(program, inputs, values)
        }
    }

    /// Hands `bases` over once; the returned handle serves any number of MSMs.
    fn load_bases(&self, bases: &[G1Affine]) -> Result<BasesHandle, AccelError> {
        self.load_bases_unchecked(bases)
    }

    /// Multi-scalar multiplication against resident bases: `sum_i scalars[i] * bases[i]`.
    /// Fewer scalars than bases use a prefix of the bases (like committing to a short
    /// polynomial); more is an error.
    fn msm(&self, bases: &BasesHandle, scalars: &[Fr], cfg: &MsmConfig) -> Result<G1, AccelError> {
        if bases.backend != self.kind() || bases.instance != self.instance_id() {
            return Err(AccelError::ForeignHandle {
                expected: self.kind(),
                expected_instance: self.instance_id(),
                got: bases.backend,
                got_instance: bases.instance,
            });
        }
        if scalars.len() > bases.len() {
            return Err(AccelError::MsmSizeMismatch {
                bases: bases.len(),
                scalars: scalars.len(),
            });
        }
        if let Some(c) = cfg.window_bits {
            if !(WINDOW_RANGE.0..=WINDOW_RANGE.1).contains(&c) {
                return Err(AccelError::WindowOutOfRange {
                    got: c,
                    min: WINDOW_RANGE.0,
                    max: WINDOW_RANGE.1,
                });
            }
        }
        if scalars.is_empty() {
            return Ok(G1::identity());
        }
        // SAFETY: the handle's owner, the sizes and the window were checked above.
        #[allow(unsafe_code)]
        unsafe {
            self.msm_unchecked(bases, scalars, cfg)
        }
    }

    /// Batched in-place NTT: `values` holds `values.len() / 2^log_n` vectors back to back,
    /// each transformed independently as `cfg` says.
    fn ntt(&self, values: &mut [Fr], log_n: u32, cfg: &NttConfig) -> Result<(), AccelError> {
        if log_n > MAX_LOG_NTT_SIZE {
            return Err(AccelError::NttTooLarge {
                log_n,
                max: MAX_LOG_NTT_SIZE,
            });
        }
        let n = 1usize << log_n;
        if values.is_empty() || !values.len().is_multiple_of(n) {
            return Err(AccelError::NttSizeMismatch {
                expected_multiple_of: n,
                log_n,
                got: values.len(),
            });
        }
        if let Some(g) = cfg.coset {
            if bool::from(g.is_zero()) {
                return Err(AccelError::ZeroCosetGenerator);
            }
        }
        // SAFETY: the size, the length and the coset were checked above.
        #[allow(unsafe_code)]
        unsafe {
            self.ntt_unchecked(values, log_n, cfg)
        }
    }
}
