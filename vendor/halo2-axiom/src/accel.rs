//! proofmill patch: an accelerator hook for the prover's heavy primitives.
//!
//! halo2-axiom computes every KZG commitment through [`crate::arithmetic::best_multiexp`] and
//! every polynomial FFT through [`crate::arithmetic::best_fft`]. With an [`Accelerator`]
//! installed, those calls on BN254 (`G1Affine` bases, `Fr` FFTs) are offered to it first; it
//! may decline (returning `None` / `false`), and then the stock code runs. An accelerator must
//! compute exactly what the stock code computes: proofs are byte-identical either way.
//!
//! halo2's prover has no context to carry an accelerator, so the hook is process-wide, with a
//! per-thread override: a thread that has its own accelerator ([`set_thread_accelerator`])
//! uses it instead. A rayon pool whose threads all carry one device's accelerator proves on
//! that device (everything halo2 runs inside `pool.install` stays on the pool's threads), so
//! several devices can prove at once in one process.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};

use halo2curves::bn256::{Fr, G1Affine, G1};

/// Something that can compute BN254 MSMs, Fr FFTs and the quotient's coset parts faster than
/// the stock code.
pub trait Accelerator: Send + Sync + std::fmt::Debug {
    /// `sum_i coeffs[i] * bases[i]` (same lengths), or `None` to let the stock code do it.
    fn msm(&self, coeffs: &[Fr], bases: &[G1Affine]) -> Option<G1>;

    /// halo2's in-place radix-2 FFT of `a` (length `2^log_n`) with the primitive root
    /// `omega`, without any scaling (`inverse` only says that `omega` is an inverse root).
    /// Returns `false` to let the stock code do it.
    fn fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, inverse: bool) -> bool;

    /// `EvaluationDomain::coeff_to_extended_part`: `a[i] *= shift^i`, then the forward FFT
    /// with `omega` (a coset FFT). Returns `false` to let the stock code do it (which then
    /// offers the FFT alone through [`fft`](Self::fft)); the default does that.
    fn coset_fft(&self, a: &mut [Fr], omega: Fr, log_n: u32, shift: Fr) -> bool {
        let _ = (a, omega, log_n, shift);
        false
    }

    /// One set's terms of one coset part of the quotient (`Evaluator::evaluate_h`): for
    /// every row `idx` of `values`, fold the custom gates, then the permutation argument's
    /// terms, then each lookup's terms into `values[idx]` with Horner's rule in `y`, exactly
    /// as [`stock_quotient_part`] does. Returns `false` to let the stock code do it; the
    /// default does.
    fn quotient_part(&self, part: &QuotientPart<'_>, values: &mut [Fr]) -> bool {
        let _ = (part, values);
        false
    }

    /// `EvaluationDomain::ifft`: the inverse FFT of `a` with the inverse root `omega_inv`,
    /// then every element multiplied by `divisor`. Returns `false` to let the stock code do
    /// it. The default is [`fft`](Self::fft) followed by the multiplication; an accelerator
    /// whose inverse transform scales anyway can fold the two.
    fn ifft(&self, a: &mut [Fr], omega_inv: Fr, log_n: u32, divisor: Fr) -> bool {
        if !self.fft(a, omega_inv, log_n, true) {
            return false;
        }
        crate::arithmetic::parallelize(a, |a, _| {
            for a in a {
                *a *= &divisor;
            }
        });
        true
    }
}

pub use crate::plonk::evaluation::{Calculation, CalculationInfo, ValueSource};
use crate::plonk::evaluation::{Evaluator, GraphEvaluator, PartData};
use crate::plonk::{Any, Column};
use crate::poly::{LagrangeCoeff, Polynomial};

/// The quotient's custom gates as halo2 compiled them (its `GraphEvaluator`): the steps run
/// in order at every row, each writing `intermediates[target]`; the result is the last
/// step's. `ValueSource::Constant(i)` reads `constants[i]`; a column query at rotation index
/// `r` reads row `idx + rotations[r]` (mod the part's length).
#[derive(Clone, Copy, Debug)]
pub struct Gates<'a> {
    /// Constants the steps read.
    pub constants: &'a [Fr],
    /// Rotations the column queries use.
    pub rotations: &'a [i32],
    /// The steps.
    pub calculations: &'a [CalculationInfo],
    /// How many intermediates the steps write.
    pub num_intermediates: usize,
}

