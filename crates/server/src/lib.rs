//! proofmill's job server: the HTTP API (axum), the job store (SQLite, or PostgreSQL shared
//! by the nodes of a cluster, via sqlx), the scheduler and the device workers, tenants and
//! their API keys, and Prometheus metrics.
//!
//! Data flows one way: request -> [`JobStore`] -> [`Scheduler`] -> [`Worker`] ->
//! `proofmill_prover::Prover` -> proof file -> response. The server knows nothing of curves
//! or circuits beyond the catalog's names and `parse_input`; proving happens only on worker
//! threads, never on the async runtime.
//!
//! The entry point is [`run`]: give it a bound listener, a [`Config`] and a future that
//! resolves when the server should stop (SIGTERM, Ctrl-C, or a test's signal).

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod config;
pub mod devices;
pub mod error;
pub mod scheduler;
pub mod store;
pub mod telemetry;
pub mod worker;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use proofmill_prover::Prover;
use tokio::{net::TcpListener, sync::watch};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

pub use artifacts::{ArtifactError, Artifacts};
pub use auth::{Caller, KeyRing};
pub use config::{Config, ConfigError};
pub use devices::{DeviceInfo, DeviceKind};
pub use error::ApiError;
pub use scheduler::{NodeSettings, Scheduler};
pub use store::{JobStatus, JobStore, StoreError};
pub use worker::Worker;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket or thread could not be set up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No API key exists and the address is reachable from other machines.
    #[error("refusing to listen on {addr} without API keys: anyone who can reach it could submit jobs. Add a key (`proofmill keys add --tenant NAME`, or [[tenants]] in the config file), or listen on a loopback address such as 127.0.0.1")]
    OpenNonLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Loading the keys failed.
    #[error("loading API keys: {0}")]
    Keys(String),
    /// The proof store cannot be used.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    /// No worker could be started (`cuda` without a usable GPU, or no GPU and no CPU worker).
    #[error("no proving worker: {0}")]
    NoWorker(String),
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The job store.
    pub store: JobStore,
    /// The scheduler (and through it, the workers).
    pub scheduler: Scheduler,
    /// The prover, for `POST /v1/verify`.
    pub prover: Arc<Prover>,
    /// Where proofs are kept.
    pub artifacts: Arc<Artifacts>,
    /// API keys.
    pub keys: KeyRing,
    /// The configuration.
    pub config: Arc<Config>,
    /// The Prometheus recorder.
    pub metrics: Option<PrometheusHandle>,
    /// Becomes true when shutdown begins.
    pub shutdown: watch::Receiver<bool>,
    /// Process start, for `proofmill_seconds_since_last_proof` before any proof.
    pub started: Instant,
}

