//! The rollup's witness builder refuses each kind of invalid batch with a precise error, and
//! the constraints themselves reject each of them when a bad witness is forced past the
//! builder (built by a state in `unchecked` mode: consistent paths, wrong rules).

use std::collections::BTreeMap;

use halo2_base::{
    gates::circuit::CircuitBuilderStage,
    halo2_proofs::{
        arithmetic::Field,
        dev::{MockProver, VerifyFailure},
        halo2curves::bn256::Fr,
    },
};
use serde_json::json;

use super::*;
use crate::{
    circomlib::{
        eddsa::{PrivateKey, Signature},
        js::circomlibjs,
        uint,
    },
    field, BLINDING_ROWS,
};

/// Small enough for MockProver: one slot of each kind.
const SMALL: RollupConfig = RollupConfig {
    depth: 3,
    transfers: 1,
    exits: 1,
    claims: 1,
    lookup_bits: 8,
};
/// Two slots of each kind, for totals and for transactions that follow one another.
const PAIRS: RollupConfig = RollupConfig {
    depth: 3,
    transfers: 2,
    exits: 2,
    claims: 2,
    lookup_bits: 8,
};

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;

fn key(chain: u64, id: u64) -> PrivateKey {
    let mut bytes = [0u8; 32];
    bytes[0] = chain as u8;
    bytes[1] = id as u8;
    bytes[2] = 0x5a;
    PrivateKey::from_bytes(bytes)
}

/// Chains with the same accounts `(id, balance, nonce)`, keys from [`key`].
fn chains(chain_ids: &[u64], accounts: &[(u64, u64, u64)]) -> BTreeMap<u64, (RollupState, Wallet)> {
    chain_ids
        .iter()
        .map(|&c| {
            let mut state = RollupState::new(c, SMALL.depth);
            let mut wallet = Wallet::default();
            for &(id, balance, nonce) in accounts {
                let k = key(c, id);
                state.set_account(
                    id,
                    Account {
                        key: k.public_key(),
                        balance,
                        nonce,
                    },
                );
                wallet.insert(id, k);
            }
            (c, (state, wallet))
        })
        .collect()
}

fn exit(
    state: &RollupState,
    wallet: &Wallet,
    from: u64,
    dest: u64,
    to: u64,
    amount: u64,
) -> SignedExit {
    state
        .sign_exit(wallet, from, dest, to, amount, 0)
        .expect("account and key exist")
}

fn transfer(
    state: &RollupState,
    wallet: &Wallet,
    from: u64,
    to: u64,
    amount: u64,
) -> SignedTransfer {
    state
        .sign_transfer(wallet, from, to, amount, 0)
        .expect("account and key exist")
}

/// Chain `origin` makes the given exits (unchecked when asked) and the global exit tree over
/// it is built; returns the proofs of those exits.
fn exits_of(
    chains: &mut BTreeMap<u64, (RollupState, Wallet)>,
    origin: u64,
    exits: &[(u64, u64, u64, u64)],
    unchecked: bool,
) -> Vec<ExitProof> {
    let (state, wallet) = chains.get_mut(&origin).expect("chain exists");
    let first = state.exits().len() as u64;
    let mut signed = Vec::new();
    for (i, (from, dest, to, amount)) in exits.iter().enumerate() {
        let mut e = exit(state, wallet, *from, *dest, *to, *amount);
        // Later exits of the same sender in the batch use the next nonces.
        let earlier = exits[..i].iter().filter(|x| x.0 == *from).count() as u64;
        if earlier > 0 {
            e = state
                .sign_exit(wallet, *from, *dest, *to, *amount, earlier)
                .expect("key exists");
        }
        signed.push(e);
    }
    state.unchecked = unchecked;
    state.batch(None, &[], &[], &signed).expect("exits apply");
    state.unchecked = false;
    let global = GlobalExitTree::from_roots(chains.iter().map(|(c, (s, _))| (*c, s.exit_root())));
    let state = &chains[&origin].0;
    (first..first + exits.len() as u64)
        .map(|i| state.exit_proof(i, &global).expect("exit exists"))
        .collect()
}

/// Runs MockProver on the witness with the public inputs the circuit itself computes.
fn mock(witness: &RollupWitness) -> Result<(), Vec<VerifyFailure>> {
    let config = witness.config;
    let mut builder = config.builder(CircuitBuilderStage::Mock);
    let instances = config
        .synthesize(&mut builder, witness)
        .expect("same config");
    builder.calculate_params(Some(BLINDING_ROWS));
    MockProver::run(config.shape().k, &builder, vec![instances])
        .expect("mock prover runs")
        .verify()
}

fn unchecked(config: &RollupConfig, input: &RollupInput) -> RollupWitness {
    RollupWitness::parse_unchecked(config, input).expect("encodings are valid")
}

