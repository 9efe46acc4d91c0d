//! Errors of the accel crate. Variants carry the numbers a caller needs to fix the call.

use crate::BackendKind;

/// Everything that can go wrong in an MSM, an NTT or while choosing a backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccelError {
    /// More scalars than the resident bases they are multiplied with.
    #[error(
        "MSM size mismatch: {scalars} scalars for {bases} resident bases (at most {bases} scalars)"
    )]
    MsmSizeMismatch {
        /// Number of bases loaded in the handle.
        bases: usize,
        /// Number of scalars passed.
        scalars: usize,
    },
    /// A [`crate::BasesHandle`] used with a backend that did not create it.
    #[error("bases handle belongs to backend {got} (instance {got_instance}), not to {expected} (instance {expected_instance})")]
    ForeignHandle {
        /// The backend the call was made on.
        expected: BackendKind,
        /// Its instance id.
        expected_instance: u64,
        /// The backend that created the handle.
        got: BackendKind,
        /// That backend's instance id.
        got_instance: u64,
    },
    /// NTT input whose length is not a whole number of transforms of the requested size.
    #[error("NTT size mismatch: {got} values is not a non-zero multiple of the transform size {expected_multiple_of} (2^{log_n})")]
    NttSizeMismatch {
        /// 2^log_n.
        expected_multiple_of: usize,
        /// log2 of the transform size.
        log_n: u32,
        /// Length of the slice passed.
        got: usize,
    },
    /// Transform larger than the 2-adicity of Fr allows.
    #[error("NTT of size 2^{log_n} is too large: Fr supports at most 2^{max}")]
    NttTooLarge {
        /// Requested log2 size.
        log_n: u32,
        /// Largest supported log2 size.
        max: u32,
    },
    /// A coset generator of zero (it has no inverse, the transform would lose information).
    #[error("coset generator must be non-zero")]
    ZeroCosetGenerator,
    /// A window size outside the supported range.
    #[error("MSM window size {got} out of range {min}..={max}")]
    WindowOutOfRange {
        /// Requested window.
        got: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A gate program that cannot be run as given.
    #[error("invalid gate program at step {step}: {reason}")]
    InvalidGateProgram {
        /// The offending step (in the order given).
        step: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A gate evaluation's inputs do not fit its program or its values.
    #[error("gate inputs do not fit: {what}")]
    GateInputMismatch {
        /// What does not fit.
        what: String,
    },

    /// The requested backend cannot run on this machine.
    #[error("backend {backend} unavailable: {reason}")]
    Unavailable {
        /// Which backend.
        backend: BackendKind,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// NVRTC rejected a kernel or could not be loaded.
    #[error("kernel compilation failed for {kernel} ({arch}): {log}")]
    KernelCompile {
        /// Kernel file name.
        kernel: String,
        /// Target architecture, e.g. `sm_90`.
        arch: String,
        /// NVRTC's log or loader error.
        log: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver error during {op}: {detail}")]
    Driver {
        /// What we were doing.
        op: &'static str,
        /// The driver's message.
        detail: String,
    },
    /// The device returned a value that is not a valid field element or curve point.
    #[error("device returned an invalid {what}")]
    InvalidDeviceResult {
        /// What was invalid.
        what: &'static str,
    },
    /// Kernel cache I/O.
    #[error("kernel cache {path}: {source}")]
    Cache {
        /// File or directory.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}
