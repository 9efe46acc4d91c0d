//! Chains kept natively: each chain's account, nullifier and local exit trees, the owners'
//! private keys, and a multi-chain scenario that runs epochs of signed batches with exits
//! between chains and their claims against the global exit root. It produces the prove-job
//! inputs (`proofmill example-batch`, tests, and later the epoch settlement).

use std::collections::{BTreeMap, BTreeSet};

use halo2_base::halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::{
    account_leaf, exit_leaf, exit_message, global_index, transfer_message, ClaimInput, ExitInput,
    ExitRecordInput, GlobalExitTree, LeafInput, Party, RollupConfig, RollupError, RollupInput,
    SignatureInput, SparseMerkleTree, StateHeader, StateHeaderInput, TransferInput, Tx, TxKind,
    EXIT_TREE_DEPTH, GLOBAL_EXIT_DEPTH, NULLIFIER_DEPTH,
};

use crate::{
    circomlib::{
        babyjubjub::Point,
        eddsa::{self, PrivateKey, Signature},
        uint,
    },
    field,
};

/// An account's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// The owner's public key.
    pub key: Point,
    /// Balance.
    pub balance: u64,
    /// Transfers and exits sent so far.
    pub nonce: u64,
}

/// An exit as recorded by its origin chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// The chain it was made on.
    pub origin_chain: u64,
    /// Its slot in that chain's exit tree.
    pub index: u64,
    /// Sender account on the origin chain.
    pub from: u64,
    /// Destination chain.
    pub dest_chain: u64,
    /// Destination account.
    pub to: u64,
    /// Amount.
    pub amount: u64,
}

impl ExitRecord {
    fn leaf(&self) -> Fr {
        exit_leaf(
            self.origin_chain,
            self.from,
            self.dest_chain,
            self.to,
            self.amount,
        )
    }
}

/// What a claim needs from the outside: the exit and its paths to a global exit root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitProof {
    /// The exit.
    pub exit: ExitRecord,
    /// Siblings in the origin chain's exit tree.
    pub exit_path: Vec<Fr>,
    /// Siblings of the origin chain's exit root in the global exit tree.
    pub global_path: Vec<Fr>,
    /// The global exit root the paths lead to.
    pub global_exit_root: Fr,
}

/// The private keys of a chain's accounts (what the account owners' wallets hold).
#[derive(Debug, Clone, Default)]
pub struct Wallet {
    keys: BTreeMap<u64, PrivateKey>,
}

impl Wallet {
    /// Remembers account `id`'s key.
    pub fn insert(&mut self, id: u64, key: PrivateKey) {
        self.keys.insert(id, key);
    }

    /// Account `id`'s key.
    pub fn key(&self, id: u64) -> Option<&PrivateKey> {
        self.keys.get(&id)
    }
}

/// A transfer with its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTransfer {
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// Amount.
    pub amount: u64,
    /// Nonce.
    pub nonce: u64,
    /// The sender's signature of [`transfer_message`].
    pub signature: Signature,
}

/// An exit with its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedExit {
    /// Sender.
    pub from: u64,
    /// Destination chain.
    pub dest_chain: u64,
    /// Destination account.
    pub to: u64,
    /// Amount.
    pub amount: u64,
    /// Nonce.
    pub nonce: u64,
    /// The sender's signature of [`exit_message`].
    pub signature: Signature,
}

/// One chain's full state.
#[derive(Debug, Clone)]
pub struct RollupState {
    chain_id: u64,
    accounts: BTreeMap<u64, Account>,
    account_tree: SparseMerkleTree,
    nullifiers: SparseMerkleTree,
    exits: Vec<ExitRecord>,
    exit_tree: SparseMerkleTree,
    /// Tests only: apply transactions without the checks (wrapping arithmetic), to build the
    /// invalid but consistent witnesses a malicious prover could feed the circuit.
    #[cfg(test)]
    pub(crate) unchecked: bool,
}

fn decimal(x: &Fr) -> String {
    uint::to_decimal(x)
}

fn hexes(path: &[Fr]) -> Vec<String> {
    path.iter().map(field::to_hex).collect()
}

fn signature_input(sig: &Signature) -> SignatureInput {
    SignatureInput {
        r8: [decimal(&sig.r8.x), decimal(&sig.r8.y)],
        s: decimal(&sig.s),
    }
}

