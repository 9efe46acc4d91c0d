//! The HTTP API (DESIGN.md, "HTTP"): request validation, the JSON shapes, and the mapping of
//! every outcome to a status code. Handlers validate everything a client can get wrong
//! before a job is accepted, store the job, and leave the rest to the scheduler.

use std::{collections::HashMap, convert::Infallible, time::Duration};

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use futures_util::{Stream, StreamExt};
use proofmill_prover::{ProofEnvelope, Transcript};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{OpenApi, ToSchema};

use crate::{
    auth::Caller,
    devices::DeviceInfo,
    error::{ApiError, Problem},
    store::{now_ms, AttemptRecord, Insert, JobRecord, JobStatus, NewJob, UsageRow},
    AppState,
};

/// The most inputs one aggregate job may fold.
pub const MAX_AGGREGATE_INPUTS: usize = 64;

/// `POST /v1/jobs` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    /// Prove one batch.
    Prove {
        /// Catalog name, e.g. `transfer_batch/d16-b8`.
        circuit: String,
        /// The batch (see `proofmill example-batch`).
        #[schema(value_type = Object)]
        input: serde_json::Value,
        /// Higher runs first (default 0).
        #[serde(default)]
        priority: i32,
        /// `poseidon` (default, aggregatable) or `keccak` (EVM-verifiable).
        #[serde(default)]
        #[schema(value_type = String, example = "poseidon")]
        transcript: Transcript,
    },
    /// Fold proofs into one.
    Aggregate {
        /// At least two: earlier jobs of the caller, or envelopes.
        inputs: Vec<AggregateInput>,
        /// Final proof (keccak transcript, verifiable on Ethereum).
        #[serde(default, rename = "final")]
        final_: bool,
        /// Higher runs first (default 0).
        #[serde(default)]
        priority: i32,
    },
}

/// One input of an aggregate job: exactly one of `job` and `proof`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateInput {
    /// The id of one of the caller's jobs; the aggregate waits for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// A proof envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub proof: Option<serde_json::Value>,
}

/// `202` answer to a submission.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The job id.
    pub id: String,
    /// Its status (`queued`, or the current one for an idempotent replay).
    pub status: JobStatus,
}

/// Timestamps (RFC 3339) and durations (seconds) of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timings {
    /// Accepted at.
    pub created: String,
    /// Last started at.
    pub started: Option<String>,
    /// Ended at.
    pub finished: Option<String>,
    /// Time waiting before the (last) start, so far.
    pub queued_seconds: f64,
    /// Time on the device, so far.
    pub running_seconds: Option<f64>,
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Id.
    pub id: String,
    /// `prove` or `aggregate`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Prove jobs: the circuit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// The stage while running (`witness`, `waiting_for_device`, `srs`, `keys`, `keygen`,
    /// `proving`, `verifying`).
    pub stage: Option<String>,
    /// Rough completed fraction, 0..1.
    pub progress: f64,
    /// Priority.
    pub priority: i64,
    /// Transcript of the proof.
    pub transcript: String,
    /// Aggregate jobs: the input jobs it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_jobs: Option<Vec<String>>,
    /// The device it runs or ran on.
    pub device: Option<String>,
    /// The node that device belongs to.
    pub node: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Times it was claimed (every claim is a numbered attempt).
    pub attempts: i64,
    /// Attempts that failed for a retryable reason (lease expiries and shutdowns do not
    /// count).
    pub failures: i64,
    /// It failed `max_attempts` times and was given up; `history` says how.
    pub dead_lettered: bool,
    /// Why it was retried or re-queued, if it was.
    pub retry_reason: Option<String>,
    /// A cancel was asked for; it takes effect at the next stage boundary.
    pub cancel_requested: bool,
    /// Timings.
    pub timings: Timings,
    /// Every attempt: node, device, times and outcome (`GET /v1/jobs/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<AttemptView>>,
}

/// One attempt of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// Attempt number.
    pub attempt: i64,
    /// Node that ran it.
    pub node: String,
    /// Device on that node.
    pub device: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339, once it ended.
    pub ended: Option<String>,
    /// `succeeded`, `failed`, `retry`, `cancelled`, `lease_expired`, `requeued` or
    /// `superseded`; null while it runs.
    pub outcome: Option<String>,
    /// The error or reason.
    pub detail: Option<String>,
}

