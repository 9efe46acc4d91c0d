//! `transfer_batch`: the state transition of a payments rollup, as its sequencer would offload it.
//!
//! Accounts are leaves of a Poseidon sparse Merkle tree of depth `D`; account `id` sits at leaf
//! index `id`, and a leaf commits to `(id, balance, nonce)` (an empty leaf is 0). A batch holds
//! up to `B` transfers; unused slots are padding (no-ops) and come after the real transfers.
//! For each transfer the circuit checks the sender leaf against the current root, the nonce,
//! `amount <= balance` with 64-bit range checks, updates the sender (balance - amount,
//! nonce + 1), checks the receiver leaf (possibly empty) against the intermediate root and
//! that its new balance fits 64 bits, and updates it. A self-transfer works naturally: the
//! receiver is read from the intermediate root, where the sender is already updated.
//!
//! Public inputs: `[old_root, new_root, batch_commitment]`, where the commitment is the
//! Poseidon chain `c_0 = 0, c_{i+1} = H(c_i, from, to, amount, nonce)` over real transfers.
//!
//! This module owns the circuit, its witness format and the witness builder; it knows nothing
//! of keys, proofs or transports.

mod circuit;
mod input;
mod state;
mod witness;

pub use input::{BatchInput, LeafInput, TransferInput};
pub use state::{Account, State};
pub use witness::{BatchWitness, LeafWitness, SlotWitness};

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::bn256::Fr,
};

use crate::{field::FieldElementError, ChainLayout, Circuit, CircuitError, Witness};

/// Bits of the range-check lookup table used by every named configuration.
pub const LOOKUP_BITS: usize = 16;
/// Balances, amounts and nonces are 64-bit unsigned integers.
pub const VALUE_BITS: usize = 64;
/// The deepest tree supported: leaf indices are `u64`.
pub const MAX_DEPTH: usize = 63;

/// A `transfer_batch` configuration: tree depth and batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferBatchConfig {
    /// Depth `D` of the account tree (2^D accounts).
    pub depth: usize,
    /// Number `B` of transfer slots in one batch.
    pub batch_size: usize,
    /// Bits of the range-check lookup table (16 for all named configurations).
    pub lookup_bits: usize,
}

impl TransferBatchConfig {
    /// A configuration with the standard lookup table.
    pub const fn new(depth: usize, batch_size: usize) -> Self {
        Self {
            depth,
            batch_size,
            lookup_bits: LOOKUP_BITS,
        }
    }

    /// The name, `transfer_batch/d{D}-b{B}`, with `-l{bits}` when the lookup table is not
    /// the standard one (a test's or the bench's smaller configurations): the name fixes the
    /// circuit, and so its keys.
    pub fn name(&self) -> String {
        let mut name = format!("transfer_batch/d{}-b{}", self.depth, self.batch_size);
        if self.lookup_bits != LOOKUP_BITS {
            name.push_str(&format!("-l{}", self.lookup_bits));
        }
        name
    }

    /// Number of public inputs: old root, new root, batch commitment.
    pub const fn num_instances(&self) -> usize {
        3
    }
}

impl Circuit for TransferBatchConfig {
    fn name(&self) -> String {
        TransferBatchConfig::name(self)
    }

    fn description(&self) -> String {
        format!(
            "a rollup batch of up to {} transfers over a depth-{} Poseidon account tree (no signatures)",
            self.batch_size, self.depth
        )
    }

    fn instance_names(&self) -> &'static [&'static str] {
        &["old_root", "new_root", "batch_commitment"]
    }

    fn chain_layout(&self) -> ChainLayout {
        ChainLayout {
            old_root: 0,
            new_root: 1,
            commitment: 2,
            chain: None,
        }
    }

    fn lookup_bits(&self) -> usize {
        self.lookup_bits
    }

    fn parse_input(&self, input: &serde_json::Value) -> Result<Witness, CircuitError> {
        let batch = BatchInput::from_value(input)?;
        Ok(Witness::new(
            self.name(),
            BatchWitness::from_input(self, &batch)?,
        ))
    }

    fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value> {
        State::example_chain(self, seed, count)
            .into_iter()
            .map(|input| serde_json::to_value(input).expect("a batch input serializes"))
            .collect()
    }

    fn keygen_witness(&self) -> Witness {
        Witness::new(self.name(), BatchWitness::padding_only(self))
    }

    fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &Witness,
    ) -> Result<Vec<Fr>, CircuitError> {
        let witness: &BatchWitness = witness.get(&self.name())?;
        Ok(circuit::synthesize(builder, witness))
    }

    /// Counted by laying out scaled-down copies: the layout is linear in the batch size and,
    /// per slot, in the depth, so three tiny syntheses give the exact count without building
    /// a production-sized circuit.
    fn cell_counts(&self) -> (usize, usize) {
        let measure = |depth: usize, batch_size: usize| {
            let config = TransferBatchConfig {
                depth,
                batch_size,
                lookup_bits: self.lookup_bits,
            };
            let mut builder = crate::builder_at(
                CircuitBuilderStage::Keygen,
                self.lookup_bits + 1,
                self.lookup_bits,
            );
            circuit::synthesize(&mut builder, &BatchWitness::padding_only(&config));
            crate::count_cells(&builder)
        };
        // m(D, B) = m(1, 1) + (B - 1)·[m(1, 2) - m(1, 1)] + B·(D - 1)·[m(2, 1) - m(1, 1)]
        let extrapolate = |m11: usize, m21: usize, m12: usize| {
            m11 + (self.batch_size - 1) * (m12 - m11)
                + self.batch_size * (self.depth - 1) * (m21 - m11)
        };
        let (a11, l11) = measure(1, 1);
        let (a21, l21) = measure(2, 1);
        let (a12, l12) = measure(1, 2);
        (extrapolate(a11, a21, a12), extrapolate(l11, l21, l12))
    }
}

