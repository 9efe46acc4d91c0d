//! Recursive aggregation: many proofs folded into one with snark-verifier's aggregation
//! circuit, to any depth, the last step optionally with a Keccak transcript for Ethereum.
//!
//! Aggregation here is rollup-aware. Every catalog circuit is a `transfer_batch`, whose public
//! inputs are `(old_root, new_root, batch_commitment)`; an aggregate of such proofs (or of such
//! aggregates) enforces in-circuit that each input's `new_root` equals the next input's
//! `old_root`, and exposes, after the 12-limb KZG accumulator,
//! `(first old_root, last new_root, Poseidon(children's commitments))`. So an aggregate at any
//! level of the tree is one proof for a contiguous stretch of a rollup's history.
//!
//! An aggregation circuit is named by the circuits it aggregates:
//! `aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)`, nested for deeper trees. The name
//! fixes the inner verifying keys (given the SRS), so it fixes the aggregation's keys.

use std::sync::Arc;

use halo2_base::{
    gates::{circuit::CircuitBuilderStage, GateInstructions, RangeInstructions},
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        poly::commitment::ParamsProver,
    },
};
use proofmill_circuits::{
    poseidon, CatalogCircuit, ChainFields, ChainLayout, CircuitError, BLINDING_ROWS,
};
use snark_verifier_sdk::{
    halo2::{
        aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality},
        gen_dummy_snark_from_vk,
    },
    snark_verifier::{
        loader::evm::{deploy_and_call, encode_calldata},
        pcs::{
            kzg::{KzgDecidingKey, LimbsEncoding},
            AccumulationDecider, AccumulatorEncoding,
        },
        system::halo2::{compile, Config},
    },
    CircuitExt, NativeLoader, Snark, BITS, LIMBS, SHPLONK,
};

use crate::{
    check, create, envelope, CircuitKeys, KeySource, ProofEnvelope, Prover, ProverError, Srs,
    Stage, Transcript,
};

/// Rows of every aggregation circuit: 2^21. Measured on this stack: two inner proofs at k=21
/// give a verifier that fits Ethereum's contract size limits (see docs/aggregation.md).
pub const AGGREGATION_K: u32 = 21;
/// Public inputs taken by the KZG accumulator (4 coordinates in `LIMBS` limbs each).
pub const ACCUMULATOR_LEN: usize = 4 * LIMBS;

/// The longest circuit name accepted, in bytes: a binary tree of depth 8 over catalog
/// circuits needs about 9 KB.
pub const MAX_CIRCUIT_NAME_BYTES: usize = 16 * 1024;
/// The deepest aggregation tree accepted (`aggregate(` nested this many times).
pub const MAX_AGGREGATION_DEPTH: usize = 8;

/// A circuit a proof can be for: a catalog circuit or an aggregation of others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofCircuit {
    /// A catalog (application) circuit.
    App(CatalogCircuit),
    /// An aggregation of proofs of these circuits, in order.
    Aggregate(Vec<ProofCircuit>),
    /// An epoch settlement over one stretch per chain, in increasing chain id (see
    /// [`crate::epoch`]).
    Epoch(Vec<ProofCircuit>),
}

/// Why a circuit name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitNameError {
    /// Longer than [`MAX_CIRCUIT_NAME_BYTES`].
    #[error("circuit name is {len} bytes; the limit is {limit} bytes")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// `aggregate(` nested deeper than [`MAX_AGGREGATION_DEPTH`].
    #[error("circuit name nests aggregate( more than {limit} deep (at byte {at}); the limit is {limit} levels")]
    TooDeep {
        /// Where the level over the limit starts.
        at: usize,
        /// The limit.
        limit: usize,
    },
    /// Not of the form `NAME` or `aggregate(NAME,NAME,…)`.
    #[error("circuit name: {message} at byte {at}")]
    Syntax {
        /// What was expected.
        message: String,
        /// Where.
        at: usize,
    },
    /// An aggregation of fewer than two circuits.
    #[error(
        "circuit name: the aggregate( at byte {at} has {got} input; an aggregation has at least 2"
    )]
    TooFewInputs {
        /// Where it starts.
        at: usize,
        /// Inputs it has.
        got: usize,
    },
    /// An aggregation of bridged-chain proofs (`rollup/…`) and others: their public inputs
    /// do not chain.
    #[error("circuit name: the aggregate( at byte {at} mixes rollup circuits with others; an aggregation folds one kind")]
    MixedFamilies {
        /// Where it starts.
        at: usize,
    },
    /// An `epoch(` inside another circuit: an epoch proof is settled, never aggregated.
    #[error("circuit name: the epoch( at byte {at} is inside another circuit; an epoch proof is settled on Ethereum, not aggregated again")]
    NestedEpoch {
        /// Where it starts.
        at: usize,
    },
    /// An `epoch(` over a circuit that is not a bridged chain's.
    #[error("circuit name: input {index} of the epoch( at byte {at} is {name}, not a bridged chain's circuit (rollup/… or an aggregate of them)")]
    NotBridged {
        /// Where the epoch starts.
        at: usize,
        /// Which input.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A part that is not in the catalog.
    #[error("circuit name: {0}")]
    Unknown(#[from] CircuitError),
}

/// A single pass over a circuit name: every byte is looked at once, the nesting is bounded.
struct NameParser<'a> {
    text: &'a str,
    at: usize,
}