impl AttemptView {
    fn of(a: &AttemptRecord) -> Self {
        Self {
            attempt: a.attempt,
            node: a.node.clone(),
            device: a.device.clone(),
            started: rfc3339(a.started_ms),
            ended: a.ended_ms.map(rfc3339),
            outcome: a.outcome.clone(),
            detail: a.detail.clone(),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

impl JobView {
    /// The view of a stored job.
    pub fn of(job: &JobRecord) -> Self {
        let now = now_ms();
        let secs = |a: i64, b: i64| (b - a).max(0) as f64 / 1000.0;
        let (transcript, input_jobs) = if job.kind == "aggregate" {
            let final_ = job
                .request
                .get("final")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let jobs = job
                .request
                .get("inputs")
                .and_then(serde_json::Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.get("job").and_then(|j| j.as_str()).map(str::to_owned))
                        .collect()
                });
            (if final_ { "keccak" } else { "poseidon" }.to_owned(), jobs)
        } else {
            (
                job.request
                    .get("transcript")
                    .and_then(|t| t.as_str())
                    .unwrap_or("poseidon")
                    .to_owned(),
                None,
            )
        };
        let queued_until = if job.status == JobStatus::Queued {
            now
        } else {
            job.started_ms.or(job.finished_ms).unwrap_or(now)
        };
        Self {
            id: job.id.clone(),
            kind: job.kind.clone(),
            circuit: job.circuit.clone(),
            status: job.status,
            stage: job.stage.clone(),
            progress: job.progress,
            priority: job.priority,
            transcript,
            input_jobs,
            device: job.device.clone(),
            node: job.node.clone(),
            error: job.error.clone(),
            attempts: job.attempts,
            failures: job.failures,
            dead_lettered: job.dead_letter,
            retry_reason: job.retry_reason.clone(),
            cancel_requested: job.cancel_requested,
            timings: Timings {
                created: rfc3339(job.created_ms),
                started: job.started_ms.map(rfc3339),
                finished: job.finished_ms.map(rfc3339),
                queued_seconds: secs(job.created_ms, queued_until),
                running_seconds: job
                    .started_ms
                    .filter(|_| job.status != JobStatus::Queued)
                    .map(|s| secs(s, job.finished_ms.unwrap_or(now))),
            },
            history: None,
        }
    }
}

/// `GET /v1/jobs` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `POST /v1/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The proof envelope.
    #[schema(value_type = Object)]
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
}

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

/// `GET /v1/devices` answer: the whole cluster, whichever node answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// One entry per worker of every live node (`node` says whose): this node's with
    /// telemetry read now, the others' as of their last heartbeat.
    pub devices: Vec<DeviceInfo>,
    /// The nodes registered in the job store.
    pub nodes: Vec<NodeView>,
}

/// A node of the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    /// Its `node_id`.
    pub node: String,
    /// Where its API is reachable, when it says.
    pub advertise_url: Option<String>,
    /// proofmill version.
    pub version: String,
    /// RFC 3339.
    pub started: String,
    /// Seconds since its last heartbeat (database clock).
    pub last_heartbeat_seconds: f64,
    /// It heartbeat within three lease periods; a node that is not live holds no jobs once
    /// its leases expire, and its devices are not listed.
    pub live: bool,
    /// The node answering this request.
    pub this_node: bool,
    /// Its devices.
    pub devices: usize,
}

/// `GET /v1/usage` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageList {
    /// Device time per tenant and device kind (all tenants for an admin key).
    pub usage: Vec<UsageRow>,
}

/// The OpenAPI description, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "proofmill",
        description = "halo2 KZG (BN254, SHPLONK) prover appliance"
    ),
    paths(
        submit_job,
        get_job,
        get_proof,
        cancel_job,
        list_jobs,
        job_events,
        verify,
        list_circuits,
        get_circuit,
        devices,
        usage,
        metrics,
        healthz,
        readyz
    ),
    components(schemas(
        JobRequest,
        AggregateInput,
        Accepted,
        JobView,
        AttemptView,
        Timings,
        JobList,
        VerifyRequest,
        VerifyResponse,
        CircuitView,
        DeviceList,
        NodeView,
        DeviceInfo,
        UsageList,
        UsageRow,
        Problem,
        JobStatus
    ))
)]
pub struct ApiDoc;