/// Which leaf of a transfer a witness error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The account paying.
    Sender,
    /// The account paid.
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

/// Why a batch cannot be proven. Every variant names the transfer (0-based) and says what is
/// wrong, so a sequencer can fix its input without reading the circuit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The JSON does not have the batch's shape.
    #[error("batch input is not valid JSON of the expected shape at {path}: {message}")]
    Json {
        /// Where in the document (e.g. `transfers[2].amount`).
        path: String,
        /// serde's description.
        message: String,
    },
    /// Zero transfers, or more than the configuration's slots.
    #[error("batch has {got} transfers; {circuit} takes 1 to {max}")]
    WrongTransferCount {
        /// Transfers in the input.
        got: usize,
        /// Slots of the circuit.
        max: usize,
        /// Circuit name.
        circuit: String,
    },
    /// A field element could not be parsed.
    #[error("{location}: {source}")]
    FieldElement {
        /// Where the value is (e.g. `old_root`, `transfers[1].sender.path[3]`).
        location: String,
        /// What is wrong with it.
        source: FieldElementError,
    },
    /// An account id does not fit the tree.
    #[error("transfer {index}: {party} account id {id} does not fit a depth-{depth} tree (ids are 0 to 2^{depth} - 1)")]
    AccountIdOutOfRange {
        /// Transfer index.
        index: usize,
        /// Which side.
        party: Party,
        /// The id.
        id: u64,
        /// Tree depth.
        depth: usize,
    },
    /// A Merkle path has the wrong number of siblings.
    #[error("transfer {index}: {party} Merkle path has {got} siblings, expected {expected} (the tree depth)")]
    PathLength {
        /// Transfer index.
        index: usize,
        /// Which side.
        party: Party,
        /// Siblings given.
        got: usize,
        /// Tree depth.
        expected: usize,
    },
    /// The first sender's path does not lead to the stated old root.
    #[error("old_root {claimed} does not match the state the witnesses describe: transfer 0's sender path leads to {computed}")]
    OldRootMismatch {
        /// The `old_root` of the input.
        claimed: String,
        /// The root the first sender leaf and path give.
        computed: String,
    },
    /// A leaf and its path do not lead to the root at that point of the batch.
    #[error("transfer {index}: {party} leaf (account {id}) and Merkle path lead to root {computed}, but the root before this step is {expected}")]
    BadMerklePath {
        /// Transfer index.
        index: usize,
        /// Which side.
        party: Party,
        /// Account id.
        id: u64,
        /// Root from the leaf and path.
        computed: String,
        /// Root the batch is at.
        expected: String,
    },
    /// The sender leaf is empty: the account does not exist.
    #[error("transfer {index}: sender account {id} does not exist (its leaf is empty)")]
    SenderMissing {
        /// Transfer index.
        index: usize,
        /// Account id.
        id: u64,
    },
    /// An empty leaf was given a balance or nonce.
    #[error("transfer {index}: {party} leaf is marked empty but has balance {balance} and nonce {nonce} (an empty leaf has both 0)")]
    NonZeroEmptyLeaf {
        /// Transfer index.
        index: usize,
        /// Which side.
        party: Party,
        /// Stated balance.
        balance: u64,
        /// Stated nonce.
        nonce: u64,
    },
    /// The transfer's nonce is not the sender's current nonce.
    #[error("transfer {index}: nonce {got} does not match sender account {id}'s nonce {expected}")]
    WrongNonce {
        /// Transfer index.
        index: usize,
        /// Sender id.
        id: u64,
        /// The account's nonce.
        expected: u64,
        /// The transfer's nonce.
        got: u64,
    },
    /// The sender cannot pay.
    #[error(
        "transfer {index}: overdraft: sender account {id} has balance {balance} but sends {amount}"
    )]
    Overdraft {
        /// Transfer index.
        index: usize,
        /// Sender id.
        id: u64,
        /// Sender balance.
        balance: u64,
        /// Amount sent.
        amount: u64,
    },
    /// The receiver's balance would exceed 2^64 - 1.
    #[error("transfer {index}: receiver account {id} balance {balance} + amount {amount} overflows 64 bits")]
    BalanceOverflow {
        /// Transfer index.
        index: usize,
        /// Receiver id.
        id: u64,
        /// Receiver balance.
        balance: u64,
        /// Amount received.
        amount: u64,
    },
    /// The sender's nonce is already 2^64 - 1.
    #[error(
        "transfer {index}: sender account {id} nonce {nonce} cannot be incremented within 64 bits"
    )]
    NonceOverflow {
        /// Transfer index.
        index: usize,
        /// Sender id.
        id: u64,
        /// Its nonce.
        nonce: u64,
    },
}

#[cfg(test)]
mod tests;
