//! The scheduler: decides which queued job runs on which of this node's devices, and records
//! what workers report. The job store is the source of truth, shared by every node of a
//! cluster; the scheduler keeps in memory only what a restart may lose (cancel flags, which
//! worker holds which attempt).
//!
//! Order: priority, then first come first served. An aggregate job waits until its input
//! jobs have succeeded, and fails (naming the input) when one of them fails. A job is placed
//! on a device whose memory fits its estimate. Every claim is a lease that a heartbeat task
//! renews while the job runs; the same task re-queues jobs whose lease expired on any node
//! (their node died) and passes on cancels asked for through other nodes. A job that fails
//! for a reason other than its input is retried (on another device after a GPU error) until
//! it has failed `max_attempts` times, then dead-lettered.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use proofmill_prover::{ProofEnvelope, Prover, Transcript};
use tokio::sync::{broadcast, mpsc::UnboundedReceiver, Notify};

use crate::{
    artifacts::Artifacts,
    devices::{estimate_prove_bytes, DeviceKind, AGGREGATE_BYTES},
    store::{Completed, JobRecord, JobStatus, JobStore, Lease, Retried, StoreError},
    worker::{Assignment, Outcome, Work, Worker, WorkerEvent},
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
    pub max_attempts: u32,
    /// The data directory whose SRS files and proving keys are shared through the bucket
    /// (when proofs go to one).
    pub data_dir: std::path::PathBuf,
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
}

/// What to do with a queued job now.
enum Plan {
    Run(Work, u64),
    Wait,
    Fail(String),
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

