//! The CPU backend: our own signed-digit, batch-affine Pippenger MSM and a four-step NTT
//! of in-cache radix-2 sub-transforms, both rayon-parallel. Where the CPU has AVX-512 IFMA
//! (checked at run time; `PROOFMILL_CPU_SIMD=off` turns it off) the NTT's tiles and the
//! MSM's bucket additions run eight field elements per vector (`ifma`, `msm_ifma`). It is
//! the reference every other backend is compared
//! with, and it is itself tested bit for bit against halo2curves and halo2_proofs.
//!
//! It owns host memory only; it must not touch devices.

#[cfg(target_arch = "x86_64")]
mod ifma;
mod msm;
#[cfg(target_arch = "x86_64")]
mod msm_ifma;
mod ntt;

use halo2curves::bn256::{Fr, G1Affine, G1};

use crate::backend::next_instance_id;
use crate::gates::{GateInputs, GateProgram};
use crate::{AccelError, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig};

pub(crate) use ntt::twiddle_table;

/// CPU implementation of [`Backend`]. Its twiddles are one small table shared by every
/// size (built on first use) plus `sqrt(n)` powers computed per call.
#[derive(Debug)]
pub struct CpuBackend {
    instance: u64,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A new backend.
    pub fn new() -> Self {
        Self {
            instance: next_instance_id(),
        }
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn instance_id(&self) -> u64 {
        self.instance
    }

    fn description(&self) -> String {
        let simd = if simd_available() {
            ", AVX-512 IFMA"
        } else {
            ""
        };
        format!("CPU ({} rayon threads{simd})", rayon::current_num_threads())
    }

    fn load_bases_unchecked(&self, bases: &[G1Affine]) -> Result<BasesHandle, AccelError> {
        Ok(BasesHandle::new(
            BackendKind::Cpu,
            self.instance,
            bases.len(),
            msm::CpuBases::new(bases),
        ))
    }

    #[allow(unsafe_code)] // Backend's contract; called only by the checked `msm`
    unsafe fn msm_unchecked(
        &self,
        bases: &BasesHandle,
        scalars: &[Fr],
        cfg: &MsmConfig,
    ) -> Result<G1, AccelError> {
        let cpu_bases = bases
            .inner::<msm::CpuBases>()
            .ok_or(AccelError::ForeignHandle {
                expected: BackendKind::Cpu,
                expected_instance: self.instance,
                got: bases.backend(),
                got_instance: bases.instance(),
            })?;
        Ok(msm::msm(cpu_bases, scalars, cfg.window_bits))
    }

    #[allow(unsafe_code)] // Backend's contract; called only by the checked `ntt`
    unsafe fn ntt_unchecked(
        &self,
        values: &mut [Fr],
        log_n: u32,
        cfg: &NttConfig,
    ) -> Result<(), AccelError> {
        let inverse = cfg.direction == crate::NttDirection::Inverse;
        ntt::ntt_batch(values, log_n, inverse, cfg.coset);
        Ok(())
    }

    #[allow(unsafe_code)] // implements the trait's unchecked contract; nothing unsafe inside
    unsafe fn evaluate_gates_unchecked(
        &self,
        program: &GateProgram,
        inputs: &GateInputs<'_>,
        values: &mut [Fr],
    ) -> Result<(), AccelError> {
        program.evaluate_cpu(inputs, values);
        Ok(())
    }
}

/// For the vector-path tests: whether AVX-512 IFMA is usable here. Where it is not, the test
/// says so loudly and passes, unless `PROOFMILL_REQUIRE_SIMD=1` (CI sets it on CPUs that
/// advertise IFMA), which makes that a failure.
#[cfg(test)]
pub(crate) fn simd_or_skip(what: &str) -> bool {
    if simd_available() {
        return true;
    }
    assert!(
        std::env::var("PROOFMILL_REQUIRE_SIMD").as_deref() != Ok("1"),
        "PROOFMILL_REQUIRE_SIMD=1 but the AVX-512 IFMA path is unavailable ({what})"
    );
    eprintln!("!!!!!!!! SKIPPED {what}: no AVX-512 IFMA on this CPU !!!!!!!!");
    false
}

/// Whether the NTT tiles and the MSM's bucket additions run on AVX-512 IFMA on this CPU.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return ifma::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}
