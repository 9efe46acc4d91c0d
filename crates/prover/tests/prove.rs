//! Proving and verifying for real: the stock halo2 verifier accepts our proofs and rejects
//! altered ones; keys are cached on disk and regenerated when corrupt.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
};

use proofmill_circuits::{transfer_batch::TransferBatchConfig, CatalogCircuit};
use proofmill_prover::{
    keys::FETCHED_MARKER, KeySource, KeyStore, ProofEnvelope, Prover, ProverError, Stage,
    Transcript,
};

/// SRS files and keys shared by the tests of this workspace, kept between runs under
/// `target/tmp` so that keygen happens once.
fn shared_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("proofmill-shared-data")
}

fn prover() -> &'static Prover {
    static PROVER: OnceLock<Prover> = OnceLock::new();
    PROVER.get_or_init(|| Prover::new(&shared_data_dir()))
}

fn d16_b8() -> CatalogCircuit {
    proofmill_circuits::lookup("transfer_batch/d16-b8").expect("catalog circuit")
}

fn no_progress(_: Stage) {}

fn poseidon_proof() -> &'static ProofEnvelope {
    static PROOF: OnceLock<ProofEnvelope> = OnceLock::new();
    PROOF.get_or_init(|| {
        let circuit = d16_b8();
        prover()
            .prove(
                &circuit,
                &circuit.example_input(11),
                Transcript::Poseidon,
                &no_progress,
            )
            .expect("valid example proves")
    })
}

#[test]
fn poseidon_round_trip_and_tamper_rejection() {
    let envelope = poseidon_proof();
    assert_eq!(envelope.format, "proofmill-proof/1");
    assert_eq!(envelope.circuit, "transfer_batch/d16-b8");
    assert_eq!(envelope.k, d16_b8().shape().k);
    assert_eq!(envelope.instances[0].len(), 3);
    let verdict = prover().verify(envelope, &no_progress).unwrap();
    assert!(verdict.valid, "{verdict:?}");

    // One altered proof byte, at several places.
    let bytes = envelope.proof_bytes().unwrap();
    for position in [0, bytes.len() / 2, bytes.len() - 1] {
        let mut altered = bytes.clone();
        altered[position] ^= 0x01;
        let mut tampered = envelope.clone();
        tampered.proof = format!("0x{}", hex::encode(&altered));
        let verdict = prover().verify(&tampered, &no_progress).unwrap();
        assert!(!verdict.valid, "altered byte {position} must not verify");
    }

    // Truncated proof.
    let mut tampered = envelope.clone();
    tampered.proof = format!("0x{}", hex::encode(&bytes[..bytes.len() - 32]));
    assert!(!prover().verify(&tampered, &no_progress).unwrap().valid);

    // Each public input altered.
    for i in 0..3 {
        let mut tampered = envelope.clone();
        let mut value = proofmill_circuits::field::from_hex(&tampered.instances[0][i]).unwrap();
        value += halo2_base::halo2_proofs::halo2curves::bn256::Fr::from(1u64);
        tampered.instances[0][i] = proofmill_circuits::field::to_hex(&value);
        let verdict = prover().verify(&tampered, &no_progress).unwrap();
        assert!(!verdict.valid, "altered instance {i} must not verify");
    }

    // Another key.
    let mut tampered = envelope.clone();
    tampered.vk_hash = format!("0x{}", "ab".repeat(32));
    let verdict = prover().verify(&tampered, &no_progress).unwrap();
    assert!(!verdict.valid && verdict.reason.unwrap().contains("vk_hash"));

    // Read as the wrong transcript.
    let mut tampered = envelope.clone();
    tampered.transcript = Transcript::Keccak;
    assert!(!prover().verify(&tampered, &no_progress).unwrap().valid);
}

#[test]
fn keccak_transcript_round_trip() {
    let circuit = d16_b8();
    let envelope = prover()
        .prove(
            &circuit,
            &circuit.example_input(12),
            Transcript::Keccak,
            &no_progress,
        )
        .unwrap();
    assert_eq!(envelope.transcript, Transcript::Keccak);
    assert!(prover().verify(&envelope, &no_progress).unwrap().valid);
    let mut tampered = envelope.clone();
    tampered.transcript = Transcript::Poseidon;
    assert!(!prover().verify(&tampered, &no_progress).unwrap().valid);
}

