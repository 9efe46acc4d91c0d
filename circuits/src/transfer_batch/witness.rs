//! The witness builder: turns a [`BatchInput`] into the circuit's field-element witness,
//! refusing an invalid batch before any proving with an error that names the transfer and the
//! reason. The circuit enforces the same rules (see the MockProver tests); this check exists so
//! that a client hears "overdraft in transfer 3" instead of "proof generation failed".

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::{
    state::{leaf_hash, leaf_hash_fields, root_from_path},
    Account, BatchError, BatchInput, LeafInput, Party, TransferBatchConfig,
};
use crate::{field, poseidon};

/// A leaf's witness in field form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafWitness {
    /// Balance before the step.
    pub balance: u64,
    /// Nonce before the step.
    pub nonce: u64,
    /// Whether the leaf is empty.
    pub empty: bool,
    /// Siblings, leaf level first.
    pub path: Vec<Fr>,
}

/// One slot of the batch: a real transfer or padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotWitness {
    /// True for a no-op slot after the real transfers.
    pub padding: bool,
    /// Sender id.
    pub from: u64,
    /// Receiver id.
    pub to: u64,
    /// Amount.
    pub amount: u64,
    /// Transfer nonce.
    pub nonce: u64,
    /// Sender leaf.
    pub sender: LeafWitness,
    /// Receiver leaf.
    pub receiver: LeafWitness,
}

/// The complete witness of one batch, padded to the configuration's size.
///
/// Fields are public so that tests can force an invalid witness into the circuit; build one
/// with [`BatchWitness::from_input`], which validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWitness {
    /// The configuration the witness is for.
    pub config: TransferBatchConfig,
    /// Root before the batch.
    pub old_root: Fr,
    /// Exactly `config.batch_size` slots.
    pub slots: Vec<SlotWitness>,
}

impl SlotWitness {
    /// A no-op slot: all zeros, so every range check holds and nothing is updated.
    pub fn padding(depth: usize) -> Self {
        let leaf = LeafWitness {
            balance: 0,
            nonce: 0,
            empty: false,
            path: vec![field::zero(); depth],
        };
        Self {
            padding: true,
            from: 0,
            to: 0,
            amount: 0,
            nonce: 0,
            sender: leaf.clone(),
            receiver: leaf,
        }
    }
}

fn parse_path(
    index: usize,
    party: Party,
    leaf: &LeafInput,
    depth: usize,
) -> Result<Vec<Fr>, BatchError> {
    if leaf.path.len() != depth {
        return Err(BatchError::PathLength {
            index,
            party,
            got: leaf.path.len(),
            expected: depth,
        });
    }
    leaf.path
        .iter()
        .enumerate()
        .map(|(j, s)| {
            field::from_hex(s).map_err(|source| BatchError::FieldElement {
                location: format!("transfers[{index}].{party}.path[{j}]"),
                source,
            })
        })
        .collect()
}