/// What the custom gates read at one coset part: the fixed, advice and instance columns
/// evaluated there, the challenges, and beta, gamma, theta and y.
#[derive(Clone, Copy, Debug)]
pub struct GateData<'a> {
    /// Fixed columns.
    pub fixed: &'a [Polynomial<Fr, LagrangeCoeff>],
    /// Advice columns.
    pub advice: &'a [Polynomial<Fr, LagrangeCoeff>],
    /// Instance columns.
    pub instance: &'a [Polynomial<Fr, LagrangeCoeff>],
    /// The challenges.
    pub challenges: &'a [Fr],
    /// beta, gamma, theta and y.
    pub beta_gamma_theta_y: [Fr; 4],
}

/// One lookup's compression of its inputs and table (`(a + beta)(s + gamma)` of the
/// compressed expressions), compiled like the custom gates: the graph's result is the
/// lookup's `table_value`.
pub type LookupGates<'a> = Gates<'a>;

/// What one set's terms of one coset part of the quotient read: the custom gates and their
/// data, `l_0`, `l_last` and `l_active_row` there, the permutation argument's cosets and
/// shape, and each lookup's compression and cosets.
#[derive(Clone, Debug)]
pub struct QuotientPart<'a> {
    /// The custom gates (folded into the running values first).
    pub gates: Gates<'a>,
    /// The columns, challenges and beta, gamma, theta, y.
    pub data: GateData<'a>,
    /// `l_0` on this part.
    pub l0: &'a Polynomial<Fr, LagrangeCoeff>,
    /// `l_last` on this part.
    pub l_last: &'a Polynomial<Fr, LagrangeCoeff>,
    /// `l_active_row` (`1 - (l_last + l_blind)`) on this part.
    pub l_active_row: &'a Polynomial<Fr, LagrangeCoeff>,
    /// The permutation's grand products `z_i`, one per set (none: no permutation).
    pub permutation_product_cosets: &'a [Polynomial<Fr, LagrangeCoeff>],
    /// The permutation polynomials `sigma_j`, one per permuted column.
    pub permutation_cosets: &'a [Polynomial<Fr, LagrangeCoeff>],
    /// The permuted columns, in order; set `i` covers `chunk_len` of them.
    pub permutation_columns: &'a [Column<Any>],
    /// Columns per permutation set.
    pub chunk_len: usize,
    /// The rotation of the last usable row, `-(blinding_factors + 1)`.
    pub last_rotation: i32,
    /// `beta * ZETA`: with `current_extended_omega * omega^idx` it makes `beta X` at row
    /// `idx` of this part.
    pub delta_start: Fr,
    /// The part's coset shift (`extended_omega^part`).
    pub current_extended_omega: Fr,
    /// The domain's `omega`.
    pub omega: Fr,
    /// Each lookup's compression, in the order of `lookup_cosets`.
    pub lookup_gates: Vec<LookupGates<'a>>,
    /// Each lookup's product, permuted input and permuted table cosets.
    pub lookup_cosets: &'a [[Polynomial<Fr, LagrangeCoeff>; 3]],
}

fn graph(gates: &Gates<'_>) -> GraphEvaluator<G1Affine> {
    GraphEvaluator {
        constants: gates.constants.to_vec(),
        rotations: gates.rotations.to_vec(),
        calculations: gates.calculations.to_vec(),
        num_intermediates: gates.num_intermediates,
    }
}

