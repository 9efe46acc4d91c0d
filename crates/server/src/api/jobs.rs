//! `POST /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/proof`, `DELETE /v1/jobs/{id}`
//! and `GET /v1/jobs`: what a job request may be, how it is validated before it is accepted,
//! and how a job is shown.

use std::collections::HashMap;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use proofmill_prover::{ProofCircuit, ProofEnvelope, Transcript};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{owned_job, parse_json, read_body, rfc3339};
use crate::{
    auth::Caller,
    error::{ApiError, Problem},
    job::{AttemptOutcome, JobKind, JobStage, JobStatus, StoredInput, StoredRequest},
    store::{now_ms, AttemptRecord, Insert, JobRecord, NewJob},
    AppState,
};

/// The most inputs one aggregate job may fold.
pub const MAX_AGGREGATE_INPUTS: usize = 64;
/// The longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `POST /v1/jobs` body. Read by [`JobRequest::from_value`]-style parsing of its variant (see
/// the `Deserialize` impl) so that an error names the field it is about.
#[derive(Debug, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    /// Prove one batch.
    Prove {
        /// Catalog name, e.g. `transfer_batch/d16-b8` (`GET /v1/circuits` lists them).
        #[schema(min_length = 1, max_length = 256)]
        circuit: String,
        /// The batch (see `proofmill example-batch`), validated by the circuit's witness
        /// builder before the job is accepted.
        #[schema(value_type = Object)]
        input: serde_json::Value,
        /// Order among the caller's own jobs, higher first (default 0); at most the tenant's
        /// `max_priority` in absolute value. Tenants share devices fairly whatever this is.
        #[serde(default)]
        priority: i32,
        /// `poseidon` (default, aggregatable) or `keccak` (EVM-verifiable).
        #[serde(default)]
        #[schema(value_type = String, example = "poseidon")]
        transcript: Transcript,
    },
    /// Fold proofs into one.
    Aggregate {
        /// 2 to 64 proofs, in rollup order: earlier jobs of the caller, or envelopes. (Read
        /// one by one, so that an error names the input.)
        #[schema(value_type = Vec<AggregateInput>, min_items = 2, max_items = 64)]
        inputs: Vec<serde_json::Value>,
        /// Final proof (keccak transcript, verifiable on Ethereum).
        #[serde(default, rename = "final")]
        final_: bool,
        /// As for prove jobs.
        #[serde(default)]
        priority: i32,
    },
    /// Make (or load) a circuit's keys, so that its proofs can be verified and aggregated
    /// here: a catalog name or an `aggregate(…)` name. Admitted, queued and counted like any
    /// other job.
    Keygen {
        /// The circuit.
        #[schema(min_length = 1, max_length = 16384)]
        circuit: String,
        /// As for prove jobs.
        #[serde(default)]
        priority: i32,
    },
}

/// The fields of each variant, read with their paths tracked (serde loses the path inside an
/// internally tagged enum).
mod fields {
    use proofmill_prover::Transcript;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Prove {
        #[serde(rename = "type")]
        pub _type: String,
        pub circuit: String,
        pub input: serde_json::Value,
        #[serde(default)]
        pub priority: i32,
        #[serde(default)]
        pub transcript: Transcript,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Aggregate {
        #[serde(rename = "type")]
        pub _type: String,
        pub inputs: Vec<serde_json::Value>,
        #[serde(default, rename = "final")]
        pub final_: bool,
        #[serde(default)]
        pub priority: i32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Keygen {
        #[serde(rename = "type")]
        pub _type: String,
        pub circuit: String,
        #[serde(default)]
        pub priority: i32,
    }
}

impl<'de> Deserialize<'de> for JobRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        fn read<T: serde::de::DeserializeOwned, E: Error>(
            value: serde_json::Value,
        ) -> Result<T, E> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                E::custom(format!("{path}: {}", e.into_inner()))
            })
        }
        let kind = match value.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "type: expected prove, aggregate or keygen, got {other}"
                )))
            }
            None if value.is_object() => {
                return Err(D::Error::custom(
                    "missing field `type`: prove, aggregate or keygen",
                ))
            }
            None => {
                return Err(D::Error::custom(
                    "a job request is a JSON object with a \"type\"",
                ))
            }
        };
        match kind.as_str() {
            "prove" => {
                let f: fields::Prove = read(value)?;
                Ok(Self::Prove {
                    circuit: f.circuit,
                    input: f.input,
                    priority: f.priority,
                    transcript: f.transcript,
                })
            }
            "aggregate" => {
                let f: fields::Aggregate = read(value)?;
                Ok(Self::Aggregate {
                    inputs: f.inputs,
                    final_: f.final_,
                    priority: f.priority,
                })
            }
            "keygen" => {
                let f: fields::Keygen = read(value)?;
                Ok(Self::Keygen {
                    circuit: f.circuit,
                    priority: f.priority,
                })
            }
            other => Err(D::Error::custom(format!(
                "type: unknown variant `{other}`, expected prove, aggregate or keygen"
            ))),
        }
    }
}

