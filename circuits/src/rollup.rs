//! `rollup`: the state transition of one chain of a multi-chain payments rollup, with
//! EdDSA-signed transactions, exits to other chains and claims of other chains' exits.
//!
//! A chain (id below 2^[`GLOBAL_EXIT_DEPTH`]) has a state of four parts, committed in its
//! state root `Poseidon(chain_id, accounts_root, nullifier_root, exit_root, exit_count)`:
//! - accounts: a Poseidon sparse Merkle tree of depth `D`; account `id` is leaf `id`, holding
//!   `Poseidon(Ax, Ay, balance, nonce)` with `(Ax, Ay)` its owner's Baby Jubjub key;
//! - the local exit tree: an append-only Poseidon Merkle tree of depth [`EXIT_TREE_DEPTH`],
//!   leaf `i` the chain's `i`-th exit `Poseidon(origin_chain, from, dest_chain, to, amount)`,
//!   `exit_count` its next free index (in the state root, so no batch can skip or overwrite a
//!   slot);
//! - nullifiers: a sparse Merkle tree of depth [`NULLIFIER_DEPTH`] keyed by
//!   `origin_chain·2^32 + exit_index`, leaf 1 for each exit of another chain claimed here.
//!
//! All hashes are circomlib's Poseidon ([`crate::circomlib::poseidon`]), so clients and other
//! chains can recompute every root. A batch applies, in this order, up to `C` claims, up to `T`
//! transfers and up to `E` exits (each list padded at its tail by no-op slots):
//! - a transfer moves `amount` from `from` to the existing account `to`;
//! - an exit debits `from` and appends an exit leaf for `(dest_chain, to)` (never the own chain);
//! - a claim credits account `to` with an exit of another chain whose destination is
//!   `(this chain, to)`, proven against the global exit root (a Merkle tree of depth
//!   [`GLOBAL_EXIT_DEPTH`] over all chains' local exit roots, indexed by chain id), and sets
//!   its nullifier, which must have been 0.
//!
//! Transfers and exits carry the sender's signature (circomlib's EdDSA-Poseidon) of a message
//! ([`transfer_message`], [`exit_message`]) binding chain id, kind, accounts, amount, nonce and
//! destination chain; claims need none. docs/rollup.md specifies the formats.
//!
//! This module owns the circuit, its witness format, the witness builder and the example
//! states (with their owners' keys); it knows nothing of proving keys, proofs or transports.

mod circuit;
mod input;
mod state;
mod tree;
mod witness;

pub use circuit::{global_exit_root_gadget, merkle_root_gadget, synthesize};
pub use input::{
    ClaimInput, ExitInput, ExitRecordInput, LeafInput, RollupInput, SignatureInput,
    StateHeaderInput, TransferInput,
};
pub use state::{
    Account, ExitProof, ExitRecord, GlobalSnapshot, MultiChainScenario, RollupState, SignedExit,
    SignedTransfer, Wallet,
};
pub use tree::{empty_root, root_from_path, GlobalExitTree, SparseMerkleTree};
pub use witness::{
    ClaimWitness, ExitWitness, LeafWitness, RollupWitness, StateHeader, TransferWitness,
};

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::bn256::Fr,
};

use crate::{
    circomlib::{babyjubjub::Point, eddsa::SignatureError, poseidon, uint::IntegerError},
    field::FieldElementError,
    CatalogCircuit, ChainFields, ChainLayout, Circuit, CircuitError, CircuitShape, Witness,
};

/// Depth of the global exit tree: chain ids are `0..2^8`.
pub const GLOBAL_EXIT_DEPTH: usize = 8;
/// Depth of each chain's local exit tree (2^32 exits).
pub const EXIT_TREE_DEPTH: usize = 32;
/// Depth of the nullifier tree: `GLOBAL_EXIT_DEPTH + EXIT_TREE_DEPTH` bits of
/// `origin_chain·2^32 + exit_index`.
pub const NULLIFIER_DEPTH: usize = GLOBAL_EXIT_DEPTH + EXIT_TREE_DEPTH;
/// The deepest account tree supported.
pub const MAX_DEPTH: usize = 32;
/// Balances, amounts, nonces and totals are 64-bit unsigned integers.
pub const VALUE_BITS: usize = 64;
/// Bits of the range-check lookup table used by the named configurations.
pub const LOOKUP_BITS: usize = 16;