/// Reads a body up to `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > limit as u64 {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("reading the body failed: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Parses JSON: a syntax error is a 400, a shape error a 422, both with serde's message.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("the body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// JSON with object keys sorted, so equal requests hash equally.
fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String((*k).clone()),
                        canonical(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

fn new_job_id() -> String {
    format!("job_{:032x}", rand::random::<u128>())
}

async fn owned_job(state: &AppState, caller: &Caller, id: &str) -> Result<JobRecord, ApiError> {
    match state.store.get(id).await? {
        Some(job) if job.tenant == caller.tenant => Ok(job),
        _ => Err(ApiError::NotFound(format!("no job {id}"))),
    }
}

/// Submit a prove or aggregate job.
#[utoipa::path(post, path = "/v1/jobs", request_body = JobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the submission safe to retry")),
    responses(
        (status = 202, body = Accepted), (status = 400, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)
    ))]
pub async fn submit_job(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, caller.max_body_bytes).await?;
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::InvalidRequest(
                        "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                    )
                })
        })
        .transpose()?;
    let request: JobRequest = parse_json(&bytes)?;
    let job = validate(&state, &caller, request).await?;
    let hash = hex::encode(Sha256::digest(canonical(&job.request).as_bytes()));
    let idempotency = idempotency_key.as_deref().map(|k| (k, hash.as_str()));
    let (job, replayed) = match state
        .store
        .insert(job, idempotency, caller.max_outstanding)
        .await?
    {
        Insert::Created(job) => (job, false),
        Insert::Existing(job) => (job, true),
        Insert::KeyMismatch { job_id } => {
            return Err(ApiError::IdempotencyMismatch(format!(
                "Idempotency-Key {:?} was used for job {job_id} with a different request; use a new key for a new job",
                idempotency_key.unwrap_or_default()
            )))
        }
        Insert::TooMany { outstanding } => {
            return Err(ApiError::TooManyJobs(format!(
                "tenant {} has {outstanding} jobs queued or running, the limit is {}; wait for some to finish",
                caller.tenant, caller.max_outstanding
            )))
        }
    };
    if !replayed {
        tracing::info!(job = %job.id, tenant = %job.tenant, kind = %job.kind, circuit = ?job.circuit, "job accepted");
        metrics::counter!("proofmill_jobs_submitted_total", "type" => job.kind.clone())
            .increment(1);
        state.scheduler.wake();
        state.scheduler.announce(&job.id);
    }
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: job.id.clone(),
            status: job.status,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Checks everything about a job a client can get wrong, and normalizes it for storage.
