//! proofmill's prover: the SRS store, the key cache, proving and verifying catalog circuits,
//! and the proof envelope.
//!
//! Every proof this crate returns has already been accepted by the stock halo2 verifier.
//! The prover knows circuits (through `proofmill-circuits`) and keys; it knows nothing of
//! HTTP, jobs or tenants.

pub mod aggregate;
pub mod devices;
pub mod engine;
pub mod envelope;
pub mod epoch;
pub mod keys;
pub mod memory;
pub mod srs;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        plonk::{create_proof, verify_proof},
        poly::{
            commitment::ParamsProver,
            kzg::{
                commitment::{KZGCommitmentScheme, ParamsKZG},
                multiopen::{ProverSHPLONK, VerifierSHPLONK},
                strategy::AccumulatorStrategy,
            },
            VerificationStrategy,
        },
        transcript::{EncodedChallenge, TranscriptReadBuffer, TranscriptWriterBuffer},
    },
};
use proofmill_circuits::{CatalogCircuit, CircuitError, Witness};
use rand::{rngs::StdRng, SeedableRng};
use snark_verifier_sdk::{
    halo2::{PoseidonTranscript, POSEIDON_SPEC},
    snark_verifier::system::halo2::transcript::evm::EvmTranscript,
    NativeLoader,
};

pub use aggregate::{
    CircuitNameError, ProofCircuit, ACCUMULATOR_LEN, AGGREGATION_K, MAX_AGGREGATION_DEPTH,
    MAX_CIRCUIT_NAME_BYTES,
};
pub use envelope::{EnvelopeError, ProofEnvelope, SrsLabel, Transcript};
pub use keys::{CircuitKeys, KeySource, KeyStore};
pub use srs::{Srs, SrsError, SrsStore};

/// Why proving or verifying could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProverError {
    /// The circuit or its input is not acceptable (the caller's mistake).
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The envelope is unusable (the caller's mistake).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A circuit name is malformed, too long or too deeply nested (the caller's mistake).
    #[error(transparent)]
    CircuitName(#[from] CircuitNameError),
    /// The keys a proof needs are not on this appliance, and the work at hand may not make
    /// them ([`KeySource::Existing`]).
    #[error("no keys for {circuit} on this appliance ({reason}): prove one such proof here, or submit a keygen job (`{{\"type\":\"keygen\",\"circuit\":\"{circuit}\"}}`, or `proofmill keygen --circuit '{circuit}'`), then try again")]
    KeysMissing {
        /// The circuit whose keys are missing.
        circuit: String,
        /// Why they could not be used.
        reason: String,
    },
    /// The SRS could not be loaded or generated.
    #[error(transparent)]
    Srs(#[from] SrsError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Key generation failed.
    #[error("key generation of {circuit} failed: {message}")]
    Keygen {
        /// The circuit.
        circuit: String,
        /// halo2's error.
        message: String,
    },
    /// halo2 could not create the proof.
    #[error("proving {circuit} failed: {message}")]
    Proving {
        /// The circuit.
        circuit: String,
        /// halo2's error.
        message: String,
    },
    /// The SRS loaded for a circuit has another size than the circuit needs.
    #[error("the SRS has k={srs_k} but {circuit} needs k={needed_k}")]
    SrsSize {
        /// The circuit.
        circuit: String,
        /// The SRS's k.
        srs_k: u32,
        /// The circuit's k.
        needed_k: u32,
    },
    /// The stock verifier rejected a proof this prover just made: a bug, never shipped.
    #[error("self-check failed: the stock halo2 verifier rejected the proof just generated for {circuit}; it was not returned")]
    SelfCheckFailed {
        /// The circuit.
        circuit: String,
    },
    /// The proofs cannot be aggregated (the caller's mistake): too few, wrong transcript, not
    /// verifying, or not consecutive.
    #[error("cannot aggregate: {0}")]
    Aggregation(String),
    /// The proofs cannot make an epoch from this settled state (the caller's mistake): two
    /// stretches of one chain, a stretch that does not start at its chain's settled state,
    /// claims against another global exit root, a chain spending more than its balance.
    #[error("cannot settle the epoch: {0}")]
    Epoch(String),
    /// The Ethereum verifier could not be built or run.
    #[error("EVM verifier: {0}")]
    Evm(String),
    /// The requested compute engine cannot be used (e.g. `cuda` with no usable GPU).
    #[error("engine: {0}")]
    Engine(String),
    /// An invariant broke.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProverError {
    /// True when the error is the caller's (bad input), false when it is the appliance's.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::Circuit(_)
                | Self::Envelope(_)
                | Self::CircuitName(_)
                | Self::KeysMissing { .. }
                | Self::Aggregation(_)
                | Self::Epoch(_)
        )
    }
}