impl NameParser<'_> {
    fn skip_spaces(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn node(&mut self, depth: usize) -> Result<ProofCircuit, CircuitNameError> {
        self.skip_spaces();
        let start = self.at;
        let epoch = self.text[self.at..].starts_with("epoch(");
        if epoch || self.text[self.at..].starts_with("aggregate(") {
            if epoch && depth > 0 {
                return Err(CircuitNameError::NestedEpoch { at: start });
            }
            if depth == MAX_AGGREGATION_DEPTH {
                return Err(CircuitNameError::TooDeep {
                    at: start,
                    limit: MAX_AGGREGATION_DEPTH,
                });
            }
            self.at += if epoch {
                "epoch(".len()
            } else {
                "aggregate(".len()
            };
            let mut children = Vec::new();
            loop {
                children.push(self.node(depth + 1)?);
                self.skip_spaces();
                match self.text[self.at..].chars().next() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    _ => {
                        return Err(CircuitNameError::Syntax {
                            message: "expected ',' or ')'".into(),
                            at: self.at,
                        })
                    }
                }
            }
            let bridged = |c: &ProofCircuit| c.chain_layout().chain.is_some();
            if epoch {
                if let Some((index, child)) = children.iter().enumerate().find(|(_, c)| !bridged(c))
                {
                    return Err(CircuitNameError::NotBridged {
                        at: start,
                        index,
                        name: child.name(),
                    });
                }
                return Ok(ProofCircuit::Epoch(children));
            }
            if children.len() < 2 {
                return Err(CircuitNameError::TooFewInputs {
                    at: start,
                    got: children.len(),
                });
            }
            if children.iter().any(bridged) && !children.iter().all(bridged) {
                return Err(CircuitNameError::MixedFamilies { at: start });
            }
            return Ok(ProofCircuit::Aggregate(children));
        }
        let len = self.text[self.at..]
            .find(['(', ')', ','])
            .unwrap_or(self.text.len() - self.at);
        let leaf = self.text[self.at..self.at + len].trim();
        if leaf.is_empty() {
            return Err(CircuitNameError::Syntax {
                message: "expected a circuit name".into(),
                at: self.at,
            });
        }
        self.at += len;
        Ok(ProofCircuit::App(proofmill_circuits::lookup(leaf)?))
    }
}

impl ProofCircuit {
    /// Parses a catalog name, an `aggregate(…)` or an `epoch(…)` name, in one pass, refusing names longer
    /// than [`MAX_CIRCUIT_NAME_BYTES`] or nested deeper than [`MAX_AGGREGATION_DEPTH`].
    pub fn parse(name: &str) -> Result<Self, CircuitNameError> {
        if name.len() > MAX_CIRCUIT_NAME_BYTES {
            return Err(CircuitNameError::TooLong {
                len: name.len(),
                limit: MAX_CIRCUIT_NAME_BYTES,
            });
        }
        let mut parser = NameParser { text: name, at: 0 };
        let circuit = parser.node(0)?;
        parser.skip_spaces();
        if parser.at != name.len() {
            return Err(CircuitNameError::Syntax {
                message: "unexpected text after the name".into(),
                at: parser.at,
            });
        }
        Ok(circuit)
    }

