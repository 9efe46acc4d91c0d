//! How much memory a proof needs, on the host and on a GPU: a formula in `k` and the
//! circuit's column counts, read from the circuit's constraint system.
//!
//! On the host the formula counts vectors of `2^k` field elements (32 bytes each):
//!
//! * the proving key, exactly: `l_0`, `l_last`, `l_active_row`, and every fixed and
//!   permutation column in Lagrange and coefficient form, `3 + 2 fixed + 2 permutation`
//!   (the size of every `pk.bin` the tests and benchmarks made, to the vector);
//! * the SRS (`g` and `g_lagrange`, two elements a point) and the CPU engine's resident copy
//!   of both: `8`;
//! * a proof's working set: the advice columns in both forms, one coset part of every column
//!   the quotient reads ([`CircuitDims::quotient_columns`]), and [`PROOF_EXTRA_VECTORS`] for
//!   the rest (`h` on the extended domain and its pieces, the grand products, the lookups'
//!   permuted columns, halo2-base's builder);
//! * keygen instead of the working set, when the key is made first:
//!   [`KEYGEN_VECTORS_PER_COLUMN`] per advice, fixed and permutation column (the assembly's
//!   assigned fixed values, the permutation's mapping and its `delta^j omega^i` table, the
//!   builder);
//! * [`HOST_BASE_BYTES`] for the process, and [`HOST_MARGIN_PERCENT`] over the sum.
//!
//! The last three coefficients were fitted to the peak resident memory of `proofmill prove`
//! and `proofmill keygen` on every catalog circuit and a two-proof aggregation (k = 17 to
//! 21), and the formula covers every one of those peaks (docs/operations.md, "Sizing host
//! memory", has the table).
//!
//! A GPU holds what the CUDA engine allocates ([`proofmill_accel::cuda::layout`] sizes each
//! call's buffers, the MSM's from the same [`layout::MsmBuffers`] the backend allocates): the
//! SRS's two bases resident, the NTT twiddles of both sizes and directions, and the largest
//! single call (an MSM of `2^k`, an NTT of the extended domain, or one quotient part with all
//! its columns), because calls on one GPU run one at a time. Not yet checked on a card.

use halo2_base::{
    gates::circuit::{BaseCircuitParams, BaseConfig},
    halo2_proofs::{halo2curves::bn256::Fr, plonk::ConstraintSystem},
};
use proofmill_accel::cuda::layout;
use serde::Serialize;

use crate::{epoch::epoch_k, ProofCircuit, Prover, AGGREGATION_K};

/// Bytes of one field element.
const ELEMENT_BYTES: u64 = 32;

/// Host memory of a proving process before any circuit: code, allocator arenas, thread
/// stacks (the measured peaks extrapolate to about 50 MB at no rows).
pub const HOST_BASE_BYTES: u64 = 64 << 20;

/// Vectors of a proof's working set besides the advice columns and one quotient part's
/// cosets (fitted: the measured peaks need 32 to 39).
pub const PROOF_EXTRA_VECTORS: u64 = 40;

/// Vectors keygen holds per advice, fixed and permutation column besides the key and the
/// SRS (fitted: the measured peaks need 5.0 to 5.4), in tenths.
pub const KEYGEN_VECTORS_PER_COLUMN: u64 = 55;

/// Margin over the formula's sum, percent.
pub const HOST_MARGIN_PERCENT: u64 = 5;

/// Upper bound on the intermediate slots of a quotient part's gate program: each slot is
/// one element per GPU thread of the grid ([`layout::GATE_MAX_THREADS`]).
const GATE_SLOTS_BOUND: usize = 128;

/// The sizes of a circuit that its proof's memory depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitDims {
    /// log2 of the rows.
    pub k: u32,
    /// log2 of the extended domain the quotient is evaluated on.
    pub extended_k: u32,
    /// Advice columns (the lookup advice included).
    pub advice: usize,
    /// Fixed columns and selectors (selectors become fixed columns at keygen; some are
    /// combined, so this bounds the key's fixed columns from above).
    pub fixed: usize,
    /// Instance columns.
    pub instance: usize,
    /// Lookup arguments.
    pub lookups: usize,
    /// Columns of the permutation (copy constraints).
    pub permutation_columns: usize,
    /// Permutation sets (grand products): the columns in chunks of `degree - 2`.
    pub permutation_sets: usize,
}

impl CircuitDims {
    /// The dimensions of a constraint system at `2^k` rows.
    pub fn of(cs: &ConstraintSystem<Fr>, k: u32) -> Self {
        let degree = cs.degree().max(3);
        let quotient_degree = (degree - 1) as u64;
        let mut extended_k = k;
        while (1u64 << extended_k) < (1u64 << k) * quotient_degree {
            extended_k += 1;
        }
        let permutation_columns = cs.permutation().get_columns().len();
        Self {
            k,
            extended_k,
            advice: cs.num_advice_columns(),
            fixed: cs.num_fixed_columns() + cs.num_selectors(),
            instance: cs.num_instance_columns(),
            lookups: cs.lookups().len(),
            permutation_columns,
            permutation_sets: permutation_columns.div_ceil(degree - 2),
        }
    }

