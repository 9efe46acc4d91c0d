//! The scheduler: decides which queued job runs on which of this node's devices, and records
//! what workers report. The job store is the source of truth, shared by every node of a
//! cluster; the scheduler keeps in memory only what a restart may lose (cancel flags, which
//! worker holds which attempt).
//!
//! - [`dispatch`]: the fair queue. Tenants share the devices: the tenant with the fewest
//!   jobs running in the cluster, then the least device time over the last hour, goes first;
//!   priority orders a tenant's own jobs. A job is placed on a device whose memory fits it;
//!   one that fits no device of this node is left to a node it fits, and failed only when no
//!   live node's device ever can.
//! - [`outcomes`]: what happens when a job leaves a device: its proof stored and recorded, a
//!   retry (on another device after a GPU error) until `max_failures`, a cancel.
//!
//! Nothing here waits on a device, a bucket or NVML on the loop others wait for: a claimed
//! job's request and inputs are read, and a finished job's proof stored, in tasks of their
//! own; stages are written by a task that keeps only each job's latest; device telemetry
//! comes from its own thread. Every claim is a lease that the heartbeat task renews while
//! the job runs; the same task re-queues jobs whose lease expired on any node (a death:
//! `max_deaths` of them dead-letter a job) and passes on cancels asked for through other
//! nodes.

pub mod dispatch;
pub mod outcomes;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use proofmill_prover::{memory::MemoryNeed, Prover};
use tokio::sync::{broadcast, mpsc::UnboundedReceiver, Notify};

use crate::{
    artifacts::Artifacts,
    job::JobStage,
    store::{JobStore, Lease, StoreError},
    worker::{Worker, WorkerEvent},
};

/// Places jobs on workers and applies their outcomes to the store.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

/// This node's place in the cluster.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Its id.
    pub node: String,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// Retryable failures before a job is dead-lettered.
    pub max_failures: u32,
    /// Deaths (lease expiries, restarts while running) before a job is dead-lettered.
    pub max_deaths: u32,
    /// The data directory whose SRS files and proving keys are shared through the bucket
    /// (when proofs go to one).
    pub data_dir: std::path::PathBuf,
    /// Host memory this node's proofs may use at once, bytes (`cpu_memory_bytes`, else the
    /// host's): every job's host side counts against it, a GPU worker's too.
    pub host_memory_bytes: Option<u64>,
}

struct Inner {
    store: JobStore,
    settings: NodeSettings,
    /// For the files a proof used (shared with the cluster after it).
    prover: Arc<Prover>,
    /// One upload of shared files at a time.
    sharing: tokio::sync::Mutex<()>,
    /// Attempt number of each job this node's workers hold.
    held: Mutex<HashMap<String, i64>>,
    /// Since when every store call of the heartbeat task has succeeded.
    healthy_since: Mutex<Option<Instant>>,
    workers: Vec<Arc<Worker>>,
    artifacts: Arc<Artifacts>,
    notify: Notify,
    cancels: Mutex<HashMap<String, Arc<AtomicBool>>>,
    changes: broadcast::Sender<String>,
    stopping: AtomicBool,
    draining_cancel: AtomicBool,
    last_proof: Mutex<Option<Instant>>,
    /// Jobs whose hand-over failed for a passing reason, and when to try them again.
    deferred: Mutex<HashMap<String, Instant>>,
    /// The queued job first left waiting for room on this node, and what it needs: later
    /// jobs are placed only beside that memory until it starts, so that a stream of smaller
    /// jobs cannot keep a large one waiting for ever.
    waiting: Mutex<Option<(String, MemoryNeed)>>,
    /// The latest stage each running job reported, not yet written.
    stages: Mutex<HashMap<String, (i64, JobStage)>>,
    stages_ready: Notify,
}