#[test]
fn unusable_envelopes_are_errors_not_verdicts() {
    let envelope = poseidon_proof();
    let mut unknown = envelope.clone();
    unknown.circuit = "transfer_batch/d1-b1".into();
    let err = prover().verify(&unknown, &no_progress).unwrap_err();
    assert!(
        err.is_client_error() && err.to_string().contains("unknown circuit"),
        "{err}"
    );

    let mut bad_hex = envelope.clone();
    bad_hex.proof = "0xnothex".into();
    assert!(matches!(
        prover().verify(&bad_hex, &no_progress),
        Err(ProverError::Envelope(_))
    ));

    let mut bad_instance = envelope.clone();
    bad_instance.instances[0][1] = "0x1234".into();
    let err = prover().verify(&bad_instance, &no_progress).unwrap_err();
    assert!(err.to_string().contains("instances[0][1]"), "{err}");

    let json = envelope
        .to_json()
        .replace("proofmill-proof/1", "proofmill-proof/9");
    let err = ProofEnvelope::from_json(&json).unwrap_err();
    assert!(err.to_string().contains("proofmill-proof/9"), "{err}");
    assert!(ProofEnvelope::from_json("{\"format\": 1}").is_err());
}

#[test]
fn invalid_batch_is_refused_before_proving() {
    let circuit = d16_b8();
    let mut input = circuit.example_input(13);
    input["transfers"][0]["amount"] = serde_json::json!(u64::MAX);
    let stages = std::sync::Mutex::new(Vec::new());
    let err = prover()
        .prove(&circuit, &input, Transcript::Poseidon, &|s| {
            stages.lock().unwrap().push(s)
        })
        .unwrap_err();
    assert!(err.is_client_error(), "{err}");
    assert!(
        err.to_string().contains("transfer 0") && err.to_string().contains("overdraft"),
        "{err}"
    );
    assert_eq!(
        *stages.lock().unwrap(),
        vec![Stage::Witness],
        "nothing after validation ran"
    );
}

#[test]
fn keys_are_cached_on_disk_and_regenerated_when_corrupt() {
    let small = CatalogCircuit::new(TransferBatchConfig {
        depth: 3,
        batch_size: 2,
        lookup_bits: 8,
    });
    let srs = prover().srs_store().load(small.shape().k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keygens = AtomicUsize::new(0);
    let count = || {
        keygens.fetch_add(1, Ordering::SeqCst);
    };

    let first = KeyStore::new(dir.path())
        .get(&small, &srs, KeySource::Generate, &count)
        .unwrap();
    assert_eq!(keygens.load(Ordering::SeqCst), 1);

    // A new store (a restarted process) loads from disk: no keygen, same key.
    let store = KeyStore::new(dir.path());
    let second = store
        .get(&small, &srs, KeySource::Generate, &count)
        .unwrap();
    assert_eq!(keygens.load(Ordering::SeqCst), 1, "loaded from disk");
    assert_eq!(first.vk_hash, second.vk_hash);
    assert_eq!(first.break_points, second.break_points);
    // And from memory on the next call.
    store
        .get(&small, &srs, KeySource::Generate, &count)
        .unwrap();
    assert_eq!(keygens.load(Ordering::SeqCst), 1);

    // A corrupted key file is detected and regenerated, giving the same deterministic vk.
    let pk = KeyStore::new(dir.path())
        .key_dir(&small.name(), srs.srs_id())
        .join("pk.bin");
    let mut bytes = std::fs::read(&pk).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&pk, bytes).unwrap();
    let third = KeyStore::new(dir.path())
        .get(&small, &srs, KeySource::Generate, &count)
        .unwrap();
    assert_eq!(keygens.load(Ordering::SeqCst), 2, "corrupt key regenerated");
    assert_eq!(third.vk_hash, first.vk_hash);
}