/// The message kind of a transfer.
pub const KIND_TRANSFER: u64 = 1;
/// The message kind of an exit.
pub const KIND_EXIT: u64 = 2;

/// Public inputs, in order (instance column 0).
pub const INSTANCE_NAMES: [&str; 9] = [
    "old_state_root",
    "new_state_root",
    "batch_commitment",
    "chain_id",
    "old_exit_root",
    "new_exit_root",
    "global_exit_root",
    "exited_total",
    "claimed_total",
];
/// Position of the state root before the batch (the same as `transfer_batch`'s `old_root`).
pub const OLD_STATE_ROOT: usize = 0;
/// Position of the state root after the batch.
pub const NEW_STATE_ROOT: usize = 1;
/// Position of the batch commitment.
pub const BATCH_COMMITMENT: usize = 2;
/// Position of the chain id.
pub const CHAIN_ID: usize = 3;
/// Position of the local exit root before the batch.
pub const OLD_EXIT_ROOT: usize = 4;
/// Position of the local exit root after the batch.
pub const NEW_EXIT_ROOT: usize = 5;
/// Position of the global exit root the claims are proven against.
pub const GLOBAL_EXIT_ROOT: usize = 6;
/// Position of the sum of the batch's exit amounts.
pub const EXITED_TOTAL: usize = 7;
/// Position of the sum of the batch's claim amounts.
pub const CLAIMED_TOTAL: usize = 8;

/// A `rollup` configuration: account tree depth and slots per transaction kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RollupConfig {
    /// Depth `D` of the account tree (2^D accounts).
    pub depth: usize,
    /// Transfer slots `T`.
    pub transfers: usize,
    /// Exit slots `E`.
    pub exits: usize,
    /// Claim slots `C`.
    pub claims: usize,
    /// Bits of the range-check lookup table (16 for all named configurations).
    pub lookup_bits: usize,
}

/// The named configurations, smallest first.
pub const NAMED: [RollupConfig; 3] = [
    RollupConfig::new(8, 2, 1, 1),
    RollupConfig::new(16, 8, 2, 2),
    RollupConfig::new(24, 16, 4, 4),
];

/// The names of the fields of the signed message, in hashing order.
pub const MESSAGE_FIELDS: [&str; 7] = [
    "chain_id",
    "kind",
    "from",
    "to",
    "amount",
    "nonce",
    "dest_chain",
];

/// The message a transfer's sender signs.
pub fn transfer_message(chain_id: u64, from: u64, to: u64, amount: u64, nonce: u64) -> Fr {
    message(chain_id, KIND_TRANSFER, from, to, amount, nonce, chain_id)
}

/// The message an exit's sender signs.
pub fn exit_message(
    chain_id: u64,
    from: u64,
    dest_chain: u64,
    to: u64,
    amount: u64,
    nonce: u64,
) -> Fr {
    message(chain_id, KIND_EXIT, from, to, amount, nonce, dest_chain)
}

fn message(
    chain_id: u64,
    kind: u64,
    from: u64,
    to: u64,
    amount: u64,
    nonce: u64,
    dest_chain: u64,
) -> Fr {
    poseidon::hash(&[
        Fr::from(chain_id),
        Fr::from(kind),
        Fr::from(from),
        Fr::from(to),
        Fr::from(amount),
        Fr::from(nonce),
        Fr::from(dest_chain),
    ])
}

/// An account leaf: `Poseidon(Ax, Ay, balance, nonce)`.
pub fn account_leaf(key: &Point, balance: u64, nonce: u64) -> Fr {
    account_leaf_fields(key, Fr::from(balance), Fr::from(nonce))
}

