//! Epoch settlement: one proof for every chain's stretch of an epoch, settled on Ethereum.
//!
//! An epoch circuit, named `epoch(C_1,…,C_n)` after the circuits of its inputs (each a
//! bridged chain's batch, `rollup/…`, or an aggregate of consecutive ones), verifies one proof
//! per chain like an aggregation does and adds, in the circuit:
//!
//! - chain ids strictly increase (so no chain appears twice) and are below 2^8;
//! - every input's claims were proven against the previous epoch's global exit root;
//! - the global exit tree is updated chain by chain: each chain's leaf is shown to hold its
//!   settled local exit root under the running root (starting at the previous global exit
//!   root) and is replaced by its new local exit root; the last root is the new global exit
//!   root, so chains outside the epoch keep their leaves;
//! - pessimistic accounting: per chain, `new balance = old balance + claimed − exited` stays
//!   in `[0, 2^128)`, so no chain, even one with a broken prover, takes out more than was put
//!   into it.
//!
//! Public inputs, after the 12 accumulator limbs: the epoch number, the previous and new
//! global exit roots, and per chain (in increasing chain id) its id, old and new state root,
//! new local exit root, old and new bridge balance. The old local exit root is committed in
//! the old state root, so it is not repeated. The settlement contract
//! ([`settlement_solidity`]) binds the "before" values to what it stores.

use std::{collections::BTreeMap, path::Path};

use halo2_base::{
    gates::{circuit::CircuitBuilderStage, GateInstructions, RangeInstructions},
    halo2_proofs::halo2curves::{
        bn256::Fr,
        ff::{Field, PrimeField},
    },
};
use proofmill_circuits::{
    field,
    rollup::{merkle_root_gadget, GlobalExitTree, GLOBAL_EXIT_DEPTH},
    BLINDING_ROWS,
};
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::{
    halo2::aggregation::{AggregationCircuit, AggregationConfigParams},
    Snark,
};

use crate::{
    aggregate::{
        dummy_snarks, keygen_config, verifier_circuit, ProofCircuit, ACCUMULATOR_LEN, AGGREGATION_K,
    },
    KeySource, ProofEnvelope, Prover, ProverError, Srs, Stage,
};

/// Public input: the epoch number (1 for the first epoch after genesis).
pub const EPOCH: usize = ACCUMULATOR_LEN;
/// Public input: the global exit root the epoch's claims were proven against.
pub const PREVIOUS_GLOBAL_EXIT_ROOT: usize = ACCUMULATOR_LEN + 1;
/// Public input: the global exit root after the epoch.
pub const NEW_GLOBAL_EXIT_ROOT: usize = ACCUMULATOR_LEN + 2;
/// Public input: where the first chain's values start.
pub const FIRST_CHAIN: usize = ACCUMULATOR_LEN + 3;
/// Public inputs per chain.
pub const CHAIN_WORDS: usize = 6;
/// Offset in a chain's values: its id.
pub const CHAIN_ID: usize = 0;
/// Offset in a chain's values: the state root it was settled at.
pub const OLD_STATE_ROOT: usize = 1;
/// Offset in a chain's values: its state root after the epoch.
pub const NEW_STATE_ROOT: usize = 2;
/// Offset in a chain's values: its local exit root after the epoch.
pub const NEW_EXIT_ROOT: usize = 3;
/// Offset in a chain's values: its bridge balance before the epoch.
pub const OLD_BALANCE: usize = 4;
/// Offset in a chain's values: its bridge balance after the epoch.
pub const NEW_BALANCE: usize = 5;
/// Bridge balances are below 2^128.
pub const BALANCE_BITS: usize = 128;
/// The most chains there are (the global exit tree has 2^8 leaves).
pub const MAX_CHAINS: usize = 1 << GLOBAL_EXIT_DEPTH;
/// The most chains one epoch proof settles (see [`epoch_k`]).
pub const MAX_EPOCH_CHAINS: usize = 16;

