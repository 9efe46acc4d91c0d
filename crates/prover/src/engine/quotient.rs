//! One set's terms of one coset part of the quotient, as one gate program.
//!
//! halo2-axiom evaluates a coset part of `h(X)` in three loops over its rows: the custom
//! gates (its compiled `GraphEvaluator`), the permutation argument's terms, and each lookup's
//! terms, each term folded into the running value with Horner's rule in `y`. Field
//! arithmetic is exact, so the same terms folded in the same order give the same values
//! however they are computed. [`QuotientProgram::new`] writes all three as one
//! [`GateProgram`]: the custom gates' graph as it is, then the permutation and lookup terms
//! spelled out as operations over extra columns (`l_0`, `l_last`, `l_active_row`, the
//! grand products, the permutation polynomials, `beta X` and the lookups' cosets), and one
//! Horner fold of every term. A backend then evaluates the whole part in one pass: on the
//! CPU block by block, on a GPU with one kernel launch.

use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_base::halo2_proofs::{
    accel::{Calculation, Gates, QuotientPart, ValueSource},
    halo2curves::bn256::Fr,
    plonk::Any,
};
use proofmill_accel::gates::{GateProgram, Op, Operand, Step};
use proofmill_accel::AccelError;
use rayon::prelude::*;

// Fixed scalar positions.
const ZERO: u32 = 0;
const ONE: u32 = 1;
const BETA: u32 = 2;
const GAMMA: u32 = 3;
const THETA: u32 = 4;
const Y: u32 = 5;
const CHALLENGES: u32 = 6;

/// A coset part's program with the scalars and the `beta X` column it reads.
pub(super) struct QuotientProgram {
    /// The program.
    pub program: GateProgram,
    /// Its scalars.
    pub scalars: Vec<Fr>,
    /// `beta * ZETA * current_extended_omega * omega^i`, when there is a permutation.
    pub delta: Vec<Fr>,
}

/// Builds the steps, numbering intermediates and rotations as it goes.
struct Builder {
    steps: Vec<Step>,
    next: u32,
    rotations: Vec<i32>,
    scalars: Vec<Fr>,
}

impl Builder {
    fn push(&mut self, op: Op) -> Operand {
        let target = self.next;
        self.next += 1;
        self.steps.push(Step { target, op });
        Operand::Intermediate(target)
    }

    fn rotation(&mut self, rotation: i32) -> u32 {
        match self.rotations.iter().position(|&r| r == rotation) {
            Some(i) => i as u32,
            None => {
                self.rotations.push(rotation);
                self.rotations.len() as u32 - 1
            }
        }
    }

    fn scalar(&mut self, value: Fr) -> Operand {
        self.scalars.push(value);
        Operand::Scalar(self.scalars.len() as u32 - 1)
    }

    fn column(&mut self, column: u32, rotation: i32) -> Operand {
        Operand::Column {
            column,
            rotation: self.rotation(rotation),
        }
    }

    fn add(&mut self, a: Operand, b: Operand) -> Operand {
        self.push(Op::Add(a, b))
    }

    fn sub(&mut self, a: Operand, b: Operand) -> Operand {
        self.push(Op::Sub(a, b))
    }

    fn mul(&mut self, a: Operand, b: Operand) -> Operand {
        self.push(Op::Mul(a, b))
    }