impl RollupState {
    /// An empty chain with an account tree of `depth`.
    ///
    /// # Panics
    /// On a chain id beyond the global exit tree or a depth outside 1 to
    /// [`super::MAX_DEPTH`] (both come from code, not input).
    pub fn new(chain_id: u64, depth: usize) -> Self {
        assert!(
            chain_id >> GLOBAL_EXIT_DEPTH == 0,
            "chain id {chain_id} out of range"
        );
        assert!(
            (1..=super::MAX_DEPTH).contains(&depth),
            "account tree depth {depth} out of range"
        );
        Self {
            chain_id,
            accounts: BTreeMap::new(),
            account_tree: SparseMerkleTree::new(depth),
            nullifiers: SparseMerkleTree::new(NULLIFIER_DEPTH),
            exits: Vec::new(),
            exit_tree: SparseMerkleTree::new(EXIT_TREE_DEPTH),
            #[cfg(test)]
            unchecked: false,
        }
    }

    fn checked(&self) -> bool {
        #[cfg(test)]
        return !self.unchecked;
        #[cfg(not(test))]
        true
    }

    fn add_total(
        &self,
        tx: Tx,
        total: &'static str,
        sum: &mut u64,
        amount: u64,
    ) -> Result<(), RollupError> {
        *sum = match sum.checked_add(amount) {
            Some(t) => t,
            None if !self.checked() => sum.wrapping_add(amount),
            None => {
                return Err(RollupError::TotalOverflow {
                    tx,
                    total,
                    sum: *sum,
                    amount,
                })
            }
        };
        Ok(())
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The account tree depth.
    pub fn depth(&self) -> usize {
        self.account_tree.depth()
    }

    /// The state header.
    pub fn header(&self) -> StateHeader {
        StateHeader {
            accounts_root: self.account_tree.root(),
            nullifier_root: self.nullifiers.root(),
            exit_root: self.exit_tree.root(),
            exit_count: self.exits.len() as u64,
        }
    }

    /// The state root.
    pub fn root(&self) -> Fr {
        self.header().root(self.chain_id)
    }

    /// The local exit root.
    pub fn exit_root(&self) -> Fr {
        self.exit_tree.root()
    }

    /// The exits made so far, in slot order.
    pub fn exits(&self) -> &[ExitRecord] {
        &self.exits
    }

    /// An account, if it exists.
    pub fn account(&self, id: u64) -> Option<Account> {
        self.accounts.get(&id).copied()
    }

    /// All accounts, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (u64, Account)> + '_ {
        self.accounts.iter().map(|(id, a)| (*id, *a))
    }

    /// Whether this chain has claimed exit `index` of chain `origin_chain`.
    pub fn is_claimed(&self, origin_chain: u64, index: u64) -> bool {
        self.nullifiers.leaf(global_index(origin_chain, index)) != Fr::ZERO
    }

    /// Sets an account (creating it; genesis), updating the account tree.
    ///
    /// # Panics
    /// When `id` does not fit the tree.
    pub fn set_account(&mut self, id: u64, account: Account) {
        self.accounts.insert(id, account);
        self.account_tree.set(
            id,
            account_leaf(&account.key, account.balance, account.nonce),
        );
    }

    /// The proof of this chain's exit `index` against `global`, which must hold this chain's
    /// current exit root (take it before the chain exits again).
    pub fn exit_proof(&self, index: u64, global: &GlobalExitTree) -> Option<ExitProof> {
        let exit = *self.exits.get(usize::try_from(index).ok()?)?;
        Some(ExitProof {
            exit,
            exit_path: self.exit_tree.path(index),
            global_path: global.path(self.chain_id),
            global_exit_root: global.root(),
        })
    }

    pub(crate) fn leaf_input(&self, id: u64) -> LeafInput {
        let a = self.account(id);
        let key = a.map_or(Point::identity(), |a| a.key);
        LeafInput {
            public_key: [decimal(&key.x), decimal(&key.y)],
            balance: a.map_or(0, |a| a.balance),
            nonce: a.map_or(0, |a| a.nonce),
            path: hexes(&self.account_tree.path(id)),
        }
    }