    /// The canonical name.
    pub fn name(&self) -> String {
        match self {
            Self::App(c) => c.name(),
            Self::Aggregate(children) | Self::Epoch(children) => {
                format!(
                    "{}({})",
                    if matches!(self, Self::Epoch(_)) {
                        "epoch"
                    } else {
                        "aggregate"
                    },
                    children
                        .iter()
                        .map(Self::name)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        }
    }

    /// Whether proofs of this circuit carry a KZG accumulator (aggregations and epochs).
    pub fn is_recursive(&self) -> bool {
        !matches!(self, Self::App(_))
    }

    /// Number of public inputs.
    pub fn num_instances(&self) -> usize {
        match self {
            Self::App(c) => c.num_instances(),
            Self::Aggregate(children) => match aggregate_layout(children).chain {
                Some(_) => ACCUMULATOR_LEN + 9,
                None => ACCUMULATOR_LEN + 3,
            },
            Self::Epoch(children) => crate::epoch::num_instances(children.len()),
        }
    }

    /// Where the start and end states (and a bridged chain's fields) sit among the public
    /// inputs.
    pub fn chain_layout(&self) -> ChainLayout {
        match self {
            Self::App(c) => c.chain_layout(),
            Self::Aggregate(children) => aggregate_layout(children),
            // Not one chain's stretch: an epoch is never an input (the parser refuses it),
            // so no caller reads these positions. Its own layout is in `crate::epoch`.
            Self::Epoch(_) => ChainLayout {
                old_root: ACCUMULATOR_LEN,
                new_root: ACCUMULATOR_LEN,
                commitment: ACCUMULATOR_LEN,
                chain: None,
            },
        }
    }

    pub(crate) fn accumulator_indices(&self) -> Option<Vec<(usize, usize)>> {
        match self {
            Self::App(_) => None,
            Self::Aggregate(_) | Self::Epoch(_) => AggregationCircuit::accumulator_indices(),
        }
    }

    /// log2 of the circuit's rows.
    pub fn k(&self) -> u32 {
        match self {
            Self::App(c) => c.shape().k,
            Self::Aggregate(_) => AGGREGATION_K,
            Self::Epoch(children) => crate::epoch::epoch_k(children.len()),
        }
    }

    /// Where keys of this circuit may come from when it is an input to verify: a catalog
    /// circuit's keys (a few, bounded) may be made; an aggregation's only under `source`.
    pub(crate) fn input_source(&self, source: KeySource) -> KeySource {
        match self {
            Self::App(_) => KeySource::Generate,
            Self::Aggregate(_) | Self::Epoch(_) => source,
        }
    }
}

/// The Solidity verifier of an aggregation and, when a `solc` is on PATH, its bytecode.
pub struct EvmVerifier {
    /// Solidity source.
    pub solidity: String,
    /// Deployment bytecode, when `solc` was available.
    pub bytecode: Option<Vec<u8>>,
}

/// Compiles Solidity with `solc --bin -` from PATH; `Ok(None)` when there is no `solc`.
pub fn compile_solidity(source: &str) -> Result<Option<Vec<u8>>, ProverError> {
    use std::io::Write;
    let child = std::process::Command::new("solc")
        .args(["--bin", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ProverError::Evm(format!("cannot run solc: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(source.as_bytes())
            .map_err(|e| ProverError::Evm(format!("writing to solc: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| ProverError::Evm(format!("solc: {e}")))?;
    if !output.status.success() {
        return Err(ProverError::Evm(format!(
            "solc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let binary = stdout.split_ascii_whitespace().last().unwrap_or_default();
    hex::decode(binary)
        .map(Some)
        .map_err(|_| ProverError::Evm(format!("solc printed no bytecode: {}", stdout.trim())))
}

/// Deploys `bytecode` in an in-memory EVM (revm, mainnet rules: EIP-170 and EIP-3860 size
/// limits apply) and calls it with the proof; returns the gas used, or why it reverted.
pub fn evm_verify(bytecode: &[u8], envelope: &ProofEnvelope) -> Result<u64, String> {
    let calldata = evm_calldata(envelope).map_err(|e| e.to_string())?;
    deploy_and_call(bytecode.to_vec(), calldata)
}

/// The calldata a transaction to the Solidity verifier carries for this proof: the public
/// inputs as 32-byte words, then the proof bytes.
pub fn evm_calldata(envelope: &ProofEnvelope) -> Result<Vec<u8>, ProverError> {
    let instances = envelope.instance_values()?;
    let proof = envelope.proof_bytes()?;
    Ok(encode_calldata(&instances, &proof))
}

/// The pairing check of a KZG accumulator exposed in public inputs.
pub(crate) fn accumulator_holds(
    params: &halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG<Bn256>,
    limbs: &[Fr],
) -> bool {
    let limbs: Vec<&Fr> = limbs.iter().collect();
    let Ok(accumulator) = <LimbsEncoding<LIMBS, BITS> as AccumulatorEncoding<
        G1Affine,
        NativeLoader,
    >>::from_repr(&limbs) else {
        return false;
    };
    let dk: KzgDecidingKey<Bn256> = (params.get_g()[0], params.g2(), params.s_g2()).into();
    <SHPLONK as AccumulationDecider<G1Affine, NativeLoader>>::decide(&dk, accumulator).is_ok()
}

/// snark-verifier's aggregation circuit over `snarks` (SHPLONK, one verifying key each):
/// what an aggregation and an epoch add their constraints to.
pub(crate) fn verifier_circuit(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    srs: &Srs,
    snarks: Vec<Snark>,
) -> AggregationCircuit {
    AggregationCircuit::new::<SHPLONK>(
        stage,
        config,
        srs.params(),
        snarks,
        VerifierUniversality::None,
    )
}

/// Lays out the aggregation of `snarks` plus the rollup constraints; returns the builder
/// (parameters not yet calculated in keygen) and the public inputs.
fn build(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    srs: &Srs,
    snarks: Vec<Snark>,
    children: &[ProofCircuit],
) -> AggregationCircuit {
    let mut agg = verifier_circuit(stage, config, srs, snarks);
    let previous = agg.previous_instances().clone();
    let range = agg.builder.range_chip();
    let ctx = agg.builder.main(0);
    // Continuity: each input starts where the previous one ended.
    for (i, pair) in previous.windows(2).enumerate() {
        let ended = pair[0][children[i].chain_layout().new_root];
        let started = pair[1][children[i + 1].chain_layout().old_root];
        ctx.constrain_equal(&ended, &started);
    }
    let commitments: Vec<_> = previous
        .iter()
        .zip(children)
        .map(|(instances, child)| instances[child.chain_layout().commitment])
        .collect();
    let epoch = poseidon::hash_gadget(ctx, range.gate(), &commitments);
    let first_old = previous[0][children[0].chain_layout().old_root];
    let last = previous.len() - 1;
    let last_new = previous[last][children[last].chain_layout().new_root];
    let mut exposed = vec![first_old, last_new, epoch];
    // A bridged chain's stretch: one chain, one global exit root, the local exit tree chained
    // like the state, the totals added up (the same nine public inputs as one batch's).
    let fields: Option<Vec<ChainFields>> =
        children.iter().map(|c| c.chain_layout().chain).collect();
    if let Some(fields) = fields {
        let at = |i: usize, pick: fn(&ChainFields) -> usize| previous[i][pick(&fields[i])];
        for i in 1..previous.len() {
            ctx.constrain_equal(&at(0, |f| f.chain_id), &at(i, |f| f.chain_id));
            ctx.constrain_equal(
                &at(0, |f| f.global_exit_root),
                &at(i, |f| f.global_exit_root),
            );
            ctx.constrain_equal(&at(i - 1, |f| f.new_exit_root), &at(i, |f| f.old_exit_root));
        }
        let exited: Vec<_> = (0..previous.len())
            .map(|i| at(i, |f| f.exited_total))
            .collect();
        let claimed: Vec<_> = (0..previous.len())
            .map(|i| at(i, |f| f.claimed_total))
            .collect();
        let exited = range.gate().sum(ctx, exited);
        let claimed = range.gate().sum(ctx, claimed);
        exposed.extend([
            at(0, |f| f.chain_id),
            at(0, |f| f.old_exit_root),
            at(last, |f| f.new_exit_root),
            at(0, |f| f.global_exit_root),
            exited,
            claimed,
        ]);
    }
    agg.builder.assigned_instances[0].extend(exposed);
    agg
}

/// Where an aggregate of `children` keeps its chain's fields: after the accumulator and the
/// state roots and commitment, in a batch's order, when its children are bridged chains.
fn aggregate_layout(children: &[ProofCircuit]) -> ChainLayout {
    let base = ACCUMULATOR_LEN;
    ChainLayout {
        old_root: base,
        new_root: base + 1,
        commitment: base + 2,
        chain: children
            .iter()
            .all(|c| c.chain_layout().chain.is_some())
            .then_some(ChainFields {
                chain_id: base + 3,
                old_exit_root: base + 4,
                new_exit_root: base + 5,
                global_exit_root: base + 6,
                exited_total: base + 7,
                claimed_total: base + 8,
            }),
    }
}

/// Dummy proofs of the right shape for `children`, from their verifying keys: what keygen of
/// an aggregation or epoch lays out.
pub(crate) fn dummy_snarks(
    prover: &Prover,
    children: &[ProofCircuit],
    source: KeySource,
) -> Result<Vec<Snark>, ProverError> {
    let mut snarks = Vec::with_capacity(children.len());
    for child in children {
        let (child_srs, child_keys) = prover.keys_for(child, source, &|_| {})?;
        snarks.push(gen_dummy_snark_from_vk::<SHPLONK>(
            child_srs.params(),
            child_keys.vk(),
            vec![child.num_instances()],
            child.accumulator_indices(),
        ));
    }
    Ok(snarks)
}

/// The configuration keygen of a `k`-row circuit starts from; halo2-base's auto-configuration
/// fills in the columns.
pub(crate) fn keygen_config(k: u32) -> AggregationConfigParams {
    AggregationConfigParams {
        degree: k,
        lookup_bits: k as usize - 1,
        ..Default::default()
    }
}

/// The aggregation of `children` laid out for keygen (dummy inner proofs of the right shape,
/// from the children's verifying keys), parameters calculated.
fn keygen_layout(
    prover: &Prover,
    srs: &Srs,
    children: &[ProofCircuit],
    source: KeySource,
) -> Result<halo2_base::gates::circuit::builder::BaseCircuitBuilder<Fr>, ProverError> {
    let snarks = dummy_snarks(prover, children, source)?;
    let config = keygen_config(AGGREGATION_K);
    let mut agg = build(CircuitBuilderStage::Keygen, config, srs, snarks, children);
    agg.builder.calculate_params(Some(BLINDING_ROWS));
    Ok(agg.builder)
}

impl Prover {
    /// The SRS and keys of any proof circuit, aggregations included, from memory or disk, or
    /// generated when `source` allows (an aggregation's children too).
    pub fn keys_for(
        &self,
        circuit: &ProofCircuit,
        source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<(Arc<Srs>, Arc<CircuitKeys>), ProverError> {
        match circuit {
            ProofCircuit::App(c) => {
                let keys = self.keys(c, source, progress)?;
                Ok((self.srs_for(c)?, keys))
            }
            ProofCircuit::Aggregate(children) | ProofCircuit::Epoch(children) => {
                progress(Stage::Srs);
                let srs = self.srs.load(circuit.k())?;
                progress(Stage::Keys);
                let keys = self.keys.get_or_generate(
                    &circuit.name(),
                    &srs,
                    source,
                    &|| progress(Stage::Keygen),
                    &|| match circuit {
                        ProofCircuit::Epoch(_) => {
                            crate::epoch::keygen_layout(self, &srs, children, source)
                        }
                        _ => keygen_layout(self, &srs, children, source),
                    },
                )?;
                Ok((srs, keys))
            }
        }
    }

    /// Aggregates proofs (at least 2, poseidon transcript, consecutive batches of one rollup)
    /// into one. Each input is verified natively first, with keys this appliance has for
    /// aggregation inputs (see [`Prover::aggregate_with`]); `final_proof` selects the Keccak
    /// transcript that the Solidity verifier checks. The result is verified (outer proof and
    /// accumulator) before it is returned.
    pub fn aggregate(
        &self,
        inputs: &[ProofEnvelope],
        final_proof: bool,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        self.aggregate_with(inputs, final_proof, KeySource::Existing, progress)
    }

    /// [`Prover::aggregate`], with `inputs_source` saying whether the keys of inputs that are
    /// themselves aggregations may be generated (catalog circuits' keys always may; the
    /// aggregation's own keys are generated on first use).
    pub fn aggregate_with(
        &self,
        inputs: &[ProofEnvelope],
        final_proof: bool,
        inputs_source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        progress(Stage::Witness);
        if inputs.len() < 2 {
            return Err(ProverError::Aggregation(format!(
                "aggregation needs at least 2 proofs, got {}",
                inputs.len()
            )));
        }
        let (children, values) = self.verified_inputs(inputs, inputs_source)?;
        if let Err(e) = ProofCircuit::parse(&ProofCircuit::Aggregate(children.clone()).name()) {
            return Err(ProverError::Aggregation(e.to_string()));
        }
        for i in 1..inputs.len() {
            if let (Some(a), Some(b)) = (
                children[i - 1].chain_layout().chain,
                children[i].chain_layout().chain,
            ) {
                let hex = proofmill_circuits::field::to_hex;
                let (prev, this) = (&values[i - 1], &values[i]);
                if prev[a.chain_id] != this[b.chain_id] {
                    return Err(ProverError::Aggregation(format!(
                        "inputs[{i}] is a batch of chain {} but inputs[{}] of chain {}: an aggregate covers one chain",
                        hex(&this[b.chain_id]),
                        i - 1,
                        hex(&prev[a.chain_id])
                    )));
                }
                if prev[a.new_exit_root] != this[b.old_exit_root] {
                    return Err(ProverError::Aggregation(format!(
                        "inputs[{i}] starts at local exit root {} but inputs[{}] ends at {}: the proofs are out of order or there is a gap",
                        hex(&this[b.old_exit_root]),
                        i - 1,
                        hex(&prev[a.new_exit_root])
                    )));
                }
                if values[0][children[0]
                    .chain_layout()
                    .chain
                    .map_or(0, |f| f.global_exit_root)]
                    != this[b.global_exit_root]
                {
                    return Err(ProverError::Aggregation(format!(
                        "inputs[{i}] was proven against global exit root {} but inputs[0] against another: one aggregate covers one epoch's global exit root",
                        hex(&this[b.global_exit_root])
                    )));
                }
            }
            let ended = values[i - 1][children[i - 1].chain_layout().new_root];
            let started = values[i][children[i].chain_layout().old_root];
            if ended != started {
                return Err(ProverError::Aggregation(format!(
                    "inputs[{i}] starts at root {} but inputs[{}] ends at root {}: the proofs are out of order or there is a gap",
                    proofmill_circuits::field::to_hex(&started),
                    i - 1,
                    proofmill_circuits::field::to_hex(&ended),
                )));
            }
        }

        let circuit = ProofCircuit::Aggregate(children.clone());
        // The inputs verified, so their keys are here now: the aggregation's own keys may be
        // made from them.
        let (srs, keys) = self.keys_for(&circuit, KeySource::Generate, progress)?;
        let snarks = self.snarks(inputs, &children, values)?;

        progress(Stage::Proving);
        let config = AggregationConfigParams::try_from(&keys.config_params)
            .map_err(|e| ProverError::Internal(format!("aggregation key parameters: {e}")))?;
        let agg = build(CircuitBuilderStage::Prover, config, &srs, snarks, &children)
            .use_break_points(keys.break_points.clone());
        self.prove_recursive(&circuit, &srs, &keys, agg, final_proof, progress)
    }

    /// Verifies every input of an aggregation or epoch natively (poseidon transcript only),
    /// naming the failing one; returns their circuits and public inputs.
    pub(crate) fn verified_inputs(
        &self,
        inputs: &[ProofEnvelope],
        inputs_source: KeySource,
    ) -> Result<(Vec<ProofCircuit>, Vec<Vec<Fr>>), ProverError> {
        let mut children = Vec::with_capacity(inputs.len());
        let mut values = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            if input.transcript != Transcript::Poseidon {
                return Err(ProverError::Aggregation(format!(
                    "inputs[{i}] uses the {} transcript; only poseidon proofs can be aggregated (a final proof cannot be aggregated again)",
                    input.transcript
                )));
            }
            let child = ProofCircuit::parse(&input.circuit)
                .map_err(|e| ProverError::Aggregation(format!("inputs[{i}]: {e}")))?;
            let verdict = self
                .verify_with(input, child.input_source(inputs_source), &|_| {})
                .map_err(|e| match e {
                    // Keep the kind: the caller is told how to get the keys.
                    ProverError::KeysMissing { circuit, reason } => ProverError::KeysMissing {
                        circuit,
                        reason: format!("inputs[{i}]: {reason}"),
                    },
                    e => ProverError::Aggregation(format!("inputs[{i}] ({}): {e}", input.circuit)),
                })?;
            if !verdict.valid {
                return Err(ProverError::Aggregation(format!(
                    "inputs[{i}] ({}) does not verify: {}",
                    input.circuit,
                    verdict.reason.unwrap_or_default()
                )));
            }
            values.push(input.instance_values()?.remove(0));
            children.push(child);
        }
        Ok((children, values))
    }

    /// The inputs as snark-verifier's `Snark`s, with their verifying keys compiled.
    pub(crate) fn snarks(
        &self,
        inputs: &[ProofEnvelope],
        children: &[ProofCircuit],
        values: Vec<Vec<Fr>>,
    ) -> Result<Vec<Snark>, ProverError> {
        let mut snarks = Vec::with_capacity(inputs.len());
        for ((input, child), instances) in inputs.iter().zip(children).zip(values) {
            let (child_srs, child_keys) = self.keys_for(child, KeySource::Existing, &|_| {})?;
            let protocol = compile(
                child_srs.params(),
                child_keys.vk(),
                Config::kzg()
                    .with_num_instance(vec![child.num_instances()])
                    .with_accumulator_indices(child.accumulator_indices()),
            );
            snarks.push(Snark::new(protocol, vec![instances], input.proof_bytes()?));
        }
        Ok(snarks)
    }

    /// Proves a laid-out aggregation or epoch circuit, checks the proof (stock verifier and
    /// the accumulator's pairing) and wraps it in an envelope.
    pub(crate) fn prove_recursive(
        &self,
        circuit: &ProofCircuit,
        srs: &Srs,
        keys: &CircuitKeys,
        agg: AggregationCircuit,
        final_proof: bool,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        let instances = agg.instances();
        let transcript = if final_proof {
            Transcript::Keccak
        } else {
            Transcript::Poseidon
        };
        let proof = create(srs.params(), keys, agg.builder, &instances, transcript)?;
        let envelope = ProofEnvelope {
            format: envelope::FORMAT.to_owned(),
            circuit: circuit.name(),
            k: circuit.k(),
            vk_hash: keys.vk_hash.clone(),
            transcript,
            instances: ProofEnvelope::encode_instances(&instances),
            proof: format!("0x{}", hex::encode(&proof)),
            srs: Some(crate::SrsLabel::of(srs)),
        };
        progress(Stage::Verifying);
        if !(check(srs.params(), keys, &instances, &proof, transcript)
            && accumulator_holds(srs.params(), &instances[0][..ACCUMULATOR_LEN]))
        {
            return Err(ProverError::SelfCheckFailed {
                circuit: circuit.name(),
            });
        }
        Ok(envelope)
    }

    /// The Solidity verifier of an aggregation circuit (keccak transcript proofs), with
    /// deployment bytecode when `solc` is on PATH; keys from `source`.
    pub fn evm_verifier(
        &self,
        circuit: &ProofCircuit,
        source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<EvmVerifier, ProverError> {
        if !circuit.is_recursive() {
            return Err(ProverError::Aggregation(format!(
                "{}: the Ethereum verifier is generated for aggregation and epoch circuits only",
                circuit.name()
            )));
        }
        let (srs, keys) = self.keys_for(circuit, source, progress)?;
        let solidity = snark_verifier_sdk::evm::gen_evm_verifier_sol_code::<
            AggregationCircuit,
            SHPLONK,
        >(srs.params(), keys.vk(), vec![circuit.num_instances()]);
        let bytecode = compile_solidity(&solidity)?;
        Ok(EvmVerifier { solidity, bytecode })
    }

    /// The deployment bytecode of an aggregation's or epoch's Solidity verifier, compiled
    /// once per circuit and SRS and kept next to its keys (`Verifier.bin`); `Ok(None)` when
    /// it was never compiled here and there is no `solc` on PATH. Keys from `source`.
    pub fn verifier_bytecode(
        &self,
        circuit: &ProofCircuit,
        source: KeySource,
    ) -> Result<Option<Vec<u8>>, ProverError> {
        let (srs, _) = self.keys_for(circuit, source, &|_| {})?;
        let dir = self.keys.key_dir(&circuit.name(), srs.srs_id());
        let path = dir.join("Verifier.bin");
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(bytes) = hex::decode(text.trim()) {
                return Ok(Some(bytes));
            }
        }
        let Some(bytecode) = self.evm_verifier(circuit, source, &|_| {})?.bytecode else {
            return Ok(None);
        };
        let io = |e: std::io::Error| ProverError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let partial = dir.join(format!("Verifier.bin.{}.partial", std::process::id()));
        std::fs::write(&partial, hex::encode(&bytecode)).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
        Ok(Some(bytecode))
    }

    /// The gas the generated Solidity verifier spends accepting this final (keccak) proof
    /// in an EVM (revm, mainnet rules, the transaction's intrinsic and calldata gas
    /// included), measured now; `Ok(None)` when the verifier cannot be compiled here (no
    /// `solc`). A verifier that rejects a proof the stock verifier accepted is an error.
    pub fn evm_gas(&self, envelope: &ProofEnvelope) -> Result<Option<u64>, ProverError> {
        let circuit = ProofCircuit::parse(&envelope.circuit)?;
        if envelope.transcript != Transcript::Keccak {
            return Err(ProverError::Evm(format!(
                "a {} transcript proof is not checked on Ethereum; only final (keccak) proofs are",
                envelope.transcript
            )));
        }
        let Some(bytecode) = self.verifier_bytecode(&circuit, KeySource::Existing)? else {
            return Ok(None);
        };
        evm_verify(&bytecode, envelope).map(Some).map_err(|reason| {
            ProverError::Evm(format!(
                "the generated verifier rejects the proof: {reason}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = "aggregate(aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8),aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8))";
        let parsed = ProofCircuit::parse(name).unwrap();
        assert_eq!(parsed.name(), name);
        assert_eq!(parsed.num_instances(), ACCUMULATOR_LEN + 3);
        assert!(matches!(
            ProofCircuit::parse("aggregate(transfer_batch/d16-b8)"),
            Err(CircuitNameError::TooFewInputs { got: 1, .. })
        ));
        assert!(matches!(
            ProofCircuit::parse("aggregate(transfer_batch/d16-b8,nope)"),
            Err(CircuitNameError::Unknown(_))
        ));
        // Spaces between parts are allowed; the canonical name has none.
        let spaced =
            ProofCircuit::parse(" aggregate( transfer_batch/d16-b8 , transfer_batch/d16-b8 ) ")
                .unwrap();
        assert_eq!(
            spaced.name(),
            "aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)"
        );
        for bad in [
            "",
            "aggregate(",
            "aggregate(transfer_batch/d16-b8,",
            "aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8",
            "aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8))",
            "aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)x",
            "aggregate(,transfer_batch/d16-b8)",
            "transfer_batch/d16-b8(",
        ] {
            assert!(
                matches!(
                    ProofCircuit::parse(bad),
                    Err(CircuitNameError::Syntax { .. })
                ),
                "{bad:?}: {:?}",
                ProofCircuit::parse(bad)
            );
        }
    }

    /// The name that overflowed the server's stack: 60,000 nested `aggregate(` in 2 MB. It is
    /// refused by its length, and the same nesting under the length limit by its depth.
    #[test]
    fn deep_and_long_names_are_refused_quickly_without_recursion() {
        let deep = "aggregate(".repeat(60_000);
        assert_eq!(
            ProofCircuit::parse(&deep),
            Err(CircuitNameError::TooLong {
                len: deep.len(),
                limit: MAX_CIRCUIT_NAME_BYTES
            })
        );
        let nested = |levels: usize| {
            let leaf = "transfer_batch/d16-b8";
            let mut name = leaf.to_owned();
            for _ in 0..levels {
                name = format!("aggregate({name},{leaf})");
            }
            name
        };
        assert!(ProofCircuit::parse(&nested(MAX_AGGREGATION_DEPTH)).is_ok());
        let err = ProofCircuit::parse(&nested(MAX_AGGREGATION_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(err, CircuitNameError::TooDeep { limit, .. } if limit == MAX_AGGREGATION_DEPTH)
        );
        assert!(err.to_string().contains("limit is 8 levels"), "{err}");
        let unclosed = "aggregate(".repeat(MAX_CIRCUIT_NAME_BYTES / 10);
        assert!(matches!(
            ProofCircuit::parse(&unclosed),
            Err(CircuitNameError::TooDeep { .. })
        ));
        // A long flat list is parsed in one pass: linear, not quadratic, in the length.
        let flat = format!(
            "aggregate({})",
            vec!["transfer_batch/d16-b8"; 700].join(",")
        );
        assert!(flat.len() <= MAX_CIRCUIT_NAME_BYTES);
        match ProofCircuit::parse(&flat) {
            Ok(ProofCircuit::Aggregate(children)) => assert_eq!(children.len(), 700),
            other => panic!("{other:?}"),
        }
    }
}