/// The builder refuses `input` with an error matching `expected`, and the constraints refuse
/// its unchecked witness.
fn refused(
    config: &RollupConfig,
    input: &RollupInput,
    expected: impl Fn(&RollupError) -> bool,
) -> RollupError {
    let err = RollupWitness::from_input(config, input).expect_err("invalid batch must be refused");
    assert!(expected(&err), "unexpected error: {err}");
    let failures = mock(&unchecked(config, input)).expect_err("the constraints refuse it too");
    assert!(!failures.is_empty());
    err
}

#[test]
fn names_parse_and_unknown_names_are_refused() {
    for config in RollupConfig::named() {
        assert_eq!(RollupConfig::from_name(&config.name()), Ok(*config));
    }
    assert_eq!(NAMED[0].name(), "rollup/d8-t2-e1-c1");
    let err = RollupConfig::from_name("rollup/d9").unwrap_err();
    assert!(err.to_string().contains("rollup/d8-t2-e1-c1"), "{err}");
    assert_eq!(SMALL.num_instances(), SMALL.instance_names().len());
    assert_eq!(INSTANCE_NAMES[OLD_STATE_ROOT], "old_state_root");
    assert_eq!(INSTANCE_NAMES[NEW_STATE_ROOT], "new_state_root");
    assert_eq!(INSTANCE_NAMES[OLD_EXIT_ROOT], "old_exit_root");
    assert_eq!(INSTANCE_NAMES[NEW_EXIT_ROOT], "new_exit_root");
}

#[test]
fn example_chain_is_consecutive_valid_signed_batches_with_exits_and_claims() {
    let config = NAMED[1];
    let chain = RollupState::example_chain(&config, 7, 5, 3);
    assert_eq!(chain.len(), 3);
    let mut previous: Option<Vec<Fr>> = None;
    for input in &chain {
        assert_eq!(input.claims.len(), config.claims);
        assert_eq!(input.transfers.len(), config.transfers);
        assert_eq!(input.exits.len(), config.exits);
        assert!(
            input.transfers.iter().any(|t| t.from == t.to),
            "a self-transfer"
        );
        let witness = RollupWitness::from_input(&config, input).expect("each batch is valid");
        let public = witness.public_inputs();
        assert_eq!(public[CHAIN_ID], Fr::from(7));
        if let Some(p) = previous {
            assert_eq!(
                public[OLD_STATE_ROOT], p[NEW_STATE_ROOT],
                "state roots chain"
            );
            assert_eq!(public[OLD_EXIT_ROOT], p[NEW_EXIT_ROOT], "exit roots chain");
        }
        assert_ne!(public[EXITED_TOTAL], Fr::ZERO);
        assert_ne!(public[CLAIMED_TOTAL], Fr::ZERO);
        previous = Some(public);
    }
    assert_eq!(
        config.example_input(5),
        serde_json::to_value(RollupState::example_chain(&config, 1, 5, 1).remove(0)).unwrap()
    );
    // JSON round trip, numbers as strings and hex keys accepted too.
    let mut json = serde_json::to_value(&chain[0]).unwrap();
    let amount = chain[0].transfers[0].amount;
    json["transfers"][0]["amount"] = json!(amount.to_string());
    let x = uint::parse_field(&chain[0].transfers[0].sender.public_key[0]).unwrap();
    json["transfers"][0]["sender"]["public_key"][0] = json!(field::to_hex(&x));
    let parsed = config
        .parse_input(&json)
        .expect("string amount and hex key accepted");
    assert_eq!(
        parsed,
        RollupWitness::from_input(&config, &chain[0]).unwrap()
    );
}

#[test]
fn multi_chain_epochs_claim_last_epochs_exits() {
    let config = PAIRS;
    let mut scenario = MultiChainScenario::new(&config, &[A, B, C], 9);
    // Epoch 1: every chain exits to the next one.
    let genesis = scenario.global_exit_tree();
    for (from, to) in [(A, B), (B, C), (C, A)] {
        let input = scenario.batch(from, &genesis, 2, 2, &[to, to]).unwrap();
        assert!(input.claims.is_empty(), "nothing to claim at genesis");
        RollupWitness::from_input(&config, &input).unwrap();
    }
    // Epoch 2: each chain claims both exits made to it, against the settled global root.
    let settled = scenario.global_exit_tree();
    let expected =
        GlobalExitTree::from_roots([A, B, C].map(|c| (c, scenario.state(c).unwrap().exit_root())));
    assert_eq!(settled.root(), expected.root());
    let mut leaves = vec![Fr::ZERO; 1 << GLOBAL_EXIT_DEPTH];
    for c in [A, B, C] {
        leaves[c as usize] = scenario.state(c).unwrap().exit_root();
    }
    assert_eq!(GlobalExitTree::root_of_leaves(&leaves), settled.root());
    for (chain, exit_to) in [(A, C), (B, A), (C, B)] {
        let input = scenario.batch(chain, &settled, 2, 1, &[exit_to]).unwrap();
        assert_eq!(input.claims.len(), 2);
        let w = RollupWitness::from_input(&config, &input).unwrap();
        assert_eq!(w.public_inputs()[GLOBAL_EXIT_ROOT], settled.root());
    }
    // Nothing is left to claim against the same root.
    let again = scenario.batch(A, &settled, 2, 1, &[]).unwrap();
    assert!(again.claims.is_empty());
}

