//! The scheduler: decides which queued job runs on which device, and records what workers
//! report. The job store is the source of truth; the scheduler keeps in memory only what a
//! restart may lose (cancel flags, which worker holds which job).
//!
//! Order: priority, then first come first served. An aggregate job waits until its input
//! jobs have succeeded, and fails (naming the input) when one of them fails. A job is placed
//! on a device whose memory fits its estimate; a job that fails on a GPU for a reason other
//! than its input is retried once elsewhere (the CPU), and the reason is recorded.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use proofmill_prover::{ProofEnvelope, Transcript};
use tokio::sync::{broadcast, mpsc::UnboundedReceiver, Notify};

use crate::{
    artifacts::Artifacts,
    devices::{estimate_prove_bytes, DeviceKind, AGGREGATE_BYTES},
    store::{JobRecord, JobStatus, JobStore, StoreError},
    worker::{Assignment, Outcome, Work, Worker, WorkerEvent},
};

/// Places jobs on workers and applies their outcomes to the store.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: JobStore,
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
    pub fn new(store: JobStore, workers: Vec<Arc<Worker>>, artifacts: Arc<Artifacts>) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
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
        if let Ok(cancels) = self.inner.cancels.lock() {
            if let Some(flag) = cancels.get(job_id) {
                flag.store(true, Ordering::SeqCst);
            }
        }
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
            .requeue_running(&format!(
                "re-queued at shutdown: not finished within the {}s grace period",
                grace.as_secs()
            ))
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
                    if done.contains(&job.id) {
                        continue;
                    }
                    if job.exclude_device.as_deref() == Some(worker.id())
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
                                gib(bytes),
                                gib(largest)
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
                    if !self.inner.store.claim(&job.id, worker.id()).await? {
                        done.insert(job.id.clone());
                        continue;
                    }
                    done.insert(job.id.clone());
                    let cancel = Arc::new(AtomicBool::new(false));
                    if let Ok(mut cancels) = self.inner.cancels.lock() {
                        cancels.insert(job.id.clone(), cancel.clone());
                    }
                    tracing::info!(job = %job.id, device = worker.id(), kind = %job.kind, "job started");
                    let assigned = worker.assign(
                        Assignment {
                            job_id: job.id.clone(),
                            work,
                            cancel,
                        },
                        bytes,
                    );
                    if !assigned {
                        self.inner
                            .store
                            .requeue(&job.id, "worker unavailable", None)
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
        self.inner
            .store
            .finish(&job.id, JobStatus::Failed, Some(reason), None)
            .await?;
        metrics::counter!("proofmill_jobs_finished_total", "status" => "failed").increment(1);
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
                self.inner
                    .store
                    .set_stage(&job_id, &stage, progress)
                    .await?;
                self.announce(&job_id);
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
                // The device slot is released only once the outcome is recorded, so that a
                // shutdown waiting for idle devices never cuts a proof's write short.
                let recorded = self
                    .record_outcome(&job_id, &device, device_kind, outcome, device_seconds)
                    .await;
                for worker in &self.inner.workers {
                    worker.release(&job_id);
                }
                recorded?;
                self.announce(&job_id);
                self.wake();
            }
        }
        Ok(())
    }

    async fn record_outcome(
        &self,
        job_id: &str,
        device: &str,
        device_kind: DeviceKind,
        outcome: Outcome,
        device_seconds: f64,
    ) -> Result<(), StoreError> {
        let Some(job) = self.inner.store.get(job_id).await? else {
            return Ok(());
        };
        if device_seconds > 0.0 {
            self.inner
                .store
                .add_usage(&job.tenant, device_kind.as_str(), device_seconds)
                .await?;
            metrics::counter!("proofmill_device_seconds_total", "device" => device.to_owned(), "kind" => device_kind.as_str())
                .increment(device_seconds.round() as u64);
        }
        self.finished(job, device, device_kind, outcome, device_seconds)
            .await
    }

    async fn finished(
        &self,
        job: JobRecord,
        device: &str,
        device_kind: DeviceKind,
        outcome: Outcome,
        device_seconds: f64,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let status = match outcome {
            Outcome::Proved(envelope) => {
                if job.cancel_requested {
                    store
                        .finish(
                            &job.id,
                            JobStatus::Cancelled,
                            Some("cancelled by its owner"),
                            None,
                        )
                        .await?;
                    JobStatus::Cancelled
                } else {
                    let written = self
                        .inner
                        .artifacts
                        .put_proof(&job.id, envelope.to_json())
                        .await;
                    let location = match written {
                        Ok(location) => location,
                        Err(e) => {
                            tracing::error!(job = %job.id, error = %e, "could not store the proof");
                            store
                                .finish(
                                    &job.id,
                                    JobStatus::Failed,
                                    Some("the appliance could not store the proof; see its log"),
                                    None,
                                )
                                .await?;
                            return Ok(());
                        }
                    };
                    store
                        .finish(&job.id, JobStatus::Succeeded, None, Some(&location))
                        .await?;
                    store
                        .record_vk(&envelope.circuit, &envelope.vk_hash)
                        .await?;
                    if let Ok(mut last) = self.inner.last_proof.lock() {
                        *last = Some(Instant::now());
                    }
                    metrics::histogram!("proofmill_prove_seconds", "circuit" => envelope.circuit.clone())
                        .record(device_seconds);
                    tracing::info!(job = %job.id, device, seconds = format!("{device_seconds:.1}"), "job succeeded");
                    JobStatus::Succeeded
                }
            }
            Outcome::Failed {
                message,
                client_error,
            } => {
                let elsewhere = self.inner.workers.iter().any(|w| w.id() != device);
                if !client_error && device_kind == DeviceKind::Gpu && job.attempts < 2 && elsewhere
                {
                    let reason =
                        format!("device error on {device}: {message}; retrying on another device");
                    tracing::warn!(job = %job.id, %reason, "retrying job");
                    metrics::counter!("proofmill_fallbacks_total", "from" => device.to_owned(), "reason" => "device_error")
                        .increment(1);
                    store.requeue(&job.id, &reason, Some(device)).await?;
                    return Ok(());
                }
                tracing::warn!(job = %job.id, error = %message, "job failed");
                store
                    .finish(&job.id, JobStatus::Failed, Some(&message), None)
                    .await?;
                JobStatus::Failed
            }
            Outcome::Cancelled => {
                if self.inner.draining_cancel.load(Ordering::SeqCst) && !job.cancel_requested {
                    store
                        .requeue(
                            &job.id,
                            "re-queued at shutdown: stopped at a stage boundary",
                            None,
                        )
                        .await?;
                    return Ok(());
                }
                tracing::info!(job = %job.id, "job cancelled");
                store
                    .finish(
                        &job.id,
                        JobStatus::Cancelled,
                        Some("cancelled by its owner"),
                        None,
                    )
                    .await?;
                JobStatus::Cancelled
            }
        };
        metrics::counter!("proofmill_jobs_finished_total", "status" => status.as_str())
            .increment(1);
        Ok(())
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}
