//! proofmill's circuits: the rollup circuits, their witness builders, and the catalog that
//! names them.
//!
//! A prover (crate `proofmill-prover`) asks the catalog for a circuit by name, has it parse and
//! validate a job's JSON input into a [`Witness`], and lets it lay the witness out in a
//! halo2-base [`BaseCircuitBuilder`]. This crate knows nothing of SRS files, keys, proofs or
//! transports.

pub mod circomlib;
pub mod field;
pub mod poseidon;
pub mod rollup;
pub mod transfer_batch;

use std::{collections::HashMap, sync::Mutex};

pub use halo2_base;
use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    halo2_proofs::halo2curves::bn256::Fr,
};
use transfer_batch::{BatchError, BatchInput, BatchWitness, State, TransferBatchConfig};

/// Rows at the bottom of every circuit kept free for halo2's blinding factors.
pub const BLINDING_ROWS: usize = 20;
/// The most advice columns a named configuration may use: `k` grows instead. Fewer columns
/// keep the verifier — and so every aggregation above it — cheap.
pub const MAX_ADVICE_COLUMNS: usize = 12;

/// A circuit of the catalog, with its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CatalogCircuit {
    /// A rollup batch of transfers.
    TransferBatch(TransferBatchConfig),
}

/// A validated witness for some catalog circuit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Witness {
    /// For [`CatalogCircuit::TransferBatch`].
    TransferBatch(BatchWitness),
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

/// The named configurations, in the order `proofmill circuits` lists them.
pub fn catalog() -> Vec<CatalogCircuit> {
    vec![
        CatalogCircuit::TransferBatch(TransferBatchConfig::new(16, 8)),
        CatalogCircuit::TransferBatch(TransferBatchConfig::new(16, 32)),
        CatalogCircuit::TransferBatch(TransferBatchConfig::new(32, 64)),
    ]
}

/// Finds a catalog circuit by name (`transfer_batch/d16-b8`).
pub fn lookup(name: &str) -> Result<CatalogCircuit, CircuitError> {
    catalog()
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| CircuitError::UnknownCircuit {
            name: name.to_owned(),
            available: catalog().iter().map(CatalogCircuit::name).collect(),
        })
}

/// Cell counts of a builder after synthesis: (advice, lookup).
fn count_cells(builder: &BaseCircuitBuilder<Fr>) -> (usize, usize) {
    let stats = builder.statistics();
    (
        stats.gate.total_advice_per_phase.iter().sum(),
        stats.total_lookup_advice_per_phase.iter().sum(),
    )
}

impl CatalogCircuit {
    /// The catalog name.
    pub fn name(&self) -> String {
        match self {
            Self::TransferBatch(c) => c.name(),
        }
    }

    /// One line on what the circuit proves.
    pub fn description(&self) -> String {
        match self {
            Self::TransferBatch(c) => format!(
                "a rollup batch of up to {} transfers over a depth-{} Poseidon account tree",
                c.batch_size, c.depth
            ),
        }
    }

    /// Number of public inputs (one instance column).
    pub fn num_instances(&self) -> usize {
        match self {
            Self::TransferBatch(c) => c.num_instances(),
        }
    }