/// One input of an aggregate job: exactly one of `job` (one of the caller's jobs; the
/// aggregate waits for it) and `proof` (an envelope).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AggregateInput {
    /// The id of one of the caller's jobs.
    Job(String),
    /// A proof envelope.
    #[schema(value_type = super::verify::ProofEnvelopeSchema)]
    Proof(serde_json::Value),
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
    /// The tenant it belongs to.
    pub tenant: String,
    /// `prove`, `aggregate` or `keygen`.
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// Prove and keygen jobs: the circuit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// The stage while running.
    pub stage: Option<JobStage>,
    /// Rough completed fraction, 0..1.
    pub progress: f64,
    /// Priority.
    pub priority: i64,
    /// Transcript of the proof (`poseidon` or `keccak`; absent for keygen jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Aggregate jobs: the input jobs it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_jobs: Option<Vec<String>>,
    /// The device it runs or ran on.
    pub device: Option<String>,
    /// The node that device belongs to.
    pub node: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Once succeeded: the verifying key hash of its proof (or, for a keygen job, of the
    /// keys made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vk_hash: Option<String>,
    /// Times it was claimed (every claim is a numbered attempt).
    pub attempts: i64,
    /// Attempts that failed for a retryable reason; `max_failures` of them dead-letter it.
    pub failures: i64,
    /// Attempts that died without an outcome (lease expired, node restarted);
    /// `max_deaths` of them dead-letter it.
    pub deaths: i64,
    /// It was given up after too many failures or deaths; `history` says how.
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
    /// How it ended; null while it runs.
    pub outcome: Option<AttemptOutcome>,
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
            outcome: a.outcome,
            detail: a.detail.clone(),
        }
    }
}

impl JobView {
    /// The view of a stored job.
    pub fn of(job: &JobRecord) -> Self {
        let now = now_ms();
        let secs = |a: i64, b: i64| (b - a).max(0) as f64 / 1000.0;
        let queued_until = if job.status == JobStatus::Queued {
            now
        } else {
            job.started_ms.or(job.finished_ms).unwrap_or(now)
        };
        Self {
            id: job.id.clone(),
            tenant: job.tenant.clone(),
            kind: job.kind,
            circuit: job.circuit.clone(),
            status: job.status,
            stage: job.stage,
            progress: job.progress,
            priority: job.priority,
            transcript: job.transcript.map(|t| t.to_string()),
            input_jobs: (job.kind == JobKind::Aggregate).then(|| job.input_jobs.clone()),
            device: job.device.clone(),
            node: job.node.clone(),
            error: job.error.clone(),
            vk_hash: job.vk_hash.clone(),
            attempts: job.attempts,
            failures: job.failures,
            deaths: job.deaths,
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

/// Submit a prove, aggregate or keygen job.
#[utoipa::path(post, path = "/v1/jobs", request_body = JobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: makes the submission safe to retry")),
    responses(
        (status = 202, body = Accepted, description = "accepted and durable"),
        (status = 400, body = Problem, description = "the body is not JSON"),
        (status = 409, body = Problem, description = "an aggregate input's keys are not on this appliance"),
        (status = 413, body = Problem, description = "the body is over the limit"),
        (status = 422, body = Problem, description = "the request is wrong: shape, circuit, input, priority, inputs"),
        (status = 429, body = Problem, description = "the tenant has its maximum of queued and running jobs")
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
                .filter(|k| {
                    !k.is_empty()
                        && k.len() <= MAX_IDEMPOTENCY_KEY
                        && k.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ))
                })
        })
        .transpose()?;
    let request: JobRequest = parse_json(&bytes)?;
    drop(bytes);
    let job = validate(&state, &caller, request).await?;
    let stored = serde_json::to_value(&job.request)
        .map_err(|e| ApiError::Internal(format!("a validated request does not serialize: {e}")))?;
    let hash = hex::encode(Sha256::digest(canonical(&stored).as_bytes()));
    drop(stored);
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
        metrics::counter!("proofmill_jobs_submitted_total", "type" => job.kind.as_str())
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

/// A priority within the caller's bound.
fn check_priority(caller: &Caller, priority: i32) -> Result<(), ApiError> {
    if priority.unsigned_abs() > caller.max_priority.unsigned_abs() {
        return Err(ApiError::InvalidRequest(format!(
            "priority {priority} is outside -{max}..={max}, tenant {}'s range (max_priority, set by the operator); priority orders a tenant's own jobs",
            caller.tenant,
            max = caller.max_priority
        )));
    }
    Ok(())
}