/// log2 of the rows of an epoch over `chains` chains: 21 for up to 2, then one more per
/// doubling (22 for 3–4, 23 for 5–8, 24 for 9–16). Measured: at k = 21 two chains need 5
/// advice columns and three need 8, whose generated verifier (26,931 bytes of runtime code)
/// is over EIP-170's 24,576-byte limit; each chain adds about 3 columns at k = 21, and every
/// column about 1.7 KB of verifier code, so the rows double to keep the columns at about 6
/// or fewer and the verifier deployable (three chains at k = 22: 21,838 bytes).
pub const fn epoch_k(chains: usize) -> u32 {
    let mut k = AGGREGATION_K;
    let mut fits = 2;
    while fits < chains {
        fits *= 2;
        k += 1;
    }
    k
}

/// The number of public inputs of an epoch over `chains` chains.
pub const fn num_instances(chains: usize) -> usize {
    FIRST_CHAIN + CHAIN_WORDS * chains
}

mod hex_fr {
    use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&proofmill_circuits::field::to_hex(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let text = String::deserialize(d)?;
        proofmill_circuits::field::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

mod decimal_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Int(u64),
            Text(String),
        }
        match Number::deserialize(d)? {
            Number::Int(n) => Ok(u128::from(n)),
            Number::Text(t) => t.parse().map_err(|_| {
                serde::de::Error::custom(format!("{t:?} is not a decimal integer below 2^128"))
            }),
        }
    }
}

/// What L1 holds for one chain between epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettledChain {
    /// The chain's settled state root.
    #[serde(with = "hex_fr")]
    pub state_root: Fr,
    /// The chain's settled local exit root (its leaf of the global exit tree).
    #[serde(with = "hex_fr")]
    pub exit_root: Fr,
    /// Value bridged into the chain (genesis deposits and claims) minus value exited from
    /// it; a decimal string in JSON.
    #[serde(with = "decimal_u128")]
    pub balance: u128,
}

/// What L1 holds between epochs: the last settled epoch, its global exit root and every
/// registered chain's state. The settlement contract's storage, as JSON; `proofmill epoch`
/// reads one and writes the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettledState {
    /// The last settled epoch (0 at genesis).
    pub epoch: u64,
    /// The global exit root over the chains' exit roots (checked on load).
    #[serde(with = "hex_fr")]
    pub global_exit_root: Fr,
    /// Registered chains by id.
    pub chains: BTreeMap<u64, SettledChain>,
}

/// One chain's public values in an epoch proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChainValues {
    /// The chain id.
    pub chain_id: u64,
    /// State root before the epoch.
    #[serde(with = "hex_fr")]
    pub old_state_root: Fr,
    /// State root after it.
    #[serde(with = "hex_fr")]
    pub new_state_root: Fr,
    /// Local exit root after it.
    #[serde(with = "hex_fr")]
    pub new_exit_root: Fr,
    /// Bridge balance before it.
    #[serde(with = "decimal_u128")]
    pub old_balance: u128,
    /// Bridge balance after it.
    #[serde(with = "decimal_u128")]
    pub new_balance: u128,
}

/// The public values of an epoch proof, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpochValues {
    /// The epoch number.
    pub epoch: u64,
    /// The global exit root its claims were proven against.
    #[serde(with = "hex_fr")]
    pub previous_global_exit_root: Fr,
    /// The global exit root after it.
    #[serde(with = "hex_fr")]
    pub new_global_exit_root: Fr,
    /// Per chain, in increasing chain id.
    pub chains: Vec<ChainValues>,
}

fn small(value: &Fr, bits: u32) -> Option<u128> {
    let repr = value.to_repr();
    let bytes = repr.as_ref();
    if bytes[16..].iter().any(|b| *b != 0) {
        return None;
    }
    let v = u128::from_le_bytes(bytes[..16].try_into().ok()?);
    (bits >= 128 || v >> bits == 0).then_some(v)
}