#[test]
fn mock_prover_accepts_the_two_chain_example_and_padding() {
    let (exits, claims, global) = MultiChainScenario::two_chain_example(&SMALL, A, B, 3);
    assert_eq!(exits.exits.len(), 1);
    assert_eq!(claims.claims.len(), 1);
    for input in [&exits, &claims] {
        let witness = RollupWitness::from_input(&SMALL, input).expect("valid");
        let circuit = {
            let mut builder = SMALL.builder(CircuitBuilderStage::Mock);
            SMALL.synthesize(&mut builder, &witness).unwrap()
        };
        assert_eq!(
            circuit,
            witness.public_inputs(),
            "native public inputs equal the circuit's"
        );
        mock(&witness).expect("valid batch accepted");
    }
    let witness = RollupWitness::from_input(&SMALL, &claims).unwrap();
    assert_eq!(witness.global_exit_root, global);
    // Only the claim, everything else padding.
    let mut only_claim = claims.clone();
    only_claim.transfers.clear();
    mock(&RollupWitness::from_input(&SMALL, &only_claim).unwrap()).expect("padding slots");
}

#[test]
fn mock_prover_rejects_wrong_public_inputs() {
    let (exits, _, _) = MultiChainScenario::two_chain_example(&SMALL, A, B, 4);
    let witness = RollupWitness::from_input(&SMALL, &exits).unwrap();
    let mut builder = SMALL.builder(CircuitBuilderStage::Mock);
    let instances = SMALL.synthesize(&mut builder, &witness).unwrap();
    builder.calculate_params(Some(BLINDING_ROWS));
    for position in [NEW_STATE_ROOT, NEW_EXIT_ROOT, EXITED_TOTAL, CHAIN_ID] {
        let mut wrong = instances.clone();
        wrong[position] += Fr::ONE;
        let prover = MockProver::run(SMALL.shape().k, &builder, vec![wrong]).unwrap();
        assert!(
            prover.verify().is_err(),
            "{} is bound",
            INSTANCE_NAMES[position]
        );
    }
}

#[test]
fn padding_before_a_real_transaction_is_rejected() {
    let (exits, _, _) = MultiChainScenario::two_chain_example(&PAIRS, A, B, 5);
    let mut witness = RollupWitness::from_input(&PAIRS, &exits).unwrap();
    witness.transfers[0] = TransferWitness::padding(PAIRS.depth);
    mock(&witness).expect_err("padding must come last");
}

#[test]
fn bad_signature_and_another_keys_signature_are_refused() {
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let good = transfer(state, wallet, 1, 2, 10);
    let mut bad = good;
    bad.signature.s += Fr::ONE;
    let mut wrong_key = good;
    wrong_key.signature = key(A, 2).sign(transfer_message(A, 1, 2, 10, 0));
    for (sig, what) in [(bad, "tampered S"), (wrong_key, "another key")] {
        state.unchecked = true;
        let input = state.clone().batch(None, &[], &[sig], &[]).unwrap();
        state.unchecked = false;
        let err = refused(&SMALL, &input, |e| {
            matches!(
                e,
                RollupError::BadSignature {
                    tx: Tx {
                        kind: TxKind::Transfer,
                        index: 0
                    },
                    id: 1,
                    reason: crate::circomlib::eddsa::SignatureError::Mismatch,
                }
            )
        });
        assert!(err.to_string().contains("transfer 0"), "{what}: {err}");
        assert!(
            matches!(
                state.clone().batch(None, &[], &[sig], &[]),
                Err(RollupError::BadSignature { .. })
            ),
            "the state refuses {what} too"
        );
    }
    // An exit's signature is checked the same way: here signed as a transfer.
    let mut e = exit(state, wallet, 1, B, 2, 10);
    e.signature = key(A, 1).sign(transfer_message(A, 1, 2, 10, 0));
    state.unchecked = true;
    let input = state.clone().batch(None, &[], &[], &[e]).unwrap();
    state.unchecked = false;
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::BadSignature {
                tx: Tx {
                    kind: TxKind::Exit,
                    index: 0
                },
                ..
            }
        )
    });
}

