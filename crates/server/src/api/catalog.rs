//! `GET /v1/circuits` and `GET /v1/circuits/{name}`: the catalog, with each circuit's size and
//! the verifying key this cluster has used for it.

use axum::{
    extract::{Path, State},
    Json,
};
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
}

async fn circuit_view(state: &AppState, name: &str) -> Result<CircuitView, ApiError> {
    let circuit =
        proofmill_circuits::lookup(name).map_err(|e| ApiError::NotFound(e.to_string()))?;
    let sized = circuit.clone();
    let shape = tokio::task::spawn_blocking(move || sized.shape())
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
