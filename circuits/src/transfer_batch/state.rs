//! A full rollup state: the sparse Merkle tree of accounts, kept natively. It applies transfers
//! and produces the witness a prove job needs (used by `proofmill example-batch` and tests).

use std::collections::{BTreeMap, HashMap};

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use rand::Rng;

use super::{BatchError, BatchInput, LeafInput, TransferBatchConfig, TransferInput};
use crate::{field, poseidon};

/// An account's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    /// Balance.
    pub balance: u64,
    /// Number of transfers sent so far.
    pub nonce: u64,
}

/// The hash of a non-empty leaf.
pub(crate) fn leaf_hash(id: u64, account: Account) -> Fr {
    leaf_hash_fields(
        Fr::from(id),
        Fr::from(account.balance),
        Fr::from(account.nonce),
    )
}

/// The hash of a non-empty leaf from field elements (as the circuit computes it).
pub(crate) fn leaf_hash_fields(id: Fr, balance: Fr, nonce: Fr) -> Fr {
    poseidon::hash(&[id, balance, nonce])
}

/// The root reached from `leaf` at index `id` along `path` (siblings, leaf level first).
pub(crate) fn root_from_path(leaf: Fr, id: u64, path: &[Fr]) -> Fr {
    path.iter().enumerate().fold(leaf, |cur, (level, sibling)| {
        if (id >> level) & 1 == 1 {
            poseidon::compress(*sibling, cur)
        } else {
            poseidon::compress(cur, *sibling)
        }
    })
}

/// A rollup's account tree.
#[derive(Debug, Clone)]
pub struct State {
    depth: usize,
    accounts: BTreeMap<u64, Account>,
    /// Non-default nodes, keyed by (level, index); level 0 holds leaves.
    nodes: HashMap<(usize, u64), Fr>,
    /// Root of an empty subtree of each height.
    empty: Vec<Fr>,
}

impl State {
    /// An empty tree of the given depth (1 to [`super::MAX_DEPTH`]).
    pub fn new(depth: usize) -> Self {
        assert!(
            (1..=super::MAX_DEPTH).contains(&depth),
            "tree depth {depth} out of range"
        );
        let mut empty = vec![field::zero()];
        for level in 0..depth {
            empty.push(poseidon::compress(empty[level], empty[level]));
        }
        Self {
            depth,
            accounts: BTreeMap::new(),
            nodes: HashMap::new(),
            empty,
        }
    }

    /// Tree depth.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// An account, if it exists.
    pub fn account(&self, id: u64) -> Option<Account> {
        self.accounts.get(&id).copied()
    }