pub(crate) fn account_leaf_fields(key: &Point, balance: Fr, nonce: Fr) -> Fr {
    poseidon::hash(&[key.x, key.y, balance, nonce])
}

/// An exit leaf: `Poseidon(origin_chain, from, dest_chain, to, amount)`.
pub fn exit_leaf(origin_chain: u64, from: u64, dest_chain: u64, to: u64, amount: u64) -> Fr {
    poseidon::hash(&[
        Fr::from(origin_chain),
        Fr::from(from),
        Fr::from(dest_chain),
        Fr::from(to),
        Fr::from(amount),
    ])
}

/// The nullifier key (global index) of exit `index` of chain `origin_chain`.
pub const fn global_index(origin_chain: u64, index: u64) -> u64 {
    (origin_chain << EXIT_TREE_DEPTH) | index
}

/// What a claim adds to the batch commitment: `Poseidon(exit_leaf, global_index)`.
pub fn claim_item(exit_leaf: Fr, global_index: u64) -> Fr {
    poseidon::hash(&[exit_leaf, Fr::from(global_index)])
}

/// The next link of the batch commitment: `Poseidon(previous, item)`.
pub fn commitment_link(previous: Fr, item: Fr) -> Fr {
    poseidon::hash(&[previous, item])
}

/// The state root: `Poseidon(chain_id, accounts_root, nullifier_root, exit_root, exit_count)`.
pub fn state_root(
    chain_id: u64,
    accounts_root: Fr,
    nullifier_root: Fr,
    exit_root: Fr,
    exit_count: u64,
) -> Fr {
    poseidon::hash(&[
        Fr::from(chain_id),
        accounts_root,
        nullifier_root,
        exit_root,
        Fr::from(exit_count),
    ])
}

impl RollupConfig {
    /// A configuration with the standard lookup table.
    pub const fn new(depth: usize, transfers: usize, exits: usize, claims: usize) -> Self {
        Self {
            depth,
            transfers,
            exits,
            claims,
            lookup_bits: LOOKUP_BITS,
        }
    }

