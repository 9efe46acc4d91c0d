//! circomlib's Poseidon over BN254's scalar field, natively and in-circuit.
//!
//! circomlib's `poseidon(inputs)` for `n` inputs (1 to 16) runs the width `t = n + 1`
//! permutation (x^5 S-box, `R_F = 8` full rounds, `R_P` partial rounds from [`PARTIAL_ROUNDS`])
//! on the state `[0, in_1, …, in_n]` (capacity word 0 first, no padding) and outputs
//! `state[0]`. Its round constants and MDS matrix come from the Poseidon reference Grain LFSR
//! generator (`generate_parameters_grain.sage 1 0 254 t 8 R_P p`).
//!
//! halo2-base's [`OptimizedPoseidonSpec::new`] runs that same generator (the Grain LFSR, round
//! constants with rejection sampling, then the first Cauchy MDS matrix), so for the right
//! `(t, R_P)` it yields circomlib's permutation in its optimized form (pre-sparse and sparse
//! matrices, constants folded back through the inverse MDS): the tests check this against
//! circomlib's reference vector and against circomlibjs for every width. The hash itself —
//! state layout, no padding, `state[0]` out — is circomlib's, not halo2-base's sponge (which
//! starts from capacity 2^64, pads, and outputs `state[1]`).

use std::sync::OnceLock;

use halo2_base::{
    gates::GateInstructions,
    halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr},
    poseidon::hasher::spec::OptimizedPoseidonSpec,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};

/// Full rounds, for every width.
pub const FULL_ROUNDS: usize = 8;
/// Partial rounds for widths `t = 2..=17` (index `t - 2`), as circomlib lists them.
pub const PARTIAL_ROUNDS: [usize; 16] = [
    56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68,
];
/// The most inputs circomlib's Poseidon takes.
pub const MAX_INPUTS: usize = 16;

/// Arithmetic the permutation needs, so that one description of it serves both the native
/// computation and the circuit.
trait PermutationOps {
    type Word: Copy;
    fn constant(&mut self, c: Fr) -> Self::Word;
    fn add_const(&mut self, x: Self::Word, c: Fr) -> Self::Word;
    fn pow5_plus(&mut self, x: Self::Word, c: Fr) -> Self::Word;
    fn inner_product(&mut self, xs: &[Self::Word], cs: &[Fr]) -> Self::Word;
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
    fn pow5_plus(&mut self, x: Fr, c: Fr) -> Fr {
        x.square().square() * x + c
    }
    fn inner_product(&mut self, xs: &[Fr], cs: &[Fr]) -> Fr {
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
    fn pow5_plus(&mut self, x: Self::Word, c: Fr) -> Self::Word {
        let x2 = self.gate.mul(self.ctx, x, x);
        let x4 = self.gate.mul(self.ctx, x2, x2);
        self.gate.mul_add(self.ctx, x, x4, Constant(c))
    }
    fn inner_product(&mut self, xs: &[Self::Word], cs: &[Fr]) -> Self::Word {
        self.gate.inner_product(
            self.ctx,
            xs.iter().copied().map(Existing),
            cs.iter().map(|c| Constant(*c)),
        )
    }
    fn mul_add_const(&mut self, a: Self::Word, c: Fr, b: Self::Word) -> Self::Word {
        self.gate.mul_add(self.ctx, a, Constant(c), b)
    }
}

/// circomlib's hash of `inputs.len() == RATE == T - 1` words: the permutation of
/// `[0, inputs…]` in halo2-base's optimized round structure, then `state[0]`.
fn hash_with<O: PermutationOps, const T: usize, const RATE: usize>(
    ops: &mut O,
    spec: &OptimizedPoseidonSpec<Fr, T, RATE>,
    inputs: &[O::Word],
) -> O::Word {
    debug_assert_eq!(inputs.len(), RATE);
    let r_f = spec.r_f() / 2;
    let mds = spec.mds_matrices().mds().as_ref();
    let pre_sparse_mds = spec.mds_matrices().pre_sparse_mds().as_ref();
    let sparse = spec.mds_matrices().sparse_matrices();
    let start = spec.constants().start();

    // The state [0, inputs…] with the first round's constants added.
    let pre = &start[0];
    let mut state: [O::Word; T] = std::array::from_fn(|i| match i {
        0 => ops.constant(pre[0]),
        _ => ops.add_const(inputs[i - 1], pre[i]),
    });

    let full_round =
        |ops: &mut O, state: &mut [O::Word; T], constants: &[Fr; T], m: &[[Fr; T]; T]| {
            for (x, c) in state.iter_mut().zip(constants) {
                *x = ops.pow5_plus(*x, *c);
            }
            let next: [O::Word; T] = std::array::from_fn(|row| ops.inner_product(state, &m[row]));
            *state = next;
        };

    for constants in start.iter().skip(1).take(r_f - 1) {
        full_round(ops, &mut state, constants, mds);
    }
    let last = start.last().expect("a Poseidon spec has full rounds");
    full_round(ops, &mut state, last, pre_sparse_mds);

    for (constant, sparse_mds) in spec.constants().partial().iter().zip(sparse.iter()) {
        state[0] = ops.pow5_plus(state[0], *constant);
        let s0 = state[0];
        let first = ops.inner_product(&state, sparse_mds.row());
        for (i, coeff) in sparse_mds.col_hat().iter().enumerate() {
            state[i + 1] = ops.mul_add_const(s0, *coeff, state[i + 1]);
        }
        state[0] = first;
    }

    for constants in spec.constants().end() {
        full_round(ops, &mut state, constants, mds);
    }
    full_round(ops, &mut state, &[Fr::ZERO; T], mds);
    state[0]
}

/// Defines, for each arity, a once-per-process spec and the dispatch from an input count.
macro_rules! widths {
    ($(($n:literal, $t:literal, $r_p:literal, $spec:ident)),* $(,)?) => {
        $(
            fn $spec() -> &'static OptimizedPoseidonSpec<Fr, $t, $n> {
                static SPEC: OnceLock<OptimizedPoseidonSpec<Fr, $t, $n>> = OnceLock::new();
                SPEC.get_or_init(OptimizedPoseidonSpec::new::<FULL_ROUNDS, $r_p, 0>)
            }
        )*

        fn dispatch<O: PermutationOps>(ops: &mut O, inputs: &[O::Word]) -> O::Word {
            match inputs.len() {
                $($n => hash_with(ops, $spec(), inputs),)*
                n => panic!("circomlib's Poseidon takes 1 to {MAX_INPUTS} inputs, not {n}"),
            }
        }
    };
}