    /// All accounts, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (u64, Account)> + '_ {
        self.accounts.iter().map(|(id, a)| (*id, *a))
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        self.nodes
            .get(&(level, index))
            .copied()
            .unwrap_or(self.empty[level])
    }

    fn check_id(&self, id: u64) -> bool {
        self.depth >= 64 || id >> self.depth == 0
    }

    /// Sets an account (creating it) and updates the path to the root.
    pub fn set(&mut self, id: u64, account: Account) {
        assert!(
            self.check_id(id),
            "account id {id} does not fit depth {}",
            self.depth
        );
        self.accounts.insert(id, account);
        let mut cur = leaf_hash(id, account);
        self.nodes.insert((0, id), cur);
        let mut index = id;
        for level in 0..self.depth {
            let sibling = self.node(level, index ^ 1);
            cur = if index & 1 == 1 {
                poseidon::compress(sibling, cur)
            } else {
                poseidon::compress(cur, sibling)
            };
            index >>= 1;
            self.nodes.insert((level + 1, index), cur);
        }
    }

    /// The Merkle path of a leaf: siblings from the leaf level up.
    pub fn path(&self, id: u64) -> Vec<Fr> {
        (0..self.depth)
            .map(|level| self.node(level, (id >> level) ^ 1))
            .collect()
    }

    pub(crate) fn leaf_input(&self, id: u64) -> LeafInput {
        let account = self.account(id);
        LeafInput {
            balance: account.map_or(0, |a| a.balance),
            nonce: account.map_or(0, |a| a.nonce),
            empty: account.is_none(),
            path: self.path(id).iter().map(field::to_hex).collect(),
        }
    }

    /// Applies one transfer, returning its witness. Refuses what the circuit would refuse.
    pub fn apply(
        &mut self,
        index: usize,
        from: u64,
        to: u64,
        amount: u64,
    ) -> Result<TransferInput, BatchError> {
        use super::Party;
        for (party, id) in [(Party::Sender, from), (Party::Receiver, to)] {
            if !self.check_id(id) {
                return Err(BatchError::AccountIdOutOfRange {
                    index,
                    party,
                    id,
                    depth: self.depth,
                });
            }
        }
        let sender_leaf = self.leaf_input(from);
        let sender = self
            .account(from)
            .ok_or(BatchError::SenderMissing { index, id: from })?;
        let new_balance = sender
            .balance
            .checked_sub(amount)
            .ok_or(BatchError::Overdraft {
                index,
                id: from,
                balance: sender.balance,
                amount,
            })?;
        let new_nonce = sender
            .nonce
            .checked_add(1)
            .ok_or(BatchError::NonceOverflow {
                index,
                id: from,
                nonce: sender.nonce,
            })?;
        let receiver_before = self.account(to).unwrap_or_default();
        if to != from {
            receiver_before
                .balance
                .checked_add(amount)
                .ok_or(BatchError::BalanceOverflow {
                    index,
                    id: to,
                    balance: receiver_before.balance,
                    amount,
                })?;
        }
        self.set(
            from,
            Account {
                balance: new_balance,
                nonce: new_nonce,
            },
        );
        let receiver_leaf = self.leaf_input(to);
        let receiver = self.account(to).unwrap_or_default();
        self.set(
            to,
            Account {
                balance: receiver.balance + amount,
                nonce: receiver.nonce,
            },
        );
        Ok(TransferInput {
            from,
            to,
            amount,
            nonce: sender.nonce,
            sender: sender_leaf,
            receiver: receiver_leaf,
        })
    }

    /// Applies a batch of `(from, to, amount)` transfers and returns the prove-job input. On an
    /// error the state is left as it was.
    pub fn batch(&mut self, transfers: &[(u64, u64, u64)]) -> Result<BatchInput, BatchError> {
        let before = self.clone();
        let old_root = field::to_hex(&self.root());
        let mut out = Vec::with_capacity(transfers.len());
        for (index, (from, to, amount)) in transfers.iter().enumerate() {
            match self.apply(index, *from, *to, *amount) {
                Ok(t) => out.push(t),
                Err(e) => {
                    *self = before;
                    return Err(e);
                }
            }
        }
        Ok(BatchInput {
            old_root,
            transfers: out,
        })
    }

    /// A reproducible example: a state of a few funded accounts and a full batch of valid
    /// transfers for `config`, including (when there is room) a self-transfer and a transfer to
    /// a fresh, empty account. Returns the state after the batch and the prove-job input.
    pub fn example(config: &TransferBatchConfig, seed: u64) -> (State, BatchInput) {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut state = State::new(config.depth);
        let max_id = if config.depth >= 64 {
            u64::MAX
        } else {
            (1u64 << config.depth) - 1
        };
        let funded = config.batch_size.clamp(2, 16);
        let mut ids = Vec::new();
        while ids.len() < funded {
            let id = rng.gen_range(0..=max_id);
            if !ids.contains(&id) {
                ids.push(id);
                state.set(
                    id,
                    Account {
                        balance: rng.gen_range(1_000_000..10_000_000),
                        nonce: rng.gen_range(0..5),
                    },
                );
            }
        }
        let mut transfers = Vec::new();
        for i in 0..config.batch_size {
            let from = ids[i % ids.len()];
            let to = match i {
                1 => from,
                2 => loop {
                    let id = rng.gen_range(0..=max_id);
                    if state.account(id).is_none() && !ids.contains(&id) {
                        break id;
                    }
                },
                _ => ids[rng.gen_range(0..ids.len())],
            };
            transfers.push((from, to, rng.gen_range(0..1000)));
        }
        let input = state
            .batch(&transfers)
            .expect("example transfers are valid by construction");
        (state, input)
    }

    /// `count` consecutive example batches of one rollup: the first is [`State::example`]'s,
    /// and each next one starts at the root the previous one ended at (what aggregation of a
    /// rollup epoch needs).
    pub fn example_chain(config: &TransferBatchConfig, seed: u64, count: usize) -> Vec<BatchInput> {
        let (mut state, first) = Self::example(config, seed);
        let mut batches = vec![first];
        for round in 1..count {
            let ids: Vec<u64> = state.accounts().map(|(id, _)| id).collect();
            let transfers: Vec<(u64, u64, u64)> = (0..config.batch_size)
                .map(|i| {
                    (
                        ids[i % ids.len()],
                        ids[(i + round) % ids.len()],
                        (round as u64 % 100) + 1,
                    )
                })
                .collect();
            batches.push(
                state
                    .batch(&transfers)
                    .expect("small transfers between funded accounts are valid"),
            );
        }
        batches
    }
}