    fn existing(&self, tx: Tx, party: Party, id: u64) -> Result<Account, RollupError> {
        if !self.account_tree.fits(id) {
            return Err(RollupError::AccountIdOutOfRange {
                tx,
                party,
                id,
                depth: self.depth(),
            });
        }
        self.account(id)
            .ok_or(RollupError::AccountMissing { tx, party, id })
    }

    fn debit(
        &mut self,
        tx: Tx,
        from: u64,
        amount: u64,
        nonce: u64,
        msg: Fr,
        sig: &Signature,
    ) -> Result<LeafInput, RollupError> {
        let sender = self.existing(tx, Party::Sender, from)?;
        if !self.checked() {
            let leaf = self.leaf_input(from);
            self.set_account(
                from,
                Account {
                    balance: sender.balance.wrapping_sub(amount),
                    nonce: sender.nonce.wrapping_add(1),
                    ..sender
                },
            );
            return Ok(leaf);
        }
        eddsa::verify(msg, sig, &sender.key).map_err(|reason| RollupError::BadSignature {
            tx,
            id: from,
            reason,
        })?;
        if nonce != sender.nonce {
            return Err(RollupError::WrongNonce {
                tx,
                id: from,
                expected: sender.nonce,
                got: nonce,
            });
        }
        let balance = sender
            .balance
            .checked_sub(amount)
            .ok_or(RollupError::Overdraft {
                tx,
                id: from,
                balance: sender.balance,
                amount,
            })?;
        let next = sender
            .nonce
            .checked_add(1)
            .ok_or(RollupError::NonceOverflow {
                tx,
                id: from,
                nonce: sender.nonce,
            })?;
        let leaf = self.leaf_input(from);
        self.set_account(
            from,
            Account {
                balance,
                nonce: next,
                ..sender
            },
        );
        Ok(leaf)
    }

    fn credit(&mut self, tx: Tx, to: u64, amount: u64) -> Result<LeafInput, RollupError> {
        let receiver = self.existing(tx, Party::Receiver, to)?;
        let balance = match receiver.balance.checked_add(amount) {
            Some(b) => b,
            None if !self.checked() => receiver.balance.wrapping_add(amount),
            None => {
                return Err(RollupError::BalanceOverflow {
                    tx,
                    id: to,
                    balance: receiver.balance,
                    amount,
                })
            }
        };
        let leaf = self.leaf_input(to);
        self.set_account(
            to,
            Account {
                balance,
                ..receiver
            },
        );
        Ok(leaf)
    }

    fn claim(
        &mut self,
        tx: Tx,
        proof: &ExitProof,
        global_exit_root: Fr,
        claimed: &mut u64,
    ) -> Result<ClaimInput, RollupError> {
        let e = proof.exit;
        if self.checked() {
            self.check_claim(tx, proof, global_exit_root)?;
        }
        self.add_total(tx, "claimed", claimed, e.amount)?;
        let key = global_index(e.origin_chain, e.index);
        let nullifier_path = hexes(&self.nullifiers.path(key));
        let receiver = self.credit(tx, e.to, e.amount)?;
        self.nullifiers.set(key, Fr::ONE);
        Ok(ClaimInput {
            exit: ExitRecordInput {
                origin_chain: e.origin_chain,
                index: e.index,
                from: e.from,
                dest_chain: e.dest_chain,
                to: e.to,
                amount: e.amount,
            },
            account: e.to,
            exit_path: hexes(&proof.exit_path),
            global_path: hexes(&proof.global_path),
            nullifier_path,
            receiver,
        })
    }

    fn check_claim(
        &self,
        tx: Tx,
        proof: &ExitProof,
        global_exit_root: Fr,
    ) -> Result<(), RollupError> {
        let e = proof.exit;
        if e.origin_chain == self.chain_id {
            return Err(RollupError::ClaimFromOwnChain {
                tx,
                chain_id: self.chain_id,
            });
        }
        if e.dest_chain != self.chain_id {
            return Err(RollupError::ClaimForAnotherChain {
                tx,
                dest_chain: e.dest_chain,
                chain_id: self.chain_id,
            });
        }
        let local = super::root_from_path(e.leaf(), e.index, &proof.exit_path);
        let global = super::root_from_path(local, e.origin_chain, &proof.global_path);
        if global != global_exit_root {
            return Err(RollupError::UnknownExit {
                tx,
                origin_chain: e.origin_chain,
                index: e.index,
                computed: field::to_hex(&global),
                expected: field::to_hex(&global_exit_root),
            });
        }
        if self.is_claimed(e.origin_chain, e.index) {
            return Err(RollupError::AlreadyClaimed {
                tx,
                origin_chain: e.origin_chain,
                index: e.index,
            });
        }
        Ok(())
    }