fn u64_of(value: &Fr) -> Option<u64> {
    small(value, 64).and_then(|v| u64::try_from(v).ok())
}

impl EpochValues {
    /// Decodes the public values of an epoch proof.
    pub fn from_envelope(envelope: &ProofEnvelope) -> Result<Self, ProverError> {
        let circuit = ProofCircuit::parse(&envelope.circuit)?;
        let ProofCircuit::Epoch(children) = circuit else {
            return Err(ProverError::Epoch(format!(
                "{} is not an epoch proof",
                envelope.circuit
            )));
        };
        let values = envelope.instance_values()?;
        let values = values.first().map(Vec::as_slice).unwrap_or_default();
        if values.len() != num_instances(children.len()) {
            return Err(ProverError::Epoch(format!(
                "an epoch of {} chains has {} public inputs; the envelope has {}",
                children.len(),
                num_instances(children.len()),
                values.len()
            )));
        }
        let bad = |what: &str| ProverError::Epoch(format!("public input {what} is out of range"));
        let chains = (0..children.len())
            .map(|j| {
                let at = |offset: usize| &values[FIRST_CHAIN + CHAIN_WORDS * j + offset];
                Ok(ChainValues {
                    chain_id: u64_of(at(CHAIN_ID)).ok_or_else(|| bad("chain_id"))?,
                    old_state_root: *at(OLD_STATE_ROOT),
                    new_state_root: *at(NEW_STATE_ROOT),
                    new_exit_root: *at(NEW_EXIT_ROOT),
                    old_balance: small(at(OLD_BALANCE), 128).ok_or_else(|| bad("old_balance"))?,
                    new_balance: small(at(NEW_BALANCE), 128).ok_or_else(|| bad("new_balance"))?,
                })
            })
            .collect::<Result<_, ProverError>>()?;
        Ok(Self {
            epoch: u64_of(&values[EPOCH]).ok_or_else(|| bad("epoch"))?,
            previous_global_exit_root: values[PREVIOUS_GLOBAL_EXIT_ROOT],
            new_global_exit_root: values[NEW_GLOBAL_EXIT_ROOT],
            chains,
        })
    }
}

impl SettledState {
    /// Genesis (epoch 0) of `chains`: `(chain id, state root, exit root, balance)`.
    pub fn genesis(chains: impl IntoIterator<Item = (u64, Fr, Fr, u128)>) -> Self {
        let chains: BTreeMap<u64, SettledChain> = chains
            .into_iter()
            .map(|(id, state_root, exit_root, balance)| {
                (
                    id,
                    SettledChain {
                        state_root,
                        exit_root,
                        balance,
                    },
                )
            })
            .collect();
        let mut state = Self {
            epoch: 0,
            global_exit_root: Fr::ZERO,
            chains,
        };
        state.global_exit_root = state.tree().root();
        state
    }

    /// Reads a settled state from JSON, naming what is wrong.
    pub fn from_json(text: &str) -> Result<Self, ProverError> {
        let state: Self =
            proofmill_circuits::json::from_json(text).map_err(|(path, message)| {
                ProverError::Epoch(format!("settled state: at {path}: {message}"))
            })?;
        state.validate()?;
        Ok(state)
    }

