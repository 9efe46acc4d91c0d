//! `POST /v1/verify`: a proof envelope checked by the stock halo2 verifier, with the keys this
//! appliance has. A verification never starts a keygen (a circuit whose keys are missing is a
//! 409 that says how to get them), and verifications are bounded: at most
//! `max_concurrent_verifications` at once on a node, `max_concurrent_verifications_per_tenant`
//! of them one tenant's; the envelope itself is bounded in size by the envelope parser.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Body, extract::State, http::HeaderMap, Json};
use proofmill_prover::{ProofEnvelope, SrsLabel};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;

use super::{parse_json, read_body};
use crate::{
    auth::Caller,
    error::{ApiError, Problem},
    AppState,
};

/// `POST /v1/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The proof envelope.
    #[schema(value_type = ProofEnvelopeSchema)]
    pub proof: serde_json::Value,
}

/// `POST /v1/verify` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// True when the stock verifier accepted the proof.
    pub valid: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SRS the proof was checked under (absent when it was refused before that).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SrsLabelSchema>)]
    pub srs: Option<SrsLabel>,
}

/// A proof envelope (`proofmill-proof/1`), as `GET /v1/jobs/{id}/proof` returns it.
#[derive(Debug, ToSchema)]
#[schema(as = ProofEnvelope)]
#[allow(dead_code)] // the document's description of proofmill_prover::ProofEnvelope
pub struct ProofEnvelopeSchema {
    /// Always `proofmill-proof/1`.
    #[schema(pattern = "^proofmill-proof/1$")]
    format: String,
    /// The circuit: a catalog name, `aggregate(…)` or `epoch(…)`.
    #[schema(min_length = 1, max_length = 16384)]
    circuit: String,
    /// log2 of the circuit's rows.
    #[schema(minimum = 1, maximum = 28)]
    k: u32,
    /// SHA-256 of the verifying key.
    #[schema(pattern = "^0x[0-9a-f]{64}$")]
    vk_hash: String,
    /// `poseidon` or `keccak`.
    #[schema(pattern = "^(poseidon|keccak)$")]
    transcript: String,
    /// Public inputs: one column of field elements, `0x` + 64 hex digits each.
    #[schema(max_items = 1, min_items = 1)]
    instances: Vec<Vec<String>>,
    /// The proof bytes, `0x`-prefixed hex.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    proof: String,
    /// The SRS the proof was made with.
    srs: Option<SrsLabelSchema>,
}

/// Which SRS a proof was made or checked with.
#[derive(Debug, ToSchema)]
#[schema(as = SrsLabel)]
#[allow(dead_code)] // the document's description of proofmill_prover::SrsLabel
pub struct SrsLabelSchema {
    /// The SRS id: equal ids, interchangeable keys.
    id: String,
    /// `development` (tau public: insecure) or `ceremony`.
    #[schema(pattern = "^(development|ceremony)$")]
    kind: String,
    /// True for the development SRS: proofs under it prove nothing.
    insecure: bool,
    /// The ceremony file's name.
    file: Option<String>,
}

/// Verifications in progress on this node: a bounded number, and a bounded share each.
#[derive(Debug, Clone)]
pub struct Verifications {
    permits: Arc<Semaphore>,
    per_tenant: Arc<Mutex<HashMap<String, usize>>>,
    tenant_limit: usize,
}

/// How long a verification waits for a free slot before the caller is told to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// A verification's place: held while it runs.
struct Slot {
    _permit: OwnedSemaphorePermit,
    verifications: Verifications,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut per_tenant) = self.verifications.per_tenant.lock() {
            if let Some(n) = per_tenant.get_mut(&self.tenant) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_tenant.remove(&self.tenant);
                }
            }
        }
    }
}

impl Verifications {
    /// At most `limit` at once, `tenant_limit` of them one tenant's.
    pub fn new(limit: usize, tenant_limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            per_tenant: Arc::new(Mutex::new(HashMap::new())),
            tenant_limit,
        }
    }

    async fn enter(&self, tenant: &str) -> Result<Slot, ApiError> {
        {
            let mut per_tenant = self
                .per_tenant
                .lock()
                .map_err(|_| ApiError::Internal("verification counter poisoned".into()))?;
            let n = per_tenant.entry(tenant.to_owned()).or_insert(0);
            if *n >= self.tenant_limit {
                return Err(ApiError::TooBusy(format!(
                    "tenant {tenant} has {n} verifications running on this node, the limit is {} (max_concurrent_verifications_per_tenant); retry when one is done",
                    self.tenant_limit
                )));
            }
            *n += 1;
        }
        let counted = CountedTenant {
            verifications: self,
            tenant,
            armed: true,
        };
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                ApiError::TooBusy(format!(
                    "this node is verifying as many proofs as it may at once (max_concurrent_verifications) and none finished within {} s; retry shortly",
                    QUEUE_WAIT.as_secs()
                ))
            })?
            .map_err(|_| ApiError::Unavailable("the server is shutting down".into()))?;
        counted.disarm();
        Ok(Slot {
            _permit: permit,
            verifications: self.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

/// Gives a tenant's count back if entering fails before a slot holds it.
struct CountedTenant<'a> {
    verifications: &'a Verifications,
    tenant: &'a str,
    armed: bool,
}

impl CountedTenant<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CountedTenant<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut per_tenant) = self.verifications.per_tenant.lock() {
                if let Some(n) = per_tenant.get_mut(self.tenant) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }
}

/// Verify a proof envelope with the stock halo2 verifier.
#[utoipa::path(post, path = "/v1/verify", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse, description = "checked: valid, or invalid with the reason"),
        (status = 400, body = Problem, description = "the body is not JSON"),
        (status = 409, body = Problem, description = "this appliance lacks the circuit's keys (the detail says how to get them)"),
        (status = 413, body = Problem, description = "the body is over the limit"),
        (status = 422, body = Problem, description = "the envelope is unusable: format, circuit name, hex, sizes"),
        (status = 429, body = Problem, description = "too many verifications at once")))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VerifyResponse>, ApiError> {
    let bytes = read_body(&headers, body, caller.max_body_bytes).await?;
    let request: VerifyRequest = parse_json(&bytes)?;
    drop(bytes);
    let envelope = ProofEnvelope::from_value(request.proof)
        .map_err(|e| ApiError::InvalidEnvelope(format!("proof: {e}")))?;
    // The name is parsed (bounded) before anything is loaded for it.
    proofmill_prover::ProofCircuit::parse(&envelope.circuit)
        .map_err(|e| ApiError::InvalidEnvelope(format!("proof: circuit: {e}")))?;
    let _slot = state.verifications.enter(&caller.tenant).await?;
    let prover = state.prover.clone();
    let verdict = tokio::task::spawn_blocking(move || prover.verify(&envelope, &|_| {}))
        .await
        .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?;
    match verdict {
        Ok(v) => Ok(Json(VerifyResponse {
            valid: v.valid,
            reason: v.reason,
            srs: v.srs,
        })),
        Err(e) => Err(match ApiError::from(e) {
            ApiError::InvalidEnvelope(m) => ApiError::InvalidEnvelope(format!("proof: {m}")),
            other => other,
        }),
    }
}