    /// The dimensions of a halo2-base circuit laid out with `params` (configured, not
    /// synthesized: no witness and no key needed).
    pub fn from_params(params: &BaseCircuitParams) -> Self {
        let mut cs = ConstraintSystem::<Fr>::default();
        BaseConfig::configure(&mut cs, params.clone());
        Self::of(&cs, params.k as u32)
    }

    /// Coset parts of the extended domain (`2^(extended_k - k)`).
    pub fn parts(&self) -> u64 {
        1 << (self.extended_k - self.k)
    }

    /// Columns one quotient part reads: every fixed, advice, instance and permutation
    /// column, each set's product, each lookup's product, permuted input and permuted table,
    /// `l_0`, `l_last` and `l_active_row`, and the engine's column of `beta X`.
    pub fn quotient_columns(&self) -> u64 {
        (self.fixed
            + self.advice
            + self.instance
            + self.permutation_columns
            + self.permutation_sets
            + 3 * self.lookups
            + 4) as u64
    }
}

/// The memory a proof of one circuit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryNeed {
    /// Host memory at the peak, bytes: of keygen or the proof, whichever is larger, when the
    /// key is made first. On a GPU the host still holds halo2-axiom's polynomials.
    pub host_bytes: u64,
    /// Memory on a GPU proving it with the CUDA engine, bytes.
    pub gpu_bytes: u64,
}

impl MemoryNeed {
    /// The formula of this module for a circuit of `dims`; `keygen` when its key has to be
    /// made first.
    pub fn estimate(dims: &CircuitDims, keygen: bool) -> Self {
        let n = 1u64 << dims.k;
        let (advice, fixed, permutation) = (
            dims.advice as u64,
            dims.fixed as u64,
            dims.permutation_columns as u64,
        );
        let key = 3 + 2 * fixed + 2 * permutation;
        let srs = 8;
        let proof = 2 * advice + dims.quotient_columns() + PROOF_EXTRA_VECTORS;
        let keygen_vectors =
            (KEYGEN_VECTORS_PER_COLUMN * (advice + fixed + permutation)).div_ceil(10);
        let working = if keygen {
            proof.max(keygen_vectors)
        } else {
            proof
        };
        let bytes = HOST_BASE_BYTES + (key + srs + working) * n * ELEMENT_BYTES;
        Self {
            host_bytes: bytes + bytes * HOST_MARGIN_PERCENT / 100,
            gpu_bytes: gpu_bytes(dims),
        }
    }

    /// The bytes this need takes on a device of `kind`: a GPU's own memory, or the host's
    /// for the CPU.
    pub fn on(&self, kind: crate::devices::DeviceKind) -> u64 {
        match kind {
            crate::devices::DeviceKind::Cpu => self.host_bytes,
            crate::devices::DeviceKind::Gpu => self.gpu_bytes,
        }
    }
}

/// What the CUDA engine holds on a GPU for a proof of `dims`.
fn gpu_bytes(dims: &CircuitDims) -> u64 {
    let n = 1usize << dims.k;
    let resident = 2 * layout::bases_device_bytes(n);
    let twiddles =
        2 * (layout::twiddle_device_bytes(dims.k) + layout::twiddle_device_bytes(dims.extended_k));
    let msm = layout::msm_device_bytes(n, None);
    let ntt = layout::ntt_device_bytes(dims.extended_k, 1);
    let quotient =
        layout::gates_device_bytes(n, dims.quotient_columns() as usize, GATE_SLOTS_BOUND);
    resident + twiddles + msm.max(ntt).max(quotient)
}

impl Prover {
    /// The memory a proof of `circuit` needs ([`MemoryNeed::estimate`] of its dimensions).
    /// Keygen counts when this appliance does not have the key yet.
    pub fn memory_need(&self, circuit: &ProofCircuit) -> MemoryNeed {
        let (dims, has_key) = self.circuit_dims(circuit);
        MemoryNeed::estimate(&dims, !has_key)
    }

    /// The dimensions of `circuit`, and whether this appliance has its key: from the key's
    /// layout when it does, else from the catalog's sizing of the circuit or an
    /// aggregation's expected layout ([`aggregation_params`]). The first call for a catalog
    /// circuit without keys lays out small copies of it (`CatalogCircuit::shape`, a
    /// fraction of a second).
    pub fn circuit_dims(&self, circuit: &ProofCircuit) -> (CircuitDims, bool) {
        match self.key_store().cached_params(&circuit.name()) {
            Some(params) => (CircuitDims::from_params(&params), true),
            None => (CircuitDims::from_params(&expected_params(circuit)), false),
        }
    }
}

