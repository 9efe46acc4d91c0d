//! The constraints of `rollup`, written on halo2-base's virtual gate and range chips.
//!
//! Every slot is laid out the same way whether it is real or padding, so the circuit's shape
//! depends only on the configuration; the checks that only a real transaction must pass are
//! gated by the slot's `live` bit, and a padding slot changes nothing.

use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr},
    AssignedValue, Context,
    QuantumCell::Constant,
};

use super::{
    LeafWitness, RollupWitness, EXIT_TREE_DEPTH, GLOBAL_EXIT_DEPTH, KIND_EXIT, KIND_TRANSFER,
    VALUE_BITS,
};
use crate::circomlib::{
    babyjubjub::{self, AssignedPoint},
    eddsa,
    poseidon::hash_gadget,
};

use crate::gadgets::{assert_zero_when, equal_if_live};

/// In-circuit [`super::root_from_path`]: the root reached from `leaf` along `path`, turning at
/// each level by the index bit (least significant first).
pub fn merkle_root_gadget(
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
            hash_gadget(ctx, gate, &[left, right])
        })
}

/// In-circuit [`super::GlobalExitTree::root_of_leaves`]: the global exit root over the local
/// exit roots of all `2^GLOBAL_EXIT_DEPTH` chains (leaf `c` for chain `c`).
///
/// # Panics
/// Unless `leaves` has exactly `2^GLOBAL_EXIT_DEPTH` elements.
pub fn global_exit_root_gadget(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    leaves: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    assert_eq!(
        leaves.len(),
        1 << GLOBAL_EXIT_DEPTH,
        "one leaf per chain id"
    );
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| hash_gadget(ctx, gate, &[pair[0], pair[1]]))
            .collect();
    }
    level[0]
}

struct AssignedLeaf {
    key: AssignedPoint,
    balance: AssignedValue<Fr>,
    nonce: AssignedValue<Fr>,
    path: Vec<AssignedValue<Fr>>,
}

impl AssignedLeaf {
    fn load(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, leaf: &LeafWitness) -> Self {
        let key = babyjubjub::load_point(ctx, &leaf.key);
        let balance = ctx.load_witness(Fr::from(leaf.balance));
        let nonce = ctx.load_witness(Fr::from(leaf.nonce));
        range.range_check(ctx, balance, VALUE_BITS);
        range.range_check(ctx, nonce, VALUE_BITS);
        let path = ctx.assign_witnesses(leaf.path.iter().copied());
        Self {
            key,
            balance,
            nonce,
            path,
        }
    }

    /// The leaf hash with the given balance and nonce (and this leaf's key).
    fn hash(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        balance: AssignedValue<Fr>,
        nonce: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        hash_gadget(ctx, gate, &[self.key.x, self.key.y, balance, nonce])
    }
}

/// A value loaded and range-checked to `bits` bits.
fn load_bounded(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    value: u64,
    bits: usize,
) -> AssignedValue<Fr> {
    let v = ctx.load_witness(Fr::from(value));
    range.range_check(ctx, v, bits);
    v
}

/// The padding bit of a slot, constrained boolean and to the tail of its list; returns `live`.
fn slot_liveness(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    padding: bool,
    previous_padding: &mut Option<AssignedValue<Fr>>,
) -> AssignedValue<Fr> {
    let padding = ctx.load_witness(Fr::from(u64::from(padding)));
    gate.assert_bit(ctx, padding);
    let live = gate.not(ctx, padding);
    if let Some(previous) = *previous_padding {
        assert_zero_when(ctx, gate, previous, live);
    }
    *previous_padding = Some(padding);
    live
}

/// Checks a sender's leaf, nonce and signature of `msg`, debits `amount`; returns the accounts
/// root after the debit (meaningful when `live`).
#[allow(clippy::too_many_arguments)]
fn debit(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    accounts_root: AssignedValue<Fr>,
    from_bits: &[AssignedValue<Fr>],
    amount: AssignedValue<Fr>,
    nonce: AssignedValue<Fr>,
    msg: AssignedValue<Fr>,
    signature: &eddsa::Signature,
    sender: &LeafWitness,
    live: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let leaf = AssignedLeaf::load(ctx, range, sender);
    let hash = leaf.hash(ctx, gate, leaf.balance, leaf.nonce);
    let root = merkle_root_gadget(ctx, gate, hash, from_bits, &leaf.path);
    equal_if_live(ctx, gate, root, accounts_root, live);
    equal_if_live(ctx, gate, leaf.nonce, nonce, live);
    let sig = eddsa::load_signature(ctx, signature);
    let valid = eddsa::verify_gadget(ctx, range, msg, &leaf.key, &sig);
    let invalid = gate.not(ctx, valid);
    assert_zero_when(ctx, gate, invalid, live);
    // balance - amount is in [0, 2^64) exactly when amount <= balance (both < 2^64).
    let debited = gate.sub(ctx, leaf.balance, amount);
    range.range_check(ctx, debited, VALUE_BITS);
    let next_nonce = gate.inc(ctx, leaf.nonce);
    range.range_check(ctx, next_nonce, VALUE_BITS);
    let hash = leaf.hash(ctx, gate, debited, next_nonce);
    merkle_root_gadget(ctx, gate, hash, from_bits, &leaf.path)
}

