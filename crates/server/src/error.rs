//! The one error type of the HTTP layer: every failure a handler can return, mapped to an
//! RFC 9457 problem+json response. Client mistakes get a precise 4xx naming what to fix;
//! the appliance's own failures get a generic 500 (the real cause goes to the log), and a
//! database that cannot be reached a 503 worth retrying.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error returned by an API handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("{0}")]
    MalformedJson(String),
    /// The request is JSON but not of the expected shape, or a parameter is out of range.
    #[error("{0}")]
    InvalidRequest(String),
    /// No catalog circuit has this name.
    #[error("{0}")]
    UnknownCircuit(String),
    /// The prove job's input is not a valid batch (the witness builder's message).
    #[error("{0}")]
    InvalidInput(String),
    /// A proof envelope is unusable.
    #[error("{0}")]
    InvalidEnvelope(String),
    /// The route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// No such resource for this caller.
    #[error("{0}")]
    NotFound(String),
    /// The resource is not in a state that allows this (e.g. proof of an unfinished job).
    #[error("{0}")]
    Conflict(String),
    /// An `Idempotency-Key` was reused with a different request.
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// The body exceeds the limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit that applied.
        limit: usize,
    },
    /// The tenant has too many jobs outstanding.
    #[error("{0}")]
    TooManyJobs(String),
    /// A circuit name is malformed, too long or too deeply nested.
    #[error("{0}")]
    InvalidCircuitName(String),
    /// This appliance lacks the keys the request needs, and the request may not make them.
    #[error("{0}")]
    KeysMissing(String),
    /// A per-tenant or per-node limit on concurrent work (event streams, verifications).
    #[error("{0}")]
    TooBusy(String),
    /// Too many failed authentications from this client address.
    #[error("too many failed authentications from this address: more than {limit} a minute; retry in {retry_after_secs} s")]
    TooManyAuthFailures {
        /// Failures allowed per minute.
        limit: u32,
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
    /// No or an unknown API key.
    #[error("{0}")]
    Unauthorized(String),
    /// The key is valid but not allowed this.
    #[error("{0}")]
    Forbidden(String),
    /// The server is starting or shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The appliance failed; the message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The problem+json body (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (see docs/api.md).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What exactly is wrong with this request.
    pub detail: String,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            Self::InvalidRequest(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid request",
            ),
            Self::UnknownCircuit(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-circuit",
                "Unknown circuit",
            ),
            Self::InvalidInput(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-input",
                "Invalid circuit input",
            ),
            Self::InvalidEnvelope(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-envelope",
                "Unusable proof envelope",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::IdempotencyMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
            ),
            Self::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Self::TooManyJobs(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-jobs",
                "Too many outstanding jobs",
            ),
            Self::InvalidCircuitName(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-circuit-name",
                "Unusable circuit name",
            ),
            Self::KeysMissing(_) => (
                StatusCode::CONFLICT,
                "keys-missing",
                "This appliance does not have the circuit's keys",
            ),
            Self::TooBusy(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-busy",
                "Too many concurrent requests of this kind",
            ),
            Self::TooManyAuthFailures { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-auth-failures",
                "Too many failed authentications",
            ),
            Self::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or unknown API key",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The problem body clients receive.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let detail = match self {
            Self::Internal(_) => {
                "the appliance failed to handle this request; the cause is in its log".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
        }
    }
}

impl From<proofmill_prover::ProverError> for ApiError {
    /// A prover error met while handling a request (not in a job): the caller's mistakes are
    /// 4xx, the rest a 500.
    fn from(e: proofmill_prover::ProverError) -> Self {
        use proofmill_prover::ProverError;
        match e {
            ProverError::KeysMissing { .. } => Self::KeysMissing(e.to_string()),
            ProverError::CircuitName(e) => Self::InvalidCircuitName(e.to_string()),
            e if e.is_client_error() => Self::InvalidEnvelope(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            // Worth retrying: the database is restarting or unreachable.
            tracing::warn!(error = %e, "job database unavailable");
            Self::Unavailable(format!(
                "the job database is unavailable ({e}); retry shortly"
            ))
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::TooManyAuthFailures {
            retry_after_secs, ..
        } = &self
        {
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