async fn validate(
    state: &AppState,
    caller: &Caller,
    request: JobRequest,
) -> Result<NewJob, ApiError> {
    match request {
        JobRequest::Prove {
            circuit,
            input,
            priority,
            transcript,
        } => {
            let catalog = proofmill_circuits::lookup(&circuit)
                .map_err(|e| ApiError::UnknownCircuit(e.to_string()))?;
            let checked_input = input.clone();
            tokio::task::spawn_blocking(move || catalog.parse_input(&checked_input))
                .await
                .map_err(|e| ApiError::Internal(format!("input validation task: {e}")))?
                .map_err(|e| ApiError::InvalidInput(format!("input: {e}")))?;
            Ok(NewJob {
                id: new_job_id(),
                tenant: caller.tenant.clone(),
                kind: "prove".into(),
                circuit: Some(circuit.clone()),
                request: serde_json::json!({
                    "type": "prove", "circuit": circuit, "input": input,
                    "priority": priority, "transcript": transcript,
                }),
                priority: i64::from(priority),
            })
        }
        JobRequest::Aggregate {
            inputs,
            final_,
            priority,
        } => {
            if inputs.len() < 2 || inputs.len() > MAX_AGGREGATE_INPUTS {
                return Err(ApiError::InvalidRequest(format!(
                    "inputs has {} entries; an aggregate job folds 2 to {MAX_AGGREGATE_INPUTS} proofs",
                    inputs.len()
                )));
            }
            for (i, input) in inputs.iter().enumerate() {
                match (&input.job, &input.proof) {
                    (Some(id), None) => {
                        let Some(dep) = state
                            .store
                            .get(id)
                            .await?
                            .filter(|j| j.tenant == caller.tenant)
                        else {
                            return Err(ApiError::InvalidRequest(format!(
                                "inputs[{i}].job: no job {id}"
                            )));
                        };
                        if matches!(dep.status, JobStatus::Failed | JobStatus::Cancelled) {
                            return Err(ApiError::InvalidRequest(format!(
                                "inputs[{i}].job: job {id} {}: {}",
                                dep.status.as_str(),
                                dep.error.unwrap_or_default()
                            )));
                        }
                        if JobView::of(&dep).transcript != "poseidon" {
                            return Err(ApiError::InvalidRequest(format!(
                                "inputs[{i}].job: job {id} makes a keccak-transcript proof; only poseidon proofs can be aggregated"
                            )));
                        }
                    }
                    (None, Some(proof)) => {
                        let envelope = ProofEnvelope::from_value(proof.clone()).map_err(|e| {
                            ApiError::InvalidEnvelope(format!("inputs[{i}].proof: {e}"))
                        })?;
                        envelope.proof_bytes().map_err(|e| {
                            ApiError::InvalidEnvelope(format!("inputs[{i}].proof: {e}"))
                        })?;
                        envelope.instance_values().map_err(|e| {
                            ApiError::InvalidEnvelope(format!("inputs[{i}].proof: {e}"))
                        })?;
                        if envelope.transcript != Transcript::Poseidon {
                            return Err(ApiError::InvalidEnvelope(format!(
                                "inputs[{i}].proof: the {} transcript cannot be aggregated; only poseidon proofs can",
                                envelope.transcript
                            )));
                        }
                    }
                    _ => {
                        return Err(ApiError::InvalidRequest(format!(
                            "inputs[{i}]: give exactly one of \"job\" (a job id) and \"proof\" (an envelope)"
                        )))
                    }
                }
            }
            Ok(NewJob {
                id: new_job_id(),
                tenant: caller.tenant.clone(),
                kind: "aggregate".into(),
                circuit: None,
                request: serde_json::json!({
                    "type": "aggregate", "inputs": inputs, "final": final_, "priority": priority,
                }),
                priority: i64::from(priority),
            })
        }
    }
}

/// A job's status.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = Problem)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = owned_job(&state, &caller, &id).await?;
    let mut view = JobView::of(&job);
    view.history = Some(
        state
            .store
            .history(&id)
            .await?
            .iter()
            .map(AttemptView::of)
            .collect(),
    );
    Ok(Json(view))
}

/// The proof envelope of a succeeded job.
#[utoipa::path(get, path = "/v1/jobs/{id}/proof", params(("id" = String, Path)),
    responses((status = 200, description = "The proof envelope (proofmill-proof/1)"),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn get_proof(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &id).await?;
    match (job.status, &job.proof_path) {
        (JobStatus::Succeeded, Some(location)) => {
            let text = state
                .artifacts
                .get(location)
                .await
                .map_err(|e| ApiError::Internal(format!("reading the proof: {e}")))?;
            Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
        }
        (JobStatus::Failed, _) => Err(ApiError::Conflict(format!(
            "job {id} failed, so it has no proof: {}",
            job.error.unwrap_or_default()
        ))),
        (status, _) => Err(ApiError::Conflict(format!(
            "job {id} is {}; its proof is available once it has succeeded",
            status.as_str()
        ))),
    }
}

/// Cancel a job (idempotent). A running job stops at its next stage boundary.
#[utoipa::path(delete, path = "/v1/jobs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = JobView, description = "cancelled"),
        (status = 202, body = JobView, description = "running; stops at the next stage boundary"),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &id).await?;
    if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
        return Err(ApiError::Conflict(format!(
            "job {id} already {}; there is nothing to cancel",
            job.status.as_str()
        )));
    }
    let job = state
        .store
        .cancel(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    state.scheduler.cancel(&id);
    state.scheduler.announce(&id);
    let status = if job.status == JobStatus::Running {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(JobView::of(&job))).into_response())
}