/// The API's routes over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", post(api::submit_job).get(api::list_jobs))
        .route("/v1/jobs/{id}", get(api::get_job).delete(api::cancel_job))
        .route("/v1/jobs/{id}/proof", get(api::get_proof))
        .route("/v1/jobs/{id}/events", get(api::job_events))
        .route("/v1/verify", post(api::verify))
        .route("/v1/circuits", get(api::list_circuits))
        .route("/v1/circuits/{*name}", get(api::get_circuit))
        .route("/v1/devices", get(api::devices))
        .route("/v1/usage", get(api::usage))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(|_panic| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "a handler panicked".into(),
            ))
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// One worker per usable GPU, each proving on a [`DevicePool`] of its own GPU's engine, when
/// the configuration asks for GPU workers and the engine may use GPUs. Returns the workers and,
/// when none started, why. With engine `cuda`, no usable GPU is an error.
fn spawn_gpu_workers(
    config: &Config,
    prover: &Arc<Prover>,
    events: &tokio::sync::mpsc::UnboundedSender<worker::WorkerEvent>,
) -> Result<(Vec<Arc<Worker>>, Option<String>), ServerError> {
    use proofmill_prover::engine::{gpu_accelerator, DevicePool, Engine};
    if !config.gpu_workers || !matches!(config.engine, Engine::Auto | Engine::Cuda) {
        return Ok((Vec::new(), Some(format!("engine {}", config.engine))));
    }
    let inventory = proofmill_accel::DeviceInventory::probe();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut workers = Vec::new();
    let mut reasons = Vec::new();
    for gpu in &inventory.gpus {
        let ready = if gpu.usable() {
            gpu_accelerator(gpu.index as usize).and_then(|accelerator| {
                DevicePool::new(&format!("gpu{}", gpu.index), accelerator, threads)
            })
        } else {
            Err(proofmill_prover::ProverError::Engine(
                gpu.unusable_reason.clone().unwrap_or_default(),
            ))
        };
        match ready {
            Ok(pool) => {
                let device = DeviceInfo::gpu(gpu, None).on_node(&config.node());
                tracing::info!(device = %device.id, name = %device.name, engine = %pool.accelerator().backend().description(), "GPU worker started");
                workers.push(Arc::new(Worker::spawn(
                    device,
                    prover.clone(),
                    events.clone(),
                    Some(Arc::new(pool)),
                )?));
            }
            Err(e) => {
                tracing::warn!(gpu = gpu.index, name = %gpu.name, reason = %e, "GPU not used");
                reasons.push(format!("GPU {} ({}): {e}", gpu.index, gpu.name));
            }
        }
    }
    if workers.is_empty() {
        let why = if reasons.is_empty() {
            inventory
                .no_gpu_reason
                .unwrap_or_else(|| "no usable GPU".into())
        } else {
            reasons.join("; ")
        };
        if config.engine == Engine::Cuda {
            return Err(ServerError::NoWorker(format!("engine cuda: {why}")));
        }
        return Ok((workers, Some(why)));
    }
    Ok((workers, None))
}

/// The job store the configuration names: PostgreSQL at `database_url`, else the SQLite file.
pub async fn open_store(config: &Config) -> Result<JobStore, StoreError> {
    match &config.database_url {
        Some(url) => JobStore::connect(url).await,
        None => JobStore::open(&config.database_path()).await,
    }
}