#[test]
fn replayed_nonce_is_refused() {
    let mut c = chains(&[A], &[(1, 100, 4), (2, 5, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let t = transfer(state, wallet, 1, 2, 10);
    state.batch(None, &[], &[t], &[]).expect("first time");
    assert!(matches!(
        state.clone().batch(None, &[], &[t], &[]),
        Err(RollupError::WrongNonce {
            expected: 5,
            got: 4,
            ..
        })
    ));
    state.unchecked = true;
    let replay = state.clone().batch(None, &[], &[t], &[]).unwrap();
    refused(&SMALL, &replay, |e| {
        matches!(
            e,
            RollupError::WrongNonce {
                id: 1,
                expected: 5,
                got: 4,
                ..
            }
        )
    });
}

#[test]
fn overdraft_and_nonce_overflow_are_refused() {
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, u64::MAX)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let e = exit(state, wallet, 1, B, 3, 101);
    assert!(matches!(
        state.clone().batch(None, &[], &[], &[e]),
        Err(RollupError::Overdraft { .. })
    ));
    state.unchecked = true;
    let input = state.clone().batch(None, &[], &[], &[e]).unwrap();
    let err = refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::Overdraft {
                id: 1,
                balance: 100,
                amount: 101,
                ..
            }
        )
    });
    assert!(err.to_string().contains("exit 0: overdraft"), "{err}");
    let e = exit(state, wallet, 2, B, 3, 1);
    let input = state.clone().batch(None, &[], &[], &[e]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(e, RollupError::NonceOverflow { id: 2, .. })
    });
}

#[test]
fn balance_overflow_is_refused_for_transfers_and_claims() {
    let mut c = chains(&[A, B], &[(1, 100, 0), (2, u64::MAX - 5, 0)]);
    let proofs = exits_of(&mut c, A, &[(1, B, 2, 10)], false);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let t = transfer(state, wallet, 1, 2, 10);
    state.unchecked = true;
    let input = state.clone().batch(None, &[], &[t], &[]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::BalanceOverflow {
                tx: Tx {
                    kind: TxKind::Transfer,
                    ..
                },
                id: 2,
                ..
            }
        )
    });
    let (b, _) = c.get_mut(&B).unwrap();
    let root = proofs[0].global_exit_root;
    assert!(matches!(
        b.clone().batch(Some(root), &proofs, &[], &[]),
        Err(RollupError::BalanceOverflow { .. })
    ));
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &proofs, &[], &[]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::BalanceOverflow {
                tx: Tx {
                    kind: TxKind::Claim,
                    index: 0
                },
                ..
            }
        )
    });
}

#[test]
fn totals_overflowing_64_bits_are_refused() {
    let big = (1u64 << 63) + 1;
    let mut c = chains(&[A, B], &[(1, big, 0), (2, big, 0), (3, 0, 0), (4, 0, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let exits = [
        exit(state, wallet, 1, B, 3, big),
        exit(state, wallet, 2, B, 4, big),
    ];
    assert!(matches!(
        state.clone().batch(None, &[], &[], &exits),
        Err(RollupError::TotalOverflow {
            total: "exited",
            ..
        })
    ));
    state.unchecked = true;
    let input = state.clone().batch(None, &[], &[], &exits).unwrap();
    refused(&PAIRS, &input, |e| {
        matches!(
            e,
            RollupError::TotalOverflow {
                tx: Tx {
                    kind: TxKind::Exit,
                    index: 1
                },
                total: "exited",
                ..
            }
        )
    });
    // Two claims of such exits on chain B overflow its claimed total.
    let proofs = exits_of(&mut c, A, &[(1, B, 3, big), (2, B, 4, big)], true);
    let (b, _) = c.get_mut(&B).unwrap();
    let root = proofs[0].global_exit_root;
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &proofs, &[], &[]).unwrap();
    refused(&PAIRS, &input, |e| {
        matches!(
            e,
            RollupError::TotalOverflow {
                tx: Tx {
                    kind: TxKind::Claim,
                    index: 1
                },
                total: "claimed",
                ..
            }
        )
    });
}

#[test]
fn exit_to_the_own_chain_is_refused() {
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let e = exit(state, wallet, 1, A, 2, 10);
    assert!(matches!(
        state.clone().batch(None, &[], &[], &[e]),
        Err(RollupError::ExitToOwnChain { chain_id: A, .. })
    ));
    state.unchecked = true;
    let input = state.clone().batch(None, &[], &[], &[e]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(e, RollupError::ExitToOwnChain { chain_id: A, .. })
    });
}

#[test]
fn claims_of_unknown_claimed_or_misdirected_exits_are_refused() {
    let mut c = chains(&[A, B, C], &[(1, 100, 0), (2, 5, 0)]);
    let proofs = exits_of(&mut c, A, &[(1, B, 2, 10), (1, C, 2, 7)], false);
    let root = proofs[0].global_exit_root;
    let (b, _) = c.get_mut(&B).unwrap();

    // Valid once.
    let ok = b.clone().batch(Some(root), &proofs[..1], &[], &[]).unwrap();
    mock(&RollupWitness::from_input(&SMALL, &ok).unwrap()).expect("valid claim");

    // Unknown: the amount changed, so the exit is not in the tree.
    let mut forged = proofs[0].clone();
    forged.exit.amount = 11;
    assert!(matches!(
        b.clone().batch(Some(root), &[forged.clone()], &[], &[]),
        Err(RollupError::UnknownExit { .. })
    ));
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &[forged], &[], &[]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::UnknownExit {
                tx: Tx {
                    kind: TxKind::Claim,
                    index: 0
                },
                origin_chain: A,
                index: 0,
                ..
            }
        )
    });

    // Meant for chain C.
    b.unchecked = false;
    assert!(matches!(
        b.clone().batch(Some(root), &proofs[1..], &[], &[]),
        Err(RollupError::ClaimForAnotherChain {
            dest_chain: C,
            chain_id: B,
            ..
        })
    ));
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &proofs[1..], &[], &[]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::ClaimForAnotherChain {
                dest_chain: C,
                chain_id: B,
                ..
            }
        )
    });

    // Meant for account 2, crediting account 1.
    b.unchecked = false;
    let mut input = b.clone().batch(Some(root), &proofs[..1], &[], &[]).unwrap();
    input.claims[0].account = 1;
    input.claims[0].receiver = b.leaf_input(1);
    refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::ClaimForAnotherAccount {
                dest_account: 2,
                account: 1,
                ..
            }
        )
    });

    // Already claimed: the second claim of the same exit, in a later batch and in the same one.
    b.batch(Some(root), &proofs[..1], &[], &[]).unwrap();
    assert!(matches!(
        b.clone().batch(Some(root), &proofs[..1], &[], &[]),
        Err(RollupError::AlreadyClaimed {
            origin_chain: A,
            index: 0,
            ..
        })
    ));
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &proofs[..1], &[], &[]).unwrap();
    let err = refused(&SMALL, &input, |e| {
        matches!(
            e,
            RollupError::AlreadyClaimed {
                tx: Tx {
                    kind: TxKind::Claim,
                    index: 0
                },
                ..
            }
        )
    });
    assert!(err.to_string().contains("already claimed"), "{err}");
}