    /// The named configurations.
    pub fn named() -> &'static [RollupConfig] {
        &NAMED
    }

    /// The catalog name, `rollup/d{D}-t{T}-e{E}-c{C}`, with `-l{bits}` when the lookup table
    /// is not the standard one (the name fixes the circuit, and so its keys).
    pub fn name(&self) -> String {
        let mut name = format!(
            "rollup/d{}-t{}-e{}-c{}",
            self.depth, self.transfers, self.exits, self.claims
        );
        if self.lookup_bits != LOOKUP_BITS {
            name.push_str(&format!("-l{}", self.lookup_bits));
        }
        name
    }

    /// The named configuration called `name`.
    pub fn from_name(name: &str) -> Result<Self, RollupError> {
        NAMED
            .iter()
            .find(|c| c.name() == name)
            .copied()
            .ok_or_else(|| RollupError::UnknownConfig {
                name: name.to_owned(),
                available: NAMED.iter().map(RollupConfig::name).collect(),
            })
    }

    /// One line on what the circuit proves.
    pub fn description(&self) -> String {
        format!(
            "one chain's rollup batch: up to {} claims, {} transfers and {} exits, EdDSA-signed, over a depth-{} account tree, with local exit and nullifier trees",
            self.claims, self.transfers, self.exits, self.depth
        )
    }

    /// Number of public inputs.
    pub const fn num_instances(&self) -> usize {
        INSTANCE_NAMES.len()
    }

    /// Names of the public inputs, in order.
    pub fn instance_names(&self) -> &'static [&'static str] {
        &INSTANCE_NAMES
    }

    /// Bits of the range-check lookup table.
    pub fn lookup_bits(&self) -> usize {
        self.lookup_bits
    }

    /// Parses and validates a prove job's JSON input.
    pub fn parse_input(&self, input: &serde_json::Value) -> Result<RollupWitness, RollupError> {
        let batch = RollupInput::from_value(input)?;
        RollupWitness::from_input(self, &batch)
    }

    /// A valid input, reproducible from `seed` (chain 1, with exits and claims when the
    /// configuration has slots for them).
    pub fn example_input(&self, seed: u64) -> serde_json::Value {
        self.example_inputs(seed, 1)
            .pop()
            .expect("one example batch")
    }

    /// `count` consecutive valid inputs of one chain, each starting where the previous one
    /// ended; the first is [`RollupConfig::example_input`].
    pub fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value> {
        RollupState::example_chain(self, 1, seed, count)
            .into_iter()
            .map(|input| serde_json::to_value(input).expect("a rollup input serializes"))
            .collect()
    }

    /// A witness of the right shape and arbitrary content, for keygen.
    pub fn keygen_witness(&self) -> RollupWitness {
        RollupWitness::padding_only(self)
    }

    /// Lays the witness out in `builder`, registers the public inputs in instance column 0,
    /// and returns their values.
    pub fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &RollupWitness,
    ) -> Result<Vec<Fr>, RollupError> {
        if witness.config != *self {
            return Err(RollupError::WitnessMismatch {
                circuit: self.name(),
                witness: witness.config.name(),
            });
        }
        Ok(synthesize(builder, witness))
    }

    /// (advice, lookup) cells of the circuit, counted by laying out scaled-down copies: the
    /// layout is a fixed part plus, per kind of slot, a part linear in the number of slots and,
    /// per slot, linear in the depth; ten small syntheses give the exact count.
    pub fn cell_counts(&self) -> (usize, usize) {
        let measure = |depth: usize, slots: [usize; 3]| {
            let config = RollupConfig {
                depth,
                transfers: slots[0],
                exits: slots[1],
                claims: slots[2],
                lookup_bits: self.lookup_bits,
            };
            let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Keygen)
                .use_k(self.lookup_bits + 1)
                .use_lookup_bits(self.lookup_bits)
                .use_instance_columns(1);
            synthesize(&mut builder, &RollupWitness::padding_only(&config));
            let (advice, lookup) = crate::count_cells(&builder);
            [advice as i64, lookup as i64]
        };
        let base = measure(1, [0; 3]);
        let mut total = base;
        for (kind, n) in [self.transfers, self.exits, self.claims]
            .into_iter()
            .enumerate()
        {
            if n == 0 {
                continue;
            }
            let slots = |count: usize| {
                let mut s = [0; 3];
                s[kind] = count;
                s
            };
            let (m11, m21, m12) = (
                measure(1, slots(1)),
                measure(2, slots(1)),
                measure(1, slots(2)),
            );
            // m(D, n) = m(1, 1) + (n - 1)·[m(1, 2) - m(1, 1)] + n·(D - 1)·[m(2, 1) - m(1, 1)]
            for i in 0..2 {
                total[i] += m11[i] - base[i]
                    + (n as i64 - 1) * (m12[i] - m11[i])
                    + (n * (self.depth - 1)) as i64 * (m21[i] - m11[i]);
            }
        }
        (total[0] as usize, total[1] as usize)
    }
}

impl RollupConfig {
    /// The circuit's size (see [`CatalogCircuit::shape`]).
    pub fn shape(&self) -> CircuitShape {
        CatalogCircuit::new(*self).shape()
    }

    /// A halo2-base builder for this circuit at `stage`, sized by its shape.
    pub fn builder(&self, stage: CircuitBuilderStage) -> BaseCircuitBuilder<Fr> {
        crate::builder_for(&CatalogCircuit::new(*self), stage)
    }
}

impl Circuit for RollupConfig {
    fn name(&self) -> String {
        RollupConfig::name(self)
    }

    fn description(&self) -> String {
        RollupConfig::description(self)
    }

