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
use proofmill_prover::{epoch::SettledState, ProofCircuit, ProofEnvelope, ProverError, Transcript};
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
/// The most inputs (chains) one epoch job may settle.
pub const MAX_EPOCH_INPUTS: usize = proofmill_prover::epoch::MAX_EPOCH_CHAINS;
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
    /// Settle one epoch: one proof per bridged chain (a `rollup/…` batch proof or an aggregate
    /// of a chain's consecutive batches, poseidon transcript), proven against what L1 holds.
    /// The proof's public values are shown as the job's `epoch` once it has succeeded.
    Epoch {
        /// 1 to 16 proofs, one per chain, in any order: earlier jobs of the caller, or
        /// envelopes. (Read one by one, so that an error names the input.)
        #[schema(value_type = Vec<AggregateInput>, min_items = 1, max_items = 16)]
        inputs: Vec<serde_json::Value>,
        /// What L1 holds before the epoch: the last settled epoch, its global exit root and
        /// every registered chain's settled state (the settlement contract's storage).
        #[schema(value_type = SettledStateSchema)]
        state: SettledState,
        /// Final proof (keccak transcript, verifiable by the settlement contract).
        #[serde(default, rename = "final")]
        final_: bool,
        /// As for prove jobs.
        #[serde(default)]
        priority: i32,
    },
    /// Make (or load) a circuit's keys, so that its proofs can be verified and aggregated
    /// here: a catalog name, an `aggregate(…)` or an `epoch(…)` name. Admitted, queued and
    /// counted like any other job.
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
    use proofmill_prover::{epoch::SettledState, Transcript};
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
    pub(super) struct Epoch {
        #[serde(rename = "type")]
        pub _type: String,
        pub inputs: Vec<serde_json::Value>,
        pub state: SettledState,
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
                    "type: expected prove, aggregate, epoch or keygen, got {other}"
                )))
            }
            None if value.is_object() => {
                return Err(D::Error::custom(
                    "missing field `type`: prove, aggregate, epoch or keygen",
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
            "epoch" => {
                let f: fields::Epoch = read(value)?;
                Ok(Self::Epoch {
                    inputs: f.inputs,
                    state: f.state,
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
                "type: unknown variant `{other}`, expected prove, aggregate, epoch or keygen"
            ))),
        }
    }
}

/// One input of an aggregate or epoch job: exactly one of `job` (one of the caller's jobs;
/// the aggregate or epoch waits for it) and `proof` (an envelope).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AggregateInput {
    /// The id of one of the caller's jobs.
    Job(String),
    /// A proof envelope.
    #[schema(value_type = super::verify::ProofEnvelopeSchema)]
    Proof(serde_json::Value),
}

/// What L1 holds between epochs (`proofmill_prover::epoch::SettledState`), as an epoch job's
/// `state`.
#[derive(Debug, ToSchema)]
#[schema(as = SettledState)]
#[allow(dead_code)] // the document's description of proofmill_prover::epoch::SettledState
pub struct SettledStateSchema {
    /// The last settled epoch (0 at genesis); the job proves the next one.
    #[schema(minimum = 0)]
    epoch: u64,
    /// The global exit root over the chains' exit roots, `0x` + 64 hex digits (checked
    /// against them at submission).
    #[schema(pattern = "^0[xX][0-9a-fA-F]{64}$")]
    global_exit_root: String,
    /// Registered chains by chain id (a decimal string, 0 to 255).
    chains: HashMap<String, SettledChainSchema>,
}

/// One registered chain's settled state, in [`SettledStateSchema`].
#[derive(Debug, ToSchema)]
#[schema(as = SettledChain)]
#[allow(dead_code)] // the document's description of proofmill_prover::epoch::SettledChain
pub struct SettledChainSchema {
    /// The chain's settled state root, `0x` + 64 hex digits.
    #[schema(pattern = "^0[xX][0-9a-fA-F]{64}$")]
    state_root: String,
    /// The chain's settled local exit root (its leaf of the global exit tree).
    #[schema(pattern = "^0[xX][0-9a-fA-F]{64}$")]
    exit_root: String,
    /// Value bridged into the chain minus value exited from it, below 2^128: a decimal
    /// string.
    #[schema(pattern = "^[0-9]{1,39}$")]
    balance: String,
}