    fn exit(&mut self, tx: Tx, e: &SignedExit, exited: &mut u64) -> Result<ExitInput, RollupError> {
        if e.dest_chain >> GLOBAL_EXIT_DEPTH != 0 {
            return Err(RollupError::TxChainOutOfRange {
                tx,
                chain_id: e.dest_chain,
            });
        }
        if e.dest_chain == self.chain_id && self.checked() {
            return Err(RollupError::ExitToOwnChain {
                tx,
                chain_id: self.chain_id,
            });
        }
        let index = self.exits.len() as u64;
        if index >> EXIT_TREE_DEPTH != 0 {
            return Err(RollupError::ExitTreeFull { tx });
        }
        self.add_total(tx, "exited", exited, e.amount)?;
        let msg = exit_message(self.chain_id, e.from, e.dest_chain, e.to, e.amount, e.nonce);
        let sender = self.debit(tx, e.from, e.amount, e.nonce, msg, &e.signature)?;
        let exit_path = hexes(&self.exit_tree.path(index));
        let record = ExitRecord {
            origin_chain: self.chain_id,
            index,
            from: e.from,
            dest_chain: e.dest_chain,
            to: e.to,
            amount: e.amount,
        };
        self.exit_tree.set(index, record.leaf());
        self.exits.push(record);
        Ok(ExitInput {
            from: e.from,
            dest_chain: e.dest_chain,
            to: e.to,
            amount: e.amount,
            nonce: e.nonce,
            signature: signature_input(&e.signature),
            sender,
            exit_path,
        })
    }

    /// Applies a batch of signed transactions (claims first, then transfers, then exits) and
    /// returns its prove-job input. Refuses what the circuit would refuse; on an error the
    /// state is left as it was.
    pub fn batch(
        &mut self,
        global_exit_root: Option<Fr>,
        claims: &[ExitProof],
        transfers: &[SignedTransfer],
        exits: &[SignedExit],
    ) -> Result<RollupInput, RollupError> {
        let before = self.clone();
        let result = self.apply_batch(global_exit_root, claims, transfers, exits);
        if result.is_err() {
            *self = before;
        }
        result
    }

