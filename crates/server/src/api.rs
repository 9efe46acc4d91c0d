//! The HTTP API (docs/api.md): request validation, the JSON shapes, and the mapping of every
//! outcome to a status code. Handlers validate everything a client can get wrong before a job
//! is accepted, store the job, and leave the rest to the scheduler. Its parts:
//!
//! - [`jobs`]: submitting, reading, listing and cancelling jobs, and their proofs;
//! - [`events`]: a job's server-sent events;
//! - [`verify`]: `POST /v1/verify`;
//! - [`catalog`]: the circuit catalog and example inputs;
//! - [`stats`]: the queue, throughput and problems of the last hours;
//! - [`console`]: the operator console's page, script and style (embedded);
//! - [`ops`]: devices, usage, metrics, health, the OpenAPI document and the fallbacks.
//!
//! This module holds what they share: reading a bounded body, parsing JSON with precise
//! errors, and the OpenAPI description.

pub mod catalog;
pub mod console;
pub mod events;
pub mod jobs;
pub mod ops;
pub mod stats;
pub mod verify;

use std::time::Duration;

use axum::{
    body::Body,
    http::{header, HeaderMap},
};
use futures_util::StreamExt;
use utoipa::{
    openapi::{
        content::Content,
        response::{Response as OaResponse, ResponseBuilder},
        OpenApi as OaDoc, RefOr,
    },
    Modify, OpenApi,
};

use crate::{auth::Caller, error::ApiError, store::JobRecord, AppState};

/// The OpenAPI description, generated from the handlers; [`ProblemAnswers`] adds the error
/// answers every route can give.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "proofmill",
        description = "halo2 KZG (BN254, SHPLONK) prover appliance"
    ),
    paths(
        jobs::submit_job,
        jobs::get_job,
        jobs::get_proof,
        jobs::cancel_job,
        jobs::list_jobs,
        events::job_events,
        verify::verify,
        catalog::list_circuits,
        catalog::get_circuit,
        catalog::example,
        stats::stats,
        ops::devices,
        ops::usage,
        ops::metrics,
        ops::healthz,
        ops::readyz
    ),
    components(schemas(
        jobs::JobRequest,
        jobs::AggregateInput,
        jobs::SettledStateSchema,
        jobs::SettledChainSchema,
        jobs::EpochValuesSchema,
        jobs::ChainValuesSchema,
        jobs::Accepted,
        jobs::JobView,
        jobs::AttemptView,
        jobs::Timings,
        jobs::JobList,
        verify::VerifyRequest,
        verify::VerifyResponse,
        verify::ProofEnvelopeSchema,
        verify::SrsLabelSchema,
        catalog::CircuitView,
        catalog::MemoryView,
        ops::DeviceList,
        ops::NodeView,
        crate::devices::DeviceInfo,
        crate::devices::TelemetrySample,
        stats::Stats,
        stats::TenantQueue,
        stats::HourlyThroughput,
        stats::Totals,
        stats::FailedAttempt,
        ops::UsageList,
        crate::store::UsageRow,
        crate::error::Problem,
        crate::job::JobStatus,
        crate::job::JobKind,
        crate::job::JobStage,
        crate::job::AttemptOutcome
    )),
    modifiers(&ProblemAnswers)
)]
pub struct ApiDoc;

/// Every error answer is `application/problem+json` with a [`crate::error::Problem`] body,
/// and every route can answer 401 (keys configured), 429 (failed authentications), 500 and
/// 503 (job database unreachable): the document says so for each operation.
struct ProblemAnswers;

impl Modify for ProblemAnswers {
    fn modify(&self, doc: &mut OaDoc) {
        let problem = || {
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
        };
        let answer = |description: &str| -> RefOr<OaResponse> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", problem())
                    .build(),
            )
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
            ];
            for op in operations.into_iter().flatten() {
                for response in op.responses.responses.values_mut() {
                    // Declared error answers carry the Problem body as problem+json.
                    if let RefOr::T(r) = response {
                        if let Some(json) = r.content.shift_remove("application/json") {
                            let is_problem = matches!(
                                &json.schema,
                                Some(RefOr::Ref(reference)) if reference.ref_location.ends_with("/Problem")
                            );
                            if is_problem {
                                r.content.insert("application/problem+json".into(), json);
                            } else {
                                r.content.insert("application/json".into(), json);
                            }
                        }
                    }
                }
                for (status, description) in [
                    ("401", "No API key, an unknown one, or a malformed Authorization header"),
                    ("429", "Too many requests of this kind from this caller (the detail says which limit)"),
                    ("500", "The appliance failed; its log has the cause"),
                    ("503", "The job database is unreachable, or the server is shutting down"),
                ] {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| answer(description));
                }
            }
        }
    }
}

/// Reads a body up to `limit` bytes.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
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

/// Parses JSON: a syntax error (or nesting deeper than serde_json's limit of 128) is a 400,
/// a shape error a 422 naming the field, both with serde's message.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("the body is not JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::InvalidRequest(inner.to_string())
        } else {
            ApiError::InvalidRequest(format!("{path}: {inner}"))
        }
    })
}

/// RFC 3339 of a Unix-ms time.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The caller's job `id`; another tenant's job is as unknown as a missing one.
pub(crate) async fn owned_job(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<JobRecord, ApiError> {
    match state.store.get(id).await? {
        Some(job) if job.tenant == caller.tenant => Ok(job),
        _ => Err(ApiError::NotFound(format!("no job {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answer_is_documented_as_problem_json() {
        let doc = ApiDoc::openapi();
        let text = serde_json::to_string(&doc).unwrap();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("get", &item.get),
                ("post", &item.post),
                ("delete", &item.delete),
            ] {
                let Some(op) = op else { continue };
                for status in ["401", "500", "503"] {
                    assert!(
                        op.responses.responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
                for (status, response) in &op.responses.responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let RefOr::T(r) = response else { continue };
                        assert!(
                            r.content.contains_key("application/problem+json")
                                && !r.content.contains_key("application/json"),
                            "{method} {path} {status}: {:?}",
                            r.content.keys().collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
        assert!(text.contains("application/problem+json"));
    }

    #[test]
    fn the_document_describes_epoch_jobs() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let request = serde_json::to_string(&schemas["JobRequest"]).unwrap();
        assert!(request.contains(r#""epoch""#), "{request}");
        assert!(
            request.contains("#/components/schemas/SettledState"),
            "{request}"
        );
        let state = &schemas["SettledState"];
        assert_eq!(
            state["properties"]["chains"]["additionalProperties"]["$ref"],
            "#/components/schemas/SettledChain",
            "{state}"
        );
        let kinds = &schemas["JobKind"]["enum"];
        assert!(
            kinds.as_array().unwrap().contains(&"epoch".into()),
            "{kinds}"
        );
        let view = &schemas["JobView"]["properties"];
        assert!(
            view["evm_gas"].is_object() && view["epoch"].is_object(),
            "{view}"
        );
        assert!(schemas["EpochValues"]["properties"]["chains"].is_object());
    }
}