/// Verification-only callers never make keys: a missing key is an error that says how to get
/// it, and nothing was generated.
#[test]
fn existing_keys_only_never_generate() {
    let small = CatalogCircuit::new(TransferBatchConfig {
        depth: 2,
        batch_size: 1,
        lookup_bits: 8,
    });
    let srs = prover().srs_store().load(small.shape().k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keygens = AtomicUsize::new(0);
    let count = || {
        keygens.fetch_add(1, Ordering::SeqCst);
    };
    let store = KeyStore::new(dir.path());
    assert!(!store.has(&small.name(), srs.srs_id()));
    let err = store
        .get(&small, &srs, KeySource::Existing, &count)
        .err()
        .expect("no keys yet");
    assert!(matches!(err, ProverError::KeysMissing { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&small.name()) && text.contains("keygen"),
        "{text}"
    );
    assert!(err.is_client_error());
    assert_eq!(keygens.load(Ordering::SeqCst), 0);
    store
        .get(&small, &srs, KeySource::Generate, &count)
        .unwrap();
    assert!(store.has(&small.name(), srs.srs_id()));
    assert!(KeyStore::new(dir.path()).has(&small.name(), srs.srs_id()));
    KeyStore::new(dir.path())
        .get(&small, &srs, KeySource::Existing, &count)
        .unwrap();
    assert_eq!(keygens.load(Ordering::SeqCst), 1);
}

/// A key fetched from another node (marked as such) is used only once its verifying key
/// equals the one computed here from the circuit: another circuit's key, with a checksum
/// that matches it (all a bucket could offer), is discarded.
#[test]
fn a_fetched_key_is_checked_against_the_circuit_before_use() {
    // Two circuits of one size that differ (a tree one level deeper), so one SRS serves both.
    let config = |depth| {
        CatalogCircuit::new(TransferBatchConfig {
            depth,
            batch_size: 1,
            lookup_bits: 8,
        })
    };
    let (ours, theirs) = (config(3), config(4));
    assert_eq!(ours.shape().k, theirs.shape().k, "same SRS for both");
    let srs = prover().srs_store().load(ours.shape().k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    let genuine = store.get(&ours, &srs, KeySource::Generate, &|| {}).unwrap();
    let other = store
        .get(&theirs, &srs, KeySource::Generate, &|| {})
        .unwrap();
    let ours_dir = store.key_dir(&ours.name(), srs.srs_id());
    let theirs_dir = store.key_dir(&theirs.name(), srs.srs_id());

    // A genuine fetched key passes the check, and the mark goes.
    std::fs::write(ours_dir.join(FETCHED_MARKER), b"").unwrap();
    let checked = KeyStore::new(dir.path())
        .get(&ours, &srs, KeySource::Existing, &|| {})
        .unwrap();
    assert_eq!(checked.vk_hash, genuine.vk_hash);
    assert!(!ours_dir.join(FETCHED_MARKER).exists());

    // Another circuit's key under our name, its metadata rewritten to match.
    std::fs::copy(theirs_dir.join("pk.bin"), ours_dir.join("pk.bin")).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(theirs_dir.join("meta.json")).unwrap()).unwrap();
    meta["circuit"] = serde_json::Value::String(ours.name());
    std::fs::write(ours_dir.join("meta.json"), meta.to_string()).unwrap();
    std::fs::write(ours_dir.join(FETCHED_MARKER), b"").unwrap();
    let err = KeyStore::new(dir.path())
        .get(&ours, &srs, KeySource::Existing, &|| {})
        .err()
        .expect("a key that is not the circuit's is refused");
    assert!(err.to_string().contains("discarded"), "{err}");
    assert!(!ours_dir.exists(), "the bad key was removed");
    let regenerated = KeyStore::new(dir.path())
        .get(&ours, &srs, KeySource::Generate, &|| {})
        .unwrap();
    assert_eq!(regenerated.vk_hash, genuine.vk_hash);
    assert_ne!(regenerated.vk_hash, other.vk_hash);
}

/// A `rollup` batch (signed transfers, an exit, a claim) proved through the catalog like any
/// circuit: the stock verifier accepts it, its nine public inputs are where the catalog says,
/// and a claimed chain id or exit root that is not the batch's does not verify.
#[test]
fn a_signed_rollup_batch_proves_and_its_public_inputs_bind() {
    let circuit = proofmill_circuits::lookup("rollup/d8-t2-e1-c1").unwrap();
    assert_eq!(
        circuit.instance_names(),
        proofmill_circuits::rollup::INSTANCE_NAMES
    );
    let input = circuit.example_input(5);
    let envelope = prover()
        .prove(&circuit, &input, Transcript::Poseidon, &no_progress)
        .expect("the example batch proves");
    assert_eq!(envelope.instances[0].len(), 9);
    assert!(prover().verify(&envelope, &no_progress).unwrap().valid);
    assert_eq!(
        proofmill_circuits::field::from_hex(
            &envelope.instances[0][proofmill_circuits::rollup::CHAIN_ID]
        )
        .unwrap(),
        halo2_base::halo2_proofs::halo2curves::bn256::Fr::from(1u64),
        "the example is chain 1's"
    );
    for position in [
        proofmill_circuits::rollup::CHAIN_ID,
        proofmill_circuits::rollup::NEW_EXIT_ROOT,
        proofmill_circuits::rollup::CLAIMED_TOTAL,
    ] {
        let mut tampered = envelope.clone();
        let mut value =
            proofmill_circuits::field::from_hex(&tampered.instances[0][position]).unwrap();
        value += halo2_base::halo2_proofs::halo2curves::bn256::Fr::from(1u64);
        tampered.instances[0][position] = proofmill_circuits::field::to_hex(&value);
        assert!(
            !prover().verify(&tampered, &no_progress).unwrap().valid,
            "public input {position} altered"
        );
    }
}

/// An aggregation key's keygen asks the key store for its children's keys while its own is
/// being made: per-key coordination never waits on itself. (A store-wide generation lock
/// deadlocked exactly here, on `proofmill verify` of an aggregate on a fresh data directory.)
#[test]
fn a_keygen_that_needs_other_keys_does_not_wait_on_itself() {
    let inner = CatalogCircuit::new(TransferBatchConfig {
        depth: 2,
        batch_size: 1,
        lookup_bits: 8,
    });
    let srs = prover().srs_store().load(inner.shape().k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(KeyStore::new(dir.path()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = {
        let store = store.clone();
        let srs = srs.clone();
        let inner = inner.clone();
        std::thread::spawn(move || {
            let outer = store.get_or_generate(
                "outer-needs-inner",
                &srs,
                KeySource::Generate,
                &|| {},
                &|| {
                    // The children's keys, through the same store, while "outer" is held.
                    store.get(&inner, &srs, KeySource::Generate, &|| {})?;
                    proofmill_prover::keys::keygen_layout(&inner, &srs)
                },
            );
            let _ = done_tx.send(outer.map(|k| k.vk_hash.clone()));
        })
    };
    // Generous: the keygen takes seconds; a deadlock never ends.
    let outer = done_rx
        .recv_timeout(std::time::Duration::from_secs(600))
        .expect("the keygen finished: no deadlock")
        .unwrap();
    worker.join().unwrap();
    assert!(store.has(&inner.name(), srs.srs_id()));
    assert!(outer.starts_with("0x"));
}

/// Listing what is on disk finds the keys a store made, under their SRS, and nothing for
/// circuits it has not made.
#[test]
fn cached_keys_are_listed_from_their_metadata() {
    let small = CatalogCircuit::new(TransferBatchConfig {
        depth: 2,
        batch_size: 2,
        lookup_bits: 8,
    });
    let srs = prover().srs_store().load(small.shape().k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::new(dir.path());
    assert!(store.cached(&small.name()).is_empty());
    let keys = store
        .get(&small, &srs, KeySource::Generate, &|| {})
        .unwrap();
    let listed = KeyStore::new(dir.path()).cached(&small.name());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].vk_hash, keys.vk_hash);
    assert_eq!(listed[0].srs_id, srs.srs_id());
    assert!(KeyStore::new(dir.path())
        .cached("transfer_batch/d9-b9")
        .is_empty());
}
