//! proofmill's circuits: the rollup circuits, their witness builders, and the catalog that
//! names them.
//!
//! A prover (crate `proofmill-prover`) asks the catalog for a circuit by name, has it parse and
//! validate a job's JSON input into a [`Witness`], and lets it lay the witness out in a
//! halo2-base [`BaseCircuitBuilder`]. This crate knows nothing of SRS files, keys, proofs or
//! transports.
//!
//! Adding a circuit is one folder and one catalog entry: a module whose configuration type
//! implements [`Circuit`], and its named configurations added to [`catalog`] (see
//! docs/architecture.md, "Adding a circuit"). Nothing outside this crate matches on circuit
//! kinds: the prover, the server and the CLI see a [`CatalogCircuit`] and its methods.

pub mod circomlib;
pub mod field;
pub mod gadgets;
pub mod json;
pub mod poseidon;
pub mod rollup;
pub mod transfer_batch;

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
};

pub use halo2_base;
use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::bn256::Fr,
};
use transfer_batch::{BatchError, TransferBatchConfig};

/// Rows at the bottom of every circuit kept free for halo2's blinding factors.
pub const BLINDING_ROWS: usize = 20;
/// The most advice columns a named configuration may use: `k` grows instead. Fewer columns
/// keep the verifier — and so every aggregation above it — cheap.
pub const MAX_ADVICE_COLUMNS: usize = 12;

/// What a circuit of the catalog is: its public inputs, its witness format and builder, and
/// its layout. A configuration type (say `TransferBatchConfig`) implements it once; the rest
/// of the workspace reaches it through [`CatalogCircuit`].
pub trait Circuit: Any + Send + Sync + fmt::Debug {
    /// The name, `family/config` (e.g. `transfer_batch/d16-b8`); it determines the circuit
    /// and so its keys.
    fn name(&self) -> String;
    /// One line on what the circuit proves.
    fn description(&self) -> String;
    /// Names of the public inputs (one instance column), in order.
    fn instance_names(&self) -> &'static [&'static str];
    /// Where a batch's start and end states sit among the public inputs, for rollup-aware
    /// aggregation.
    fn chain_layout(&self) -> ChainLayout;
    /// Bits of the range-check lookup table.
    fn lookup_bits(&self) -> usize;
    /// Parses and validates a job's JSON input: an error names what is wrong.
    fn parse_input(&self, input: &serde_json::Value) -> Result<Witness, CircuitError>;
    /// `count` consecutive valid inputs of one rollup, reproducible from `seed`.
    fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value>;
    /// A witness of the right shape and arbitrary content, for keygen.
    fn keygen_witness(&self) -> Witness;
    /// Lays `witness` out in `builder` and registers the public inputs; returns their values.
    fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &Witness,
    ) -> Result<Vec<Fr>, CircuitError>;
    /// (advice cells, lookup cells) of the layout, for sizing `k`.
    fn cell_counts(&self) -> (usize, usize);
}

/// Positions, among a circuit's public inputs, of what recursive aggregation chains: each
/// input of an aggregate must start where the previous one ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLayout {
    /// The state root before the batch.
    pub old_root: usize,
    /// The state root after it.
    pub new_root: usize,
    /// The commitment to the batch's transactions.
    pub commitment: usize,
    /// For a chain of the aggregation layer (the `rollup` family): its identity and bridge.
    pub chain: Option<ChainFields>,
}

/// Positions of a bridged chain's public inputs (see docs/rollup.md): an aggregate of such
/// proofs also chains the local exit root, keeps the chain id and global exit root, and adds
/// the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainFields {
    /// The chain id.
    pub chain_id: usize,
    /// The local exit root before the batch.
    pub old_exit_root: usize,
    /// The local exit root after it.
    pub new_exit_root: usize,
    /// The global exit root the batch's claims were proven against.
    pub global_exit_root: usize,
    /// The value the batch exited.
    pub exited_total: usize,
    /// The value the batch claimed.
    pub claimed_total: usize,
}

/// A circuit of the catalog (or a configuration built for a test or the bench), with its
/// configuration. Cheap to clone; two are equal when their names are.
#[derive(Clone)]
pub struct CatalogCircuit(Arc<dyn Circuit>);

/// A validated witness for one circuit, opaque outside the circuit's own module.
#[derive(Clone)]
pub struct Witness {
    circuit: String,
    value: Arc<dyn Any + Send + Sync>,
}

impl Witness {
    /// A witness of `circuit` (its name) holding the circuit's own witness type.
    pub fn new<T: Any + Send + Sync>(circuit: String, value: T) -> Self {
        Self {
            circuit,
            value: Arc::new(value),
        }
    }