/// Opens the store, re-queues what this node left running when it stopped, registers the
/// node, starts one worker per device and serves the API on `listener` until `shutdown`
/// resolves; then stops accepting, lets running jobs finish within the grace period
/// (re-queueing the rest), leaves the cluster and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.check()?;
    let config = Arc::new(config);
    let node = config.node();
    let store = open_store(&config).await?;
    let keys = KeyRing::load(config.clone(), store.clone())
        .await
        .map_err(|e| ServerError::Keys(e.to_string()))?;
    let addr = listener.local_addr()?;
    if keys.is_open() && !addr.ip().is_loopback() {
        return Err(ServerError::OpenNonLoopback { addr });
    }
    if keys.is_open() {
        tracing::warn!(%addr, "no API keys configured: open to loopback callers as tenant `default`");
    }
    let requeued = store
        .requeue_node(
            &node,
            &format!("re-queued at start: node {node} stopped while it ran"),
        )
        .await?;
    if requeued > 0 {
        tracing::warn!(
            requeued,
            "jobs left running by the last process were re-queued"
        );
    }
    let artifacts = Arc::new(match &config.artifacts_url {
        Some(url) => Artifacts::bucket(url, &config.artifacts_options, &config.proofs_path())?,
        None => Artifacts::local(&config.proofs_path())?,
    });
    artifacts.check().await?;
    tracing::info!(proofs = %artifacts.describe(), "proof store");
    if artifacts.is_bucket() {
        // SRS files and proving keys other nodes made: fetched, not generated again.
        let started = Instant::now();
        match artifacts.pull_data(&config.data_dir).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                files = n,
                seconds = started.elapsed().as_secs(),
                "SRS files and keys fetched from the bucket"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch SRS files and keys from the bucket; they will be generated as needed")
            }
        }
    }

    let prover = Arc::new(Prover::new(&config.data_dir));
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    let (gpu_workers, no_gpu) = spawn_gpu_workers(&config, &prover, &events_tx)?;
    if let Some(why) = &no_gpu {
        tracing::info!(reason = %why, "no GPU workers");
    }
    workers.extend(gpu_workers);
    for i in 0..config.cpu_workers {
        let device = DeviceInfo::cpu(i).on_node(&node);
        tracing::info!(device = %device.id, name = %device.name, cores = ?device.cores, "worker started");
        workers.push(Arc::new(Worker::spawn(
            device,
            prover.clone(),
            events_tx.clone(),
            None,
        )?));
    }
    if workers.is_empty() {
        return Err(ServerError::NoWorker(format!(
            "cpu_workers is 0 and no GPU worker started ({})",
            no_gpu.unwrap_or_else(|| "gpu_workers is off".into())
        )));
    }
    drop(events_tx);
    let settings = NodeSettings {
        node: node.clone(),
        lease: config.lease(),
        max_attempts: config.max_attempts,
        data_dir: config.data_dir.clone(),
    };
    let scheduler = Scheduler::new(
        store.clone(),
        workers,
        artifacts.clone(),
        settings,
        prover.clone(),
    );
    let (registered, db_now) = store.nodes().await?;
    if let Some(other) = registered.iter().find(|n| n.node_id == node) {
        let silent_ms = db_now - other.heartbeat_ms;
        if silent_ms < config.lease().as_millis() as i64 {
            tracing::warn!(%node, seconds_since_heartbeat = silent_ms / 1000, "node id {node} heartbeat {}s ago: if another live node uses it, give each node its own node_id (this start has re-queued that id's running jobs)", silent_ms / 1000);
        }
    }
    store
        .register_node(
            &node,
            config.advertise_url.as_deref(),
            &scheduler.devices_json(),
        )
        .await?;
    let scheduling = tokio::spawn(scheduler.clone().run(events_rx));
    let heartbeat = tokio::spawn(scheduler.clone().heartbeat());

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        store: store.clone(),
        scheduler: scheduler.clone(),
        prover,
        artifacts,
        keys,
        config: config.clone(),
        metrics: telemetry::recorder(),
        shutdown: stop_rx,
        started: Instant::now(),
    };
    tracing::info!(%addr, %node, data_dir = %config.data_dir.display(), database = %store.describe(), "proofmill serving");
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutdown requested: no new connections");
            let _ = stop_tx.send(true);
        })
        .await;
    let drained = scheduler.drain(config.shutdown_grace()).await;
    scheduling.abort();
    heartbeat.abort();
    if let Err(e) = store.deregister_node(&node).await {
        tracing::warn!(error = %e, "could not leave the cluster's node list");
    }
    store.close().await;
    served?;
    drained?;
    tracing::info!("proofmill stopped");
    Ok(())
}

/// Stores a new API key for `tenant` in the job database and returns it (the only time it
/// is shown).
pub async fn add_api_key(
    config: &Config,
    tenant: &str,
    admin: bool,
) -> Result<String, ServerError> {
    if tenant.is_empty() || tenant.len() > 64 || tenant.chars().any(|c| c.is_control()) {
        return Err(ServerError::Keys(format!(
            "tenant name {tenant:?}: 1 to 64 printable characters"
        )));
    }
    let store = open_store(config).await?;
    let key = auth::new_key();
    store
        .add_api_key(tenant, &auth::hash_key(&key), admin)
        .await?;
    store.close().await;
    Ok(key)
}

/// Device time per tenant, from the job database.
pub async fn usage_report(config: &Config) -> Result<Vec<store::UsageRow>, ServerError> {
    let store = open_store(config).await?;
    let rows = store.usage(None).await?;
    store.close().await;
    Ok(rows)
}
