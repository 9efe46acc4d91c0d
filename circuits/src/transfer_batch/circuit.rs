//! The constraints of `transfer_batch`, written on halo2-base's virtual gate and range chips.

use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr},
    AssignedValue, Context,
};

use super::{BatchWitness, LeafWitness, VALUE_BITS};
use crate::poseidon::{compress_gadget, hash_gadget};

use crate::gadgets::{assert_zero_when, equal_if_live};

/// The root reached from `leaf` along `path`, turning at each level by the index bit.
fn merkle_root(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    leaf: AssignedValue<Fr>,
    index_bits: &[AssignedValue<Fr>],
    path: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    index_bits
        .iter()
        .zip(path)
        .fold(leaf, |cur, (bit, sibling)| {
            let left = gate.select(ctx, *sibling, cur, *bit);
            let right = gate.select(ctx, cur, *sibling, *bit);
            compress_gadget(ctx, gate, left, right)
        })
}

struct AssignedLeaf {
    balance: AssignedValue<Fr>,
    nonce: AssignedValue<Fr>,
    empty: AssignedValue<Fr>,
    path: Vec<AssignedValue<Fr>>,
}

fn load_leaf(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, leaf: &LeafWitness) -> AssignedLeaf {
    let balance = ctx.load_witness(Fr::from(leaf.balance));
    let nonce = ctx.load_witness(Fr::from(leaf.nonce));
    range.range_check(ctx, balance, VALUE_BITS);
    range.range_check(ctx, nonce, VALUE_BITS);
    let empty = ctx.load_witness(Fr::from(u64::from(leaf.empty)));
    range.gate().assert_bit(ctx, empty);
    let path = ctx.assign_witnesses(leaf.path.iter().copied());
    AssignedLeaf {
        balance,
        nonce,
        empty,
        path,
    }
}

/// Lays out the whole batch in `builder` and registers the public inputs
/// `[old_root, new_root, batch_commitment]`. Returns their values.
pub(crate) fn synthesize(builder: &mut BaseCircuitBuilder<Fr>, witness: &BatchWitness) -> Vec<Fr> {
    let depth = witness.config.depth;
    let range = builder.range_chip();
    let gate = range.gate();
    let ctx = builder.main(0);

    let old_root = ctx.load_witness(witness.old_root);
    let empty_leaf = ctx.load_zero();
    let mut root = old_root;
    let mut chain = ctx.load_zero();
    let mut previous_padding: Option<AssignedValue<Fr>> = None;

    for slot in &witness.slots {
        let padding = ctx.load_witness(Fr::from(u64::from(slot.padding)));
        gate.assert_bit(ctx, padding);
        let live = gate.not(ctx, padding);
        // Padding only at the tail: a padding slot may not be followed by a real transfer.
        if let Some(previous) = previous_padding {
            assert_zero_when(ctx, gate, previous, live);
        }
        previous_padding = Some(padding);

        let from = ctx.load_witness(Fr::from(slot.from));
        let to = ctx.load_witness(Fr::from(slot.to));
        // Decomposing an id into `depth` bits also range-checks it to the tree.
        let from_bits = gate.num_to_bits(ctx, from, depth);
        let to_bits = gate.num_to_bits(ctx, to, depth);
        let amount = ctx.load_witness(Fr::from(slot.amount));
        let nonce = ctx.load_witness(Fr::from(slot.nonce));
        range.range_check(ctx, amount, VALUE_BITS);
        range.range_check(ctx, nonce, VALUE_BITS);

        // Sender: exists, sits in the current root, nonce matches, can pay.
        let sender = load_leaf(ctx, &range, &slot.sender);
        gate.assert_is_const(ctx, &sender.empty, &Fr::ZERO);
        let leaf = hash_gadget(ctx, gate, &[from, sender.balance, sender.nonce]);
        let sender_root = merkle_root(ctx, gate, leaf, &from_bits, &sender.path);
        equal_if_live(ctx, gate, sender_root, root, live);
        equal_if_live(ctx, gate, sender.nonce, nonce, live);
        // balance - amount is in [0, 2^64) exactly when amount <= balance (both < 2^64).
        let debited = gate.sub(ctx, sender.balance, amount);
        range.range_check(ctx, debited, VALUE_BITS);
        let next_nonce = gate.inc(ctx, sender.nonce);
        range.range_check(ctx, next_nonce, VALUE_BITS);
        let leaf = hash_gadget(ctx, gate, &[from, debited, next_nonce]);
        let mid_root = merkle_root(ctx, gate, leaf, &from_bits, &sender.path);

        // Receiver: possibly empty, sits in the intermediate root, balance stays within 64 bits.
        let receiver = load_leaf(ctx, &range, &slot.receiver);
        assert_zero_when(ctx, gate, receiver.balance, receiver.empty);
        assert_zero_when(ctx, gate, receiver.nonce, receiver.empty);
        let occupied = hash_gadget(ctx, gate, &[to, receiver.balance, receiver.nonce]);
        let leaf = gate.select(ctx, empty_leaf, occupied, receiver.empty);
        let receiver_root = merkle_root(ctx, gate, leaf, &to_bits, &receiver.path);
        equal_if_live(ctx, gate, receiver_root, mid_root, live);
        let credited = gate.add(ctx, receiver.balance, amount);
        range.range_check(ctx, credited, VALUE_BITS);
        let leaf = hash_gadget(ctx, gate, &[to, credited, receiver.nonce]);
        let new_root = merkle_root(ctx, gate, leaf, &to_bits, &receiver.path);

        root = gate.select(ctx, new_root, root, live);
        let link = hash_gadget(ctx, gate, &[chain, from, to, amount, nonce]);
        chain = gate.select(ctx, link, chain, live);
    }

    let values = vec![*old_root.value(), *root.value(), *chain.value()];
    builder.assigned_instances = vec![vec![old_root, root, chain]];
    values
}