    fn instance_names(&self) -> &'static [&'static str] {
        &INSTANCE_NAMES
    }

    fn chain_layout(&self) -> ChainLayout {
        ChainLayout {
            old_root: OLD_STATE_ROOT,
            new_root: NEW_STATE_ROOT,
            commitment: BATCH_COMMITMENT,
            chain: Some(ChainFields {
                chain_id: CHAIN_ID,
                old_exit_root: OLD_EXIT_ROOT,
                new_exit_root: NEW_EXIT_ROOT,
                global_exit_root: GLOBAL_EXIT_ROOT,
                exited_total: EXITED_TOTAL,
                claimed_total: CLAIMED_TOTAL,
            }),
        }
    }

    fn lookup_bits(&self) -> usize {
        self.lookup_bits
    }

    fn parse_input(&self, input: &serde_json::Value) -> Result<Witness, CircuitError> {
        Ok(Witness::new(
            RollupConfig::name(self),
            RollupConfig::parse_input(self, input)?,
        ))
    }

    fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value> {
        RollupConfig::example_inputs(self, seed, count)
    }

    fn keygen_witness(&self) -> Witness {
        Witness::new(RollupConfig::name(self), RollupWitness::padding_only(self))
    }

    fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &Witness,
    ) -> Result<Vec<Fr>, CircuitError> {
        let witness: &RollupWitness = witness.get(&RollupConfig::name(self))?;
        Ok(RollupConfig::synthesize(self, builder, witness)?)
    }

    fn cell_counts(&self) -> (usize, usize) {
        RollupConfig::cell_counts(self)
    }
}

/// Which kind of transaction an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// A claim (applied first).
    Claim,
    /// A transfer.
    Transfer,
    /// An exit (applied last).
    Exit,
}

/// A transaction of the batch: its kind and 0-based index in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// The list.
    pub kind: TxKind,
    /// Index in the list.
    pub index: usize,
}

impl std::fmt::Display for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            TxKind::Claim => "claim",
            TxKind::Transfer => "transfer",
            TxKind::Exit => "exit",
        };
        write!(f, "{kind} {}", self.index)
    }
}

/// Which account of a transaction an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The account paying (transfers, exits).
    Sender,
    /// The account credited (transfers, claims).
    Receiver,
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Party::Sender => "sender",
            Party::Receiver => "receiver",
        })
    }
}