#[test]
fn claim_in_the_same_batch_twice_is_refused() {
    let mut c = chains(&[A, B], &[(1, 100, 0), (2, 5, 0)]);
    let proofs = exits_of(&mut c, A, &[(1, B, 2, 10)], false);
    let root = proofs[0].global_exit_root;
    let (b, _) = c.get_mut(&B).unwrap();
    let twice = [proofs[0].clone(), proofs[0].clone()];
    assert!(matches!(
        b.clone().batch(Some(root), &twice, &[], &[]),
        Err(RollupError::AlreadyClaimed {
            tx: Tx { index: 1, .. },
            ..
        })
    ));
    b.unchecked = true;
    let input = b.clone().batch(Some(root), &twice, &[], &[]).unwrap();
    refused(&PAIRS, &input, |e| {
        matches!(
            e,
            RollupError::AlreadyClaimed {
                tx: Tx { index: 1, .. },
                ..
            }
        )
    });
}

#[test]
fn claim_of_an_own_exit_is_refused() {
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, 0)]);
    // An exit of A to A (forced), claimed on A.
    let proofs = exits_of(&mut c, A, &[(1, A, 2, 10)], true);
    let root = proofs[0].global_exit_root;
    let (a, _) = c.get_mut(&A).unwrap();
    assert!(matches!(
        a.clone().batch(Some(root), &proofs, &[], &[]),
        Err(RollupError::ClaimFromOwnChain { chain_id: A, .. })
    ));
    a.unchecked = true;
    let input = a.clone().batch(Some(root), &proofs, &[], &[]).unwrap();
    refused(&SMALL, &input, |e| {
        matches!(e, RollupError::ClaimFromOwnChain { chain_id: A, .. })
    });
}

#[test]
fn exit_slot_that_is_not_the_next_free_one_is_refused() {
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    state
        .batch(None, &[], &[], &[exit(state, wallet, 1, B, 2, 1)])
        .unwrap();
    let e = exit(state, wallet, 1, B, 2, 1);
    let mut input = state.clone().batch(None, &[], &[], &[e]).unwrap();
    // Claim the state has no exit yet (overwrite slot 0): the path does not show slot 0 empty.
    input.old_state.exit_count = 0;
    refused(&SMALL, &input, |e| {
        matches!(e, RollupError::BadExitSlot { slot: 0, .. })
    });
}