/// The steps of a proof, reported as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Parsing and validating the input.
    Witness,
    /// Loading (or generating) the SRS.
    Srs,
    /// Loading the proving key.
    Keys,
    /// Generating the proving key (first use of a circuit under this SRS).
    Keygen,
    /// Running the prover.
    Proving,
    /// Checking the proof with the stock verifier.
    Verifying,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Witness => "validating input",
            Stage::Srs => "loading SRS",
            Stage::Keys => "loading proving key",
            Stage::Keygen => "generating proving key (first use; cached afterwards)",
            Stage::Proving => "proving",
            Stage::Verifying => "verifying with the stock halo2 verifier",
        })
    }
}

/// Whether a proof verified, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// True when the stock verifier accepted the proof.
    pub valid: bool,
    /// Why not, when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SRS the proof was checked under, once its circuit's keys were found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srs: Option<SrsLabel>,
}

/// Proves and verifies catalog circuits, with SRS files and keys under one data directory.
pub struct Prover {
    srs: SrsStore,
    keys: KeyStore,
}

impl Prover {
    /// A prover keeping SRS files in `{data_dir}/srs` and keys in `{data_dir}/keys`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            srs: SrsStore::new(data_dir.join("srs")),
            keys: KeyStore::new(data_dir.join("keys")),
        }
    }

    /// The SRS store.
    pub fn srs_store(&self) -> &SrsStore {
        &self.srs
    }

    /// The files a node needs to prove `circuit` (at `k`) without generating anything: the
    /// SRS file for `k` and the circuit's proving key and its metadata, those that exist on
    /// disk. For sharing them between the nodes of a cluster.
    pub fn data_files(
        &self,
        circuit: &str,
        k: u32,
    ) -> Result<Vec<std::path::PathBuf>, ProverError> {
        let srs = self.srs.load(k)?;
        let keys = self.keys.key_dir(circuit, srs.srs_id());
        // The key before its metadata: a node that sees the metadata knows the key is there.
        let files = [
            self.srs.file_path(k),
            keys.join("pk.bin"),
            keys.join("meta.json"),
        ];
        Ok(files.into_iter().filter(|f| f.is_file()).collect())
    }

    /// The SRS a circuit is proven under.
    pub fn srs_for(&self, circuit: &CatalogCircuit) -> Result<Arc<Srs>, ProverError> {
        Ok(self.srs.load(circuit.shape().k)?)
    }

    /// The key store.
    pub fn key_store(&self) -> &KeyStore {
        &self.keys
    }

    /// The keys of a catalog circuit, generated on first use when `source` allows.
    pub fn keys(
        &self,
        circuit: &CatalogCircuit,
        source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<Arc<CircuitKeys>, ProverError> {
        progress(Stage::Srs);
        let srs = self.srs_for(circuit)?;
        progress(Stage::Keys);
        self.keys
            .get(circuit, &srs, source, &|| progress(Stage::Keygen))
    }

    /// True when this appliance holds the keys of `circuit` (memory or disk; not checked).
    /// Loads the SRS of its `k` (generating the development one when there is none).
    pub fn has_keys(&self, circuit: &ProofCircuit) -> Result<bool, ProverError> {
        let srs = self.srs.load(circuit.k())?;
        Ok(self.keys.has(&circuit.name(), srs.srs_id()))
    }

    /// Validates a job input and proves it.
    pub fn prove(
        &self,
        circuit: &CatalogCircuit,
        input: &serde_json::Value,
        transcript: Transcript,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        progress(Stage::Witness);
        let witness = circuit.parse_input(input)?;
        self.prove_witness(circuit, &witness, transcript, progress)
    }

    /// Proves a validated witness; the proof is checked by the stock verifier before it is
    /// returned.
    pub fn prove_witness(
        &self,
        circuit: &CatalogCircuit,
        witness: &Witness,
        transcript: Transcript,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        let keys = self.keys(circuit, KeySource::Generate, progress)?;
        let srs = self.srs_for(circuit)?;
        progress(Stage::Proving);
        let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Prover)
            .use_params(keys.config_params.clone())
            .use_break_points(keys.break_points.clone());
        let instances = vec![circuit.synthesize(&mut builder, witness)?];
        let proof = create(srs.params(), &keys, builder, &instances, transcript)?;
        progress(Stage::Verifying);
        if !check(srs.params(), &keys, &instances, &proof, transcript) {
            return Err(ProverError::SelfCheckFailed {
                circuit: circuit.name(),
            });
        }
        Ok(ProofEnvelope {
            format: envelope::FORMAT.to_owned(),
            circuit: circuit.name(),
            k: circuit.shape().k,
            vk_hash: keys.vk_hash.clone(),
            transcript,
            instances: ProofEnvelope::encode_instances(&instances),
            proof: format!("0x{}", hex::encode(&proof)),
            srs: Some(SrsLabel::of(&srs)),
        })
    }

    /// Verifies an envelope with the keys this appliance has ([`KeySource::Existing`]): see
    /// [`Prover::verify_with`].
    pub fn verify(
        &self,
        envelope: &ProofEnvelope,
        progress: &dyn Fn(Stage),
    ) -> Result<Verdict, ProverError> {
        self.verify_with(envelope, KeySource::Existing, progress)
    }

    /// Verifies an envelope with the stock halo2 verifier (and, for an aggregation, the
    /// pairing check of the KZG accumulator it carries), with keys from `source`. An envelope
    /// that names an unknown circuit or is malformed, or whose keys are missing, is an error;
    /// a proof that does not verify (altered bytes, altered public inputs, another key) is
    /// `Ok` with `valid: false`.
    pub fn verify_with(
        &self,
        envelope: &ProofEnvelope,
        source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<Verdict, ProverError> {
        let circuit = ProofCircuit::parse(&envelope.circuit)?;
        let instances = envelope.instance_values()?;
        let proof = envelope.proof_bytes()?;
        if source == KeySource::Existing && self.keys.cached(&circuit.name()).is_empty() {
            // Without keys there is nothing to check against: say so before loading an SRS.
            return Err(ProverError::KeysMissing {
                circuit: circuit.name(),
                reason: "this appliance has never made or fetched them".to_owned(),
            });
        }
        let invalid = |reason: String| {
            Ok(Verdict {
                valid: false,
                reason: Some(reason),
                srs: None,
            })
        };
        let k = circuit.k();
        if envelope.k != k {
            return invalid(format!(
                "k is {} but {} has k={k}",
                envelope.k,
                circuit.name()
            ));
        }
        if instances.len() != 1 || instances[0].len() != circuit.num_instances() {
            return invalid(format!(
                "{} has one instance column of {} public inputs; the envelope has {:?}",
                circuit.name(),
                circuit.num_instances(),
                instances.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
        let (srs, keys) = self.keys_for(&circuit, source, progress)?;
        let label = Some(SrsLabel::of(&srs));
        let invalid = |reason: String| {
            Ok(Verdict {
                valid: false,
                reason: Some(reason),
                srs: label.clone(),
            })
        };
        if envelope.vk_hash != keys.vk_hash {
            return invalid(format!(
                "vk_hash {} is not this appliance's verifying key for {} ({}): made under another SRS or circuit version",
                envelope.vk_hash,
                circuit.name(),
                keys.vk_hash
            ));
        }
        progress(Stage::Verifying);
        if !check(srs.params(), &keys, &instances, &proof, envelope.transcript) {
            return invalid("the stock halo2 verifier rejected the proof".into());
        }
        if circuit.is_recursive()
            && !aggregate::accumulator_holds(srs.params(), &instances[0][..ACCUMULATOR_LEN])
        {
            return invalid(
                "the KZG accumulator of the aggregated proofs fails its pairing check".into(),
            );
        }
        Ok(Verdict {
            valid: true,
            reason: None,
            srs: label,
        })
    }
}

/// Runs halo2's `create_proof` (SHPLONK) with the chosen transcript and fresh blinding
/// randomness.
fn create(
    params: &ParamsKZG<Bn256>,
    keys: &CircuitKeys,
    circuit: BaseCircuitBuilder<Fr>,
    instances: &[Vec<Fr>],
    transcript: Transcript,
) -> Result<Vec<u8>, ProverError> {
    fn with<E: EncodedChallenge<G1Affine>, T: TranscriptWriterBuffer<Vec<u8>, G1Affine, E>>(
        params: &ParamsKZG<Bn256>,
        keys: &CircuitKeys,
        circuit: BaseCircuitBuilder<Fr>,
        instances: &[&[Fr]],
        mut t: T,
    ) -> Result<Vec<u8>, ProverError> {
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
            params,
            &keys.pk,
            &[circuit],
            &[instances],
            StdRng::from_entropy(),
            &mut t,
        )
        .map_err(|e| ProverError::Proving {
            circuit: keys.circuit.clone(),
            message: e.to_string(),
        })?;
        Ok(t.finalize())
    }
    let instances: Vec<&[Fr]> = instances.iter().map(Vec::as_slice).collect();
    match transcript {
        Transcript::Poseidon => with(
            params,
            keys,
            circuit,
            &instances,
            PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone()),
        ),
        Transcript::Keccak => with(
            params,
            keys,
            circuit,
            &instances,
            EvmTranscript::<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>::init(Vec::new()),
        ),
    }
}

/// The stock halo2 verifier (SHPLONK, KZG on BN254): true when it accepts the proof.
pub fn check(
    params: &ParamsKZG<Bn256>,
    keys: &CircuitKeys,
    instances: &[Vec<Fr>],
    proof: &[u8],
    transcript: Transcript,
) -> bool {
    fn with<'p, E: EncodedChallenge<G1Affine>, T: TranscriptReadBuffer<&'p [u8], G1Affine, E>>(
        params: &ParamsKZG<Bn256>,
        keys: &CircuitKeys,
        instances: &[&[Fr]],
        mut t: T,
    ) -> bool {
        let verifier_params = params.verifier_params();
        let strategy = AccumulatorStrategy::new(verifier_params);
        match verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
            verifier_params,
            keys.vk(),
            strategy,
            &[instances],
            &mut t,
        ) {
            Ok(strategy) => {
                VerificationStrategy::<_, VerifierSHPLONK<'_, Bn256>>::finalize(strategy)
            }
            Err(_) => false,
        }
    }
    let instances: Vec<&[Fr]> = instances.iter().map(Vec::as_slice).collect();
    match transcript {
        Transcript::Poseidon => with(
            params,
            keys,
            &instances,
            PoseidonTranscript::<NativeLoader, &[u8]>::from_spec(proof, POSEIDON_SPEC.clone()),
        ),
        Transcript::Keccak => with(
            params,
            keys,
            &instances,
            EvmTranscript::<G1Affine, NativeLoader, &[u8], Vec<u8>>::init(proof),
        ),
    }
}
