//! BN254 Poseidon (t = 3, rate 2, R_F = 8, R_P = 57), natively and in-circuit, with the same
//! round constants and optimized MDS matrices as halo2-base's `PoseidonHasher`.
//!
//! Two functions are built on the permutation:
//! - [`hash`]: the halo2-base / snark-verifier sponge over a fixed-length input (leaves, the
//!   batch commitment chain). Bit-identical to `PoseidonHasher::hash_fix_len_array`.
//! - [`compress`]: a 2-to-1 compression for Merkle nodes — one permutation of
//!   `[NODE_DOMAIN, left, right]`, taking the second state word. The sponge would spend two
//!   permutations on two inputs (it pads a full block with an extra permutation); a fixed-arity
//!   Merkle tree does not need that padding, so nodes cost half as many cells. The distinct
//!   capacity value separates nodes from sponge hashes.
//!
//! This module owns only the hash; it knows nothing of accounts or trees.

use std::sync::OnceLock;

use halo2_base::{
    gates::GateInstructions,
    halo2_proofs::arithmetic::Field,
    halo2_proofs::halo2curves::bn256::Fr,
    poseidon::hasher::spec::OptimizedPoseidonSpec,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};

/// Width of the permutation.
pub const T: usize = 3;
/// Absorption rate.
pub const RATE: usize = 2;
/// Full rounds.
pub const R_F: usize = 8;
/// Partial rounds.
pub const R_P: usize = 57;

/// Capacity word of the sponge (2^64, as in halo2-base: Section 4.2 of the Poseidon paper).
fn sponge_capacity() -> Fr {
    Fr::from_raw([0, 1, 0, 0])
}

/// Capacity word of the Merkle-node compression: distinct from the sponge's.
fn node_capacity() -> Fr {
    Fr::from_raw([1, 1, 0, 0])
}

/// The shared Poseidon specification (its matrices take a while to derive, so once per process).
pub fn spec() -> &'static OptimizedPoseidonSpec<Fr, T, RATE> {
    static SPEC: OnceLock<OptimizedPoseidonSpec<Fr, T, RATE>> = OnceLock::new();
    SPEC.get_or_init(OptimizedPoseidonSpec::new::<R_F, R_P, 0>)
}

/// Arithmetic the permutation needs, so that one description of it serves both the native
/// computation and the circuit.
trait PermutationOps {
    type Word: Copy;
    fn constant(&mut self, c: Fr) -> Self::Word;
    fn add_const(&mut self, x: Self::Word, c: Fr) -> Self::Word;
    fn add3(&mut self, x: Self::Word, y: Self::Word, c: Fr) -> Self::Word;
    fn pow5_plus(&mut self, x: Self::Word, c: Fr) -> Self::Word;
    fn inner_product(&mut self, xs: &[Self::Word; T], cs: &[Fr; T]) -> Self::Word;
    fn mul_add_const(&mut self, a: Self::Word, c: Fr, b: Self::Word) -> Self::Word;
}

struct Native;

impl PermutationOps for Native {
    type Word = Fr;
    fn constant(&mut self, c: Fr) -> Fr {
        c
    }
    fn add_const(&mut self, x: Fr, c: Fr) -> Fr {
        x + c
    }
    fn add3(&mut self, x: Fr, y: Fr, c: Fr) -> Fr {
        x + y + c
    }
    fn pow5_plus(&mut self, x: Fr, c: Fr) -> Fr {
        let x2 = x.square();
        x2.square() * x + c
    }
    fn inner_product(&mut self, xs: &[Fr; T], cs: &[Fr; T]) -> Fr {
        xs.iter().zip(cs).map(|(x, c)| *x * c).sum()
    }
    fn mul_add_const(&mut self, a: Fr, c: Fr, b: Fr) -> Fr {
        a * c + b
    }
}

struct InCircuit<'a, G: GateInstructions<Fr>> {
    ctx: &'a mut Context<Fr>,
    gate: &'a G,
}

impl<G: GateInstructions<Fr>> PermutationOps for InCircuit<'_, G> {
    type Word = AssignedValue<Fr>;
    fn constant(&mut self, c: Fr) -> Self::Word {
        self.ctx.load_constant(c)
    }
    fn add_const(&mut self, x: Self::Word, c: Fr) -> Self::Word {
        self.gate.add(self.ctx, x, Constant(c))
    }
    fn add3(&mut self, x: Self::Word, y: Self::Word, c: Fr) -> Self::Word {
        self.gate
            .sum(self.ctx, [Existing(x), Existing(y), Constant(c)])
    }
    fn pow5_plus(&mut self, x: Self::Word, c: Fr) -> Self::Word {
        let x2 = self.gate.mul(self.ctx, x, x);
        let x4 = self.gate.mul(self.ctx, x2, x2);
        self.gate.mul_add(self.ctx, x, x4, Constant(c))
    }
    fn inner_product(&mut self, xs: &[Self::Word; T], cs: &[Fr; T]) -> Self::Word {
        self.gate.inner_product(
            self.ctx,
            xs.iter().copied(),
            cs.iter().map(|c| Constant(*c)),
        )
    }
    fn mul_add_const(&mut self, a: Self::Word, c: Fr, b: Self::Word) -> Self::Word {
        self.gate.mul_add(self.ctx, a, Constant(c), b)
    }
}