/// Why a rollup batch cannot be proven. Every variant about a transaction names it
/// (`transfer 3`, `exit 0`, `claim 1`) and says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollupError {
    /// No named configuration has this name.
    #[error("unknown rollup configuration {name:?}; there are: {}", available.join(", "))]
    UnknownConfig {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: Vec<String>,
    },
    /// A witness for another configuration was passed.
    #[error("witness is for {witness}, not for {circuit}")]
    WitnessMismatch {
        /// The circuit used.
        circuit: String,
        /// The configuration the witness was built for.
        witness: String,
    },
    /// The JSON does not have the batch's shape.
    #[error("rollup input is not valid JSON of the expected shape at {path}: {message}")]
    Json {
        /// Where in the document (e.g. `transfers[2].amount`).
        path: String,
        /// serde's description.
        message: String,
    },
    /// No transaction at all.
    #[error("batch has no claims, transfers or exits")]
    EmptyBatch,
    /// More transactions of a kind than the configuration's slots.
    #[error("batch has {got} {kind}s; {circuit} takes at most {max}")]
    TooMany {
        /// `claim`, `transfer` or `exit`.
        kind: &'static str,
        /// Given.
        got: usize,
        /// Slots.
        max: usize,
        /// Circuit name.
        circuit: String,
    },
    /// A 32-byte hex field element could not be parsed.
    #[error("{location}: {source}")]
    FieldElement {
        /// Where the value is (e.g. `transfers[1].sender.path[3]`).
        location: String,
        /// What is wrong with it.
        source: FieldElementError,
    },
    /// A decimal or hex number (keys, signatures) could not be parsed.
    #[error("{location}: {source}")]
    Integer {
        /// Where the value is (e.g. `exits[0].signature.S`).
        location: String,
        /// What is wrong with it.
        source: IntegerError,
    },
    /// The chain id does not fit the global exit tree.
    #[error("chain id {chain_id} is out of range (chain ids are 0 to {})", (1u64 << GLOBAL_EXIT_DEPTH) - 1)]
    ChainIdOutOfRange {
        /// The id.
        chain_id: u64,
    },
    /// A multi-chain scenario has no chain with this id.
    #[error("the scenario has no chain {chain_id}")]
    UnknownChain {
        /// The id.
        chain_id: u64,
    },
    /// An account id does not fit the tree.
    #[error("{tx}: {party} account id {id} does not fit a depth-{depth} tree (ids are 0 to 2^{depth} - 1)")]
    AccountIdOutOfRange {
        /// The transaction.
        tx: Tx,
        /// Which side.
        party: Party,
        /// The id.
        id: u64,
        /// Tree depth.
        depth: usize,
    },
    /// A Merkle path has the wrong number of siblings.
    #[error("{tx}: {path} has {got} siblings, expected {expected}")]
    PathLength {
        /// The transaction.
        tx: Tx,
        /// Which path (`sender.path`, `exit_path`, …).
        path: &'static str,
        /// Siblings given.
        got: usize,
        /// The tree's depth.
        expected: usize,
    },
    /// An account leaf and its path do not lead to the accounts root at that point.
    #[error("{tx}: {party} leaf (account {id}) and Merkle path lead to accounts root {computed}, but the accounts root before this step is {expected} (wrong leaf contents or path, or the account does not exist)")]
    BadAccountPath {
        /// The transaction.
        tx: Tx,
        /// Which side.
        party: Party,
        /// Account id.
        id: u64,
        /// Root from the leaf and path.
        computed: String,
        /// Root the batch is at.
        expected: String,
    },
    /// The account does not exist (a state that knows its accounts says so).
    #[error("{tx}: {party} account {id} does not exist")]
    AccountMissing {
        /// The transaction.
        tx: Tx,
        /// Which side.
        party: Party,
        /// Account id.
        id: u64,
    },
    /// The signature does not verify with the sender's key.
    #[error("{tx}: bad signature by sender account {id}: {reason}")]
    BadSignature {
        /// The transaction.
        tx: Tx,
        /// Sender id.
        id: u64,
        /// What fails.
        reason: SignatureError,
    },
    /// The nonce is not the sender's current nonce (a replay, or out of order).
    #[error("{tx}: nonce {got} does not match sender account {id}'s nonce {expected} (a replayed or out-of-order transaction)")]
    WrongNonce {
        /// The transaction.
        tx: Tx,
        /// Sender id.
        id: u64,
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay.
    #[error("{tx}: overdraft: sender account {id} has balance {balance} but sends {amount}")]
    Overdraft {
        /// The transaction.
        tx: Tx,
        /// Sender id.
        id: u64,
        /// Sender balance.
        balance: u64,
        /// Amount sent.
        amount: u64,
    },
    /// A balance would exceed 2^64 - 1.
    #[error("{tx}: receiver account {id} balance {balance} + amount {amount} overflows 64 bits")]
    BalanceOverflow {
        /// The transaction.
        tx: Tx,
        /// Receiver id.
        id: u64,
        /// Receiver balance.
        balance: u64,
        /// Amount received.
        amount: u64,
    },
    /// The sender's nonce is already 2^64 - 1.
    #[error("{tx}: sender account {id} nonce {nonce} cannot be incremented within 64 bits")]
    NonceOverflow {
        /// The transaction.
        tx: Tx,
        /// Sender id.
        id: u64,
        /// Its nonce.
        nonce: u64,
    },
    /// The batch's exited or claimed total would exceed 2^64 - 1.
    #[error("{tx}: the batch's {total} total {sum} + amount {amount} overflows 64 bits")]
    TotalOverflow {
        /// The transaction.
        tx: Tx,
        /// `exited` or `claimed`.
        total: &'static str,
        /// The total before it.
        sum: u64,
        /// Its amount.
        amount: u64,
    },
    /// An exit to the chain itself.
    #[error("{tx}: exit to the own chain {chain_id} (use a transfer)")]
    ExitToOwnChain {
        /// The transaction.
        tx: Tx,
        /// This chain.
        chain_id: u64,
    },
    /// An exit's or claim's chain id is out of range.
    #[error("{tx}: chain id {chain_id} is out of range (chain ids are 0 to {})", (1u64 << GLOBAL_EXIT_DEPTH) - 1)]
    TxChainOutOfRange {
        /// The transaction.
        tx: Tx,
        /// The id.
        chain_id: u64,
    },
    /// The local exit tree has no free slot.
    #[error("{tx}: the local exit tree is full (2^{EXIT_TREE_DEPTH} exits)")]
    ExitTreeFull {
        /// The transaction.
        tx: Tx,
    },
    /// The exit path does not show slot `exit_count` empty under the current exit root.
    #[error("{tx}: exit_path does not show slot {slot} empty under the exit root: it leads to {computed}, but the exit root before this step is {expected}")]
    BadExitSlot {
        /// The transaction.
        tx: Tx,
        /// The slot (the exit count).
        slot: u64,
        /// Root from an empty leaf and the path.
        computed: String,
        /// The exit root.
        expected: String,
    },
    /// A claim of an exit made on this chain.
    #[error("{tx}: claim of an exit from the own chain {chain_id}")]
    ClaimFromOwnChain {
        /// The transaction.
        tx: Tx,
        /// This chain.
        chain_id: u64,
    },
    /// A claim of an exit to another chain.
    #[error("{tx}: the exit is meant for chain {dest_chain}, not for this chain {chain_id}")]
    ClaimForAnotherChain {
        /// The transaction.
        tx: Tx,
        /// The exit's destination chain.
        dest_chain: u64,
        /// This chain.
        chain_id: u64,
    },
    /// A claim crediting another account than the exit's destination.
    #[error("{tx}: the exit is meant for account {dest_account}, but the claim credits account {account}")]
    ClaimForAnotherAccount {
        /// The transaction.
        tx: Tx,
        /// The exit's destination account.
        dest_account: u64,
        /// The account the claim credits.
        account: u64,
    },
    /// The exit is not under the global exit root.
    #[error("{tx}: unknown exit {index} of chain {origin_chain}: its leaf, exit_path and global_path lead to {computed}, not to the global exit root {expected}")]
    UnknownExit {
        /// The transaction.
        tx: Tx,
        /// Origin chain.
        origin_chain: u64,
        /// Exit index.
        index: u64,
        /// Root reached.
        computed: String,
        /// The batch's global exit root.
        expected: String,
    },
    /// The exit's nullifier is already set.
    #[error("{tx}: exit {index} of chain {origin_chain} is already claimed")]
    AlreadyClaimed {
        /// The transaction.
        tx: Tx,
        /// Origin chain.
        origin_chain: u64,
        /// Exit index.
        index: u64,
    },
    /// The nullifier path leads to the nullifier root neither with 0 nor with 1.
    #[error("{tx}: nullifier_path of exit {index} of chain {origin_chain} does not lead to the nullifier root {expected}")]
    BadNullifierPath {
        /// The transaction.
        tx: Tx,
        /// Origin chain.
        origin_chain: u64,
        /// Exit index.
        index: u64,
        /// The nullifier root.
        expected: String,
    },
    /// An exit index beyond the exit tree.
    #[error("{tx}: exit index {index} does not fit the exit tree (indices are below 2^{EXIT_TREE_DEPTH})")]
    ExitIndexOutOfRange {
        /// The transaction.
        tx: Tx,
        /// The index.
        index: u64,
    },
}

#[cfg(test)]
mod tests;