/// The decoded public values of an epoch proof (`proofmill_prover::epoch::EpochValues`), as
/// an epoch job's `epoch`.
#[derive(Debug, ToSchema)]
#[schema(as = EpochValues)]
#[allow(dead_code)] // the document's description of proofmill_prover::epoch::EpochValues
pub struct EpochValuesSchema {
    /// The epoch number settled.
    epoch: u64,
    /// The global exit root its claims were proven against, `0x` + 64 hex digits.
    previous_global_exit_root: String,
    /// The global exit root after it.
    new_global_exit_root: String,
    /// Per chain, in increasing chain id.
    chains: Vec<ChainValuesSchema>,
}

/// One chain's public values in an epoch proof, in [`EpochValuesSchema`].
#[derive(Debug, ToSchema)]
#[schema(as = ChainValues)]
#[allow(dead_code)] // the document's description of proofmill_prover::epoch::ChainValues
pub struct ChainValuesSchema {
    /// The chain id.
    chain_id: u64,
    /// State root before the epoch.
    old_state_root: String,
    /// State root after it.
    new_state_root: String,
    /// Local exit root after it.
    new_exit_root: String,
    /// Bridge balance before it, a decimal string.
    old_balance: String,
    /// Bridge balance after it, a decimal string.
    new_balance: String,
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
    /// `prove`, `aggregate`, `epoch` or `keygen`.
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// The circuit of its proof or keys: a prove or keygen job's, an aggregate job's
    /// (`aggregate(…)` of its inputs' circuits) when they were all known at submission.
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
    /// Aggregate and epoch jobs: the input jobs it waits for.
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
    /// Final aggregate and epoch jobs: the gas the generated Solidity verifier used to accept
    /// the proof in an EVM (revm, mainnet rules), measured when it was made; absent without
    /// solc on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evm_gas: Option<u64>,
    /// Succeeded epoch jobs: the proof's public values, decoded (what the settlement contract
    /// checks and stores).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<EpochValuesSchema>)]
    pub epoch: Option<serde_json::Value>,
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
            input_jobs: matches!(job.kind, JobKind::Aggregate | JobKind::Epoch)
                .then(|| job.input_jobs.clone()),
            device: job.device.clone(),
            node: job.node.clone(),
            error: job.error.clone(),
            vk_hash: job.vk_hash.clone(),
            evm_gas: job.evm_gas,
            epoch: job.epoch.clone(),
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

/// Submit a prove, aggregate, epoch or keygen job.
#[utoipa::path(post, path = "/v1/jobs", request_body = JobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters: makes the submission safe to retry")),
    responses(
        (status = 202, body = Accepted, description = "accepted and durable"),
        (status = 400, body = Problem, description = "the body is not JSON"),
        (status = 409, body = Problem, description = "an aggregate or epoch input's keys are not on this appliance"),
        (status = 413, body = Problem, description = "the body is over the limit"),
        (status = 422, body = Problem, description = "the request is wrong: shape, circuit, input, priority, inputs, settled state"),
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
            let (inputs, circuits): (Vec<_>, Vec<_>) =
                validate_inputs(state, caller, inputs, Folding::Aggregate)
                    .await?
                    .into_iter()
                    .unzip();
            StoredRequest::Aggregate {
                inputs,
                final_,
                priority,
                circuit: aggregation_circuit(circuits),
            }
        }
        JobRequest::Epoch {
            inputs,
            state: settled,
            final_,
            priority,
        } => {
            check_priority(caller, priority)?;
            check_epoch_inputs(inputs.len())?;
            check_settled_state(&settled)?;
            StoredRequest::Epoch {
                inputs: validate_inputs(state, caller, inputs, Folding::Epoch)
                    .await?
                    .into_iter()
                    .map(|(input, _)| input)
                    .collect(),
                state: settled,
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

/// The number of an epoch's inputs: one per chain, 1 to [`MAX_EPOCH_INPUTS`].
fn check_epoch_inputs(count: usize) -> Result<(), ApiError> {
    if count == 0 || count > MAX_EPOCH_INPUTS {
        return Err(ApiError::InvalidRequest(format!(
            "inputs has {count} entries; an epoch job settles 1 to {MAX_EPOCH_INPUTS} proofs, one per chain"
        )));
    }
    Ok(())
}

/// An epoch's settled state is consistent: chain ids in range, the global exit root the
/// chains' exit roots give.
fn check_settled_state(settled: &SettledState) -> Result<(), ApiError> {
    settled.validate().map_err(|e| match e {
        // "settled state: …" or "settled state.FIELD: …" becomes "state: …" or "state.FIELD: …".
        ProverError::Epoch(m) => ApiError::InvalidRequest(match m.strip_prefix("settled state") {
            Some(rest) => format!("state{rest}"),
            None => format!("state: {m}"),
        }),
        e => ApiError::InvalidRequest(format!("state: {e}")),
    })
}

/// What a job does with its input proofs, for the words of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Folding {
    /// An aggregate job folds them.
    Aggregate,
    /// An epoch job settles them.
    Epoch,
}

impl Folding {
    /// What happens to an input: "aggregated" or "settled".
    fn verb(self) -> &'static str {
        match self {
            Self::Aggregate => "aggregated",
            Self::Epoch => "settled in an epoch",
        }
    }

    /// The job, as a noun.
    fn job(self) -> &'static str {
        match self {
            Self::Aggregate => "aggregate",
            Self::Epoch => "epoch",
        }
    }
}

