//! Small constraint helpers the circuits share: conditions that hold only in the live (real,
//! not padding) slots of a batch.

use halo2_base::{
    gates::GateInstructions, halo2_proofs::arithmetic::Field, halo2_proofs::halo2curves::bn256::Fr,
    AssignedValue, Context,
};

/// Constrains `value == 0` whenever `condition` (a bit) is 1.
pub fn assert_zero_when(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    value: AssignedValue<Fr>,
    condition: AssignedValue<Fr>,
) {
    let gated = gate.mul(ctx, value, condition);
    gate.assert_is_const(ctx, &gated, &Fr::ZERO);
}

/// Constrains `a == b` whenever `live` (a bit) is 1.
pub fn equal_if_live(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    a: AssignedValue<Fr>,
    b: AssignedValue<Fr>,
    live: AssignedValue<Fr>,
) {
    let diff = gate.sub(ctx, a, b);
    assert_zero_when(ctx, gate, diff, live);
}