#[test]
fn builder_refuses_malformed_inputs_with_locations() {
    let (input, _, _) = MultiChainScenario::two_chain_example(&SMALL, A, B, 6);
    let mut bad = input.clone();
    bad.transfers[0].sender.path[2] = "0xzz".into();
    let err = RollupWitness::from_input(&SMALL, &bad).unwrap_err();
    assert!(
        err.to_string().contains("transfers[0].sender.path[2]"),
        "{err}"
    );
    let mut bad = input.clone();
    bad.exits[0].signature.s = "12x".into();
    let err = RollupWitness::from_input(&SMALL, &bad).unwrap_err();
    assert!(err.to_string().contains("exits[0].signature.S"), "{err}");
    let mut bad = input.clone();
    bad.exits[0].exit_path.pop();
    assert!(matches!(
        RollupWitness::from_input(&SMALL, &bad),
        Err(RollupError::PathLength {
            path: "exit_path",
            got: 31,
            expected: 32,
            ..
        })
    ));
    let mut bad = input.clone();
    bad.transfers.push(bad.transfers[0].clone());
    assert!(matches!(
        RollupWitness::from_input(&SMALL, &bad),
        Err(RollupError::TooMany {
            kind: "transfer",
            got: 2,
            max: 1,
            ..
        })
    ));
    let mut bad = input.clone();
    bad.chain_id = 256;
    assert!(matches!(
        RollupWitness::from_input(&SMALL, &bad),
        Err(RollupError::ChainIdOutOfRange { chain_id: 256 })
    ));
    let mut bad = input.clone();
    (bad.transfers, bad.exits) = (vec![], vec![]);
    assert!(matches!(
        RollupWitness::from_input(&SMALL, &bad),
        Err(RollupError::EmptyBatch)
    ));
    let mut json = serde_json::to_value(&input).unwrap();
    json["exits"][0]["amount"] = json!(-1);
    let err = SMALL.parse_input(&json).unwrap_err();
    assert!(err.to_string().contains("exits[0].amount"), "{err}");
}

#[test]
fn extrapolated_cell_count_is_exact() {
    let config = RollupConfig {
        depth: 4,
        transfers: 2,
        exits: 1,
        claims: 2,
        lookup_bits: 8,
    };
    let mut builder = config.builder(CircuitBuilderStage::Keygen);
    config
        .synthesize(&mut builder, &config.keygen_witness())
        .unwrap();
    assert_eq!(config.cell_counts(), crate::count_cells(&builder));
    for named in RollupConfig::named() {
        let shape = named.shape();
        assert!(shape.advice_columns <= crate::MAX_ADVICE_COLUMNS && shape.advice_columns > 0);
        let rows = (1usize << (shape.k - 1)) - BLINDING_ROWS;
        assert!(
            shape.advice_cells.div_ceil(rows) > crate::MAX_ADVICE_COLUMNS,
            "k is minimal"
        );
    }
}

/// Cells of one slot of each kind and of a signature, from halo2-base's statistics (printed
/// for docs/rollup.md: `cargo test --release -p proofmill-circuits cells_per -- --nocapture`).
#[test]
fn cells_per_signature_exit_and_claim() {
    let count = |depth, transfers, exits, claims| {
        let config = RollupConfig {
            depth,
            transfers,
            exits,
            claims,
            lookup_bits: LOOKUP_BITS,
        };
        let mut builder = halo2_base::gates::circuit::builder::BaseCircuitBuilder::from_stage(
            CircuitBuilderStage::Keygen,
        )
        .use_k(LOOKUP_BITS + 1)
        .use_lookup_bits(LOOKUP_BITS)
        .use_instance_columns(1);
        synthesize(&mut builder, &RollupWitness::padding_only(&config));
        crate::count_cells(&builder)
    };
    for depth in [8, 16, 24] {
        let base = count(depth, 0, 0, 0);
        let per = |m: (usize, usize)| (m.0 - base.0, m.1 - base.1);
        let t = per(count(depth, 1, 0, 0));
        let e = per(count(depth, 0, 1, 0));
        let c = per(count(depth, 0, 0, 1));
        eprintln!("depth {depth}: fixed {base:?}, per transfer {t:?}, per exit {e:?}, per claim {c:?} (advice, lookup)");
        assert!(t.0 > 0 && e.0 > t.0 / 2 && c.0 > 0);
    }
    for config in RollupConfig::named() {
        eprintln!("{}: {:?}", config.name(), config.shape());
    }
    // One signature verification alone, with the named configurations' lookup table.
    let mut builder = halo2_base::gates::circuit::builder::BaseCircuitBuilder::<Fr>::from_stage(
        CircuitBuilderStage::Keygen,
    )
    .use_k(LOOKUP_BITS + 1)
    .use_lookup_bits(LOOKUP_BITS)
    .use_instance_columns(1);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let prv = key(A, 1);
    let sig = prv.sign(Fr::from(5));
    let m = ctx.load_witness(Fr::from(5));
    let a = crate::circomlib::babyjubjub::load_point(ctx, &prv.public_key());
    let s = crate::circomlib::eddsa::load_signature(ctx, &sig);
    crate::circomlib::eddsa::verify_gadget(ctx, &range, m, &a, &s);
    let cells = crate::count_cells(&builder);
    eprintln!("one EdDSA-Poseidon verification: {cells:?} (advice, lookup)");
    assert!(cells.0 > 10_000);
}

