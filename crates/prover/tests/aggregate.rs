//! Recursive aggregation end to end, for real: three consecutive transfer_batch proofs of one
//! rollup; the first two aggregated, then that aggregate and the third batch once more (a tree
//! of mixed depth) as a final (keccak) proof that the generated Solidity verifier accepts
//! inside revm.
//!
//! This is the heaviest test of the workspace (several k=21 aggregation proofs, ~8 GB each):
//! it runs in release mode (`scripts/test`) and shares keys with the other tests through
//! `target/tmp`. It needs `solc` on PATH (`scripts/solc-setup.sh`, which `scripts/test` runs).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{path::PathBuf, time::Instant};

use proofmill_circuits::{transfer_batch::TransferBatchConfig, CatalogCircuit};
use proofmill_prover::{
    aggregate::{evm_verify, ProofCircuit, ACCUMULATOR_LEN},
    KeySource, ProofEnvelope, Prover, ProverError, Stage, Transcript,
};

fn no_progress(_: Stage) {}

fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    eprintln!(
        "[aggregate test] {what}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    out
}

fn rollup_summary(envelope: &ProofEnvelope) -> (String, String) {
    let offset = if envelope.circuit.starts_with("aggregate(") {
        ACCUMULATOR_LEN
    } else {
        0
    };
    (
        envelope.instances[0][offset].clone(),
        envelope.instances[0][offset + 1].clone(),
    )
}

fn flip_byte(envelope: &ProofEnvelope, position: usize) -> ProofEnvelope {
    let mut bytes = envelope.proof_bytes().unwrap();
    bytes[position] ^= 1;
    let mut tampered = envelope.clone();
    tampered.proof = format!("0x{}", hex::encode(bytes));
    tampered
}