    /// halo2's compiled `graph` inlined: its constants appended to the scalars, its
    /// intermediates and rotations renumbered. `previous` stands for its `PreviousValue`.
    /// Returns the operand holding its result (zero for an empty graph, as halo2 returns).
    fn graph(&mut self, graph: &Gates<'_>, layout: &Layout, previous: Operand) -> Operand {
        let constants = self.scalars.len() as u32;
        self.scalars.extend_from_slice(graph.constants);
        let base = self.next;
        self.next += graph.num_intermediates as u32;
        let rotations: Vec<u32> = graph.rotations.iter().map(|&r| self.rotation(r)).collect();
        let operand = |v: &ValueSource| match *v {
            ValueSource::Constant(i) => Operand::Scalar(constants + i as u32),
            ValueSource::Challenge(i) => Operand::Scalar(CHALLENGES + i as u32),
            ValueSource::Beta() => Operand::Scalar(BETA),
            ValueSource::Gamma() => Operand::Scalar(GAMMA),
            ValueSource::Theta() => Operand::Scalar(THETA),
            ValueSource::Y() => Operand::Scalar(Y),
            ValueSource::Intermediate(t) => Operand::Intermediate(base + t as u32),
            ValueSource::Fixed(c, r) => Operand::Column {
                column: layout.fixed + c as u32,
                rotation: rotations[r],
            },
            ValueSource::Advice(c, r) => Operand::Column {
                column: layout.advice + c as u32,
                rotation: rotations[r],
            },
            ValueSource::Instance(c, r) => Operand::Column {
                column: layout.instance + c as u32,
                rotation: rotations[r],
            },
            ValueSource::PreviousValue() => previous,
        };
        for info in graph.calculations {
            let op = match &info.calculation {
                Calculation::Add(a, b) => Op::Add(operand(a), operand(b)),
                Calculation::Sub(a, b) => Op::Sub(operand(a), operand(b)),
                Calculation::Mul(a, b) => Op::Mul(operand(a), operand(b)),
                Calculation::Square(a) => Op::Square(operand(a)),
                Calculation::Double(a) => Op::Double(operand(a)),
                Calculation::Negate(a) => Op::Negate(operand(a)),
                Calculation::Horner(start, parts, factor) => Op::Horner {
                    start: operand(start),
                    parts: parts.iter().map(operand).collect(),
                    factor: operand(factor),
                },
                Calculation::Store(a) => Op::Store(operand(a)),
            };
            self.steps.push(Step {
                target: base + info.target as u32,
                op,
            });
        }
        match graph.calculations.last() {
            Some(info) => Operand::Intermediate(base + info.target as u32),
            None => Operand::Scalar(ZERO),
        }
    }
}

/// Where each kind of column starts in the program's column list.
struct Layout {
    fixed: u32,
    advice: u32,
    instance: u32,
    l0: u32,
    l_last: u32,
    l_active: u32,
    products: u32,
    sigmas: u32,
    delta: u32,
    lookups: u32,
}

impl Layout {
    fn new(part: &QuotientPart<'_>) -> Self {
        let fixed = 0;
        let advice = fixed + part.data.fixed.len() as u32;
        let instance = advice + part.data.advice.len() as u32;
        let l0 = instance + part.data.instance.len() as u32;
        let products = l0 + 3;
        let sigmas = products + part.permutation_product_cosets.len() as u32;
        let delta = sigmas + part.permutation_cosets.len() as u32;
        let lookups = delta + u32::from(!part.permutation_product_cosets.is_empty());
        Self {
            fixed,
            advice,
            instance,
            l0,
            l_last: l0 + 1,
            l_active: l0 + 2,
            products,
            sigmas,
            delta,
            lookups,
        }
    }
}