    /// Names of the public inputs, in order.
    pub fn instance_names(&self) -> &'static [&'static str] {
        match self {
            Self::TransferBatch(_) => &["old_root", "new_root", "batch_commitment"],
        }
    }

    /// Bits of the range-check lookup table.
    pub fn lookup_bits(&self) -> usize {
        match self {
            Self::TransferBatch(c) => c.lookup_bits,
        }
    }

    /// Parses and validates a job's JSON input.
    pub fn parse_input(&self, input: &serde_json::Value) -> Result<Witness, CircuitError> {
        match self {
            Self::TransferBatch(c) => {
                let batch = BatchInput::from_value(input)?;
                Ok(Witness::TransferBatch(BatchWitness::from_input(c, &batch)?))
            }
        }
    }

    /// A valid input, reproducible from `seed`.
    pub fn example_input(&self, seed: u64) -> serde_json::Value {
        match self {
            Self::TransferBatch(c) => {
                let (_, input) = State::example(c, seed);
                serde_json::to_value(input).expect("a batch input serializes")
            }
        }
    }

    /// `count` consecutive valid prove-job inputs of one rollup (each starts where the previous
    /// one ended), reproducible from `seed`; the first is [`CatalogCircuit::example_input`].
    pub fn example_inputs(&self, seed: u64, count: usize) -> Vec<serde_json::Value> {
        match self {
            Self::TransferBatch(c) => State::example_chain(c, seed, count)
                .into_iter()
                .map(|input| serde_json::to_value(input).expect("a batch input serializes"))
                .collect(),
        }
    }

    /// A witness of the right shape and arbitrary content, for keygen.
    pub fn keygen_witness(&self) -> Witness {
        match self {
            Self::TransferBatch(c) => Witness::TransferBatch(BatchWitness::padding_only(c)),
        }
    }

    /// Lays the witness out in `builder` and registers the public inputs; returns their values.
    pub fn synthesize(
        &self,
        builder: &mut BaseCircuitBuilder<Fr>,
        witness: &Witness,
    ) -> Result<Vec<Fr>, CircuitError> {
        match (self, witness) {
            (Self::TransferBatch(c), Witness::TransferBatch(w)) if w.config == *c => {
                Ok(transfer_batch::synthesize(builder, w))
            }
            (_, Witness::TransferBatch(w)) => Err(CircuitError::WitnessMismatch {
                circuit: self.name(),
                witness: w.config.name(),
            }),
        }
    }

    /// Cells of this circuit, counted by laying out scaled-down copies: the layout is linear in
    /// the batch size and, per slot, in the depth, so three tiny syntheses give the exact
    /// count without building a production-sized circuit.
    fn cell_counts(&self) -> (usize, usize) {
        let Self::TransferBatch(c) = self;
        let measure = |depth: usize, batch_size: usize| {
            let config = TransferBatchConfig {
                depth,
                batch_size,
                lookup_bits: c.lookup_bits,
            };
            let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Keygen)
                .use_k(c.lookup_bits + 1)
                .use_lookup_bits(c.lookup_bits)
                .use_instance_columns(1);
            transfer_batch::synthesize(&mut builder, &BatchWitness::padding_only(&config));
            count_cells(&builder)
        };
        // m(D, B) = m(1, 1) + (B - 1)·[m(1, 2) - m(1, 1)] + B·(D - 1)·[m(2, 1) - m(1, 1)]
        let extrapolate = |m11: usize, m21: usize, m12: usize| {
            m11 + (c.batch_size - 1) * (m12 - m11) + c.batch_size * (c.depth - 1) * (m21 - m11)
        };
        let (a11, l11) = measure(1, 1);
        let (a21, l21) = measure(2, 1);
        let (a12, l12) = measure(1, 2);
        (extrapolate(a11, a21, a12), extrapolate(l11, l21, l12))
    }

    /// The circuit's size: `k` is the smallest that fits the cells in at most
    /// [`MAX_ADVICE_COLUMNS`] advice columns (and the lookup table). Computed once per process.
    pub fn shape(&self) -> CircuitShape {
        static CACHE: Mutex<Option<HashMap<CatalogCircuit, CircuitShape>>> = Mutex::new(None);
        if let Some(shape) = CACHE
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(|m| m.get(self).copied()))
        {
            return shape;
        }
        let (advice_cells, lookup_cells) = self.cell_counts();
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
            cache.get_or_insert_with(HashMap::new).insert(*self, shape);
        }
        shape
    }
}

/// Builds a halo2-base circuit builder for `circuit` at `stage`, sized by its shape.
pub fn builder_for(circuit: &CatalogCircuit, stage: CircuitBuilderStage) -> BaseCircuitBuilder<Fr> {
    let shape = circuit.shape();
    BaseCircuitBuilder::from_stage(stage)
        .use_k(shape.k as usize)
        .use_lookup_bits(shape.lookup_bits)
        .use_instance_columns(1)
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
        let config = TransferBatchConfig::new(5, 3);
        let circuit = CatalogCircuit::TransferBatch(config);
        let mut builder = builder_for(&circuit, CircuitBuilderStage::Keygen);
        circuit
            .synthesize(&mut builder, &circuit.keygen_witness())
            .unwrap();
        let (advice, lookup) = count_cells(&builder);
        let shape = circuit.shape();
        assert_eq!((shape.advice_cells, shape.lookup_cells), (advice, lookup));
        assert!(shape.advice_columns <= MAX_ADVICE_COLUMNS);
    }
}