#[test]
fn global_exit_root_gadget_matches_the_native_tree() {
    let mut builder = halo2_base::gates::circuit::builder::BaseCircuitBuilder::<Fr>::new(false);
    let gate = halo2_base::gates::GateChip::<Fr>::default();
    let roots = [
        (0u64, Fr::from(11)),
        (1, Fr::from(12)),
        (200, Fr::from(13)),
        (255, Fr::from(14)),
    ];
    let tree = GlobalExitTree::from_roots(roots);
    let mut leaves = vec![Fr::ZERO; 1 << GLOBAL_EXIT_DEPTH];
    for (c, r) in roots {
        leaves[c as usize] = r;
    }
    assert_eq!(GlobalExitTree::root_of_leaves(&leaves), tree.root());
    let ctx = builder.main(0);
    let assigned = ctx.assign_witnesses(leaves);
    let root = global_exit_root_gadget(ctx, &gate, &assigned);
    assert_eq!(*root.value(), tree.root());
    // And a path of the sparse tree leads there through the Merkle gadget.
    let leaf = ctx.load_witness(Fr::from(13));
    let index = ctx.load_witness(Fr::from(200));
    let bits =
        halo2_base::gates::GateInstructions::num_to_bits(&gate, ctx, index, GLOBAL_EXIT_DEPTH);
    let path = ctx.assign_witnesses(tree.path(200));
    assert_eq!(
        *merkle_root_gadget(ctx, &gate, leaf, &bits, &path).value(),
        tree.root()
    );
}

#[test]
fn message_example_of_the_docs() {
    // docs/rollup.md: chain 7, transfer of 250 from account 3 to account 5, nonce 2.
    let m = transfer_message(7, 3, 5, 250, 2);
    let e = exit_message(7, 3, 9, 5, 250, 2);
    eprintln!(
        "transfer message {}\nexit message {}",
        uint::to_decimal(&m),
        uint::to_decimal(&e)
    );
    let request = json!({ "poseidon": [["7", "1", "3", "5", "250", "2", "7"], ["7", "2", "3", "5", "250", "2", "9"]] });
    assert_eq!(
        uint::to_decimal(&m),
        "11798521695862571007268477274154465768275025423629363863752165566199947056931",
        "the value docs/rollup.md shows"
    );
    assert_eq!(
        uint::to_decimal(&e),
        "8684695469561451982141415706213871099127434207427377889634156138061239168178",
        "the value docs/rollup.md shows"
    );
    if let Some(answer) = circomlibjs("message_example_of_the_docs", &request) {
        assert_eq!(answer["poseidon"][0], json!(uint::to_decimal(&m)));
        assert_eq!(answer["poseidon"][1], json!(uint::to_decimal(&e)));
    }
}

#[test]
fn circomlibjs_signed_batches_verify_and_ours_verify_in_circomlibjs() {
    let test = "circomlibjs_signed_batches_verify_and_ours_verify_in_circomlibjs";
    let mut c = chains(&[A], &[(1, 100, 0), (2, 5, 0)]);
    let (state, wallet) = c.get_mut(&A).unwrap();
    let prv = hex::encode(key(A, 1).to_bytes());
    let m_transfer = transfer_message(A, 1, 2, 10, 0);
    let m_exit = exit_message(A, 1, B, 2, 20, 1);
    let ours = [transfer(state, wallet, 1, 2, 10)];
    let request = json!({
        "sign": [
            { "prv": prv, "msg": uint::to_decimal(&m_transfer) },
            { "prv": prv, "msg": uint::to_decimal(&m_exit) },
        ],
        "prv2pub": [prv],
        "verify": [{
            "msg": uint::to_decimal(&m_transfer),
            "R8": [uint::to_decimal(&ours[0].signature.r8.x), uint::to_decimal(&ours[0].signature.r8.y)],
            "S": uint::to_decimal(&ours[0].signature.s),
            "A": [uint::to_decimal(&state.account(1).unwrap().key.x), uint::to_decimal(&state.account(1).unwrap().key.y)],
        }],
    });
    let Some(answer) = circomlibjs(test, &request) else {
        return;
    };
    assert_eq!(
        answer["verify"][0],
        json!(true),
        "circomlibjs verifies our signature"
    );
    let key_js = [&answer["prv2pub"][0][0], &answer["prv2pub"][0][1]]
        .map(|v| uint::parse_field(v.as_str().unwrap()).unwrap());
    let a = state.account(1).unwrap().key;
    assert_eq!((a.x, a.y), (key_js[0], key_js[1]), "same public key");
    let theirs = |i: usize| Signature {
        r8: crate::circomlib::babyjubjub::Point {
            x: uint::parse_field(answer["sign"][i]["R8"][0].as_str().unwrap()).unwrap(),
            y: uint::parse_field(answer["sign"][i]["R8"][1].as_str().unwrap()).unwrap(),
        },
        s: uint::parse_field(answer["sign"][i]["S"].as_str().unwrap()).unwrap(),
    };
    let t = SignedTransfer {
        from: 1,
        to: 2,
        amount: 10,
        nonce: 0,
        signature: theirs(0),
    };
    let e = SignedExit {
        from: 1,
        dest_chain: B,
        to: 2,
        amount: 20,
        nonce: 1,
        signature: theirs(1),
    };
    let input = state
        .batch(None, &[], &[t], &[e])
        .expect("circomlibjs's signatures are accepted");
    // The batch as a client would send it: signatures as circomlibjs prints them.
    assert_eq!(
        input.transfers[0].signature.s,
        answer["sign"][0]["S"].as_str().unwrap()
    );
    let witness = RollupWitness::from_input(&SMALL, &input).expect("valid");
    mock(&witness).expect("circomlibjs-signed transfer and exit verify in the circuit");
}