    /// The name of the circuit it was built for.
    pub fn circuit(&self) -> &str {
        &self.circuit
    }

    /// The circuit's own witness, when this is one of `circuit`'s (its name).
    pub fn get<T: Any>(&self, circuit: &str) -> Result<&T, CircuitError> {
        self.value
            .downcast_ref::<T>()
            .filter(|_| self.circuit == circuit)
            .ok_or_else(|| CircuitError::WitnessMismatch {
                circuit: circuit.to_owned(),
                witness: self.circuit.clone(),
            })
    }
}

impl fmt::Debug for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Witness({})", self.circuit)
    }
}

/// Why a circuit or its input cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// No catalog circuit has this name.
    #[error("unknown circuit {name:?}; the catalog has: {}", available.join(", "))]
    UnknownCircuit {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: Vec<String>,
    },
    /// The input is not a valid batch for the circuit.
    #[error(transparent)]
    InvalidBatch(#[from] BatchError),
    /// The input is not a valid rollup batch.
    #[error(transparent)]
    InvalidRollup(#[from] rollup::RollupError),
    /// A witness for another circuit was passed.
    #[error("witness is for {witness}, not for {circuit}")]
    WitnessMismatch {
        /// The circuit used.
        circuit: String,
        /// The circuit the witness was built for.
        witness: String,
    },
}

/// The size of a circuit, derived from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CircuitShape {
    /// log2 of the number of rows.
    pub k: u32,
    /// Bits of the range-check lookup table.
    pub lookup_bits: usize,
    /// Advice cells of the main gate.
    pub advice_cells: usize,
    /// Cells copied into lookup columns for range checks.
    pub lookup_cells: usize,
    /// Advice columns of the main gate at this `k`.
    pub advice_columns: usize,
    /// Lookup advice columns at this `k`.
    pub lookup_columns: usize,
}

/// The named configurations, in the order `proofmill circuits` lists them. A new circuit
/// family adds its configurations here.
pub fn catalog() -> Vec<CatalogCircuit> {
    let transfer_batch = [(16, 8), (16, 32), (32, 64)]
        .into_iter()
        .map(|(depth, batch)| CatalogCircuit::new(TransferBatchConfig::new(depth, batch)));
    let rollup = rollup::NAMED.into_iter().map(CatalogCircuit::new);
    transfer_batch.chain(rollup).collect()
}

/// Finds a catalog circuit by name (`transfer_batch/d16-b8`).
pub fn lookup(name: &str) -> Result<CatalogCircuit, CircuitError> {
    let catalog = catalog();
    match catalog.iter().find(|c| c.name() == name) {
        Some(found) => Ok(found.clone()),
        None => Err(CircuitError::UnknownCircuit {
            name: name.to_owned(),
            available: catalog.iter().map(CatalogCircuit::name).collect(),
        }),
    }
}

/// Cell counts of a builder after synthesis: (advice, lookup).
pub fn count_cells(builder: &BaseCircuitBuilder<Fr>) -> (usize, usize) {
    let stats = builder.statistics();
    (
        stats.gate.total_advice_per_phase.iter().sum(),
        stats.total_lookup_advice_per_phase.iter().sum(),
    )
}

impl CatalogCircuit {
    /// The handle of a circuit configuration.
    pub fn new(circuit: impl Circuit) -> Self {
        Self(Arc::new(circuit))
    }

