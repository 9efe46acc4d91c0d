//! The proving engine's heavy primitives: BN254 G1 multi-scalar multiplication (MSM), Fr
//! number-theoretic transforms (NTT) and the quotient's arithmetic (gate programs), behind
//! one [`Backend`] trait with a CPU and a CUDA implementation, plus the device inventory that decides which one runs.
//!
//! This crate owns arithmetic only. It knows nothing of circuits, proofs or HTTP: the prover
//! hands it bases, scalars and evaluation vectors and gets group elements and vectors back.
//!
//! * [`Backend`]: checked public methods (`load_bases`, `msm`, `ntt`) over unchecked
//!   per-backend methods, in the style of icicle's Rust wrappers.
//! * [`CpuBackend`]: our own signed-digit, batch-affine Pippenger and a four-step NTT, both
//!   on AVX-512 IFMA where the CPU has it, bit-identical to `halo2curves`/`halo2_proofs`.
//! * [`CudaBackend`]: the same functions in our own CUDA kernels (`kernels/`), compiled at
//!   run time by NVRTC for the card's exact architecture.
//! * [`gates`]: the quotient's arithmetic as a [`gates::GateProgram`] that every backend
//!   evaluates over a coset part (rows in blocks on the CPU, a thread per row on a GPU).
//! * [`inventory`]: what GPUs exist, whether they are usable (and why not), and
//!   [`select`] to pick a backend.
//! * [`conformance`]: the generic `check_msm::<B>()` / `check_ntt::<B>()` used by the tests
//!   of every backend.

mod backend;
pub mod conformance;
pub mod cpu;
pub mod cuda;
mod error;
pub mod gates;
pub mod host;
pub mod inventory;
pub mod kernels;
mod limbs;

pub use backend::{
    omega_for, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig, NttDirection,
    MAX_LOG_NTT_SIZE,
};
pub use cpu::CpuBackend;
pub use cuda::CudaBackend;
pub use error::AccelError;
pub use inventory::{
    gpu_telemetry, select, DeviceInventory, Engine, GpuInfo, GpuTelemetry, Selected, UnknownEngine,
};

/// The curve and fields this crate works over, re-exported so callers name the same types.
pub mod curve {
    pub use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
}
