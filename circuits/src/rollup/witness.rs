//! The witness builder: turns a [`RollupInput`] into the circuit's witness, refusing an
//! invalid batch before any proving with an error that names the transaction and the reason.
//! The circuit enforces the same rules on its own (see the MockProver tests); this check exists
//! so that a client hears "transfer 3: overdraft" instead of "proof generation failed".

use halo2_base::halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr};

use super::{
    account_leaf, account_leaf_fields, claim_item, commitment_link, exit_leaf, exit_message,
    global_index, root_from_path, state_root, transfer_message, ClaimInput, LeafInput, Party,
    RollupConfig, RollupError, RollupInput, SignatureInput, Tx, TxKind, EXIT_TREE_DEPTH,
    GLOBAL_EXIT_DEPTH, NULLIFIER_DEPTH,
};
use crate::{
    circomlib::{
        babyjubjub::Point,
        eddsa::{self, Signature},
        uint,
    },
    field,
};

/// The parts of a chain's state root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateHeader {
    /// Root of the account tree.
    pub accounts_root: Fr,
    /// Root of the nullifier tree.
    pub nullifier_root: Fr,
    /// Root of the local exit tree.
    pub exit_root: Fr,
    /// The next free slot of the exit tree.
    pub exit_count: u64,
}

impl StateHeader {
    /// The state root of chain `chain_id` with this header.
    pub fn root(&self, chain_id: u64) -> Fr {
        state_root(
            chain_id,
            self.accounts_root,
            self.nullifier_root,
            self.exit_root,
            self.exit_count,
        )
    }
}

/// An account leaf's witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafWitness {
    /// The owner's public key.
    pub key: Point,
    /// Balance before the step.
    pub balance: u64,
    /// Nonce before the step.
    pub nonce: u64,
    /// Siblings, leaf level first.
    pub path: Vec<Fr>,
}

/// A transfer slot: a real transfer or padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferWitness {
    /// True for a no-op slot after the real transfers.
    pub padding: bool,
    /// Sender id.
    pub from: u64,
    /// Receiver id.
    pub to: u64,
    /// Amount.
    pub amount: u64,
    /// Nonce consumed.
    pub nonce: u64,
    /// Sender's signature.
    pub signature: Signature,
    /// Sender leaf.
    pub sender: LeafWitness,
    /// Receiver leaf (after the sender's update).
    pub receiver: LeafWitness,
}

/// An exit slot: a real exit or padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitWitness {
    /// True for a no-op slot after the real exits.
    pub padding: bool,
    /// Sender id.
    pub from: u64,
    /// Destination chain.
    pub dest_chain: u64,
    /// Destination account.
    pub to: u64,
    /// Amount.
    pub amount: u64,
    /// Nonce consumed.
    pub nonce: u64,
    /// Sender's signature.
    pub signature: Signature,
    /// Sender leaf.
    pub sender: LeafWitness,
    /// Siblings of exit slot `exit_count`.
    pub exit_path: Vec<Fr>,
}

/// A claim slot: a real claim or padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimWitness {
    /// True for a no-op slot after the real claims.
    pub padding: bool,
    /// The exit's origin chain.
    pub origin_chain: u64,
    /// The exit's slot in the origin chain's exit tree.
    pub index: u64,
    /// The exit's sender on the origin chain.
    pub from: u64,
    /// The exit's destination chain.
    pub dest_chain: u64,
    /// The exit's destination account.
    pub dest_account: u64,
    /// The account credited here.
    pub account: u64,
    /// The amount.
    pub amount: u64,
    /// Siblings in the origin chain's exit tree.
    pub exit_path: Vec<Fr>,
    /// Siblings in the global exit tree.
    pub global_path: Vec<Fr>,
    /// Siblings in this chain's nullifier tree.
    pub nullifier_path: Vec<Fr>,
    /// The credited account's leaf.
    pub receiver: LeafWitness,
}

/// The complete witness of one batch, every list padded to the configuration's slots.
///
/// Fields are public so that tests can force an invalid witness into the circuit; build one
/// with [`RollupWitness::from_input`], which validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupWitness {
    /// The configuration the witness is for.
    pub config: RollupConfig,
    /// The chain.
    pub chain_id: u64,
    /// The state before the batch.
    pub old_state: StateHeader,
    /// The global exit root for the claims.
    pub global_exit_root: Fr,
    /// Exactly `config.claims` slots.
    pub claims: Vec<ClaimWitness>,
    /// Exactly `config.transfers` slots.
    pub transfers: Vec<TransferWitness>,
    /// Exactly `config.exits` slots.
    pub exits: Vec<ExitWitness>,
}

