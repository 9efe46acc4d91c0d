//! Operations and the rest: `GET /v1/devices` (the whole cluster), `GET /v1/usage`,
//! `/metrics`, `/healthz`, `/readyz`, `/openapi.json`, and the answers to unknown routes and
//! wrong methods.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request, State},
    http::header,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{rfc3339, ApiDoc};
use crate::{
    auth::Caller,
    devices::DeviceInfo,
    error::{ApiError, Problem},
    store::UsageRow,
    AppState,
};

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
        let theirs: Vec<DeviceInfo> = match serde_json::from_value(n.devices) {
            Ok(devices) => devices,
            Err(e) => {
                tracing::warn!(node = %n.node_id, error = %e, "a node registered devices this version cannot read");
                Vec::new()
            }
        };
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

/// Prometheus metrics. Open on a loopback server or one without API keys; a server that
/// listens beyond loopback with keys configured answers only an admin key.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 403, body = Problem, description = "the key is not an admin key")))]
pub async fn metrics(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if state.public && !state.keys.is_open() {
        let connect = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .cloned();
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::Unauthorized("the Authorization header is not ASCII".into())
                })
            })
            .transpose()?;
        let caller = state
            .keys
            .authenticate(authorization, connect.map(|ConnectInfo(a)| a.ip()))?;
        if !caller.admin {
            return Err(ApiError::Forbidden(format!(
                "/metrics on a server reachable beyond loopback needs an admin key; tenant {}'s key is not one",
                caller.tenant
            )));
        }
    }
    crate::telemetry::refresh(&state).await;
    let text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store answers and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Health), (status = 503, body = Problem, description = "shutting down, or the job store does not answer")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if *state.shutdown.borrow() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    state
        .store
        .status_counts()
        .await
        .map_err(|e| ApiError::Unavailable(format!("job store: {e}")))?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

/// The OpenAPI document, with this server's own bounds filled in: the catalog's names for
/// prove jobs and the priority range of an unconfigured tenant.
pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let names: Vec<serde_json::Value> = proofmill_circuits::catalog()
        .iter()
        .map(|c| serde_json::Value::String(c.name()))
        .collect();
    let max = state.config.max_priority;
    if let Some(variants) = doc
        .pointer_mut("/components/schemas/JobRequest/oneOf")
        .and_then(serde_json::Value::as_array_mut)
    {
        for variant in variants {
            let Some(properties) = variant
                .get_mut("properties")
                .and_then(serde_json::Value::as_object_mut)
            else {
                continue;
            };
            let is_prove = properties
                .get("type")
                .and_then(|t| t.get("enum"))
                .is_some_and(|e| e == &serde_json::json!(["prove"]));
            if let Some(priority) = properties.get_mut("priority") {
                priority["minimum"] = serde_json::json!(-max);
                priority["maximum"] = serde_json::json!(max);
            }
            if is_prove {
                if let Some(circuit) = properties.get_mut("circuit") {
                    circuit["enum"] = serde_json::Value::Array(names.clone());
                }
            }
        }
    }
    // The catalog's names are what `/v1/circuits/{name}` serves (others are 404s).
    if let Some(parameters) = doc
        .pointer_mut("/paths/~1v1~1circuits~1{name}/get/parameters")
        .and_then(serde_json::Value::as_array_mut)
    {
        for parameter in parameters {
            if parameter["name"] == "name" {
                parameter["schema"] = serde_json::json!({ "type": "string", "enum": names });
            }
        }
    }
    Json(doc)
}

/// Any other path.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path()))
}

/// A known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