    fn apply_batch(
        &mut self,
        global_exit_root: Option<Fr>,
        claims: &[ExitProof],
        transfers: &[SignedTransfer],
        exits: &[SignedExit],
    ) -> Result<RollupInput, RollupError> {
        let header = self.header();
        let old_state = StateHeaderInput {
            accounts_root: field::to_hex(&header.accounts_root),
            nullifier_root: field::to_hex(&header.nullifier_root),
            exit_root: field::to_hex(&header.exit_root),
            exit_count: header.exit_count,
        };
        let root = global_exit_root.unwrap_or(Fr::ZERO);
        let mut claimed = 0u64;
        let mut claim_inputs = Vec::new();
        for (index, proof) in claims.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Claim,
                index,
            };
            claim_inputs.push(self.claim(tx, proof, root, &mut claimed)?);
        }
        let mut transfer_inputs = Vec::new();
        for (index, t) in transfers.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Transfer,
                index,
            };
            self.existing(tx, Party::Receiver, t.to)?;
            let msg = transfer_message(self.chain_id, t.from, t.to, t.amount, t.nonce);
            let sender = self.debit(tx, t.from, t.amount, t.nonce, msg, &t.signature)?;
            let receiver = self.credit(tx, t.to, t.amount)?;
            transfer_inputs.push(TransferInput {
                from: t.from,
                to: t.to,
                amount: t.amount,
                nonce: t.nonce,
                signature: signature_input(&t.signature),
                sender,
                receiver,
            });
        }
        let mut exited = 0u64;
        let mut exit_inputs = Vec::new();
        for (index, e) in exits.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Exit,
                index,
            };
            exit_inputs.push(self.exit(tx, e, &mut exited)?);
        }
        Ok(RollupInput {
            chain_id: self.chain_id,
            old_state,
            global_exit_root: global_exit_root.map(|r| field::to_hex(&r)),
            claims: claim_inputs,
            transfers: transfer_inputs,
            exits: exit_inputs,
        })
    }

    /// Signs a transfer from `from` with its current nonce plus `pending` (transactions of the
    /// same sender earlier in the batch).
    pub fn sign_transfer(
        &self,
        wallet: &Wallet,
        from: u64,
        to: u64,
        amount: u64,
        pending: u64,
    ) -> Option<SignedTransfer> {
        let nonce = self.account(from)?.nonce.checked_add(pending)?;
        let signature =
            wallet
                .key(from)?
                .sign(transfer_message(self.chain_id, from, to, amount, nonce));
        Some(SignedTransfer {
            from,
            to,
            amount,
            nonce,
            signature,
        })
    }

    /// Signs an exit, as [`RollupState::sign_transfer`].
    pub fn sign_exit(
        &self,
        wallet: &Wallet,
        from: u64,
        dest_chain: u64,
        to: u64,
        amount: u64,
        pending: u64,
    ) -> Option<SignedExit> {
        let nonce = self.account(from)?.nonce.checked_add(pending)?;
        let signature = wallet.key(from)?.sign(exit_message(
            self.chain_id,
            from,
            dest_chain,
            to,
            amount,
            nonce,
        ));
        Some(SignedExit {
            from,
            dest_chain,
            to,
            amount,
            nonce,
            signature,
        })
    }

    /// `count` consecutive example batches of chain `chain_id` for `config`, reproducible from
    /// `seed`: each fills every slot — claims of exits that a partner chain (`chain_id + 1`)
    /// made to this chain, transfers (one a self-transfer), exits to the partner — and starts
    /// at the state root the previous one ended at.
    pub fn example_chain(
        config: &RollupConfig,
        chain_id: u64,
        seed: u64,
        count: usize,
    ) -> Vec<RollupInput> {
        Self::example_chain_with(config, chain_id, seed, count, true, true)
    }

    /// [`RollupState::example_chain`], with the exit slots filled only when `exits` and the
    /// claim slots only when `claims` (transfers always).
    pub fn example_chain_with(
        config: &RollupConfig,
        chain_id: u64,
        seed: u64,
        count: usize,
        exits: bool,
        claims: bool,
    ) -> Vec<RollupInput> {
        let (exit_slots, claim_slots) = (
            if exits { config.exits } else { 0 },
            if claims { config.claims } else { 0 },
        );
        let partner = (chain_id + 1) % (1 << GLOBAL_EXIT_DEPTH);
        let mut scenario = MultiChainScenario::new(config, &[chain_id, partner], seed);
        // The partner's exits to this chain, enough for every claim slot of every batch.
        // (The partner's batch is only applied natively, so it needs no exit slots.)
        let needed = claim_slots * count;
        if needed > 0 {
            let global = scenario.global_exit_tree();
            scenario
                .batch(partner, &global, 0, 0, &vec![chain_id; needed])
                .expect("partner exits are valid by construction");
        }
        let global = scenario.global_exit_tree();
        (0..count)
            .map(|_| {
                scenario
                    .batch(
                        chain_id,
                        &global,
                        claim_slots,
                        config.transfers,
                        &vec![partner; exit_slots],
                    )
                    .expect("example batches are valid by construction")
            })
            .collect()
    }
}

/// A snapshot of every chain's exits and the global exit tree over their exit roots: what L1
/// settled at an epoch boundary, from which claims in the next epoch are proven.
#[derive(Debug, Clone)]
pub struct GlobalSnapshot {
    tree: GlobalExitTree,
    /// Per chain: its exit tree and exits at the snapshot.
    chains: BTreeMap<u64, (SparseMerkleTree, Vec<ExitRecord>)>,
}

impl GlobalSnapshot {
    /// The global exit root.
    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// The global exit tree.
    pub fn tree(&self) -> &GlobalExitTree {
        &self.tree
    }

