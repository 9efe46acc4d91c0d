//! The witness builder refuses each kind of invalid batch with a precise error, and the
//! constraints themselves reject each of them when a bad witness is forced past the builder.

use halo2_base::{
    gates::circuit::CircuitBuilderStage,
    halo2_proofs::{
        dev::{MockProver, VerifyFailure},
        halo2curves::bn256::Fr,
    },
};

use super::*;
use crate::{field, CatalogCircuit, Witness, BLINDING_ROWS};

/// Small enough for MockProver in the debug test profile.
const SMALL: TransferBatchConfig = TransferBatchConfig {
    depth: 3,
    batch_size: 3,
    lookup_bits: 8,
};
const D16_B8: TransferBatchConfig = TransferBatchConfig::new(16, 8);

fn funded_state(depth: usize, accounts: &[(u64, u64, u64)]) -> State {
    let mut state = State::new(depth);
    for (id, balance, nonce) in accounts {
        state.set(
            *id,
            Account {
                balance: *balance,
                nonce: *nonce,
            },
        );
    }
    state
}

/// Applies a transfer without any check, keeping the field arithmetic the circuit does, so a
/// test can build an invalid but internally consistent witness.
fn forced(state: &mut State, from: u64, to: u64, amount: u64) -> TransferInput {
    let sender_leaf = state.leaf_input(from);
    let sender = state.account(from).unwrap_or_default();
    state.set(
        from,
        Account {
            balance: sender.balance.wrapping_sub(amount),
            nonce: sender.nonce.wrapping_add(1),
        },
    );
    let receiver_leaf = state.leaf_input(to);
    let receiver = state.account(to).unwrap_or_default();
    state.set(
        to,
        Account {
            balance: receiver.balance.wrapping_add(amount),
            nonce: receiver.nonce,
        },
    );
    TransferInput {
        from,
        to,
        amount,
        nonce: sender.nonce,
        sender: sender_leaf,
        receiver: receiver_leaf,
    }
}

/// Builds a witness from an input without validation (what a malicious prover could feed).
fn unchecked_witness(config: &TransferBatchConfig, input: &BatchInput) -> BatchWitness {
    let mut slots: Vec<SlotWitness> = input
        .transfers
        .iter()
        .map(|t| {
            let leaf = |l: &LeafInput| LeafWitness {
                balance: l.balance,
                nonce: l.nonce,
                empty: l.empty,
                path: l
                    .path
                    .iter()
                    .map(|s| field::from_hex(s).expect("test paths are valid hex"))
                    .collect(),
            };
            SlotWitness {
                padding: false,
                from: t.from,
                to: t.to,
                amount: t.amount,
                nonce: t.nonce,
                sender: leaf(&t.sender),
                receiver: leaf(&t.receiver),
            }
        })
        .collect();
    slots.resize(config.batch_size, SlotWitness::padding(config.depth));
    BatchWitness {
        config: *config,
        old_root: field::from_hex(&input.old_root).expect("test root is valid hex"),
        slots,
    }
}

/// Runs MockProver on the witness with the public inputs the circuit itself computes.
fn mock(witness: &BatchWitness) -> Result<(), Vec<VerifyFailure>> {
    let circuit = CatalogCircuit::new(witness.config);
    let mut builder = crate::builder_for(&circuit, CircuitBuilderStage::Mock);
    let instances = circuit
        .synthesize(&mut builder, &Witness::new(circuit.name(), witness.clone()))
        .expect("same config");
    builder.calculate_params(Some(BLINDING_ROWS));
    let k = circuit.shape().k;
    MockProver::run(k, &builder, vec![instances])
        .expect("mock prover runs")
        .verify()
}