impl QuotientProgram {
    /// The program for `part`.
    pub(super) fn new(part: &QuotientPart<'_>) -> Result<Self, AccelError> {
        let layout = Layout::new(part);
        let [beta, gamma, theta, y] = part.data.beta_gamma_theta_y;
        let mut scalars = vec![Fr::ZERO, Fr::ONE, beta, gamma, theta, y];
        scalars.extend_from_slice(part.data.challenges);
        let mut b = Builder {
            steps: Vec::new(),
            next: 0,
            rotations: Vec::new(),
            scalars,
        };
        let gates = b.graph(&part.gates, &layout, Operand::Previous);
        let mut terms = Vec::new();
        let one = Operand::Scalar(ONE);
        let (l0, l_last, l_active) = (
            b.column(layout.l0, 0),
            b.column(layout.l_last, 0),
            b.column(layout.l_active, 0),
        );

        // The permutation argument.
        let sets = part.permutation_product_cosets.len() as u32;
        let mut delta = Vec::new();
        if sets > 0 {
            let z = |b: &mut Builder, set: u32, rotation: i32| {
                b.column(layout.products + set, rotation)
            };
            // l_0(X) (1 - z_0(X))
            let z0 = z(&mut b, 0, 0);
            let t = b.sub(one, z0);
            terms.push(b.mul(t, l0));
            // l_last(X) (z_l(X)^2 - z_l(X))
            let zl = z(&mut b, sets - 1, 0);
            let sq = b.push(Op::Square(zl));
            let t = b.sub(sq, zl);
            terms.push(b.mul(t, l_last));
            // l_0(X) (z_i(X) - z_{i-1}(omega^last X)) for every set but the first
            for set in 1..sets {
                let zi = z(&mut b, set, 0);
                let prev = z(&mut b, set - 1, part.last_rotation);
                let t = b.sub(zi, prev);
                terms.push(b.mul(t, l0));
            }
            // l_active(X) (z_i(omega X) prod (v + beta sigma + gamma)
            //              - z_i(X) prod (v + delta^j beta X + gamma))
            let beta_x = b.column(layout.delta, 0);
            let (beta_op, gamma_op) = (Operand::Scalar(BETA), Operand::Scalar(GAMMA));
            let mut delta_power = Fr::ONE;
            for (set, columns) in part
                .permutation_columns
                .chunks(part.chunk_len.max(1))
                .enumerate()
                .take(sets as usize)
            {
                let first = set * part.chunk_len;
                let mut left = z(&mut b, set as u32, 1);
                let mut right = z(&mut b, set as u32, 0);
                for (j, column) in columns.iter().enumerate() {
                    let v = match column.column_type() {
                        Any::Fixed => layout.fixed,
                        Any::Advice(_) => layout.advice,
                        Any::Instance => layout.instance,
                    } + column.index() as u32;
                    let v = b.column(v, 0);
                    let sigma = b.column(layout.sigmas + (first + j) as u32, 0);
                    let bs = b.mul(beta_op, sigma);
                    let t = b.add(v, bs);
                    let t = b.add(t, gamma_op);
                    left = b.mul(left, t);
                    let d = b.scalar(delta_power);
                    let dx = b.mul(d, beta_x);
                    let t = b.add(v, dx);
                    let t = b.add(t, gamma_op);
                    right = b.mul(right, t);
                    delta_power *= Fr::DELTA;
                }
                let t = b.sub(left, right);
                terms.push(b.mul(t, l_active));
            }
            delta = beta_x_column(part);
        }

        // The lookups.
        for (n, (graph, _)) in part.lookup_gates.iter().zip(part.lookup_cosets).enumerate() {
            let table_value = b.graph(graph, &layout, Operand::Scalar(ZERO));
            let at = layout.lookups + 3 * n as u32;
            let product = b.column(at, 0);
            let product_next = b.column(at, 1);
            let input = b.column(at + 1, 0);
            let input_prev = b.column(at + 1, -1);
            let table = b.column(at + 2, 0);
            let a_minus_s = b.sub(input, table);
            // l_0(X) (1 - z(X))
            let t = b.sub(one, product);
            terms.push(b.mul(t, l0));
            // l_last(X) (z(X)^2 - z(X))
            let sq = b.push(Op::Square(product));
            let t = b.sub(sq, product);
            terms.push(b.mul(t, l_last));
            // l_active(X) (z(omega X) (a'(X) + beta) (s'(X) + gamma) - z(X) table_value)
            let ab = b.add(input, Operand::Scalar(BETA));
            let sg = b.add(table, Operand::Scalar(GAMMA));
            let left = b.mul(product_next, ab);
            let left = b.mul(left, sg);
            let right = b.mul(product, table_value);
            let t = b.sub(left, right);
            terms.push(b.mul(t, l_active));
            // l_0(X) (a'(X) - s'(X))
            terms.push(b.mul(a_minus_s, l0));
            // l_active(X) (a'(X) - s'(X)) (a'(X) - a'(omega^-1 X))
            let d = b.sub(input, input_prev);
            let t = b.mul(a_minus_s, d);
            terms.push(b.mul(t, l_active));
        }

        b.push(Op::Horner {
            start: gates,
            parts: terms,
            factor: Operand::Scalar(Y),
        });
        let program = GateProgram::new(&b.steps, &b.rotations)?;
        Ok(Self {
            program,
            scalars: b.scalars,
            delta,
        })
    }

    /// The columns the program reads, in its layout.
    pub(super) fn columns<'a>(&'a self, part: &'a QuotientPart<'a>) -> Vec<&'a [Fr]> {
        let mut columns: Vec<&[Fr]> = part
            .data
            .fixed
            .iter()
            .chain(part.data.advice)
            .chain(part.data.instance)
            .chain([part.l0, part.l_last, part.l_active_row])
            .chain(part.permutation_product_cosets)
            .chain(part.permutation_cosets)
            .map(|p| &p[..])
            .collect();
        if !part.permutation_product_cosets.is_empty() {
            columns.push(&self.delta);
        }
        columns.extend(part.lookup_cosets.iter().flatten().map(|p| &p[..]));
        columns
    }
}

/// `beta * ZETA * current_extended_omega * omega^i` for every row `i` of the part: the
/// permutation's `beta X`, as halo2 steps it row by row.
fn beta_x_column(part: &QuotientPart<'_>) -> Vec<Fr> {
    let rows = part.l0.len();
    let start = part.delta_start * part.current_extended_omega;
    let mut out = vec![Fr::ZERO; rows];
    const CHUNK: usize = 4096;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut x = start * part.omega.pow_vartime([(c * CHUNK) as u64]);
            for v in chunk {
                *v = x;
                x *= part.omega;
            }
        });
    out
}