    /// The proof of exit `index` of chain `origin_chain` as of the snapshot.
    pub fn proof(&self, origin_chain: u64, index: u64) -> Option<ExitProof> {
        let (tree, exits) = self.chains.get(&origin_chain)?;
        let exit = *exits.get(usize::try_from(index).ok()?)?;
        Some(ExitProof {
            exit,
            exit_path: tree.path(index),
            global_path: self.tree.path(origin_chain),
            global_exit_root: self.tree.root(),
        })
    }

    /// Every exit to `dest_chain` in the snapshot, in (origin chain, index) order.
    pub fn exits_to(&self, dest_chain: u64) -> Vec<ExitRecord> {
        self.chains
            .values()
            .flat_map(|(_, exits)| exits.iter().filter(|e| e.dest_chain == dest_chain).copied())
            .collect()
    }
}

/// Several chains with funded accounts and their owners' keys, run batch by batch:
/// reproducible, consistent multi-chain histories (exits from one chain claimed on another
/// against a global exit root), for examples, tests and epoch settlement.
#[derive(Debug, Clone)]
pub struct MultiChainScenario {
    config: RollupConfig,
    chains: BTreeMap<u64, (RollupState, Wallet)>,
    rng: ChaCha20Rng,
}

impl MultiChainScenario {
    /// Genesis of `chain_ids` (distinct, below 2^8), each with a few funded accounts (as many as
    /// the configuration has slots, between 2 and 16) whose keys derive from `seed`.
    ///
    /// # Panics
    /// On a chain id beyond the global exit tree.
    pub fn new(config: &RollupConfig, chain_ids: &[u64], seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let max_id = (1u64 << config.depth) - 1;
        let funded = (config.transfers + config.exits + config.claims).clamp(2, 16);
        let mut chains = BTreeMap::new();
        for &chain_id in chain_ids {
            let mut state = RollupState::new(chain_id, config.depth);
            let mut wallet = Wallet::default();
            let mut ids = BTreeSet::new();
            while ids.len() < funded.min(max_id as usize + 1) {
                let id = rng.gen_range(0..=max_id);
                if ids.insert(id) {
                    let mut bytes = [0u8; 32];
                    rng.fill(&mut bytes);
                    let key = PrivateKey::from_bytes(bytes);
                    state.set_account(
                        id,
                        Account {
                            key: key.public_key(),
                            balance: rng.gen_range(1_000_000..10_000_000),
                            nonce: rng.gen_range(0..5),
                        },
                    );
                    wallet.insert(id, key);
                }
            }
            chains.insert(chain_id, (state, wallet));
        }
        Self {
            config: *config,
            chains,
            rng,
        }
    }

    /// A chain's state.
    pub fn state(&self, chain_id: u64) -> Option<&RollupState> {
        self.chains.get(&chain_id).map(|(s, _)| s)
    }

    /// A chain's wallet.
    pub fn wallet(&self, chain_id: u64) -> Option<&Wallet> {
        self.chains.get(&chain_id).map(|(_, w)| w)
    }

    /// The global exit tree over every chain's current local exit root, with the exits it
    /// covers (take it at an epoch boundary).
    pub fn global_exit_tree(&self) -> GlobalSnapshot {
        GlobalSnapshot {
            tree: GlobalExitTree::from_roots(
                self.chains.iter().map(|(id, (s, _))| (*id, s.exit_root())),
            ),
            chains: self
                .chains
                .iter()
                .map(|(id, (s, _))| (*id, (s.exit_tree.clone(), s.exits.clone())))
                .collect(),
        }
    }

    /// Runs one batch on `chain_id` and returns its prove-job input: up to `claims` claims of
    /// the snapshot's unclaimed exits to this chain, `transfers` random transfers between its
    /// accounts (the second, when there are two, a self-transfer), and one exit to each chain
    /// of `exit_to` (to a random existing account there).
    pub fn batch(
        &mut self,
        chain_id: u64,
        global: &GlobalSnapshot,
        claims: usize,
        transfers: usize,
        exit_to: &[u64],
    ) -> Result<RollupInput, RollupError> {
        self.batch_with_root(chain_id, global, claims, transfers, exit_to, false)
    }