#[test]
fn example_chain_is_consecutive_valid_batches() {
    let chain = State::example_chain(&D16_B8, 5, 3);
    assert_eq!(chain.len(), 3);
    let mut previous_end = None;
    for input in &chain {
        let witness = BatchWitness::from_input(&D16_B8, input).expect("each batch is valid");
        let public = witness.public_inputs();
        if let Some(end) = previous_end {
            assert_eq!(public[0], end, "starts where the previous batch ended");
        }
        previous_end = Some(public[1]);
    }
    assert_eq!(
        serde_json::to_value(&chain[0]).unwrap(),
        serde_json::to_value(State::example(&D16_B8, 5).1).unwrap()
    );
}

#[test]
fn example_batch_is_valid_and_public_inputs_match_the_state() {
    let (state, input) = State::example(&D16_B8, 7);
    assert_eq!(input.transfers.len(), 8);
    assert!(
        input.transfers.iter().any(|t| t.from == t.to),
        "example has a self-transfer"
    );
    assert!(
        input.transfers.iter().any(|t| t.receiver.empty),
        "example pays a fresh account"
    );
    let witness = BatchWitness::from_input(&D16_B8, &input).expect("example is valid");
    let public = witness.public_inputs();
    assert_eq!(field::to_hex(&public[0]), input.old_root);
    assert_eq!(public[1], state.root());
    // Round trip through JSON, numbers as strings accepted too.
    let mut json = serde_json::to_value(&input).unwrap();
    json["transfers"][0]["amount"] =
        serde_json::Value::String(input.transfers[0].amount.to_string());
    assert_eq!(BatchInput::from_value(&json).unwrap(), input);
}

#[test]
fn mock_prover_accepts_valid_batches_with_padding() {
    let (_, input) = State::example(&SMALL, 1);
    let witness = BatchWitness::from_input(&SMALL, &input).unwrap();
    mock(&witness).expect("full batch with a self-transfer and a fresh receiver");
    let mut partial = input.clone();
    partial.transfers.truncate(1);
    let witness = BatchWitness::from_input(&SMALL, &partial).unwrap();
    mock(&witness).expect("one transfer and two padding slots");
}

fn assert_refused(input: &BatchInput, expected: impl Fn(&BatchError) -> bool) -> BatchError {
    let err = BatchWitness::from_input(&SMALL, input).expect_err("invalid batch must be refused");
    assert!(expected(&err), "unexpected error: {err}");
    err
}

#[test]
fn overdraft_refused_by_builder_and_constraints() {
    let mut state = funded_state(3, &[(1, 100, 0), (2, 5, 0)]);
    let valid = state.clone().batch(&[(1, 2, 10)]).unwrap();
    assert!(
        state.clone().batch(&[(1, 2, 101)]).is_err(),
        "State refuses too"
    );
    let input = BatchInput {
        old_root: valid.old_root.clone(),
        transfers: vec![forced(&mut state, 1, 2, 101)],
    };
    let err = assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::Overdraft {
                index: 0,
                balance: 100,
                amount: 101,
                ..
            }
        )
    });
    assert!(
        err.to_string().contains("transfer 0") && err.to_string().contains("overdraft"),
        "{err}"
    );
    let failures = mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects overdraft");
    assert!(!failures.is_empty());
}

#[test]
fn wrong_nonce_refused_by_builder_and_constraints() {
    let mut state = funded_state(3, &[(1, 100, 4), (2, 5, 0)]);
    let old_root = field::to_hex(&state.root());
    let mut transfer = forced(&mut state, 1, 2, 10);
    transfer.nonce = 3;
    let input = BatchInput {
        old_root,
        transfers: vec![transfer],
    };
    assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::WrongNonce {
                index: 0,
                expected: 4,
                got: 3,
                ..
            }
        )
    });
    mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a wrong nonce");
}