    /// Reads a settled state file.
    pub fn read(path: &Path) -> Result<Self, ProverError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProverError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_json(&text).map_err(|e| match e {
            ProverError::Epoch(m) => ProverError::Epoch(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// There is a next epoch, chain ids fit the global exit tree and the global exit root is
    /// the tree's.
    pub fn validate(&self) -> Result<(), ProverError> {
        if self.epoch == u64::MAX {
            return Err(ProverError::Epoch(format!(
                "settled state.epoch: {} is the last epoch number; there is no next epoch to settle",
                self.epoch
            )));
        }
        if let Some(id) = self.chains.keys().find(|id| **id >= MAX_CHAINS as u64) {
            return Err(ProverError::Epoch(format!(
                "settled state: chain id {id} is out of range (chain ids are 0 to {})",
                MAX_CHAINS - 1
            )));
        }
        let root = self.tree().root();
        if root != self.global_exit_root {
            return Err(ProverError::Epoch(format!(
                "settled state: global_exit_root is {} but the chains' exit roots give {}",
                field::to_hex(&self.global_exit_root),
                field::to_hex(&root)
            )));
        }
        Ok(())
    }

    fn tree(&self) -> GlobalExitTree {
        GlobalExitTree::from_roots(self.chains.iter().map(|(id, c)| (*id, c.exit_root)))
    }

    /// The state after settling `envelope`, an epoch proof from this state: the same checks
    /// the settlement contract makes.
    pub fn after(&self, envelope: &ProofEnvelope) -> Result<Self, ProverError> {
        self.validate()?;
        let values = EpochValues::from_envelope(envelope)?;
        if values.epoch != self.epoch + 1 {
            return Err(ProverError::Epoch(format!(
                "the proof settles epoch {} but the next epoch is {}",
                values.epoch,
                self.epoch + 1
            )));
        }
        if values.previous_global_exit_root != self.global_exit_root {
            return Err(ProverError::Epoch(format!(
                "the proof starts at global exit root {}, the settled one is {}",
                field::to_hex(&values.previous_global_exit_root),
                field::to_hex(&self.global_exit_root)
            )));
        }
        let mut next = self.clone();
        next.epoch = values.epoch;
        next.global_exit_root = values.new_global_exit_root;
        for c in &values.chains {
            let chain = next.chains.get_mut(&c.chain_id).ok_or_else(|| {
                ProverError::Epoch(format!(
                    "the proof settles unregistered chain {}",
                    c.chain_id
                ))
            })?;
            if chain.state_root != c.old_state_root || chain.balance != c.old_balance {
                return Err(ProverError::Epoch(format!(
                    "the proof starts chain {} elsewhere than its settled state",
                    c.chain_id
                )));
            }
            *chain = SettledChain {
                state_root: c.new_state_root,
                exit_root: c.new_exit_root,
                balance: c.new_balance,
            };
        }
        Ok(next)
    }
}

/// The private part of an epoch's witness: what is not in the inputs' public values.
#[derive(Debug, Clone)]
pub(crate) struct EpochWitness {
    epoch: u64,
    previous_global_exit_root: Fr,
    /// Per chain (circuit order): its settled bridge balance.
    balances: Vec<u128>,
    /// Per chain: its leaf's siblings in the global exit tree after the earlier chains'
    /// updates, leaf level first.
    paths: Vec<Vec<Fr>>,
}

impl EpochWitness {
    fn padding(chains: usize) -> Self {
        Self {
            epoch: 0,
            previous_global_exit_root: Fr::ZERO,
            balances: vec![0; chains],
            paths: vec![vec![Fr::ZERO; GLOBAL_EXIT_DEPTH]; chains],
        }
    }
}

/// Lays out the epoch circuit over `snarks` (one per chain, in increasing chain id).
fn build(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    srs: &Srs,
    snarks: Vec<Snark>,
    children: &[ProofCircuit],
    witness: &EpochWitness,
) -> AggregationCircuit {
    let mut agg = verifier_circuit(stage, config, srs, snarks);
    let previous = agg.previous_instances().clone();
    let range = agg.builder.range_chip();
    let gate = range.gate();
    let ctx = agg.builder.main(0);
    let epoch = ctx.load_witness(Fr::from(witness.epoch));
    let previous_root = ctx.load_witness(witness.previous_global_exit_root);
    let mut root = previous_root;
    let mut chains = Vec::with_capacity(CHAIN_WORDS * children.len());
    let mut last_id = None;
    for (i, child) in children.iter().enumerate() {
        let layout = child.chain_layout();
        let Some(fields) = layout.chain else {
            unreachable!("the name parser admits only bridged chains into an epoch")
        };
        let at = |position: usize| previous[i][position];
        let id = at(fields.chain_id);
        // Below 2^8, and the path bits of its global exit tree leaf.
        let bits = gate.num_to_bits(ctx, id, GLOBAL_EXIT_DEPTH);
        if let Some(last) = last_id {
            range.check_less_than(ctx, last, id, GLOBAL_EXIT_DEPTH);
        }
        last_id = Some(id);
        // Claims against the settled global exit root only.
        ctx.constrain_equal(&at(fields.global_exit_root), &previous_root);
        // The chain's leaf holds its old exit root under the running root; replace it.
        let path: Vec<_> = witness.paths[i]
            .iter()
            .map(|s| ctx.load_witness(*s))
            .collect();
        let before = merkle_root_gadget(ctx, gate, at(fields.old_exit_root), &bits, &path);
        ctx.constrain_equal(&before, &root);
        root = merkle_root_gadget(ctx, gate, at(fields.new_exit_root), &bits, &path);
        // Pessimistic accounting: the balance never goes below zero.
        let old_balance = ctx.load_witness(Fr::from_u128(witness.balances[i]));
        range.range_check(ctx, old_balance, BALANCE_BITS);
        let credited = gate.add(ctx, old_balance, at(fields.claimed_total));
        let new_balance = gate.sub(ctx, credited, at(fields.exited_total));
        range.range_check(ctx, new_balance, BALANCE_BITS);
        chains.extend([
            id,
            at(layout.old_root),
            at(layout.new_root),
            at(fields.new_exit_root),
            old_balance,
            new_balance,
        ]);
    }
    let exposed = agg.builder.assigned_instances[0].len();
    debug_assert_eq!(exposed, ACCUMULATOR_LEN);
    agg.builder.assigned_instances[0].extend([epoch, previous_root, root]);
    agg.builder.assigned_instances[0].extend(chains);
    agg
}

/// The epoch over `children` laid out for keygen, parameters calculated.
pub(crate) fn keygen_layout(
    prover: &Prover,
    srs: &Srs,
    children: &[ProofCircuit],
    source: KeySource,
) -> Result<halo2_base::gates::circuit::builder::BaseCircuitBuilder<Fr>, ProverError> {
    let snarks = dummy_snarks(prover, children, source)?;
    let mut agg = build(
        CircuitBuilderStage::Keygen,
        keygen_config(epoch_k(children.len())),
        srs,
        snarks,
        children,
        &EpochWitness::padding(children.len()),
    );
    agg.builder.calculate_params(Some(BLINDING_ROWS));
    Ok(agg.builder)
}

impl Prover {
    /// Proves the next epoch after `settled`: one input per chain (a `rollup/…` batch proof
    /// or an aggregate of a chain's consecutive batches, poseidon transcript), in any order.
    /// Each input is verified natively first (keys for aggregate inputs from
    /// `inputs_source`) and refused, named, when it cannot be part of this epoch: a second
    /// stretch of a chain, a chain the settlement does not know, a stretch that does not start
    /// at the chain's settled state, claims against another global exit root, or a chain
    /// spending more than its bridge balance. `final_proof` selects the Keccak transcript the
    /// settlement contract's verifier checks. The result is verified before it is returned.
    pub fn epoch(
        &self,
        inputs: &[ProofEnvelope],
        settled: &SettledState,
        final_proof: bool,
        inputs_source: KeySource,
        progress: &dyn Fn(Stage),
    ) -> Result<ProofEnvelope, ProverError> {
        progress(Stage::Witness);
        settled.validate()?;
        if inputs.is_empty() {
            return Err(ProverError::Epoch(
                "an epoch needs at least one proof".into(),
            ));
        }
        if inputs.len() > MAX_EPOCH_CHAINS {
            return Err(ProverError::Epoch(format!(
                "an epoch settles at most {MAX_EPOCH_CHAINS} chains, got {} proofs",
                inputs.len()
            )));
        }
        let (children, values) =
            self.verified_inputs(inputs, inputs_source)
                .map_err(|e| match e {
                    ProverError::Aggregation(m) => ProverError::Epoch(m),
                    e => e,
                })?;
        let hex = field::to_hex;
        let mut order: Vec<(u64, usize)> = Vec::with_capacity(inputs.len());
        for (i, child) in children.iter().enumerate() {
            let Some(fields) = child.chain_layout().chain else {
                return Err(ProverError::Epoch(format!(
                    "inputs[{i}] is a proof of {}, not of a bridged chain (rollup/… or an aggregate of them)",
                    child.name()
                )));
            };
            let Some(id) = u64_of(&values[i][fields.chain_id]).filter(|id| *id < MAX_CHAINS as u64)
            else {
                return Err(ProverError::Epoch(format!(
                    "inputs[{i}] has chain id {}, out of range (chain ids are 0 to {})",
                    hex(&values[i][fields.chain_id]),
                    MAX_CHAINS - 1
                )));
            };
            if let Some((_, j)) = order.iter().find(|(other, _)| *other == id) {
                return Err(ProverError::Epoch(format!(
                    "inputs[{j}] and inputs[{i}] are both stretches of chain {id}: an epoch takes one proof per chain (aggregate a chain's consecutive batches into one first)"
                )));
            }
            order.push((id, i));
        }
        order.sort_unstable();
        let mut tree = settled.tree();
        let mut witness = EpochWitness {
            epoch: settled.epoch + 1,
            previous_global_exit_root: settled.global_exit_root,
            balances: Vec::with_capacity(order.len()),
            paths: Vec::with_capacity(order.len()),
        };
        for &(id, i) in &order {
            let layout = children[i].chain_layout();
            let Some(fields) = layout.chain else {
                unreachable!("checked above")
            };
            let v = &values[i];
            let chain = settled.chains.get(&id).ok_or_else(|| {
                ProverError::Epoch(format!(
                    "inputs[{i}] is a stretch of chain {id}, which is not registered in the settled state (chains: {})",
                    settled.chains.keys().map(u64::to_string).collect::<Vec<_>>().join(", ")
                ))
            })?;
            if v[layout.old_root] != chain.state_root {
                return Err(ProverError::Epoch(format!(
                    "inputs[{i}] (chain {id}) starts at state root {} but chain {id} was settled at {}: a stretch must start at its chain's last settled state",
                    hex(&v[layout.old_root]),
                    hex(&chain.state_root)
                )));
            }
            if v[fields.old_exit_root] != chain.exit_root {
                return Err(ProverError::Epoch(format!(
                    "inputs[{i}] (chain {id}) starts at local exit root {} but chain {id} was settled at {}",
                    hex(&v[fields.old_exit_root]),
                    hex(&chain.exit_root)
                )));
            }
            if v[fields.global_exit_root] != settled.global_exit_root {
                return Err(ProverError::Epoch(format!(
                    "inputs[{i}] (chain {id}) was proven against global exit root {} but epoch {} settled {}: claims must be proven against the previous epoch's global exit root (prove every batch of the epoch with \"global_exit_root\": \"{}\", also those without claims)",
                    hex(&v[fields.global_exit_root]),
                    settled.epoch,
                    hex(&settled.global_exit_root),
                    hex(&settled.global_exit_root)
                )));
            }
            let claimed = u64_of(&v[fields.claimed_total]).unwrap_or(u64::MAX);
            let exited = u64_of(&v[fields.exited_total]).unwrap_or(u64::MAX);
            let credited = chain.balance.checked_add(u128::from(claimed));
            match credited.and_then(|c| c.checked_sub(u128::from(exited))) {
                Some(_) => {}
                None if credited.is_none() => {
                    return Err(ProverError::Epoch(format!(
                        "inputs[{i}] (chain {id}): bridge balance {} + claimed {claimed} does not fit 128 bits",
                        chain.balance
                    )))
                }
                None => {
                    return Err(ProverError::Epoch(format!(
                        "inputs[{i}] (chain {id}) exits {exited} but the chain's bridge balance is {} and it claimed {claimed}: a chain cannot take out more than was put into it",
                        chain.balance
                    )))
                }
            }
            witness.balances.push(chain.balance);
            witness.paths.push(tree.path(id));
            tree.set(id, v[fields.new_exit_root]);
        }
        let children: Vec<ProofCircuit> = order.iter().map(|&(_, i)| children[i].clone()).collect();
        let inputs: Vec<ProofEnvelope> = order.iter().map(|&(_, i)| inputs[i].clone()).collect();
        let values: Vec<Vec<Fr>> = order.iter().map(|&(_, i)| values[i].clone()).collect();

        let circuit = ProofCircuit::Epoch(children.clone());
        let (srs, keys) = self.keys_for(&circuit, KeySource::Generate, progress)?;
        let snarks = self.snarks(&inputs, &children, values)?;
        progress(Stage::Proving);
        let config = AggregationConfigParams::try_from(&keys.config_params)
            .map_err(|e| ProverError::Internal(format!("epoch key parameters: {e}")))?;
        let agg = build(
            CircuitBuilderStage::Prover,
            config,
            &srs,
            snarks,
            &children,
            &witness,
        )
        .use_break_points(keys.break_points.clone());
        let envelope = self.prove_recursive(&circuit, &srs, &keys, agg, final_proof, progress)?;
        // The circuit computed the new global exit root; the native tree must agree.
        let values = EpochValues::from_envelope(&envelope)?;
        if values.new_global_exit_root != tree.root() {
            return Err(ProverError::Internal(
                "the epoch circuit's global exit root differs from the native tree's".into(),
            ));
        }
        Ok(envelope)
    }
}

/// A consistent multi-chain history for epoch settlement: the genesis settled state, then
/// per epoch one signed batch (a `rollup/…` prove-job input) per chain.
#[derive(Debug, Clone)]
pub struct ExampleEpochs {
    /// What L1 holds at genesis.
    pub genesis: SettledState,
    /// Per epoch: `(chain id, batch input)` in increasing chain id.
    pub epochs: Vec<Vec<(u64, serde_json::Value)>>,
}

/// `epochs` epochs of `chain_ids` (distinct, below 2^8) under `config`, reproducible from
/// `seed`: every chain proves one batch per epoch that fills its transfer slots, exits to the
/// next chain of the list (its exit slots) and claims, from the second epoch on, the exits
/// other chains made to it in the epoch before, against the global exit root that epoch
/// settled. A chain's genesis bridge balance is the value in its genesis accounts.
pub fn example_epochs(
    config: &proofmill_circuits::rollup::RollupConfig,
    chain_ids: &[u64],
    seed: u64,
    epochs: usize,
) -> Result<ExampleEpochs, ProverError> {
    use proofmill_circuits::rollup::MultiChainScenario;
    let mut ids = chain_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != chain_ids.len() || ids.is_empty() {
        return Err(ProverError::Epoch(
            "example epochs need one or more distinct chain ids".into(),
        ));
    }
    if let Some(id) = ids.iter().find(|id| **id >= MAX_CHAINS as u64) {
        return Err(ProverError::Epoch(format!(
            "chain id {id} is out of range (chain ids are 0 to {})",
            MAX_CHAINS - 1
        )));
    }
    let mut scenario = MultiChainScenario::new(config, &ids, seed);
    let genesis = SettledState::genesis(ids.iter().map(|id| {
        let state = scenario.state(*id).expect("a scenario chain");
        (
            *id,
            state.root(),
            state.exit_root(),
            scenario.total_balance(*id).unwrap_or_default(),
        )
    }));
    let mut out = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        let settled = scenario.global_exit_tree();
        let mut batches = Vec::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            let next = ids[(n + 1) % ids.len()];
            let exit_to = if next == *id {
                Vec::new()
            } else {
                vec![next; config.exits]
            };
            let input = scenario
                .epoch_batch(*id, &settled, config.claims, config.transfers, &exit_to)
                .map_err(|e| ProverError::Internal(format!("example epoch batch: {e}")))?;
            let value = serde_json::to_value(input)
                .map_err(|e| ProverError::Internal(format!("example epoch batch: {e}")))?;
            batches.push((*id, value));
        }
        out.push(batches);
    }
    Ok(ExampleEpochs {
        genesis,
        epochs: out,
    })
}

/// The settlement contract's Solidity source for an epoch of `chains` chains (see
/// docs/aggregation.md): it stores the settled state, and `settle(proof)` checks the proof's
/// "before" values against it, calls the generated verifier and stores the "after" values.
pub fn settlement_solidity(chains: usize) -> String {
    include_str!("epoch/Settlement.sol").replace("{{CHAINS}}", &chains.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_state_round_trips_and_is_checked() {
        let state = SettledState::genesis([
            (1, Fr::from(11), Fr::from(12), 1_000),
            (2, Fr::from(21), Fr::from(22), u128::MAX),
        ]);
        let text = serde_json::to_string_pretty(&state).unwrap();
        assert!(
            text.contains("\"340282366920938463463374607431768211455\""),
            "{text}"
        );
        assert_eq!(SettledState::from_json(&text).unwrap(), state);
        let mut wrong = state.clone();
        wrong.global_exit_root = Fr::from(5);
        let err = SettledState::from_json(&serde_json::to_string(&wrong).unwrap()).unwrap_err();
        assert!(err.to_string().contains("global_exit_root is"), "{err}");
        let mut far = state.clone();
        far.chains.insert(256, far.chains[&1]);
        let err = far.validate().unwrap_err();
        assert!(
            err.to_string().contains("chain id 256 is out of range"),
            "{err}"
        );
        let err = SettledState::from_json(r#"{"epoch":0,"global_exit_root":"0x00","chains":{}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("global_exit_root"), "{err}");
    }

    #[test]
    fn epochs_of_more_chains_get_more_rows() {
        let ks: Vec<u32> = [1, 2, 3, 4, 5, 8, 9, 16].map(epoch_k).to_vec();
        assert_eq!(ks, [21, 21, 22, 22, 23, 23, 24, 24]);
        let rollup = "rollup/d8-t2-e1-c1";
        let three = ProofCircuit::parse(&format!("epoch({rollup},{rollup},{rollup})")).unwrap();
        assert_eq!(three.k(), 22);
    }

    #[test]
    fn epoch_names() {
        let rollup = "rollup/d8-t2-e1-c1";
        let name = format!("epoch({rollup},aggregate({rollup},{rollup}))");
        let parsed = ProofCircuit::parse(&name).unwrap();
        assert_eq!(parsed.name(), name);
        assert_eq!(parsed.num_instances(), ACCUMULATOR_LEN + 3 + 12);
        assert!(ProofCircuit::parse(&format!("epoch({rollup})")).is_ok());
        assert!(matches!(
            ProofCircuit::parse("epoch(transfer_batch/d16-b8)"),
            Err(crate::CircuitNameError::NotBridged { index: 0, .. })
        ));
        assert!(matches!(
            ProofCircuit::parse(&format!("aggregate(epoch({rollup}),epoch({rollup}))")),
            Err(crate::CircuitNameError::NestedEpoch { at: 10 })
        ));
        assert!(matches!(
            ProofCircuit::parse("epoch()"),
            Err(crate::CircuitNameError::Syntax { .. })
        ));
    }
}