/// Every input of an aggregate or epoch, read one by one so that an error names it.
async fn validate_inputs(
    state: &AppState,
    caller: &Caller,
    inputs: Vec<serde_json::Value>,
    folding: Folding,
) -> Result<Vec<(StoredInput, Option<String>)>, ApiError> {
    let mut stored = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let input: AggregateInput = serde_json::from_value(input).map_err(|e| {
            ApiError::InvalidRequest(format!(
                "inputs[{i}]: give exactly one of \"job\" (a job id) and \"proof\" (an envelope): {e}"
            ))
        })?;
        stored.push(validate_input(state, caller, i, input, folding).await?);
    }
    Ok(stored)
}

/// The circuit of an aggregation of proofs of `inputs`' circuits, when all are known (and
/// the name is within the limits; the job itself then fails saying why, as before).
fn aggregation_circuit(inputs: Vec<Option<String>>) -> Option<String> {
    let children = inputs
        .into_iter()
        .map(|name| ProofCircuit::parse(&name?).ok())
        .collect::<Option<Vec<_>>>()?;
    let name = ProofCircuit::Aggregate(children).name();
    ProofCircuit::parse(&name).is_ok().then_some(name)
}

/// One aggregate or epoch input: the caller's job that makes a poseidon proof (not an
/// epoch's), or an envelope of a poseidon proof (not an epoch's) whose circuit this
/// appliance has keys for when it is an aggregation (an input never starts a keygen: that is
/// a keygen job's work). With it, the circuit of its proof when that is known.
async fn validate_input(
    state: &AppState,
    caller: &Caller,
    i: usize,
    input: AggregateInput,
    folding: Folding,
) -> Result<(StoredInput, Option<String>), ApiError> {
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
            if dep.kind == JobKind::Epoch {
                return Err(ApiError::InvalidRequest(format!(
                    "inputs[{i}].job: job {id} is an epoch job; an epoch proof is settled on Ethereum, it cannot be {} again",
                    folding.verb()
                )));
            }
            if dep.transcript != Some(Transcript::Poseidon) {
                return Err(ApiError::InvalidRequest(format!(
                    "inputs[{i}].job: job {id} makes no poseidon-transcript proof ({} job{}); only poseidon proofs can be {}",
                    dep.kind,
                    dep.transcript.map(|t| format!(", {t} transcript")).unwrap_or_default(),
                    folding.verb()
                )));
            }
            Ok((StoredInput::Job(id), dep.circuit))
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
                    "the {} transcript cannot be {}; only poseidon proofs can",
                    envelope.transcript,
                    folding.verb()
                )));
            }
            let circuit = circuit_name(&envelope.circuit).map_err(|e| match e {
                ApiError::UnknownCircuit(m) | ApiError::InvalidCircuitName(m) => {
                    bad(&format!("circuit: {m}"))
                }
                other => other,
            })?;
            if matches!(circuit, ProofCircuit::Epoch(_)) {
                return Err(bad(&format!(
                    "circuit: {} is an epoch; an epoch proof is settled on Ethereum, it cannot be {} again",
                    envelope.circuit,
                    folding.verb()
                )));
            }
            if circuit.is_recursive() && state.prover.key_store().cached(&circuit.name()).is_empty()
            {
                return Err(ApiError::KeysMissing(format!(
                    "inputs[{i}].proof: no keys for {} on this appliance: submit a keygen job for it first ({{\"type\":\"keygen\",\"circuit\":\"{}\"}}), then this {}",
                    circuit.name(),
                    circuit.name(),
                    folding.job()
                )));
            }
            Ok((StoredInput::Proof(proof), Some(circuit.name())))
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
    fn an_aggregate_is_named_by_its_inputs_circuits() {
        let d = "transfer_batch/d16-b8";
        let name = |names: &[Option<&str>]| {
            aggregation_circuit(names.iter().map(|n| n.map(str::to_owned)).collect())
        };
        assert_eq!(
            name(&[Some(d), Some(d)]).as_deref(),
            Some("aggregate(transfer_batch/d16-b8,transfer_batch/d16-b8)")
        );
        let inner = name(&[Some(d), Some(d)]).unwrap();
        assert_eq!(
            name(&[Some(&inner), Some(d)]),
            Some(format!("aggregate({inner},{d})"))
        );
        // An input whose circuit is unknown (an aggregate job from before names were kept),
        // or a name beyond the limits: no name, sized by its input jobs as before.
        assert_eq!(name(&[Some(d), None]), None);
        assert_eq!(name(&[Some(d), Some("no/such-circuit")]), None);
        let mut deep = d.to_owned();
        for _ in 0..64 {
            deep = format!("aggregate({deep},{d})");
        }
        assert_eq!(name(&[Some(&deep), Some(d)]), None);
    }

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

    /// A consistent settled state of chains 1 and 2, as JSON.
    fn settled_json() -> serde_json::Value {
        use proofmill_circuits::halo2_base::halo2_proofs::halo2curves::bn256::Fr;
        let state = SettledState::genesis([
            (1, Fr::from(11), Fr::from(12), 1_000),
            (2, Fr::from(21), Fr::from(22), 0),
        ]);
        serde_json::to_value(&state).unwrap()
    }

    fn epoch_body(state: serde_json::Value, extra: Option<(&str, serde_json::Value)>) -> Vec<u8> {
        let mut body = serde_json::json!({
            "type": "epoch",
            "inputs": [{"job": "job_a"}, {"proof": {"format": "proofmill-proof/1"}}],
            "state": state,
        });
        if let Some((key, value)) = extra {
            body[key] = value;
        }
        serde_json::to_vec(&body).unwrap()
    }

    #[test]
    fn epoch_requests_parse_and_name_what_is_wrong() {
        let ok = parse_json::<JobRequest>(&epoch_body(settled_json(), None)).unwrap();
        let JobRequest::Epoch {
            inputs,
            state,
            final_,
            priority,
        } = ok
        else {
            panic!("not an epoch request: {ok:?}")
        };
        assert_eq!((inputs.len(), final_, priority), (2, false, 0));
        assert_eq!(state.chains.len(), 2);
        assert_eq!(state.chains[&1].balance, 1_000);
        check_settled_state(&state).unwrap();
        let ok = parse_json::<JobRequest>(&epoch_body(
            settled_json(),
            Some(("final", serde_json::Value::Bool(true))),
        ))
        .unwrap();
        assert!(matches!(ok, JobRequest::Epoch { final_: true, .. }));

        // A bad value deep in the state names its path.
        let mut state = settled_json();
        state["chains"]["1"]["balance"] = "lots".into();
        let err = parse_json::<JobRequest>(&epoch_body(state, None)).unwrap_err();
        assert!(matches!(err, ApiError::InvalidRequest(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("state.chains.1.balance: "), "{err}");
        assert!(err.contains("lots"), "{err}");
        let mut state = settled_json();
        state["global_exit_root"] = "0x12".into();
        let err = parse_json::<JobRequest>(&epoch_body(state, None))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("state.global_exit_root: "), "{err}");
        let mut state = settled_json();
        state["chains"]["two"] = state["chains"]["2"].clone();
        let err = parse_json::<JobRequest>(&epoch_body(state, None))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("state.chains"), "{err}");
        let err = parse_json::<JobRequest>(&epoch_body(serde_json::Value::Null, None))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("state: "), "{err}");
        let err = parse_json::<JobRequest>(br#"{"type":"epoch","inputs":[{"job":"a"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("state"), "{err}");

        // Unknown fields are refused, at the top and inside the state.
        let err = parse_json::<JobRequest>(&epoch_body(
            settled_json(),
            Some(("chains", serde_json::json!([1]))),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `chains`"), "{err}");
        let mut state = settled_json();
        state["chains"]["2"]["balanse"] = "1".into();
        let err = parse_json::<JobRequest>(&epoch_body(state, None))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("state.chains.2") && err.contains("unknown field `balanse`"),
            "{err}"
        );
        let mut state = settled_json();
        state["epochs"] = 3.into();
        let err = parse_json::<JobRequest>(&epoch_body(state, None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `epochs`"), "{err}");

        // A state of the right shape that is inconsistent is refused at submission.
        let mut state = settled_json();
        state["chains"]["2"]["exit_root"] = state["chains"]["1"]["exit_root"].clone();
        let Ok(JobRequest::Epoch { state, .. }) =
            parse_json::<JobRequest>(&epoch_body(state, None))
        else {
            panic!("the shape is right")
        };
        let err = check_settled_state(&state).unwrap_err();
        assert!(matches!(err, ApiError::InvalidRequest(_)), "{err:?}");
        let err = err.to_string();
        assert!(err.starts_with("state: global_exit_root is "), "{err}");
        let mut state = settled_json();
        state["chains"]["300"] = state["chains"]["2"].clone();
        let Ok(JobRequest::Epoch { state, .. }) =
            parse_json::<JobRequest>(&epoch_body(state, None))
        else {
            panic!("the shape is right")
        };
        let err = check_settled_state(&state).unwrap_err().to_string();
        assert!(
            err.starts_with("state: chain id 300 is out of range"),
            "{err}"
        );
        let mut state = settled_json();
        state["epoch"] = u64::MAX.into();
        let Ok(JobRequest::Epoch { state, .. }) =
            parse_json::<JobRequest>(&epoch_body(state, None))
        else {
            panic!("the shape is right")
        };
        let err = check_settled_state(&state).unwrap_err().to_string();
        assert!(err.starts_with("state.epoch: "), "{err}");

        // One to 16 inputs, one per chain.
        for (count, ok) in [(0, false), (1, true), (16, true), (17, false)] {
            match check_epoch_inputs(count) {
                Ok(()) => assert!(ok, "{count} inputs accepted"),
                Err(e) => {
                    assert!(!ok, "{count} inputs refused: {e}");
                    assert!(matches!(e, ApiError::InvalidRequest(_)), "{e:?}");
                    let e = e.to_string();
                    assert!(
                        e.contains(&format!("inputs has {count} entries")) && e.contains("1 to 16"),
                        "{e}"
                    );
                }
            }
        }
        let err = parse_json::<JobRequest>(br#"{"type":"epoc"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("prove, aggregate, epoch or keygen"), "{err}");
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