    /// This node's devices now, as the node registry stores them.
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
            let reaped = store.reap_expired().await?;
            for r in &reaped {
                let node = r.node.clone().unwrap_or_default();
                tracing::warn!(job = %r.job_id, attempt = r.attempt, node = %node, "lease expired: job re-queued");
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

    /// In the background, uploads the SRS file and proving key a proof of `circuit` used to
    /// the bucket, when it lacks them, so that other nodes fetch rather than generate them.
    fn share_data(&self, circuit: &str, k: u32) {
        if !self.inner.artifacts.is_bucket() {
            return;
        }
        let this = self.clone();
        let circuit = circuit.to_owned();
        tokio::spawn(async move {
            let _one_at_a_time = this.inner.sharing.lock().await;
            let prover = this.inner.prover.clone();
            let name = circuit.clone();
            let files = tokio::task::spawn_blocking(move || prover.data_files(&name, k)).await;
            let files = match files
                .map_err(|e| e.to_string())
                .and_then(|listed| listed.map_err(|e| e.to_string()))
            {
                Ok(files) => files,
                Err(e) => {
                    tracing::warn!(%circuit, error = %e, "could not list the files to share");
                    return;
                }
            };
            let pushed = this
                .inner
                .artifacts
                .push_data(&this.inner.settings.data_dir, &files)
                .await;
            if let Err(e) = pushed {
                tracing::warn!(%circuit, error = %e, "could not share the SRS and keys with the cluster; other nodes will generate their own");
            }
        });
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

    /// The scheduling loop: dispatches queued jobs and applies worker events until the task
    /// is aborted.
    pub async fn run(self, mut events: UnboundedReceiver<WorkerEvent>) {
        loop {
            if !self.inner.stopping.load(Ordering::SeqCst) {
                if let Err(e) = self.dispatch().await {
                    tracing::error!(error = %e, "scheduling failed; retrying");
                }
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => {
                        if let Err(e) = self.apply(event).await {
                            tracing::error!(error = %e, "recording a worker event failed");
                        }
                    }
                    None => return,
                },
                () = self.inner.notify.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Stops dispatching, waits up to `grace` for the jobs on devices, then re-queues what is
    /// left (their workers stop at the next stage boundary).
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
            )
            .await?;
        if requeued > 0 {
            tracing::warn!(requeued, "shutdown: running jobs re-queued");
        }
        Ok(())
    }

    async fn dispatch(&self) -> Result<(), StoreError> {
        let queued = self.inner.store.queued(256).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let largest = self
            .inner
            .workers
            .iter()
            .filter_map(|w| w.info().memory_total_bytes)
            .max();
        let mut done: HashSet<String> = HashSet::new();
        for worker in &self.inner.workers {
            while worker.has_capacity() {
                let mut placed = false;
                for job in &queued {
                    // A job this node still works on (its lease expired and it was re-queued,
                    // but the old attempt has not come back yet) is left to other nodes: the
                    // maps here are per job, so one attempt per job per node.
                    if done.contains(&job.id) || self.attempt_of(&job.id).is_some() {
                        continue;
                    }
                    let here = format!("{}/{}", self.inner.settings.node, worker.id());
                    if job.exclude_device.as_deref() == Some(here.as_str())
                        && self.inner.workers.len() > 1
                    {
                        continue;
                    }
                    let (work, bytes) = match self.plan(job).await? {
                        Plan::Run(work, bytes) => (work, bytes),
                        Plan::Wait => continue,
                        Plan::Fail(reason) => {
                            done.insert(job.id.clone());
                            self.fail(job, &reason).await?;
                            continue;
                        }
                    };
                    if let Some(largest) = largest {
                        if bytes > largest {
                            done.insert(job.id.clone());
                            let reason = format!(
                                "needs about {:.1} GiB of memory; the largest device has {:.1} GiB",
                                proofmill_accel::host::gib(bytes),
                                proofmill_accel::host::gib(largest)
                            );
                            self.fail(job, &reason).await?;
                            continue;
                        }
                    }
                    let info = worker.info();
                    let held = worker.jobs();
                    let reserved: u64 = held.iter().map(|(_, b)| *b).sum();
                    if info.memory_total_bytes.is_some_and(|total| bytes > total) {
                        continue;
                    }
                    if !held.is_empty()
                        && info
                            .memory_free_bytes
                            .is_some_and(|free| reserved + bytes > free)
                    {
                        continue;
                    }
                    let settings = &self.inner.settings;
                    let claimed = self
                        .inner
                        .store
                        .claim(&job.id, &settings.node, worker.id(), settings.lease)
                        .await?;
                    done.insert(job.id.clone());
                    let Some(attempt) = claimed else {
                        continue; // another node claimed it first
                    };
                    self.set_held(&job.id, Some(attempt));
                    let cancel = Arc::new(AtomicBool::new(false));
                    if let Ok(mut cancels) = self.inner.cancels.lock() {
                        cancels.insert(job.id.clone(), cancel.clone());
                    }
                    tracing::info!(job = %job.id, device = worker.id(), attempt, kind = %job.kind, "job started");
                    let assigned = worker.assign(
                        Assignment {
                            job_id: job.id.clone(),
                            work,
                            cancel,
                        },
                        bytes,
                    );
                    if !assigned {
                        self.set_held(&job.id, None);
                        self.inner
                            .store
                            .requeue(&job.id, attempt, "worker unavailable")
                            .await?;
                    }
                    self.announce(&job.id);
                    placed = true;
                    break;
                }
                if !placed {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn plan(&self, job: &JobRecord) -> Result<Plan, StoreError> {
        match job.kind.as_str() {
            "prove" => {
                let Some(name) = job.circuit.as_deref() else {
                    return Ok(Plan::Fail("prove job without a circuit".into()));
                };
                let circuit = match proofmill_circuits::lookup(name) {
                    Ok(c) => c,
                    Err(e) => return Ok(Plan::Fail(e.to_string())),
                };
                let transcript = job
                    .request
                    .get("transcript")
                    .and_then(|t| serde_json::from_value::<Transcript>(t.clone()).ok())
                    .unwrap_or_default();
                let input = job
                    .request
                    .get("input")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                let shape = circuit.shape();
                let bytes =
                    estimate_prove_bytes(shape.k, shape.advice_columns, shape.lookup_columns);
                Ok(Plan::Run(
                    Work::Prove {
                        circuit,
                        input,
                        transcript,
                    },
                    bytes,
                ))
            }
            "aggregate" => {
                let final_ = job
                    .request
                    .get("final")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                let items = job
                    .request
                    .get("inputs")
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut inputs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(dep) = item.get("job").and_then(serde_json::Value::as_str) {
                        let Some(dep_job) = self.inner.store.get(dep).await? else {
                            return Ok(Plan::Fail(format!(
                                "inputs[{i}]: job {dep} no longer exists"
                            )));
                        };
                        match dep_job.status {
                            JobStatus::Succeeded => {}
                            JobStatus::Failed | JobStatus::Cancelled => {
                                return Ok(Plan::Fail(format!(
                                    "inputs[{i}]: job {dep} {}: {}",
                                    dep_job.status.as_str(),
                                    dep_job.error.unwrap_or_default()
                                )));
                            }
                            JobStatus::Queued | JobStatus::Running => return Ok(Plan::Wait),
                        }
                        let Some(path) = dep_job.proof_path else {
                            return Ok(Plan::Fail(format!(
                                "inputs[{i}]: job {dep} succeeded but its proof is missing"
                            )));
                        };
                        let text = match self.inner.artifacts.get(&path).await {
                            Ok(text) => Ok(text),
                            // The store may be unreachable for a while: try again later.
                            Err(e) if !e.is_not_found() => {
                                tracing::warn!(job = %job.id, input = %dep, error = %e, "an aggregation input could not be read; will retry");
                                return Ok(Plan::Wait);
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        match text.and_then(|text| {
                            ProofEnvelope::from_json(&text).map_err(|e| e.to_string())
                        }) {
                            Ok(envelope) => inputs.push(envelope),
                            Err(e) => {
                                return Ok(Plan::Fail(format!("inputs[{i}]: job {dep}: {e}")))
                            }
                        }
                    } else if let Some(proof) = item.get("proof") {
                        match ProofEnvelope::from_value(proof.clone()) {
                            Ok(envelope) => inputs.push(envelope),
                            Err(e) => return Ok(Plan::Fail(format!("inputs[{i}].proof: {e}"))),
                        }
                    } else {
                        return Ok(Plan::Fail(format!("inputs[{i}]: neither job nor proof")));
                    }
                }
                Ok(Plan::Run(
                    Work::Aggregate { inputs, final_ },
                    AGGREGATE_BYTES,
                ))
            }
            other => Ok(Plan::Fail(format!("unknown job type {other:?}"))),
        }
    }

    async fn fail(&self, job: &JobRecord, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(job = %job.id, reason, "job failed before it could start");
        if self.inner.store.fail_queued(&job.id, reason).await? {
            metrics::counter!("proofmill_jobs_finished_total", "status" => "failed", "node" => self.inner.settings.node.clone()).increment(1);
        }
        self.announce(&job.id);
        Ok(())
    }

    async fn apply(&self, event: WorkerEvent) -> Result<(), StoreError> {
        match event {
            WorkerEvent::Stage {
                job_id,
                stage,
                progress,
            } => {
                if let Some(attempt) = self.attempt_of(&job_id) {
                    self.inner
                        .store
                        .set_stage(&job_id, attempt, &stage, progress)
                        .await?;
                    self.announce(&job_id);
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
                // The outcome is recorded before the device slot is released (so that a
                // shutdown waiting for idle devices never cuts a proof's write short) and
                // before the lease is let go: while the database is unreachable this retries,
                // the heartbeat task keeps the lease, and the proof is not lost.
                if let Some(attempt) = self.attempt_of(&job_id) {
                    let mut usage_recorded = false;
                    let mut delay = Duration::from_millis(500);
                    loop {
                        let recorded = self
                            .record_outcome(
                                &job_id,
                                attempt,
                                &device,
                                device_kind,
                                &outcome,
                                device_seconds,
                                &mut usage_recorded,
                            )
                            .await;
                        match recorded {
                            Ok(()) => break,
                            Err(e) if e.is_unavailable() => {
                                tracing::error!(job = %job_id, error = %e, "the job database is unavailable: recording the job's outcome again shortly");
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(10));
                            }
                            Err(e) => {
                                // Not something waiting cures: let the lease lapse, so that the
                                // job is re-queued (here or elsewhere) rather than stuck.
                                tracing::error!(job = %job_id, error = %e, "recording the job's outcome failed; its lease will expire and it will run again");
                                break;
                            }
                        }
                    }
                }
                self.set_held(&job_id, None);
                for worker in &self.inner.workers {
                    worker.release(&job_id);
                }
                self.announce(&job_id);
                self.wake();
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_outcome(
        &self,
        job_id: &str,
        attempt: i64,
        device: &str,
        device_kind: DeviceKind,
        outcome: &Outcome,
        device_seconds: f64,
        usage_recorded: &mut bool,
    ) -> Result<(), StoreError> {
        let Some(job) = self.inner.store.get(job_id).await? else {
            return Ok(());
        };
        if device_seconds > 0.0 && !*usage_recorded {
            self.inner
                .store
                .add_usage(&job.tenant, device_kind.as_str(), device_seconds)
                .await?;
            *usage_recorded = true;
            metrics::counter!("proofmill_device_seconds_total", "device" => device.to_owned(), "kind" => device_kind.as_str(), "node" => self.inner.settings.node.clone())
                .increment(device_seconds.round() as u64);
        }
        self.finished(job, attempt, device, device_kind, outcome, device_seconds)
            .await
    }

    async fn finished(
        &self,
        job: JobRecord,
        attempt: i64,
        device: &str,
        device_kind: DeviceKind,
        outcome: &Outcome,
        device_seconds: f64,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let settings = &self.inner.settings;
        let status = match outcome {
            Outcome::Proved(envelope) => {
                if job.cancel_requested {
                    store
                        .finish(
                            &job.id,
                            attempt,
                            JobStatus::Cancelled,
                            "cancelled by its owner",
                        )
                        .await?
                        .then_some(JobStatus::Cancelled)
                } else if job.status.is_terminal() {
                    tracing::info!(job = %job.id, attempt, status = job.status.as_str(), "proof of an attempt whose job already ended: not stored");
                    store
                        .supersede(&job.id, attempt, "the job already had an outcome")
                        .await?;
                    None
                } else {
                    let written = self
                        .inner
                        .artifacts
                        .put_proof(&job.id, envelope.to_json())
                        .await;
                    match written {
                        Err(e) => {
                            tracing::error!(job = %job.id, error = %e, "could not store the proof");
                            store
                                .finish(
                                    &job.id,
                                    attempt,
                                    JobStatus::Failed,
                                    "the appliance could not store the proof; see its log",
                                )
                                .await?
                                .then_some(JobStatus::Failed)
                        }
                        Ok(location) => match store.complete(&job.id, attempt, &location).await? {
                            Completed::AlreadyEnded => {
                                tracing::info!(job = %job.id, attempt, "another attempt's proof was recorded first");
                                None
                            }
                            Completed::Recorded => {
                                store
                                    .record_vk(&envelope.circuit, &envelope.vk_hash)
                                    .await?;
                                if let Ok(mut last) = self.inner.last_proof.lock() {
                                    *last = Some(Instant::now());
                                }
                                metrics::histogram!("proofmill_prove_seconds", "circuit" => envelope.circuit.clone(), "node" => settings.node.clone())
                                    .record(device_seconds);
                                if job.attempts != attempt {
                                    tracing::info!(job = %job.id, attempt, latest = job.attempts, "a late proof from an expired lease was recorded");
                                }
                                tracing::info!(job = %job.id, device, attempt, seconds = format!("{device_seconds:.1}"), "job succeeded");
                                self.share_data(&envelope.circuit, envelope.k);
                                Some(JobStatus::Succeeded)
                            }
                        },
                    }
                }
            }
            Outcome::Failed {
                message,
                client_error: true,
            } => {
                tracing::warn!(job = %job.id, error = %message, "job failed");
                store
                    .finish(&job.id, attempt, JobStatus::Failed, message)
                    .await?
                    .then_some(JobStatus::Failed)
            }
            Outcome::Failed {
                message,
                client_error: false,
            } => {
                let elsewhere = self.inner.workers.iter().any(|w| w.id() != device);
                let avoid = device_kind == DeviceKind::Gpu && elsewhere;
                let reason = if avoid {
                    format!("device error on {device}: {message}; retrying on another device")
                } else {
                    format!(
                        "attempt {attempt} failed on {}/{device}: {message}",
                        settings.node
                    )
                };
                let excluded = format!("{}/{device}", settings.node);
                let exclude = avoid.then_some(excluded.as_str());
                match store
                    .retry(&job.id, attempt, &reason, exclude, settings.max_attempts)
                    .await?
                {
                    Retried::Requeued => {
                        tracing::warn!(job = %job.id, %reason, "retrying job");
                        if avoid {
                            metrics::counter!("proofmill_fallbacks_total", "from" => device.to_owned(), "reason" => "device_error")
                                .increment(1);
                        }
                        None
                    }
                    Retried::DeadLettered => {
                        tracing::error!(job = %job.id, error = %message, attempts = settings.max_attempts, "job failed every attempt: dead-lettered");
                        metrics::counter!("proofmill_jobs_dead_lettered_total", "node" => settings.node.clone())
                            .increment(1);
                        Some(JobStatus::Failed)
                    }
                    Retried::Fenced => None,
                }
            }
            Outcome::Cancelled => {
                if self.inner.draining_cancel.load(Ordering::SeqCst) && !job.cancel_requested {
                    store
                        .requeue(
                            &job.id,
                            attempt,
                            "re-queued at shutdown: stopped at a stage boundary",
                        )
                        .await?;
                    None
                } else {
                    let ended = store
                        .finish(
                            &job.id,
                            attempt,
                            JobStatus::Cancelled,
                            "cancelled by its owner",
                        )
                        .await?;
                    if ended {
                        tracing::info!(job = %job.id, "job cancelled");
                    }
                    ended.then_some(JobStatus::Cancelled)
                }
            }
        };
        if let Some(status) = status {
            metrics::counter!("proofmill_jobs_finished_total", "status" => status.as_str(), "node" => settings.node.clone())
                .increment(1);
        }
        Ok(())
    }
}
