//! `GET /v1/circuits` and `GET /v1/circuits/{name}`: the catalog, with each circuit's size and
//! the verifying key this cluster has used for it.

use axum::{
    extract::{Path, State},
    Json,
};
use proofmill_prover::{memory::MemoryNeed, ProofCircuit};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::Caller,
    error::{ApiError, Problem},
    AppState,
};

/// A catalog circuit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitView {
    /// Catalog name.
    pub name: String,
    /// What it proves.
    pub description: String,
    /// log2 of the rows.
    pub k: u32,
    /// Advice columns.
    pub advice_columns: usize,
    /// Lookup columns.
    pub lookup_columns: usize,
    /// Advice cells.
    pub advice_cells: usize,
    /// Names of the public inputs.
    pub public_inputs: Vec<String>,
    /// SHA-256 of the verifying key, once this appliance has its keys.
    pub vk_hash: Option<String>,
    /// The memory a proof needs (what placement uses; docs/operations.md, "Sizing host
    /// memory").
    pub memory: MemoryView,
}

/// A circuit's memory estimate.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryView {
    /// Host memory of a proof once the key exists, bytes.
    pub host_bytes: u64,
    /// Host memory of the first proof, which makes the key, bytes.
    pub host_bytes_with_keygen: u64,
    /// Memory on a GPU proving it, bytes.
    pub gpu_bytes: u64,
}

async fn circuit_view(state: &AppState, name: &str) -> Result<CircuitView, ApiError> {
    let circuit =
        proofmill_circuits::lookup(name).map_err(|e| ApiError::NotFound(e.to_string()))?;
    let sized = circuit.clone();
    let prover = state.prover.clone();
    let (shape, memory) = tokio::task::spawn_blocking(move || {
        let (dims, _) = prover.circuit_dims(&ProofCircuit::App(sized.clone()));
        let (proof, first) = (
            MemoryNeed::estimate(&dims, false),
            MemoryNeed::estimate(&dims, true),
        );
        (
            sized.shape(),
            MemoryView {
                host_bytes: proof.host_bytes,
                host_bytes_with_keygen: first.host_bytes,
                gpu_bytes: proof.gpu_bytes,
            },
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("shape task: {e}")))?;
    Ok(CircuitView {
        name: circuit.name(),
        description: circuit.description(),
        k: shape.k,
        advice_columns: shape.advice_columns,
        lookup_columns: shape.lookup_columns,
        advice_cells: shape.advice_cells,
        public_inputs: circuit
            .instance_names()
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        vk_hash: state.store.vk_hash(&circuit.name()).await?,
        memory,
    })
}

/// The circuit catalog.
#[utoipa::path(get, path = "/v1/circuits", responses((status = 200, body = [CircuitView])))]
pub async fn list_circuits(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<CircuitView>>, ApiError> {
    let mut out = Vec::new();
    for c in proofmill_circuits::catalog() {
        out.push(circuit_view(&state, &c.name()).await?);
    }
    Ok(Json(out))
}

/// One circuit (its name contains a slash: `/v1/circuits/transfer_batch/d16-b8`, or
/// URL-encoded).
#[utoipa::path(get, path = "/v1/circuits/{name}", params(("name" = String, Path)),
    responses((status = 200, body = CircuitView), (status = 404, body = Problem, description = "no such circuit in the catalog")))]
pub async fn get_circuit(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CircuitView>, ApiError> {
    Ok(Json(
        circuit_view(&state, name.trim_start_matches('/')).await?,
    ))
}

/// An example input for a catalog circuit: a valid batch (signed, for the rollup circuits)
/// that `POST /v1/jobs` proves as is, the same that `proofmill example-batch` writes. The
/// seed (0 to 2^64-1, default 1) picks the accounts and amounts.
#[utoipa::path(get, path = "/v1/examples/{name}",
    params(("name" = String, Path), ("seed" = Option<u64>, Query, description = "picks the accounts and amounts, default 1")),
    responses((status = 200, description = "the circuit's input JSON", body = Object),
        (status = 404, body = Problem, description = "no such circuit in the catalog"),
        (status = 422, body = Problem, description = "a bad query parameter")))]
pub async fn example(
    _caller: Caller,
    Path(name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = name.trim_start_matches('/');
    let params = super::jobs::query_params(query.as_deref(), &["seed"])?;
    let seed = match params.get("seed") {
        None => 1,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::InvalidRequest(format!(
                "seed {v:?}: expected an integer from 0 to {}",
                u64::MAX
            ))
        })?,
    };
    // Catalog circuits only: any other size would let a request choose how much work it makes.
    let circuit = proofmill_circuits::catalog()
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no circuit {name:?} in the catalog (GET /v1/circuits lists them)"
            ))
        })?;
    let input = tokio::task::spawn_blocking(move || circuit.example_input(seed))
        .await
        .map_err(|e| ApiError::Internal(format!("example task: {e}")))?;
    Ok(Json(input))
}
