//! What can stop a benchmark or the self-test: a file that cannot be read or written, a
//! backend or prover failure, a device that computes a wrong result, or a bad flag.

use std::path::PathBuf;

/// Why a benchmark step or the whole run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A `--baseline` file is not a report this version reads.
    #[error("{path} is not a proofmill bench report: {message}")]
    Report {
        /// The file.
        path: PathBuf,
        /// Why not.
        message: String,
    },
    /// A flag's value cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// No device of the asked kind can be measured.
    #[error("no GPU: {0}")]
    NoGpu(String),
    /// A device computed something other than the CPU reference: its timings mean nothing.
    #[error("{0}")]
    Mismatch(String),
    /// NVML could not read the GPU's power.
    #[error("NVML: {0}")]
    Nvml(String),
    /// The MSM/NTT backend failed.
    #[error(transparent)]
    Accel(#[from] proofmill_accel::AccelError),
    /// The prover failed.
    #[error(transparent)]
    Prover(#[from] proofmill_prover::ProverError),
    /// A circuit name or input is wrong.
    #[error(transparent)]
    Circuit(#[from] proofmill_circuits::CircuitError),
    /// A step failed: what it was, and why.
    #[error("{what}: {source}")]
    Step {
        /// The step (`keys of transfer_batch/d16-b8`, `aggregation`, ...).
        what: String,
        /// Why it failed.
        source: Box<BenchError>,
    },
}

/// Names the step a failure happened in.
pub(crate) trait StepContext<T> {
    /// The error, wrapped as a failure of `what`.
    fn step(self, what: impl FnOnce() -> String) -> Result<T, BenchError>;
}

impl<T, E: Into<BenchError>> StepContext<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, BenchError> {
        self.map_err(|e| BenchError::Step {
            what: what(),
            source: Box::new(e.into()),
        })
    }
}