/// halo2's own code for one set's terms of one coset part (what `evaluate_h` runs when the
/// accelerator declines), so that an accelerator can be checked against it.
pub fn stock_quotient_part(part: &QuotientPart<'_>, values: &mut [Fr]) {
    let evaluator = Evaluator::<G1Affine> {
        custom_gates: graph(&part.gates),
        lookups: part.lookup_gates.iter().map(graph).collect(),
    };
    let data = PartData {
        fixed: part.data.fixed,
        advice: part.data.advice,
        instance: part.data.instance,
        challenges: part.data.challenges,
        beta_gamma_theta_y: part.data.beta_gamma_theta_y,
        l0: part.l0,
        l_last: part.l_last,
        l_active_row: part.l_active_row,
        permutation_product_cosets: part.permutation_product_cosets,
        permutation_cosets: part.permutation_cosets,
        permutation_columns: part.permutation_columns,
        chunk_len: part.chunk_len,
        last_rotation: part.last_rotation,
        delta_start: part.delta_start,
        current_extended_omega: part.current_extended_omega,
        omega: part.omega,
        lookup_cosets: part.lookup_cosets,
    };
    evaluator.evaluate_part(&data, values);
}

fn gates_of<C: crate::arithmetic::CurveAffine>(graph: &GraphEvaluator<C>) -> Option<Gates<'_>> {
    Some(Gates {
        constants: same_slice::<C::ScalarExt, Fr>(&graph.constants)?,
        rotations: &graph.rotations,
        calculations: &graph.calculations,
        num_intermediates: graph.num_intermediates,
    })
}

fn poly<F: 'static>(p: &Polynomial<F, LagrangeCoeff>) -> Option<&Polynomial<Fr, LagrangeCoeff>> {
    same_slice::<_, Polynomial<Fr, LagrangeCoeff>>(std::slice::from_ref(p)).map(|s| &s[0])
}

/// Offers one set's terms of one coset part to the installed accelerator; `true` when it
/// computed them.
pub(crate) fn offer_quotient_part<C: crate::arithmetic::CurveAffine>(
    evaluator: &Evaluator<C>,
    part: &PartData<'_, C::ScalarExt>,
    values: &mut [C::ScalarExt],
) -> bool {
    let Some(accelerator) = accelerator() else {
        return false;
    };
    let Some(values) = same_slice_mut::<C::ScalarExt, Fr>(values) else {
        return false;
    };
    let converted = (|| {
        let [beta, gamma, theta, y] = part.beta_gamma_theta_y.map(same_value::<_, Fr>);
        Some(QuotientPart {
            gates: gates_of(&evaluator.custom_gates)?,
            data: GateData {
                fixed: same_slice(part.fixed)?,
                advice: same_slice(part.advice)?,
                instance: same_slice(part.instance)?,
                challenges: same_slice(part.challenges)?,
                beta_gamma_theta_y: [beta?, gamma?, theta?, y?],
            },
            l0: poly(part.l0)?,
            l_last: poly(part.l_last)?,
            l_active_row: poly(part.l_active_row)?,
            permutation_product_cosets: same_slice(part.permutation_product_cosets)?,
            permutation_cosets: same_slice(part.permutation_cosets)?,
            permutation_columns: part.permutation_columns,
            chunk_len: part.chunk_len,
            last_rotation: part.last_rotation,
            delta_start: same_value(part.delta_start)?,
            current_extended_omega: same_value(part.current_extended_omega)?,
            omega: same_value(part.omega)?,
            lookup_gates: evaluator
                .lookups
                .iter()
                .map(gates_of)
                .collect::<Option<Vec<_>>>()?,
            lookup_cosets: same_slice(part.lookup_cosets)?,
        })
    })();
    match converted {
        Some(part) => accelerator.quotient_part(&part, values),
        None => false,
    }
}

static ACCELERATOR: RwLock<Option<Arc<dyn Accelerator>>> = RwLock::new(None);

thread_local! {
    static THREAD_ACCELERATOR: RefCell<Option<Arc<dyn Accelerator>>> = const { RefCell::new(None) };
}

/// Gives the calling thread its own accelerator, used instead of the process-wide one (`None`
/// removes the override); returns the previous override.
pub fn set_thread_accelerator(
    accelerator: Option<Arc<dyn Accelerator>>,
) -> Option<Arc<dyn Accelerator>> {
    THREAD_ACCELERATOR.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), accelerator))
}

