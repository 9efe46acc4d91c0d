//! The CPU backend: our own signed-digit, batch-affine Pippenger MSM and a cache-blocked
//! radix-2 NTT, both rayon-parallel. It is the reference every other backend is compared
//! with, and it is itself tested bit for bit against halo2curves and halo2_proofs.
//!
//! It owns host memory only; it must not touch devices.

mod msm;
mod ntt;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use halo2curves::bn256::{Fr, G1Affine, G1};

use crate::backend::next_instance_id;
use crate::{AccelError, Backend, BackendKind, BasesHandle, MsmConfig, NttConfig};

pub(crate) use ntt::twiddle_table;

/// Twiddle tables by (log_n, inverse).
type TwiddleCache = HashMap<(u32, bool), Arc<Vec<Fr>>>;

/// CPU implementation of [`Backend`]. Keeps a cache of twiddle tables per transform size.
#[derive(Debug)]
pub struct CpuBackend {
    instance: u64,
    twiddles: Mutex<TwiddleCache>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A new backend with an empty twiddle cache.
    pub fn new() -> Self {
        Self {
            instance: next_instance_id(),
            twiddles: Mutex::new(HashMap::new()),
        }
    }

    /// Twiddles `omega^j`, `j < n/2`, for the forward or inverse transform of size 2^log_n.
    fn twiddles(&self, log_n: u32, inverse: bool) -> Arc<Vec<Fr>> {
        let key = (log_n, inverse);
        if let Ok(cache) = self.twiddles.lock() {
            if let Some(t) = cache.get(&key) {
                return Arc::clone(t);
            }
        }
        let table = Arc::new(ntt::twiddle_table(log_n, inverse));
        if let Ok(mut cache) = self.twiddles.lock() {
            cache.insert(key, Arc::clone(&table));
        }
        table
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
        format!("CPU ({} rayon threads)", rayon::current_num_threads())
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
        let twiddles = self.twiddles(log_n, inverse);
        ntt::ntt_batch(values, log_n, &twiddles, inverse, cfg.coset);
        Ok(())
    }
}