/// The caller's jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs",
    params(("status" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1..=500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = JobList), (status = 422, body = Problem)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<JobList>, ApiError> {
    let params: HashMap<String, String> = query
        .as_deref()
        .map(parse_query)
        .transpose()?
        .unwrap_or_default();
    for key in params.keys() {
        if !matches!(key.as_str(), "status" | "limit" | "cursor") {
            return Err(ApiError::InvalidRequest(format!(
                "unknown query parameter {key:?}: expected status, limit or cursor"
            )));
        }
    }
    let status = params
        .get("status")
        .map(|s| s.parse::<JobStatus>().map_err(ApiError::InvalidRequest))
        .transpose()?;
    let limit = match params.get("limit") {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::InvalidRequest(format!("limit {l:?}: expected 1 to 500")))?,
        None => 50,
    };
    let cursor = params
        .get("cursor")
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::InvalidRequest(format!("cursor {c:?} is not one this server issued"))
            })
        })
        .transpose()?;
    let jobs = state
        .store
        .list(&caller.tenant, status, limit, cursor)
        .await?;
    let next_cursor = if jobs.len() == limit as usize {
        jobs.last().map(|j| j.seq.to_string())
    } else {
        None
    };
    Ok(Json(JobList {
        jobs: jobs.iter().map(JobView::of).collect(),
        next_cursor,
    }))
}

fn parse_query(query: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k)?, decode(v)?);
    }
    Ok(out)
}

fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::InvalidRequest(format!("bad percent-encoding in {text:?}"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::InvalidRequest(format!("query {text:?} is not UTF-8")))
}

/// Server-sent events: the job's state now and at every change, until it ends.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of `status` events whose data is a JobView"),
        (status = 404, body = Problem)))]