#[test]
fn bad_merkle_path_refused_by_builder_and_constraints() {
    let mut state = funded_state(3, &[(1, 100, 0), (2, 5, 0), (6, 7, 0)]);
    let mut input = state.batch(&[(1, 2, 10), (2, 6, 3)]).unwrap();
    input.transfers[1].sender.path[1] = field::to_hex(&Fr::from(12345u64));
    assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::BadMerklePath {
                index: 1,
                party: Party::Sender,
                id: 2,
                ..
            }
        )
    });
    mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a bad sender path");

    let mut input = funded_state(3, &[(1, 100, 0), (2, 5, 0)])
        .batch(&[(1, 2, 10)])
        .unwrap();
    input.transfers[0].receiver.balance += 1;
    assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::BadMerklePath {
                index: 0,
                party: Party::Receiver,
                ..
            }
        )
    });
    mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a forged receiver leaf");
}

#[test]
fn balance_overflow_refused_by_builder_and_constraints() {
    let mut state = funded_state(3, &[(1, 100, 0), (2, u64::MAX - 5, 0)]);
    assert!(matches!(
        state.clone().batch(&[(1, 2, 10)]),
        Err(BatchError::BalanceOverflow { .. })
    ));
    let old_root = field::to_hex(&state.root());
    let input = BatchInput {
        old_root,
        transfers: vec![forced(&mut state, 1, 2, 10)],
    };
    assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::BalanceOverflow {
                index: 0,
                id: 2,
                amount: 10,
                ..
            }
        )
    });
    // The circuit adds in the field, where nothing wraps: only the range check can refuse.
    let failures =
        mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a balance overflow");
    assert!(!failures.is_empty());
}

#[test]
fn nonce_overflow_refused_by_builder_and_constraints() {
    let mut state = funded_state(3, &[(1, 100, u64::MAX), (2, 0, 0)]);
    assert!(matches!(
        state.clone().batch(&[(1, 2, 1)]),
        Err(BatchError::NonceOverflow { .. })
    ));
    let old_root = field::to_hex(&state.root());
    let input = BatchInput {
        old_root,
        transfers: vec![forced(&mut state, 1, 2, 1)],
    };
    assert_refused(&input, |e| {
        matches!(e, BatchError::NonceOverflow { index: 0, .. })
    });
    let failures =
        mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a nonce overflow");
    assert!(!failures.is_empty());
}

#[test]
fn old_root_mismatch_refused_by_builder_and_constraints() {
    let mut input = funded_state(3, &[(1, 100, 0), (2, 5, 0)])
        .batch(&[(1, 2, 10)])
        .unwrap();
    input.old_root = field::to_hex(&Fr::from(42u64));
    let err = assert_refused(&input, |e| matches!(e, BatchError::OldRootMismatch { .. }));
    assert!(err.to_string().contains("old_root"), "{err}");
    mock(&unchecked_witness(&SMALL, &input)).expect_err("circuit rejects a path not in old_root");
}

#[test]
fn mock_prover_rejects_a_wrong_public_input() {
    let (_, input) = State::example(&SMALL, 3);
    let witness = BatchWitness::from_input(&SMALL, &input).unwrap();
    let circuit = CatalogCircuit::new(SMALL);
    let mut builder = crate::builder_for(&circuit, CircuitBuilderStage::Mock);
    let mut instances = circuit
        .synthesize(&mut builder, &Witness::new(circuit.name(), witness.clone()))
        .unwrap();
    assert_eq!(
        instances,
        witness.public_inputs(),
        "native public inputs equal the circuit's"
    );
    builder.calculate_params(Some(BLINDING_ROWS));
    instances[1] += Fr::from(1u64);
    let prover = MockProver::run(circuit.shape().k, &builder, vec![instances]).unwrap();
    assert!(
        prover.verify().is_err(),
        "a claimed new_root the batch does not reach is rejected"
    );
}

#[test]
fn padding_before_a_real_transfer_is_rejected_by_constraints() {
    let (_, input) = State::example(&SMALL, 5);
    let mut witness = BatchWitness::from_input(&SMALL, &input).unwrap();
    witness.slots[0] = SlotWitness::padding(SMALL.depth);
    // Slot 1 now starts from the old root again: consistent, but padding is not at the tail.
    let failures = mock(&witness).expect_err("padding must come last");
    assert!(!failures.is_empty());
}