widths!(
    (1, 2, 56, spec_t2),
    (2, 3, 57, spec_t3),
    (3, 4, 56, spec_t4),
    (4, 5, 60, spec_t5),
    (5, 6, 60, spec_t6),
    (6, 7, 63, spec_t7),
    (7, 8, 64, spec_t8),
    (8, 9, 63, spec_t9),
    (9, 10, 60, spec_t10),
    (10, 11, 66, spec_t11),
    (11, 12, 60, spec_t12),
    (12, 13, 65, spec_t13),
    (13, 14, 70, spec_t14),
    (14, 15, 60, spec_t15),
    (15, 16, 64, spec_t16),
    (16, 17, 68, spec_t17),
);

/// circomlib's `poseidon(inputs)`, natively.
///
/// # Panics
/// When `inputs` has no element or more than [`MAX_INPUTS`]: arities are fixed by the code
/// that calls this, never by input data.
pub fn hash(inputs: &[Fr]) -> Fr {
    dispatch(&mut Native, inputs)
}

/// In-circuit [`hash`]: constrains and returns circomlib's `poseidon(inputs)`.
///
/// # Panics
/// As [`hash`], on an arity circomlib does not define.
pub fn hash_gadget(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    inputs: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    dispatch(&mut InCircuit { ctx, gate }, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_base::gates::{circuit::builder::BaseCircuitBuilder, GateChip};

    use crate::field;

    #[test]
    fn reference_vector_of_circomlib() {
        // circomlib's poseidon([1, 2]) (the reference permutation of [0, 1, 2], output state[0]).
        let expected =
            field::from_hex("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a")
                .expect("valid hex");
        assert_eq!(hash(&[Fr::from(1), Fr::from(2)]), expected);
    }

    #[test]
    fn gadget_matches_native_for_every_width() {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false);
        let gate = GateChip::<Fr>::default();
        let ctx = builder.main(0);
        for n in 1..=MAX_INPUTS {
            let inputs: Vec<Fr> = (0..n as u64).map(|i| Fr::from(i * 7919 + 3)).collect();
            let assigned = ctx.assign_witnesses(inputs.clone());
            let out = hash_gadget(ctx, &gate, &assigned);
            assert_eq!(*out.value(), hash(&inputs), "arity {n}");
        }
    }
}