impl LeafWitness {
    /// A padding leaf: the base point as key (on the curve, as the circuit requires), zeros.
    pub fn padding(depth: usize) -> Self {
        Self {
            key: Point::base8(),
            balance: 0,
            nonce: 0,
            path: vec![Fr::ZERO; depth],
        }
    }

    fn hash(&self) -> Fr {
        account_leaf(&self.key, self.balance, self.nonce)
    }
}

fn padding_signature() -> Signature {
    Signature {
        r8: Point::base8(),
        s: Fr::ZERO,
    }
}

impl TransferWitness {
    /// A no-op slot.
    pub fn padding(depth: usize) -> Self {
        Self {
            padding: true,
            from: 0,
            to: 0,
            amount: 0,
            nonce: 0,
            signature: padding_signature(),
            sender: LeafWitness::padding(depth),
            receiver: LeafWitness::padding(depth),
        }
    }
}

impl ExitWitness {
    /// A no-op slot.
    pub fn padding(depth: usize) -> Self {
        Self {
            padding: true,
            from: 0,
            dest_chain: 0,
            to: 0,
            amount: 0,
            nonce: 0,
            signature: padding_signature(),
            sender: LeafWitness::padding(depth),
            exit_path: vec![Fr::ZERO; EXIT_TREE_DEPTH],
        }
    }
}

impl ClaimWitness {
    /// A no-op slot.
    pub fn padding(depth: usize) -> Self {
        Self {
            padding: true,
            origin_chain: 0,
            index: 0,
            from: 0,
            dest_chain: 0,
            dest_account: 0,
            account: 0,
            amount: 0,
            exit_path: vec![Fr::ZERO; EXIT_TREE_DEPTH],
            global_path: vec![Fr::ZERO; GLOBAL_EXIT_DEPTH],
            nullifier_path: vec![Fr::ZERO; NULLIFIER_DEPTH],
            receiver: LeafWitness::padding(depth),
        }
    }

    /// The exit's leaf.
    pub fn exit_leaf(&self) -> Fr {
        exit_leaf(
            self.origin_chain,
            self.from,
            self.dest_chain,
            self.dest_account,
            self.amount,
        )
    }
}

fn hex(location: impl FnOnce() -> String, text: &str) -> Result<Fr, RollupError> {
    field::from_hex(text).map_err(|source| RollupError::FieldElement {
        location: location(),
        source,
    })
}

fn path(
    tx: Tx,
    name: &'static str,
    location: &str,
    siblings: &[String],
    expected: usize,
) -> Result<Vec<Fr>, RollupError> {
    if siblings.len() != expected {
        return Err(RollupError::PathLength {
            tx,
            path: name,
            got: siblings.len(),
            expected,
        });
    }
    siblings
        .iter()
        .enumerate()
        .map(|(j, s)| hex(|| format!("{location}.{name}[{j}]"), s))
        .collect()
}

fn integer(location: impl FnOnce() -> String, text: &str) -> Result<Fr, RollupError> {
    uint::parse_field(text).map_err(|source| RollupError::Integer {
        location: location(),
        source,
    })
}

fn point(location: &str, coords: &[String; 2]) -> Result<Point, RollupError> {
    Ok(Point {
        x: integer(|| format!("{location}[0]"), &coords[0])?,
        y: integer(|| format!("{location}[1]"), &coords[1])?,
    })
}

fn signature(location: &str, sig: &SignatureInput) -> Result<Signature, RollupError> {
    Ok(Signature {
        r8: point(&format!("{location}.signature.R8"), &sig.r8)?,
        s: integer(|| format!("{location}.signature.S"), &sig.s)?,
    })
}

fn leaf(
    tx: Tx,
    party: &'static str,
    location: &str,
    input: &LeafInput,
    depth: usize,
) -> Result<LeafWitness, RollupError> {
    let name = if party == "sender" {
        "sender.path"
    } else {
        "receiver.path"
    };
    Ok(LeafWitness {
        key: point(&format!("{location}.{party}.public_key"), &input.public_key)?,
        balance: input.balance,
        nonce: input.nonce,
        path: path(tx, name, location, &input.path, depth)?,
    })
}