    /// [`MultiChainScenario::batch`] for an epoch settlement: the batch names the snapshot's
    /// global exit root even when it has no claims, as every input of an epoch must.
    pub fn epoch_batch(
        &mut self,
        chain_id: u64,
        global: &GlobalSnapshot,
        claims: usize,
        transfers: usize,
        exit_to: &[u64],
    ) -> Result<RollupInput, RollupError> {
        self.batch_with_root(chain_id, global, claims, transfers, exit_to, true)
    }

    /// The value held in `chain_id`'s accounts (its genesis bridge balance at genesis).
    pub fn total_balance(&self, chain_id: u64) -> Option<u128> {
        self.state(chain_id)
            .map(|s| s.accounts().map(|(_, a)| u128::from(a.balance)).sum())
    }

    fn batch_with_root(
        &mut self,
        chain_id: u64,
        global: &GlobalSnapshot,
        claims: usize,
        transfers: usize,
        exit_to: &[u64],
        always_root: bool,
    ) -> Result<RollupInput, RollupError> {
        let dest_accounts: Vec<Vec<u64>> = exit_to
            .iter()
            .map(|d| {
                self.state(*d)
                    .map(|s| s.accounts().map(|(id, _)| id).collect())
                    .unwrap_or_else(|| vec![0])
            })
            .collect();
        let (state, wallet) = self
            .chains
            .get_mut(&chain_id)
            .ok_or(RollupError::UnknownChain { chain_id })?;
        let rng = &mut self.rng;
        let proofs: Vec<ExitProof> = global
            .exits_to(chain_id)
            .into_iter()
            .filter(|e| !state.is_claimed(e.origin_chain, e.index))
            .take(claims)
            .filter_map(|e| global.proof(e.origin_chain, e.index))
            .collect();
        let ids: Vec<u64> = state.accounts().map(|(id, _)| id).collect();
        let mut pending: BTreeMap<u64, u64> = BTreeMap::new();
        let mut next = |from: u64| {
            let p = pending.entry(from).or_insert(0);
            *p += 1;
            *p - 1
        };
        let mut signed_transfers = Vec::new();
        for i in 0..transfers {
            let from = ids[i % ids.len()];
            let to = if i == 1 {
                from
            } else {
                ids[rng.gen_range(0..ids.len())]
            };
            let amount = rng.gen_range(1..1000);
            let p = next(from);
            signed_transfers.push(state.sign_transfer(wallet, from, to, amount, p).ok_or(
                RollupError::AccountMissing {
                    tx: Tx {
                        kind: TxKind::Transfer,
                        index: i,
                    },
                    party: Party::Sender,
                    id: from,
                },
            )?);
        }
        let mut signed_exits = Vec::new();
        for (i, (dest, accounts)) in exit_to.iter().zip(&dest_accounts).enumerate() {
            let from = ids[(i + transfers) % ids.len()];
            let to = accounts[rng.gen_range(0..accounts.len())];
            let amount = rng.gen_range(1..1000);
            let p = next(from);
            signed_exits.push(state.sign_exit(wallet, from, *dest, to, amount, p).ok_or(
                RollupError::AccountMissing {
                    tx: Tx {
                        kind: TxKind::Exit,
                        index: i,
                    },
                    party: Party::Sender,
                    id: from,
                },
            )?);
        }
        let root = (always_root || !proofs.is_empty()).then(|| global.root());
        state.batch(root, &proofs, &signed_transfers, &signed_exits)
    }

    /// The configuration the scenario's batches are for.
    pub fn config(&self) -> &RollupConfig {
        &self.config
    }

    /// The simplest consistent two-chain history: chain `a`'s batch exits to chain `b`
    /// (filling its exit slots), then chain `b`'s batch claims those exits against the global
    /// exit root over both chains' exit roots. Returns both inputs and that global root.
    pub fn two_chain_example(
        config: &RollupConfig,
        a: u64,
        b: u64,
        seed: u64,
    ) -> (RollupInput, RollupInput, Fr) {
        let mut scenario = Self::new(config, &[a, b], seed);
        let genesis = scenario.global_exit_tree();
        let first = scenario
            .batch(a, &genesis, 0, config.transfers, &vec![b; config.exits])
            .expect("chain a's batch is valid by construction");
        let settled = scenario.global_exit_tree();
        let second = scenario
            .batch(b, &settled, config.claims, config.transfers, &[])
            .expect("chain b's claims are valid by construction");
        (first, second, settled.root())
    }
}