/// The memory of an aggregation (or, with `epoch`, an epoch settlement) of `inputs` proofs
/// whose circuits are not known yet: [`aggregation_params`] at its `k`, keygen included.
pub fn aggregation_need(epoch: bool, inputs: usize) -> MemoryNeed {
    let k = if epoch {
        epoch_k(inputs)
    } else {
        AGGREGATION_K
    };
    MemoryNeed::estimate(
        &CircuitDims::from_params(&aggregation_params(k, inputs)),
        true,
    )
}

/// The layout keygen is expected to choose for `circuit`.
fn expected_params(circuit: &ProofCircuit) -> BaseCircuitParams {
    match circuit {
        ProofCircuit::App(c) => {
            let shape = c.shape();
            BaseCircuitParams {
                k: shape.k as usize,
                num_advice_per_phase: vec![shape.advice_columns],
                num_fixed: 1,
                num_lookup_advice_per_phase: vec![shape.lookup_columns, 0, 0],
                lookup_bits: Some(shape.lookup_bits),
                num_instance_columns: 1,
            }
        }
        ProofCircuit::Aggregate(children) => aggregation_params(AGGREGATION_K, children.len()),
        ProofCircuit::Epoch(children) => {
            aggregation_params(epoch_k(children.len()), children.len())
        }
    }
}

/// The dimensions of an aggregation of `children` proofs at `k` before its key exists
/// (the key's own layout is used once it does): halo2-base lays out a two-proof
/// aggregation at k = 21 in 7 advice columns, 1 lookup column and 1 fixed column
/// (the key made in the tests), and each further pair of inputs adds as many cells again,
/// so columns grow with the inputs at a fixed `k` and stay when `k` grows with them.
pub fn aggregation_params(k: u32, children: usize) -> BaseCircuitParams {
    let pairs = children.div_ceil(2).max(1);
    let rows_per_pair = 1usize << AGGREGATION_K;
    let pairs_per_column_height = ((1usize << k) / rows_per_pair).max(1);
    let scale = pairs.div_ceil(pairs_per_column_height);
    BaseCircuitParams {
        k: k as usize,
        num_advice_per_phase: vec![AGGREGATION_ADVICE * scale],
        num_fixed: 1,
        num_lookup_advice_per_phase: vec![scale, 0, 0],
        lookup_bits: Some(k as usize - 1),
        num_instance_columns: 1,
    }
}

/// Advice columns of a two-proof aggregation at k = 21 (its key's `config_params`).
pub const AGGREGATION_ADVICE: usize = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_follow_the_configuration() {
        let params = aggregation_params(AGGREGATION_K, 2);
        let dims = CircuitDims::from_params(&params);
        assert_eq!(dims.k, 21);
        // 7 advice + 1 lookup advice; halo2-base's gate has degree 4 (extended by 4)
        assert_eq!(dims.advice, 8);
        assert_eq!(dims.lookups, 1);
        assert_eq!(dims.instance, 1);
        assert_eq!(dims.extended_k, 23);
        assert!(dims.permutation_columns >= dims.advice + dims.instance);
        assert_eq!(
            dims.permutation_sets,
            dims.permutation_columns.div_ceil(2),
            "chunks of degree - 2"
        );
    }

    #[test]
    fn the_need_grows_with_rows_and_columns() {
        let base = CircuitDims::from_params(&aggregation_params(20, 2));
        let taller = CircuitDims::from_params(&aggregation_params(21, 2));
        let wider = CircuitDims::from_params(&aggregation_params(21, 4));
        let [a, b, c] = [base, taller, wider].map(|d| MemoryNeed::estimate(&d, false));
        assert!(a.host_bytes < b.host_bytes && b.host_bytes < c.host_bytes);
        assert!(a.gpu_bytes < b.gpu_bytes && b.gpu_bytes <= c.gpu_bytes);
        // twice the rows: about twice the memory
        let ratio = b.host_bytes as f64 / a.host_bytes as f64;
        assert!((1.95..2.0).contains(&ratio), "{ratio}");
        // keygen (its assembly, the permutation's tables) needs more than the proof
        let keygen = MemoryNeed::estimate(&taller, true);
        assert!(keygen.host_bytes > b.host_bytes);
        assert_eq!(keygen.gpu_bytes, b.gpu_bytes);
    }

    #[test]
    fn epochs_keep_their_columns_as_k_grows() {
        let two = aggregation_params(21, 2);
        let four = aggregation_params(22, 4);
        assert_eq!(two.num_advice_per_phase, four.num_advice_per_phase);
        let wide = aggregation_params(21, 4);
        assert_eq!(wide.num_advice_per_phase, vec![2 * AGGREGATION_ADVICE]);
    }
}