fn check_id(tx: Tx, party: Party, id: u64, depth: usize) -> Result<(), RollupError> {
    if depth < 64 && id >> depth != 0 {
        return Err(RollupError::AccountIdOutOfRange {
            tx,
            party,
            id,
            depth,
        });
    }
    Ok(())
}

fn check_chain(tx: Tx, chain_id: u64) -> Result<(), RollupError> {
    if chain_id >> GLOBAL_EXIT_DEPTH != 0 {
        return Err(RollupError::TxChainOutOfRange { tx, chain_id });
    }
    Ok(())
}

/// The running state of a batch while it is checked.
struct Running {
    accounts_root: Fr,
    nullifier_root: Fr,
    exit_root: Fr,
    exit_count: u64,
    exited: u64,
    claimed: u64,
}

/// Checks a sender leaf against the accounts root, the signature, the nonce and the balance;
/// returns the accounts root after the debit.
#[allow(clippy::too_many_arguments)]
fn debit(
    tx: Tx,
    accounts_root: Fr,
    from: u64,
    amount: u64,
    nonce: u64,
    msg: Fr,
    sig: &Signature,
    sender: &LeafWitness,
) -> Result<Fr, RollupError> {
    let computed = root_from_path(sender.hash(), from, &sender.path);
    if computed != accounts_root {
        return Err(RollupError::BadAccountPath {
            tx,
            party: Party::Sender,
            id: from,
            computed: field::to_hex(&computed),
            expected: field::to_hex(&accounts_root),
        });
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
    Ok(root_from_path(
        account_leaf(&sender.key, balance, next),
        from,
        &sender.path,
    ))
}

/// Checks a receiver leaf against the accounts root and credits it; returns the new root.
fn credit(
    tx: Tx,
    accounts_root: Fr,
    to: u64,
    amount: u64,
    receiver: &LeafWitness,
) -> Result<Fr, RollupError> {
    let computed = root_from_path(receiver.hash(), to, &receiver.path);
    if computed != accounts_root {
        return Err(RollupError::BadAccountPath {
            tx,
            party: Party::Receiver,
            id: to,
            computed: field::to_hex(&computed),
            expected: field::to_hex(&accounts_root),
        });
    }
    let balance = receiver
        .balance
        .checked_add(amount)
        .ok_or(RollupError::BalanceOverflow {
            tx,
            id: to,
            balance: receiver.balance,
            amount,
        })?;
    Ok(root_from_path(
        account_leaf(&receiver.key, balance, receiver.nonce),
        to,
        &receiver.path,
    ))
}

fn parse_claim(tx: Tx, input: &ClaimInput, depth: usize) -> Result<ClaimWitness, RollupError> {
    let location = format!("claims[{}]", tx.index);
    let e = &input.exit;
    check_chain(tx, e.origin_chain)?;
    check_chain(tx, e.dest_chain)?;
    if e.index >> EXIT_TREE_DEPTH != 0 {
        return Err(RollupError::ExitIndexOutOfRange { tx, index: e.index });
    }
    check_id(tx, Party::Receiver, input.account, depth)?;
    Ok(ClaimWitness {
        padding: false,
        origin_chain: e.origin_chain,
        index: e.index,
        from: e.from,
        dest_chain: e.dest_chain,
        dest_account: e.to,
        account: input.account,
        amount: e.amount,
        exit_path: path(
            tx,
            "exit_path",
            &location,
            &input.exit_path,
            EXIT_TREE_DEPTH,
        )?,
        global_path: path(
            tx,
            "global_path",
            &location,
            &input.global_path,
            GLOBAL_EXIT_DEPTH,
        )?,
        nullifier_path: path(
            tx,
            "nullifier_path",
            &location,
            &input.nullifier_path,
            NULLIFIER_DEPTH,
        )?,
        receiver: leaf(tx, "receiver", &location, &input.receiver, depth)?,
    })
}

impl RollupWitness {
    /// Validates a batch against `config` and builds its witness.
    pub fn from_input(config: &RollupConfig, input: &RollupInput) -> Result<Self, RollupError> {
        let depth = config.depth;
        let chain_id = input.chain_id;
        if chain_id >> GLOBAL_EXIT_DEPTH != 0 {
            return Err(RollupError::ChainIdOutOfRange { chain_id });
        }
        for (kind, got, max) in [
            ("claim", input.claims.len(), config.claims),
            ("transfer", input.transfers.len(), config.transfers),
            ("exit", input.exits.len(), config.exits),
        ] {
            if got > max {
                return Err(RollupError::TooMany {
                    kind,
                    got,
                    max,
                    circuit: config.name(),
                });
            }
        }
        if input.claims.is_empty() && input.transfers.is_empty() && input.exits.is_empty() {
            return Err(RollupError::EmptyBatch);
        }
        let header = &input.old_state;
        let old_state = StateHeader {
            accounts_root: hex(|| "old_state.accounts_root".into(), &header.accounts_root)?,
            nullifier_root: hex(|| "old_state.nullifier_root".into(), &header.nullifier_root)?,
            exit_root: hex(|| "old_state.exit_root".into(), &header.exit_root)?,
            exit_count: header.exit_count,
        };
        let global_exit_root = match &input.global_exit_root {
            Some(text) => hex(|| "global_exit_root".into(), text)?,
            None => Fr::ZERO,
        };
        let mut run = Running {
            accounts_root: old_state.accounts_root,
            nullifier_root: old_state.nullifier_root,
            exit_root: old_state.exit_root,
            exit_count: old_state.exit_count,
            exited: 0,
            claimed: 0,
        };

        let mut claims = Vec::with_capacity(config.claims);
        for (index, c) in input.claims.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Claim,
                index,
            };
            let w = parse_claim(tx, c, depth)?;
            if w.origin_chain == chain_id {
                return Err(RollupError::ClaimFromOwnChain { tx, chain_id });
            }
            if w.dest_chain != chain_id {
                return Err(RollupError::ClaimForAnotherChain {
                    tx,
                    dest_chain: w.dest_chain,
                    chain_id,
                });
            }
            if w.dest_account != w.account {
                return Err(RollupError::ClaimForAnotherAccount {
                    tx,
                    dest_account: w.dest_account,
                    account: w.account,
                });
            }
            let local = root_from_path(w.exit_leaf(), w.index, &w.exit_path);
            let global = root_from_path(local, w.origin_chain, &w.global_path);
            if global != global_exit_root {
                return Err(RollupError::UnknownExit {
                    tx,
                    origin_chain: w.origin_chain,
                    index: w.index,
                    computed: field::to_hex(&global),
                    expected: field::to_hex(&global_exit_root),
                });
            }
            let key = global_index(w.origin_chain, w.index);
            if root_from_path(Fr::ZERO, key, &w.nullifier_path) != run.nullifier_root {
                return Err(
                    if root_from_path(Fr::ONE, key, &w.nullifier_path) == run.nullifier_root {
                        RollupError::AlreadyClaimed {
                            tx,
                            origin_chain: w.origin_chain,
                            index: w.index,
                        }
                    } else {
                        RollupError::BadNullifierPath {
                            tx,
                            origin_chain: w.origin_chain,
                            index: w.index,
                            expected: field::to_hex(&run.nullifier_root),
                        }
                    },
                );
            }
            run.accounts_root = credit(tx, run.accounts_root, w.account, w.amount, &w.receiver)?;
            run.claimed = run
                .claimed
                .checked_add(w.amount)
                .ok_or(RollupError::TotalOverflow {
                    tx,
                    total: "claimed",
                    sum: run.claimed,
                    amount: w.amount,
                })?;
            run.nullifier_root = root_from_path(Fr::ONE, key, &w.nullifier_path);
            claims.push(w);
        }

        let mut transfers = Vec::with_capacity(config.transfers);
        for (index, t) in input.transfers.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Transfer,
                index,
            };
            let location = format!("transfers[{index}]");
            check_id(tx, Party::Sender, t.from, depth)?;
            check_id(tx, Party::Receiver, t.to, depth)?;
            let sender = leaf(tx, "sender", &location, &t.sender, depth)?;
            let receiver = leaf(tx, "receiver", &location, &t.receiver, depth)?;
            let sig = signature(&location, &t.signature)?;
            let msg = transfer_message(chain_id, t.from, t.to, t.amount, t.nonce);
            let mid = debit(
                tx,
                run.accounts_root,
                t.from,
                t.amount,
                t.nonce,
                msg,
                &sig,
                &sender,
            )?;
            run.accounts_root = credit(tx, mid, t.to, t.amount, &receiver)?;
            transfers.push(TransferWitness {
                padding: false,
                from: t.from,
                to: t.to,
                amount: t.amount,
                nonce: t.nonce,
                signature: sig,
                sender,
                receiver,
            });
        }

        let mut exits = Vec::with_capacity(config.exits);
        for (index, e) in input.exits.iter().enumerate() {
            let tx = Tx {
                kind: TxKind::Exit,
                index,
            };
            let location = format!("exits[{index}]");
            check_id(tx, Party::Sender, e.from, depth)?;
            check_chain(tx, e.dest_chain)?;
            if e.dest_chain == chain_id {
                return Err(RollupError::ExitToOwnChain { tx, chain_id });
            }
            let sender = leaf(tx, "sender", &location, &e.sender, depth)?;
            let exit_path = path(tx, "exit_path", &location, &e.exit_path, EXIT_TREE_DEPTH)?;
            let sig = signature(&location, &e.signature)?;
            let msg = exit_message(chain_id, e.from, e.dest_chain, e.to, e.amount, e.nonce);
            run.accounts_root = debit(
                tx,
                run.accounts_root,
                e.from,
                e.amount,
                e.nonce,
                msg,
                &sig,
                &sender,
            )?;
            if run.exit_count >> EXIT_TREE_DEPTH != 0 {
                return Err(RollupError::ExitTreeFull { tx });
            }
            let computed = root_from_path(Fr::ZERO, run.exit_count, &exit_path);
            if computed != run.exit_root {
                return Err(RollupError::BadExitSlot {
                    tx,
                    slot: run.exit_count,
                    computed: field::to_hex(&computed),
                    expected: field::to_hex(&run.exit_root),
                });
            }
            run.exited = run
                .exited
                .checked_add(e.amount)
                .ok_or(RollupError::TotalOverflow {
                    tx,
                    total: "exited",
                    sum: run.exited,
                    amount: e.amount,
                })?;
            run.exit_root = root_from_path(
                exit_leaf(chain_id, e.from, e.dest_chain, e.to, e.amount),
                run.exit_count,
                &exit_path,
            );
            run.exit_count += 1;
            exits.push(ExitWitness {
                padding: false,
                from: e.from,
                dest_chain: e.dest_chain,
                to: e.to,
                amount: e.amount,
                nonce: e.nonce,
                signature: sig,
                sender,
                exit_path,
            });
        }

        claims.resize(config.claims, ClaimWitness::padding(depth));
        transfers.resize(config.transfers, TransferWitness::padding(depth));
        exits.resize(config.exits, ExitWitness::padding(depth));
        Ok(Self {
            config: *config,
            chain_id,
            old_state,
            global_exit_root,
            claims,
            transfers,
            exits,
        })
    }

    /// Parses an input into a witness with no check beyond the encodings: what a malicious
    /// prover could feed the circuit (tests show the constraints refuse it).
    #[cfg(test)]
    pub(crate) fn parse_unchecked(
        config: &RollupConfig,
        input: &RollupInput,
    ) -> Result<Self, RollupError> {
        let depth = config.depth;
        let h = &input.old_state;
        let tx = |kind, index| Tx { kind, index };
        let mut claims = input
            .claims
            .iter()
            .enumerate()
            .map(|(i, c)| parse_claim(tx(TxKind::Claim, i), c, depth))
            .collect::<Result<Vec<_>, _>>()?;
        let mut transfers = Vec::new();
        for (i, t) in input.transfers.iter().enumerate() {
            let location = format!("transfers[{i}]");
            let tx = tx(TxKind::Transfer, i);
            transfers.push(TransferWitness {
                padding: false,
                from: t.from,
                to: t.to,
                amount: t.amount,
                nonce: t.nonce,
                signature: signature(&location, &t.signature)?,
                sender: leaf(tx, "sender", &location, &t.sender, depth)?,
                receiver: leaf(tx, "receiver", &location, &t.receiver, depth)?,
            });
        }
        let mut exits = Vec::new();
        for (i, e) in input.exits.iter().enumerate() {
            let location = format!("exits[{i}]");
            let tx = tx(TxKind::Exit, i);
            exits.push(ExitWitness {
                padding: false,
                from: e.from,
                dest_chain: e.dest_chain,
                to: e.to,
                amount: e.amount,
                nonce: e.nonce,
                signature: signature(&location, &e.signature)?,
                sender: leaf(tx, "sender", &location, &e.sender, depth)?,
                exit_path: path(tx, "exit_path", &location, &e.exit_path, EXIT_TREE_DEPTH)?,
            });
        }
        claims.resize(config.claims, ClaimWitness::padding(depth));
        transfers.resize(config.transfers, TransferWitness::padding(depth));
        exits.resize(config.exits, ExitWitness::padding(depth));
        Ok(Self {
            config: *config,
            chain_id: input.chain_id,
            old_state: StateHeader {
                accounts_root: hex(String::new, &h.accounts_root)?,
                nullifier_root: hex(String::new, &h.nullifier_root)?,
                exit_root: hex(String::new, &h.exit_root)?,
                exit_count: h.exit_count,
            },
            global_exit_root: match &input.global_exit_root {
                Some(text) => hex(String::new, text)?,
                None => Fr::ZERO,
            },
            claims,
            transfers,
            exits,
        })
    }

    /// A witness of only padding slots: the shape the circuit has for every input, used for
    /// keygen and for measuring the circuit.
    pub fn padding_only(config: &RollupConfig) -> Self {
        Self {
            config: *config,
            chain_id: 0,
            old_state: StateHeader {
                accounts_root: Fr::ZERO,
                nullifier_root: Fr::ZERO,
                exit_root: Fr::ZERO,
                exit_count: 0,
            },
            global_exit_root: Fr::ZERO,
            claims: vec![ClaimWitness::padding(config.depth); config.claims],
            transfers: vec![TransferWitness::padding(config.depth); config.transfers],
            exits: vec![ExitWitness::padding(config.depth); config.exits],
        }
    }

    /// The state header after the batch, computed natively (for a valid witness).
    pub fn new_state(&self) -> StateHeader {
        self.replay().0
    }

    /// The public inputs of a valid witness, in [`super::INSTANCE_NAMES`] order, computed
    /// natively.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let (new, commitment, exited, claimed) = self.replay();
        vec![
            self.old_state.root(self.chain_id),
            new.root(self.chain_id),
            commitment,
            Fr::from(self.chain_id),
            self.old_state.exit_root,
            new.exit_root,
            self.global_exit_root,
            exited,
            claimed,
        ]
    }

    /// Applies the slots in field arithmetic, as the circuit does.
    fn replay(&self) -> (StateHeader, Fr, Fr, Fr) {
        let mut s = self.old_state;
        let mut chain = Fr::ZERO;
        let (mut exited, mut claimed) = (Fr::ZERO, Fr::ZERO);
        for c in self.claims.iter().filter(|c| !c.padding) {
            let r = &c.receiver;
            let credited = Fr::from(r.balance) + Fr::from(c.amount);
            s.accounts_root = root_from_path(
                account_leaf_fields(&r.key, credited, Fr::from(r.nonce)),
                c.account,
                &r.path,
            );
            let key = global_index(c.origin_chain, c.index);
            s.nullifier_root = root_from_path(Fr::ONE, key, &c.nullifier_path);
            claimed += Fr::from(c.amount);
            chain = commitment_link(chain, claim_item(c.exit_leaf(), key));
        }
        for t in self.transfers.iter().filter(|t| !t.padding) {
            let r = &t.receiver;
            let credited = Fr::from(r.balance) + Fr::from(t.amount);
            s.accounts_root = root_from_path(
                account_leaf_fields(&r.key, credited, Fr::from(r.nonce)),
                t.to,
                &r.path,
            );
            let msg = transfer_message(self.chain_id, t.from, t.to, t.amount, t.nonce);
            chain = commitment_link(chain, msg);
        }
        for e in self.exits.iter().filter(|e| !e.padding) {
            let d = &e.sender;
            let debited = Fr::from(d.balance) - Fr::from(e.amount);
            s.accounts_root = root_from_path(
                account_leaf_fields(&d.key, debited, Fr::from(d.nonce) + Fr::ONE),
                e.from,
                &d.path,
            );
            let leaf = exit_leaf(self.chain_id, e.from, e.dest_chain, e.to, e.amount);
            s.exit_root = root_from_path(leaf, s.exit_count, &e.exit_path);
            s.exit_count += 1;
            exited += Fr::from(e.amount);
            let msg = exit_message(self.chain_id, e.from, e.dest_chain, e.to, e.amount, e.nonce);
            chain = commitment_link(chain, msg);
        }
        (s, chain, exited, claimed)
    }
}