/// A circuit name parsed with its limits: an error is a 422 naming the limit or the part.
fn circuit_name(name: &str) -> Result<ProofCircuit, ApiError> {
    ProofCircuit::parse(name).map_err(|e| match e {
        proofmill_prover::CircuitNameError::Unknown(e) => ApiError::UnknownCircuit(e.to_string()),
        e => ApiError::InvalidCircuitName(e.to_string()),
    })
}

/// Checks everything about a job a client can get wrong, and normalizes it for storage.
async fn validate(
    state: &AppState,
    caller: &Caller,
    request: JobRequest,
) -> Result<NewJob, ApiError> {
    let stored = match request {
        JobRequest::Prove {
            circuit,
            input,
            priority,
            transcript,
        } => {
            check_priority(caller, priority)?;
            let catalog = proofmill_circuits::lookup(&circuit)
                .map_err(|e| ApiError::UnknownCircuit(e.to_string()))?;
            // Parsing a batch is CPU work proportional to its size: off the runtime.
            let input =
                tokio::task::spawn_blocking(move || catalog.parse_input(&input).map(|_| input))
                    .await
                    .map_err(|e| ApiError::Internal(format!("input validation task: {e}")))?
                    .map_err(|e| ApiError::InvalidInput(format!("input: {e}")))?;
            StoredRequest::Prove {
                circuit,
                input,
                priority,
                transcript,
            }
        }
        JobRequest::Aggregate {
            inputs,
            final_,
            priority,
        } => {
            check_priority(caller, priority)?;
            if inputs.len() < 2 || inputs.len() > MAX_AGGREGATE_INPUTS {
                return Err(ApiError::InvalidRequest(format!(
                    "inputs has {} entries; an aggregate job folds 2 to {MAX_AGGREGATE_INPUTS} proofs",
                    inputs.len()
                )));
            }
            let mut stored = Vec::with_capacity(inputs.len());
            for (i, input) in inputs.into_iter().enumerate() {
                let input: AggregateInput = serde_json::from_value(input).map_err(|e| {
                    ApiError::InvalidRequest(format!(
                        "inputs[{i}]: give exactly one of \"job\" (a job id) and \"proof\" (an envelope): {e}"
                    ))
                })?;
                stored.push(validate_input(state, caller, i, input).await?);
            }
            StoredRequest::Aggregate {
                inputs: stored,
                final_,
                priority,
            }
        }
        JobRequest::Keygen { circuit, priority } => {
            check_priority(caller, priority)?;
            let parsed = circuit_name(&circuit)?;
            StoredRequest::Keygen {
                circuit: parsed.name(),
                priority,
            }
        }
    };
    Ok(NewJob {
        id: new_job_id(),
        tenant: caller.tenant.clone(),
        request: stored,
    })
}

/// One aggregate input: the caller's job that makes a poseidon proof, or an envelope of a
/// poseidon proof whose circuit this appliance has keys for when it is an aggregation (an
/// input never starts a keygen: that is a keygen job's work).
async fn validate_input(
    state: &AppState,
    caller: &Caller,
    i: usize,
    input: AggregateInput,
) -> Result<StoredInput, ApiError> {
    match input {
        AggregateInput::Job(id) => {
            let Some(dep) = state
                .store
                .get(&id)
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
            if dep.transcript != Some(Transcript::Poseidon) {
                return Err(ApiError::InvalidRequest(format!(
                    "inputs[{i}].job: job {id} makes no poseidon-transcript proof ({} job{}); only poseidon proofs can be aggregated",
                    dep.kind,
                    dep.transcript.map(|t| format!(", {t} transcript")).unwrap_or_default()
                )));
            }
            Ok(StoredInput::Job(id))
        }
        AggregateInput::Proof(proof) => {
            let bad = |e: &dyn std::fmt::Display| {
                ApiError::InvalidEnvelope(format!("inputs[{i}].proof: {e}"))
            };
            let envelope = ProofEnvelope::from_value(proof.clone()).map_err(|e| bad(&e))?;
            envelope.proof_bytes().map_err(|e| bad(&e))?;
            envelope.instance_values().map_err(|e| bad(&e))?;
            if envelope.transcript != Transcript::Poseidon {
                return Err(bad(&format!(
                    "the {} transcript cannot be aggregated; only poseidon proofs can",
                    envelope.transcript
                )));
            }
            let circuit = circuit_name(&envelope.circuit).map_err(|e| match e {
                ApiError::UnknownCircuit(m) | ApiError::InvalidCircuitName(m) => {
                    bad(&format!("circuit: {m}"))
                }
                other => other,
            })?;
            if matches!(circuit, ProofCircuit::Aggregate(_))
                && state.prover.key_store().cached(&circuit.name()).is_empty()
            {
                return Err(ApiError::KeysMissing(format!(
                    "inputs[{i}].proof: no keys for {} on this appliance: submit a keygen job for it first ({{\"type\":\"keygen\",\"circuit\":\"{}\"}}), then this aggregate",
                    circuit.name(),
                    circuit.name()
                )));
            }
            Ok(StoredInput::Proof(proof))
        }
    }
}

