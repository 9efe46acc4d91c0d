//! `GET /v1/stats`: the queue, the throughput and the problems of the last hours, for the
//! operator console (and anyone's dashboard). A tenant's key sees its own; an admin key sees
//! every tenant.

use axum::{
    extract::{RawQuery, State},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;
use crate::{auth::Caller, error::ApiError, store::now_ms, AppState};

/// The longest window `hours` may ask for: a week.
pub const MAX_STATS_HOURS: u32 = 168;
/// How many problems the answer lists at most.
pub const MAX_PROBLEMS: u32 = 50;

/// `GET /v1/stats` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// The tenant the key belongs to.
    pub tenant: String,
    /// The key is an admin key: every tenant is shown.
    pub admin: bool,
    /// The window, in hours, ending now.
    pub hours: u32,
    /// Outstanding jobs per tenant.
    pub queue: Vec<TenantQueue>,
    /// Per tenant and hour, oldest first: proofs made, device time, failures.
    pub throughput: Vec<HourlyThroughput>,
    /// Totals over the window.
    pub totals: Totals,
    /// The latest attempts of the window that failed, were retried or died, newest first.
    pub problems: Vec<FailedAttempt>,
}

/// One tenant's outstanding jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantQueue {
    /// Tenant.
    pub tenant: String,
    /// Jobs waiting.
    pub queued: i64,
    /// Jobs on a device.
    pub running: i64,
    /// How long the oldest queued job has waited, seconds.
    pub oldest_wait_seconds: Option<f64>,
}

/// One tenant's hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourlyThroughput {
    /// Start of the hour, RFC 3339.
    pub hour: String,
    /// Tenant.
    pub tenant: String,
    /// Proofs made.
    pub proofs: i64,
    /// Device time of the attempts that ended in the hour, seconds.
    pub device_seconds: f64,
    /// Attempts that failed or were retried.
    pub failures: i64,
}

/// Totals over the window.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Totals {
    /// Proofs made.
    pub proofs: i64,
    /// Device time, seconds.
    pub device_seconds: f64,
    /// Attempts that failed for good.
    pub failed: i64,
    /// Attempts retried (a device error, a fallback to another device).
    pub retried: i64,
    /// Retries that moved the job off a GPU (to the CPU or another GPU).
    pub gpu_fallbacks: i64,
    /// Attempts whose node stopped renewing the lease.
    pub lease_expired: i64,
}

/// An attempt that did not succeed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedAttempt {
    /// The job.
    pub job: String,
    /// Its tenant.
    pub tenant: String,
    /// Its circuit, when it has one.
    pub circuit: Option<String>,
    /// Attempt number.
    pub attempt: i64,
    /// Node of the attempt.
    pub node: String,
    /// Device of the attempt.
    pub device: String,
    /// `failed`, `retry` or `lease_expired`.
    pub outcome: String,
    /// A retry away from a GPU.
    pub gpu_fallback: bool,
    /// Why.
    pub detail: Option<String>,
    /// When it ended, RFC 3339.
    pub ended: String,
}

/// The queue, the throughput and the problems of the last `hours` (1 to 168, default 24).
#[utoipa::path(get, path = "/v1/stats",
    params(("hours" = Option<u32>, Query, minimum = 1, maximum = 168, description = "the window, 1..=168 hours, default 24")),
    responses((status = 200, body = Stats), (status = 422, body = crate::error::Problem, description = "a bad query parameter")))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Stats>, ApiError> {
    let params = super::jobs::query_params(query.as_deref(), &["hours"])?;
    let hours = match params.get("hours") {
        None => 24,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|h| (1..=MAX_STATS_HOURS).contains(h))
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("hours {v:?}: expected 1 to {MAX_STATS_HOURS}"))
            })?,
    };
    let tenant = (!caller.admin).then_some(caller.tenant.as_str());
    let now = now_ms();
    // Whole hours, so that the first bar of the chart is not a partial one.
    let since = (now / 3_600_000 - i64::from(hours) + 1) * 3_600_000;
    let queue = state.store.queue_by_tenant(tenant).await?;
    let hourly = state.store.hourly(tenant, since).await?;
    let problems = state.store.problems(tenant, since, MAX_PROBLEMS).await?;

    let mut totals = Totals::default();
    for h in &hourly {
        totals.proofs += h.proofs;
        totals.device_seconds += h.device_ms as f64 / 1000.0;
    }
    // The problem list is capped; the totals count every problem of the window.
    for (outcome, n, on_gpu) in state.store.problem_counts(tenant, since).await? {
        match outcome.as_str() {
            "failed" => totals.failed = n,
            "retry" => {
                totals.retried = n;
                totals.gpu_fallbacks = on_gpu;
            }
            "lease_expired" => totals.lease_expired = n,
            _ => {}
        }
    }

    Ok(Json(Stats {
        tenant: caller.tenant.clone(),
        admin: caller.admin,
        hours,
        queue: queue
            .into_iter()
            .map(|q| TenantQueue {
                tenant: q.tenant,
                queued: q.queued,
                running: q.running,
                oldest_wait_seconds: q.oldest_queued_ms.map(|t| (now - t).max(0) as f64 / 1000.0),
            })
            .collect(),
        throughput: hourly
            .into_iter()
            .map(|h| HourlyThroughput {
                hour: rfc3339(h.hour_ms),
                tenant: h.tenant,
                proofs: h.proofs,
                device_seconds: h.device_ms as f64 / 1000.0,
                failures: h.failures,
            })
            .collect(),
        totals,
        problems: problems
            .into_iter()
            .map(|p| FailedAttempt {
                gpu_fallback: is_gpu_fallback(&p.outcome, &p.device),
                job: p.job_id,
                tenant: p.tenant,
                circuit: p.circuit,
                attempt: p.attempt,
                node: p.node,
                device: p.device,
                outcome: p.outcome,
                detail: p.detail,
                ended: rfc3339(p.ended_ms),
            })
            .collect(),
    }))
}

/// A retried attempt on a GPU: the retry avoids that device, so the job falls back.
fn is_gpu_fallback(outcome: &str, device: &str) -> bool {
    outcome == "retry" && device.starts_with("gpu")
}