#[test]
fn aggregation_tree_and_ethereum_verifier() {
    // Through the CPU engine, as `proofmill` proves by default on a machine without a GPU;
    // every proof below is still checked by the stock verifier before it is returned.
    proofmill_prover::engine::install(proofmill_prover::engine::Engine::Cpu).unwrap();
    let prover = Prover::new(&shared_data_dir());
    let config = TransferBatchConfig::new(16, 8);
    let circuit = CatalogCircuit::new(config);
    let proofs: Vec<ProofEnvelope> = circuit
        .example_inputs(31, 3)
        .iter()
        .enumerate()
        .map(|(i, input)| {
            timed(&format!("prove batch {i}"), || {
                prover
                    .prove(&circuit, input, Transcript::Poseidon, &no_progress)
                    .unwrap()
            })
        })
        .collect();
    for pair in proofs.windows(2) {
        assert_eq!(
            rollup_summary(&pair[0]).1,
            rollup_summary(&pair[1]).0,
            "batches are consecutive"
        );
    }

    // Refused before proving, with the input named.
    let err = prover
        .aggregate(&[proofs[1].clone(), proofs[0].clone()], false, &no_progress)
        .unwrap_err();
    assert!(
        matches!(err, ProverError::Aggregation(_)) && err.to_string().contains("out of order"),
        "{err}"
    );
    let err = prover
        .aggregate(&[proofs[0].clone(), proofs[2].clone()], false, &no_progress)
        .unwrap_err();
    assert!(
        err.to_string().contains("inputs[1] starts at root"),
        "{err}"
    );
    let err = prover
        .aggregate(
            &[proofs[0].clone(), flip_byte(&proofs[1], 64)],
            false,
            &no_progress,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("inputs[1]") && err.to_string().contains("does not verify"),
        "{err}"
    );
    let mut foreign = proofs[1].clone();
    foreign.vk_hash = format!("0x{}", "11".repeat(32));
    let err = prover
        .aggregate(&[proofs[0].clone(), foreign], false, &no_progress)
        .unwrap_err();
    assert!(
        err.to_string().contains("inputs[1]") && err.to_string().contains("vk_hash"),
        "{err}"
    );
    let err = prover
        .aggregate(&proofs[..1], false, &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");

    // Level 1: batches 0-1 and 2-3.
    let a = timed("aggregate batches 0+1 (incl. keygen on first run)", || {
        prover
            .aggregate(&proofs[0..2], false, &no_progress)
            .unwrap()
    });
    assert_eq!(
        a.circuit,
        "aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)"
    );
    assert_eq!(a.instances[0].len(), ACCUMULATOR_LEN + 3);
    assert_eq!(
        rollup_summary(&a),
        (rollup_summary(&proofs[0]).0, rollup_summary(&proofs[1]).1)
    );
    assert!(prover.verify(&a, &no_progress).unwrap().valid);
    assert!(
        !prover
            .verify(&flip_byte(&a, 100), &no_progress)
            .unwrap()
            .valid
    );
    let mut wrong_root = a.clone();
    wrong_root.instances[0][ACCUMULATOR_LEN + 1] = proofs[2].instances[0][1].clone();
    assert!(
        !prover.verify(&wrong_root, &no_progress).unwrap().valid,
        "claimed epoch end is bound"
    );
    let mut bad_accumulator = a.clone();
    bad_accumulator.instances[0][0] = proofs[0].instances[0][0].clone();
    assert!(!prover.verify(&bad_accumulator, &no_progress).unwrap().valid);

    let b = proofs[2].clone();

    // Level 2, over an aggregate and a batch: in the wrong order they are refused too.
    let err = prover
        .aggregate(&[b.clone(), a.clone()], false, &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    // The whole epoch in one final (keccak) proof: level 2 of the tree, for Ethereum.
    let top = timed(
        "final (keccak) level-2 aggregation (incl. keygen on first run)",
        || {
            prover
                .aggregate(&[a.clone(), b.clone()], true, &no_progress)
                .unwrap()
        },
    );
    assert_eq!(top.transcript, Transcript::Keccak);
    assert_eq!(
        ProofCircuit::parse(&top.circuit).unwrap(),
        ProofCircuit::Aggregate(vec![
            ProofCircuit::parse(&a.circuit).unwrap(),
            ProofCircuit::parse(&b.circuit).unwrap()
        ])
    );
    assert_eq!(
        rollup_summary(&top),
        (rollup_summary(&proofs[0]).0, rollup_summary(&proofs[2]).1)
    );
    assert!(prover.verify(&top, &no_progress).unwrap().valid);
    assert!(
        !prover
            .verify(&flip_byte(&top, 100), &no_progress)
            .unwrap()
            .valid
    );
    let err = prover
        .aggregate(&[top.clone(), a.clone()], false, &no_progress)
        .unwrap_err();
    assert!(err.to_string().contains("keccak"), "{err}");
    let fin = top;

    let verifier = timed("generate Solidity verifier and compile it", || {
        prover
            .evm_verifier(
                &ProofCircuit::parse(&fin.circuit).unwrap(),
                KeySource::Existing,
                &no_progress,
            )
            .unwrap()
    });
    let bytecode = verifier
        .bytecode
        .expect("solc is not on PATH: run `scripts/solc-setup.sh target/solc` and add its output to PATH (scripts/test does)");
    let gas = evm_verify(&bytecode, &fin).expect("the verifier contract accepts the final proof");
    eprintln!(
        "[aggregate test] Solidity {} bytes, deployment bytecode {} bytes, verification gas {gas}",
        verifier.solidity.len(),
        bytecode.len()
    );
    assert_eq!(
        prover.evm_gas(&fin).unwrap(),
        Some(gas),
        "the gas a final job reports is the verifier's"
    );
    assert!(
        evm_verify(&bytecode, &flip_byte(&fin, 200)).is_err(),
        "a tampered proof reverts"
    );
    let mut tampered = fin.clone();
    tampered.instances[0][ACCUMULATOR_LEN] = tampered.instances[0][ACCUMULATOR_LEN + 1].clone();
    assert!(
        evm_verify(&bytecode, &tampered).is_err(),
        "a tampered public input reverts"
    );
}