/// A job's status.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = Problem, description = "no such job of the caller")))]
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
    responses((status = 200, body = super::verify::ProofEnvelopeSchema, description = "The proof envelope (proofmill-proof/1)"),
        (status = 404, body = Problem, description = "no such job of the caller"),
        (status = 409, body = Problem, description = "the job has no proof (yet)")))]
pub async fn get_proof(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&state, &caller, &id).await?;
    match (job.status, &job.proof_location) {
        (JobStatus::Succeeded, Some(location)) => {
            let text = state
                .artifacts
                .get(location)
                .await
                .map_err(|e| ApiError::Internal(format!("reading the proof: {e}")))?;
            Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
        }
        (JobStatus::Succeeded, None) => Err(ApiError::Conflict(format!(
            "job {id} is a {} job: it made keys (vk_hash {}), not a proof",
            job.kind,
            job.vk_hash.unwrap_or_default()
        ))),
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
        (status = 404, body = Problem, description = "no such job of the caller"),
        (status = 409, body = Problem, description = "the job already succeeded or failed")))]
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

/// The largest page of `GET /v1/jobs`.
pub const MAX_LIST_LIMIT: u32 = 500;

/// The caller's jobs, newest first (an admin key may ask for another tenant's, or every tenant's).
#[utoipa::path(get, path = "/v1/jobs",
    params(("status" = Option<JobStatus>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1..=500, default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "next_cursor of the previous page"),
        ("tenant" = Option<String>, Query, description = "admin keys only: another tenant's jobs, or `*` for every tenant's")),
    responses((status = 200, body = JobList), (status = 403, body = Problem, description = "`tenant` with a key that is not an admin key"),
        (status = 422, body = Problem, description = "a bad query parameter")))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<JobList>, ApiError> {
    let params = query_params(query.as_deref(), &["status", "limit", "cursor", "tenant"])?;
    let status = params
        .get("status")
        .map(|s| {
            s.parse::<JobStatus>()
                .map_err(|e| ApiError::InvalidRequest(e.to_string()))
        })
        .transpose()?;
    let limit = match params.get("limit") {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("limit {l:?}: expected 1 to {MAX_LIST_LIMIT}"))
            })?,
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
    let jobs = match params.get("tenant").map(String::as_str) {
        None => {
            state
                .store
                .list(&caller.tenant, status, limit, cursor)
                .await?
        }
        Some(_) if !caller.admin => {
            return Err(ApiError::Forbidden(format!(
                "the tenant parameter needs an admin key; tenant {}'s key is not one",
                caller.tenant
            )))
        }
        Some("*") => state.store.list_all(status, limit, cursor).await?,
        Some(tenant) => state.store.list(tenant, status, limit, cursor).await?,
    };
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

/// A query string's pairs, percent-decoded; a key given twice is an error.
/// A query string's pairs, refusing a key not in `allowed` (naming the ones that are).
pub(crate) fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let params = query.map(parse_query).transpose()?.unwrap_or_default();
    if let Some(key) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::InvalidRequest(format!(
            "unknown query parameter {key:?}: expected {}",
            allowed.join(", ")
        )));
    }
    Ok(params)
}

fn parse_query(query: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?;
        if out.insert(key.clone(), decode(v)?).is_some() {
            return Err(ApiError::InvalidRequest(format!(
                "query parameter {key:?} given twice"
            )));
        }
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
        for bad in [r#"{"job":"a","proof":{}}"#, "{}", r#"{"jobs":"a"}"#, "7"] {
            let input: serde_json::Value = serde_json::from_str(bad).unwrap();
            assert!(
                serde_json::from_value::<AggregateInput>(input).is_err(),
                "{bad}"
            );
        }
        let err = parse_json::<JobRequest>(
            br#"{"type":"prove","circuit":"x","input":{},"priority":1e400}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("number out of range"), "{err}");
        let err = parse_json::<JobRequest>(
            br#"{"type":"prove","circuit":"x","input":{},"priority":2147483648}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("priority"), "{err}");
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
        assert!(parse_query("limit=1&limit=2").is_err());
    }
}