pub async fn job_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let changes = state.scheduler.subscribe();
    let job = owned_job(&state, &caller, &id).await?;
    let first = JobView::of(&job);
    let shutdown = state.shutdown.clone();
    // This node announces its own changes; another node's (a job it runs, a lease it lost)
    // are seen by reading the job again every second.
    let stream = futures_util::stream::unfold(
        (Some(first), changes, state, id, false, shutdown, None),
        |(pending, mut changes, state, id, done, mut shutdown, last)| async move {
            if done {
                return None;
            }
            let view = match pending {
                Some(view) => view,
                None => {
                    // The poll's deadline outlives the loop's turns: other jobs' changes on a
                    // busy node must not keep postponing it.
                    let mut poll = tokio::time::Instant::now() + Duration::from_secs(1);
                    loop {
                        let changed = tokio::select! {
                            changed = changes.recv() => changed,
                            _ = shutdown.changed() => return None,
                            () = tokio::time::sleep_until(poll) => {
                                poll = tokio::time::Instant::now() + Duration::from_secs(1);
                                Ok(id.clone())
                            }
                        };
                        match changed {
                            Ok(changed) if changed != id => continue,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                match state.store.get(&id).await {
                                    Ok(Some(job)) => {
                                        let view = JobView::of(&job);
                                        if last.as_ref() == Some(&event_key(&view)) {
                                            continue;
                                        }
                                        break view;
                                    }
                                    // The database is restarting: keep the stream, try again.
                                    Err(e) if e.is_unavailable() => continue,
                                    _ => return None,
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                }
            };
            let terminal = view.status.is_terminal();
            let key = Some(event_key(&view));
            let event = Event::default()
                .event("status")
                .json_data(&view)
                .unwrap_or_else(|_| Event::default().event("status"));
            Some((
                Ok(event),
                (None, changes, state, id, terminal, shutdown, key),
            ))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// What makes two events of one job different: a repeat is not sent.
fn event_key(view: &JobView) -> (JobStatus, Option<String>, u64, i64, bool) {
    (
        view.status,
        view.stage.clone(),
        (view.progress * 1000.0) as u64,
        view.attempts,
        view.cancel_requested,
    )
}

/// Verify a proof envelope with the stock halo2 verifier.
#[utoipa::path(post, path = "/v1/verify", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VerifyResponse>, ApiError> {
    let bytes = read_body(&headers, body, caller.max_body_bytes).await?;
    let request: VerifyRequest = parse_json(&bytes)?;
    let envelope = ProofEnvelope::from_value(request.proof)
        .map_err(|e| ApiError::InvalidEnvelope(format!("proof: {e}")))?;
    let prover = state.prover.clone();
    let verdict = tokio::task::spawn_blocking(move || prover.verify(&envelope, &|_| {}))
        .await
        .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?;
    match verdict {
        Ok(v) => Ok(Json(VerifyResponse {
            valid: v.valid,
            reason: v.reason,
        })),
        Err(e) if e.is_client_error() => Err(ApiError::InvalidEnvelope(format!("proof: {e}"))),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

async fn circuit_view(state: &AppState, name: &str) -> Result<CircuitView, ApiError> {
    let circuit =
        proofmill_circuits::lookup(name).map_err(|e| ApiError::NotFound(e.to_string()))?;
    let shape = tokio::task::spawn_blocking(move || circuit.shape())
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
    responses((status = 200, body = CircuitView), (status = 404, body = Problem)))]
pub async fn get_circuit(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<CircuitView>, ApiError> {
    Ok(Json(
        circuit_view(&state, name.trim_start_matches('/')).await?,
    ))
}

/// Devices and what they run.
#[utoipa::path(get, path = "/v1/devices", responses((status = 200, body = DeviceList)))]
pub async fn devices(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<DeviceList>, ApiError> {
    let here = state.scheduler.node().to_owned();
    let mut devices: Vec<DeviceInfo> = state.scheduler.workers().iter().map(|w| w.info()).collect();
    let (registered, now) = state.store.nodes().await?;
    let stale_ms = 3 * state.config.lease().as_millis() as i64;
    let mut nodes = Vec::with_capacity(registered.len());
    for n in registered {
        let this_node = n.node_id == here;
        let live = this_node || now - n.heartbeat_ms <= stale_ms;
        let theirs: Vec<DeviceInfo> = serde_json::from_value(n.devices).unwrap_or_default();
        nodes.push(NodeView {
            node: n.node_id,
            advertise_url: n.advertise_url,
            version: n.version,
            started: rfc3339(n.started_ms),
            last_heartbeat_seconds: (now - n.heartbeat_ms).max(0) as f64 / 1000.0,
            live,
            this_node,
            devices: if this_node {
                devices.len()
            } else {
                theirs.len()
            },
        });
        if live && !this_node {
            devices.extend(theirs);
        }
    }
    Ok(Json(DeviceList { devices, nodes }))
}

/// Device time used: the caller's own, or every tenant's for an admin key.
#[utoipa::path(get, path = "/v1/usage", responses((status = 200, body = UsageList)))]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UsageList>, ApiError> {
    let tenant = (!caller.admin).then_some(caller.tenant.as_str());
    Ok(Json(UsageList {
        usage: state.store.usage(tenant).await?,
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::telemetry::refresh(&state).await;
    let text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", responses((status = 200), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if *state.shutdown.borrow() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    state
        .store
        .status_counts()
        .await
        .map_err(|e| ApiError::Unavailable(format!("job store: {e}")))?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

/// The OpenAPI document.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Any other path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path()))
}

/// A known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_precise_errors() {
        let err =
            parse_json::<JobRequest>(br#"{"type":"prove","circuit":"x","input":{},"extra":1}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("extra"), "{err}");
        let err = parse_json::<JobRequest>(br#"{"type":"nope"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(matches!(
            parse_json::<JobRequest>(b"{"),
            Err(ApiError::MalformedJson(_))
        ));
        let ok = parse_json::<JobRequest>(
            br#"{"type":"aggregate","inputs":[{"job":"a"},{"job":"b"}],"final":true}"#,
        )
        .unwrap();
        assert!(matches!(ok, JobRequest::Aggregate { final_: true, .. }));
    }

    #[test]
    fn canonical_json_ignores_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[{"y":2,"x":1}]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":[{"x":1,"y":2}],"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("status=queued&cursor=%31%32&limit=5").unwrap();
        assert_eq!(q["cursor"], "12");
        assert!(parse_query("a=%zz").is_err());
    }
}
