//! proofmill's job server: the HTTP API (axum), the job store (SQLite, or PostgreSQL shared
//! by the nodes of a cluster, via sqlx), the scheduler and the device workers, tenants and
//! their API keys, and Prometheus metrics.
//!
//! Data flows one way: request -> [`JobStore`] -> [`Scheduler`] -> [`Worker`] ->
//! `proofmill_prover::Prover` -> proof file -> response. The server knows nothing of curves
//! or circuits beyond the catalog's names and `parse_input`, nor of how proving uses a
//! device: it asks the prover's device layer (`proofmill_prover::devices`) for its devices
//! and what a job needs. Proving happens only on worker threads, never on the async runtime.
//!
//! The entry point is [`run`]: give it a bound listener, a [`Config`] and a future that
//! resolves when the server should stop (SIGTERM, Ctrl-C, or a test's signal).

pub mod api;
pub mod artifacts;
pub mod auth;
pub mod config;
pub mod devices;
pub mod error;
pub mod job;
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
pub use job::{JobKind, JobStage, JobStatus};
pub use scheduler::{NodeSettings, Scheduler};
pub use store::{JobStore, StoreError};
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
    /// Starting beyond loopback with the development SRS, whose tau is public.
    #[error("refusing to listen on {addr} with the development SRS for k={k}: its tau is public, so anyone can forge proofs under it. Put ceremony SRS files (kzg_bn254_{k}.srs or larger, e.g. converted from the perpetual powers of tau) in {}, or set allow_development_srs = true in the configuration for a test deployment", srs_dir.display())]
    DevelopmentSrs {
        /// The address asked for.
        addr: SocketAddr,
        /// The first k without a ceremony file.
        k: u32,
        /// Where the files go.
        srs_dir: std::path::PathBuf,
    },
    /// An API-key name is not usable.
    #[error("tenant name {0:?}: 1 to 64 printable characters")]
    TenantName(String),
    /// The proving devices could not be set up.
    #[error(transparent)]
    Devices(#[from] proofmill_prover::ProverError),
    /// A start-up task stopped before it finished.
    #[error("start-up task: {0}")]
    Startup(String),
    /// The proof store cannot be used.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
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
    /// Open event streams per tenant.
    pub streams: api::events::StreamSlots,
    /// Verifications in progress.
    pub verifications: api::verify::Verifications,
    /// The server listens beyond loopback (then `/metrics` wants an admin key when keys
    /// are configured).
    pub public: bool,
}

/// The API's routes over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/jobs",
            post(api::jobs::submit_job).get(api::jobs::list_jobs),
        )
        .route(
            "/v1/jobs/{id}",
            get(api::jobs::get_job).delete(api::jobs::cancel_job),
        )
        .route("/v1/jobs/{id}/proof", get(api::jobs::get_proof))
        .route("/v1/jobs/{id}/events", get(api::events::job_events))
        .route("/v1/verify", post(api::verify::verify))
        .route("/v1/circuits", get(api::catalog::list_circuits))
        .route("/v1/circuits/{*name}", get(api::catalog::get_circuit))
        .route("/v1/examples/{*name}", get(api::catalog::example))
        .route("/v1/stats", get(api::stats::stats))
        .route("/v1/devices", get(api::ops::devices))
        .route("/v1/usage", get(api::ops::usage))
        .route("/metrics", get(api::ops::metrics))
        .route("/healthz", get(api::ops::healthz))
        .route("/readyz", get(api::ops::readyz))
        .route("/openapi.json", get(api::ops::openapi))
        .route("/", get(api::console::index))
        .route("/console/console.js", get(api::console::script))
        .route("/console/console.css", get(api::console::style))
        .fallback(api::ops::not_found)
        .method_not_allowed_fallback(api::ops::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(|_panic| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "a handler panicked".into(),
            ))
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The job store the configuration names: PostgreSQL at `database_url`, else the SQLite file.
pub async fn open_store(config: &Config) -> Result<JobStore, StoreError> {
    match &config.database_url {
        Some(url) => JobStore::connect(url).await,
        None => JobStore::open(&config.database_path()).await,
    }
}