    /// The configuration, when it is a `T` (for a family's own tests and tools).
    pub fn config<T: Circuit>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref::<T>()
    }

    /// The name.
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// One line on what the circuit proves.
    pub fn description(&self) -> String {
        self.0.description()
    }

    /// Number of public inputs (one instance column).
    pub fn num_instances(&self) -> usize {
        self.0.instance_names().len()
    }

    /// Names of the public inputs, in order.
    pub fn instance_names(&self) -> &'static [&'static str] {
        self.0.instance_names()
    }

    /// Where the start and end states sit among the public inputs.
    pub fn chain_layout(&self) -> ChainLayout {
        self.0.chain_layout()
    }

    /// Bits of the range-check lookup table.
    pub fn lookup_bits(&self) -> usize {
        self.0.lookup_bits()
    }

    /// Parses and validates a job's JSON input.
    pub fn parse_input(&self, input: &serde_json::Value) -> Result<Witness, CircuitError> {
        self.0.parse_input(input)
    }

    /// A valid input, reproducible from `seed`.
    pub fn example_input(&self, seed: u64) -> serde_json::Value {
        self.example_inputs(seed, 1)
            .pop()
            .unwrap_or(serde_json::Value::Null)
    }

    /// `count` consecutive valid prove-job inputs of one rollup (each starts where the previous
    /// one ended), reproducible from `seed`; the first is [`CatalogCircuit::example_input`].
    pub fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value> {
        self.0.example_inputs(seed, count)
    }

    /// A witness of the right shape and arbitrary content, for keygen.
    pub fn keygen_witness(&self) -> Witness {
        self.0.keygen_witness()
    }

    /// Lays the witness out in `builder` and registers the public inputs; returns their values.
    pub fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &Witness,
    ) -> Result<Vec<Fr>, CircuitError> {
        self.0.synthesize(builder, witness)
    }

    /// The circuit's size: `k` is the smallest that fits the cells in at most
    /// [`MAX_ADVICE_COLUMNS`] advice columns (and the lookup table). Computed once per process
    /// and circuit: the first call lays out small copies of the circuit (a CPU-bound
    /// fraction of a second), so callers on an async runtime call it off the runtime.
    pub fn shape(&self) -> CircuitShape {
        static CACHE: Mutex<Option<HashMap<String, CircuitShape>>> = Mutex::new(None);
        let name = self.name();
        if let Some(shape) = CACHE
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(|m| m.get(&name).copied()))
        {
            return shape;
        }
        let (advice_cells, lookup_cells) = self.0.cell_counts();
        let lookup_bits = self.lookup_bits();
        let mut k = lookup_bits as u32 + 1;
        let columns = |k: u32, cells: usize| cells.div_ceil((1usize << k) - BLINDING_ROWS);
        while columns(k, advice_cells) > MAX_ADVICE_COLUMNS {
            k += 1;
        }
        let shape = CircuitShape {
            k,
            lookup_bits,
            advice_cells,
            lookup_cells,
            advice_columns: columns(k, advice_cells),
            lookup_columns: columns(k, lookup_cells),
        };
        if let Ok(mut cache) = CACHE.lock() {
            cache.get_or_insert_with(HashMap::new).insert(name, shape);
        }
        shape
    }
}

impl PartialEq for CatalogCircuit {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for CatalogCircuit {}

impl Hash for CatalogCircuit {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for CatalogCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// A halo2-base builder at `stage` with `lookup_bits` and one instance column, of `2^k` rows.
pub fn builder_at(
    stage: CircuitBuilderStage,
    k: usize,
    lookup_bits: usize,
) -> BaseCircuitBuilder<Fr> {
    BaseCircuitBuilder::from_stage(stage)
        .use_k(k)
        .use_lookup_bits(lookup_bits)
        .use_instance_columns(1)
}

/// Builds a halo2-base circuit builder for `circuit` at `stage`, sized by its shape.
pub fn builder_for(circuit: &CatalogCircuit, stage: CircuitBuilderStage) -> BaseCircuitBuilder<Fr> {
    let shape = circuit.shape();
    builder_at(stage, shape.k as usize, shape.lookup_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_names_and_unknown_circuit() {
        assert_eq!(
            lookup("transfer_batch/d16-b8").map(|c| c.name()),
            Ok("transfer_batch/d16-b8".to_string())
        );
        let err = lookup("transfer_batch/d99").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("transfer_batch/d99") && text.contains("transfer_batch/d16-b8"),
            "{text}"
        );
    }

    #[test]
    fn extrapolated_cell_count_is_exact() {
        let circuit = CatalogCircuit::new(TransferBatchConfig::new(5, 3));
        let mut builder = builder_for(&circuit, CircuitBuilderStage::Keygen);
        circuit
            .synthesize(&mut builder, &circuit.keygen_witness())
            .unwrap();
        let (advice, lookup) = count_cells(&builder);
        let shape = circuit.shape();
        assert_eq!((shape.advice_cells, shape.lookup_cells), (advice, lookup));
        assert!(shape.advice_columns <= MAX_ADVICE_COLUMNS);
    }

    #[test]
    fn a_witness_of_another_circuit_is_refused() {
        let small = CatalogCircuit::new(TransferBatchConfig::new(4, 1));
        let other = CatalogCircuit::new(TransferBatchConfig::new(4, 2));
        let mut builder = builder_for(&small, CircuitBuilderStage::Keygen);
        let err = small
            .synthesize(&mut builder, &other.keygen_witness())
            .unwrap_err();
        assert!(matches!(err, CircuitError::WitnessMismatch { .. }), "{err}");
        assert_eq!(
            small.config::<TransferBatchConfig>(),
            Some(&TransferBatchConfig::new(4, 1))
        );
    }
}