/// Absorbs `inputs` (at most `RATE` words) into `state` and applies the permutation: the
/// optimized round structure (pre-sparse and sparse MDS matrices) of halo2-base's
/// `PoseidonState::permutation`. When fewer than `RATE` inputs are given, a single 1 pads them.
fn permute<O: PermutationOps>(ops: &mut O, state: &mut [O::Word; T], inputs: &[O::Word]) {
    debug_assert!(inputs.len() <= RATE);
    let spec = spec();
    let r_f = spec.r_f() / 2;
    let mds = spec.mds_matrices().mds().as_ref();
    let pre_sparse_mds = spec.mds_matrices().pre_sparse_mds().as_ref();
    let sparse = spec.mds_matrices().sparse_matrices();
    let start = spec.constants().start();

    // Absorb with the first round's constants folded in.
    let pre = &start[0];
    state[0] = ops.add_const(state[0], pre[0]);
    for i in 1..T {
        state[i] = match inputs.get(i - 1) {
            Some(input) => ops.add3(state[i], *input, pre[i]),
            None if i == inputs.len() + 1 => ops.add_const(state[i], Fr::ONE + pre[i]),
            None => ops.add_const(state[i], pre[i]),
        };
    }

    let full_round =
        |ops: &mut O, state: &mut [O::Word; T], constants: &[Fr; T], m: &[[Fr; T]; T]| {
            for (x, c) in state.iter_mut().zip(constants) {
                *x = ops.pow5_plus(*x, *c);
            }
            let next: [O::Word; T] = std::array::from_fn(|row| ops.inner_product(state, &m[row]));
            *state = next;
        };

    for constants in start.iter().skip(1).take(r_f - 1) {
        full_round(ops, state, constants, mds);
    }
    let last = start.last().expect("Poseidon spec has full rounds");
    full_round(ops, state, last, pre_sparse_mds);

    for (constant, sparse_mds) in spec.constants().partial().iter().zip(sparse.iter()) {
        state[0] = ops.pow5_plus(state[0], *constant);
        let s0 = state[0];
        let first = ops.inner_product(state, sparse_mds.row());
        for (i, coeff) in sparse_mds.col_hat().iter().enumerate() {
            state[i + 1] = ops.mul_add_const(s0, *coeff, state[i + 1]);
        }
        state[0] = first;
    }

    for constants in spec.constants().end() {
        full_round(ops, state, constants, mds);
    }
    full_round(ops, state, &[Fr::ZERO; T], mds);
}

fn sponge<O: PermutationOps>(ops: &mut O, inputs: &[O::Word]) -> O::Word {
    let cap = ops.constant(sponge_capacity());
    let zero = ops.constant(Fr::ZERO);
    let mut state = [cap, zero, zero];
    for chunk in inputs.chunks(RATE) {
        permute(ops, &mut state, chunk);
    }
    if inputs.len() % RATE == 0 {
        permute(ops, &mut state, &[]);
    }
    state[1]
}

fn compress_with<O: PermutationOps>(ops: &mut O, left: O::Word, right: O::Word) -> O::Word {
    let cap = ops.constant(node_capacity());
    let zero = ops.constant(Fr::ZERO);
    let mut state = [cap, zero, zero];
    permute(ops, &mut state, &[left, right]);
    state[1]
}

/// The Poseidon sponge hash of a fixed-length input (halo2-base's `hash_fix_len_array`).
pub fn hash(inputs: &[Fr]) -> Fr {
    sponge(&mut Native, inputs)
}

/// The Merkle-node compression of two children.
pub fn compress(left: Fr, right: Fr) -> Fr {
    compress_with(&mut Native, left, right)
}

/// In-circuit [`hash`].
pub fn hash_gadget(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    inputs: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    sponge(&mut InCircuit { ctx, gate }, inputs)
}

/// In-circuit [`compress`].
pub fn compress_gadget(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    left: AssignedValue<Fr>,
    right: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    compress_with(&mut InCircuit { ctx, gate }, left, right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::gates::{circuit::builder::BaseCircuitBuilder, GateChip};
    use halo2_base::poseidon::hasher::PoseidonHasher;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use snark_verifier_sdk::{snark_verifier::util::hash::Poseidon, NativeLoader};

    fn random(n: usize, seed: u64) -> Vec<Fr> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| <Fr as halo2_base::halo2_proofs::arithmetic::Field>::random(&mut rng))
            .collect()
    }

    #[test]
    fn native_sponge_matches_snark_verifier_and_halo2_base() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false);
        let gate = GateChip::<Fr>::default();
        let mut hasher = PoseidonHasher::<Fr, T, RATE>::new(spec().clone());
        hasher.initialize_consts(builder.main(0), &gate);
        for len in 0..7 {
            let inputs = random(len, len as u64);
            let ours = hash(&inputs);

            let mut reference =
                Poseidon::<Fr, Fr, T, RATE>::from_spec(&NativeLoader, spec().clone());
            reference.update(&inputs);
            assert_eq!(
                ours,
                reference.squeeze(),
                "snark-verifier sponge, len {len}"
            );

            let ctx = builder.main(0);
            let assigned = ctx.assign_witnesses(inputs.clone());
            let stock = hasher.hash_fix_len_array(ctx, &gate, &assigned);
            assert_eq!(
                ours,
                *stock.value(),
                "halo2-base hash_fix_len_array, len {len}"
            );
            let gadget = hash_gadget(ctx, &gate, &assigned);
            assert_eq!(ours, *gadget.value(), "our gadget, len {len}");
        }
    }

    #[test]
    fn compression_gadget_matches_native_and_differs_from_sponge() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false);
        let gate = GateChip::<Fr>::default();
        let v = random(2, 99);
        let ctx = builder.main(0);
        let a = ctx.load_witness(v[0]);
        let b = ctx.load_witness(v[1]);
        let out = compress_gadget(ctx, &gate, a, b);
        assert_eq!(*out.value(), compress(v[0], v[1]));
        assert_ne!(compress(v[0], v[1]), hash(&v));
        assert_ne!(compress(v[0], v[1]), compress(v[1], v[0]));
    }
}