/// Checks a receiver's leaf and credits `amount`; returns the new accounts root (meaningful
/// when `live`).
fn credit(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    accounts_root: AssignedValue<Fr>,
    to_bits: &[AssignedValue<Fr>],
    amount: AssignedValue<Fr>,
    receiver: &LeafWitness,
    live: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let leaf = AssignedLeaf::load(ctx, range, receiver);
    let hash = leaf.hash(ctx, gate, leaf.balance, leaf.nonce);
    let root = merkle_root_gadget(ctx, gate, hash, to_bits, &leaf.path);
    equal_if_live(ctx, gate, root, accounts_root, live);
    let credited = gate.add(ctx, leaf.balance, amount);
    range.range_check(ctx, credited, VALUE_BITS);
    let hash = leaf.hash(ctx, gate, credited, leaf.nonce);
    merkle_root_gadget(ctx, gate, hash, to_bits, &leaf.path)
}

/// Adds `amount` to a batch total when `live`, keeping the total within 64 bits.
fn add_to_total(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    total: AssignedValue<Fr>,
    amount: AssignedValue<Fr>,
    live: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let total = range.gate().mul_add(ctx, amount, live, total);
    range.range_check(ctx, total, VALUE_BITS);
    total
}

/// Lays out the whole batch in `builder` and registers the public inputs (in
/// [`super::INSTANCE_NAMES`] order) in instance column 0. Returns their values.
pub fn synthesize(builder: &mut BaseCircuitBuilder<Fr>, witness: &RollupWitness) -> Vec<Fr> {
    let depth = witness.config.depth;
    let range = builder.range_chip();
    let gate = range.gate();
    let ctx = builder.main(0);

    let chain_id = load_bounded(ctx, &range, witness.chain_id, GLOBAL_EXIT_DEPTH);
    let old = &witness.old_state;
    let old_accounts = ctx.load_witness(old.accounts_root);
    let old_nullifiers = ctx.load_witness(old.nullifier_root);
    let old_exit_root = ctx.load_witness(old.exit_root);
    let old_exit_count = ctx.load_witness(Fr::from(old.exit_count));
    let old_state_root = hash_gadget(
        ctx,
        gate,
        &[
            chain_id,
            old_accounts,
            old_nullifiers,
            old_exit_root,
            old_exit_count,
        ],
    );
    let global_exit_root = ctx.load_witness(witness.global_exit_root);
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::ONE);

    let mut accounts = old_accounts;
    let mut nullifiers = old_nullifiers;
    let mut exit_root = old_exit_root;
    let mut exit_count = old_exit_count;
    let mut commitment = zero;
    let mut exited = zero;
    let mut claimed = zero;

    let mut previous = None;
    for c in &witness.claims {
        let live = slot_liveness(ctx, gate, c.padding, &mut previous);
        let origin = ctx.load_witness(Fr::from(c.origin_chain));
        // Decomposing also range-checks: the origin to the global tree, the index to the exit
        // tree, the account to the account tree.
        let origin_bits = gate.num_to_bits(ctx, origin, GLOBAL_EXIT_DEPTH);
        let index = ctx.load_witness(Fr::from(c.index));
        let index_bits = gate.num_to_bits(ctx, index, EXIT_TREE_DEPTH);
        let from = load_bounded(ctx, &range, c.from, VALUE_BITS);
        let dest_chain = load_bounded(ctx, &range, c.dest_chain, GLOBAL_EXIT_DEPTH);
        let dest_account = load_bounded(ctx, &range, c.dest_account, VALUE_BITS);
        let account = ctx.load_witness(Fr::from(c.account));
        let account_bits = gate.num_to_bits(ctx, account, depth);
        let amount = load_bounded(ctx, &range, c.amount, VALUE_BITS);

        // Meant for this chain and this account, and not from this chain.
        equal_if_live(ctx, gate, dest_chain, chain_id, live);
        equal_if_live(ctx, gate, dest_account, account, live);
        let own = gate.is_equal(ctx, origin, chain_id);
        assert_zero_when(ctx, gate, own, live);

        // The exit is in the origin chain's exit tree, whose root is in the global exit tree.
        let leaf = hash_gadget(ctx, gate, &[origin, from, dest_chain, dest_account, amount]);
        let exit_path = ctx.assign_witnesses(c.exit_path.iter().copied());
        let local = merkle_root_gadget(ctx, gate, leaf, &index_bits, &exit_path);
        let global_path = ctx.assign_witnesses(c.global_path.iter().copied());
        let global = merkle_root_gadget(ctx, gate, local, &origin_bits, &global_path);
        equal_if_live(ctx, gate, global, global_exit_root, live);

        // Its nullifier (key origin·2^32 + index) was 0 and becomes 1.
        let key_bits: Vec<AssignedValue<Fr>> =
            index_bits.iter().chain(&origin_bits).copied().collect();
        let nullifier_path = ctx.assign_witnesses(c.nullifier_path.iter().copied());
        let unset = merkle_root_gadget(ctx, gate, zero, &key_bits, &nullifier_path);
        equal_if_live(ctx, gate, unset, nullifiers, live);
        let set = merkle_root_gadget(ctx, gate, one, &key_bits, &nullifier_path);
        nullifiers = gate.select(ctx, set, nullifiers, live);

        let credited = credit(
            ctx,
            &range,
            accounts,
            &account_bits,
            amount,
            &c.receiver,
            live,
        );
        accounts = gate.select(ctx, credited, accounts, live);
        claimed = add_to_total(ctx, &range, claimed, amount, live);

        let global_index = gate.mul_add(
            ctx,
            origin,
            Constant(Fr::from(1u64 << EXIT_TREE_DEPTH)),
            index,
        );
        let item = hash_gadget(ctx, gate, &[leaf, global_index]);
        let link = hash_gadget(ctx, gate, &[commitment, item]);
        commitment = gate.select(ctx, link, commitment, live);
    }

    let kind_transfer = ctx.load_constant(Fr::from(KIND_TRANSFER));
    let mut previous = None;
    for t in &witness.transfers {
        let live = slot_liveness(ctx, gate, t.padding, &mut previous);
        let from = ctx.load_witness(Fr::from(t.from));
        let to = ctx.load_witness(Fr::from(t.to));
        let from_bits = gate.num_to_bits(ctx, from, depth);
        let to_bits = gate.num_to_bits(ctx, to, depth);
        let amount = load_bounded(ctx, &range, t.amount, VALUE_BITS);
        let nonce = load_bounded(ctx, &range, t.nonce, VALUE_BITS);
        let msg = hash_gadget(
            ctx,
            gate,
            &[chain_id, kind_transfer, from, to, amount, nonce, chain_id],
        );
        let mid = debit(
            ctx,
            &range,
            accounts,
            &from_bits,
            amount,
            nonce,
            msg,
            &t.signature,
            &t.sender,
            live,
        );
        let credited = credit(ctx, &range, mid, &to_bits, amount, &t.receiver, live);
        accounts = gate.select(ctx, credited, accounts, live);
        let link = hash_gadget(ctx, gate, &[commitment, msg]);
        commitment = gate.select(ctx, link, commitment, live);
    }

    let kind_exit = ctx.load_constant(Fr::from(KIND_EXIT));
    let mut previous = None;
    for e in &witness.exits {
        let live = slot_liveness(ctx, gate, e.padding, &mut previous);
        let from = ctx.load_witness(Fr::from(e.from));
        let from_bits = gate.num_to_bits(ctx, from, depth);
        let dest_chain = load_bounded(ctx, &range, e.dest_chain, GLOBAL_EXIT_DEPTH);
        let to = load_bounded(ctx, &range, e.to, VALUE_BITS);
        let amount = load_bounded(ctx, &range, e.amount, VALUE_BITS);
        let nonce = load_bounded(ctx, &range, e.nonce, VALUE_BITS);
        let own = gate.is_equal(ctx, dest_chain, chain_id);
        assert_zero_when(ctx, gate, own, live);
        let msg = hash_gadget(
            ctx,
            gate,
            &[chain_id, kind_exit, from, to, amount, nonce, dest_chain],
        );
        let debited = debit(
            ctx,
            &range,
            accounts,
            &from_bits,
            amount,
            nonce,
            msg,
            &e.signature,
            &e.sender,
            live,
        );
        accounts = gate.select(ctx, debited, accounts, live);

        // Append at slot exit_count, which must be empty. (A padding slot uses slot 0, so a
        // full tree does not make padding unsatisfiable.)
        let slot = gate.mul(ctx, exit_count, live);
        let slot_bits = gate.num_to_bits(ctx, slot, EXIT_TREE_DEPTH);
        let exit_path = ctx.assign_witnesses(e.exit_path.iter().copied());
        let empty = merkle_root_gadget(ctx, gate, zero, &slot_bits, &exit_path);
        equal_if_live(ctx, gate, empty, exit_root, live);
        let leaf = hash_gadget(ctx, gate, &[chain_id, from, dest_chain, to, amount]);
        let appended = merkle_root_gadget(ctx, gate, leaf, &slot_bits, &exit_path);
        exit_root = gate.select(ctx, appended, exit_root, live);
        exit_count = gate.add(ctx, exit_count, live);
        exited = add_to_total(ctx, &range, exited, amount, live);

        let link = hash_gadget(ctx, gate, &[commitment, msg]);
        commitment = gate.select(ctx, link, commitment, live);
    }

    let new_state_root = hash_gadget(
        ctx,
        gate,
        &[chain_id, accounts, nullifiers, exit_root, exit_count],
    );
    let public = vec![
        old_state_root,
        new_state_root,
        commitment,
        chain_id,
        old_exit_root,
        exit_root,
        global_exit_root,
        exited,
        claimed,
    ];
    let values = public.iter().map(|v| *v.value()).collect();
    builder.assigned_instances = vec![public];
    values
}