impl BatchWitness {
    /// Validates a batch against `config` and builds its witness.
    pub fn from_input(
        config: &TransferBatchConfig,
        input: &BatchInput,
    ) -> Result<Self, BatchError> {
        let depth = config.depth;
        let n = input.transfers.len();
        if n == 0 || n > config.batch_size {
            return Err(BatchError::WrongTransferCount {
                got: n,
                max: config.batch_size,
                circuit: config.name(),
            });
        }
        let old_root =
            field::from_hex(&input.old_root).map_err(|source| BatchError::FieldElement {
                location: "old_root".into(),
                source,
            })?;
        let mut root = old_root;
        let mut slots = Vec::with_capacity(config.batch_size);
        for (index, t) in input.transfers.iter().enumerate() {
            for (party, id) in [(Party::Sender, t.from), (Party::Receiver, t.to)] {
                if depth < 64 && id >> depth != 0 {
                    return Err(BatchError::AccountIdOutOfRange {
                        index,
                        party,
                        id,
                        depth,
                    });
                }
            }
            let sender_path = parse_path(index, Party::Sender, &t.sender, depth)?;
            let receiver_path = parse_path(index, Party::Receiver, &t.receiver, depth)?;

            // Sender: must exist and sit in the current root.
            if t.sender.empty {
                return Err(BatchError::SenderMissing { index, id: t.from });
            }
            let sender = Account {
                balance: t.sender.balance,
                nonce: t.sender.nonce,
            };
            let computed = root_from_path(leaf_hash(t.from, sender), t.from, &sender_path);
            if computed != root {
                return Err(if index == 0 {
                    BatchError::OldRootMismatch {
                        claimed: input.old_root.clone(),
                        computed: field::to_hex(&computed),
                    }
                } else {
                    BatchError::BadMerklePath {
                        index,
                        party: Party::Sender,
                        id: t.from,
                        computed: field::to_hex(&computed),
                        expected: field::to_hex(&root),
                    }
                });
            }
            if t.nonce != sender.nonce {
                return Err(BatchError::WrongNonce {
                    index,
                    id: t.from,
                    expected: sender.nonce,
                    got: t.nonce,
                });
            }
            let new_balance =
                sender
                    .balance
                    .checked_sub(t.amount)
                    .ok_or(BatchError::Overdraft {
                        index,
                        id: t.from,
                        balance: sender.balance,
                        amount: t.amount,
                    })?;
            let new_nonce = sender
                .nonce
                .checked_add(1)
                .ok_or(BatchError::NonceOverflow {
                    index,
                    id: t.from,
                    nonce: sender.nonce,
                })?;
            let mid_root = root_from_path(
                leaf_hash(
                    t.from,
                    Account {
                        balance: new_balance,
                        nonce: new_nonce,
                    },
                ),
                t.from,
                &sender_path,
            );

            // Receiver: may be empty; sits in the intermediate root.
            let receiver = Account {
                balance: t.receiver.balance,
                nonce: t.receiver.nonce,
            };
            if t.receiver.empty && (receiver.balance != 0 || receiver.nonce != 0) {
                return Err(BatchError::NonZeroEmptyLeaf {
                    index,
                    party: Party::Receiver,
                    balance: receiver.balance,
                    nonce: receiver.nonce,
                });
            }
            let receiver_leaf = if t.receiver.empty {
                field::zero()
            } else {
                leaf_hash(t.to, receiver)
            };
            let computed = root_from_path(receiver_leaf, t.to, &receiver_path);
            if computed != mid_root {
                return Err(BatchError::BadMerklePath {
                    index,
                    party: Party::Receiver,
                    id: t.to,
                    computed: field::to_hex(&computed),
                    expected: field::to_hex(&mid_root),
                });
            }
            let received =
                receiver
                    .balance
                    .checked_add(t.amount)
                    .ok_or(BatchError::BalanceOverflow {
                        index,
                        id: t.to,
                        balance: receiver.balance,
                        amount: t.amount,
                    })?;
            root = root_from_path(
                leaf_hash(
                    t.to,
                    Account {
                        balance: received,
                        nonce: receiver.nonce,
                    },
                ),
                t.to,
                &receiver_path,
            );

            slots.push(SlotWitness {
                padding: false,
                from: t.from,
                to: t.to,
                amount: t.amount,
                nonce: t.nonce,
                sender: LeafWitness {
                    balance: sender.balance,
                    nonce: sender.nonce,
                    empty: false,
                    path: sender_path,
                },
                receiver: LeafWitness {
                    balance: receiver.balance,
                    nonce: receiver.nonce,
                    empty: t.receiver.empty,
                    path: receiver_path,
                },
            });
        }
        slots.resize(config.batch_size, SlotWitness::padding(depth));
        Ok(Self {
            config: *config,
            old_root,
            slots,
        })
    }

    /// A witness of only padding slots: the shape the circuit has for every input, used for
    /// keygen and for measuring the circuit.
    pub fn padding_only(config: &TransferBatchConfig) -> Self {
        Self {
            config: *config,
            old_root: field::zero(),
            slots: vec![SlotWitness::padding(config.depth); config.batch_size],
        }
    }

    /// The public inputs of a valid witness, `[old_root, new_root, batch_commitment]`,
    /// computed natively.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let mut root = self.old_root;
        let mut chain = field::zero();
        for s in self.slots.iter().filter(|s| !s.padding) {
            let credited = Fr::from(s.receiver.balance) + Fr::from(s.amount);
            let leaf = leaf_hash_fields(Fr::from(s.to), credited, Fr::from(s.receiver.nonce));
            root = root_from_path(leaf, s.to, &s.receiver.path);
            chain = poseidon::hash(&[
                chain,
                Fr::from(s.from),
                Fr::from(s.to),
                Fr::from(s.amount),
                Fr::from(s.nonce),
            ]);
        }
        vec![self.old_root, root, chain]
    }
}