#[test]
fn empty_receiver_with_balance_is_refused() {
    let mut input = funded_state(3, &[(1, 100, 0)])
        .batch(&[(1, 5, 10)])
        .unwrap();
    assert!(input.transfers[0].receiver.empty);
    input.transfers[0].receiver.balance = 3;
    assert_refused(&input, |e| {
        matches!(
            e,
            BatchError::NonZeroEmptyLeaf {
                index: 0,
                balance: 3,
                ..
            }
        )
    });
    let failures = mock(&unchecked_witness(&SMALL, &input)).expect_err("empty leaf with a balance");
    assert!(!failures.is_empty());
}

#[test]
fn builder_refuses_malformed_inputs_with_locations() {
    let good = funded_state(3, &[(1, 100, 0), (2, 5, 0)])
        .batch(&[(1, 2, 10)])
        .unwrap();

    let mut bad = good.clone();
    bad.transfers[0].sender.path[2] = "0xzz".into();
    let err = assert_refused(&bad, |e| matches!(e, BatchError::FieldElement { .. }));
    assert!(
        err.to_string().contains("transfers[0].sender.path[2]"),
        "{err}"
    );

    let mut bad = good.clone();
    bad.old_root = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001".into();
    let err = assert_refused(&bad, |e| matches!(e, BatchError::FieldElement { .. }));
    assert!(
        err.to_string().contains("old_root") && err.to_string().contains("modulus"),
        "{err}"
    );

    let mut bad = good.clone();
    bad.transfers[0].receiver.path.pop();
    assert_refused(&bad, |e| {
        matches!(
            e,
            BatchError::PathLength {
                index: 0,
                got: 2,
                expected: 3,
                ..
            }
        )
    });

    let mut bad = good.clone();
    bad.transfers[0].to = 8;
    assert_refused(&bad, |e| {
        matches!(
            e,
            BatchError::AccountIdOutOfRange {
                id: 8,
                depth: 3,
                ..
            }
        )
    });

    let mut bad = good.clone();
    bad.transfers[0].sender.empty = true;
    assert_refused(&bad, |e| {
        matches!(e, BatchError::SenderMissing { index: 0, id: 1 })
    });

    let mut bad = good.clone();
    bad.transfers.clear();
    assert_refused(&bad, |e| {
        matches!(e, BatchError::WrongTransferCount { got: 0, max: 3, .. })
    });
    let mut bad = good.clone();
    bad.transfers = vec![good.transfers[0].clone(); 4];
    assert_refused(&bad, |e| {
        matches!(e, BatchError::WrongTransferCount { got: 4, max: 3, .. })
    });

    let mut json = serde_json::to_value(&good).unwrap();
    json["transfers"][0]["amount"] = serde_json::json!(-5);
    let err = BatchInput::from_value(&json).unwrap_err();
    assert!(err.to_string().contains("transfers[0].amount"), "{err}");
    json["transfers"][0]["amount"] = serde_json::json!("18446744073709551616");
    let err = BatchInput::from_value(&json).unwrap_err();
    assert!(err.to_string().contains("transfers[0].amount"), "{err}");
    let err = BatchInput::from_json("{\"old_root\": 5}").unwrap_err();
    assert!(matches!(err, BatchError::Json { .. }), "{err}");
}

#[test]
fn circuit_keeps_sizes_derived_from_the_configuration() {
    for circuit in crate::catalog() {
        let shape = circuit.shape();
        assert!(shape.advice_columns <= crate::MAX_ADVICE_COLUMNS && shape.advice_columns > 0);
        assert!(shape.k as usize > shape.lookup_bits);
        // One fewer row power would not fit: k is the smallest that does.
        let rows = (1usize << (shape.k - 1)) - BLINDING_ROWS;
        assert!(
            shape.k as usize == shape.lookup_bits + 1
                || shape.advice_cells.div_ceil(rows) > crate::MAX_ADVICE_COLUMNS
        );
    }
}