/// Installs `accelerator` for the whole process (`None` restores the stock code); returns the
/// previous one.
pub fn set_accelerator(
    accelerator: Option<Arc<dyn Accelerator>>,
) -> Option<Arc<dyn Accelerator>> {
    let mut slot = ACCELERATOR
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::replace(&mut *slot, accelerator)
}

/// The accelerator for the calling thread: its own, else the process-wide one, if any.
pub fn accelerator() -> Option<Arc<dyn Accelerator>> {
    if let Some(own) = THREAD_ACCELERATOR.with(|slot| slot.borrow().clone()) {
        return Some(own);
    }
    ACCELERATOR
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// `Some(&[To])` when `From` and `To` are the same type.
pub(crate) fn same_slice<From: 'static, To: 'static>(s: &[From]) -> Option<&[To]> {
    if std::any::TypeId::of::<From>() == std::any::TypeId::of::<To>() {
        // SAFETY: the types are identical, so the layout and validity are too.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<To>(), s.len()) })
    } else {
        None
    }
}

/// `Some(&mut [To])` when `From` and `To` are the same type.
pub(crate) fn same_slice_mut<From: 'static, To: 'static>(s: &mut [From]) -> Option<&mut [To]> {
    if std::any::TypeId::of::<From>() == std::any::TypeId::of::<To>() {
        // SAFETY: the types are identical, so the layout and validity are too.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<To>(), s.len()) })
    } else {
        None
    }
}

/// `Some(value as To)` when `From` and `To` are the same type.
pub(crate) fn same_value<From: 'static + Copy, To: 'static + Copy>(value: From) -> Option<To> {
    if std::any::TypeId::of::<From>() == std::any::TypeId::of::<To>() {
        // SAFETY: the types are identical.
        Some(unsafe { std::mem::transmute_copy::<From, To>(&value) })
    } else {
        None
    }
}

/// Offers `EvaluationDomain::ifft` (inverse FFT, then `*= divisor`) to the installed
/// accelerator; `true` when it did both.
pub(crate) fn offer_ifft<Scalar: 'static + Copy, G: 'static>(
    a: &mut [G],
    omega_inv: Scalar,
    log_n: u32,
    divisor: Scalar,
) -> bool {
    let Some(accelerator) = accelerator() else {
        return false;
    };
    match (
        same_slice_mut::<G, Fr>(a),
        same_value::<Scalar, Fr>(omega_inv),
        same_value::<Scalar, Fr>(divisor),
    ) {
        (Some(values), Some(omega_inv), Some(divisor)) => {
            accelerator.ifft(values, omega_inv, log_n, divisor)
        }
        _ => false,
    }
}

/// Offers a coset FFT (`a[i] *= shift^i`, then the FFT) to the installed accelerator;
/// `true` when it did both.
pub(crate) fn offer_coset_fft<Scalar: 'static + Copy, G: 'static>(
    a: &mut [G],
    omega: Scalar,
    log_n: u32,
    shift: Scalar,
) -> bool {
    let Some(accelerator) = accelerator() else {
        return false;
    };
    match (
        same_slice_mut::<G, Fr>(a),
        same_value::<Scalar, Fr>(omega),
        same_value::<Scalar, Fr>(shift),
    ) {
        (Some(values), Some(omega), Some(shift)) => {
            accelerator.coset_fft(values, omega, log_n, shift)
        }
        _ => false,
    }
}

/// Offers an FFT to the installed accelerator; `true` when it did it.
pub(crate) fn offer_fft<Scalar: 'static + Copy, G: 'static>(
    a: &mut [G],
    omega: Scalar,
    log_n: u32,
    inverse: bool,
) -> bool {
    let Some(accelerator) = accelerator() else {
        return false;
    };
    match (same_slice_mut::<G, Fr>(a), same_value::<Scalar, Fr>(omega)) {
        (Some(values), Some(omega)) => accelerator.fft(values, omega, log_n, inverse),
        _ => false,
    }
}