/// The `k`s this server proves at: the catalog's and the aggregation's.
fn ks_in_use() -> Vec<u32> {
    let mut ks: Vec<u32> = proofmill_circuits::catalog()
        .iter()
        .map(|c| c.shape().k)
        .chain([proofmill_prover::AGGREGATION_K])
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
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
    let addr = listener.local_addr()?;
    let public = !addr.ip().is_loopback();
    // Circuit shapes are laid out once here, off the runtime: later lookups are free.
    let ks = tokio::task::spawn_blocking(ks_in_use)
        .await
        .map_err(|e| ServerError::Startup(format!("sizing the catalog: {e}")))?;
    let store = open_store(&config).await?;
    let keys = KeyRing::load(config.clone(), store.clone()).await?;
    if keys.is_open() && public {
        return Err(ServerError::OpenNonLoopback { addr });
    }
    if public && !config.allow_development_srs {
        let srs = proofmill_prover::SrsStore::new(config.data_dir.join("srs"));
        if let Some(&k) = ks.iter().find(|&&k| srs.ceremony_file(k).is_none()) {
            return Err(ServerError::DevelopmentSrs {
                addr,
                k,
                srs_dir: srs.dir().to_owned(),
            });
        }
    }
    if keys.is_open() {
        tracing::warn!(%addr, "no API keys configured: open to loopback callers as tenant `default`");
    }
    let requeued = store
        .requeue_node(
            &node,
            &format!("re-queued at start: node {node} stopped while it ran"),
            Some(config.max_deaths),
        )
        .await?;
    if requeued.requeued > 0 {
        tracing::warn!(
            requeued = requeued.requeued,
            "jobs left running by the last process were re-queued"
        );
    }
    for job in &requeued.dead_lettered {
        tracing::error!(%job, max_deaths = config.max_deaths, "a job this node left running had died too often: dead-lettered");
    }
    let artifacts = Arc::new(match &config.artifacts_url {
        Some(url) => Artifacts::bucket(url, &config.artifacts_options, &config.proofs_path())?,
        None => Artifacts::local(&config.proofs_path())?,
    });
    artifacts.check().await?;
    tracing::info!(proofs = %artifacts.describe(), "proof store");
    if artifacts.is_bucket() {
        // SRS files and proving keys other nodes made: fetched, not generated again (each key
        // is checked against its circuit before its first use).
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
    // The prover's device layer opens the GPUs (kernels compiled, self-checked) and installs
    // the process-wide engine: seconds of blocking work.
    let (engine, gpu_workers, cpu_workers) =
        (config.engine, config.gpu_workers, config.cpu_workers);
    let devices = tokio::task::spawn_blocking(move || {
        proofmill_prover::devices::open(engine, gpu_workers, cpu_workers)
    })
    .await
    .map_err(|e| ServerError::Startup(format!("opening the devices: {e}")))??;
    tracing::info!(engine = %devices.process_engine.description, "process-wide proving engine");
    if let Some(why) = &devices.no_gpu_reason {
        tracing::info!(reason = %why, "no GPU workers");
    }
    let infos: Vec<DeviceInfo> = devices
        .devices
        .iter()
        .map(|d| {
            let mut info = DeviceInfo::of(d, &node);
            if info.kind == DeviceKind::Cpu {
                info.memory_limit_bytes = config.cpu_memory_bytes;
            }
            info
        })
        .collect();
    let telemetry = tokio::task::spawn_blocking({
        let infos = infos.clone();
        move || devices::Telemetry::start(infos, devices::TELEMETRY_PERIOD)
    })
    .await
    .map_err(|e| ServerError::Startup(format!("reading the devices: {e}")))??;
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for (device, info) in devices.devices.iter().zip(infos) {
        tracing::info!(device = %device.id, name = %device.name, engine = %device.engine, "worker started");
        workers.push(Arc::new(Worker::spawn(
            device,
            info,
            telemetry.clone(),
            prover.clone(),
            events_tx.clone(),
        )?));
    }
    drop(events_tx);
    let settings = NodeSettings {
        node: node.clone(),
        lease: config.lease(),
        max_failures: config.max_failures,
        max_deaths: config.max_deaths,
        data_dir: config.data_dir.clone(),
        host_memory_bytes: config
            .cpu_memory_bytes
            .or(proofmill_accel::host::memory().0),
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
    let background = [
        tokio::spawn(scheduler.clone().run(events_rx)),
        tokio::spawn(scheduler.clone().heartbeat()),
        tokio::spawn(scheduler.clone().write_stages()),
        tokio::spawn(keys.clone().refresh()),
    ];

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
        streams: api::events::StreamSlots::default(),
        verifications: api::verify::Verifications::new(
            config.max_concurrent_verifications,
            config.max_concurrent_verifications_per_tenant,
        ),
        public,
    };
    tracing::info!(%addr, %node, data_dir = %config.data_dir.display(), database = %store.describe(), "proofmill serving");
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutdown requested: no new connections");
        let _ = stop_tx.send(true);
    })
    .await;
    let drained = scheduler.drain(config.shutdown_grace()).await;
    for task in background {
        task.abort();
    }
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
        return Err(ServerError::TenantName(tenant.to_owned()));
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