/// A real keygen, proof and verification of the smallest named configuration, timed next to
/// transfer_batch/d16-b8 (`cargo test --release -p proofmill-circuits real_proof -- --ignored
/// --nocapture`). Ignored by default: minutes on two cores.
#[test]
#[ignore = "real proofs take minutes; run with --ignored"]
fn real_proof_of_the_smallest_configuration() {
    use halo2_base::halo2_proofs::{
        halo2curves::bn256::{Bn256, G1Affine},
        plonk::{create_proof, keygen_pk, keygen_vk, verify_proof, Circuit},
        poly::{
            commitment::ParamsProver,
            kzg::{
                commitment::{KZGCommitmentScheme, ParamsKZG},
                multiopen::{ProverSHPLONK, VerifierSHPLONK},
                strategy::AccumulatorStrategy,
            },
            VerificationStrategy,
        },
        transcript::{
            Blake2bRead, Blake2bWrite, Challenge255, TranscriptReadBuffer, TranscriptWriterBuffer,
        },
    };
    use rand::SeedableRng;
    use std::time::Instant;

    fn prove(
        name: &str,
        k: u32,
        keygen: halo2_base::gates::circuit::builder::BaseCircuitBuilder<Fr>,
        prover: impl FnOnce(
            Vec<Vec<usize>>,
        ) -> (
            halo2_base::gates::circuit::builder::BaseCircuitBuilder<Fr>,
            Vec<Fr>,
        ),
    ) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let params = ParamsKZG::<Bn256>::setup(k, &mut rng);
        let t = Instant::now();
        let vk = keygen_vk(&params, &keygen).unwrap();
        let pk = keygen_pk(&params, vk, &keygen).unwrap();
        let keygen_s = t.elapsed().as_secs_f64();
        let (circuit, instances) = prover(keygen.break_points());
        let t = Instant::now();
        let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
            &params,
            &pk,
            &[circuit],
            &[&[&instances]],
            rng,
            &mut transcript,
        )
        .unwrap();
        let proof = transcript.finalize();
        let prove_s = t.elapsed().as_secs_f64();
        let mut transcript = Blake2bRead::<_, G1Affine, Challenge255<_>>::init(&proof[..]);
        let verifier_params = params.verifier_params();
        let ok = verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            verifier_params,
            pk.get_vk(),
            AccumulatorStrategy::new(verifier_params),
            &[&[&instances]],
            &mut transcript,
        )
        .map(VerificationStrategy::<_, VerifierSHPLONK<'_, Bn256>>::finalize);
        assert_eq!(ok.ok(), Some(true), "{name}: the proof verifies");
        eprintln!(
            "{name}: k={k}, keygen {keygen_s:.1} s, create_proof {prove_s:.1} s, {} proof bytes",
            proof.len()
        );
    }

    let config = NAMED[0];
    let k = config.shape().k;
    let mut keygen = config.builder(CircuitBuilderStage::Keygen);
    config
        .synthesize(&mut keygen, &config.keygen_witness())
        .unwrap();
    keygen.calculate_params(Some(BLINDING_ROWS));
    let input = RollupInput::from_value(&config.example_input(1)).unwrap();
    let witness = RollupWitness::from_input(&config, &input).unwrap();
    let params = keygen.params();
    prove(&config.name(), k, keygen, |break_points| {
        let mut b = config
            .builder(CircuitBuilderStage::Prover)
            .use_params(params)
            .use_break_points(break_points);
        let instances = config.synthesize(&mut b, &witness).unwrap();
        (b, instances)
    });

    let tb = crate::CatalogCircuit::new(crate::transfer_batch::TransferBatchConfig::new(16, 8));
    let mut keygen = crate::builder_for(&tb, CircuitBuilderStage::Keygen);
    tb.synthesize(&mut keygen, &tb.keygen_witness()).unwrap();
    keygen.calculate_params(Some(BLINDING_ROWS));
    let params = keygen.params();
    let witness = tb.parse_input(&tb.example_input(1)).unwrap();
    prove(&tb.name(), tb.shape().k, keygen, |break_points| {
        let mut b = crate::builder_for(&tb, CircuitBuilderStage::Prover)
            .use_params(params)
            .use_break_points(break_points);
        let instances = tb.synthesize(&mut b, &witness).unwrap();
        (b, instances)
    });
}