impl Scheduler {
    /// A scheduler over `workers`; call [`Scheduler::run`] to start it.
    pub fn new(
        store: JobStore,
        workers: Vec<Arc<Worker>>,
        artifacts: Arc<Artifacts>,
        settings: NodeSettings,
        prover: Arc<Prover>,
    ) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                prover,
                sharing: tokio::sync::Mutex::new(()),
                held: Mutex::new(HashMap::new()),
                healthy_since: Mutex::new(None),
                workers,
                artifacts,
                notify: Notify::new(),
                cancels: Mutex::new(HashMap::new()),
                changes,
                stopping: AtomicBool::new(false),
                draining_cancel: AtomicBool::new(false),
                last_proof: Mutex::new(None),
                deferred: Mutex::new(HashMap::new()),
                waiting: Mutex::new(None),
                stages: Mutex::new(HashMap::new()),
                stages_ready: Notify::new(),
            }),
        }
    }

    /// The workers, one per device.
    pub fn workers(&self) -> &[Arc<Worker>] {
        &self.inner.workers
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.inner.settings.node
    }

    /// This node's devices now (latest telemetry), as the node registry stores them.
    pub fn devices_json(&self) -> serde_json::Value {
        serde_json::to_value(
            self.inner
                .workers
                .iter()
                .map(|w| w.info())
                .collect::<Vec<_>>(),
        )
        .unwrap_or(serde_json::Value::Null)
    }

    fn attempt_of(&self, job_id: &str) -> Option<i64> {
        self.inner
            .held
            .lock()
            .ok()
            .and_then(|held| held.get(job_id).copied())
    }

    fn set_held(&self, job_id: &str, attempt: Option<i64>) {
        if let Ok(mut held) = self.inner.held.lock() {
            match attempt {
                Some(attempt) => held.insert(job_id.to_owned(), attempt),
                None => held.remove(job_id),
            };
        }
    }

    fn flag_cancel(&self, job_id: &str) {
        if let Ok(cancels) = self.inner.cancels.lock() {
            if let Some(flag) = cancels.get(job_id) {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The heartbeat loop, until the task is aborted: every third of the lease it renews the
    /// leases of this node's jobs (passing on cancels asked for on other nodes), refreshes
    /// the node's registry entry, and re-queues jobs whose lease expired anywhere. Expired
    /// leases are only reaped after the store has answered for a whole lease period, so that
    /// after a database outage live nodes get to renew theirs first.
    pub async fn heartbeat(self) {
        let period = (self.inner.settings.lease / 3).max(Duration::from_millis(500));
        loop {
            // A connection left half-open by a database failover must not stall the
            // heartbeat past the lease.
            let beat = tokio::time::timeout(period * 2, self.beat()).await;
            let beat = beat.unwrap_or_else(|_| {
                Err(StoreError::Timeout(format!(
                    "no answer within {:?}",
                    period * 2
                )))
            });
            match beat {
                Ok(()) => {
                    if let Ok(mut since) = self.inner.healthy_since.lock() {
                        since.get_or_insert_with(Instant::now);
                    }
                }
                Err(e) => {
                    if let Ok(mut since) = self.inner.healthy_since.lock() {
                        *since = None;
                    }
                    tracing::warn!(error = %e, "heartbeat failed; retrying");
                }
            }
            tokio::time::sleep(period).await;
        }
    }

    async fn beat(&self) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let settings = &self.inner.settings;
        let held: Vec<(String, i64)> = self
            .inner
            .held
            .lock()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        for (job_id, attempt) in held {
            match store.renew(&job_id, attempt, settings.lease).await? {
                Lease::Held { cancel_requested } => {
                    if cancel_requested {
                        self.flag_cancel(&job_id);
                    }
                }
                Lease::Lost => {
                    let ended = store
                        .get(&job_id)
                        .await?
                        .is_none_or(|job| job.status.is_terminal());
                    if ended {
                        // Someone else's proof was recorded, or the job was cancelled: stop.
                        tracing::warn!(job = %job_id, attempt, "lease lost and the job has ended elsewhere; stopping it here");
                        self.flag_cancel(&job_id);
                    } else {
                        // Keep proving: a proof that verifies is accepted while the job has no
                        // outcome, whichever attempt it comes from.
                        tracing::warn!(job = %job_id, attempt, "lease lost (it expired and the job was re-queued); finishing anyway");
                    }
                }
            }
        }
        store
            .node_heartbeat(&settings.node, &self.devices_json())
            .await?;
        let steady = self
            .inner
            .healthy_since
            .lock()
            .ok()
            .and_then(|s| *s)
            .is_some_and(|since| since.elapsed() >= settings.lease);
        if steady {
            let reaped = store.reap_expired(settings.max_deaths).await?;
            for r in &reaped {
                let node = r.node.clone().unwrap_or_default();
                if r.dead_lettered {
                    tracing::error!(job = %r.job_id, attempt = r.attempt, node = %node, max_deaths = settings.max_deaths, "lease expired once too often: job dead-lettered");
                    metrics::counter!("proofmill_jobs_dead_lettered_total", "node" => settings.node.clone(), "reason" => "deaths").increment(1);
                } else {
                    tracing::warn!(job = %r.job_id, attempt = r.attempt, node = %node, "lease expired: job re-queued");
                }
                metrics::counter!("proofmill_leases_expired_total", "node" => node).increment(1);
                self.announce(&r.job_id);
            }
            if !reaped.is_empty() {
                self.wake();
            }
        }
        Ok(())
    }

    /// Wakes the scheduler (a job was submitted or cancelled).
    pub fn wake(&self) {
        self.inner.notify.notify_one();
    }

    /// Ids of jobs whose state changed, for server-sent events.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.changes.subscribe()
    }

    /// Announces a change of a job's state.
    pub fn announce(&self, job_id: &str) {
        let _ = self.inner.changes.send(job_id.to_owned());
    }

    /// Asks a running job to stop at its next stage boundary.
    pub fn cancel(&self, job_id: &str) {
        self.flag_cancel(job_id);
        self.wake();
    }

    /// Time since the last proof this process produced.
    pub fn since_last_proof(&self) -> Option<Duration> {
        self.inner
            .last_proof
            .lock()
            .ok()
            .and_then(|t| t.map(|t| t.elapsed()))
    }

    /// The scheduling loop: dispatches queued jobs and hands worker events on until the task
    /// is aborted. Nothing it awaits depends on a device, a bucket or a client.
    pub async fn run(self, mut events: UnboundedReceiver<WorkerEvent>) {
        loop {
            if !self.inner.stopping.load(Ordering::SeqCst) {
                if let Err(e) = self.dispatch().await {
                    tracing::error!(error = %e, "scheduling failed; retrying");
                }
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.apply(event),
                    None => return,
                },
                () = self.inner.notify.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Writes running jobs' stages, the latest of each, until the task is aborted: a slow
    /// database delays stage updates, never dispatching.
    pub async fn write_stages(self) {
        loop {
            self.inner.stages_ready.notified().await;
            let pending: Vec<(String, (i64, JobStage))> = self
                .inner
                .stages
                .lock()
                .map(|mut s| s.drain().collect())
                .unwrap_or_default();
            for (job_id, (attempt, stage)) in pending {
                match self.inner.store.set_stage(&job_id, attempt, stage).await {
                    Ok(()) => self.announce(&job_id),
                    Err(e) => {
                        tracing::warn!(job = %job_id, error = %e, "could not record the job's stage")
                    }
                }
            }
        }
    }

    /// Hands a worker event on: a stage to the stage writer, an outcome to a task of its own.
    fn apply(&self, event: WorkerEvent) {
        match event {
            WorkerEvent::Stage { job_id, stage } => {
                if let Some(attempt) = self.attempt_of(&job_id) {
                    if let Ok(mut stages) = self.inner.stages.lock() {
                        stages.insert(job_id, (attempt, stage));
                    }
                    self.inner.stages_ready.notify_one();
                }
            }
            WorkerEvent::Finished {
                job_id,
                device,
                device_kind,
                outcome,
                device_seconds,
            } => {
                if let Ok(mut cancels) = self.inner.cancels.lock() {
                    cancels.remove(&job_id);
                }
                let this = self.clone();
                tokio::spawn(async move {
                    this.finished(job_id, device, device_kind, outcome, device_seconds)
                        .await;
                });
            }
        }
    }

    /// Stops dispatching, waits up to `grace` for the jobs on devices (and the recording of
    /// their outcomes), then re-queues what is left (their workers stop at the next stage
    /// boundary). A shutdown is not a death: nothing is counted against the jobs.
    pub async fn drain(&self, grace: Duration) -> Result<(), StoreError> {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + grace;
        let busy = || self.inner.workers.iter().any(|w| !w.jobs().is_empty());
        if busy() {
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutdown: waiting for running jobs"
            );
        }
        while busy() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if busy() {
            self.inner.draining_cancel.store(true, Ordering::SeqCst);
            if let Ok(cancels) = self.inner.cancels.lock() {
                for flag in cancels.values() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
        let requeued = self
            .inner
            .store
            .requeue_node(
                &self.inner.settings.node,
                &format!(
                    "re-queued at shutdown: not finished within the {}s grace period",
                    grace.as_secs()
                ),
                None,
            )
            .await?;
        if requeued.requeued > 0 {
            tracing::warn!(
                requeued = requeued.requeued,
                "shutdown: running jobs re-queued"
            );
        }
        Ok(())
    }
}
